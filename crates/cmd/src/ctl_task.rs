//! `trireme ctl task log|cat|ls`: a task's sandbox read through its agent's `/files/*`.
//! The task is looked up on the leader (`/tasks?task_id=`), its agent's address in
//! `/slaves`, its executor's `directory` in the agent's `/state` (or, once the executor is
//! gone, Mesos's virtual `/frameworks/<fw>/executors/<ex>/runs/latest`, the command
//! executor's id being the task's). `log --follow` polls `/files/read` from the offset it
//! reached, printing what was appended, until the task is terminal and the file drained.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use super::{CtlError, MasterArg, Request, leader, parse, send};

/// `trireme ctl task ...`.
#[derive(clap::Subcommand, Debug)]
pub enum TaskCommand {
    /// Print the task's stdout (or stderr); `--follow` keeps printing what it appends.
    Log(LogArgs),
    /// Print a file of the task's sandbox (a path relative to it).
    Cat(CatArgs),
    /// List the task's sandbox, or a directory in it.
    Ls(LsArgs),
}

/// Which task: its id, and its framework when the id alone is ambiguous.
#[derive(clap::Args, Debug)]
pub struct TaskArg {
    #[command(flatten)]
    master: MasterArg,
    /// The task's id.
    task: String,
    /// The task's framework id (needed when several frameworks have a task of that id).
    #[arg(long)]
    framework: Option<String>,
}

/// `trireme ctl task log`.
#[derive(clap::Args, Debug)]
pub struct LogArgs {
    #[command(flatten)]
    task: TaskArg,
    /// Keep printing what the task writes until it is terminal and its output drained.
    #[arg(long)]
    follow: bool,
    /// Read `stderr` instead of `stdout`.
    #[arg(long)]
    stderr: bool,
}

/// `trireme ctl task cat`.
#[derive(clap::Args, Debug)]
pub struct CatArgs {
    #[command(flatten)]
    task: TaskArg,
    /// The file, relative to the sandbox.
    file: String,
}

/// `trireme ctl task ls`.
#[derive(clap::Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    task: TaskArg,
    /// A directory (or file) relative to the sandbox; the sandbox itself by default.
    path: Option<String>,
    /// Print the agent's `/files/browse` JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// How often `log --follow` asks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Runs a task command; what it prints goes to stdout as it is read, so the returned text
/// is empty but for `ls`.
pub(super) async fn run(command: &TaskCommand) -> Result<String, CtlError> {
    match command {
        TaskCommand::Log(args) => {
            let sandbox = Sandbox::find(&args.task).await?;
            let file = if args.stderr { "stderr" } else { "stdout" };
            let path = sandbox.path(file);
            if args.follow {
                follow(&sandbox, &args.task, &path).await?;
            } else {
                sandbox.print(&path).await?;
            }
            Ok(String::new())
        }
        TaskCommand::Cat(args) => {
            let sandbox = Sandbox::find(&args.task).await?;
            sandbox.print(&sandbox.path(&args.file)).await?;
            Ok(String::new())
        }
        TaskCommand::Ls(args) => {
            let sandbox = Sandbox::find(&args.task).await?;
            let path = sandbox.path(args.path.as_deref().unwrap_or(""));
            let query = format!("/files/browse?path={}", encode(&path));
            let body = sandbox.get(&query).await?;
            if args.json {
                return Ok(body);
            }
            Ok(listing(&parse(&query, &body)?))
        }
    }
}

/// A task's sandbox on its agent.
struct Sandbox {
    client: reqwest::Client,
    /// The agent's `host:port`.
    agent: String,
    /// The sandbox's path as the agent's `/files/*` take it.
    directory: String,
}

