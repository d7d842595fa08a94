//! Traffic through two real RabbitMQ nodes while warren moves its services: one
//! [`Worker`](super::worker::Worker) per service role, following the world file, and a summary of
//! what arrived.
//!
//! ```ignore
//! let traffic = Traffic::new(&world_path, "esr", [old, new], 2_000)
//!     .publisher("apprecord", "p.apprecord", "apprecord.created")
//!     .consumer("outbound", "p.apprecord.outbound", &["apprecord"])
//!     .start();                       // consumers first, then the publishers, on their nodes
//! let mut traffic = traffic;
//! // ... warren apply ...
//! traffic.publish_until_total(Duration::from_secs(120));   // the total reached: they stop
//! assert!(traffic.await_delivery(Duration::from_secs(60)));
//! let summary = traffic.summary();
//! println!("{}", summary.table());
//! ```
//!
//! - Publishers send numbered persistent messages (`apprecord:17`) with publisher confirms at a
//!   steady rate, chosen so that together they reach the run's total in about
//!   [`PUBLISHING_TIME`]; a message counts as sent only once the broker confirmed it. They go on
//!   until the test says so ([`Running::publish_until_total`]: once the total is reached), so
//!   they send for as long as a migration takes.
//! - Consumers record each delivery (body and arrival time) and then acknowledge it, with a
//!   prefetch of 20.
//! - The routing is the test's to state: each consumer's queue names the publishers whose
//!   messages reach it (topic exchanges bound with `#`, or the default exchange). A queue's
//!   expected messages are its publishers' confirmed ones.
//! - [`Summary`]: per queue, expected, received (distinct), lost (expected and never received),
//!   duplicates (deliveries beyond the first of a message), unconfirmed (received but never
//!   confirmed to its publisher: sent while its connection closed), and the consumer's longest
//!   gap between consecutive receipts while traffic flowed; and the totals. [`Summary::table`]
//!   is a Markdown table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::rabbit::RabbitNode;
use super::worker::{Log, Role, Worker};

/// The messages a run sends when `WARREN_TRAFFIC_MESSAGES` does not say.
pub const DEFAULT_MESSAGES: u64 = 2_000;
/// The variable that sets how many messages a run sends at least (`10000`, say).
pub const MESSAGES_VARIABLE: &str = "WARREN_TRAFFIC_MESSAGES";
/// About how long the publishers take, together, to reach the run's total.
pub const PUBLISHING_TIME: Duration = Duration::from_secs(12);
/// The shortest interval between two messages of one publisher.
const FASTEST: Duration = Duration::from_millis(2);

/// The run's total: `WARREN_TRAFFIC_MESSAGES`, or [`DEFAULT_MESSAGES`].
///
/// # Panics
/// When the variable is set to anything but a whole number from 1 up.
pub fn messages_per_run() -> u64 {
    match std::env::var(MESSAGES_VARIABLE) {
        Err(_) => DEFAULT_MESSAGES,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{MESSAGES_VARIABLE}={text:?} is not a number of messages (1 or more)"),
        },
    }
}

