//! `/state`, `/version`, `/flags`, `/redirect`, `/health`, `/metrics/snapshot`.

use api::codec::ContentType;

use crate::harness::*;

#[tokio::test]
async fn version_is_numeric_dotted() {
    let master = TestMaster::start().await;
    let version = master.get_json("/version").await;
    assert_eq!(version["version"], api::MESOS_COMPATIBLE_VERSION);
    assert!(
        version["version"]
            .as_str()
            .unwrap_or("x")
            .split('.')
            .all(|p| p.parse::<u32>().is_ok())
    );
    master.stop().await;
}

#[tokio::test]
async fn health_flags_and_unknown_paths() {
    let master = TestMaster::start().await;
    for path in ["/health", "/master/health"] {
        let response = master
            .client
            .get(master.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap_or_default(), "");
    }
    let flags = master.get_json("/master/flags").await;
    assert_eq!(flags["flags"]["max_agent_ping_timeouts"], "5");
    for path in ["/nope", "/redirect/x", "/master/redirect/x"] {
        let response = master
            .client
            .get(master.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 404, "{path}");
    }
    master.stop().await;
}

#[tokio::test]
async fn redirect_points_at_this_master() {
    let master = TestMaster::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in ["/redirect", "/master/redirect"] {
        let response = client.get(master.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), 307);
        let location = response
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(location, format!("//{}", master.addr));
    }
    master.stop().await;
}

#[tokio::test]
async fn state_lists_agents_frameworks_and_metrics_count() {
    let master = TestMaster::start().await;
    let agent = FakeAgent::register(&master, "cpus:4;mem:2048;ports:[31000-32000]").await;
    let _scheduler = master
        .subscribe(ContentType::Json, framework("listed"))
        .await;
    let state = master.get_json("/master/state").await;
    for key in [
        "version",
        "id",
        "pid",
        "hostname",
        "leader",
        "leader_info",
        "flags",
        "start_time",
        "elected_time",
        "activated_slaves",
    ] {
        assert!(state.get(key).is_some(), "missing {key}");
    }
    assert_eq!(state["slaves"][0]["id"], agent.agent_id.as_str());
    assert_eq!(state["slaves"][0]["resources"]["cpus"], 4.0);
    assert_eq!(state["slaves"][0]["resources"]["ports"], "[31000-32000]");
    assert_eq!(state["slaves"][0]["active"], true);
    assert_eq!(state["frameworks"][0]["name"], "listed");
    assert_eq!(state["frameworks"][0]["active"], true);
    let metrics = master.get_json("/metrics/snapshot").await;
    assert_eq!(metrics["master/elected"], 1.0);
    assert_eq!(metrics["master/slaves_active"], 1);
    assert_eq!(metrics["master/frameworks_active"], 1);
    let summary = master.get_json("/state-summary").await;
    assert_eq!(summary["slaves"][0]["id"], agent.agent_id.as_str());
    master.stop().await;
}
