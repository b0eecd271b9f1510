//! Unit tests of the pure cgroups decisions.

use super::*;

const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const UNIFIED: &str = "\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

const COMOUNTED: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
";

fn hier() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
}

fn settings(cpu: bool, mem: bool) -> Settings {
    Settings::new(Isolators {
        cpu,
        mem,
        pids: false,
    })
}

#[test]
fn isolation_names_parse_and_unknown_ones_are_refused() {
    let on = parse_isolation("cgroups/cpu,cgroups/mem").unwrap();
    assert!(on.cpu && on.mem && !on.pids);
    assert!(!parse_isolation("posix/cpu,posix/mem").unwrap().any());
    assert!(parse_isolation("cgroups/pids").unwrap().pids);
    let err = parse_isolation("cgroups/cpu,cgroups/bogus").unwrap_err();
    assert!(err.contains("'cgroups/bogus'"), "{err}");
}

#[test]
fn v1_controllers_mounted_apart_are_found_on_a_hybrid_host() {
    let layout = detect_layout(HYBRID, &hier(), &["cpu", "memory", "pids"]).unwrap();
    let Layout::V1(mounts) = &layout else {
        panic!("{layout:?}")
    };
    assert_eq!(mounts["cpu"], PathBuf::from("/sys/fs/cgroup/cpu"));
    assert_eq!(mounts["memory"], PathBuf::from("/sys/fs/cgroup/memory"));
    assert_eq!(mounts["pids"], PathBuf::from("/sys/fs/cgroup/pids"));
    assert_eq!(
        container_dirs(&layout, "mesos", "c1"),
        vec![
            PathBuf::from("/sys/fs/cgroup/cpu/mesos/c1"),
            PathBuf::from("/sys/fs/cgroup/memory/mesos/c1"),
            PathBuf::from("/sys/fs/cgroup/pids/mesos/c1"),
        ]
    );
}

#[test]
fn comounted_v1_controllers_share_one_directory() {
    let layout = detect_layout(COMOUNTED, &hier(), &["cpu", "memory"]).unwrap();
    assert_eq!(
        container_dirs(&layout, "mesos", "c1"),
        vec![
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/mesos/c1"),
            PathBuf::from("/sys/fs/cgroup/memory/mesos/c1"),
        ]
    );
}

#[test]
fn a_unified_host_is_v2_and_a_missing_controller_is_an_error() {
    let layout = detect_layout(UNIFIED, &hier(), &["cpu", "memory"]).unwrap();
    assert_eq!(layout, Layout::V2(hier()));
    assert_eq!(
        container_dirs(&layout, "mesos", "c1"),
        vec![PathBuf::from("/sys/fs/cgroup/mesos/c1")]
    );
    let err = detect_layout(COMOUNTED, &hier(), &["cpu", "pids"]).unwrap_err();
    assert!(err.contains("pids"), "{err}");
    assert!(detect_layout("", &hier(), &["cpu"]).is_err());
}

fn scalar(name: &str, value: f64) -> v1::Resource {
    v1::Resource {
        name: name.to_owned(),
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    }
}

#[test]
fn limits_sum_the_executor_and_task_resources() {
    let r = [
        scalar("cpus", 0.1),
        scalar("mem", 32.0),
        scalar("cpus", 0.5),
        scalar("disk", 9.0),
    ];
    let limits = limits_from(&r);
    assert!((limits.cpus - 0.6).abs() < 1e-9);
    assert_eq!(limits.mem_mb, 32.0);
}

#[test]
fn v1_writes_shares_memory_limit_and_cfs_swap_when_asked() {
    let layout = detect_layout(HYBRID, &hier(), &["cpu", "memory"]).unwrap();
    let limits = Limits {
        cpus: 0.5,
        mem_mb: 64.0,
    };
    let files = |s: &Settings| -> Vec<(&str, String)> {
        limit_writes(&layout, s, limits)
            .into_iter()
            .map(|w| (w.file, w.value))
            .collect()
    };
    let plain = files(&settings(true, true));
    assert!(plain.contains(&("cpu.shares", "512".into())));
    assert!(plain.contains(&("memory.limit_in_bytes", (64u64 << 20).to_string())));
    assert!(!plain.iter().any(|(f, _)| f.starts_with("cpu.cfs")));
    let mut all = settings(true, true);
    all.enable_cfs = true;
    all.limit_swap = true;
    let full = files(&all);
    assert!(full.contains(&("cpu.cfs_quota_us", "50000".into())));
    assert!(full.contains(&("cpu.cfs_period_us", "100000".into())));
    assert!(full.contains(&("memory.memsw.limit_in_bytes", (64u64 << 20).to_string())));
}

#[test]
fn shares_have_a_floor_and_v2_uses_weight_and_max() {
    assert_eq!(cpu_shares(0.0), 2);
    assert_eq!(cpu_shares(2.0), 2048);
    assert_eq!(cpu_weight(0.0), 1);
    assert_eq!(cpu_weight(1.0), 39);
    let mut s = settings(true, true);
    s.enable_cfs = true;
    let writes = limit_writes(
        &Layout::V2(hier()),
        &s,
        Limits {
            cpus: 1.0,
            mem_mb: 32.0,
        },
    );
    let files: Vec<(&str, String)> = writes.into_iter().map(|w| (w.file, w.value)).collect();
    assert!(files.contains(&("cpu.weight", "39".into())));
    assert!(files.contains(&("cpu.max", "100000 100000".into())));
    assert!(files.contains(&("memory.max", (32u64 << 20).to_string())));
    // Without memory asked for, no memory limit (zero would kill the container).
    let none = limit_writes(
        &Layout::V2(hier()),
        &s,
        Limits {
            cpus: 1.0,
            mem_mb: 0.0,
        },
    );
    assert!(!none.iter().any(|w| w.file == "memory.max"));
}

#[test]
fn oom_counters_are_read_from_both_versions() {
    assert!(oom_v1("oom_kill_disable 1\nunder_oom 1\noom_kill 0\n"));
    assert!(!oom_v1("oom_kill_disable 1\nunder_oom 0\noom_kill 0\n"));
    assert!(oom_v1("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"));
    assert!(oom_v2("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"));
    assert!(!oom_v2("low 0\nhigh 0\nmax 4\noom 0\noom_kill 0\n"));
    let message = memory_limitation_message(
        Limits {
            cpus: 1.0,
            mem_mb: 32.0,
        },
        Some(32 << 20),
    );
    assert_eq!(
        message,
        "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB"
    );
}