/// The services' roles, before anything runs.
pub struct Traffic {
    world: PathBuf,
    cluster: String,
    nodes: [&'static RabbitNode; 2],
    total: u64,
    /// Service, exchange, routing key.
    publishers: Vec<(String, String, String)>,
    /// Service, queue, the publishers whose messages reach the queue.
    consumers: Vec<(String, String, Vec<String>)>,
}

impl Traffic {
    /// Traffic of services of `cluster` in the world file `world`, on `nodes` (old, new), that
    /// sends at least `total` messages.
    pub fn new(
        world: &Path,
        cluster: &str,
        nodes: [&'static RabbitNode; 2],
        total: u64,
    ) -> Traffic {
        Traffic {
            world: world.to_owned(),
            cluster: cluster.to_owned(),
            nodes,
            total,
            publishers: Vec::new(),
            consumers: Vec::new(),
        }
    }

    /// `service` publishes to `exchange` (`""`: the default exchange) with `routing_key`.
    pub fn publisher(mut self, service: &str, exchange: &str, routing_key: &str) -> Traffic {
        self.publishers.push((
            service.to_owned(),
            exchange.to_owned(),
            routing_key.to_owned(),
        ));
        self
    }

    /// `service` consumes `queue`, which the messages of the publishing services `from` reach.
    pub fn consumer(mut self, service: &str, queue: &str, from: &[&str]) -> Traffic {
        self.consumers.push((
            service.to_owned(),
            queue.to_owned(),
            from.iter().map(|s| (*s).to_owned()).collect(),
        ));
        self
    }

    /// Starts the consumers and waits (up to 20 s each) until each is connected, then the
    /// publishers, and waits until each has a confirmed message.
    ///
    /// # Panics
    /// When a worker does not get that far.
    pub fn start(self) -> Running {
        let publishers = u32::try_from(self.publishers.len().max(1)).unwrap_or(u32::MAX);
        let total = u32::try_from(self.total.max(1)).unwrap_or(u32::MAX);
        let every = (PUBLISHING_TIME * publishers / total).max(FASTEST);
        let up = Duration::from_secs(20);
        let consumers: Vec<Consumer> = self
            .consumers
            .iter()
            .map(|(service, queue, from)| Consumer {
                service: service.clone(),
                queue: queue.clone(),
                from: from.clone(),
                worker: Worker::start(
                    &self.world,
                    &self.cluster,
                    service,
                    Role::consume(queue),
                    self.nodes,
                ),
            })
            .collect();
        for c in &consumers {
            assert!(
                c.worker.wait_for(|s| s.node.is_some(), up),
                "consumer {} of {} did not connect: {:?}",
                c.service,
                c.queue,
                c.worker.state()
            );
        }
        let publishers: Vec<(String, Worker)> = self
            .publishers
            .iter()
            .map(|(service, exchange, key)| {
                let role = Role::publish(exchange, key, every);
                let worker = Worker::start(&self.world, &self.cluster, service, role, self.nodes);
                (service.clone(), worker)
            })
            .collect();
        for (service, worker) in &publishers {
            assert!(
                worker.wait_for(|s| s.confirmed > 0, up),
                "publisher {service} had no message confirmed: {:?}",
                worker.state()
            );
        }
        Running {
            total: self.total,
            every,
            started: Instant::now(),
            publishers,
            consumers,
            sent: BTreeMap::new(),
            traffic_end: None,
        }
    }
}

struct Consumer {
    service: String,
    queue: String,
    from: Vec<String>,
    worker: Worker,
}

/// Traffic under way.
pub struct Running {
    total: u64,
    every: Duration,
    started: Instant,
    /// Publishing services and their workers, until they stop.
    publishers: Vec<(String, Worker)>,
    consumers: Vec<Consumer>,
    /// Each stopped publisher's confirmed message numbers.
    sent: BTreeMap<String, Vec<u64>>,
    /// When the publishers stopped.
    traffic_end: Option<Instant>,
}

impl Running {
    /// The interval between two messages of one publisher.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Messages confirmed so far, all publishers together.
    pub fn confirmed(&self) -> u64 {
        self.publishers
            .iter()
            .map(|(_, w)| w.state().confirmed)
            .sum::<u64>()
            + self.sent.values().map(|v| v.len() as u64).sum::<u64>()
    }

    /// Each worker's service, role and the node it is on now (0 old, 1 new, `None` between).
    pub fn nodes(&self) -> Vec<(String, &'static str, Option<usize>)> {
        let publishers = self
            .publishers
            .iter()
            .map(|(s, w)| (s.clone(), "publisher", w.state().node));
        let consumers = self
            .consumers
            .iter()
            .map(|c| (c.service.clone(), "consumer", c.worker.state().node));
        publishers.chain(consumers).collect()
    }

