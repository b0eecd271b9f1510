//! Sandboxes through the master: `/files/{browse,read,download}` (and `.json`) and the
//! operator API's LIST_FILES and READ_FILE pass the request to the agent whose sandbox the
//! path names. A sandbox path names its agent as Mesos lays them out:
//! `<work_dir>/slaves/<agent id>/frameworks/...` (the `directory` of an executor in the
//! agent's `/state`), or `/slaves/<agent id>/frameworks/...` without the agent's work
//! directory (passed on as the agent's virtual `/frameworks/...`: the web UI's form). The
//! agent decides what it serves (docs/agent.md, "Files").

use std::time::Duration;

use api::v1::master::{Call, response};
use axum::Router;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;

use super::{App, ask, text};
use crate::state::{Doc, OperatorOk};

const AGENT_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn routes() -> Router<App> {
    Router::new().route("/files/{op}", get(proxy))
}

/// The agent id a sandbox path names (`.../slaves/<id>/frameworks/...`).
fn agent_of(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    while let Some(part) = parts.next() {
        if part == "slaves" {
            let id = parts.next().filter(|id| !id.is_empty())?;
            return (parts.next() == Some("frameworks")).then_some(id);
        }
    }
    None
}

/// The path as the agent takes it: `/slaves/<id>/frameworks/...` (a sandbox named by its
/// agent, without the agent's work directory) becomes the agent's virtual
/// `/frameworks/...`; a real path is passed as is.
fn agent_path(path: &str) -> String {
    let Some(rest) = path.strip_prefix("/slaves/") else {
        return path.to_owned();
    };
    match rest.split_once('/') {
        Some((_, tail)) if tail.starts_with("frameworks/") => format!("/{tail}"),
        _ => path.to_owned(),
    }
}

/// `host:port` of the agent, from the leader's `/slaves`.
async fn agent_addr(app: &App, path: &str) -> Result<String, Response> {
    let Some(id) = agent_of(path) else {
        return Err(text(
            StatusCode::NOT_FOUND,
            format!("'{path}' is not in an agent's sandbox (.../slaves/<agent id>/frameworks/...)"),
        ));
    };
    let doc = Doc::Slaves {
        slave_id: Some(id.to_owned()),
    };
    let json = match ask(app, |reply| crate::driver::Command::ReadState {
        doc,
        reply,
    })
    .await?
    {
        Ok(json) => json,
        Err(e) => return Err(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    let slaves: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    slaves["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == id)
        .and_then(|s| s["pid"].as_str())
        .and_then(|pid| pid.split_once('@').map(|(_, addr)| addr.to_owned()))
        .ok_or_else(|| {
            text(
                StatusCode::NOT_FOUND,
                format!("No agent '{id}' is registered"),
            )
        })
}

fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default()
    })
}

async fn agent_get(
    addr: &str,
    op: &str,
    query: &[(&str, String)],
) -> Result<reqwest::Response, Response> {
    let query = serde_urlencoded::to_string(query).unwrap_or_default();
    client()
        .get(format!("http://{addr}/files/{op}?{query}"))
        .timeout(AGENT_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            text(
                StatusCode::BAD_GATEWAY,
                format!("The agent at {addr} did not answer: {e}"),
            )
        })
}

/// `/files/<op>?path=...`: the agent's answer, as is.
async fn proxy(
    State(app): State<App>,
    Path(op): Path<String>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(response) = app.not_leading(&uri) {
        return response;
    }
    let name = op.strip_suffix(".json").unwrap_or(&op);
    if !matches!(name, "browse" | "read" | "download") {
        return text(StatusCode::NOT_FOUND, format!("No files endpoint '{op}'"));
    }
    let Some(path) = query
        .iter()
        .find(|(k, _)| k == "path")
        .map(|(_, v)| v.clone())
    else {
        return text(StatusCode::BAD_REQUEST, "Expecting 'path' to be present");
    };
    let addr = match agent_addr(&app, &path).await {
        Ok(addr) => addr,
        Err(response) => return response,
    };
    let pairs: Vec<(&str, String)> = query
        .iter()
        .map(|(k, v)| match k.as_str() {
            "path" => ("path", agent_path(v)),
            _ => (k.as_str(), v.clone()),
        })
        .collect();
    let answer = match agent_get(&addr, name, &pairs).await {
        Ok(answer) => answer,
        Err(response) => return response,
    };
    let mut out = Response::builder().status(answer.status().as_u16());
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(value) = answer.headers().get(&name) {
            out = out.header(name, value);
        }
    }
    out.body(axum::body::Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, e.to_string()))
}

