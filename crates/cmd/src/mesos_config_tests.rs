use std::collections::BTreeMap;

use super::*;
use crate::mesos_flags::{Effect, FLAGS, Role};

struct Case {
    what: &'static str,
    role: Role,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// The argv for clap, the ignored flags (name=value), the logging flags (name=value).
    argv: &'static [&'static str],
    ignored: &'static [&'static str],
    logging: &'static [&'static str],
}

const FILES: &[(&str, &str)] = &[
    ("/etc/mesos/zk", "zk://z1:2181,z2:2181/mesos\n"),
    ("/etc/mesos/cluster", "prod\r\n"),
];

fn run(role: Role, args: &[&str], env: &[(&str, &str)]) -> Result<Prepared, String> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup_env = |name: &str| env.get(name).cloned();
    let read_file = |path: &Path| {
        FILES
            .iter()
            .find(|(p, _)| Path::new(p) == path)
            .map(|(_, content)| content.to_string())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    prepare(
        role,
        &args,
        &Sources {
            env: &lookup_env,
            read_file: &read_file,
        },
    )
}

const CASES: &[Case] = &[
    Case {
        what: "both spellings of a value, booleans with and without no-",
        role: Role::Master,
        args: &[
            "--port",
            "5050",
            "--ip=127.0.0.1",
            "--no-log_auto_initialize",
            "--authenticate",
            "--no-hostname_lookup",
        ],
        env: &[],
        argv: &[
            "--ip=127.0.0.1",
            "--port=5050",
            "--authenticate_frameworks=true",
            "--log_auto_initialize=false",
        ],
        ignored: &["hostname_lookup=false"],
        logging: &[],
    },
    Case {
        what: "old slave names become the agent names clap takes",
        role: Role::Master,
        args: &[
            "--slave_ping_timeout=3secs",
            "--max_slave_ping_timeouts",
            "2",
        ],
        env: &[],
        argv: &["--agent_ping_timeout=3secs", "--max_agent_ping_timeouts=2"],
        ignored: &[],
        logging: &[],
    },
    Case {
        what: "MESOS_* supplies what the command line does not; the command line wins",
        role: Role::Master,
        args: &["--work_dir=/cli"],
        env: &[
            ("MESOS_WORK_DIR", "/env"),
            ("MESOS_ZK", "zk://z:2181/mesos"),
            ("MESOS_QUORUM", "2"),
            ("MESOS_CLUSTER", "prod"),
            ("MESOS_LOG_DIR", "/var/log/mesos"),
            // An agent flag and a variable of no flag: not the master's business.
            ("MESOS_ISOLATION", "posix/cpu"),
            ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
        ],
        argv: &["--quorum=2", "--work_dir=/cli", "--zk=zk://z:2181/mesos"],
        ignored: &["cluster=prod"],
        logging: &["log_dir=/var/log/mesos"],
    },
    Case {
        what: "the agent reads MESOS_* too, aliases included, name before alias",
        role: Role::Agent,
        args: &[],
        env: &[
            ("MESOS_MASTER", "127.0.0.1:5050"),
            ("MESOS_IMAGE_PROVIDERS", "docker"),
            ("MESOS_CONTAINERIZERS", "mesos"),
            ("MESOS_SLAVE_SUBSYSTEMS", "cpu"),
            ("MESOS_STRICT", "0"),
            ("MESOS_QUIET", "1"),
        ],
        argv: &[
            "--master=127.0.0.1:5050",
            "--containerizers=mesos",
            "--strict=false",
        ],
        ignored: &["agent_subsystems=cpu", "image_providers=docker"],
        logging: &["quiet=true"],
    },
    Case {
        what: "libprocess's variables come after MESOS_<NAME> and the command line",
        role: Role::Agent,
        args: &["--port=5052"],
        env: &[
            ("LIBPROCESS_IP", "10.0.0.1"),
            ("LIBPROCESS_PORT", "9999"),
            ("MESOS_HOSTNAME", "a1"),
            ("LIBPROCESS_ADVERTISE_IP", "10.0.0.2"),
            ("MESOS_ADVERTISE_IP", "10.0.0.3"),
        ],
        argv: &[
            "--advertise_ip=10.0.0.3",
            "--hostname=a1",
            "--ip=10.0.0.1",
            "--port=5052",
        ],
        ignored: &[],
        logging: &[],
    },
    Case {
        what: "file:// values are read, trailing newline trimmed, from flags and variables",
        role: Role::Master,
        args: &["--zk=file:///etc/mesos/zk"],
        env: &[("MESOS_CLUSTER", "file:///etc/mesos/cluster")],
        argv: &["--zk=zk://z1:2181,z2:2181/mesos"],
        ignored: &["cluster=prod"],
        logging: &[],
    },
    Case {
        what: "--offer_timeout goes to clap, also from MESOS_*; help and positionals pass through",
        role: Role::Master,
        args: &["--help", "extra", "--", "--anything"],
        env: &[("MESOS_HELP", "true"), ("MESOS_OFFER_TIMEOUT", "30secs")],
        argv: &[
            "--offer_timeout=30secs",
            "--help",
            "extra",
            "--",
            "--anything",
        ],
        ignored: &[],
        logging: &[],
    },
    Case {
        what: "Trireme's own flags go to clap, also from MESOS_*",
        role: Role::Agent,
        args: &["--executor_path", "/bin/e"],
        env: &[("MESOS_STATUS_UPDATE_RETRY_INTERVAL_MIN", "1secs")],
        argv: &[
            "--status_update_retry_interval_min=1secs",
            "--executor_path=/bin/e",
        ],
        ignored: &[],
        logging: &[],
    },
];

