//! The agent's checkpoint under `<work_dir>/meta/` (Mesos's layout in spirit,
//! src/slave/paths.cpp) and the file I/O that writes and reads it. What a recovered state
//! means is decided in [`crate::recovery`]; this module only stores and loads.
//!
//! ```text
//! meta/slaves/latest -> <agent id>
//! meta/slaves/<agent>/slave.info                          AgentInfo (protobuf)
//! meta/slaves/<agent>/drain.config                        DrainConfig while the agent drains
//!   frameworks/<fw>/framework.info                        FrameworkInfo   (checkpointing only)
//!   frameworks/<fw>/executors/<ex>/executor.info          ExecutorInfo    (checkpointing only)
//!   frameworks/<fw>/executors/<ex>/runs/<container>/run.info   pid, start time, boot id, endpoint
//!   .../runs/<container>/tasks/<task>/task.info           TaskInfo        (checkpointing only)
//!   .../runs/<container>/tasks/<task>/task.updates        update and ack records, appended
//!   pids.log                                              executors of other frameworks
//! meta/resources/resources.info                           the checkpointed resources
//! ```
//!
//! `resources.info` (a `CheckpointResources` message: the agent's dynamic reservations) is
//! the agent's, not one agent id's: it outlives a new registration, as in Mesos.
//!
//! Whole files are written durably: temp file, fsync, rename, fsync of the directory (and
//! of every directory created on the way). `task.updates` is appended to and fsynced before
//! the update is forwarded or the acknowledgement is passed on. For frameworks that do not
//! checkpoint only a line per executor start and one per exit are appended to `pids.log`
//! (framework, executor, pid), without fsync and off the agent's loop: it matters only
//! while the executor process is alive, which a machine crash rules out anyway, and it must
//! not slow down launches (a file per executor cost a create and an unlink each; an append
//! to an open file costs one write). The writer rewrites the journal with only the live
//! executors once it holds mostly exits.
//!
//! `task.updates` records: `kind: u8` (1 update, 2 ack), `len: u32 LE`, `crc32c: u32 LE` of
//! the payload, payload (an encoded `TaskStatus`, or the acknowledged 16-byte uuid). An
//! incomplete last record is a torn append (cut off on recovery); a bad checksum or kind
//! anywhere is corruption.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use api::v1;
use prost::Message as _;

use crate::paths;

pub const SLAVE_INFO: &str = "slave.info";
pub const FRAMEWORK_INFO: &str = "framework.info";
pub const EXECUTOR_INFO: &str = "executor.info";
pub const RUN_INFO: &str = "run.info";
pub const TASK_INFO: &str = "task.info";
pub const TASK_UPDATES: &str = "task.updates";
pub const PIDS_JOURNAL: &str = "pids.log";
/// A v0 executor's libprocess pid, under its run directory (as Mesos).
pub const LIBPROCESS_PID: &str = "pids/libprocess.pid";

const RECORD_UPDATE: u8 = 1;
const RECORD_ACK: u8 = 2;
const HEADER: usize = 9;

/// `meta/slaves/<agent>`.
pub fn agent_dir(work_dir: &Path, agent: &str) -> PathBuf {
    work_dir.join("meta/slaves").join(agent)
}

pub fn framework_dir(work_dir: &Path, agent: &str, fw: &str) -> PathBuf {
    agent_dir(work_dir, agent).join("frameworks").join(fw)
}

pub fn executor_dir(work_dir: &Path, agent: &str, fw: &str, ex: &str) -> PathBuf {
    framework_dir(work_dir, agent, fw)
        .join("executors")
        .join(ex)
}

pub fn run_dir(work_dir: &Path, agent: &str, fw: &str, ex: &str, container: &str) -> PathBuf {
    executor_dir(work_dir, agent, fw, ex)
        .join("runs")
        .join(container)
}

pub fn task_dir(
    work_dir: &Path,
    agent: &str,
    fw: &str,
    ex: &str,
    container: &str,
    task: &str,
) -> PathBuf {
    run_dir(work_dir, agent, fw, ex, container)
        .join("tasks")
        .join(task)
}