impl Sandbox {
    /// Finds the task's agent and executor directory.
    async fn find(arg: &TaskArg) -> Result<Sandbox, CtlError> {
        let master = leader(&arg.master).await?;
        let task = find_task(&master, arg).await?;
        let agent_id = task["slave_id"].as_str().unwrap_or_default();
        let slaves = parse(
            "/slaves",
            &send(&master, &Request::Get("/slaves".into())).await?,
        )?;
        let agent = items(&slaves["slaves"])
            .find(|a| a["id"] == agent_id)
            .and_then(|a| {
                Some(format!(
                    "{}:{}",
                    a["hostname"].as_str()?,
                    a["port"].as_u64()?
                ))
            })
            .ok_or_else(|| CtlError::Other(format!("the master does not know agent {agent_id}")))?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CtlError::Other(format!("cannot make an HTTP client: {e}")))?;
        let mut sandbox = Sandbox {
            client,
            agent,
            directory: String::new(),
        };
        let state = parse("/state", &sandbox.get("/state").await?)?;
        sandbox.directory = directory(&state, &task);
        Ok(sandbox)
    }

    /// `relative` inside the sandbox.
    fn path(&self, relative: &str) -> String {
        let relative = relative.trim_start_matches('/');
        if relative.is_empty() {
            return self.directory.clone();
        }
        format!("{}/{relative}", self.directory)
    }

    /// `GET path_and_query` on the agent: the body of a 2xx answer.
    async fn get(&self, path_and_query: &str) -> Result<String, CtlError> {
        let url = format!("http://{}{path_and_query}", self.agent);
        let response = self.client.get(&url).send().await.map_err(|e| {
            CtlError::Other(format!("cannot reach the agent at {}: {e}", self.agent))
        })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| CtlError::Other(format!("{} broke off its answer: {e}", self.agent)))?;
        if !status.is_success() {
            return Err(CtlError::Answered {
                authority: self.agent.clone(),
                path: path_and_query.to_owned(),
                status: status.to_string(),
                body: body.trim().to_owned(),
            });
        }
        Ok(body)
    }

    /// One `/files/read` from `offset`: the data and the offset after it.
    async fn read(&self, path: &str, offset: u64) -> Result<(String, u64), CtlError> {
        let query = format!("/files/read?path={}&offset={offset}", encode(path));
        let answer = parse(&query, &self.get(&query).await?)?;
        let data = answer["data"].as_str().unwrap_or_default().to_owned();
        let at = answer["offset"].as_u64().unwrap_or(offset);
        let next = at + data.len() as u64;
        Ok((data, next))
    }

    /// Prints the whole file, window by window.
    async fn print(&self, path: &str) -> Result<(), CtlError> {
        let mut offset = 0;
        loop {
            let (data, next) = self.read(path, offset).await?;
            if data.is_empty() {
                return Ok(());
            }
            write_out(&data)?;
            offset = next;
        }
    }
}

