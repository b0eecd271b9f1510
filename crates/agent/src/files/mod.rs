//! The agent's `/files/*` endpoints (Mesos's `/files/browse`, `/files/read`,
//! `/files/download`, `/files/debug`, each also as `<name>.json`): operators and tools
//! (`mesos-tail`, `trireme ctl task log`) read sandboxes through them. What a path may
//! name is decided in [`resolve`], what a read answers in [`read`]; these handlers do the
//! disk I/O on a blocking thread. Only files inside sandboxes are served: anything else,
//! including a symlink out of a sandbox, is 404 with a reason; bad parameters are 400.

pub mod read;
pub mod resolve;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::driver::Event;
use read::{BadRequest, Entry, Window};
use resolve::{Layout, NotFound};

#[derive(Clone)]
struct FilesState {
    tx: mpsc::UnboundedSender<Event>,
    /// The work directory, canonical first (and as configured, if that differs).
    work_dirs: Arc<Vec<PathBuf>>,
}

/// The `/files/*` routes, each under its Mesos name and its `.json` alias.
pub(crate) fn router(tx: mpsc::UnboundedSender<Event>, flags: Arc<Value>) -> Router {
    let work_dirs = Arc::new(work_dirs(&flags));
    Router::new()
        .route("/files/browse", get(browse))
        .route("/files/browse.json", get(browse))
        .route("/files/read", get(read_file))
        .route("/files/read.json", get(read_file))
        .route("/files/download", get(download))
        .route("/files/download.json", get(download))
        .route("/files/debug", get(debug))
        .route("/files/debug.json", get(debug))
        .with_state(FilesState { tx, work_dirs })
}

/// The configured work directory, canonical first (the agent created it before serving).
fn work_dirs(flags: &Value) -> Vec<PathBuf> {
    let configured = PathBuf::from(flags["flags"]["work_dir"].as_str().unwrap_or_default());
    match std::fs::canonicalize(&configured) {
        Ok(canonical) if canonical != configured && configured.is_absolute() => {
            vec![canonical, configured]
        }
        Ok(canonical) => vec![canonical],
        Err(_) => vec![configured],
    }
}

/// A refusal or failure, as the response it becomes.
#[derive(Debug)]
enum Failure {
    BadRequest(String),
    NotFound(String),
    Internal(String),
    Answered(Box<Response>),
}

impl From<NotFound> for Failure {
    fn from(refusal: NotFound) -> Failure {
        Failure::NotFound(refusal.0)
    }
}

impl From<BadRequest> for Failure {
    fn from(refusal: BadRequest) -> Failure {
        Failure::BadRequest(refusal.0)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            Failure::BadRequest(reason) => (StatusCode::BAD_REQUEST, reason),
            Failure::NotFound(reason) => (StatusCode::NOT_FOUND, reason),
            Failure::Internal(reason) => (StatusCode::INTERNAL_SERVER_ERROR, reason),
            Failure::Answered(response) => return *response,
        };
        let content = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
        (status, content, reason).into_response()
    }
}

/// What a request is resolved against: the work directory (canonical first) and the
/// agent's id (for virtual paths; empty before it registered).
struct Context {
    work_dirs: Vec<PathBuf>,
    agent_id: String,
}

async fn context(app: &FilesState) -> Result<Context, Failure> {
    let agent_id = crate::http::agent_id_of(&app.tx)
        .await
        .map_err(|r| Failure::Answered(Box::new(r)))?
        .unwrap_or_default();
    Ok(Context {
        work_dirs: app.work_dirs.to_vec(),
        agent_id,
    })
}

/// The query's `path`, required by every endpoint but `/files/debug`.
fn path_param(query: &HashMap<String, String>) -> Result<String, Failure> {
    query
        .get("path")
        .cloned()
        .ok_or_else(|| Failure::BadRequest("Expecting 'path' query parameter".into()))
}

/// Runs `work` on a blocking thread with the request's context.
async fn blocking<T: Send + 'static>(
    app: &FilesState,
    work: impl FnOnce(&Context) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let context = context(app).await?;
    tokio::task::spawn_blocking(move || work(&context))
        .await
        .map_err(|e| Failure::Internal(format!("the file operation failed: {e}")))?
}

