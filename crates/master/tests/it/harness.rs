//! Shared fixtures: a master in the test's runtime, RecordIO stream readers, a fake agent.

use std::net::SocketAddr;
use std::time::Duration;

use api::codec::{self, ContentType};
use api::internal::{AgentCall, AgentEvent, agent_call, agent_event};
use api::v1::scheduler::{Call, Event, call, event};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use prost::Message;
use tokio::sync::oneshot;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestMaster {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestMaster {
    pub async fn start() -> TestMaster {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut master::Config)) -> TestMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let mut config = master::Config::new(addr.ip(), addr.port());
        config.allocation_interval = Duration::from_millis(100);
        adjust(&mut config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(master::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        TestMaster {
            addr,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits for `serve` to return on its own (the master exits), with its outcome.
    pub async fn outcome(mut self) -> anyhow::Result<()> {
        let task = self.task.take().expect("serve task");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("serve returns")
            .expect("serve task joins")
    }

    /// Stops the master and checks that `serve` returned cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(WAIT, task)
                .await
                .expect("serve returns after shutdown");
            result.expect("serve task joins").expect("serve returns Ok");
        }
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), 200, "GET {path}");
        let bytes = response.bytes().await.expect("body");
        serde_json::from_slice(&bytes).expect("JSON body")
    }

    /// POSTs a scheduler call; returns (status, body).
    pub async fn call(
        &self,
        ct: ContentType,
        stream_id: Option<&str>,
        call: &Call,
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(self.url("/api/v1/scheduler"))
            .header("Content-Type", ct.mime())
            .body(codec::encode(ct, call));
        if let Some(id) = stream_id {
            request = request.header("Mesos-Stream-Id", id);
        }
        let response = request.send().await.expect("POST call");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Subscribes a framework; returns its stream after SUBSCRIBED and the first HEARTBEAT.
    pub async fn subscribe(&self, ct: ContentType, info: api::v1::FrameworkInfo) -> Scheduler {
        let call = Call {
            r#type: Some(call::Type::Subscribe as i32),
            framework_id: info.id.clone(),
            subscribe: Some(call::Subscribe {
                framework_info: info,
                ..Default::default()
            }),
            ..Default::default()
        };
        let response = self
            .client
            .post(self.url("/api/v1/scheduler"))
            .header("Content-Type", ct.mime())
            .header("Accept", ct.mime())
            .header("Connection", "close")
            .body(codec::encode(ct, &call))
            .send()
            .await
            .expect("POST subscribe");
        assert_eq!(response.status(), 200);
        let stream_id = response
            .headers()
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut events = Records::new(response);
        let first: Event = events.next_message(ct).await;
        let framework_id = match first.r#type() {
            event::Type::Subscribed => first.subscribed.expect("subscribed").framework_id.value,
            other => {
                return Scheduler {
                    ct,
                    stream_id,
                    framework_id: String::new(),
                    events,
                    first: Some((other, first.error)),
                };
            }
        };
        let heartbeat: Event = events.next_message(ct).await;
        assert_eq!(heartbeat.r#type(), event::Type::Heartbeat);
        Scheduler {
            ct,
            stream_id,
            framework_id,
            events,
            first: None,
        }
    }
}

impl Drop for TestMaster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn framework(name: &str) -> api::v1::FrameworkInfo {
    api::v1::FrameworkInfo {
        user: "root".into(),
        name: name.into(),
        ..Default::default()
    }
}

/// A RecordIO stream of an HTTP response body.
pub struct Records {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: api::recordio::Decoder,
}

impl Records {
    pub fn new(response: reqwest::Response) -> Records {
        Records {
            body: response.bytes_stream().boxed(),
            decoder: api::recordio::Decoder::new(64 << 20),
        }
    }

    /// The next record, or None when the stream ended.
    pub async fn next_record(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(record) = self.decoder.next().expect("well-formed RecordIO") {
                return Some(record);
            }
            let chunk = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("a record within 10s")?;
            self.decoder.push(&chunk.ok()?);
        }
    }

    pub async fn next_message<M: prost::Message + prost::Name + Default>(
        &mut self,
        ct: ContentType,
    ) -> M {
        let record = self.next_record().await.expect("stream still open");
        codec::decode(ct, &record).expect("decodable event")
    }
}

pub struct Scheduler {
    pub ct: ContentType,
    pub stream_id: String,
    pub framework_id: String,
    pub events: Records,
    /// Set when the first event was not SUBSCRIBED (type and error).
    pub first: Option<(event::Type, Option<event::Error>)>,
}

