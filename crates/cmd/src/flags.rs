//! What the subcommands share: flag value parsers in Mesos's formats, and the shutdown
//! signal.

use std::time::Duration;

/// A clap `value_parser` for Mesos durations (`15secs`, `100ms`, `10mins`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    api::duration::parse(text)
}

/// Resolves on Ctrl-C or SIGTERM (Ctrl-C alone if SIGTERM cannot be watched).
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