/// One record of a `task.updates` file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Update(v1::TaskStatus),
    Ack(Vec<u8>),
}

pub fn encode_record(record: &Record) -> Vec<u8> {
    let (kind, payload) = match record {
        Record::Update(status) => (RECORD_UPDATE, status.encode_to_vec()),
        Record::Ack(uuid) => (RECORD_ACK, uuid.clone()),
    };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(kind);
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes a `task.updates` file: the records and the length of the valid prefix (shorter
/// than `bytes` when the last append was torn).
pub fn decode_records(bytes: &[u8]) -> Result<(Vec<Record>, usize), String> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER {
            break;
        }
        let kind = rest[0];
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let crc = u32::from_le_bytes([rest[5], rest[6], rest[7], rest[8]]);
        if rest.len() - HEADER < len {
            break;
        }
        let payload = &rest[HEADER..HEADER + len];
        if crc32c::crc32c(payload) != crc {
            return Err(format!("record at byte {at} fails its checksum"));
        }
        let record = match kind {
            RECORD_UPDATE => Record::Update(
                v1::TaskStatus::decode(payload)
                    .map_err(|e| format!("record at byte {at} is not a TaskStatus: {e}"))?,
            ),
            RECORD_ACK => Record::Ack(payload.to_vec()),
            other => return Err(format!("record at byte {at} has unknown kind {other}")),
        };
        records.push(record);
        at += HEADER + len;
    }
    Ok((records, at))
}

/// `pids.log`: the executors of frameworks that do not checkpoint.
pub fn pid_journal(work_dir: &Path, agent: &str) -> PathBuf {
    agent_dir(work_dir, agent).join(PIDS_JOURNAL)
}

/// An executor in `pids.log`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PidRecord {
    pub framework_id: String,
    pub executor_id: String,
    #[serde(flatten)]
    pub run: RunInfo,
}

/// What `run.info` holds: enough to find (and not mistake) the executor's process again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    /// The executor's pid = its process group.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a reused
    /// pid is not taken for the executor.
    pub start_time: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when it was started: after a reboot it is gone.
    pub boot_id: Option<String>,
    /// The `MESOS_AGENT_ENDPOINT` it was given.
    pub endpoint: String,
}

// ------------------------------------------------------------------ writing

/// Creates `dir` and any missing parents, fsyncing each new entry's parent directory.
pub fn create_dirs_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(path) = cursor {
        if path.is_dir() {
            break;
        }
        missing.push(path.to_path_buf());
        cursor = path.parent();
    }
    for path in missing.iter().rev() {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(path: &Path) -> std::io::Result<&Path> {
    path.parent()
        .ok_or_else(|| std::io::Error::other(format!("{} has no parent", path.display())))
}

/// Replaces `path` with `bytes` atomically: temp file, fsync, rename, fsync directory.
pub fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_of(path)?;
    create_dirs_durable(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint");
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Work for the `pids.log` writer thread.
#[derive(Debug)]
pub enum PidOp {
    /// Record an executor (its start time is read first; one that is already gone is not
    /// recorded).
    Write {
        container: String,
        record: PidRecord,
    },
    /// The executor in `container` is gone.
    Remove(String),
}

/// One `pids.log` line: an executor started (`add`) or gone (`remove`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum PidLine {
    Add {
        container: String,
        #[serde(flatten)]
        record: PidRecord,
    },
    Remove {
        container: String,
    },
}

/// The live executors a journal describes, in start order (unreadable lines skipped: this is
/// best-effort data).
pub fn read_pid_journal(bytes: &[u8]) -> Vec<(String, PidRecord)> {
    let mut live: Vec<(String, PidRecord)> = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<PidLine>(line) {
            Ok(PidLine::Add { container, record }) => {
                live.retain(|(c, _)| *c != container);
                live.push((container, record));
            }
            Ok(PidLine::Remove { container }) => live.retain(|(c, _)| *c != container),
            Err(_) => {}
        }
    }
    live
}

