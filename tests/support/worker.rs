//! A client that follows the world file as ECS would run its service: it connects to the node
//! its service's task definition points at now, and when `warren apply` (or `rollback`) moves
//! the service, it closes that connection and connects to the other node, as a new task would.
//!
//! ```ignore
//! let orders = Worker::start(&world_path, "shop", "orders", Role::consume("orders"), [old, new]);
//! orders.wait_for(|s| s.node == Some(0), Duration::from_secs(10));   // on the old node
//! // ... warren apply ...
//! assert_eq!(orders.state().node, Some(1));                            // moved with its service
//! ```
//!
//! Its connection is named after the service (the management API's `user_provided_name`), so
//! warren maps it to the service. A consumer records every delivery (its body and arrival time,
//! in [`Log::receipts`]), then acknowledges it, with a prefetch of 20; a publisher sends
//! persistent messages numbered from 1, whose body names the service and the number
//! (`apprecord:17`), with publisher confirms, one every `every` (a steady rate: a late message
//! is not followed by a burst), and records the numbers the broker confirmed
//! ([`Log::confirmed`]). A message that was not confirmed is not sent again: the next one has the
//! next number. A publish that fails closes the connection, and the worker connects again.
//! Everything runs on a thread of its own; dropping the worker (or [`Worker::stop`]) stops it and
//! closes its connection.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;

use super::rabbit::{RabbitNode, PASSWORD, USER};

/// What the worker does on the node it is connected to.
#[derive(Debug, Clone)]
pub enum Role {
    /// Consumes `queue` (vhost `/`), acknowledging each message.
    Consume { queue: String },
    /// Publishes a numbered message to `exchange` with `routing_key` every `every`.
    Publish {
        exchange: String,
        routing_key: String,
        every: Duration,
    },
}

impl Role {
    pub fn consume(queue: &str) -> Role {
        Role::Consume {
            queue: queue.to_owned(),
        }
    }

    pub fn publish(exchange: &str, routing_key: &str, every: Duration) -> Role {
        Role::Publish {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            every,
        }
    }
}

/// What the worker has seen and done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The index (in the nodes it was given) of the node it is connected to now.
    pub node: Option<usize>,
    /// How many times it has connected.
    pub connects: u32,
    /// Messages consumed and acknowledged.
    pub received: u64,
    /// Messages published and confirmed by the broker.
    pub confirmed: u64,
    /// The last error it met (it keeps trying).
    pub error: Option<String>,
}

/// What the worker recorded, message by message.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// A publisher's messages that the broker confirmed, by number, in the order sent.
    pub confirmed: Vec<u64>,
    /// A consumer's deliveries in the order they arrived, redeliveries included.
    pub receipts: Vec<Receipt>,
}

/// One delivery to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The message's body as text (`apprecord:17` from this module's publishers).
    pub body: String,
    /// When it arrived, before it was acknowledged.
    pub at: Instant,
}