    /// The node `service`'s consumer is on now.
    pub fn consumer_node(&self, service: &str) -> Option<usize> {
        self.consumers
            .iter()
            .find(|c| c.service == service)
            .and_then(|c| c.worker.state().node)
    }

    /// Waits (up to `timeout`) until `check` holds of the traffic; whether it did.
    pub fn wait_for(&self, check: impl Fn(&Running) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to `timeout`) until every worker still running is on node `node`.
    pub fn wait_all_on(&self, node: usize, timeout: Duration) -> bool {
        self.wait_for(
            |t| t.nodes().iter().all(|(_, _, on)| *on == Some(node)),
            timeout,
        )
    }

    /// Lets the publishers go on until the run's total is confirmed (waiting up to `timeout`),
    /// then stops them. Call it once the migration's `apply` has finished.
    ///
    /// # Panics
    /// When the total is not reached in time (quoting each publisher's state).
    pub fn publish_until_total(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.confirmed() < self.total {
            assert!(
                Instant::now() < deadline,
                "the publishers confirmed {} of {} messages in {timeout:?}: {:?}",
                self.confirmed(),
                self.total,
                self.publishers
                    .iter()
                    .map(|(s, w)| (s, w.state()))
                    .collect::<Vec<_>>()
            );
            thread::sleep(Duration::from_millis(20));
        }
        for (service, worker) in self.publishers.drain(..) {
            let Log { confirmed, .. } = worker.stop();
            self.sent.insert(service, confirmed);
        }
        self.traffic_end = Some(Instant::now());
    }

    /// The confirmed messages that reach `queue` (after [`Running::publish_until_total`]).
    fn expected(&self, from: &[String]) -> BTreeSet<String> {
        from.iter()
            .flat_map(|p| {
                self.sent
                    .get(p)
                    .into_iter()
                    .flatten()
                    .map(move |n| format!("{p}:{n}"))
            })
            .collect()
    }

    /// Messages for `service`'s queue that it has not received yet.
    pub fn missing_for(&self, service: &str) -> usize {
        self.consumers
            .iter()
            .filter(|c| c.service == service)
            .map(|c| {
                let received: BTreeSet<String> = c
                    .worker
                    .log()
                    .receipts
                    .into_iter()
                    .map(|r| r.body)
                    .collect();
                self.expected(&c.from).difference(&received).count()
            })
            .sum()
    }

    /// Waits (up to `timeout`) until every consumer has received every confirmed message that
    /// reaches its queue; whether they all did.
    pub fn await_delivery(&self, timeout: Duration) -> bool {
        let all: Vec<&str> = self.consumers.iter().map(|c| c.service.as_str()).collect();
        self.await_delivery_to(&all, timeout)
    }

