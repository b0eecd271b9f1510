//! `trireme ctl`'s write commands beyond `agent`: `framework teardown`, and the
//! maintenance writes `maintenance down|up MACHINE...` and `maintenance set-schedule FILE`.
//! Each posts one v1 operator call (JSON) to the leader's `/api/v1` (TEARDOWN,
//! START_MAINTENANCE, STOP_MAINTENANCE, UPDATE_MAINTENANCE_SCHEDULE); the master answers
//! once the change is in the registry, and the command prints nothing on success.

use serde_json::{Value, json};

use crate::ctl::{CtlError, MasterArg, Request, leader, send};

/// `trireme ctl framework ...`.
#[derive(clap::Subcommand, Debug)]
pub enum FrameworkCommand {
    /// Remove the framework: its tasks are killed and it can never subscribe again
    /// (TEARDOWN).
    Teardown(FrameworkArgs),
}

#[derive(clap::Args, Debug)]
pub struct FrameworkArgs {
    #[command(flatten)]
    master: MasterArg,
    /// The framework's id (as `trireme ctl frameworks` lists it).
    framework_id: String,
}

/// The machines of `maintenance down|up`.
#[derive(clap::Args, Debug)]
pub struct MachinesArgs {
    #[command(flatten)]
    master: MasterArg,
    /// Each machine as `HOSTNAME`, `HOSTNAME=IP` or `=IP`, as the schedule names it.
    #[arg(required = true, value_parser = machine_id)]
    machines: Vec<Value>,
}

/// `maintenance set-schedule`.
#[derive(clap::Args, Debug)]
pub struct ScheduleArgs {
    #[command(flatten)]
    master: MasterArg,
    /// A file (`-` for stdin) with the schedule's JSON, as `maintenance schedule --json`
    /// prints it: `{"windows": [{"machine_ids": [...], "unavailability": {...}}]}`.
    file: String,
}

/// A `MachineID` from `HOSTNAME[=IP]`.
fn machine_id(text: &str) -> Result<Value, String> {
    let (hostname, ip) = match text.split_once('=') {
        Some((hostname, ip)) => (hostname, Some(ip)),
        None => (text, None),
    };
    let mut id = serde_json::Map::new();
    if !hostname.is_empty() {
        id.insert("hostname".into(), json!(hostname));
    }
    match ip {
        Some(ip) if ip.parse::<std::net::IpAddr>().is_err() => {
            return Err(format!("{ip:?} is not an IP address"));
        }
        Some(ip) => {
            id.insert("ip".into(), json!(ip));
        }
        None => {}
    }
    if id.is_empty() {
        return Err("a machine needs a hostname or an IP address".into());
    }
    Ok(Value::Object(id))
}

/// `trireme ctl framework teardown ID`.
pub async fn framework(command: FrameworkCommand) -> Result<String, CtlError> {
    let FrameworkCommand::Teardown(args) = command;
    let call = json!({
        "type": "TEARDOWN",
        "teardown": { "framework_id": { "value": args.framework_id } },
    });
    post(&args.master, call).await
}

/// `trireme ctl maintenance down|up`: START_MAINTENANCE (`down`) or STOP_MAINTENANCE.
pub async fn machines(args: MachinesArgs, down: bool) -> Result<String, CtlError> {
    post(&args.master, machines_call(args.machines, down)).await
}

fn machines_call(machines: Vec<Value>, down: bool) -> Value {
    if down {
        json!({ "type": "START_MAINTENANCE", "start_maintenance": { "machines": machines } })
    } else {
        json!({ "type": "STOP_MAINTENANCE", "stop_maintenance": { "machines": machines } })
    }
}

/// `trireme ctl maintenance set-schedule FILE`: UPDATE_MAINTENANCE_SCHEDULE.
pub async fn set_schedule(args: ScheduleArgs) -> Result<String, CtlError> {
    let text = if args.file == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&args.file)
    }
    .map_err(|e| CtlError::Usage(format!("cannot read {}: {e}", args.file)))?;
    let schedule: Value = serde_json::from_str(&text)
        .map_err(|e| CtlError::Usage(format!("{} is not JSON: {e}", args.file)))?;
    if !schedule.is_object() {
        return Err(CtlError::Usage(format!(
            "{} is not a schedule: expected an object with \"windows\"",
            args.file
        )));
    }
    let call = json!({
        "type": "UPDATE_MAINTENANCE_SCHEDULE",
        "update_maintenance_schedule": { "schedule": schedule },
    });
    post(&args.master, call).await
}

/// Posts the operator `call` (JSON) to the leader's `/api/v1`; its answer's body.
pub(crate) async fn post(master: &MasterArg, call: Value) -> Result<String, CtlError> {
    let leader = leader(master).await?;
    send(&leader, &Request::Post("/api/v1".into(), call.to_string())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_are_named_by_hostname_ip_or_both() {
        assert_eq!(machine_id("h1"), Ok(json!({"hostname": "h1"})));
        assert_eq!(
            machine_id("h1=10.0.0.1"),
            Ok(json!({"hostname": "h1", "ip": "10.0.0.1"}))
        );
        assert_eq!(machine_id("=::1"), Ok(json!({"ip": "::1"})));
        assert!(machine_id("h1=nope").is_err());
        assert!(machine_id("=").is_err());
        assert!(machine_id("").is_err());
        let call = machines_call(vec![json!({"hostname": "h"})], true);
        assert_eq!(call["type"], "START_MAINTENANCE");
        assert_eq!(call["start_maintenance"]["machines"][0]["hostname"], "h");
        let call = machines_call(vec![json!({"ip": "::1"})], false);
        assert_eq!(call["stop_maintenance"]["machines"][0]["ip"], "::1");
    }
}
