//! End-to-end throughput through `master::serve` over loopback HTTP: a scheduler that
//! launches many tasks per ACCEPT and acknowledges every update, and a fake agent that
//! finishes every task at once. Prints tasks per second (ACCEPT to acknowledged
//! TASK_FINISHED); asserts nothing about timing.
//!
//! `cargo bench -p master --bench http_launch [-- <tasks> <tasks-per-accept> <json|protobuf>]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::codec::{self, ContentType};
use api::internal::{AgentCall, AgentEvent, agent_call, agent_event};
use api::resources::Resources;
use api::v1::scheduler::{Call, Event, call, event};
use api::v1::{self, TaskState};
use futures_util::StreamExt;
use prost::Message;
use tokio::sync::Semaphore;

const IN_FLIGHT: usize = 64;

struct Stream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: api::recordio::Decoder,
}

impl Stream {
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Some(record)) = self.decoder.next() {
                return Some(record);
            }
            let chunk = self.body.next().await?.ok()?;
            self.decoder.push(&chunk);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let per_accept: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let ct = match args.next().as_deref() {
        Some("protobuf") => ContentType::Protobuf,
        _ => ContentType::Json,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(total, per_accept, ct))
}

async fn run(total: usize, per_accept: usize, ct: ContentType) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = master::Config::new(addr.ip(), addr.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(master::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT * 2)
        .build()?;
    let url = format!("http://{addr}");

    // The agent: finishes every task it is given.
    let info = v1::AgentInfo {
        hostname: "127.0.0.1".into(),
        resources: Resources::parse("cpus:100000;mem:100000000")?.into_vec(),
        ..Default::default()
    };
    let subscribe = AgentCall {
        r#type: Some(agent_call::Type::Subscribe as i32),
        subscribe: Some(agent_call::Subscribe {
            agent_info: info,
            ..Default::default()
        }),
        ..Default::default()
    };
    let response = client
        .post(format!("{url}/internal/agent"))
        .header("Content-Type", "application/x-protobuf")
        .body(subscribe.encode_to_vec())
        .send()
        .await?;
    let agent_stream_id = response
        .headers()
        .get("Trireme-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut agent_events = Stream {
        body: response.bytes_stream().boxed(),
        decoder: api::recordio::Decoder::new(1 << 30),
    };
    let registered = AgentEvent::decode(agent_events.next().await.unwrap_or_default().as_slice())?;
    let agent_id = registered
        .registered
        .map(|r| r.agent_id.value)
        .unwrap_or_default();
    let agent_client = client.clone();
    let agent_url = url.clone();
    let agent_id2 = agent_id.clone();
    tokio::spawn(async move {
        let limit = Arc::new(Semaphore::new(IN_FLIGHT));
        while let Some(record) = agent_events.next().await {
            let Ok(event) = AgentEvent::decode(record.as_slice()) else {
                continue;
            };
            if event.r#type() != agent_event::Type::RunTask {
                continue;
            }
            let Some(run) = event.run_task else { continue };
            let framework_id = run.framework_info.id.clone().unwrap_or_default();
            let mut status = v1::TaskStatus {
                task_id: run.task.task_id.clone(),
                agent_id: Some(agent_id2.as_str().into()),
                uuid: Some(uuid::Uuid::new_v4().as_bytes().to_vec()),
                ..Default::default()
            };
            status.set_state(TaskState::TaskFinished);
            let call = AgentCall {
                r#type: Some(agent_call::Type::Update as i32),
                agent_id: Some(agent_id2.as_str().into()),
                update: Some(agent_call::Update {
                    framework_id,
                    status,
                    latest_state: Some(TaskState::TaskFinished as i32),
                }),
                ..Default::default()
            };
            let permit = limit.clone().acquire_owned().await;
            let request = agent_client
                .post(format!("{agent_url}/internal/agent"))
                .header("Content-Type", "application/x-protobuf")
                .header("Trireme-Stream-Id", agent_stream_id.clone())
                .body(call.encode_to_vec());
            tokio::spawn(async move {
                let _ = request.send().await;
                drop(permit);
            });
        }
    });

    // The scheduler.
    let framework_info = v1::FrameworkInfo {
        user: "u".into(),
        name: "bench".into(),
        ..Default::default()
    };
    let subscribe = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info,
            ..Default::default()
        }),
        ..Default::default()
    };
    let response = client
        .post(format!("{url}/api/v1/scheduler"))
        .header("Content-Type", ct.mime())
        .header("Accept", ct.mime())
        .body(codec::encode(ct, &subscribe))
        .send()
        .await?;
    let stream_id = response
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut events = Stream {
        body: response.bytes_stream().boxed(),
        decoder: api::recordio::Decoder::new(1 << 30),
    };
    let mut framework_id = String::new();
    let mut launched = 0usize;
    let mut finished = 0usize;
    let limit = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut start = None;
    while finished < total {
        let Some(record) = tokio::time::timeout(Duration::from_secs(30), events.next()).await?
        else {
            anyhow::bail!("scheduler stream ended");
        };
        let event: Event = codec::decode(ct, &record)?;
        match event.r#type() {
            event::Type::Subscribed => {
                framework_id = event
                    .subscribed
                    .map(|s| s.framework_id.value)
                    .unwrap_or_default()
            }
            event::Type::Offers => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    // Size the launch to the offer: freed task resources come back as small offers.
                    let fits = (Resources::from_valid(&offer.resources).scalar("cpus") / 0.01)
                        .floor() as usize;
                    let count = per_accept.min(total - launched).min(fits);
                    let tasks: Vec<v1::TaskInfo> = (0..count)
                        .map(|i| v1::TaskInfo {
                            name: "t".into(),
                            task_id: format!("t{}", launched + i).into(),
                            agent_id: offer.agent_id.clone(),
                            resources: Resources::parse("cpus:0.01;mem:1")
                                .unwrap_or_default()
                                .allocated_to("*")
                                .into_vec(),
                            command: Some(v1::CommandInfo {
                                value: Some("true".into()),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect();
                    launched += count;
                    let accept = Call {
                        r#type: Some(call::Type::Accept as i32),
                        framework_id: Some(framework_id.as_str().into()),
                        accept: Some(call::Accept {
                            offer_ids: vec![offer.id],
                            operations: vec![v1::offer::Operation {
                                r#type: Some(v1::offer::operation::Type::Launch as i32),
                                launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
                                ..Default::default()
                            }],
                            filters: Some(v1::Filters {
                                refuse_seconds: Some(0.0),
                            }),
                        }),
                        ..Default::default()
                    };
                    start.get_or_insert_with(Instant::now);
                    client
                        .post(format!("{url}/api/v1/scheduler"))
                        .header("Content-Type", ct.mime())
                        .header("Mesos-Stream-Id", &stream_id)
                        .body(codec::encode(ct, &accept))
                        .send()
                        .await?;
                }
            }
            event::Type::Update => {
                let Some(status) = event.update.map(|u| u.status) else {
                    continue;
                };
                if status.state() == TaskState::TaskFinished {
                    finished += 1;
                }
                let Some(uuid) = status.uuid else { continue };
                let ack = Call {
                    r#type: Some(call::Type::Acknowledge as i32),
                    framework_id: Some(framework_id.as_str().into()),
                    acknowledge: Some(call::Acknowledge {
                        agent_id: agent_id.as_str().into(),
                        task_id: status.task_id,
                        uuid,
                    }),
                    ..Default::default()
                };
                let permit = limit.clone().acquire_owned().await?;
                let request = client
                    .post(format!("{url}/api/v1/scheduler"))
                    .header("Content-Type", ct.mime())
                    .header("Mesos-Stream-Id", &stream_id)
                    .body(codec::encode(ct, &ack));
                tokio::spawn(async move {
                    let _ = request.send().await;
                    drop(permit);
                });
            }
            _ => {}
        }
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    println!(
        "http_launch ({ct:?}): {finished} tasks, {per_accept} per ACCEPT, ACCEPT to TASK_FINISHED in {elapsed:.3}s: {:.0} tasks/s",
        finished as f64 / elapsed
    );
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(())
}