/// Appends journal lines for one agent, keeping the live set to compact the file when most
/// of its lines are exits.
struct PidJournal {
    path: PathBuf,
    file: Option<File>,
    live: HashMap<String, PidRecord>,
    lines: usize,
}

impl PidJournal {
    fn apply(&mut self, op: PidOp) -> std::io::Result<()> {
        let line = match op {
            PidOp::Write {
                container,
                mut record,
            } => {
                record.run.start_time = process_start_time(record.run.pid);
                if record.run.start_time.is_none() {
                    return Ok(());
                }
                self.live.insert(container.clone(), record.clone());
                PidLine::Add { container, record }
            }
            PidOp::Remove(container) => {
                if self.live.remove(&container).is_none() {
                    return Ok(());
                }
                PidLine::Remove { container }
            }
        };
        if self.lines > 1024 && self.lines > 4 * self.live.len() {
            return self.compact();
        }
        let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.open()?.write_all(&bytes)?;
        self.lines += 1;
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            create_dirs_durable(parent_of(&self.path)?)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the pid journal is not open"))
    }

    /// Rewrites the journal with one line per live executor (temp file and rename).
    fn compact(&mut self) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for (container, record) in &self.live {
            let line = PidLine::Add {
                container: container.clone(),
                record: record.clone(),
            };
            serde_json::to_writer(&mut bytes, &line).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        let tmp = self.path.with_extension("log.tmp");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &self.path)?;
        self.file = None;
        self.lines = self.live.len();
        Ok(())
    }
}

/// Starts the thread that appends to `path` (`pids.log`), in order and off the agent's
/// loop (no fsync: see the module doc). It ends when the sender is dropped.
pub fn pid_writer(path: PathBuf) -> std::io::Result<std::sync::mpsc::Sender<PidOp>> {
    let (tx, rx) = std::sync::mpsc::channel::<PidOp>();
    std::thread::Builder::new()
        .name("pid-journal".into())
        .spawn(move || {
            let mut journal = PidJournal {
                path,
                file: None,
                live: HashMap::new(),
                lines: 0,
            };
            for op in rx {
                if let Err(error) = journal.apply(op) {
                    tracing::warn!("cannot update the executor pid journal: {error}");
                    journal.file = None;
                }
            }
        })?;
    Ok(tx)
}

/// Appends `bytes` and fsyncs (and the directory too when the file is new).
pub fn append_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_of(path)?;
    let existed = path.exists();
    if !existed {
        create_dirs_durable(dir)?;
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    if !existed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// `meta/resources/resources.info`.
pub fn resources_path(work_dir: &Path) -> PathBuf {
    work_dir.join("meta/resources/resources.info")
}

/// Writes the checkpointed resources durably (temp file, fsync, rename, fsync directory).
pub fn write_resources(work_dir: &Path, resources: &[v1::Resource]) -> std::io::Result<()> {
    let message = api::internal::agent_event::CheckpointResources {
        resources: resources.to_vec(),
    };
    write_message(&resources_path(work_dir), &message)
}

/// The checkpointed resources; none when the file does not exist.
pub fn read_resources(work_dir: &Path) -> Result<Vec<v1::Resource>, String> {
    let path = resources_path(work_dir);
    let message: Option<api::internal::agent_event::CheckpointResources> = read_message(&path)?;
    Ok(message.map(|m| m.resources).unwrap_or_default())
}

/// `meta/slaves/<agent>/drain.config` (Mesos's name): the `DrainConfig` of a drain in
/// progress, removed when the agent has nothing left.
pub fn drain_config_path(work_dir: &Path, agent: &str) -> PathBuf {
    agent_dir(work_dir, agent).join("drain.config")
}

/// The checkpointed drain config; `None` when the agent is not draining.
pub fn read_drain_config(work_dir: &Path, agent: &str) -> Result<Option<v1::DrainConfig>, String> {
    read_message(&drain_config_path(work_dir, agent))
}

/// Removes `drain.config` (durably: the directory is synced); a missing one is fine.
pub fn remove_drain_config(work_dir: &Path, agent: &str) -> std::io::Result<()> {
    let path = drain_config_path(work_dir, agent);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(()) => path.parent().map_or(Ok(()), sync_dir),
    }
}

