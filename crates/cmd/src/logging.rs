//! Tracing setup; only this crate initialises it. `TRIREME_LOG` takes an env-filter
//! directive (default `info`). Logs go to stderr so stdout stays for a command's output.
//!
//! Mesos's logging flags (docs/configuration.md, "Logging"): `--log_dir=DIR` also writes
//! `DIR/<program>.INFO`, `.WARNING` and `.ERROR` (each with the lines at or above its
//! level, appended), `--logging_level=INFO|WARNING|ERROR` is the lowest level logged, and
//! `--quiet` turns stderr off (the files stay).
//!
//! The filter is reloadable: the master's SET_LOGGING_LEVEL raises the verbosity for a while
//! through [`FilterControl`] (level 0: the filter as started, 1: `debug`, 2 and up: `trace`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tracing::Level;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The master's log control over the reloadable filter: verbosity 0 is the directive the
/// process started with.
struct FilterControl {
    handle: reload::Handle<EnvFilter, Registry>,
    original: String,
}

impl master::LogControl for FilterControl {
    fn apply(&self, level: u32) -> Result<(), String> {
        let directive = match level {
            0 => self.original.as_str(),
            1 => "debug",
            _ => "trace",
        };
        let filter = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())
    }
}

/// Sets up logging from the logging flags (by name: `log_dir`, `quiet`, `logging_level`)
/// for `program` (`trireme-master`: the files' names).
pub fn init(flags: &BTreeMap<&'static str, String>, program: &str) -> anyhow::Result<()> {
    let original = std::env::var("TRIREME_LOG")
        .ok()
        .filter(|d| EnvFilter::try_new(d).is_ok())
        .unwrap_or_else(|| "info".to_owned());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&original));
    let lowest = match flags.get("logging_level").map(String::as_str) {
        None | Some("INFO") => Level::INFO,
        Some("WARNING") => Level::WARN,
        Some("ERROR") => Level::ERROR,
        Some(other) => {
            anyhow::bail!("--logging_level={other} is not one of INFO, WARNING, ERROR")
        }
    };
    // Below INFO (TRIREME_LOG=debug) goes where INFO goes, unless --logging_level is higher.
    let stderr_level = if lowest == Level::INFO {
        Level::TRACE
    } else {
        lowest
    };
    let quiet = flags.get("quiet").is_some_and(|q| q == "true");
    let mut writer = if quiet {
        BoxMakeWriter::new(std::io::sink)
    } else {
        BoxMakeWriter::new(std::io::stderr.with_max_level(stderr_level))
    };
    let log_dir = flags.get("log_dir");
    if let Some(dir) = log_dir {
        writer = with_files(writer, Path::new(dir), program, lowest)?;
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(log_dir.is_none() && !quiet && std::io::stderr().is_terminal())
        .with_target(false);
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        master::install_log_control(Arc::new(FilterControl { handle, original }));
    }
    Ok(())
}

/// `writer` and the files `<dir>/<program>.INFO|WARNING|ERROR` at or above `lowest`.
fn with_files(
    writer: BoxMakeWriter,
    dir: &Path,
    program: &str,
    lowest: Level,
) -> anyhow::Result<BoxMakeWriter> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--log_dir: cannot create {}", dir.display()))?;
    let open = |suffix: &str| -> anyhow::Result<Arc<std::fs::File>> {
        let path = dir.join(format!("{program}.{suffix}"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("--log_dir: cannot open {}", path.display()))?;
        Ok(Arc::new(file))
    };
    let error = open("ERROR")?.with_max_level(Level::ERROR);
    let mut writer = BoxMakeWriter::new(writer.and(error));
    if lowest >= Level::WARN {
        let warning = open("WARNING")?.with_max_level(Level::WARN);
        writer = BoxMakeWriter::new(writer.and(warning));
    }
    if lowest >= Level::INFO {
        let info = open("INFO")?.with_max_level(Level::INFO);
        writer = BoxMakeWriter::new(writer.and(info));
    }
    Ok(writer)
}
