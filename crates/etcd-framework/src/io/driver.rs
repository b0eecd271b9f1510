//! `trireme etcd scheduler`: the tokio driver around the [`Reconciler`].
//!
//! One loop over a closed [`Event`] enum: scheduler-API events, answers of etcd calls the
//! driver spawned, admin requests, a one-second tick and SIGTERM. Each event becomes at
//! most one [`Input`]; the actions are executed in order. `Persist` is synchronous (write
//! temp, fsync, rename, fsync dir) so nothing after it in the batch goes out before it is
//! durable; a failed persist stops the scheduler rather than act on state it could lose.
//! Status updates are acknowledged only after the step that took them (and its persist).
//! Every etcd call is spawned and always answers (`Failed` on timeout): the reconciler
//! waits for each membership change's result.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use api::v1::scheduler::{Event as MasterEvent, event};
use api::v1::{AgentId, FrameworkId, FrameworkInfo, OfferId, TaskId, TaskStatus};
use scheduler::{SchedulerEvent, calls};
use tokio::sync::mpsc;

use super::admin::{self, AdminRequest, ReseedAnswer, SharedView, View};
use super::etcd_client::{EtcdClient, EtcdError};
use super::store::StateFile;
use super::zk_store::ZkStore;
use crate::Config;
use crate::reconciler::{Action, ChangeResult, Input, Reconciler};
use crate::state::{PersistedState, Phase};

/// Bound on a membership change or a KV call.
const ETCD_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on each member's status during a probe (an unreachable member must not hold it up).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// etcd 3.4 refuses a member add until its leader has been connected to every voter for
/// 5 s (`isConnectedFullySince`), e.g. right after a promotion. The refusal applies nothing,
/// so the driver asks again for this long before it answers `Failed`.
const REFUSAL_RETRY: Duration = Duration::from_secs(10);
const UNHEALTHY_REFUSAL: &str = "etcdserver: unhealthy cluster";
/// Bound on the reseed request to a member's supervisor (it stops etcd first: up to 10 s).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything `trireme etcd scheduler` needs, validated.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--master`, as given.
    pub master: String,
    pub config: Config,
    /// Address of the admin HTTP API.
    pub admin_listen: String,
    pub persistence: Persistence,
    pub failover_timeout_seconds: f64,
    pub user: String,
    pub webui_url: Option<String>,
}

/// Where the framework id and task map are kept.
#[derive(Debug, Clone)]
pub enum Persistence {
    /// `--state_dir`: a state file.
    Dir(PathBuf),
    /// `--zk-framework-persist`: a znode under this `zk://` URL.
    ZooKeeper(String),
}

enum Store {
    File(StateFile),
    Zk(Box<ZkStore>),
}

impl Store {
    async fn open(persistence: &Persistence, framework_name: &str) -> anyhow::Result<Store> {
        Ok(match persistence {
            Persistence::Dir(dir) => Store::File(StateFile::open(dir)?),
            Persistence::ZooKeeper(url) => {
                Store::Zk(Box::new(ZkStore::connect(url, framework_name).await?))
            }
        })
    }

    fn describe(&self) -> String {
        match self {
            Store::File(file) => file.path().display().to_string(),
            Store::Zk(zk) => zk.describe(),
        }
    }

    async fn load(&mut self) -> anyhow::Result<PersistedState> {
        match self {
            Store::File(file) => file.load(),
            Store::Zk(zk) => zk.load().await,
        }
    }

    async fn save(&mut self, state: &PersistedState) -> anyhow::Result<()> {
        match self {
            Store::File(file) => file.save(state),
            Store::Zk(zk) => zk.save(state).await,
        }
    }
}

/// The driver's closed set of events.
#[derive(Debug)]
enum Event {
    Scheduler(SchedulerEvent),
    /// The answer of an etcd call the driver spawned (health report, change result).
    Answer(Input),
    Admin(AdminRequest),
    Tick,
    Terminate,
}

struct Driver {
    reconciler: Reconciler,
    scheduler: scheduler::Scheduler,
    etcd: EtcdClient,
    probe_etcd: EtcdClient,
    control: reqwest::Client,
    store: Store,
    answers: mpsc::UnboundedSender<Input>,
    view: SharedView,
    start: Instant,
    probe_key: Vec<u8>,
}