pub fn write_message(path: &Path, message: &impl prost::Message) -> std::io::Result<()> {
    write_durable(path, &message.encode_to_vec())
}

/// Removes a checkpoint directory (an executor or framework that is done); a missing one
/// is fine.
pub fn remove_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

// ------------------------------------------------------------------ process facts

/// This boot's id (`None` where the kernel does not say).
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// A process's start time in clock ticks since boot; `None` when it does not exist or is
/// a zombie (it has exited).
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 (starttime) is index 19.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process `run` describes is still the one that was started.
pub fn run_alive(run: &RunInfo, boot: Option<&str>) -> bool {
    if run.pid <= 1 {
        return false;
    }
    if let (Some(then), Some(now)) = (run.boot_id.as_deref(), boot)
        && then != now
    {
        return false;
    }
    // Without a recorded start time a pid could be anybody's by now.
    matches!((process_start_time(run.pid), run.start_time), (Some(now), Some(then)) if now == then)
}

// ------------------------------------------------------------------ reading

/// A task as checkpointed.
#[derive(Debug, Clone, Default)]
pub struct TaskCheckpoint {
    pub id: String,
    pub info: Option<v1::TaskInfo>,
    pub records: Vec<Record>,
}

/// An executor run as checkpointed.
#[derive(Debug, Clone, Default)]
pub struct ExecutorCheckpoint {
    pub id: String,
    /// `None` for frameworks that do not checkpoint.
    pub info: Option<v1::ExecutorInfo>,
    pub container_id: String,
    pub run: Option<RunInfo>,
    /// A v0 executor's pid (`id@host:port`), for ReconnectExecutorMessage.
    pub libprocess_pid: Option<String>,
    pub tasks: Vec<TaskCheckpoint>,
}

#[derive(Debug, Clone, Default)]
pub struct FrameworkCheckpoint {
    pub id: String,
    /// `None` for frameworks that do not checkpoint (only their executors' pids are kept).
    pub info: Option<v1::FrameworkInfo>,
    pub executors: Vec<ExecutorCheckpoint>,
}

/// Everything found under `meta/slaves/<agent>`, plus what could not be read.
#[derive(Debug, Clone, Default)]
pub struct AgentCheckpoint {
    pub agent_id: String,
    pub info: Option<v1::AgentInfo>,
    pub frameworks: Vec<FrameworkCheckpoint>,
    /// From `pids.log`: live executors of frameworks that do not checkpoint (best-effort
    /// data: unreadable lines are skipped, never an error).
    pub pid_files: Vec<(String, PidRecord)>,
    /// Unreadable or corrupt parts (fatal under `--strict`, skipped otherwise).
    pub errors: Vec<String>,
}

