//! Mesos's configuration rules for `trireme master` and `trireme agent`, applied to argv
//! before clap sees it (docs/configuration.md):
//! - every flag of [`crate::mesos_flags::FLAGS`] is accepted as `--name=value`,
//!   `--name value`, and for booleans `--name` and `--no-name`; any other flag is an error;
//! - a flag not on the command line comes from `MESOS_<NAME>` (`--ip`, `--port`,
//!   `--advertise_ip`, `--advertise_port` then from libprocess's `LIBPROCESS_<NAME>`);
//! - a value `file:///path` is the content of that file (its trailing newline trimmed).
//!
//! Pure: the environment and the file system come in as functions, so the tests are
//! tables.

use std::collections::BTreeMap;
use std::path::Path;

use crate::mesos_flags::{Effect, FLAGS, Flag, Kind, Role, lookup};

/// Where values that are not on the command line come from.
pub struct Sources<'a> {
    /// An environment variable's value (`std::env::var`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// A file's content (`std::fs::read_to_string`).
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

/// One flag's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The flag.
    pub flag: &'static Flag,
    /// How it was given: `--slave_ping_timeout` or `MESOS_ISOLATION`.
    pub given_as: String,
    /// The value, read from its file if it was `file://`.
    pub value: String,
}

/// The result of the pre-processing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// Arguments for the subcommand's clap parser (after the subcommand's name).
    pub argv: Vec<String>,
    /// `--log_dir`, `--quiet`, `--logging_level`, by name.
    pub logging: BTreeMap<&'static str, String>,
    /// Flags accepted without effect, in table order.
    pub ignored: Vec<Setting>,
    /// The implemented flags taken from the environment, `MESOS_PORT=abc`, for clap's
    /// error messages.
    pub from_env: Vec<String>,
    /// libprocess variables that are set and have no effect.
    pub ignored_variables: Vec<&'static str>,
}

impl Prepared {
    /// The warnings to log once at start-up, one per flag (and libprocess variable)
    /// without effect.
    pub fn warnings(&self) -> Vec<String> {
        let variables = self
            .ignored_variables
            .iter()
            .map(|var| format!("variable {var} has no effect in Trireme"));
        self.ignored
            .iter()
            .map(|s| {
                let source = if s.given_as == format!("--{}", s.flag.name) {
                    String::new()
                } else if s.given_as.starts_with("--") {
                    format!(" (given as {})", s.given_as)
                } else {
                    format!(" (set by {})", s.given_as)
                };
                format!("flag --{} has no effect in Trireme{source}", s.flag.name)
            })
            .chain(variables)
            .collect()
    }

    /// The accepted-without-effect flags as `(name, value)`.
    pub fn recorded(&self) -> Vec<(String, String)> {
        self.ignored
            .iter()
            .map(|s| (s.flag.name.to_owned(), s.value.clone()))
            .collect()
    }

    /// What `/flags` shows besides the subcommand's own flags: the logging flags and the
    /// flags accepted without effect.
    pub fn for_flags_endpoint(&self) -> Vec<(String, String)> {
        let logging = self
            .logging
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()));
        logging.chain(self.recorded()).collect()
    }
}

/// Applies the rules to `args` (the arguments after `master` or `agent`).
pub fn prepare(role: Role, args: &[String], sources: &Sources<'_>) -> Result<Prepared, String> {
    let (mut given, passthrough) = from_command_line(role, args)?;
    for (index, flag) in FLAGS.iter().enumerate() {
        if !flag.role.covers(role) || flag.effect == Effect::Passthrough {
            continue;
        }
        if given.contains_key(&index) {
            continue;
        }
        if let Some((given_as, value)) = from_environment(flag, sources.env) {
            given.insert(index, (given_as, value));
        }
    }
    let mut prepared = Prepared::default();
    for (index, (given_as, raw)) in given {
        let flag = &FLAGS[index];
        let value = resolve(flag, &given_as, &raw, sources.read_file)?;
        match flag.effect {
            Effect::Clap | Effect::Trireme => {
                if !given_as.starts_with("--") {
                    prepared.from_env.push(format!("{given_as}={raw}"));
                }
                prepared.argv.push(format!("--{}={value}", flag.name));
            }
            Effect::Logging => {
                prepared.logging.insert(flag.name, value);
            }
            Effect::Ignored => prepared.ignored.push(Setting {
                flag,
                given_as,
                value,
            }),
            Effect::Passthrough => {}
        }
    }
    prepared.argv.extend(passthrough);
    prepared.ignored_variables = LIBPROCESS_IGNORED
        .iter()
        .copied()
        .filter(|var| (sources.env)(var).is_some())
        .collect();
    Ok(prepared)
}

/// Flags given on the command line, by table index: `(as given, raw value)`; and the
/// arguments left to clap as they are.
type CommandLine = (BTreeMap<usize, (String, String)>, Vec<String>);