fn framework_info(options: &Options, framework_id: Option<String>) -> FrameworkInfo {
    let mut capability = api::v1::framework_info::Capability::default();
    capability.set_type(api::v1::framework_info::capability::Type::MultiRole);
    FrameworkInfo {
        user: options.user.clone(),
        name: options.config.framework_name.clone(),
        id: framework_id.map(FrameworkId::from),
        failover_timeout: Some(options.failover_timeout_seconds),
        checkpoint: Some(true),
        roles: vec!["*".to_owned()],
        webui_url: options.webui_url.clone(),
        capabilities: vec![capability],
        ..FrameworkInfo::default()
    }
}

/// Runs the scheduler until SIGTERM (Ok) or until it cannot go on (Err).
pub async fn run(options: Options) -> anyhow::Result<()> {
    let mut store = Store::open(&options.persistence, &options.config.framework_name).await?;
    let persisted = store.load().await?;
    tracing::info!(
        framework_id = ?persisted.framework_id,
        members = persisted.members.len(),
        "loaded {}",
        store.describe()
    );
    let info = framework_info(&options, persisted.framework_id.clone());
    // `host:port`, or the masters' ZooKeeper group (`zk://...`): the library follows the leader.
    let master = scheduler::MasterDetector::parse(&options.master)
        .with_context(|| format!("--master '{}'", options.master))?;
    let view: SharedView = Arc::new(RwLock::new(View::default()));
    let (requests_tx, mut requests) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind(&options.admin_listen)
        .await
        .with_context(|| format!("cannot listen on the admin port {}", options.admin_listen))?;
    let app = admin::router(view.clone(), requests_tx);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("admin server stopped: {e}");
        }
    });
    let (scheduler, mut events) =
        scheduler::subscribe(scheduler::Config::with_detector(master, info))?;
    let (answers, mut answers_rx) = mpsc::unbounded_channel();
    let probe_key = format!("/trireme/{}/health", options.config.framework_name).into_bytes();
    let mut driver = Driver {
        reconciler: Reconciler::recover(options.config.clone(), persisted),
        scheduler,
        etcd: EtcdClient::new(ETCD_TIMEOUT)?,
        probe_etcd: EtcdClient::new(PROBE_TIMEOUT)?,
        control: reqwest::Client::builder()
            .timeout(CONTROL_TIMEOUT)
            .build()?,
        store,
        answers,
        view,
        start: Instant::now(),
        probe_key,
    };
    driver.publish();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        let event = tokio::select! {
            e = events.recv() => match e {
                Some(e) => Event::Scheduler(e),
                None => anyhow::bail!("the scheduler library stopped"),
            },
            Some(input) = answers_rx.recv() => Event::Answer(input),
            Some(request) = requests.recv() => Event::Admin(request),
            _ = tick.tick() => Event::Tick,
            _ = terminate.recv() => Event::Terminate,
        };
        match event {
            Event::Scheduler(e) => driver.on_scheduler(e).await?,
            Event::Answer(input) => {
                driver.step(input).await?;
            }
            Event::Admin(AdminRequest::Reseed(reply)) => driver.on_reseed(reply).await?,
            Event::Tick => {
                driver.step(Input::Tick).await?;
            }
            Event::Terminate => {
                tracing::info!("SIGTERM: stopping; etcd keeps running on the agents");
                driver.scheduler.close();
                return Ok(());
            }
        }
    }
}