/// The agent's answer as JSON, or the error it gave as the caller's error.
async fn agent_json(
    addr: &str,
    op: &str,
    query: &[(&str, String)],
) -> Result<serde_json::Value, Response> {
    let answer = agent_get(addr, op, query).await?;
    let status = answer.status();
    let body = answer
        .text()
        .await
        .map_err(|e| text(StatusCode::BAD_GATEWAY, e.to_string()))?;
    if !status.is_success() {
        return Err(text(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            body,
        ));
    }
    serde_json::from_str(&body).map_err(|e| {
        text(
            StatusCode::BAD_GATEWAY,
            format!("The agent answered {op} with bad JSON: {e}"),
        )
    })
}

/// `ls -l`'s mode (`-rw-r--r--`, `drwxr-xr-x`) as `st_mode` bits.
fn mode_bits(mode: &str) -> u32 {
    let kind = match mode.chars().next() {
        Some('d') => 0o040000,
        Some('l') => 0o120000,
        _ => 0o100000,
    };
    let perms = mode
        .chars()
        .skip(1)
        .take(9)
        .enumerate()
        .filter(|(_, c)| *c != '-')
        .fold(0u32, |acc, (i, _)| acc | (1 << (8 - i)));
    kind | perms
}

/// LIST_FILES: the agent's `/files/browse` as `FileInfo`s.
pub(super) async fn list_files(app: &App, call: &Call) -> Result<OperatorOk, Response> {
    let Some(path) = call.list_files.as_ref().map(|l| l.path.clone()) else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'list_files' to be present",
        ));
    };
    let addr = agent_addr(app, &path).await?;
    let entries = agent_json(&addr, "browse", &[("path", agent_path(&path))]).await?;
    let file_infos = entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| api::v1::FileInfo {
            path: e["path"].as_str().unwrap_or_default().to_owned(),
            nlink: e["nlink"].as_i64().and_then(|n| i32::try_from(n).ok()),
            size: e["size"].as_u64(),
            mtime: e["mtime"].as_f64().map(|s| api::v1::TimeInfo {
                nanoseconds: (s * 1e9) as i64,
            }),
            mode: e["mode"].as_str().map(mode_bits),
            uid: e["uid"].as_str().map(str::to_owned),
            gid: e["gid"].as_str().map(str::to_owned),
        })
        .collect();
    let mut r = api::v1::master::Response::default();
    r.set_type(response::Type::ListFiles);
    r.list_files = Some(response::ListFiles { file_infos });
    Ok(OperatorOk::Response(Box::new(r)))
}

/// READ_FILE: the agent's `/files/read` window, and the file's size.
pub(super) async fn read_file(app: &App, call: &Call) -> Result<OperatorOk, Response> {
    let Some(read) = call.read_file.as_ref() else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'read_file' to be present",
        ));
    };
    let addr = agent_addr(app, &read.path).await?;
    let path = ("path", agent_path(&read.path));
    // The size first (offset -1), then the window.
    let size = agent_json(&addr, "read", &[path.clone(), ("offset", "-1".into())]).await?["offset"]
        .as_u64()
        .unwrap_or(0);
    let mut query = vec![path, ("offset", read.offset.to_string())];
    if let Some(length) = read.length {
        query.push(("length", length.to_string()));
    }
    let window = agent_json(&addr, "read", &query).await?;
    let data = window["data"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    let mut r = api::v1::master::Response::default();
    r.set_type(response::Type::ReadFile);
    r.read_file = Some(response::ReadFile { size, data });
    Ok(OperatorOk::Response(Box::new(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_name_their_agent() {
        let path = "/var/lib/mesos/slaves/abc-S0/frameworks/f/executors/e/runs/latest/stdout";
        assert_eq!(agent_of(path), Some("abc-S0"));
        assert_eq!(agent_of("/slaves/abc-S0/frameworks/f"), Some("abc-S0"));
        assert_eq!(agent_of("/frameworks/f/executors/e/runs/latest"), None);
        assert_eq!(agent_of("/etc/slaves/x"), None);
        assert_eq!(agent_of("/slaves//frameworks"), None);
    }

    #[test]
    fn paths_named_by_agent_become_the_agents_virtual_paths() {
        assert_eq!(
            agent_path("/slaves/a-S0/frameworks/f/executors/e/runs/latest/stdout"),
            "/frameworks/f/executors/e/runs/latest/stdout"
        );
        let real = "/var/lib/mesos/slaves/a-S0/frameworks/f/executors/e/runs/c/stdout";
        assert_eq!(agent_path(real), real);
    }

    #[test]
    fn ls_modes_become_mode_bits() {
        assert_eq!(mode_bits("-rw-r--r--"), 0o100644);
        assert_eq!(mode_bits("drwxr-xr-x"), 0o040755);
        assert_eq!(mode_bits("lrwxrwxrwx"), 0o120777);
    }
}
