//! A test framework on the `scheduler` library: subscribe, wait for events with a deadline
//! (acknowledging every status update on the way), launch and reconcile tasks.

use std::time::Duration;

use api::codec::ContentType;
use api::resources::Resources;
pub use api::v1::FrameworkInfo;
use api::v1::framework_info::Capability;
use api::v1::framework_info::capability::Type as CapabilityType;
use api::v1::scheduler::{Event, event};
use api::v1::task_status::Reason;
use api::v1::{AgentId, CommandInfo, Offer, Resource, TaskInfo, TaskState, TaskStatus};
use scheduler::{Events, MasterDetector, Scheduler, SchedulerEvent};

/// How long any one wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Framework {
    pub client: Scheduler,
    pub events: Events,
    /// Every status update received so far, so a wait never loses another task's update.
    pub seen: Vec<TaskStatus>,
}

/// A FrameworkInfo for tests: this user, no failover time.
pub fn info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        name: name.into(),
        failover_timeout: Some(0.0),
        ..Default::default()
    }
}

/// Adds the PARTITION_AWARE capability.
pub fn partition_aware(mut info: FrameworkInfo) -> FrameworkInfo {
    let mut capability = Capability::default();
    capability.set_type(CapabilityType::PartitionAware);
    info.capabilities.push(capability);
    info
}

impl Framework {
    /// Subscribes `name` to `master` (`host:port`, or `zk://...` to follow the leader).
    pub async fn subscribe(master: &str, name: &str) -> Framework {
        Framework::subscribe_with(master, info(name), ContentType::Protobuf).await
    }

    pub async fn subscribe_with(
        master: &str,
        info: FrameworkInfo,
        content_type: ContentType,
    ) -> Framework {
        let detector = MasterDetector::parse(master).expect("master address");
        let mut config = scheduler::client::Config::with_detector(detector, info);
        config.content_type = content_type;
        let (client, events) = scheduler::subscribe(config).expect("start the scheduler driver");
        Framework {
            client,
            events,
            seen: Vec::new(),
        }
    }

    /// The next event satisfying `pick`, acknowledging every update on the way.
    pub async fn next<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(event::Type, &Event) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let item = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            match item {
                Some(SchedulerEvent::Event(event)) => {
                    if let Some(update) = &event.update {
                        self.client
                            .acknowledge_status(&update.status)
                            .await
                            .expect("acknowledge");
                        self.seen.push(update.status.clone());
                    }
                    if let Some(found) = pick(event.r#type(), &event) {
                        return found;
                    }
                }
                Some(SchedulerEvent::Closed { reason }) => {
                    panic!("closed while waiting for {what}: {reason}")
                }
                Some(_) => {}
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    }

    /// The first offer of the next OFFERS event.
    pub async fn offer(&mut self) -> Offer {
        self.next("an offer", |_, e| {
            e.offers.as_ref()?.offers.first().cloned()
        })
        .await
    }

    /// The offers of the next OFFERS event.
    pub async fn offers(&mut self) -> Vec<Offer> {
        self.next("offers", |_, e| e.offers.as_ref().map(|o| o.offers.clone()))
            .await
    }

    /// An offer from the agent whose hostname is `hostname`.
    pub async fn offer_from(&mut self, hostname: &str) -> Offer {
        self.next(&format!("an offer from {hostname}"), |_, e| {
            e.offers
                .as_ref()?
                .offers
                .iter()
                .find(|o| o.hostname == hostname)
                .cloned()
        })
        .await
    }

    /// The first update (already seen or next) for `task` in `state`.
    pub async fn status(&mut self, task: &str, state: TaskState) -> TaskStatus {
        let matches = |s: &TaskStatus| s.task_id.value == task && s.state() == state;
        if let Some(found) = self.seen.iter().find(|s| matches(s)) {
            return found.clone();
        }
        self.next(&format!("{state:?} for {task}"), |_, e| {
            let status = &e.update.as_ref()?.status;
            matches(status).then(|| status.clone())
        })
        .await
    }

    /// Explicit reconciliation of one task: the master's answer.
    pub async fn reconcile(&mut self, task: &str, agent: &AgentId) -> TaskStatus {
        self.client
            .reconcile(vec![(task.into(), Some(agent.clone()))])
            .await
            .expect("reconcile");
        self.next(&format!("the reconciliation of {task}"), |_, e| {
            let status = &e.update.as_ref()?.status;
            (status.task_id.value == task && status.reason() == Reason::Reconciliation)
                .then(|| status.clone())
        })
        .await
    }

    /// Launches `command` as task `id` on `offer` and waits for TASK_RUNNING.
    pub async fn launch_running_on(&mut self, offer: &Offer, id: &str, command: &str) {
        self.client
            .launch(vec![offer.id.clone()], vec![task(id, offer, command)], None)
            .await
            .expect("launch");
        self.status(id, TaskState::TaskRunning).await;
    }

    /// Launches `command` as task `id` on the next offer and waits for TASK_RUNNING.
    pub async fn launch_running(&mut self, id: &str, command: &str) -> Offer {
        let offer = self
            .next("an offer", |_, e| {
                e.offers.as_ref()?.offers.first().cloned()
            })
            .await;
        self.launch_running_on(&offer, id, command).await;
        offer
    }
}

/// For tests that hold a raw `(client, events)` pair: waits for the next event `pick`
/// accepts, acknowledging every update on the way and declining (refuse 0.2 s) the offers
/// nobody waits for, since an offer never times out.
pub async fn next<T>(
    client: &Scheduler,
    events: &mut Events,
    what: &str,
    mut pick: impl FnMut(&SchedulerEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|| panic!("events ended while waiting for {what}"));
        if let SchedulerEvent::Event(e) = &event
            && let Some(update) = &e.update
        {
            let _ = client.acknowledge_status(&update.status).await;
        }
        if let SchedulerEvent::Closed { reason } = &event {
            panic!("scheduler closed while waiting for {what}: {reason}");
        }
        if let Some(found) = pick(&event) {
            return found;
        }
        if let SchedulerEvent::Event(e) = &event
            && let Some(offers) = &e.offers
        {
            let ids = offers.offers.iter().map(|o| o.id.clone()).collect();
            let refusal = api::v1::Filters {
                refuse_seconds: Some(0.2),
            };
            let _ = client.decline(ids, Some(refusal)).await;
        }
    }
}

pub fn scalar(name: &str, value: f64) -> Resource {
    Resources::parse(&format!("{name}:{value}"))
        .expect("resource")
        .into_vec()
        .remove(0)
}

/// A command task using 0.1 cpus and 32 MB of `offer`.
pub fn task(id: &str, offer: &Offer, command: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: id.into(),
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}
