//! Real RabbitMQ nodes for tests, started by the tests themselves (RabbitMQ 3.10 from the
//! `rabbitmq-server` package; `scripts/test` installs it).
//!
//! ```ignore
//! let node = rabbit::shared_old();                  // this binary's node on 127.0.0.1
//! node.declare_queue("/", "orders");
//! node.publish("/", "", "orders", 12);              // 12 messages through the default exchange
//! node.wait_for_messages("/", "orders", 12);        // the management stats lag about a second
//! let url = node.management_url();                  // http://guest:guest@127.0.0.1:PORT
//! ```
//!
//! - [`RabbitNode::start`] starts a private node, stopped when the value is dropped.
//!   [`shared_old`] (on 127.0.0.1) and [`shared_new`] (on 127.0.0.2) hand out one node each per
//!   test binary; tests share them, so each test uses queue, exchange and vhost names of its own.
//! - Every node runs in a temporary folder of its own and is configured only through environment
//!   variables: its own `HOME` and `.erlang.cookie`, node name, IP address, AMQP, management
//!   and Erlang distribution ports, config file, enabled-plugins file, and mnesia, log, pid and
//!   plugin folders. Nothing under `/etc` or `/var` is read or
//!   written, so two nodes never share anything but `epmd`.
//! - A missing `rabbitmq-server` fails the test (a panic that says how to install it); it is
//!   never a skip, and under `CI=true` the message says that the CI job lacks it.
//!
//! How a node stops:
//! - `Drop` sends SIGTERM to the Erlang VM (the pid in `RABBITMQ_PID_FILE`; without one, to the
//!   `rabbitmq-server` script, which passes it on), waits up to 30 s for the script to exit (it
//!   exits once the VM has), then kills what is left, and deletes the node's folder.
//! - The shared nodes live in `static`s, which Rust never drops. So every node also has a
//!   watchdog: a small `sh` process in its own process group whose standard input is a pipe
//!   held open by the test process. When the test process ends, however it ends (normal exit,
//!   panic, abort, SIGKILL, Ctrl-C), the kernel closes that pipe; the watchdog reads end-of-file,
//!   stops the node the same way and deletes its folder. `Drop` kills the watchdog first, so it
//!   can never signal a recycled pid.
//! - `epmd` (port 4369), which the first node starts as a daemon and which outlives the nodes:
//!   before starting its first node, the test process asks `epmd -names`; when no `epmd` was
//!   running, this process is the one that starts it, and a last watchdog (same pipe trick)
//!   runs `epmd -kill` once the test process has ended and `epmd -names` lists no node any more
//!   (it polls for up to 60 s while the node watchdogs stop their nodes). An `epmd` that was
//!   already running, or that still lists a node after that (someone else's), is left alone.
//!   Best effort: a SIGKILLed watchdog leaves `epmd` behind, which is harmless.
//!
//! Include it with `mod support;` (whose `#![allow(dead_code)]` covers it), or alone with
//! `#[path = "support/rabbit.rs"] #[allow(dead_code)] mod rabbit;`: the file carries no
//! `allow` of its own, since clippy rejects the same attribute twice.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::BuildHasher as _;
use std::io;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The server script the package installs (not on `PATH`).
pub const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// How `rabbitmq-server` gets installed (what `scripts/test` runs when it is missing).
pub const INSTALL: &str = "apt-get update && apt-get install -y rabbitmq-server";
/// The plugins every node runs.
pub const PLUGINS: &str = "[rabbitmq_management,rabbitmq_shovel,rabbitmq_shovel_management,rabbitmq_federation,rabbitmq_federation_management].";
/// The management API's user (RabbitMQ's default user, allowed from loopback only).
pub const USER: &str = "guest";
pub const PASSWORD: &str = "guest";

/// How long a new node may take to answer `GET /api/overview` (it usually takes 4 to 7 s).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at starting a node (another process may take a chosen port in between).
const START_ATTEMPTS: usize = 3;
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`RabbitNode::wait_for_messages`] and [`RabbitNode::wait_until`] poll.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of a log quoted in a panic.
const LOG_TAIL_LINES: usize = 40;