impl Driver {
    fn publish(&self) {
        let view = View::of(self.reconciler.stats(), self.reconciler.members());
        match self.view.write() {
            Ok(mut v) => *v = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }

    /// Steps the reconciler and executes its actions in order; the reason of a
    /// `ReseedRejected`, if one came out.
    async fn step(&mut self, input: Input) -> anyhow::Result<Option<String>> {
        let now = self.start.elapsed();
        let actions = self.reconciler.handle(now, input);
        let mut rejected = None;
        for action in actions {
            if let Action::ReseedRejected { reason } = action {
                rejected = Some(reason);
                continue;
            }
            self.execute(action).await?;
        }
        self.publish();
        Ok(rejected)
    }

    async fn on_scheduler(&mut self, event: SchedulerEvent) -> anyhow::Result<()> {
        match event {
            SchedulerEvent::Connected(session) => {
                tracing::info!(framework_id = %session.framework_id.value, master = %session.master.host, "subscribed");
                self.step(Input::Subscribed {
                    framework_id: session.framework_id.value,
                })
                .await?;
            }
            SchedulerEvent::Event(e) => self.on_master_event(*e).await?,
            SchedulerEvent::Disconnected { reason } => {
                tracing::warn!("disconnected from the master: {reason}");
                self.step(Input::Disconnected).await?;
            }
            SchedulerEvent::Closed { reason } => {
                anyhow::bail!("the master closed our subscription for good: {reason}")
            }
        }
        Ok(())
    }

    async fn on_master_event(&mut self, e: MasterEvent) -> anyhow::Result<()> {
        match e.r#type() {
            event::Type::Offers => {
                let offers = e.offers.map(|o| o.offers).unwrap_or_default();
                self.step(Input::Offers(offers)).await?;
            }
            event::Type::Rescind => {
                if let Some(rescind) = e.rescind {
                    self.step(Input::OfferRescinded {
                        offer_id: rescind.offer_id.value,
                    })
                    .await?;
                }
            }
            event::Type::Update => {
                if let Some(update) = e.update {
                    let status = update.status;
                    tracing::info!(
                        task_id = %status.task_id.value,
                        state = ?status.state(),
                        message = status.message.as_deref().unwrap_or(""),
                        "task update"
                    );
                    self.step(Input::TaskStatus(status.clone())).await?;
                    self.acknowledge(status);
                }
            }
            event::Type::Failure => {
                let failure = e.failure.unwrap_or_default();
                if let (Some(agent), None) = (failure.agent_id, failure.executor_id) {
                    tracing::warn!(agent_id = %agent.value, "agent lost");
                    self.step(Input::AgentLost {
                        agent_id: agent.value,
                    })
                    .await?;
                }
            }
            event::Type::Error => {
                let message = e.error.map(|e| e.message).unwrap_or_default();
                tracing::error!("the master sent ERROR: {message}");
            }
            _ => {}
        }
        Ok(())
    }

    async fn on_reseed(
        &mut self,
        reply: tokio::sync::oneshot::Sender<ReseedAnswer>,
    ) -> anyhow::Result<()> {
        let total_loss = self.reconciler.stats().total_loss;
        let answer = match self.step(Input::ReseedRequested).await? {
            Some(reason) => Err(reason),
            None if total_loss => {
                Ok("every member was lost: a new, empty cluster will be started".to_owned())
            }
            None => Ok("reseeding".to_owned()),
        };
        tracing::warn!(?answer, "reseed requested");
        let _ = reply.send(answer);
        Ok(())
    }

    fn acknowledge(&self, status: TaskStatus) {
        let scheduler = self.scheduler.clone();
        tokio::spawn(async move {
            if let Err(e) = scheduler.acknowledge_status(&status).await {
                tracing::warn!(task_id = %status.task_id.value, "acknowledge failed: {e}");
            }
        });
    }

    /// Client URLs of running voters: where membership changes go.
    fn voter_urls(&self) -> Vec<String> {
        self.reconciler
            .members()
            .filter(|m| m.phase == Phase::Running && !m.learner)
            .map(|m| m.client_url())
            .collect()
    }