/// `log --follow`: prints what is appended until the task is terminal and the file
/// drained. A file not there yet (the task still staging) counts as empty.
async fn follow(sandbox: &Sandbox, arg: &TaskArg, path: &str) -> Result<(), CtlError> {
    let master = leader(&arg.master).await?;
    let mut offset = 0;
    let mut terminal = false;
    loop {
        let data = match sandbox.read(path, offset).await {
            Ok((data, next)) => {
                offset = next;
                data
            }
            Err(CtlError::Answered { status, .. }) if status.starts_with("404") => String::new(),
            Err(e) => return Err(e),
        };
        if !data.is_empty() {
            write_out(&data)?;
            continue;
        }
        if terminal {
            return Ok(());
        }
        terminal = super::ctl_cmds::is_terminal(&find_task(&master, arg).await?);
        if !terminal {
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

/// The task of `/tasks?task_id=` (in `--framework`, if given); refused when absent or
/// ambiguous.
async fn find_task(master: &str, arg: &TaskArg) -> Result<Value, CtlError> {
    let mut path = format!("/tasks?task_id={}", encode(&arg.task));
    if let Some(framework) = &arg.framework {
        path.push_str(&format!("&framework_id={}", encode(framework)));
    }
    let answer = parse(&path, &send(master, &Request::Get(path.clone())).await?)?;
    let tasks: Vec<&Value> = items(&answer["tasks"])
        .filter(|t| t["id"] == arg.task.as_str())
        .collect();
    match tasks.as_slice() {
        [task] => Ok((*task).clone()),
        [] => Err(CtlError::Other(format!(
            "the master knows no task {}",
            arg.task
        ))),
        _ => Err(CtlError::Usage(format!(
            "{} tasks have the id {}: name the framework with --framework",
            tasks.len(),
            arg.task
        ))),
    }
}

/// The task's executor directory in the agent's `/state`, or the virtual `runs/latest`
/// path of its executor (for an executor the agent no longer runs).
fn directory(state: &Value, task: &Value) -> String {
    let (fid, tid) = (&task["framework_id"], &task["id"]);
    let executors = items(&state["frameworks"])
        .filter(|f| f["id"] == *fid)
        .flat_map(|f| items(&f["executors"]));
    for executor in executors {
        let runs_it = items(&executor["tasks"]).any(|t| t["id"] == *tid)
            || items(&executor["completed_tasks"]).any(|t| t == tid);
        if let (true, Some(directory)) = (runs_it, executor["directory"].as_str()) {
            return directory.to_owned();
        }
    }
    let executor = match task["executor_id"].as_str() {
        Some(id) if !id.is_empty() => id,
        _ => tid.as_str().unwrap_or_default(),
    };
    let fid = fid.as_str().unwrap_or_default();
    format!("/frameworks/{fid}/executors/{executor}/runs/latest")
}

/// `/files/browse`'s entries as `MODE NLINK UID GID SIZE MTIME NAME`.
fn listing(entries: &Value) -> String {
    let rows = items(entries)
        .map(|e| {
            let name = e["path"].as_str().unwrap_or_default();
            let name = name.rsplit('/').next().unwrap_or(name);
            let cell = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            [
                cell(&e["mode"]),
                cell(&e["nlink"]),
                cell(&e["uid"]),
                cell(&e["gid"]),
                cell(&e["size"]),
                cell(&e["mtime"]),
                name.to_owned(),
            ]
            .join(" ")
        })
        .collect::<Vec<_>>();
    rows.iter().map(|row| format!("{row}\n")).collect()
}

fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn write_out(data: &str) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    out.write_all(data.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CtlError::Other(format!("cannot write to stdout: {e}")))
}

/// `value` percent-encoded for a query string (all but unreserved characters and `/`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_directory_is_the_executors_or_the_virtual_latest_run() {
        let state = json!({"frameworks": [{"id": "F", "executors": [
            {"id": "a", "directory": "/w/a", "tasks": [{"id": "t1"}], "completed_tasks": []},
            {"id": "b", "directory": "/w/b", "tasks": [], "completed_tasks": ["t2"]},
        ]}]});
        let task = |id: &str, fid: &str, eid: &str| json!({"id": id, "framework_id": fid, "executor_id": eid});
        assert_eq!(directory(&state, &task("t1", "F", "")), "/w/a");
        assert_eq!(directory(&state, &task("t2", "F", "")), "/w/b");
        assert_eq!(
            directory(&state, &task("t1", "G", "")),
            "/frameworks/G/executors/t1/runs/latest"
        );
        assert_eq!(
            directory(&state, &task("t3", "F", "ex")),
            "/frameworks/F/executors/ex/runs/latest"
        );
    }

    #[test]
    fn listings_and_queries() {
        let entries = json!([{"path": "/w/a/stdout", "mode": "-rw-r--r--", "nlink": 1,
            "uid": "root", "gid": "root", "size": 12, "mtime": 5}]);
        assert_eq!(listing(&entries), "-rw-r--r-- 1 root root 12 5 stdout\n");
        assert_eq!(encode("/w/a b&c=d"), "/w/a%20b%26c%3Dd");
    }
}