fn from_command_line(role: Role, args: &[String]) -> Result<CommandLine, String> {
    let mut given = BTreeMap::new();
    let mut passthrough = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            passthrough.push(arg.clone());
            passthrough.extend(rest.by_ref().cloned());
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            passthrough.push(arg.clone());
            continue;
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let (index, flag, negated) = find(role, name)?;
        if flag.effect == Effect::Passthrough {
            passthrough.push(arg.clone());
            continue;
        }
        let value = match (flag.kind, negated, inline) {
            (Kind::Bool, true, Some(_)) => {
                return Err(format!(
                    "--{name} takes no value (it means --{}=false)",
                    flag.name
                ));
            }
            (Kind::Bool, true, None) => "false".to_owned(),
            (Kind::Bool, false, None) => "true".to_owned(),
            (_, _, Some(value)) => value.to_owned(),
            (_, _, None) => match rest.next() {
                Some(next) if !next.starts_with("--") => next.clone(),
                _ => return Err(format!("flag --{name} needs a value (--{name}=VALUE)")),
            },
        };
        if let Some((earlier, _)) = given.insert(index, (format!("--{name}"), value)) {
            return Err(format!(
                "flag --{} is given twice on the command line ({earlier} and --{name})",
                flag.name
            ));
        }
    }
    Ok((given, passthrough))
}

/// The flag `name` names for `role` (its index in [`FLAGS`]), and whether it was spelled
/// `no-<boolean>`.
fn find(role: Role, name: &str) -> Result<(usize, &'static Flag, bool), String> {
    if let Some((index, flag)) = lookup(role, name) {
        return Ok((index, flag, false));
    }
    if let Some((index, flag)) = name.strip_prefix("no-").and_then(|n| lookup(role, n)) {
        if flag.kind == Kind::Bool {
            return Ok((index, flag, true));
        }
        return Err(format!("--{name}: --{} is not a boolean flag", flag.name));
    }
    let subcommand = match role {
        Role::Agent => "agent",
        _ => "master",
    };
    Err(format!(
        "unknown flag --{name}: neither a Mesos {subcommand} flag nor one of Trireme's (see `trireme {subcommand} --help` and docs/configuration.md)"
    ))
}

/// libprocess's variables, read after `MESOS_<NAME>` for these flags.
const LIBPROCESS: &[&str] = &["ip", "port", "advertise_ip", "advertise_port"];

/// libprocess's other variables (apache/mesos `docs/configuration/libprocess.md`): accepted,
/// no effect.
const LIBPROCESS_IGNORED: &[&str] = &[
    "LIBPROCESS_ENABLE_PROFILER",
    "LIBPROCESS_METRICS_SNAPSHOT_ENDPOINT_RATE_LIMIT",
    "LIBPROCESS_NUM_WORKER_THREADS",
    "LIBPROCESS_REQUIRE_PEER_ADDRESS_IP_MATCH",
];

/// `MESOS_<NAME>` for the name and each alias, then `LIBPROCESS_<NAME>` where libprocess
/// has one: `(variable, value)`.
fn from_environment(flag: &Flag, env: &dyn Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let mesos = flag
        .spellings()
        .map(|name| format!("MESOS_{}", name.to_ascii_uppercase()));
    let libprocess = LIBPROCESS
        .contains(&flag.name)
        .then(|| format!("LIBPROCESS_{}", flag.name.to_ascii_uppercase()));
    mesos
        .chain(libprocess)
        .find_map(|var| env(&var).map(|value| (var, value)))
}

/// The value of `raw` (read from its file if `file://`), checked against the flag's kind
/// and written as clap takes it.
fn resolve(
    flag: &Flag,
    given_as: &str,
    raw: &str,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<String, String> {
    let value = match raw.strip_prefix("file://") {
        // Credentials files stay paths: `crate::secrets` checks who may read them.
        Some(_) if crate::mesos_flags::CREDENTIAL_FILES.contains(&flag.name) => raw.to_owned(),
        Some(path) => {
            let content = read_file(Path::new(path))
                .map_err(|e| format!("{given_as}: cannot read the value from {raw}: {e}"))?;
            content.trim_end_matches(['\n', '\r']).to_owned()
        }
        None => raw.to_owned(),
    };
    let invalid = |what: &str| format!("{given_as}={value} is not {what}");
    match flag.kind {
        Kind::Bool => match value.as_str() {
            "true" | "1" => Ok("true".to_owned()),
            "false" | "0" => Ok("false".to_owned()),
            _ => Err(invalid("a boolean (true or false)")),
        },
        Kind::Duration => match crate::flags::parse_duration(&value) {
            Ok(_) => Ok(value),
            Err(e) => Err(format!("{}: {e}", invalid("a duration (e.g. 15secs)"))),
        },
        Kind::Int => match value.parse::<u64>() {
            Ok(_) => Ok(value),
            Err(_) => Err(invalid("a non-negative integer")),
        },
        Kind::Text => Ok(value),
    }
}

#[cfg(test)]
#[path = "mesos_config_tests.rs"]
mod tests;
