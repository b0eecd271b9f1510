//! `trireme ctl events [--json]`: follows the leader's operator event stream (`POST /api/v1`
//! `{"type":"SUBSCRIBE"}`, RecordIO of JSON `mesos.v1.master.Event`s) and prints one line
//! per event: a summary for people, or the event's JSON with `--json`. When the stream ends
//! (the leader failed over or went away) it finds the leader again and subscribes anew: the
//! new stream starts with a fresh SUBSCRIBED. It gives up, exit 3, when no leader answers
//! for [`RECONNECT_FOR`].

use std::time::Duration;

use serde_json::Value;

use super::{CtlError, MasterArg, Request, answered, leader};

/// `trireme ctl events`.
#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    master: MasterArg,
    /// Print each event as its JSON (one line) instead of a summary.
    #[arg(long)]
    json: bool,
}

/// How long the stream is looked for again before `events` gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// The largest event accepted (a SUBSCRIBED carries the whole cluster state).
const MAX_EVENT_BYTES: usize = 1 << 30;

/// Follows the stream until no leader can be found; returns only with the failure.
pub(super) async fn follow(args: &EventsArgs) -> Result<String, CtlError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| CtlError::Other(format!("cannot make an HTTP client: {e}")))?;
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        let error = match subscribe(&client, &args.master).await {
            Ok(response) => {
                failing_since = None;
                match print_events(response, args.json).await {
                    Ok(()) => CtlError::NoLeader("the master closed the event stream".into()),
                    Err(e) => e,
                }
            }
            Err(e @ (CtlError::Usage(_) | CtlError::Answered { .. })) => return Err(e),
            Err(e) => e,
        };
        let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
        if since.elapsed() > RECONNECT_FOR {
            return Err(error);
        }
        eprintln!("trireme ctl events: {error}; subscribing again");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// SUBSCRIBE on the leader (redirects followed): the 200 answer whose body is the stream.
async fn subscribe(
    client: &reqwest::Client,
    master: &MasterArg,
) -> Result<reqwest::Response, CtlError> {
    let first = leader(master).await?;
    let request = Request::Post("/api/v1".into(), r#"{"type":"SUBSCRIBE"}"#.into());
    Ok(answered(client, &first, &request).await?.1)
}

/// Prints the stream's events as they arrive; `Ok` when it ends cleanly.
async fn print_events(mut response: reqwest::Response, json: bool) -> Result<(), CtlError> {
    let mut decoder = api::recordio::Decoder::new(MAX_EVENT_BYTES);
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| CtlError::NoLeader(format!("the event stream broke: {e}")))?;
        let Some(chunk) = chunk else {
            return Ok(());
        };
        decoder.push(&chunk);
        while let Some(record) = decoder
            .next()
            .map_err(|e| CtlError::Other(format!("the event stream is not RecordIO: {e}")))?
        {
            let event: Value = serde_json::from_slice(&record)
                .map_err(|e| CtlError::Other(format!("an event is not JSON: {e}")))?;
            if json {
                println!("{event}");
            } else {
                println!("{}", summary(&event));
            }
        }
    }
}

fn field(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// One line for people: the event type, then what it is about.
pub fn summary(event: &Value) -> String {
    let kind = field(&event["type"]);
    let detail = match kind {
        "SUBSCRIBED" => {
            let state = &event["subscribed"]["get_state"];
            let count = |v: &Value| v.as_array().map_or(0, Vec::len);
            format!(
                "agents={} frameworks={} tasks={} heartbeat={}s",
                count(&state["get_agents"]["agents"]),
                count(&state["get_frameworks"]["frameworks"]),
                count(&state["get_tasks"]["tasks"]),
                event["subscribed"]["heartbeat_interval_seconds"]
            )
        }
        "TASK_ADDED" => {
            let task = &event["task_added"]["task"];
            format!(
                "{} framework={} agent={} {}",
                field(&task["task_id"]["value"]),
                field(&task["framework_id"]["value"]),
                field(&task["agent_id"]["value"]),
                field(&task["state"])
            )
        }
        "TASK_UPDATED" => {
            let update = &event["task_updated"];
            format!(
                "{} framework={} {}",
                field(&update["status"]["task_id"]["value"]),
                field(&update["framework_id"]["value"]),
                field(&update["state"])
            )
        }
        "AGENT_ADDED" => {
            let info = &event["agent_added"]["agent"]["agent_info"];
            format!(
                "{} {}",
                field(&info["id"]["value"]),
                field(&info["hostname"])
            )
        }
        "AGENT_REMOVED" => field(&event["agent_removed"]["agent_id"]["value"]).to_owned(),
        "FRAMEWORK_ADDED" | "FRAMEWORK_UPDATED" => {
            let key = kind.to_ascii_lowercase();
            let framework = &event[key.as_str()]["framework"];
            let info = &framework["framework_info"];
            format!(
                "{} {} active={}",
                field(&info["id"]["value"]),
                field(&info["name"]),
                framework["active"]
            )
        }
        "FRAMEWORK_REMOVED" => {
            let info = &event["framework_removed"]["framework_info"];
            format!("{} {}", field(&info["id"]["value"]), field(&info["name"]))
        }
        _ => String::new(),
    };
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_event_and_its_subject() {
        let added = serde_json::json!({
            "type": "TASK_ADDED",
            "task_added": {"task": {"task_id": {"value": "t1"}, "framework_id": {"value": "f"},
                "agent_id": {"value": "a"}, "state": "TASK_STAGING"}}
        });
        assert_eq!(
            summary(&added),
            "TASK_ADDED t1 framework=f agent=a TASK_STAGING"
        );
        let removed = serde_json::json!({
            "type": "AGENT_REMOVED", "agent_removed": {"agent_id": {"value": "a"}}
        });
        assert_eq!(summary(&removed), "AGENT_REMOVED a");
        let updated = serde_json::json!({
            "type": "FRAMEWORK_UPDATED",
            "framework_updated": {"framework": {"framework_info": {"id": {"value": "f"},
                "name": "n"}, "active": false}}
        });
        assert_eq!(summary(&updated), "FRAMEWORK_UPDATED f n active=false");
        let beat = serde_json::json!({"type": "HEARTBEAT"});
        assert_eq!(summary(&beat), "HEARTBEAT");
        let subscribed = serde_json::json!({
            "type": "SUBSCRIBED",
            "subscribed": {"get_state": {"get_agents": {"agents": [{}]}},
                "heartbeat_interval_seconds": 15.0}
        });
        assert_eq!(
            summary(&subscribed),
            "SUBSCRIBED agents=1 frameworks=0 tasks=0 heartbeat=15.0s"
        );
    }
}
