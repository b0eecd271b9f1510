//! Every flag of Mesos's master and agent (apache/mesos `docs/configuration/master.md`,
//! `agent.md`, `master-and-agent.md`) and Trireme's own, with what Trireme does with it.
//! One table, read by [`crate::mesos_config`] (argv and `MESOS_*` pre-processing) and
//! documented in docs/configuration.md.

/// The end of `trireme master --help` and `trireme agent --help`.
pub const HELP: &str = "Every flag of Mesos's master and agent is accepted as well (those Trireme \
does not implement with a warning that they have no effect), as --name=value, --name value or \
--[no-]name; each flag not given is read from MESOS_<NAME>; a value file:///path is read from \
that file. See docs/configuration.md.";

/// The flags whose value is a credentials file (a `file://` value stays a path).
pub const CREDENTIAL_FILES: &[&str] = &["credentials", "http_credentials", "credential"];

/// Which subcommand takes a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `trireme master` only.
    Master,
    /// `trireme agent` only.
    Agent,
    /// Both `trireme master` and `trireme agent`.
    Both,
}

impl Role {
    /// Whether a flag of this role is taken by `subcommand` (`Master` or `Agent`).
    pub fn covers(self, subcommand: Role) -> bool {
        self == Role::Both || self == subcommand
    }
}

/// How a flag's value is written and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--name`, `--no-name`, `--name=true|false`; never takes the next argument.
    Bool,
    /// A Mesos duration (`15secs`).
    Duration,
    /// A non-negative integer.
    Int,
    /// Any text (clap checks what Trireme implements).
    Text,
}

/// What Trireme does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Implemented: handed to the subcommand's clap parser as `--name=value`.
    Clap,
    /// Trireme's own flag (no such flag in Mesos), handed to clap as `--name=value`.
    Trireme,
    /// Implemented by the logging set-up (`--log_dir`, `--quiet`, `--logging_level`).
    Logging,
    /// Left to clap as written (`--help`, `--version`); not read from the environment.
    Passthrough,
    /// Accepted and checked; logged once at start-up as having no effect.
    Ignored,
}

/// One flag: its Mesos name, older spellings, who takes it, its kind and effect.
#[derive(Debug, PartialEq, Eq)]
pub struct Flag {
    /// The name Mesos documents first (`agent_ping_timeout`).
    pub name: &'static str,
    /// Other spellings (`slave_ping_timeout`).
    pub aliases: &'static [&'static str],
    /// Master, agent or both.
    pub role: Role,
    /// How the value is written.
    pub kind: Kind,
    /// What Trireme does with it.
    pub effect: Effect,
}

