//! A simulated cluster of replog [`Node`]s: a timed event queue, a faulty network and disks
//! that lose un-fsynced writes. Everything is driven by one seeded RNG, so a run is a pure
//! function of its seed and the calls made on the [`Cluster`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replog::core::{Input, Node, NodeConfig, Output, Request, RequestResult, Response, Timing};
use replog::types::{Action, Message, Position, Record, Status, Value};

use crate::invariants::Invariants;

/// Network and disk fault rates. All zero is a perfect network.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    /// Messages are delayed uniformly in `[0, max_delay]`, which also reorders them.
    pub max_delay: Duration,
    /// fsync latency is uniform in `[0, max_fsync]`.
    pub max_fsync: Duration,
}

/// Decides whether a message is delivered (`true`) in scenario tests.
pub type Filter = Box<dyn FnMut(usize, usize, &Message) -> bool>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        msg: String,
        incarnation: u64,
    },
    Sync {
        node: usize,
        incarnation: u64,
    },
    Tick {
        node: usize,
    },
}

struct SimNode {
    addr: String,
    node: Option<Node>,
    incarnation: u64,
    durable: Vec<Record>,
    unsynced: Vec<Record>,
    /// Sends and replies waiting for the unsynced records before them.
    held: Vec<Output>,
    sync_pending: bool,
    compact: bool,
}

/// What a client request was, to interpret its reply.
#[derive(Clone, Debug)]
pub struct Pending {
    pub node: usize,
    pub request: Request,
}

pub struct Cluster {
    pub rng: SmallRng,
    pub now: Duration,
    pub faults: Faults,
    pub timing: Timing,
    nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<(Duration, u64, Event)>>,
    /// Message payloads by id (the queue orders by a string key only to stay `Ord`).
    payloads: BTreeMap<String, Message>,
    seq: u64,
    /// `group[i]`: nodes in different groups cannot talk. `None` = healed.
    partition: Option<Vec<usize>>,
    filter: Option<Filter>,
    next_id: u64,
    pub pending: BTreeMap<u64, Pending>,
    /// Replies received, by request id.
    pub replies: BTreeMap<u64, RequestResult>,
    pub invariants: Invariants,
    pub trace: Vec<String>,
    pub auto_initialize: bool,
    tick_every: Duration,
    /// Print every trace line as it happens (`SIM_VERBOSE=1`).
    pub verbose: bool,
    events: u64,
}

/// A run that processes more events than this is reported as a runaway (a livelock or an
/// event storm), not left to exhaust memory.
pub const MAX_EVENTS: u64 = 3_000_000;

pub fn addr(i: usize) -> String {
    format!("10.0.0.{}:5050", i + 1)
}

impl Cluster {
    /// `n` replicas, all EMPTY; with `auto_initialize` they bootstrap themselves, otherwise
    /// they start VOTING as `trireme log initialize` would leave them.
    pub fn new(n: usize, seed: u64, auto_initialize: bool) -> Cluster {
        Cluster::build(n, n, seed, auto_initialize)
    }

    /// A log of `from` VOTING replicas (initialised with that set) plus `to - from` EMPTY
    /// ones configured with the whole set of `to`: the new masters of a growth, before the
    /// reconfiguration entry that adds them.
    pub fn grow(from: usize, to: usize, seed: u64, auto_initialize: bool) -> Cluster {
        Cluster::build(from, to, seed, auto_initialize)
    }