/// The canonical file `path` names, refused unless it lies inside a sandbox.
fn resolve_path(context: &Context, path: &str) -> Result<PathBuf, Failure> {
    let layout = Layout {
        work_dirs: context.work_dirs.clone(),
        agent_id: &context.agent_id,
    };
    let mut located = resolve::locate(path, &layout)?;
    if let Some(runs) = context
        .work_dirs
        .iter()
        .find_map(|dir| resolve::latest_position(dir, &located))
    {
        located = replace_latest(&runs, &located)?;
    }
    let missing = |e: std::io::Error| Failure::NotFound(format!("'{path}': {e}"));
    let canonical = std::fs::canonicalize(&located).map_err(missing)?;
    if !resolve::inside_sandbox(&context.work_dirs[0], &canonical) {
        return Err(Failure::NotFound(format!(
            "'{path}' leads out of its sandbox"
        )));
    }
    Ok(canonical)
}

/// `runs/latest/...` with `latest` replaced by the newest run directory (the executor's
/// current container), unless a `latest` link exists on disk.
fn replace_latest(runs: &Path, located: &Path) -> Result<PathBuf, Failure> {
    let latest = runs.join("latest");
    if latest.exists() {
        return Ok(located.to_path_buf());
    }
    let newest = std::fs::read_dir(runs)
        .map_err(|e| Failure::NotFound(format!("no runs in {}: {e}", runs.display())))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| Failure::NotFound(format!("no runs in {}", runs.display())))?;
    let rest = located.strip_prefix(&latest).unwrap_or(Path::new(""));
    Ok(newest.join(rest))
}

/// `/files/read?path=&offset=&length=`: `{"data": ..., "offset": N}` (a window of the
/// file, read by seeking; see [`read::window`]).
async fn read_file(State(app): State<FilesState>, Query(query): Query<Params>) -> Response {
    json_answer(read_answer(&app, query).await)
}

type Params = HashMap<String, String>;

async fn read_answer(app: &FilesState, query: Params) -> Result<Value, Failure> {
    let path = path_param(&query)?;
    let offset = read::parse_param("offset", query.get("offset").map(String::as_str))?;
    let length = read::parse_param("length", query.get("length").map(String::as_str))?;
    blocking(app, move |context| {
        let file = resolve_path(context, &path)?;
        read_window(&file, &path, offset, length)
    })
    .await
}

fn read_window(
    file: &Path,
    path: &str,
    offset: Option<i64>,
    length: Option<i64>,
) -> Result<Value, Failure> {
    let io = |e: std::io::Error| Failure::Internal(format!("cannot read '{path}': {e}"));
    let mut handle = std::fs::File::open(file).map_err(io)?;
    let metadata = handle.metadata().map_err(io)?;
    if metadata.is_dir() {
        return Err(Failure::BadRequest(format!(
            "Cannot read '{path}': it is a directory"
        )));
    }
    match read::window(offset, length, metadata.len()) {
        Window::Size(size) => Ok(serde_json::json!({"data": "", "offset": size})),
        Window::Bytes { offset, len } => {
            handle.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut data = Vec::new();
            handle.take(len).read_to_end(&mut data).map_err(io)?;
            data.truncate(read::complete_utf8(&data));
            let data = String::from_utf8_lossy(&data);
            Ok(serde_json::json!({"data": data, "offset": offset}))
        }
    }
}

/// `/files/browse?path=`: the directory's entries (or the file's own), Mesos's keys.
async fn browse(State(app): State<FilesState>, Query(query): Query<Params>) -> Response {
    let answer = async {
        let path = path_param(&query)?;
        blocking(&app, move |context| {
            list(&resolve_path(context, &path)?, &path)
        })
        .await
    };
    json_answer(answer.await)
}