impl Flag {
    /// The name and its aliases, the name first.
    pub fn spellings(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

const fn flag(
    name: &'static str,
    aliases: &'static [&'static str],
    role: Role,
    kind: Kind,
    effect: Effect,
) -> Flag {
    Flag {
        name,
        aliases,
        role,
        kind,
        effect,
    }
}

/// The flag `name` (or one of its aliases) of `subcommand`, with its index in [`FLAGS`].
pub fn lookup(subcommand: Role, name: &str) -> Option<(usize, &'static Flag)> {
    FLAGS
        .iter()
        .enumerate()
        .find(|(_, f)| f.role.covers(subcommand) && f.spellings().any(|s| s == name))
}

use Effect::{Clap, Ignored, Logging, Passthrough, Trireme};
use Kind::{Bool, Duration, Int, Text};
use Role::{Agent, Both, Master};

/// All flags, in the order of Mesos's docs, then Trireme's own.
#[rustfmt::skip]
pub static FLAGS: &[Flag] = &[
    flag("advertise_ip", &[], Both, Text, Clap),
    flag("advertise_port", &[], Master, Text, Clap),
    flag("advertise_port", &[], Agent, Text, Ignored),
    flag("authenticate_http_readonly", &[], Both, Bool, Clap),
    flag("authenticate_http_readwrite", &[], Both, Bool, Clap),
    flag("firewall_rules", &[], Both, Text, Ignored),
    flag("domain", &[], Both, Text, Ignored),
    flag("help", &[], Both, Bool, Passthrough),
    flag("hooks", &[], Both, Text, Ignored),
    flag("hostname", &[], Both, Text, Clap),
    flag("hostname_lookup", &[], Both, Bool, Ignored),
    flag("http_authenticators", &[], Both, Text, Clap),
    flag("ip", &[], Both, Text, Clap),
    flag("ip_discovery_command", &[], Both, Text, Ignored),
    flag("modules", &[], Both, Text, Ignored),
    flag("modules_dir", &[], Both, Text, Ignored),
    flag("port", &[], Both, Text, Clap),
    flag("version", &[], Both, Bool, Passthrough),
    flag("zk_session_timeout", &[], Both, Duration, Clap),
    flag("quiet", &[], Both, Bool, Logging),
    flag("log_dir", &[], Both, Text, Logging),
    flag("logbufsecs", &[], Both, Int, Ignored),
    flag("logging_level", &[], Both, Text, Logging),
    flag("initialize_driver_logging", &[], Both, Bool, Ignored),
    flag("external_log_file", &[], Both, Text, Ignored),
    flag("quorum", &[], Master, Text, Clap),
    flag("work_dir", &[], Both, Text, Clap),
    flag("zk", &[], Master, Text, Clap),
    flag("acls", &[], Both, Text, Ignored),
    flag("agent_ping_timeout", &["slave_ping_timeout"], Master, Duration, Clap),
    flag("agent_removal_rate_limit", &["slave_removal_rate_limit"], Master, Text, Clap),
    flag("agent_reregister_timeout", &["slave_reregister_timeout"], Master, Duration, Clap),
    flag("allocation_interval", &[], Master, Duration, Clap),
    flag("allocator", &[], Master, Text, Ignored),
    flag("min_allocatable_resources", &[], Master, Text, Ignored),
    flag("authenticate_agents", &["authenticate_slaves"], Master, Bool, Clap),
    flag("authenticate_frameworks", &["authenticate"], Master, Bool, Clap),
    flag("authenticate_http_frameworks", &[], Master, Bool, Clap),
    flag("authenticators", &[], Master, Text, Ignored),
    flag("authentication_v0_timeout", &[], Master, Duration, Ignored),
    flag("authorizers", &[], Master, Text, Ignored),
    flag("cluster", &[], Master, Text, Ignored),
    flag("credentials", &[], Master, Text, Clap),
    flag("fair_sharing_excluded_resource_names", &[], Master, Text, Ignored),
    flag("filter_gpu_resources", &[], Master, Bool, Ignored),
    flag("framework_sorter", &[], Master, Text, Ignored),
    flag("http_framework_authenticators", &[], Master, Text, Clap),
    flag("log_auto_initialize", &[], Master, Bool, Clap),
    flag("master_contender", &[], Master, Text, Ignored),
    flag("master_detector", &[], Both, Text, Ignored),
    flag("max_agent_ping_timeouts", &["max_slave_ping_timeouts"], Master, Int, Clap),
    flag("max_completed_frameworks", &[], Master, Int, Ignored),
    flag("max_completed_tasks_per_framework", &[], Master, Int, Ignored),
    flag("max_operator_event_stream_subscribers", &[], Master, Int, Ignored),
    flag("max_unreachable_tasks_per_framework", &[], Master, Int, Ignored),
    flag("offer_timeout", &[], Master, Duration, Clap),
    flag("offer_constraints_re2_max_mem", &[], Master, Text, Ignored),
    flag("offer_constraints_re2_max_program_size", &[], Master, Int, Ignored),
    flag("publish_per_framework_metrics", &[], Master, Bool, Ignored),
    flag("rate_limits", &[], Master, Text, Ignored),
    flag("recovery_agent_removal_limit", &["recovery_slave_removal_limit"], Master, Text, Clap),
    flag("registry", &[], Master, Text, Clap),
    flag("registry_fetch_timeout", &[], Master, Duration, Clap),
    flag("registry_gc_interval", &[], Master, Duration, Clap),
    flag("registry_max_agent_age", &[], Master, Duration, Clap),
    flag("registry_max_agent_count", &[], Master, Int, Clap),
    flag("registry_store_timeout", &[], Master, Duration, Clap),
    flag("require_agent_domain", &[], Master, Bool, Ignored),
    flag("roles", &[], Master, Text, Ignored),
    flag("root_submissions", &[], Master, Bool, Ignored),
    flag("role_sorter", &[], Master, Text, Ignored),
    flag("webui_dir", &[], Master, Text, Ignored),
    flag("weights", &[], Master, Text, Clap),
    flag("whitelist", &[], Master, Text, Ignored),
    flag("max_executors_per_agent", &["max_executors_per_slave"], Master, Text, Ignored),
    flag("master", &[], Agent, Text, Clap),
    flag("agent_features", &[], Agent, Text, Ignored),
    flag("agent_subsystems", &["slave_subsystems"], Agent, Text, Ignored),
    flag("effective_capabilities", &[], Agent, Text, Ignored),
    flag("bounding_capabilities", &[], Agent, Text, Ignored),
    flag("appc_simple_discovery_uri_prefix", &[], Agent, Text, Ignored),
    flag("appc_store_dir", &[], Agent, Text, Ignored),
    flag("attributes", &[], Agent, Text, Clap),
    flag("authenticate_http_executors", &[], Agent, Bool, Ignored),
    flag("authenticatee", &[], Agent, Text, Ignored),
    flag("authentication_backoff_factor", &[], Agent, Duration, Ignored),
    flag("authentication_timeout_min", &[], Agent, Duration, Ignored),
    flag("authentication_timeout_max", &[], Agent, Duration, Ignored),
    flag("authorizer", &[], Agent, Text, Ignored),
    flag("cgroups_cpu_enable_pids_and_tids_count", &[], Agent, Bool, Ignored),
    flag("cgroups_destroy_timeout", &[], Agent, Duration, Ignored),
    flag("cgroups_enable_cfs", &[], Agent, Bool, Clap),
    flag("cgroups_hierarchy", &[], Agent, Text, Clap),
    flag("cgroups_limit_swap", &[], Agent, Bool, Clap),
    flag("cgroups_net_cls_primary_handle", &[], Agent, Text, Ignored),
    flag("cgroups_net_cls_secondary_handles", &[], Agent, Text, Ignored),
    flag("allowed_devices", &[], Agent, Text, Ignored),
    flag("cgroups_root", &[], Agent, Text, Clap),
    flag("check_agent_port_range_only", &[], Agent, Bool, Ignored),
    flag("container_disk_watch_interval", &[], Agent, Duration, Ignored),
    flag("container_logger", &[], Agent, Text, Ignored),
    flag("container_ports_isolated_range", &[], Agent, Text, Ignored),
    flag("container_ports_watch_interval", &[], Agent, Duration, Ignored),
    flag("containerizers", &["containerizer"], Agent, Text, Clap),
    flag("credential", &[], Agent, Text, Clap),
    flag("default_container_dns", &[], Agent, Text, Ignored),
    flag("default_container_info", &[], Agent, Text, Ignored),
    flag("default_role", &[], Agent, Text, Ignored),
    flag("default_container_shm_size", &[], Agent, Text, Ignored),
    flag("disallow_sharing_agent_ipc_namespace", &[], Agent, Bool, Ignored),
    flag("disallow_sharing_agent_pid_namespace", &[], Agent, Bool, Ignored),
    flag("disk_profile_adaptor", &[], Agent, Text, Ignored),
    flag("disk_watch_interval", &[], Agent, Duration, Ignored),
    flag("docker", &[], Agent, Text, Ignored),
    flag("docker_config", &[], Agent, Text, Ignored),
    flag("docker_ignore_runtime", &[], Agent, Bool, Ignored),
    flag("docker_kill_orphans", &[], Agent, Bool, Ignored),
    flag("docker_mesos_image", &[], Agent, Text, Ignored),
    flag("docker_registry", &[], Agent, Text, Ignored),
    flag("docker_remove_delay", &[], Agent, Duration, Ignored),
    flag("docker_socket", &[], Agent, Text, Ignored),
    flag("docker_stop_timeout", &[], Agent, Duration, Ignored),
    flag("docker_store_dir", &[], Agent, Text, Ignored),
    flag("docker_volume_checkpoint_dir", &[], Agent, Text, Ignored),
    flag("docker_volume_chown", &[], Agent, Bool, Ignored),
    flag("domain_socket_location", &[], Agent, Text, Ignored),
    flag("enforce_container_disk_quota", &[], Agent, Bool, Ignored),
    flag("enforce_container_ports", &[], Agent, Bool, Ignored),
    flag("executor_environment_variables", &[], Agent, Text, Ignored),
    flag("executor_registration_timeout", &[], Agent, Duration, Clap),
    flag("executor_reregistration_timeout", &[], Agent, Duration, Clap),
    flag("executor_reregistration_retry_interval", &[], Agent, Duration, Ignored),
    flag("max_completed_executors_per_framework", &[], Agent, Int, Ignored),
    flag("jwt_secret_key", &[], Agent, Text, Ignored),
    flag("executor_shutdown_grace_period", &[], Agent, Duration, Clap),
    flag("fetcher_cache_dir", &[], Agent, Text, Ignored),
    flag("fetcher_cache_size", &[], Agent, Text, Ignored),
    flag("fetcher_stall_timeout", &[], Agent, Duration, Ignored),
    flag("frameworks_home", &[], Agent, Text, Ignored),
    flag("gc_delay", &[], Agent, Duration, Ignored),
    flag("gc_disk_headroom", &[], Agent, Text, Ignored),
    flag("gc_non_executor_container_sandboxes", &[], Agent, Bool, Ignored),
    flag("hadoop_home", &[], Agent, Text, Ignored),
    flag("host_path_volume_force_creation", &[], Agent, Text, Ignored),
    flag("http_credentials", &[], Both, Text, Clap),
    flag("http_command_executor", &[], Agent, Bool, Ignored),
    flag("http_executor_domain_sockets", &[], Agent, Bool, Ignored),
    flag("http_heartbeat_interval", &[], Agent, Duration, Ignored),
    flag("image_providers", &[], Agent, Text, Ignored),
    flag("image_provisioner_backend", &[], Agent, Text, Ignored),
    flag("image_gc_config", &[], Agent, Text, Ignored),
    flag("ip6", &[], Agent, Text, Ignored),
    flag("ip6_discovery_command", &[], Agent, Text, Ignored),
    flag("isolation", &[], Agent, Text, Clap),
    flag("launcher", &[], Agent, Text, Ignored),
    flag("launcher_dir", &[], Agent, Text, Clap),
    flag("nvidia_gpu_devices", &[], Agent, Text, Ignored),
    flag("network_cni_plugins_dir", &[], Agent, Text, Ignored),
    flag("network_cni_config_dir", &[], Agent, Text, Ignored),
    flag("network_cni_root_dir_persist", &[], Agent, Bool, Ignored),
    flag("network_cni_metrics", &[], Agent, Bool, Ignored),
    flag("oversubscribed_resources_interval", &[], Agent, Duration, Ignored),
    flag("perf_duration", &[], Agent, Duration, Ignored),
    flag("perf_events", &[], Agent, Text, Ignored),
    flag("perf_interval", &[], Agent, Duration, Ignored),
    flag("qos_controller", &[], Agent, Text, Ignored),
    flag("qos_correction_interval_min", &[], Agent, Duration, Ignored),
    flag("reconfiguration_policy", &[], Agent, Text, Ignored),
    flag("recover", &[], Agent, Text, Clap),
    flag("recovery_timeout", &[], Agent, Duration, Clap),
    flag("registration_backoff_factor", &[], Agent, Duration, Clap),
    flag("resource_estimator", &[], Agent, Text, Ignored),
    flag("resources", &[], Agent, Text, Clap),
    flag("resource_provider_config_dir", &[], Agent, Text, Ignored),
    flag("csi_plugin_config_dir", &[], Agent, Text, Ignored),
    flag("revocable_cpu_low_priority", &[], Agent, Bool, Ignored),
    flag("runtime_dir", &[], Agent, Text, Ignored),
    flag("sandbox_directory", &[], Agent, Text, Ignored),
    flag("strict", &[], Agent, Bool, Clap),
    flag("secret_resolver", &[], Agent, Text, Ignored),
    flag("switch_user", &[], Agent, Bool, Ignored),
    flag("ephemeral_ports_per_container", &[], Agent, Int, Ignored),
    flag("eth0_name", &[], Agent, Text, Ignored),
    flag("lo_name", &[], Agent, Text, Ignored),
    flag("egress_rate_limit_per_container", &[], Agent, Text, Ignored),
    flag("egress_unique_flow_per_container", &[], Agent, Bool, Ignored),
    flag("egress_flow_classifier_parent", &[], Agent, Text, Ignored),
    flag("network_enable_socket_statistics_summary", &[], Agent, Bool, Ignored),
    flag("network_enable_socket_statistics_details", &[], Agent, Bool, Ignored),
    flag("network_enable_snmp_statistics", &[], Agent, Bool, Ignored),
    flag("seccomp_config_dir", &[], Agent, Text, Ignored),
    flag("seccomp_profile_name", &[], Agent, Text, Ignored),
    flag("xfs_project_range", &[], Agent, Text, Ignored),
    // Trireme's own flags.
    flag("log_replicas", &[], Master, Text, Trireme),
    flag("log_port", &[], Master, Int, Trireme),
    flag("heartbeat_interval", &[], Master, Duration, Trireme),
    flag("status_update_retry_interval_min", &[], Agent, Duration, Trireme),
    flag("status_update_retry_interval_max", &[], Agent, Duration, Trireme),
    flag("executor_path", &[], Agent, Text, Trireme),
];
