//! The agent's `/files/*` endpoints and `trireme ctl task log|cat|ls` against a real
//! master, agent and task (issue 15's readable sandboxes, issue 16 part 4): browse lists
//! stdout/stderr, read honours offset/length and offset=-1, paths out of the sandbox
//! (absolute, `..`, a symlink) are 404, and `ctl task log --follow` prints what the task
//! writes after it started, then exits 0 when the task finishes.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use api::v1::TaskState;
use common::ctl::ctl;
use common::framework::{Framework, WAIT};
use common::{BIN, Cluster};
use serde_json::Value;
use testkit::{get_json, http_get, poll_until};

/// Prints `start`, waits for a `go` file in its sandbox (its working directory), then
/// prints more on both streams and finishes.
const TASK: &str = "echo start; echo err-start >&2; \
    while [ ! -e go ]; do sleep 0.1; done; \
    echo after-go; sleep 0.3; echo err-after >&2; echo last";

/// GET on the agent: (status, body).
fn get(agent: &str, path: &str) -> (u16, String) {
    http_get(agent, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The agent's `host:port` and the task's executor directory, from `/slaves` and the
/// agent's `/state`.
fn sandbox_of(master: &str, task: &str) -> (String, String) {
    let slaves = get_json(master, "/slaves").expect("/slaves");
    let agent = &slaves["slaves"][0];
    let addr = format!("{}:{}", agent["hostname"].as_str().unwrap(), agent["port"]);
    let directory = poll_until(WAIT, "the task's executor in the agent's /state", || {
        let state = get_json(&addr, "/state")?;
        state["frameworks"][0]["executors"]
            .as_array()?
            .iter()
            .find(|e| e["id"] == task)?["directory"]
            .as_str()
            .map(str::to_owned)
    })
    .expect("directory");
    (addr, directory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_serve_the_sandbox_and_ctl_follows_a_task_log() {
    let cluster = Cluster::start_with(1, &["--allocation_interval=100ms"], &[]);
    let master = cluster.master_addr.clone();
    let mut fw = Framework::subscribe(&master, "files-test").await;
    let offer = fw.launch_running("writer", TASK).await;
    let framework = offer.framework_id.value.clone();
    let (agent, dir) = sandbox_of(&master, "writer");
    let stdout = format!("{dir}/stdout");
    let mut last = (0, String::new());
    poll_until(WAIT, "the task's first line", || {
        last = get(&agent, &format!("/files/read?path={stdout}"));
        (last.0 == 200 && json(&last.1)["data"] == "start\n").then_some(())
    })
    .map_err(|e| format!("{e}: the last answer was {last:?}"))
    .expect("first line");

    // Browse: stdout and stderr with Mesos's keys.
    let (status, body) = get(&agent, &format!("/files/browse?path={dir}"));
    assert_eq!(status, 200, "{body}");
    let listing = json(&body);
    let entry = |name: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == format!("{dir}/{name}"))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {listing}"))
    };
    let out = entry("stdout");
    assert_eq!(out["size"], 6);
    for key in ["nlink", "mtime", "mode", "uid", "gid"] {
        assert!(!out[key].is_null(), "{key} missing in {out}");
    }
    entry("stderr");

    // Read: windows, offset=-1, the virtual path, the .json alias, download.
    let read = |query: &str| {
        let (status, body) = get(&agent, &format!("/files/read?{query}"));
        assert_eq!(status, 200, "{query}: {body}");
        let value = json(&body);
        (
            value["data"].as_str().unwrap().to_owned(),
            value["offset"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        read(&format!("path={stdout}&offset=0&length=3")),
        ("sta".into(), 0)
    );
    assert_eq!(
        read(&format!("path={stdout}&offset=2&length=100")),
        ("art\n".into(), 2)
    );
    assert_eq!(
        read(&format!("path={stdout}&offset=-1")),
        (String::new(), 6)
    );
    assert_eq!(read(&format!("path={stdout}&offset=6")), (String::new(), 6));
    let latest = format!("/frameworks/{framework}/executors/writer/runs/latest/stdout");
    assert_eq!(read(&format!("path={latest}")), ("start\n".into(), 0));
    let (status, body) = get(&agent, &format!("/files/read.json?path={dir}/stderr"));
    assert_eq!(
        (status, json(&body)["data"].clone()),
        (200, "err-start\n".into())
    );
    assert_eq!(
        get(&agent, &format!("/files/download?path={stdout}")),
        (200, "start\n".into())
    );
    let debug = json(&get(&agent, "/files/debug").1);
    assert_eq!(
        debug[format!("/frameworks/{framework}/executors/writer/runs/latest")],
        dir.as_str()
    );

    // Refusals: out of the sandbox is 404, bad parameters 400.
    std::os::unix::fs::symlink("/etc/passwd", format!("{dir}/passwd")).expect("symlink");
    for path in [
        "/etc/passwd".to_owned(),
        format!("{dir}/../../../../../../../../../../etc/passwd"),
        format!("{dir}/../../.."),
        format!("{dir}/passwd"),
        format!("{dir}/missing"),
    ] {
        for endpoint in ["read", "browse", "download"] {
            let (status, body) = get(&agent, &format!("/files/{endpoint}?path={path}"));
            assert_eq!(status, 404, "{endpoint} {path}: {body}");
            assert!(!body.contains("root:"), "{endpoint} {path} leaked: {body}");
        }
    }
    assert_eq!(get(&agent, "/files/read").0, 400);
    assert_eq!(
        get(&agent, &format!("/files/read?path={stdout}&offset=abc")).0,
        400
    );
    assert_eq!(
        get(&agent, &format!("/files/read?path={stdout}&length=-5")).0,
        400
    );
    assert_eq!(get(&agent, &format!("/files/read?path={dir}")).0, 400);

    // ctl task ls / cat while the task runs.
    let (code, listing, stderr) = ctl(&master, &["task", "ls", "writer"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(listing.lines().any(|l| l.ends_with(" stdout")), "{listing}");
    let (code, cat, stderr) = ctl(&master, &["task", "cat", "writer", "stderr"]);
    assert_eq!((code, cat.as_str()), (Some(0), "err-start\n"), "{stderr}");
    let (code, _, stderr) = ctl(&master, &["task", "log", "nosuchtask"]);
    assert_eq!(code, Some(1), "{stderr}");
    for args in [
        &["task", "cat", "writer", "nosuchfile"][..],
        &["task", "ls", "writer", "../../../../../../../.."][..],
    ] {
        let (code, out, stderr) = ctl(&master, args);
        assert_eq!(code, Some(4), "{args:?}: {out}{stderr}");
        assert!(stderr.contains("404"), "{args:?}: {stderr}");
    }

    // ctl task log --follow: prints what the task writes after ctl started; exits 0.
    let mut follower = Command::new(BIN)
        .args(["ctl", "task", "log", "writer", "--follow"])
        .arg(format!("--master={master}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctl task log --follow");
    let printed = Arc::new(Mutex::new(String::new()));
    let mut pipe = follower.stdout.take().expect("stdout");
    let sink = printed.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    let seen = |text: &str| printed.lock().unwrap().contains(text);
    poll_until(WAIT, "ctl printing the first line", || {
        seen("start\n").then_some(())
    })
    .expect("first line followed");
    assert!(!seen("after-go"));
    std::fs::write(format!("{dir}/go"), "").expect("write go");
    poll_until(
        WAIT,
        "ctl printing what the task wrote after it started",
        || seen("after-go\n").then_some(()),
    )
    .expect("appended line followed");
    fw.status("writer", TaskState::TaskFinished).await;
    let status = poll_until(WAIT, "ctl task log --follow to exit", || {
        follower.try_wait().ok().flatten()
    })
    .expect("follower exits");
    reader.join().expect("reader");
    let printed = printed.lock().unwrap().clone();
    assert!(status.success(), "{status}: {printed}");
    assert_eq!(printed, "start\nafter-go\nlast\n");

    // After the executor is gone: the virtual latest run still serves the log.
    let (code, err, stderr) = ctl(&master, &["task", "log", "writer", "--stderr"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(err, "err-start\nerr-after\n");
}

/// POST an operator call as JSON to the master: (status, answer).
fn operator(master: &str, body: &Value) -> (u16, Value) {
    let (status, text) = common::api::post_json(master, "/api/v1", &body.to_string());
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_serves_sandboxes_through_their_agents() {
    let cluster = Cluster::start(1);
    let master = cluster.master_addr.clone();
    let mut fw = Framework::subscribe(&master, "files-test").await;
    fw.launch_running("printer", "echo printed-line; exec sleep 300")
        .await;
    let (_, dir) = sandbox_of(&master, "printer");
    let stdout = format!("{dir}/stdout");
    poll_until(WAIT, "the line through the master's /files/read", || {
        let (status, body) = get(&master, &format!("/files/read?path={stdout}"));
        (status == 200 && json(&body)["data"] == "printed-line\n").then_some(())
    })
    .expect("read through the master");
    let (status, body) = get(&master, &format!("/files/browse.json?path={dir}"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/stdout"), "{body}");
    let (status, body) = get(&master, "/files/read?path=/etc/passwd");
    assert_eq!(status, 404, "{body}");

    let master_for_calls = master.clone();
    let dir_for_calls = dir.clone();
    let (listed, read) = tokio::task::spawn_blocking(move || {
        let list = serde_json::json!({"type": "LIST_FILES", "list_files": {"path": dir_for_calls}});
        let read = serde_json::json!({"type": "READ_FILE",
            "read_file": {"path": format!("{dir_for_calls}/stdout"), "offset": 2, "length": 5}});
        (
            operator(&master_for_calls, &list),
            operator(&master_for_calls, &read),
        )
    })
    .await
    .expect("calls");
    assert_eq!(listed.0, 200, "{:?}", listed.1);
    let names: Vec<String> = listed.1["list_files"]["file_infos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&stdout), "{names:?}");
    assert_eq!(read.0, 200, "{:?}", read.1);
    assert_eq!(read.1["read_file"]["size"], 13, "{:?}", read.1);
    // `data` is bytes: base64 in Mesos's JSON ("inted" = "aW50ZWQ=").
    assert_eq!(read.1["read_file"]["data"], "aW50ZWQ=", "{:?}", read.1);
}