fn list(target: &Path, path: &str) -> Result<Value, Failure> {
    let io = |e: std::io::Error| Failure::Internal(format!("cannot browse '{path}': {e}"));
    let metadata = std::fs::metadata(target).map_err(io)?;
    if !metadata.is_dir() {
        return Ok(Value::Array(vec![entry(path.to_owned(), &metadata)]));
    }
    let mut entries: Vec<(String, std::fs::Metadata)> = std::fs::read_dir(target)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let entries = entries
        .iter()
        .map(|(name, metadata)| entry(read::child_path(path, name), metadata))
        .collect();
    Ok(Value::Array(entries))
}

fn entry(path: String, metadata: &std::fs::Metadata) -> Value {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::User::from_uid(metadata.uid().into())
        .ok()
        .flatten()
        .map_or_else(|| metadata.uid().to_string(), |u| u.name);
    let gid = nix::unistd::Group::from_gid(metadata.gid().into())
        .ok()
        .flatten()
        .map_or_else(|| metadata.gid().to_string(), |g| g.name);
    Entry {
        path,
        nlink: metadata.nlink(),
        size: metadata.size(),
        mtime: metadata.mtime(),
        mode: metadata.mode(),
        uid: &uid,
        gid: &gid,
    }
    .json()
}

/// Bytes per chunk of a download.
const DOWNLOAD_CHUNK: usize = 64 << 10;

/// `/files/download?path=`: the whole file, streamed, as an attachment.
async fn download(State(app): State<FilesState>, Query(query): Query<Params>) -> Response {
    let answer = async {
        let path = path_param(&query)?;
        let shown = path.clone();
        let file = blocking(&app, move |context| resolve_path(context, &path)).await?;
        let io = |e: std::io::Error| Failure::Internal(format!("cannot read '{shown}': {e}"));
        let handle = tokio::fs::File::open(&file).await.map_err(io)?;
        if handle.metadata().await.map_err(io)?.is_dir() {
            return Err(Failure::BadRequest(format!(
                "Cannot download '{shown}': it is a directory"
            )));
        }
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().replace('"', ""))
            .unwrap_or_default();
        Ok((handle, name))
    };
    let (handle, name) = match answer.await {
        Ok(found) => found,
        Err(failure) => return failure.into_response(),
    };
    let stream = futures_util::stream::unfold(handle, |mut handle| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0; DOWNLOAD_CHUNK];
        match handle.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(chunk)), handle))
            }
            Err(e) => Some((Err(e), handle)),
        }
    });
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `/files/debug`: the sandboxes served now, each virtual path to its directory.
async fn debug(State(app): State<FilesState>) -> Response {
    match crate::http::state_of(&app.tx).await {
        Ok(state) => json_answer(Ok(attached(&state))),
        Err(response) => response,
    }
}

/// Each live executor's directory, under its real path and its virtual `runs/latest` path.
fn attached(state: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let items = |v: &Value| v.as_array().cloned().unwrap_or_default();
    for framework in items(&state["frameworks"]) {
        for executor in items(&framework["executors"]) {
            let Some(directory) = executor["directory"].as_str() else {
                continue;
            };
            let fid = framework["id"].as_str().unwrap_or_default();
            let eid = executor["id"].as_str().unwrap_or_default();
            let latest = format!("/frameworks/{fid}/executors/{eid}/runs/latest");
            out.insert(latest, directory.into());
            out.insert(directory.to_owned(), directory.into());
        }
    }
    Value::Object(out)
}