    fn build(from: usize, n: usize, seed: u64, auto_initialize: bool) -> Cluster {
        let timing = Timing {
            retry: Duration::from_millis(50),
            op_timeout: Duration::from_millis(1500),
            fill_backoff: Duration::from_millis(20),
            recover_retry: Duration::from_millis(100),
        };
        let members: Vec<String> = (0..n).map(addr).collect();
        let mut cluster = Cluster {
            rng: SmallRng::seed_from_u64(seed),
            now: Duration::ZERO,
            faults: Faults {
                max_delay: Duration::from_millis(2),
                max_fsync: Duration::from_millis(1),
                ..Faults::default()
            },
            timing,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            payloads: BTreeMap::new(),
            seq: 0,
            partition: None,
            filter: None,
            next_id: 1,
            pending: BTreeMap::new(),
            replies: BTreeMap::new(),
            invariants: Invariants::default(),
            trace: Vec::new(),
            auto_initialize,
            tick_every: Duration::from_millis(10),
            verbose: std::env::var_os("SIM_VERBOSE").is_some(),
            events: 0,
        };
        for (i, a) in members.iter().enumerate() {
            let durable = if from < n {
                if i < from {
                    initialized(&members[..from])
                } else {
                    vec![]
                }
            } else if auto_initialize {
                vec![]
            } else {
                initialized(&members)
            };
            cluster.nodes.push(SimNode {
                addr: a.clone(),
                node: None,
                incarnation: 0,
                durable,
                unsynced: vec![],
                held: vec![],
                sync_pending: false,
                compact: false,
            });
        }
        for i in 0..n {
            cluster.start(i);
        }
        cluster
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn config(&mut self, i: usize) -> NodeConfig {
        NodeConfig {
            self_addr: self.nodes[i].addr.clone(),
            members: (0..self.nodes.len()).map(addr).collect(),
            auto_initialize: self.auto_initialize,
            seed: self.rng.r#gen(),
            timing: self.timing.clone(),
        }
    }

    fn start(&mut self, i: usize) {
        let cfg = self.config(i);
        let node = Node::new(cfg, self.nodes[i].durable.clone());
        self.invariants.on_restart(i, node.replica());
        let n = &mut self.nodes[i];
        n.node = Some(node);
        n.incarnation += 1;
        let at = self.now + Duration::from_micros(self.rng.gen_range(0..10_000));
        self.schedule(at, Event::Tick { node: i });
    }

    pub fn node(&self, i: usize) -> Option<&Node> {
        self.nodes[i].node.as_ref()
    }
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].node.is_some()
    }
    pub fn status(&self, i: usize) -> Option<Status> {
        self.node(i).map(|n| n.replica().status())
    }

    /// Crashes a node: un-fsynced writes are lost except a random prefix (a torn batch).
    pub fn crash(&mut self, i: usize) {
        let keep = self.rng.gen_range(0..=self.nodes[i].unsynced.len());
        let n = &mut self.nodes[i];
        let kept: Vec<Record> = n.unsynced.drain(..).take(keep).collect();
        n.durable.extend(kept);
        n.held.clear();
        n.node = None;
        n.sync_pending = false;
        n.compact = false;
        self.log(format!("crash n{i} (kept {keep} unsynced records)"));
        self.fail_pending(i);
    }

    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].node.is_none() {
            self.log(format!("restart n{i}"));
            self.start(i);
        }
    }

    /// Replaces a node's disk with an empty one (Mesos "replacing a master").
    pub fn wipe(&mut self, i: usize) {
        if self.nodes[i].node.is_some() {
            self.crash(i);
        }
        self.nodes[i].durable.clear();
        self.invariants.on_wipe(i);
        self.log(format!("wipe n{i}"));
    }

    pub fn partition(&mut self, groups: Vec<usize>) {
        self.log(format!("partition {groups:?}"));
        self.partition = Some(groups);
    }
    pub fn heal(&mut self) {
        self.log("heal".to_string());
        self.partition = None;
        self.filter = None;
    }
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = Some(filter);
    }
    pub fn clear_filter(&mut self) {
        self.filter = None;
    }

    /// Submits a request to node `i`; returns its id (the reply lands in `replies`).
    pub fn request(&mut self, i: usize, request: Request) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                node: i,
                request: request.clone(),
            },
        );
        self.log(format!("n{i} <- request#{id} {}", describe(&request)));
        if self.nodes[i].node.is_some() {
            self.step(i, Input::Request { id, request });
        } else {
            self.pending.remove(&id);
        }
        id
    }

    fn fail_pending(&mut self, i: usize) {
        self.pending.retain(|_, p| p.node != i);
    }

    pub fn reply(&self, id: u64) -> Option<&RequestResult> {
        self.replies.get(&id)
    }

    /// Runs events until `done` holds or `budget` of simulated time passes. Returns `done`.
    pub fn run_until(&mut self, budget: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let deadline = self.now + budget;
        while !done(self) {
            if self.invariants.violation().is_some() || !self.step_event(deadline) {
                return done(self);
            }
        }
        true
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        while self.step_event(deadline) {}
    }

    /// Processes the next event before `deadline`; false if there is none.
    pub fn step_event(&mut self, deadline: Duration) -> bool {
        let Some(Reverse((at, _, _))) = self.queue.peek() else {
            self.now = self.now.max(deadline);
            return false;
        };
        self.events += 1;
        if self.events > MAX_EVENTS {
            self.invariants.runaway(self.events);
            return false;
        }
        if *at > deadline {
            self.now = deadline;
            return false;
        }
        let Some(Reverse((at, _, event))) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(at);
        self.handle(event);
        true
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Tick { node } => {
                if self.nodes[node].node.is_some() {
                    self.step(node, Input::Tick);
                    let at = self.now + self.tick_every;
                    self.schedule(at, Event::Tick { node });
                }
            }
            Event::Sync { node, incarnation } => self.sync(node, incarnation),
            Event::Deliver {
                to,
                from,
                msg,
                incarnation,
            } => {
                let Some(msg) = self.payloads.remove(&msg) else {
                    return;
                };
                if incarnation != 0 && self.nodes[to].incarnation != incarnation {
                    return;
                }
                if self.nodes[to].node.is_some() {
                    self.step(
                        to,
                        Input::Message {
                            from: addr(from),
                            msg,
                        },
                    );
                }
            }
        }
    }

    fn step(&mut self, i: usize, input: Input) {
        let now = self.now;
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        node.step(now, input);
        let outputs = node.take_outputs();
        for output in outputs {
            self.output(i, output);
        }
    }

    fn output(&mut self, i: usize, output: Output) {
        match output {
            Output::Persist(record) => {
                if let Record::Metadata(m) = &record {
                    self.log(format!(
                        "n{i} persist metadata {:?} promised={}",
                        m.status, m.promised
                    ));
                }
                self.invariants.on_persist(i, &record);
                self.nodes[i].unsynced.push(record);
                self.schedule_sync(i);
            }
            Output::Compact { .. } => self.nodes[i].compact = true,
            other if self.nodes[i].unsynced.is_empty() && self.nodes[i].held.is_empty() => {
                self.release(i, other)
            }
            other => self.nodes[i].held.push(other),
        }
    }

    fn schedule_sync(&mut self, i: usize) {
        if self.nodes[i].sync_pending {
            return;
        }
        self.nodes[i].sync_pending = true;
        let max = self.faults.max_fsync.as_micros().max(1) as u64;
        let at = self.now + Duration::from_micros(self.rng.gen_range(0..max));
        let incarnation = self.nodes[i].incarnation;
        self.schedule(
            at,
            Event::Sync {
                node: i,
                incarnation,
            },
        );
    }

    fn sync(&mut self, i: usize, incarnation: u64) {
        let n = &mut self.nodes[i];
        if n.incarnation != incarnation || n.node.is_none() {
            return;
        }
        n.sync_pending = false;
        let synced: Vec<Record> = n.unsynced.drain(..).collect();
        n.durable.extend(synced);
        if std::mem::take(&mut n.compact)
            && let Some(node) = &n.node
        {
            n.durable = node.replica().snapshot_records();
        }
        let held: Vec<Output> = n.held.drain(..).collect();
        for output in held {
            self.release(i, output);
        }
    }

    fn release(&mut self, i: usize, output: Output) {
        match output {
            Output::Send { to, msg } => self.transmit(i, &to, msg),
            Output::Reply { id, result } => self.on_reply(i, id, result),
            Output::Persist(_) | Output::Compact { .. } => unreachable!("persists are never held"),
        }
    }

    fn on_reply(&mut self, i: usize, id: u64, result: RequestResult) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        self.log(format!("n{i} -> reply#{id} {result:?}"));
        if let (Request::Append(bytes), Ok(Response::Written { position })) =
            (&pending.request, &result)
        {
            self.invariants.on_acked(*position, bytes.clone());
        }
        if let (Request::Truncate(to), Ok(Response::Written { .. })) = (&pending.request, &result) {
            self.invariants.on_truncated(*to);
        }
        self.replies.insert(id, result);
    }

    fn transmit(&mut self, from: usize, to: &str, msg: Message) {
        let Some(to) = self.nodes.iter().position(|n| n.addr == to) else {
            return;
        };
        if to == from {
            let incarnation = self.nodes[to].incarnation;
            return self.enqueue(self.now, from, to, msg, incarnation);
        }
        if let Some(filter) = self.filter.as_mut()
            && !filter(from, to, &msg)
        {
            return;
        }
        if self.partition.as_ref().is_some_and(|g| g[from] != g[to])
            || self.rng.gen_bool(self.faults.drop)
        {
            return;
        }
        let copies = if self.rng.gen_bool(self.faults.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let max = self.faults.max_delay.as_micros() as u64;
            let at = self.now + Duration::from_micros(self.rng.gen_range(0..=max));
            self.enqueue(at, from, to, msg.clone(), 0);
        }
    }

    fn enqueue(&mut self, at: Duration, from: usize, to: usize, msg: Message, incarnation: u64) {
        self.seq += 1;
        let key = format!("{:016x}", self.seq);
        self.payloads.insert(key.clone(), msg);
        self.schedule(
            at,
            Event::Deliver {
                to,
                from,
                msg: key,
                incarnation,
            },
        );
    }

    fn schedule(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, event)));
    }

    pub fn log(&mut self, line: String) {
        let stamp = format!("{:>9.3}ms {line}", self.now.as_secs_f64() * 1000.0);
        if self.verbose {
            eprintln!("{stamp}");
        }
        self.trace.push(stamp);
        if self.trace.len() > 400 {
            self.trace.drain(..200);
        }
    }

    /// One status line per node (documented in docs/replicated-log.md, "Simulator").
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let line = match &n.node {
                Some(node) => node.status_line(),
                None => format!("{} DOWN", n.addr),
            };
            s.push_str(&format!(
                "n{i}: {line} durable_records={}\n",
                n.durable.len()
            ));
        }
        s
    }

    /// All replica addresses, in index order (the whole set of a growth).
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// Index of an elected node, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| self.node(*i).is_some_and(|n| n.is_elected()))
    }

    /// Learned action at `position` on node `i`.
    pub fn learned(&self, i: usize, position: Position) -> Option<Action> {
        self.node(i)?
            .replica()
            .action(position)
            .filter(|a| a.learned)
            .cloned()
    }
}

/// The durable state `trireme log initialize` writes: VOTING with the given set.
pub fn initialized(members: &[String]) -> Vec<Record> {
    vec![Record::Metadata(replog::types::Metadata {
        status: Status::Voting,
        promised: 0,
        members: members.to_vec(),
    })]
}

fn describe(request: &Request) -> String {
    match request {
        Request::Append(bytes) => format!("append({})", String::from_utf8_lossy(bytes)),
        other => format!("{other:?}"),
    }
}

/// Convenience: the bytes of an append.
pub fn value(s: &str) -> Value {
    Value::Append(Bytes::copy_from_slice(s.as_bytes()))
}