/// How often a worker reads the world file to see whether its service moved.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// A service's client, following the world file.
pub struct Worker {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    log: Arc<Mutex<Log>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the client of `cluster/service` in the world file `world`, on whichever of
    /// `nodes` its task definition points at (by `host:port` in an environment value).
    pub fn start(
        world: &Path,
        cluster: &str,
        service: &str,
        role: Role,
        nodes: [&'static RabbitNode; 2],
    ) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State::default()));
        let log = Arc::new(Mutex::new(Log::default()));
        let follow = Follow {
            world: world.to_owned(),
            cluster: cluster.to_owned(),
            service: service.to_owned(),
            role,
            nodes,
            stop: Arc::clone(&stop),
            state: Arc::clone(&state),
            log: Arc::clone(&log),
        };
        let thread = thread::Builder::new()
            .name(format!("worker {service}"))
            .spawn(move || follow.run())
            .expect("a worker thread");
        Worker {
            stop,
            state,
            log,
            thread: Some(thread),
        }
    }

    /// What it has recorded so far, message by message.
    pub fn log(&self) -> Log {
        self.log.lock().expect("worker log").clone()
    }

    /// Stops it (a publish under way is finished and its confirm awaited first), closes its
    /// connection, and returns what it recorded.
    pub fn stop(mut self) -> Log {
        self.halt();
        self.log()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// What it has seen and done so far.
    pub fn state(&self) -> State {
        self.state.lock().expect("worker state").clone()
    }

    /// Waits up to `timeout` for `check` to hold of its state; whether it did.
    pub fn wait_for(&self, check: impl Fn(&State) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check(&self.state()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The worker's thread.
struct Follow {
    world: PathBuf,
    cluster: String,
    service: String,
    role: Role,
    nodes: [&'static RabbitNode; 2],
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    log: Arc<Mutex<Log>>,
}

/// An open connection to one node.
struct Session {
    node: usize,
    connection: Connection,
    channel: Channel,
}

impl Follow {
    fn run(self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(self.follow());
    }

    fn set(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.lock().expect("worker state"));
    }

    async fn follow(&self) {
        let mut session: Option<Session> = None;
        let mut sequence = 0u64;
        let mut next_publish = Instant::now();
        let mut next_look = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            if Instant::now() >= next_look {
                next_look = Instant::now() + LOOK_EVERY;
                self.follow_the_world(&mut session).await;
            }
            let mut wake = next_look;
            if let (
                Some(s),
                Role::Publish {
                    exchange,
                    routing_key,
                    every,
                },
            ) = (&session, &self.role)
            {
                let now = Instant::now();
                if now >= next_publish {
                    // Steady: the next one is due `every` after this one was, or now if that
                    // is past already.
                    next_publish = (next_publish + *every).max(now);
                    sequence += 1;
                    let body = format!("{}:{sequence}", self.service);
                    match publish(&s.channel, exchange, routing_key, &body).await {
                        Ok(true) => {
                            self.log
                                .lock()
                                .expect("worker log")
                                .confirmed
                                .push(sequence);
                            self.set(|st| st.confirmed += 1);
                        }
                        Ok(false) => self.set(|st| {
                            st.error = Some(format!("message {body} was not confirmed"));
                        }),
                        Err(e) => {
                            self.set(|st| {
                                st.error = Some(format!("message {body}: {e}"));
                                st.node = None;
                            });
                            // A broken channel stays broken: connect again.
                            if let Some(broken) = session.take() {
                                let _ = broken.connection.close(200, "failed".into()).await;
                            }
                            next_look = Instant::now();
                        }
                    }
                }
                wake = wake.min(next_publish);
            }
            tokio::time::sleep_until(wake.into()).await;
        }
        if let Some(s) = session {
            let _ = s.connection.close(200, "stopped".into()).await;
        }
    }

    /// Connects to the node the world file points the service at, leaving the one it was on.
    async fn follow_the_world(&self, session: &mut Option<Session>) {
        let wanted = self.pointed_at();
        if session.as_ref().map(|s| s.node) == wanted {
            return;
        }
        if let Some(old) = session.take() {
            // As a task that is replaced: its connection closes.
            let _ = old.connection.close(200, "moved".into()).await;
            self.set(|s| s.node = None);
        }
        if let Some(node) = wanted {
            match self.connect(node).await {
                Ok(s) => {
                    self.set(|st| {
                        st.node = Some(node);
                        st.connects += 1;
                    });
                    *session = Some(s);
                }
                Err(e) => self.set(|s| s.error = Some(e.to_string())),
            }
        }
    }

    /// Connects to node `index` as the service, and starts consuming or enables confirms.
    async fn connect(&self, index: usize) -> Result<Session, lapin::Error> {
        let node = self.nodes[index];
        let url = format!(
            "amqp://{USER}:{PASSWORD}@{}:{}/%2F",
            node.ip(),
            node.amqp_port()
        );
        let properties =
            ConnectionProperties::default().with_connection_name(self.service.clone().into());
        let connection = Connection::connect(&url, properties).await?;
        let channel = connection.create_channel().await?;
        match &self.role {
            Role::Consume { queue } => {
                channel.basic_qos(20, BasicQosOptions::default()).await?;
                let consumer = channel
                    .basic_consume(
                        queue.as_str().into(),
                        self.service.as_str().into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                let state = Arc::clone(&self.state);
                let log = Arc::clone(&self.log);
                consumer.set_delegate(move |delivery: lapin::message::DeliveryResult| {
                    let state = Arc::clone(&state);
                    let log = Arc::clone(&log);
                    async move {
                        if let Ok(Some(delivery)) = delivery {
                            log.lock().expect("worker log").receipts.push(Receipt {
                                body: String::from_utf8_lossy(&delivery.data).into_owned(),
                                at: Instant::now(),
                            });
                            if delivery.ack(BasicAckOptions::default()).await.is_ok() {
                                state.lock().expect("worker state").received += 1;
                            }
                        }
                    }
                });
            }
            Role::Publish { .. } => {
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
            }
        }
        Ok(Session {
            node: index,
            connection,
            channel,
        })
    }

    /// The node the service's task definition points at now, per the world file.
    fn pointed_at(&self) -> Option<usize> {
        let text = std::fs::read_to_string(&self.world).ok()?;
        let world: Value = serde_json::from_str(&text).ok()?;
        let running = world["clusters"]
            .as_array()?
            .iter()
            .filter(|c| c["name"] == self.cluster.as_str())
            .flat_map(|c| c["services"].as_array().into_iter().flatten())
            .find(|s| s["name"] == self.service.as_str())?["task_definition"]
            .as_str()?
            .to_owned();
        let (family, revision) = running.rsplit_once(':')?;
        let revision: u64 = revision.parse().ok()?;
        let td = world["task_definitions"]
            .as_array()?
            .iter()
            .find(|t| t["family"] == family && t["revision"] == revision)?;
        let text = td.to_string();
        self.nodes
            .iter()
            .position(|n| text.contains(&format!("{}:{}", n.ip(), n.amqp_port())))
    }
}

/// Publishes `body` (persistent) and waits for the broker's confirm.
async fn publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &str,
) -> Result<bool, lapin::Error> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    Ok(confirm.is_ack())
}