fn read_message<M: prost::Message + Default>(path: &Path) -> Result<Option<M>, String> {
    match std::fs::read(path) {
        Ok(bytes) => M::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| format!("{}: cannot be decoded: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The entries of a directory that are valid ids (temp files and a missing dir skipped).
fn children(dir: &Path) -> Result<Vec<String>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(name) = entry.file_name().to_str()
            && paths::safe_component(name)
            && !name.starts_with('.')
            && entry.path().is_dir()
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads the checkpoint of the agent `meta/slaves/latest` names; `None` without one. A
/// torn last append of a `task.updates` file is cut off here.
pub fn read(work_dir: &Path) -> Option<AgentCheckpoint> {
    let agent_id = paths::read_agent_id(work_dir)?;
    let dir = agent_dir(work_dir, &agent_id);
    let mut state = AgentCheckpoint {
        agent_id: agent_id.clone(),
        ..Default::default()
    };
    let mut errors = Vec::new();
    state.info = read_message(&dir.join(SLAVE_INFO)).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let frameworks = children(&dir.join("frameworks")).unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    for fid in frameworks {
        let fdir = framework_dir(work_dir, &agent_id, &fid);
        let info = match read_message::<v1::FrameworkInfo>(&fdir.join(FRAMEWORK_INFO)) {
            Ok(info) => info,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut framework = FrameworkCheckpoint {
            id: fid.clone(),
            info,
            executors: Vec::new(),
        };
        let executors = children(&fdir.join("executors")).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        for eid in executors {
            match read_executor(work_dir, &agent_id, &fid, &eid, framework.info.is_some()) {
                Ok(Some(executor)) => framework.executors.push(executor),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        state.frameworks.push(framework);
    }
    if let Ok(bytes) = std::fs::read(dir.join(PIDS_JOURNAL)) {
        state.pid_files = read_pid_journal(&bytes);
    }
    state.errors = errors;
    Some(state)
}

fn read_executor(
    work_dir: &Path,
    agent: &str,
    fid: &str,
    eid: &str,
    checkpointing: bool,
) -> Result<Option<ExecutorCheckpoint>, String> {
    let edir = executor_dir(work_dir, agent, fid, eid);
    let info = if checkpointing {
        read_message::<v1::ExecutorInfo>(&edir.join(EXECUTOR_INFO))?
    } else {
        None
    };
    let runs = children(&edir.join("runs"))?;
    // One run per executor id at a time; an extra one is a leftover of a crash between
    // writing and removing, the one with a run.info wins.
    let mut chosen: Option<(String, Option<RunInfo>)> = None;
    for container in runs {
        let path = run_dir(work_dir, agent, fid, eid, &container).join(RUN_INFO);
        let run = match std::fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<RunInfo>(&bytes)
                    .map_err(|e| format!("{}: cannot be decoded: {e}", path.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if chosen.as_ref().is_none_or(|(_, r)| r.is_none()) {
            chosen = Some((container, run));
        }
    }
    let Some((container_id, run)) = chosen else {
        return Ok(info.map(|info| ExecutorCheckpoint {
            id: eid.to_owned(),
            info: Some(info),
            ..Default::default()
        }));
    };
    let mut executor = ExecutorCheckpoint {
        id: eid.to_owned(),
        info,
        container_id: container_id.clone(),
        run,
        libprocess_pid: None,
        tasks: Vec::new(),
    };
    if checkpointing {
        let rdir = run_dir(work_dir, agent, fid, eid, &container_id);
        executor.libprocess_pid = match std::fs::read_to_string(rdir.join(LIBPROCESS_PID)) {
            Ok(pid) => Some(pid.trim().to_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", rdir.join(LIBPROCESS_PID).display())),
        };
        for tid in children(&rdir.join("tasks"))? {
            let tdir = rdir.join("tasks").join(&tid);
            let info = read_message::<v1::TaskInfo>(&tdir.join(TASK_INFO))?;
            let records = read_updates(&tdir.join(TASK_UPDATES))?;
            executor.tasks.push(TaskCheckpoint {
                id: tid,
                info,
                records,
            });
        }
    }
    Ok(Some(executor))
}

/// Reads a `task.updates` file, cutting off a torn last append.
fn read_updates(path: &Path) -> Result<Vec<Record>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let (records, valid) =
        decode_records(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if valid < bytes.len() {
        tracing::warn!(path = %path.display(), valid, len = bytes.len(), "cutting off a torn status update record");
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.set_len(valid as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {

    fn pid_record(pid: u32) -> PidRecord {
        PidRecord {
            framework_id: "F".into(),
            executor_id: format!("e{pid}"),
            run: RunInfo {
                pid,
                start_time: Some(7),
                boot_id: None,
                endpoint: "127.0.0.1:5051".into(),
            },
        }
    }

    #[test]
    fn the_pid_journal_keeps_started_executors_until_their_exit() {
        let mut bytes = Vec::new();
        for line in [
            PidLine::Add {
                container: "c1".into(),
                record: pid_record(11),
            },
            PidLine::Add {
                container: "c2".into(),
                record: pid_record(12),
            },
            PidLine::Remove {
                container: "c1".into(),
            },
        ] {
            serde_json::to_writer(&mut bytes, &line).unwrap();
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(b"{\"add\": torn");
        assert_eq!(
            read_pid_journal(&bytes),
            vec![("c2".to_owned(), pid_record(12))]
        );
    }

    #[test]
    fn the_pid_journal_is_compacted_to_its_live_executors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pids.log");
        let me = std::process::id();
        let mut journal = PidJournal {
            path: path.clone(),
            file: None,
            live: HashMap::new(),
            lines: 0,
        };
        for i in 0..3000 {
            let container = format!("c{i}");
            let record = pid_record(me);
            journal
                .apply(PidOp::Write {
                    container: container.clone(),
                    record,
                })
                .unwrap();
            if i != 1234 {
                journal.apply(PidOp::Remove(container)).unwrap();
            }
        }
        let bytes = std::fs::read(&path).unwrap();
        let live = read_pid_journal(&bytes);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].0, "c1234");
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert!(lines < 1100, "compacted: {lines} lines");
    }
    use super::*;

    fn status(task: &str, state: v1::TaskState, uuid: u8) -> v1::TaskStatus {
        let mut s = v1::TaskStatus {
            task_id: task.into(),
            uuid: Some(vec![uuid; 16]),
            ..Default::default()
        };
        s.set_state(state);
        s
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let records = vec![
            Record::Update(status("t", v1::TaskState::TaskRunning, 1)),
            Record::Ack(vec![1; 16]),
            Record::Update(status("t", v1::TaskState::TaskFinished, 2)),
        ];
        let mut bytes: Vec<u8> = records.iter().flat_map(encode_record).collect();
        let full = bytes.len();
        assert_eq!(decode_records(&bytes), Ok((records.clone(), full)));
        // Every cut inside the last record keeps the first two.
        let last_start = full - encode_record(&records[2]).len();
        for cut in last_start..full {
            let (got, valid) = decode_records(&bytes[..cut]).unwrap();
            assert_eq!(got, records[..2].to_vec(), "cut at {cut}");
            assert_eq!(valid, last_start);
        }
        // A flipped payload byte is corruption, not a torn tail.
        bytes[HEADER + 2] ^= 0xff;
        assert!(decode_records(&bytes).unwrap_err().contains("checksum"));
    }

    #[test]
    fn an_unknown_record_kind_is_corruption() {
        let mut bytes = encode_record(&Record::Ack(vec![3; 16]));
        bytes[0] = 9;
        assert!(decode_records(&bytes).unwrap_err().contains("unknown kind"));
    }

    #[test]
    fn durable_writes_and_appends_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        paths::write_agent_id(work, "A-S0").unwrap();
        let info = v1::AgentInfo {
            hostname: "h".into(),
            ..Default::default()
        };
        write_message(&agent_dir(work, "A-S0").join(SLAVE_INFO), &info).unwrap();
        let fw = v1::FrameworkInfo {
            id: Some("F".into()),
            checkpoint: Some(true),
            ..Default::default()
        };
        write_message(&framework_dir(work, "A-S0", "F").join(FRAMEWORK_INFO), &fw).unwrap();
        let ex = v1::ExecutorInfo {
            executor_id: "E".into(),
            ..Default::default()
        };
        write_message(
            &executor_dir(work, "A-S0", "F", "E").join(EXECUTOR_INFO),
            &ex,
        )
        .unwrap();
        let run = RunInfo {
            pid: 42,
            start_time: Some(7),
            boot_id: Some("b".into()),
            endpoint: "127.0.0.1:5051".into(),
        };
        let rdir = run_dir(work, "A-S0", "F", "E", "C");
        write_durable(&rdir.join(RUN_INFO), &serde_json::to_vec(&run).unwrap()).unwrap();
        write_durable(&rdir.join(LIBPROCESS_PID), b"executor(1)@127.0.0.1:4000").unwrap();
        let tdir = task_dir(work, "A-S0", "F", "E", "C", "T");
        let task = v1::TaskInfo {
            task_id: "T".into(),
            ..Default::default()
        };
        write_message(&tdir.join(TASK_INFO), &task).unwrap();
        let update = Record::Update(status("T", v1::TaskState::TaskRunning, 5));
        append_durable(&tdir.join(TASK_UPDATES), &encode_record(&update)).unwrap();
        append_durable(
            &tdir.join(TASK_UPDATES),
            &encode_record(&Record::Ack(vec![5; 16])),
        )
        .unwrap();
        // A torn append after them.
        let torn = encode_record(&Record::Update(status("T", v1::TaskState::TaskFailed, 6)));
        append_durable(&tdir.join(TASK_UPDATES), &torn[..torn.len() - 3]).unwrap();

        let state = read(work).expect("a checkpoint");
        assert!(state.errors.is_empty(), "{:?}", state.errors);
        assert_eq!(state.agent_id, "A-S0");
        assert_eq!(state.info, Some(info));
        assert_eq!(state.frameworks.len(), 1);
        let e = &state.frameworks[0].executors[0];
        assert_eq!(e.container_id, "C");
        assert_eq!(e.run, Some(run));
        assert_eq!(
            e.libprocess_pid.as_deref(),
            Some("executor(1)@127.0.0.1:4000")
        );
        assert_eq!(e.tasks[0].info, Some(task));
        assert_eq!(e.tasks[0].records, vec![update, Record::Ack(vec![5; 16])]);
        // The torn tail was cut off, so the next append starts clean.
        let len = std::fs::metadata(tdir.join(TASK_UPDATES)).unwrap().len();
        assert_eq!(
            len as usize,
            2 * HEADER + 16 + status("T", v1::TaskState::TaskRunning, 5).encoded_len()
        );
    }

    #[test]
    fn checkpointed_resources_round_trip_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_resources(dir.path()), Ok(Vec::new()));
        let resources = api::resources::Resources::parse("cpus:1;mem:64")
            .unwrap()
            .into_vec();
        write_resources(dir.path(), &resources).unwrap();
        assert_eq!(read_resources(dir.path()), Ok(resources));
        std::fs::write(resources_path(dir.path()), [0xff, 0xff, 0xff]).unwrap();
        let err = read_resources(dir.path()).unwrap_err();
        assert!(err.contains("resources.info"), "{err}");
    }

    #[test]
    fn a_corrupt_info_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        paths::write_agent_id(work, "A-S0").unwrap();
        let fdir = framework_dir(work, "A-S0", "F");
        std::fs::create_dir_all(&fdir).unwrap();
        std::fs::write(fdir.join(FRAMEWORK_INFO), b"\xff\xff\xff garbage").unwrap();
        let state = read(work).unwrap();
        assert_eq!(state.errors.len(), 1, "{:?}", state.errors);
        assert!(state.errors[0].contains("framework.info"));
        assert!(state.frameworks.is_empty());
    }

    #[test]
    fn the_current_process_is_alive_and_a_changed_start_time_is_not() {
        let pid = std::process::id();
        let start = process_start_time(pid).expect("own start time");
        let boot = boot_id();
        let mut run = RunInfo {
            pid,
            start_time: Some(start),
            boot_id: boot.clone(),
            endpoint: String::new(),
        };
        assert!(run_alive(&run, boot.as_deref()));
        run.start_time = Some(start + 1);
        assert!(!run_alive(&run, boot.as_deref()));
        run.start_time = None;
        assert!(!run_alive(&run, boot.as_deref()), "no start time, no trust");
        run.start_time = Some(start);
        run.boot_id = Some("another boot".into());
        assert!(!run_alive(&run, Some("this boot")));
    }
}