    async fn execute(&mut self, action: Action) -> anyhow::Result<()> {
        match action {
            Action::Persist(state) => {
                self.store.save(&state).await?;
            }
            Action::Reconcile { tasks } => {
                let tasks = tasks
                    .into_iter()
                    .map(|t| (TaskId::from(t.task_id), Some(AgentId::from(t.agent_id))))
                    .collect();
                let scheduler = self.scheduler.clone();
                tokio::spawn(async move {
                    if let Err(e) = scheduler.reconcile(tasks).await {
                        tracing::warn!("reconcile failed: {e}");
                    }
                });
            }
            Action::Launch { offer_id, task } => self.launch(offer_id, *task),
            Action::Decline {
                offer_ids,
                refuse_seconds,
            } => {
                let ids = offer_ids.into_iter().map(OfferId::from).collect();
                let scheduler = self.scheduler.clone();
                tokio::spawn(async move {
                    let filters = Some(calls::refuse_for(refuse_seconds));
                    if let Err(e) = scheduler.decline(ids, filters).await {
                        tracing::debug!("decline failed: {e}");
                    }
                });
            }
            Action::Kill { task_id, agent_id } => {
                tracing::info!(%task_id, %agent_id, "killing");
                let scheduler = self.scheduler.clone();
                let agent = (!agent_id.is_empty()).then(|| AgentId::from(agent_id));
                tokio::spawn(async move {
                    if let Err(e) = scheduler.kill(TaskId::from(task_id), agent, None).await {
                        tracing::warn!("kill failed: {e}");
                    }
                });
            }
            Action::AddMember {
                name,
                peer_url,
                learner,
            } => {
                tracing::info!(%name, %peer_url, learner, "adding etcd member");
                self.change(move |etcd, url| {
                    let peer_url = peer_url.clone();
                    async move {
                        etcd.member_add(&url, &peer_url, learner)
                            .await
                            .map(|member_id| ChangeResult::Added { member_id })
                    }
                });
            }
            Action::PromoteMember { member_id } => {
                tracing::info!(member_id = format!("{member_id:x}"), "promoting learner");
                self.change(move |etcd, url| async move {
                    etcd.member_promote(&url, member_id)
                        .await
                        .map(|()| ChangeResult::Promoted)
                });
            }
            Action::RemoveMember { member_id } => {
                tracing::info!(member_id = format!("{member_id:x}"), "removing etcd member");
                self.change(move |etcd, url| async move {
                    etcd.member_remove(&url, member_id)
                        .await
                        .map(|()| ChangeResult::Removed)
                });
            }
            Action::ProbeHealth {
                client_urls,
                write,
                probe_id,
            } => {
                let etcd = self.probe_etcd.clone();
                let key = write.then(|| self.probe_key.clone());
                let answers = self.answers.clone();
                tokio::spawn(async move {
                    let probe = etcd.probe(&client_urls, key.as_deref(), probe_id).await;
                    let _ = answers.send(Input::HealthReport(probe));
                });
            }
            Action::ForceNewCluster {
                task_id,
                control_url,
                ..
            } => {
                tracing::warn!(%task_id, %control_url, "reseed: forcing a new cluster on this member");
                let control = self.control.clone();
                tokio::spawn(async move {
                    let url = format!("{control_url}/force-new-cluster");
                    match control.post(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            tracing::info!(%task_id, "the seed restarted with --force-new-cluster")
                        }
                        Ok(r) => tracing::error!(%task_id, status = %r.status(), "reseed refused"),
                        Err(e) => tracing::error!(%task_id, "reseed request failed: {e}"),
                    }
                });
            }
            Action::ReseedRejected { reason } => {
                tracing::info!("reseed rejected: {reason}");
            }
        }
        Ok(())
    }

    fn launch(&self, offer_id: String, task: api::v1::TaskInfo) {
        let task_id = task.task_id.clone();
        let agent_id = task.agent_id.clone();
        tracing::info!(task_id = %task_id.value, agent_id = %agent_id.value, "launching etcd member");
        let scheduler = self.scheduler.clone();
        tokio::spawn(async move {
            let offers = vec![OfferId::from(offer_id)];
            let filters = Some(calls::refuse_for(1.0));
            if let Err(e) = scheduler.launch(offers, vec![task], filters).await {
                // The master's answer to an explicit reconciliation settles the task.
                tracing::warn!(task_id = %task_id.value, "launch failed: {e}");
                let _ = scheduler.reconcile(vec![(task_id, Some(agent_id))]).await;
            }
        });
    }

    /// Runs one membership change against the running voters, trying the next only when a
    /// member was not reached at all (so no change is applied twice), and always answers.
    fn change<F, Fut>(&self, call: F)
    where
        F: Fn(EtcdClient, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<ChangeResult, EtcdError>> + Send,
    {
        let urls = self.voter_urls();
        let etcd = self.etcd.clone();
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let mut result = ChangeResult::Failed {
                reason: "no running voter to ask".to_owned(),
            };
            let deadline = Instant::now() + REFUSAL_RETRY;
            'attempts: loop {
                for url in &urls {
                    match call(etcd.clone(), url.clone()).await {
                        Ok(done) => {
                            result = done;
                            break 'attempts;
                        }
                        Err(EtcdError::Unreached(reason)) => {
                            result = ChangeResult::Failed { reason };
                        }
                        Err(EtcdError::Failed(reason)) => {
                            let retry =
                                reason.contains(UNHEALTHY_REFUSAL) && Instant::now() < deadline;
                            result = ChangeResult::Failed { reason };
                            if retry {
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                continue 'attempts;
                            }
                            break 'attempts;
                        }
                    }
                }
                break;
            }
            if let ChangeResult::Failed { reason } = &result {
                tracing::warn!("membership change failed: {reason}");
            }
            let _ = answers.send(Input::ChangeResult(result));
        });
    }
}
