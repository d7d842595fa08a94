//! The local AWS emulator for tests: moto's server (`moto_server`), started by the tests
//! themselves.
//!
//! ```ignore
//! let moto = moto::shared();              // this binary's server, reset, and the turn to use it
//! let config = moto.sdk_config().await;   // seed it through the SDK ...
//! moto.warren().args(["plan", "plan.toml"]).assert().success(); // ... and run warren against it
//! ```
//!
//! - [`shared`] hands out one server per test binary. Tests that use it take turns (a mutex held
//!   by the returned [`SharedMoto`]) and each turn starts from an empty emulator (`reset`).
//! - [`Moto::start`] starts a private server, stopped when the value is dropped.
//! - A missing `moto_server` fails the test (a panic that says how to install it); it is never
//!   a skip, and under `CI=true` the message says that the CI job lacks the emulator.
//!
//! How a server stops:
//! - [`Moto`]'s `Drop` kills it by pid (SIGKILL) and waits for it.
//! - The shared server lives in a `static`, which Rust never drops. So every server also has a
//!   watchdog: a small `sh` process whose standard input is a pipe held open by the test process.
//!   When the test process ends, however it ends (normal exit, panic, abort, SIGKILL), the kernel
//!   closes that pipe; the watchdog reads end-of-file, sends SIGTERM to the server and deletes its
//!   log. `Drop` kills the watchdog first, so it can never signal a recycled pid.
//!
//! The server writes its log to a file in the temporary folder; the panics of this module quote
//! its tail.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The region every emulator client uses.
pub const REGION: &str = "eu-west-2";
/// The account moto gives every resource it creates.
pub const ACCOUNT: &str = "123456789012";
/// The program that runs the emulator; it must be on `PATH`.
pub const PROGRAM: &str = "moto_server";
/// How `moto_server` gets installed (what `scripts/test` runs when it is missing).
pub const INSTALL: &str = "python3 -m pip install 'moto[server]>=5.1,<6'";

/// Variables removed from a child process's environment by [`Moto::configure`]: anything that
/// could send it to a real account, another endpoint, or other credentials.
pub const REMOVED_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_ENDPOINT_URL_MQ",
    "AWS_ENDPOINT_URL_SSM",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
];

/// How long a new server may take to answer before the fixture gives up.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting a server (another process may take the chosen port in between).
const START_ATTEMPTS: usize = 3;
/// Lines of the server's log quoted in a panic.
const LOG_TAIL_LINES: usize = 40;

/// A running `moto_server` on `127.0.0.1`, with `MOTO_ECS_SERVICE_RUNNING=1` (every ECS service
/// reports one running task). Dropping it stops the server.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    server: Child,
    /// Kills the server when the test process ends; `None` once stopped.
    watchdog: Option<Child>,
    log: PathBuf,
}