/// The JSON answer, or the failure's response.
fn json_answer(answer: Result<Value, Failure>) -> Response {
    match answer {
        Ok(value) => {
            let content = [(header::CONTENT_TYPE, "application/json")];
            (StatusCode::OK, content, value.to_string()).into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sandbox in a temporary work directory, with a file and a symlink out of it.
    fn sandbox() -> (tempfile::TempDir, Context, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let work = std::fs::canonicalize(dir.path()).unwrap();
        let run = work.join("slaves/A/frameworks/F/executors/E/runs/C");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("stdout"), "0123456789").unwrap();
        std::fs::write(work.join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(work.join("secret"), run.join("out")).unwrap();
        std::os::unix::fs::symlink("/etc", run.join("etc")).unwrap();
        let context = Context {
            work_dirs: vec![work],
            agent_id: "A".into(),
        };
        (dir, context, run)
    }

    fn data(value: &Value) -> (&str, u64) {
        (
            value["data"].as_str().unwrap(),
            value["offset"].as_u64().unwrap(),
        )
    }

    #[test]
    fn reads_seek_to_their_window() {
        let (_dir, context, run) = sandbox();
        let path = format!("{}/stdout", run.display());
        let file = resolve_path(&context, &path).unwrap();
        let value = read_window(&file, &path, Some(3), Some(4)).unwrap();
        assert_eq!(data(&value), ("3456", 3));
        let value = read_window(&file, &path, Some(-1), None).unwrap();
        assert_eq!(data(&value), ("", 10));
        let value = read_window(&file, &path, Some(12), None).unwrap();
        assert_eq!(data(&value), ("", 12));
        let value = read_window(&file, &path, None, None).unwrap();
        assert_eq!(data(&value), ("0123456789", 0));
        let dir = resolve_path(&context, &run.display().to_string()).unwrap();
        assert!(matches!(
            read_window(&dir, "d", None, None),
            Err(Failure::BadRequest(_))
        ));
    }

    /// A sparse 3 GiB file: reads seek past 4 GiB-unsafe offsets to its tail, and an
    /// unbounded read answers at most `MAX_READ`.
    #[test]
    fn big_files_are_read_by_window() {
        use std::io::Write;
        let (_dir, context, run) = sandbox();
        let path = format!("{}/big", run.display());
        let size: u64 = 3 << 30;
        let mut file = std::fs::File::create(&path).unwrap();
        file.set_len(size - 4).unwrap();
        file.seek(SeekFrom::End(0)).unwrap();
        file.write_all(b"tail").unwrap();
        drop(file);
        let resolved = resolve_path(&context, &path).unwrap();
        let value = read_window(&resolved, &path, Some((size - 4) as i64), None).unwrap();
        assert_eq!(data(&value), ("tail", size - 4));
        let value = read_window(&resolved, &path, Some(-1), None).unwrap();
        assert_eq!(data(&value), ("", size));
        let value = read_window(&resolved, &path, None, None).unwrap();
        assert_eq!(data(&value).0.len() as u64, read::MAX_READ);
    }

    #[test]
    fn latest_and_virtual_paths_reach_the_run() {
        let (_dir, context, run) = sandbox();
        let expected = run.join("stdout");
        for path in [
            "/frameworks/F/executors/E/runs/latest/stdout".to_owned(),
            "/frameworks/F/executors/E/runs/C/stdout".to_owned(),
            format!("{}/x/../stdout", run.display()),
        ] {
            let resolved = resolve_path(&context, &path);
            assert_eq!(resolved.ok().as_deref(), Some(expected.as_path()), "{path}");
        }
    }

    #[test]
    fn symlinks_and_unknown_paths_out_of_the_sandbox_are_404() {
        let (_dir, context, run) = sandbox();
        for path in [
            format!("{}/out", run.display()),
            format!("{}/etc/passwd", run.display()),
            format!("{}/missing", run.display()),
            "/etc/passwd".to_owned(),
            format!("{}/../../../../../../../../secret", run.display()),
        ] {
            assert!(
                matches!(resolve_path(&context, &path), Err(Failure::NotFound(_))),
                "{path} was served"
            );
        }
    }

    #[test]
    fn browse_lists_entries_by_name() {
        let (_dir, context, run) = sandbox();
        let path = run.display().to_string();
        let dir = resolve_path(&context, &path).unwrap();
        let listing = list(&dir, &path).unwrap();
        let paths: Vec<&str> = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = ["etc", "out", "stdout"]
            .iter()
            .map(|n| format!("{path}/{n}"))
            .collect();
        assert_eq!(paths, expected);
        let stdout = &listing[2];
        assert_eq!(stdout["size"], 10);
        assert_eq!(stdout["mode"].as_str().unwrap().chars().next(), Some('-'));
        let debug = attached(
            &serde_json::json!({"frameworks": [{"id": "F", "executors": [
            {"id": "E", "directory": path}]}]}),
        );
        assert_eq!(
            debug["/frameworks/F/executors/E/runs/latest"],
            path.as_str()
        );
    }
}