fn pairs(settings: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    settings
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[test]
fn argv_and_environment_become_clap_arguments_and_ignored_flags() {
    for case in CASES {
        let prepared = run(case.role, case.args, case.env)
            .unwrap_or_else(|e| panic!("{}: unexpected error {e}", case.what));
        assert_eq!(prepared.argv, case.argv, "{}: argv", case.what);
        assert_eq!(
            pairs(prepared.recorded()),
            case.ignored,
            "{}: ignored",
            case.what
        );
        let logging = pairs(
            prepared
                .logging
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone())),
        );
        assert_eq!(logging, case.logging, "{}: logging", case.what);
    }
}

/// Role, arguments, environment, and a part of the error.
type Refusal = (Role, &'static [&'static str], Env, &'static str);
type Env = &'static [(&'static str, &'static str)];

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let cases: &[Refusal] = &[
        (
            Role::Master,
            &["--frobnicate=1"],
            &[],
            "unknown flag --frobnicate: neither a Mesos master flag",
        ),
        (
            Role::Agent,
            &["--quorum=2"],
            &[],
            "unknown flag --quorum: neither a Mesos agent flag",
        ),
        (
            Role::Master,
            &["--isolation=posix/cpu"],
            &[],
            "unknown flag --isolation",
        ),
        (
            Role::Master,
            &["--no-zk"],
            &[],
            "--zk is not a boolean flag",
        ),
        (Role::Master, &["--no-quiet=true"], &[], "takes no value"),
        (
            Role::Master,
            &["--cluster"],
            &[],
            "flag --cluster needs a value",
        ),
        (
            Role::Master,
            &["--cluster", "--port=1"],
            &[],
            "flag --cluster needs a value",
        ),
        (Role::Master, &["--port=1", "--port=2"], &[], "given twice"),
        (
            Role::Master,
            &["--slave_ping_timeout=1secs", "--agent_ping_timeout=2secs"],
            &[],
            "given twice",
        ),
        (
            Role::Master,
            &["--offer_timeout=soon"],
            &[],
            "--offer_timeout=soon is not a duration",
        ),
        (Role::Master, &["--quiet=yes"], &[], "is not a boolean"),
        (
            Role::Master,
            &["--max_completed_frameworks=-1"],
            &[],
            "not a non-negative integer",
        ),
        (
            Role::Agent,
            &[],
            &[("MESOS_GC_DELAY", "1week")],
            "MESOS_GC_DELAY=1week is not a duration",
        ),
        (
            Role::Master,
            &["--zk=file:///missing"],
            &[],
            "--zk: cannot read the value from file:///missing",
        ),
        (
            Role::Agent,
            &[],
            &[("MESOS_ATTRIBUTES", "file:///missing")],
            "MESOS_ATTRIBUTES: cannot read",
        ),
    ];
    for (role, args, env, expected) in cases {
        match run(*role, args, env) {
            Ok(prepared) => panic!("{args:?} {env:?}: accepted as {prepared:?}"),
            Err(error) => assert!(error.contains(expected), "{args:?}: {error}"),
        }
    }
}