    /// As [`Running::await_delivery`], for the consumers of `services` only.
    pub fn await_delivery_to(&self, services: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if services.iter().all(|s| self.missing_for(s) == 0) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// What arrived, per queue, so far (after [`Running::publish_until_total`]).
    pub fn summary(&self) -> Summary {
        let end = self.traffic_end.unwrap_or_else(Instant::now);
        let queues = self
            .consumers
            .iter()
            .map(|c| {
                let receipts = c.worker.log().receipts;
                let expected = self.expected(&c.from);
                let distinct: BTreeSet<&str> = receipts.iter().map(|r| r.body.as_str()).collect();
                let received = expected
                    .iter()
                    .filter(|m| distinct.contains(m.as_str()))
                    .count() as u64;
                let times: Vec<Instant> = receipts.iter().map(|r| r.at).collect();
                QueueSummary {
                    queue: c.queue.clone(),
                    consumer: c.service.clone(),
                    expected: expected.len() as u64,
                    received,
                    lost: expected.len() as u64 - received,
                    duplicates: (receipts.len() - distinct.len()) as u64,
                    unconfirmed: distinct.iter().filter(|m| !expected.contains(**m)).count() as u64,
                    longest_gap: longest_gap(&times, end),
                }
            })
            .collect();
        Summary {
            queues,
            sent: self
                .sent
                .iter()
                .map(|(s, v)| (s.clone(), v.len() as u64))
                .collect(),
            every: self.every,
            publishing: end.duration_since(self.started),
        }
    }
}

/// The longest time between two consecutive receipts while traffic flowed, up to `end`: a
/// receipt after `end` closes the gap at `end` (a consumer cut off from its messages until
/// after the publishers stopped waited at least that long).
pub fn longest_gap(times: &[Instant], end: Instant) -> Duration {
    times
        .windows(2)
        .filter(|w| w[0] < end)
        .map(|w| w[1].min(end).saturating_duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

/// What one queue's consumer got.
#[derive(Debug, Clone)]
pub struct QueueSummary {
    pub queue: String,
    pub consumer: String,
    /// Confirmed messages of the publishers routed to the queue.
    pub expected: u64,
    /// Of those, the ones it received (each once or more).
    pub received: u64,
    /// Expected and never received.
    pub lost: u64,
    /// Deliveries beyond the first of a message.
    pub duplicates: u64,
    /// Received, but never confirmed to their publisher.
    pub unconfirmed: u64,
    /// The longest gap between consecutive receipts while traffic flowed.
    pub longest_gap: Duration,
}

/// A run's outcome, per queue and in total.
#[derive(Debug, Clone)]
pub struct Summary {
    pub queues: Vec<QueueSummary>,
    /// Confirmed messages per publishing service.
    pub sent: BTreeMap<String, u64>,
    /// Each publisher's interval between messages.
    pub every: Duration,
    /// From the publishers' start to their stop.
    pub publishing: Duration,
}

impl Summary {
    /// Messages confirmed to their publishers, all together.
    pub fn confirmed(&self) -> u64 {
        self.sent.values().sum()
    }

    pub fn lost(&self) -> u64 {
        self.queues.iter().map(|q| q.lost).sum()
    }

    pub fn duplicates(&self) -> u64 {
        self.queues.iter().map(|q| q.duplicates).sum()
    }

    /// The queue `name` ends with `suffix`'s row.
    ///
    /// # Panics
    /// When no queue's name ends with it.
    pub fn queue(&self, suffix: &str) -> &QueueSummary {
        self.queues
            .iter()
            .find(|q| q.queue.ends_with(suffix))
            .unwrap_or_else(|| panic!("no queue …{suffix} in the summary"))
    }

    /// A Markdown table: a row per queue, then the totals, then what the publishers sent.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| queue | consumer | expected | received | lost | duplicates | unconfirmed | longest gap (ms) |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for q in &self.queues {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                q.queue,
                q.consumer,
                q.expected,
                q.received,
                q.lost,
                q.duplicates,
                q.unconfirmed,
                q.longest_gap.as_millis()
            ));
        }
        let sum = |f: fn(&QueueSummary) -> u64| self.queues.iter().map(f).sum::<u64>();
        out.push_str(&format!(
            "| **total** | | {} | {} | {} | {} | {} | {} |\n",
            sum(|q| q.expected),
            sum(|q| q.received),
            sum(|q| q.lost),
            sum(|q| q.duplicates),
            sum(|q| q.unconfirmed),
            self.queues
                .iter()
                .map(|q| q.longest_gap)
                .max()
                .unwrap_or_default()
                .as_millis()
        ));
        let sent: Vec<String> = self.sent.iter().map(|(s, n)| format!("{s} {n}")).collect();
        out.push_str(&format!(
            "\nconfirmed: {} ({}), one message every {:.1} ms per publisher, for {:.1} s\n",
            self.confirmed(),
            sent.join(", "),
            self.every.as_secs_f64() * 1000.0,
            self.publishing.as_secs_f64()
        ));
        out
    }
}
