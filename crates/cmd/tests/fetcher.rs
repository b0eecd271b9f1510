//! The fetcher through one real master and agent (issue 15): a task's `command.uris` are in
//! its sandbox when it starts (downloaded over HTTP from a server in this test, copied from
//! a local path, made executable, renamed, unpacked), and a URI that cannot be fetched fails
//! the task with REASON_CONTAINER_LAUNCH_FAILED and a message naming it.

mod common;

use api::v1::command_info::Uri;
use api::v1::task_status::Reason;
use api::v1::{CommandInfo, TaskInfo, TaskState};
use common::Cluster;
use common::framework::{self, Framework};

/// Serves `files` (name, contents) over HTTP on a loopback port; anything else is 404.
async fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let mut app = axum::Router::new();
    for (name, body) in files {
        app = app.route(
            &format!("/{name}"),
            axum::routing::get(move || {
                let body = body.clone();
                async move { body }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A `.tgz` holding `app/hello.txt`.
fn tarball(dir: &std::path::Path) -> Vec<u8> {
    std::fs::create_dir_all(dir.join("app")).expect("mkdir");
    std::fs::write(dir.join("app/hello.txt"), "hello\n").expect("write");
    let status = std::process::Command::new("tar")
        .args(["-czf", "app.tgz", "app"])
        .current_dir(dir)
        .status()
        .expect("tar");
    assert!(status.success());
    std::fs::read(dir.join("app.tgz")).expect("read the tarball")
}

fn uri(value: String) -> Uri {
    Uri {
        value,
        ..Default::default()
    }
}

fn with_uris(id: &str, offer: &api::v1::Offer, command: &str, uris: Vec<Uri>) -> TaskInfo {
    let mut task = framework::task(id, offer, command);
    task.command = Some(CommandInfo {
        uris,
        ..task.command.unwrap_or_default()
    });
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_artifacts_are_in_the_sandbox_when_the_task_starts() {
    let files = tempfile::tempdir().expect("tmp");
    let base = serve(vec![
        ("app.tgz", tarball(files.path())),
        ("run.sh", b"#!/bin/sh\necho fetched-and-ran\n".to_vec()),
    ])
    .await;
    std::fs::write(files.path().join("note.txt"), "note\n").expect("write");
    let mut run = uri(format!("{base}/run.sh"));
    run.executable = Some(true);
    let mut note = uri(format!("file://{}/note.txt", files.path().display()));
    note.output_file = Some("conf/note".into());
    let uris = vec![uri(format!("{base}/app.tgz")), run, note];

    let cluster = Cluster::start(1);
    let mut fw = Framework::subscribe(&cluster.master_addr, "fetcher-test").await;
    let offer = fw.offer().await;
    let command = "./run.sh && grep -q hello app/hello.txt && grep -q note conf/note";
    let task = with_uris("fetching", &offer, command, uris);
    fw.client
        .launch(vec![offer.id.clone()], vec![task], None)
        .await
        .expect("launch");
    let done = fw.status("fetching", TaskState::TaskFinished).await;
    assert_eq!(done.message(), "Command exited with status 0", "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_that_cannot_be_fetched_fails_the_task_naming_it() {
    let base = serve(Vec::new()).await;
    let cluster = Cluster::start(1);
    let mut fw = Framework::subscribe(&cluster.master_addr, "fetcher-test").await;
    let offer = fw.offer().await;
    let missing = format!("{base}/missing.tgz");
    let task = with_uris("unfetched", &offer, "true", vec![uri(missing.clone())]);
    fw.client
        .launch(vec![offer.id.clone()], vec![task], None)
        .await
        .expect("launch");
    let failed = fw.status("unfetched", TaskState::TaskFailed).await;
    assert_eq!(failed.reason(), Reason::ContainerLaunchFailed, "{failed:?}");
    assert!(
        failed.message().contains(&missing) && failed.message().contains("404"),
        "{failed:?}"
    );
    assert!(
        !fw.seen
            .iter()
            .any(|s| s.task_id.value == "unfetched" && s.state() == TaskState::TaskRunning),
        "the task ran without its artifact: {:?}",
        fw.seen
    );
}