#[test]
fn warnings_name_the_flag_and_where_it_came_from() {
    let prepared = run(
        Role::Master,
        &[
            "--cluster=prod",
            "--offer_timeout=1mins",
            "--max_executors_per_slave=3",
        ],
        &[
            ("MESOS_ROLES", "a,b"),
            ("LIBPROCESS_NUM_WORKER_THREADS", "8"),
        ],
    )
    .unwrap();
    assert_eq!(
        prepared.warnings(),
        [
            "flag --cluster has no effect in Trireme",
            "flag --roles has no effect in Trireme (set by MESOS_ROLES)",
            "flag --max_executors_per_agent has no effect in Trireme (given as --max_executors_per_slave)",
            "variable LIBPROCESS_NUM_WORKER_THREADS has no effect in Trireme",
        ]
    );
}

/// The table and the clap structs agree: each flag clap parses is in the table as
/// implemented (or Trireme's), with the same aliases, and the other way round.
#[test]
fn the_table_lists_exactly_what_clap_parses() {
    use clap::Args as _;
    let commands = [
        (
            Role::Master,
            crate::master_cmd::MasterArgs::augment_args(clap::Command::new("m")),
        ),
        (
            Role::Agent,
            crate::agent_cmd::AgentArgs::augment_args(clap::Command::new("a")),
        ),
    ];
    for (role, command) in commands {
        let mut from_clap: Vec<Vec<String>> = command
            .get_arguments()
            .filter_map(|arg| {
                let long = arg.get_long()?;
                let mut names = vec![long.to_owned()];
                names.extend(
                    arg.get_all_aliases()
                        .unwrap_or_default()
                        .into_iter()
                        .map(String::from),
                );
                names.sort();
                Some(names)
            })
            .collect();
        from_clap.sort();
        let mut from_table: Vec<Vec<String>> = FLAGS
            .iter()
            .filter(|f| f.role.covers(role) && matches!(f.effect, Effect::Clap | Effect::Trireme))
            .map(|f| {
                let mut names: Vec<String> = f.spellings().map(String::from).collect();
                names.sort();
                names
            })
            .collect();
        from_table.sort();
        assert_eq!(from_clap, from_table, "{role:?}");
    }
}

#[test]
fn no_spelling_names_two_flags_of_a_subcommand() {
    for role in [Role::Master, Role::Agent] {
        let mut seen = std::collections::BTreeSet::new();
        for flag in FLAGS.iter().filter(|f| f.role.covers(role)) {
            for name in flag.spellings() {
                assert!(seen.insert(name), "{role:?}: --{name} twice");
                assert!(!name.starts_with("no-"), "--{name}");
            }
        }
    }
}

/// docs/configuration.md lists every flag of the table in the section of its effect.
#[test]
fn the_docs_list_every_flag_under_its_effect() {
    let doc = include_str!("../../../docs/configuration.md");
    let section = |title: &str| -> &str {
        let start = doc
            .find(&format!("\n## {title}\n"))
            .unwrap_or_else(|| panic!("no section {title}"));
        let rest = &doc[start + 4..];
        rest.find("\n## ").map_or(rest, |end| &rest[..end])
    };
    for flag in FLAGS {
        let title = match flag.effect {
            Effect::Clap | Effect::Logging | Effect::Passthrough => "Implemented",
            Effect::Ignored => "Accepted without effect",
            Effect::Trireme => "Trireme's own flags",
        };
        let prefix = if flag.kind == crate::mesos_flags::Kind::Bool {
            "--[no-]"
        } else {
            "--"
        };
        let row = format!("| `{prefix}{}`", flag.name);
        assert!(
            section(title).contains(&row),
            "docs/configuration.md: {row} under \"{title}\""
        );
    }
}

/// Implemented flags from the environment are named, so that clap's error for a bad value
/// can say where it came from.
#[test]
fn implemented_flags_from_the_environment_are_named() {
    let prepared = run(
        Role::Agent,
        &["--ip=127.0.0.1"],
        &[
            ("MESOS_PORT", "abc"),
            ("MESOS_IMAGE_PROVIDERS", "docker"),
            ("MESOS_IP", "x"),
        ],
    )
    .unwrap();
    assert_eq!(prepared.from_env, ["MESOS_PORT=abc"]);
}