/// A running RabbitMQ node with the management plugin, listening on one loopback address.
/// Dropping it stops the node and deletes its folder.
#[derive(Debug)]
pub struct RabbitNode {
    /// `name@localhost`.
    nodename: String,
    ip: Ipv4Addr,
    amqp_port: u16,
    management_port: u16,
    dist_port: u16,
    /// The node's folder (deleted on drop).
    dir: PathBuf,
    /// The `rabbitmq-server` script; the Erlang VM is its child.
    server: Child,
    /// Stops the node when the test process ends; `None` once stopped.
    watchdog: Option<Child>,
    agent: ureq::Agent,
    authorization: String,
    started_in: Duration,
}

impl RabbitNode {
    /// Starts node `name@localhost` listening on `ip` (`127.0.0.1`, `127.0.0.2`, … : any
    /// loopback address) on free ports, and waits (up to 60 s) until its management API
    /// answers. `name` must be unique on the machine while the node runs (epmd refuses a
    /// second node of the same name).
    ///
    /// Panics when `rabbitmq-server` is not installed (with how to install it), or when the node
    /// does not come up (quoting its logs).
    pub fn start(name: &str, ip: &str) -> RabbitNode {
        RabbitNode::start_as(name, ip, None)
    }

    /// As [`RabbitNode::start`], with the node's cluster name (`cluster_name` in its
    /// `rabbitmq.conf`, what `GET /api/overview` reports as `cluster_name`) set to
    /// `cluster_name`: warren takes a management URL on a host that is not the broker's when the
    /// API names the broker's id or name this way.
    pub fn start_as(name: &str, ip: &str, cluster_name: Option<&str>) -> RabbitNode {
        let ip: Ipv4Addr = ip
            .parse()
            .unwrap_or_else(|e| panic!("{ip:?} is not an IPv4 address: {e}"));
        assert!(ip.is_loopback(), "{ip} is not a loopback address");
        if !Path::new(SERVER).exists() {
            missing_server(&format!("{SERVER} does not exist"));
        }
        epmd_bookkeeping();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match RabbitNode::try_start(name, ip, cluster_name) {
                Ok(node) => return node,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("RabbitMQ node {name}@localhost did not start after {START_ATTEMPTS} attempts: {last_failure}");
    }

    /// One attempt on fresh ports; `Err` says why the node did not come up.
    fn try_start(
        name: &str,
        ip: Ipv4Addr,
        cluster_name: Option<&str>,
    ) -> Result<RabbitNode, String> {
        let started = Instant::now();
        let nodename = format!("{name}@localhost");
        let [amqp_port, management_port, dist_port] = free_ports(ip);
        let dir = node_dir(name);
        let home = dir.join("home");
        for sub in [
            &home,
            &dir.join("mnesia"),
            &dir.join("log"),
            &dir.join("plugins-expand"),
        ] {
            fs::create_dir_all(sub)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", sub.display()));
        }
        let cookie = home.join(".erlang.cookie");
        write(&cookie, &cookie_for(&nodename));
        fs::set_permissions(&cookie, fs::Permissions::from_mode(0o400))
            .unwrap_or_else(|e| panic!("cannot make {} mode 400: {e}", cookie.display()));
        write(
            &dir.join("rabbitmq.conf"),
            &format!(
                "management.tcp.port = {management_port}\n\
                 management.tcp.ip = {ip}\n\
                 collect_statistics_interval = 500\n{}",
                cluster_name
                    .map(|c| format!("cluster_name = {c}\n"))
                    .unwrap_or_default()
            ),
        );
        write(&dir.join("enabled_plugins"), &format!("{PLUGINS}\n"));
        // Replaces /etc/rabbitmq/rabbitmq-env.conf, so that nothing of the machine's leaks in.
        write(&dir.join("rabbitmq-env.conf"), "");

        let out_path = dir.join("server.out");
        let out = File::create(&out_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_path.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", out_path.display()));
        let mut command = Command::new(SERVER);
        // A developer's own RABBITMQ_* settings must not reach the node.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("RABBITMQ_") {
                command.env_remove(key);
            }
        }
        let path = |p: &str| dir.join(p).into_os_string();
        command
            .env("HOME", &home)
            .env("RABBITMQ_NODENAME", &nodename)
            .env("RABBITMQ_NODE_IP_ADDRESS", ip.to_string())
            .env("RABBITMQ_NODE_PORT", amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("rabbit.pid"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", path("plugins-expand"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let server = match command.spawn() {
            Ok(server) => server,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_dir_all(&dir);
                missing_server(&format!("{SERVER} could not be run ({e})"));
            }
            Err(e) => panic!("cannot run {SERVER}: {e}"),
        };
        let watchdog = spawn_watchdog(server.id(), &dir);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut node = RabbitNode {
            nodename,
            ip,
            amqp_port,
            management_port,
            dist_port,
            dir,
            server,
            watchdog: Some(watchdog),
            agent,
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            ),
            started_in: Duration::ZERO,
        };
        // On failure, dropping `node` stops what is left of it.
        node.wait_until_ready()?;
        node.started_in = started.elapsed();
        eprintln!(
            "rabbit: node {} up on {} (AMQP {}, management {}, distribution {}) in {} ms",
            node.nodename,
            node.ip,
            node.amqp_port,
            node.management_port,
            node.dist_port,
            node.started_in.as_millis()
        );
        Ok(node)
    }

    /// Waits until this node (not some other process on the port) answers `GET /api/overview`.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.server.try_wait().ok().flatten() {
                return Err(format!(
                    "{} exited ({status}) before answering; {}",
                    self.nodename,
                    self.logs()
                ));
            }
            if let Ok((200, body)) = self.request("GET", "/api/overview", None) {
                let overview: Value = serde_json::from_str(&body).unwrap_or_default();
                if overview["node"] == self.nodename.as_str() {
                    return Ok(());
                }
                return Err(format!(
                    "another process answers on {}:{} (node {})",
                    self.ip, self.management_port, overview["node"]
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} did not answer GET /api/overview on {}:{} within {START_TIMEOUT:?}; {}",
                    self.nodename,
                    self.ip,
                    self.management_port,
                    self.logs()
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `name@localhost`.
    pub fn nodename(&self) -> &str {
        &self.nodename
    }

    /// The loopback address the node listens on.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    pub fn amqp_port(&self) -> u16 {
        self.amqp_port
    }

    pub fn management_port(&self) -> u16 {
        self.management_port
    }

    /// The Erlang distribution port (`RABBITMQ_DIST_PORT`).
    pub fn dist_port(&self) -> u16 {
        self.dist_port
    }

    /// How long the node took from spawning to answering its management API.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The node's folder (its `HOME` is `home/` inside; deleted when the node stops).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `amqp://IP:PORT`: the endpoint a world file or a task definition names (no credentials;
    /// `guest`/`guest` is AMQP's default).
    pub fn amqp_endpoint(&self) -> String {
        format!("amqp://{}:{}", self.ip, self.amqp_port)
    }

    /// `amqp://guest:guest@IP:PORT/%2F`, for a client of vhost `/`.
    pub fn amqp_url(&self) -> String {
        format!(
            "amqp://{USER}:{PASSWORD}@{}:{}/%2F",
            self.ip, self.amqp_port
        )
    }

    /// `http://guest:guest@IP:PORT`, what warren's `management_url_env` variable holds.
    pub fn management_url(&self) -> String {
        format!(
            "http://{USER}:{PASSWORD}@{}:{}",
            self.ip, self.management_port
        )
    }

    /// The last lines of the node's logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let log = self.dir.join("log").join(format!("{}.log", self.nodename));
        for path in [self.dir.join("server.out"), log] {
            out.push_str(&format!("{}:\n{}\n", path.display(), tail(&path)));
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // The management HTTP API
    // -----------------------------------------------------------------------------------------

    /// `METHOD path` (`/api/…`) as guest, with `body` as JSON: the status and the body's text.
    /// `METHOD` is `GET`, `DELETE`, `PUT` or `POST`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), ureq::Error> {
        let uri = format!("http://{}:{}{path}", self.ip, self.management_port);
        let auth = self.authorization.as_str();
        let body = body.cloned().unwrap_or_else(|| json!({}));
        let mut response = match method {
            "GET" => self.agent.get(&uri).header("Authorization", auth).call()?,
            "DELETE" => self
                .agent
                .delete(&uri)
                .header("Authorization", auth)
                .call()?,
            "PUT" => self
                .agent
                .put(&uri)
                .header("Authorization", auth)
                .send_json(&body)?,
            "POST" => self
                .agent
                .post(&uri)
                .header("Authorization", auth)
                .send_json(&body)?,
            other => panic!("RabbitNode::request does not send {other}"),
        };
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        Ok((status, text))
    }

    /// `METHOD path` that must answer 2xx; panics (quoting the answer) otherwise.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> String {
        match self.request(method, path, body) {
            Ok((status, text)) if (200..300).contains(&status) => text,
            Ok((status, text)) => {
                panic!(
                    "{method} {path} on {} answered HTTP {status}: {text}",
                    self.nodename
                )
            }
            Err(e) => panic!("{method} {path} on {} failed: {e}", self.nodename),
        }
    }

    /// `GET path` as JSON; `None` on 404. Panics on any other failure.
    pub fn get(&self, path: &str) -> Option<Value> {
        match self.request("GET", path, None) {
            Ok((404, _)) => None,
            Ok((200, text)) => Some(
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("GET {path} answered no JSON ({e}): {text}")),
            ),
            Ok((status, text)) => {
                panic!(
                    "GET {path} on {} answered HTTP {status}: {text}",
                    self.nodename
                )
            }
            Err(e) => panic!("GET {path} on {} failed: {e}", self.nodename),
        }
    }

    /// Creates vhost `vhost` (guest gets every permission on it).
    pub fn declare_vhost(&self, vhost: &str) {
        let v = segment(vhost);
        self.call("PUT", &format!("/api/vhosts/{v}"), None);
        self.call(
            "PUT",
            &format!("/api/permissions/{v}/{USER}"),
            Some(&json!({ "configure": ".*", "write": ".*", "read": ".*" })),
        );
    }

    /// Declares durable queue `vhost`/`name`.
    pub fn declare_queue(&self, vhost: &str, name: &str) {
        self.call(
            "PUT",
            &format!("/api/queues/{}/{}", segment(vhost), segment(name)),
            Some(&json!({ "durable": true, "auto_delete": false, "arguments": {} })),
        );
    }

    /// Declares durable exchange `vhost`/`name` of `kind` (`direct`, `topic`, `fanout`, …).
    pub fn declare_exchange(&self, vhost: &str, name: &str, kind: &str) {
        self.call(
            "PUT",
            &format!("/api/exchanges/{}/{}", segment(vhost), segment(name)),
            Some(&json!({ "type": kind, "durable": true, "auto_delete": false, "arguments": {} })),
        );
    }

    /// Binds queue `queue` to exchange `exchange` with `routing_key`, in `vhost`.
    pub fn bind(&self, vhost: &str, exchange: &str, queue: &str, routing_key: &str) {
        self.call(
            "POST",
            &format!(
                "/api/bindings/{}/e/{}/q/{}",
                segment(vhost),
                segment(exchange),
                segment(queue)
            ),
            Some(&json!({ "routing_key": routing_key, "arguments": {} })),
        );
    }

    /// Binds exchange `destination` to exchange `source` (an exchange-to-exchange binding).
    pub fn bind_exchange(&self, vhost: &str, source: &str, destination: &str, routing_key: &str) {
        self.call(
            "POST",
            &format!(
                "/api/bindings/{}/e/{}/e/{}",
                segment(vhost),
                segment(source),
                segment(destination)
            ),
            Some(&json!({ "routing_key": routing_key, "arguments": {} })),
        );
    }

    /// Publishes `n` persistent messages to `exchange` (`""`: the default exchange) with
    /// `routing_key`. Panics when a message is not routed to any queue.
    pub fn publish(&self, vhost: &str, exchange: &str, routing_key: &str, n: usize) {
        let exchange = if exchange.is_empty() {
            "amq.default"
        } else {
            exchange
        };
        let path = format!(
            "/api/exchanges/{}/{}/publish",
            segment(vhost),
            segment(exchange)
        );
        for i in 0..n {
            let answer = self.call(
                "POST",
                &path,
                Some(&json!({
                    "properties": { "delivery_mode": 2 },
                    "routing_key": routing_key,
                    "payload": format!("message {i}"),
                    "payload_encoding": "string",
                })),
            );
            let answer: Value = serde_json::from_str(&answer).unwrap_or_default();
            assert_eq!(
                answer["routed"], true,
                "message {i} to {exchange} with routing key {routing_key:?} reached no queue: {answer}"
            );
        }
    }

    /// Queue `vhost`/`name` as the management API shows it; `None` when there is no such queue.
    pub fn queue_info(&self, vhost: &str, name: &str) -> Option<Value> {
        self.get(&format!("/api/queues/{}/{}", segment(vhost), segment(name)))
    }

    /// Waits until the management API shows `n` messages in `vhost`/`queue` (its statistics lag
    /// about a second); panics after 15 s with what it last showed.
    pub fn wait_for_messages(&self, vhost: &str, queue: &str, n: u64) {
        let mut last = Value::Null;
        let shown = self.wait_until(|node| {
            last = node.queue_info(vhost, queue).unwrap_or_default();
            last["messages"].as_u64() == Some(n)
        });
        assert!(
            shown,
            "{vhost} {queue} on {} did not show {n} messages within {STATS_TIMEOUT:?}; it showed {}",
            self.nodename, last["messages"]
        );
    }

    /// Polls `check` every 200 ms until it holds (`true`) or 15 s have passed (`false`).
    pub fn wait_until(&self, mut check: impl FnMut(&RabbitNode) -> bool) -> bool {
        let deadline = Instant::now() + STATS_TIMEOUT;
        loop {
            if check(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The Erlang VM's pid, once the node has written its pid file.
    pub fn vm_pid(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join("rabbit.pid"))
            .ok()
            .and_then(|pid| pid.trim().parse().ok())
    }

    /// Stops the node now (what `Drop` does); returns how long it took.
    pub fn stop(mut self) -> Duration {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Duration {
        let started = Instant::now();
        // The watchdog first: once the server has been waited for, its pid may be reused.
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        } else {
            return Duration::ZERO;
        }
        if self.server.try_wait().ok().flatten().is_none() {
            // The VM's pid when it has written it; else the script, which passes SIGTERM on.
            signal("TERM", self.vm_pid().unwrap_or(self.server.id()));
            let deadline = Instant::now() + STOP_TIMEOUT;
            while self.server.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    eprintln!(
                        "rabbit: {} did not stop within {STOP_TIMEOUT:?}; killing it",
                        self.nodename
                    );
                    if let Some(vm) = self.vm_pid() {
                        signal("KILL", vm);
                    }
                    let _ = self.server.kill();
                    let _ = self.server.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
        started.elapsed()
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

// ---------------------------------------------------------------------------------------------
// Shared nodes
// ---------------------------------------------------------------------------------------------

/// The cluster name of [`shared_old`]: the old broker's id in the tests' worlds and plans
/// (`common::OLD_ID`).
pub const OLD_CLUSTER_NAME: &str = "b-1111";
/// The cluster name of [`shared_new`]: the new broker's id (`common::NEW_ID`).
pub const NEW_CLUSTER_NAME: &str = "b-2222";

/// This test binary's node on 127.0.0.1 (`warren-old-PID@localhost`), started on first use,
/// whose management API names itself [`OLD_CLUSTER_NAME`]. Tests share it: use names of your own.
pub fn shared_old() -> &'static RabbitNode {
    static NODE: OnceLock<RabbitNode> = OnceLock::new();
    NODE.get_or_init(|| {
        RabbitNode::start_as(
            &format!("warren-old-{}", std::process::id()),
            "127.0.0.1",
            Some(OLD_CLUSTER_NAME),
        )
    })
}

/// This test binary's node on 127.0.0.2 (`warren-new-PID@localhost`), started on first use.
/// Warren tells brokers apart by endpoint host, hence the second loopback address. Its
/// management API names itself [`NEW_CLUSTER_NAME`].
pub fn shared_new() -> &'static RabbitNode {
    static NODE: OnceLock<RabbitNode> = OnceLock::new();
    NODE.get_or_init(|| {
        RabbitNode::start_as(
            &format!("warren-new-{}", std::process::id()),
            "127.0.0.2",
            Some(NEW_CLUSTER_NAME),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Percent-encodes one path segment of the management API (vhost `/` becomes `%2F`).
pub fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// A fresh folder for node `name` under the temporary folder.
fn node_dir(name: &str) -> PathBuf {
    static MADE: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "warren-rabbit-{name}-{}-{}",
        std::process::id(),
        MADE.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// A cookie no other node shares (capital letters only, as Erlang wants): `RandomState` is
/// seeded at random.
fn cookie_for(nodename: &str) -> String {
    let state = RandomState::new();
    (0..20u8)
        .map(|i| char::from(b'A' + (state.hash_one((nodename, i)) % 26) as u8))
        .collect()
}

/// Three different ports that were free a moment ago: AMQP and management on `ip`, and the
/// Erlang distribution port on every interface (the node binds it on all of them).
fn free_ports(ip: Ipv4Addr) -> [u16; 3] {
    // All three listeners are held until the last is bound, so the ports differ.
    let bind = |addr: IpAddr| {
        TcpListener::bind((addr, 0))
            .unwrap_or_else(|e| panic!("cannot find a free port on {addr}: {e}"))
    };
    let listeners = [
        bind(IpAddr::V4(ip)),
        bind(IpAddr::V4(ip)),
        bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    ];
    listeners.map(|l| {
        l.local_addr()
            .expect("a bound listener has an address")
            .port()
    })
}

/// Sends signal `name` (`TERM`, `KILL`) to `pid` through kill(1).
fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Starts the process that stops the node (the Erlang VM whose pid `dir`'s pid file holds,
/// else the script `script_pid`, which passes SIGTERM on) and deletes `dir` once the test
/// process is gone: it blocks reading a pipe that only this process holds open. It has its own
/// process group, so that a Ctrl-C does not kill it first. A zombie counts as gone (the script
/// is orphaned once the test process is gone, and whoever adopts it may reap it late).
fn spawn_watchdog(script_pid: u32, dir: &Path) -> Child {
    Command::new("sh")
        .args([
            "-c",
            r#"alive() { state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$state" ] && [ "$state" != Z ]; }
read -r _ignored
pid=$(cat "$2/rabbit.pid" 2>/dev/null)
[ -n "$pid" ] || pid=$1
kill -TERM "$pid" 2>/dev/null
i=0
while [ $i -lt 300 ] && alive "$pid"; do sleep 0.1; i=$((i+1)); done
alive "$pid" && kill -KILL "$pid" 2>/dev/null
rm -rf "$2""#,
            "warren-rabbit-watchdog",
        ])
        .arg(script_pid.to_string())
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the watchdog of a RabbitMQ node (sh): {e}"))
}

/// Whether `epmd` answers (`epmd -names` exits 0 only then).
fn epmd_running() -> bool {
    Command::new("epmd")
        .arg("-names")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs once per test process, before its first node starts: when no `epmd` runs yet, the
/// first node will start it, so this process owns it and leaves a watchdog that runs
/// `epmd -kill` after the process has ended and once `epmd -names` lists no node.
fn epmd_bookkeeping() {
    static EPMD: OnceLock<Mutex<Option<Child>>> = OnceLock::new();
    EPMD.get_or_init(|| {
        if epmd_running() {
            return Mutex::new(None);
        }
        let watchdog = Command::new("sh")
            .args([
                "-c",
                r#"read -r _ignored
i=0
while [ $i -lt 600 ]; do
  names=$(epmd -names 2>/dev/null) || exit 0
  if ! printf '%s\n' "$names" | grep -q '^name '; then epmd -kill >/dev/null 2>&1; exit 0; fi
  sleep 0.1; i=$((i+1))
done"#,
                "warren-epmd-watchdog",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok();
        // Held (never dropped) for the life of the process: its stdin pipe closes on exit.
        Mutex::new(watchdog)
    });
}

/// Fails the test because no node can run. Never a skip: under CI this is a broken job.
fn missing_server(what: &str) -> ! {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "{what}, and CI=true: the live-broker tests cannot run without RabbitMQ, and a \
             missing broker fails CI rather than skipping them. Install it in the job \
             ({INSTALL}), or run the suite through scripts/test, which installs it."
        );
    }
    panic!(
        "{what}: the live-broker tests need RabbitMQ's server. Run the suite with scripts/test, \
         which installs it, or install it yourself: {INSTALL}"
    );
}