impl Scheduler {
    /// The next event that is not a HEARTBEAT.
    pub async fn next(&mut self) -> Event {
        loop {
            let event: Event = self.events.next_message(self.ct).await;
            if event.r#type() != event::Type::Heartbeat {
                return event;
            }
        }
    }

    pub async fn expect(&mut self, kind: event::Type) -> Event {
        let event = self.next().await;
        assert_eq!(event.r#type(), kind, "unexpected event {event:?}");
        event
    }

    pub fn call(&self, kind: call::Type) -> Call {
        Call {
            r#type: Some(kind as i32),
            framework_id: Some(self.framework_id.as_str().into()),
            ..Default::default()
        }
    }

    pub async fn send(&self, master: &TestMaster, call: &Call) -> (u16, String) {
        master.call(self.ct, Some(&self.stream_id), call).await
    }
}

/// An agent that speaks the agent protocol from the test.
pub struct FakeAgent {
    pub agent_id: String,
    pub stream_id: String,
    pub events: Records,
}

impl FakeAgent {
    pub async fn register(master: &TestMaster, resources: &str) -> FakeAgent {
        let info = api::v1::AgentInfo {
            hostname: "127.0.0.1".into(),
            port: Some(5051),
            resources: api::resources::Resources::parse(resources)
                .expect("resources")
                .into_vec(),
            ..Default::default()
        };
        Self::subscribe(
            master,
            agent_call::Subscribe {
                agent_info: info,
                ..Default::default()
            },
        )
        .await
    }

    pub async fn subscribe(master: &TestMaster, subscribe: agent_call::Subscribe) -> FakeAgent {
        let call = AgentCall {
            r#type: Some(agent_call::Type::Subscribe as i32),
            subscribe: Some(subscribe),
            ..Default::default()
        };
        let response = master
            .client
            .post(master.url("/internal/agent"))
            .header("Content-Type", "application/x-protobuf")
            .body(call.encode_to_vec())
            .send()
            .await
            .expect("agent subscribe");
        assert_eq!(response.status(), 200);
        let stream_id = response
            .headers()
            .get("Trireme-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut events = Records::new(response);
        let registered: AgentEvent = events.next_message(ContentType::Protobuf).await;
        assert_eq!(registered.r#type(), agent_event::Type::Registered);
        let agent_id = registered.registered.expect("registered").agent_id.value;
        FakeAgent {
            agent_id,
            stream_id,
            events,
        }
    }

    /// The next event that is not a PING.
    pub async fn next(&mut self) -> AgentEvent {
        loop {
            let event: AgentEvent = self.events.next_message(ContentType::Protobuf).await;
            if event.r#type() != agent_event::Type::Ping {
                return event;
            }
        }
    }

    pub async fn post(&self, master: &TestMaster, mut call: AgentCall) -> u16 {
        call.agent_id = Some(self.agent_id.as_str().into());
        let response = master
            .client
            .post(master.url("/internal/agent"))
            .header("Content-Type", "application/x-protobuf")
            .header("Trireme-Stream-Id", &self.stream_id)
            .body(call.encode_to_vec())
            .send()
            .await
            .expect("agent call");
        response.status().as_u16()
    }

    /// Sends a status update with a fresh uuid; returns the uuid.
    pub async fn update(
        &self,
        master: &TestMaster,
        framework_id: &str,
        task_id: &str,
        state: api::v1::TaskState,
    ) -> Vec<u8> {
        let uuid = uuid::Uuid::new_v4().as_bytes().to_vec();
        let mut status = api::v1::TaskStatus {
            task_id: task_id.into(),
            agent_id: Some(self.agent_id.as_str().into()),
            uuid: Some(uuid.clone()),
            timestamp: Some(1.0),
            ..Default::default()
        };
        status.set_state(state);
        status.set_source(api::v1::task_status::Source::Executor);
        let call = AgentCall {
            r#type: Some(agent_call::Type::Update as i32),
            update: Some(agent_call::Update {
                framework_id: framework_id.into(),
                status,
                latest_state: Some(state as i32),
            }),
            ..Default::default()
        };
        assert_eq!(self.post(master, call).await, 202);
        uuid
    }
}

/// A LAUNCH of one command task using `resources` of `offer`.
pub fn launch(offer: &api::v1::Offer, task_id: &str, resources: &str) -> call::Accept {
    let role = offer
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.clone())
        .unwrap_or_else(|| "*".into());
    let task = api::v1::TaskInfo {
        name: task_id.into(),
        task_id: task_id.into(),
        agent_id: offer.agent_id.clone(),
        resources: api::resources::Resources::parse(resources)
            .expect("resources")
            .allocated_to(&role)
            .into_vec(),
        command: Some(api::v1::CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![api::v1::offer::Operation {
            r#type: Some(api::v1::offer::operation::Type::Launch as i32),
            launch: Some(api::v1::offer::operation::Launch {
                task_infos: vec![task],
            }),
            ..Default::default()
        }],
        filters: None,
    }
}