impl Moto {
    /// Starts a private server on a free port and waits (up to 20 s) until it answers.
    ///
    /// Panics when `moto_server` is not on `PATH` (with how to install it), or when the server
    /// does not come up (quoting its log).
    pub fn start() -> Moto {
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Moto::try_start(free_port()) {
                Ok(moto) => return moto,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("{PROGRAM} did not start after {START_ATTEMPTS} attempts: {last_failure}");
    }

    /// One attempt on `port`; `Err` says why the server did not come up.
    fn try_start(port: u16) -> Result<Moto, String> {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "warren-moto-{}-{}.log",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let log_file = File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create moto's log file {}: {e}", log.display()));
        let log_file_too = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share moto's log file {}: {e}", log.display()));

        let server = Command::new(PROGRAM)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ECS_SERVICE_RUNNING", "1")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_too)
            .spawn();
        let server = match server {
            Ok(server) => server,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&log);
                missing_program(&format!("{PROGRAM} is not on PATH"), "");
            }
            Err(e) => panic!("cannot run {PROGRAM}: {e}"),
        };
        let watchdog = spawn_watchdog(server.id(), &log);
        let mut moto = Moto {
            port,
            server,
            watchdog: Some(watchdog),
            log,
        };
        // On failure, dropping `moto` stops what is left of the server.
        moto.wait_until_ready()?;
        Ok(moto)
    }

    /// Waits until this server (not some other process on the port) answers a request.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        // Werkzeug logs the address once it has bound the port; before that, an answer on the
        // port would come from someone else.
        let bound = format!("127.0.0.1:{}", self.port);
        loop {
            if let Some(status) = self.server.try_wait().ok().flatten() {
                if status.code() == Some(127) {
                    missing_program(
                        &format!("{PROGRAM} is on PATH but could not run (exit 127)"),
                        &format!("\nIts output:\n{}", self.log_tail()),
                    );
                }
                return Err(format!(
                    "{PROGRAM} on port {} exited ({status}); its log:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            let bound_here = fs::read_to_string(&self.log).is_ok_and(|log| log.contains(&bound));
            if bound_here && self.post("/moto-api/reset").is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{PROGRAM} on port {} did not answer within {START_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// `http://127.0.0.1:PORT`, the value of `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the server writes its log (deleted when the server stops).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// Clears every service's state (`POST /moto-api/reset`). Panics when the server does not
    /// confirm it.
    pub fn reset(&self) {
        if let Err(e) = self.post("/moto-api/reset") {
            panic!(
                "resetting {PROGRAM} on port {} failed: {e}; its log:\n{}",
                self.port,
                self.log_tail()
            );
        }
    }

    /// Sends `POST path` with an empty body; `Ok` when the answer is 200.
    fn post(&self, path: &str) -> io::Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer);
        let status_line = answer.lines().next().unwrap_or_default();
        if status_line.split_whitespace().nth(1) == Some("200") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "POST {path} answered {status_line:?}"
            )))
        }
    }

    /// The environment a child `warren` process needs to use this server: endpoint, static
    /// credentials, region, a single attempt per call (error tests stay fast), no instance
    /// metadata, and no shared config files. Apply [`REMOVED_ENV`] as well, or use
    /// [`Moto::configure`] / [`Moto::warren`], which do both.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_MAX_ATTEMPTS", "1".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            // A developer's ~/.aws files must not leak in (profiles, endpoints, CA bundles).
            (
                "AWS_CONFIG_FILE",
                "/nonexistent/warren-tests/aws-config".to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/warren-tests/aws-credentials".to_string(),
            ),
        ]
    }

    /// Points `command` at this server: sets [`Moto::env`] and removes [`REMOVED_ENV`].
    pub fn configure<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        for name in REMOVED_ENV {
            command.env_remove(name);
        }
        command.envs(self.env())
    }

    /// `warren` as built by cargo, pointed at this server, with colour off (`NO_COLOR`).
    pub fn warren(&self) -> assert_cmd::Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
        self.configure(&mut command)
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE");
        assert_cmd::Command::from_std(command)
    }

    /// An SDK configuration for this server, for seeding and inspecting it from tests: static
    /// credentials, [`REGION`], `BehaviorVersion::latest()`, retries off, short timeouts, and
    /// nothing read from the test process's environment or `~/.aws`.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .empty_test_environment()
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "test", "test", None, None, "moto",
            ))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // The watchdog first: once the server has been waited for, its pid may be reused.
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = fs::remove_file(&self.log);
    }
}

/// The shared server of this test binary, and the turn to use it: other tests that call
/// [`shared`] wait until this value is dropped. Dereferences to [`Moto`].
pub struct SharedMoto {
    moto: &'static Moto,
    _turn: MutexGuard<'static, ()>,
}

impl Deref for SharedMoto {
    type Target = Moto;

    fn deref(&self) -> &Moto {
        self.moto
    }
}

/// Waits for this binary's turn at the shared server (starting it on first use), resets it and
/// returns it. Hold the value for the whole test. A test that panicked while holding it does not
/// block the others: the next turn starts from a reset server anyway.
pub fn shared() -> SharedMoto {
    static SERVER: OnceLock<Moto> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());

    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let moto = SERVER.get_or_init(Moto::start);
    moto.reset();
    SharedMoto { moto, _turn: turn }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"));
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// Starts the process that stops the server `pid` (and deletes `log`) once the test process is
/// gone: it blocks reading a pipe that only this process holds open.
fn spawn_watchdog(pid: u32, log: &Path) -> Child {
    Command::new("sh")
        .args([
            "-c",
            r#"read -r _ignored; kill -TERM "$1" 2>/dev/null; rm -f "$2""#,
            "warren-moto-watchdog",
        ])
        .arg(pid.to_string())
        .arg(log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the watchdog of {PROGRAM} (sh): {e}"))
}

/// Fails the test because the emulator cannot run. Never a skip: under CI this is a broken job.
/// `details` follows the advice (empty, or a newline and more).
fn missing_program(what: &str, details: &str) -> ! {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "{what}, and CI=true: the AWS emulator tests cannot run without it, and a missing \
             emulator fails CI rather than skipping them. Install it in the job \
             ({INSTALL}), or run the suite through scripts/test, which installs it.{details}"
        );
    }
    panic!(
        "{what}: the AWS emulator tests need moto's server. Run the suite with scripts/test, \
         which installs it, or install it yourself: {INSTALL}{details}"
    );
}
