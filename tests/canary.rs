//! The canary: one distinctive password placed in every place a credential can hide (URL env
//! values with and without a scheme, encoded and not, SSM parameter values, secret values, the
//! broker URL variables valid and malformed, the broker's endpoints and `console_url`), then
//! every command run in every format at every verbosity, on its success and error paths. The
//! canary, in clear or percent-encoded, must appear in no stdout, stderr, journal, lock file,
//! saved plan or snapshot.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/seed.rs"]
mod seed;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The password: every reserved character a URL password can carry unencoded.
const CANARY: &str = "Canary-7f3a/#?pw";
/// The same, percent-encoded as a well-formed URL carries it.
const ENCODED: &str = "Canary-7f3a%2F%23%3Fpw";
/// What any leak of either form (or of its start, before a reserved character) holds.
const STEM: &str = "canary-7f3a";

const OLD_HOST: &str = "b-1111.mq.example.com";
const NEW_HOST: &str = "b-2222.mq.example.com";

const VERBOSITIES: [&[&str]; 3] = [&[], &["-v"], &["-vv"]];

/// Fails when `text` (what `what` produced) holds the canary in any form.
fn assert_clean(what: &str, text: &str) {
    let lower = text.to_lowercase();
    assert!(
        !text.contains(CANARY) && !text.contains(ENCODED) && !lower.contains(STEM),
        "{what} leaks the canary:\n{text}"
    );
}

/// Counts what was hunted through, for docs/RELIABILITY.md.
#[derive(Default)]
struct Hunt {
    /// Command runs whose stdout and stderr were checked.
    runs: usize,
    /// Files checked (journals, lock files, saved plans, snapshots).
    files: usize,
}

impl Hunt {
    /// Runs `command`, checks its output and returns it.
    fn run(&mut self, what: &str, command: &mut Command) -> Output {
        let out = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert_clean(
            &format!("{what}: stdout"),
            &String::from_utf8_lossy(&out.stdout),
        );
        assert_clean(
            &format!("{what}: stderr"),
            &String::from_utf8_lossy(&out.stderr),
        );
        self.runs += 1;
        out
    }

    /// Checks the file at `path`, which must exist.
    fn file(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert_clean(&path.display().to_string(), &text);
        self.files += 1;
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// The rehearsal world
// ---------------------------------------------------------------------------------------------

/// Every value of the rehearsal world that carries the canary, by where it stands.
fn world_places() -> Vec<(&'static str, String)> {
    vec![
        (
            "env URL",
            format!("amqps://esr:{CANARY}@{OLD_HOST}:5671/esr"),
        ),
        (
            "env URL, encoded",
            format!("amqps://esr:{ENCODED}@{OLD_HOST}:5671"),
        ),
        ("env, no scheme", format!("esr:{CANARY}@{OLD_HOST}:5671")),
        (
            "env list",
            format!("amqps://a:{CANARY}@{OLD_HOST}:5671,amqps://b:{ENCODED}@{OLD_HOST}:5671"),
        ),
        (
            "env, other URL",
            format!("postgres://app:{CANARY}@db.internal:5432/app"),
        ),
        (
            "parameter URL",
            format!("amqps://esr:{CANARY}@{OLD_HOST}:5671"),
        ),
        (
            "mapped parameter URL",
            format!("amqps://esr:{ENCODED}@{NEW_HOST}:5671"),
        ),
        ("parameter password", CANARY.to_owned()),
        ("parameter, unparseable", format!("esr:{CANARY}@[bad")),
        (
            "broker endpoint",
            format!("amqps://admin:{CANARY}@{OLD_HOST}:5671"),
        ),
        (
            "console_url",
            format!("https://admin:{CANARY}@b-1111-console.mq.example.com"),
        ),
        (
            "container command",
            format!("--rabbit-url=amqps://esr:{CANARY}@{OLD_HOST}:5671"),
        ),
        (
            "env file",
            format!("RABBIT_URL=amqps://esr:{CANARY}@{OLD_HOST}:5671\nDB_PASSWORD={CANARY}\n"),
        ),
        (
            "secret JSON",
            json!({ "url": format!("amqps://esr:{CANARY}@{OLD_HOST}:5671"), "password": CANARY })
                .to_string(),
        ),
        (
            "function env",
            format!("amqps://fn:{CANARY}@{OLD_HOST}:5671"),
        ),
        (
            "schedule override",
            format!("amqps://job:{ENCODED}@{OLD_HOST}:5671"),
        ),
        (
            "state machine",
            format!("amqps://sfn:{CANARY}@{OLD_HOST}:5671"),
        ),
    ]
}

const ENV_FILE: &str = "arn:aws:s3:::esr-config/s-file.env";
const SECRET: &str = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:esr/rabbit-AbCdEf";

fn task_definition(family: &str, env: &[(&str, String)], secrets: &[(&str, &str)]) -> Value {
    let env: serde_json::Map<String, Value> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let secrets: serde_json::Map<String, Value> = secrets
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({ "family": family, "revision": 1,
            "containers": [ { "name": "app", "environment": env, "secrets": secrets } ] })
}

/// The world: every place of [`world_places`], services that move and one that stays.
fn world() -> Value {
    let p: std::collections::BTreeMap<&str, String> = world_places().into_iter().collect();
    let host = ("SPRING_RABBITMQ_HOST", OLD_HOST.to_owned());
    let services = [
        "s-url",
        "s-encoded",
        "s-bare",
        "s-list",
        "s-param",
        "s-cmd",
        "s-file",
        "s-secret",
    ];
    let mut cmd = task_definition("s-cmd", &[], &[]);
    cmd["containers"][0]["command"] = json!(["app", p["container command"]]);
    let mut file = task_definition("s-file", &[], &[]);
    file["containers"][0]["environment_files"] = json!([{ "value": ENV_FILE, "type": "s3" }]);
    let secret = task_definition(
        "s-secret",
        &[],
        &[("RABBIT_URL", &format!("{SECRET}:url::"))],
    );
    json!({
        "version": 1,
        "region": "eu-west-2",
        "brokers": [
            { "id": "b-1111", "name": "esr-rabbit-old", "state": "RUNNING",
              "endpoints": [p["broker endpoint"]], "console_url": p["console_url"],
              "queues": [ { "vhost": "/", "name": "q", "messages": 0, "consumers": 1 } ],
              "connections": [] },
            { "id": "b-2222", "name": "esr-rabbit-new", "state": "RUNNING",
              "endpoints": [format!("amqps://{NEW_HOST}:5671")], "queues": [] }
        ],
        "clusters": [ { "name": "esr", "services": services.iter().chain(["s-stays"].iter())
            .map(|s| json!({ "name": s, "task_definition": format!("{s}:1"), "desired": 1, "running": 1 }))
            .collect::<Vec<_>>() } ],
        "task_definitions": [
            task_definition("s-url", &[("RABBIT_URL", p["env URL"].clone())], &[]),
            task_definition("s-encoded", &[("RABBIT_URL", p["env URL, encoded"].clone())], &[]),
            task_definition("s-bare", &[host.clone(), ("RABBIT_ADDRESS", p["env, no scheme"].clone())], &[]),
            task_definition("s-list", &[("RABBIT_ADDRESSES", p["env list"].clone())], &[]),
            task_definition("s-param", &[host.clone(), ("DB_URL", p["env, other URL"].clone())],
                &[("RABBIT_URL", "/esr/rabbit/url"), ("RABBIT_PASSWORD", "/esr/rabbit/password"),
                  ("RABBIT_BROKEN", "/esr/rabbit/broken")]),
            task_definition("s-stays", &[host.clone(), ("RABBIT_URL", p["env URL"].clone())], &[]),
            cmd, file, secret
        ],
        "parameters": {
            "/esr/rabbit/url": p["parameter URL"],
            "/esr/rabbit2/url": p["mapped parameter URL"],
            "/esr/rabbit/password": p["parameter password"],
            "/esr/rabbit/broken": p["parameter, unparseable"],
            SECRET: p["secret JSON"]
        },
        "env_files": { ENV_FILE: p["env file"] },
        "functions": [ { "name": "esr-notifier", "environment": { "RABBIT_URL": p["function env"] } } ],
        "schedules": [ { "name": "esr-nightly", "cluster": "esr", "task_definition": "s-url:1",
                         "target": "1", "overrides": { "app": { "RABBIT_URL": p["schedule override"] } } } ],
        "state_machines": [ { "name": "esr-export", "definition": { "States": { "Run": { "Parameters": {
            "Overrides": { "ContainerOverrides": [ { "Name": "app", "Environment": [
                { "Name": "RABBIT_URL", "Value": p["state machine"] } ] } ] } } } } } } ]
    })
}

const PLAN: &str = r#"[migration]
name = "canary"
region = "eu-west-2"

[brokers.old]
id = "b-1111"
amqp_url_env = "WARREN_OLD_AMQP_URL"
management_url_env = "WARREN_OLD_MGMT_URL"

[brokers.new]
id = "b-2222"
amqp_url_env = "WARREN_NEW_AMQP_URL"
management_url_env = "WARREN_NEW_MGMT_URL"

[[services]]
cluster = "esr"
name = "s-url"
broker = "new"

[[services]]
cluster = "esr"
name = "s-encoded"
broker = "new"

[[services]]
cluster = "esr"
name = "s-bare"
broker = "new"

[[services]]
cluster = "esr"
name = "s-list"
broker = "new"

[[services]]
cluster = "esr"
name = "s-param"
broker = "new"

[[services]]
cluster = "esr"
name = "s-cmd"
broker = "new"

[[services]]
cluster = "esr"
name = "s-file"
broker = "new"

[parameters]
"/esr/rabbit/url" = "/esr/rabbit2/url"
"#;

/// The broker URL variables, set as valid URLs that carry the canary.
fn valid_urls() -> Vec<(&'static str, String)> {
    vec![
        (
            "WARREN_OLD_AMQP_URL",
            format!("amqps://esr:{CANARY}@{OLD_HOST}:5671/esr"),
        ),
        (
            "WARREN_NEW_AMQP_URL",
            format!("amqps://esr:{ENCODED}@{NEW_HOST}:5671"),
        ),
        (
            "WARREN_OLD_MGMT_URL",
            format!("https://admin:{CANARY}@b-1111-console.mq.example.com"),
        ),
        (
            "WARREN_NEW_MGMT_URL",
            format!("https://admin:{ENCODED}@{NEW_HOST}"),
        ),
    ]
}

/// A folder with the plan and `world` in it.
struct Rehearsal {
    dir: tempfile::TempDir,
}

impl Rehearsal {
    fn new(world: &Value) -> Rehearsal {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plan.toml"), PLAN).unwrap();
        std::fs::write(
            dir.path().join("world.json"),
            serde_json::to_string_pretty(world).unwrap(),
        )
        .unwrap();
        Rehearsal { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `warren ARGS PLAN --world WORLD REST` in the folder, with `env` set.
    fn warren(&self, command: &str, rest: &[&str], env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("RUST_BACKTRACE")
            .args([command, "plan.toml", "--world", "world.json"])
            .args(rest);
        for (name, _) in valid_urls() {
            cmd.env_remove(name);
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd
    }

    /// Checks every file warren may have written in the folder but the world file (which holds
    /// the canary as its input).
    fn check_files(&self, hunt: &mut Hunt) {
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // A killed run may leave the world file's own atomic-write copy
            // (`.world.json.PID.tmp`): it holds what world.json holds, nothing of warren's.
            let world_copy = name.starts_with(".world.json.") && name.ends_with(".tmp");
            if name != "world.json" && name != "plan.toml" && !world_copy && path.is_file() {
                hunt.file(&path);
            }
        }
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Runs `runs` at every verbosity, expecting each to exit with `expected`.
fn every_verbosity(
    hunt: &mut Hunt,
    r: &Rehearsal,
    env: &[(&str, String)],
    runs: &[(&str, &[&str], i32)],
) {
    for verbosity in VERBOSITIES {
        for (command, rest, expected) in runs {
            let args: Vec<&str> = rest.iter().chain(verbosity.iter()).copied().collect();
            let what = format!("warren {command} {}", args.join(" "));
            let out = hunt.run(&what, &mut r.warren(command, &args, env));
            assert_eq!(code(&out), *expected, "{what}:\n{}", text(&out));
        }
    }
}

#[test]
fn the_canary_never_leaves_a_rehearsal() {
    let mut hunt = Hunt::default();
    let r = Rehearsal::new(&world());
    let env = valid_urls();

    // Reading commands, every format.
    every_verbosity(
        &mut hunt,
        &r,
        &env,
        &[
            ("plan", &[], 0),
            ("plan", &["--format", "json"], 0),
            ("plan", &["--format", "markdown"], 0),
            ("plan", &["--detailed-exitcode"], 2),
            ("plan", &["--out", "saved.json"], 0),
            ("status", &[], 0),
            ("status", &["--format", "json"], 0),
            ("decommission", &["--confirm", "b-1111"], 3),
            (
                "decommission",
                &["--confirm", "b-1111", "--format", "json"],
                3,
            ),
        ],
    );
    hunt.file(&r.path("saved.json"));

    // The plan shows what it rewrites, passwords masked.
    let out = r
        .warren("plan", &["--format", "json"], &env)
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rewrites = plan["changes"].to_string();
    assert!(rewrites.contains("****"), "{rewrites}");
    // The places beyond env values are reached: a command and an env file move, the schedule
    // is retargeted with its override, the function and state machine are listed.
    assert!(rewrites.contains("command[1]"), "{rewrites}");
    assert!(rewrites.contains(ENV_FILE), "{rewrites}");
    assert_eq!(plan["retargets"][0]["name"], "esr-nightly", "{plan:#}");
    let kinds: Vec<&str> = plan["unmanaged_resources"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["function", "state_machine"], "{plan:#}");

    // Apply, status, rollback, and again, at every verbosity.
    for verbosity in VERBOSITIES {
        for (command, rest) in [
            ("apply", &["--auto-approve"][..]),
            ("status", &[][..]),
            ("rollback", &["--auto-approve"][..]),
        ] {
            let args: Vec<&str> = rest.iter().chain(verbosity.iter()).copied().collect();
            let what = format!("warren {command} {}", args.join(" "));
            let out = hunt.run(&what, &mut r.warren(command, &args, &env));
            assert_eq!(code(&out), 0, "{what}:\n{}", text(&out));
        }
    }
    // A saved plan applied.
    let out = hunt.run(
        "warren plan --out fresh.json",
        &mut r.warren("plan", &["--out", "fresh.json"], &env),
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let mut apply_saved = Command::new(env!("CARGO_BIN_EXE_warren"));
    apply_saved
        .current_dir(r.dir.path())
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args([
            "apply",
            "fresh.json",
            "--world",
            "world.json",
            "--auto-approve",
            "-vv",
        ]);
    let out = hunt.run("warren apply fresh.json", &mut apply_saved);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = hunt.run(
        "warren rollback",
        &mut r.warren("rollback", &["--auto-approve", "-vv"], &env),
    );
    assert_eq!(code(&out), 0, "{}", text(&out));

    // A stale saved plan: a parameter it read changed since.
    let mut world: Value =
        serde_json::from_str(&std::fs::read_to_string(r.path("world.json")).unwrap()).unwrap();
    world["parameters"]["/esr/rabbit/url"] =
        json!(format!("amqps://other:{CANARY}@{OLD_HOST}:5671"));
    std::fs::write(r.path("world.json"), world.to_string()).unwrap();
    for verbosity in VERBOSITIES {
        let mut stale = Command::new(env!("CARGO_BIN_EXE_warren"));
        stale
            .current_dir(r.dir.path())
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args([
                "apply",
                "fresh.json",
                "--world",
                "world.json",
                "--auto-approve",
            ])
            .args(verbosity);
        let out = hunt.run("warren apply (stale) fresh.json", &mut stale);
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(text(&out).contains("stale"), "{}", text(&out));
    }
    // An unlock of a lock that is not there.
    let out = hunt.run(
        "warren unlock",
        &mut r.warren("unlock", &["--lock-id", "no-such-lock"], &env),
    );
    assert_eq!(code(&out), 1, "{}", text(&out));

    let journal = r.path("warren-journal.jsonl");
    assert!(journal.is_file(), "apply wrote its journal");
    r.check_files(&mut hunt);
    report("rehearsal", &hunt);
}

/// A world whose old broker is live: its queues come through `WARREN_OLD_MGMT_URL`, whose
/// host is the console URL's host.
fn live_world(console_host: &str) -> Value {
    let mut w = world();
    let old = &mut w["brokers"][0];
    old.as_object_mut().unwrap().remove("queues");
    old["console_url"] = json!(format!("http://admin:{CANARY}@{console_host}"));
    w
}

/// A management API that refuses every request (HTTP 401), as one given a wrong password does.
fn refusing_api() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            let deadline = Instant::now() + Duration::from_secs(5);
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && Instant::now() < deadline {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            );
        }
    });
    port
}

/// One error path: its name, the world, the environment, and what the error names.
type ErrorCase = (&'static str, Value, Env, &'static str);
/// Environment variables and their values.
type Env = Vec<(&'static str, String)>;

#[test]
fn the_canary_never_leaves_an_error() {
    let mut hunt = Hunt::default();
    let port = refusing_api();
    let api_host = format!("127.0.0.1:{port}");
    let with = |name: &'static str, value: String| {
        let mut env = valid_urls();
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
        env
    };
    // (what, world, env, what the error names)
    let cases: Vec<ErrorCase> = vec![
        (
            "malformed management URL (unclosed [)",
            live_world(&api_host),
            with("WARREN_OLD_MGMT_URL", format!("http://guest:{CANARY}@[bad")),
            "WARREN_OLD_MGMT_URL",
        ),
        (
            "malformed management URL (no ://)",
            live_world(&api_host),
            with(
                "WARREN_OLD_MGMT_URL",
                format!("http//guest:{CANARY}@{api_host}"),
            ),
            "WARREN_OLD_MGMT_URL",
        ),
        (
            "management URL with a port that is not one",
            live_world(&api_host),
            with(
                "WARREN_OLD_MGMT_URL",
                format!("http://guest:{ENCODED}@127.0.0.1:port"),
            ),
            "WARREN_OLD_MGMT_URL",
        ),
        (
            "wrong management password, reserved characters unencoded",
            live_world(&api_host),
            with(
                "WARREN_OLD_MGMT_URL",
                format!("http://guest:{CANARY}@{api_host}"),
            ),
            "refused the credentials",
        ),
        (
            "wrong management password, encoded",
            live_world(&api_host),
            with(
                "WARREN_OLD_MGMT_URL",
                format!("http://guest:{ENCODED}@{api_host}"),
            ),
            "refused the credentials",
        ),
        (
            "malformed AMQP URL",
            world(),
            with("WARREN_OLD_AMQP_URL", format!("amqps://esr:{CANARY}@[bad")),
            "WARREN_OLD_AMQP_URL",
        ),
        (
            "AMQP URL of the other broker",
            world(),
            with(
                "WARREN_OLD_AMQP_URL",
                format!("amqps://esr:{CANARY}@{NEW_HOST}:5671"),
            ),
            "WARREN_OLD_AMQP_URL",
        ),
    ];
    for (what, world, env, named) in &cases {
        let r = Rehearsal::new(world);
        for verbosity in VERBOSITIES {
            for (command, rest, expected) in [
                ("plan", &[][..], 1),
                ("plan", &["--format", "json"][..], 1),
                ("plan", &["--format", "markdown"][..], 1),
                ("status", &[][..], 1),
                ("apply", &["--auto-approve"][..], 1),
                ("rollback", &["--auto-approve"][..], 1),
                ("decommission", &["--confirm", "b-1111"][..], 3),
                (
                    "decommission",
                    &["--confirm", "b-1111", "--format", "json"][..],
                    3,
                ),
            ] {
                let args: Vec<&str> = rest.iter().chain(verbosity.iter()).copied().collect();
                let run = format!("{what}: warren {command} {}", args.join(" "));
                let out = hunt.run(&run, &mut r.warren(command, &args, env));
                assert_eq!(code(&out), expected, "{run}:\n{}", text(&out));
                if command != "rollback" {
                    assert!(
                        text(&out).contains(named),
                        "{run} names {named}:\n{}",
                        text(&out)
                    );
                }
            }
        }
        r.check_files(&mut hunt);
    }
    report("error paths", &hunt);
}

#[test]
fn the_canary_never_leaves_a_lock_or_a_journal_mid_run() {
    let mut hunt = Hunt::default();
    let mut w = world();
    for service in w["clusters"][0]["services"].as_array_mut().unwrap() {
        service["rollout_seconds"] = json!(120);
    }
    let r = Rehearsal::new(&w);
    let env = valid_urls();
    let mut apply = r.warren("apply", &["--auto-approve", "-vv"], &env);
    let mut child = apply
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = r.path(".warren-canary.lock");
    let journal = r.path("warren-journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    let holder: Value = loop {
        let started = std::fs::read_to_string(&journal)
            .is_ok_and(|j| j.lines().any(|l| l.contains("\"step\":\"update\"")));
        if started {
            if let Ok(Ok(holder)) =
                std::fs::read_to_string(&lock).map(|t| serde_json::from_str::<Value>(&t))
            {
                break holder;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "apply ended ({status}) before its rollouts did:\n{}",
                text(&out)
            );
        }
        assert!(
            Instant::now() < deadline,
            "apply took no lock and journalled no update within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    hunt.file(&lock);
    hunt.file(&journal);

    // While apply runs, its lock refuses a second run; then it is removed by hand.
    let out = hunt.run(
        "warren rollback (locked)",
        &mut r.warren("rollback", &["--auto-approve", "-vv"], &env),
    );
    assert_eq!(code(&out), 1, "{}", text(&out));
    let id = holder["id"].as_str().unwrap();
    assert!(
        text(&out).contains(id),
        "the refusal names the holder: {}",
        text(&out)
    );
    for (i, verbosity) in VERBOSITIES.iter().enumerate() {
        let mut args = vec!["--lock-id", id];
        args.extend_from_slice(verbosity);
        let out = hunt.run("warren unlock", &mut r.warren("unlock", &args, &env));
        // The first removes the lock; the others find none.
        assert_eq!(code(&out), if i == 0 { 0 } else { 1 }, "{}", text(&out));
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_clean(
        "the killed apply's stdout",
        &String::from_utf8_lossy(&out.stdout),
    );
    assert_clean(
        "the killed apply's stderr",
        &String::from_utf8_lossy(&out.stderr),
    );
    hunt.runs += 1;
    assert!(!lock.exists(), "unlock removed the lock");
    r.check_files(&mut hunt);
    report("lock and journal", &hunt);
}

// ---------------------------------------------------------------------------------------------
// AWS (the emulator) and its snapshot
// ---------------------------------------------------------------------------------------------

/// The values seeded into the emulator, by where they stand (the old broker's host is moto's
/// `mockmq`).
fn aws_places() -> Vec<(&'static str, &'static str, String, Option<bool>)> {
    // (env var or secret name, parameter name, value, Some(secure) for a parameter)
    let old = seed::EMULATED_OLD_HOST;
    vec![
        (
            "RABBIT_URL",
            "",
            format!("amqps://esr:{CANARY}@{old}:5671/esr"),
            None,
        ),
        (
            "RABBIT_URL_ENCODED",
            "",
            format!("amqps://esr:{ENCODED}@{old}:5671"),
            None,
        ),
        (
            "RABBIT_ADDRESS",
            "",
            format!("esr:{CANARY}@{old}:5671"),
            None,
        ),
        (
            "DB_URL",
            "",
            format!("postgres://app:{CANARY}@db.internal:5432/app"),
            None,
        ),
        (
            "SECURE_URL",
            "/canary/rabbit/url",
            format!("amqps://esr:{CANARY}@{old}:5671"),
            Some(true),
        ),
        (
            "SECURE_PASSWORD",
            "/canary/rabbit/password",
            CANARY.to_owned(),
            Some(true),
        ),
        (
            "SECURE_BARE",
            "/canary/rabbit/bare",
            format!("esr:{CANARY}@{old}:5671"),
            Some(true),
        ),
        (
            "SECURE_DB",
            "/canary/db/url",
            format!("postgres://app:{ENCODED}@db.internal:5432"),
            Some(true),
        ),
        (
            "PLAIN_URL",
            "/canary/rabbit/plain",
            format!("amqps://esr:{CANARY}@{old}:5671"),
            Some(false),
        ),
    ]
}

async fn seed_canary(config: &aws_config::SdkConfig, cluster: &str) {
    use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair, Secret};
    use aws_sdk_ssm::types::ParameterType;

    let ssm = aws_sdk_ssm::Client::new(config);
    let ecs = aws_sdk_ecs::Client::new(config);
    let mut container = ContainerDefinition::builder()
        .name("app")
        .image("example/canary:1")
        .memory(256);
    for (name, parameter, value, secure) in aws_places() {
        match secure {
            None => {
                container =
                    container.environment(KeyValuePair::builder().name(name).value(value).build());
            }
            Some(secure) => {
                ssm.put_parameter()
                    .name(parameter)
                    .value(value)
                    .r#type(if secure {
                        ParameterType::SecureString
                    } else {
                        ParameterType::String
                    })
                    .send()
                    .await
                    .unwrap();
                container = container.secrets(
                    Secret::builder()
                        .name(name)
                        .value_from(parameter)
                        .build()
                        .unwrap(),
                );
            }
        }
    }
    let registered = ecs
        .register_task_definition()
        .family("canary")
        .container_definitions(container.build())
        .send()
        .await
        .unwrap();
    let arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .unwrap()
        .to_owned();
    ecs.create_service()
        .cluster(cluster)
        .service_name("canary")
        .task_definition(arn)
        .desired_count(1)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_canary_never_leaves_aws_or_a_snapshot() {
    let mut hunt = Hunt::default();
    let moto = moto::shared();
    let config = moto.sdk_config().await;
    let seeded = seed::esr_incident(&config).await;
    seed_canary(&config, "esr-prod").await;
    let dir = tempfile::tempdir().unwrap();
    let plan = seed::write_plan(&seeded, dir.path());
    let plan = plan.to_str().unwrap().to_owned();
    let port = refusing_api();
    let aws = |args: &[&str], env: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        moto.configure(&mut cmd)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WARREN_OLD_MGMT_URL")
            .env_remove("WARREN_OLD_AMQP_URL")
            .env_remove("WARREN_NEW_MGMT_URL")
            .env_remove("WARREN_NEW_AMQP_URL")
            .args(args);
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd
    };
    let amqp = vec![(
        "WARREN_OLD_AMQP_URL",
        format!("amqps://esr:{CANARY}@{}:5671", seed::EMULATED_OLD_HOST),
    )];

    for verbosity in VERBOSITIES {
        let out_name = format!("snapshot{}.json", verbosity.len());
        let runs: Vec<(Vec<&str>, i32)> = vec![
            (vec!["snapshot", &plan, "--out", &out_name], 0),
            (vec!["plan", &plan], 0),
            (vec!["plan", &plan, "--format", "json"], 0),
            (vec!["plan", &plan, "--format", "markdown"], 0),
            (vec!["plan", &plan, "--out", "saved.json"], 0),
            (vec!["status", &plan], 0),
            (vec!["status", &plan, "--format", "json"], 0),
            (
                vec!["decommission", &plan, "--confirm", &seeded.old_broker_id],
                3,
            ),
            (
                vec![
                    "decommission",
                    &plan,
                    "--confirm",
                    &seeded.old_broker_id,
                    "--format",
                    "json",
                ],
                3,
            ),
        ];
        for (args, expected) in runs {
            let args: Vec<&str> = args.into_iter().chain(verbosity.iter().copied()).collect();
            let what = format!("warren {} (AWS)", args.join(" "));
            let out = hunt.run(&what, &mut aws(&args, &amqp));
            assert_eq!(code(&out), expected, "{what}:\n{}", text(&out));
        }
        hunt.file(&dir.path().join(&out_name));
        hunt.file(&dir.path().join("saved.json"));
    }
    // Error paths on AWS: malformed and refused management URLs.
    for (what, url, expected_plan) in [
        ("malformed", format!("http://guest:{CANARY}@[bad"), 1),
        (
            "no ://",
            format!("http//guest:{CANARY}@127.0.0.1:{port}"),
            1,
        ),
        (
            "refused",
            format!("http://guest:{CANARY}@127.0.0.1:{port}"),
            1,
        ),
    ] {
        let mut env = amqp.clone();
        env.push(("WARREN_OLD_MGMT_URL", url));
        for (args, expected) in [
            (vec!["plan", plan.as_str(), "-vv"], expected_plan),
            (vec!["status", plan.as_str()], 1),
            (vec!["snapshot", plan.as_str(), "--out", "failed.json"], 1),
            (
                vec![
                    "decommission",
                    plan.as_str(),
                    "--confirm",
                    &seeded.old_broker_id,
                    "--format",
                    "json",
                ],
                3,
            ),
        ] {
            let run = format!("{what}: warren {} (AWS)", args.join(" "));
            let out = hunt.run(&run, &mut aws(&args, &env));
            assert_eq!(code(&out), expected, "{run}:\n{}", text(&out));
        }
    }

    // The snapshot keeps a secret value only as a masked broker address; any other is the
    // redacted marker, which a rehearsal cannot read past.
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("snapshot0.json")).unwrap())
            .unwrap();
    let parameters = &snapshot["parameters"];
    let value = |name: &str| {
        parameters
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.ends_with(name))
            .map(|(_, v)| v.as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{name} is not in the snapshot: {parameters}"))
    };
    assert_eq!(value("/canary/rabbit/url"), "amqps://esr:****@mockmq:5671");
    assert_eq!(value("/canary/rabbit/password"), "<redacted by warren>");
    assert_eq!(value("/canary/rabbit/bare"), "<redacted by warren>");
    assert_eq!(value("/canary/db/url"), "<redacted by warren>");
    assert_eq!(
        value("/canary/rabbit/plain"),
        "amqps://esr:****@mockmq:5671"
    );

    for verbosity in VERBOSITIES {
        for (args, expected) in [
            (vec!["plan", plan.as_str(), "--world", "snapshot0.json"], 0),
            (
                vec![
                    "plan",
                    plan.as_str(),
                    "--world",
                    "snapshot0.json",
                    "--format",
                    "json",
                ],
                0,
            ),
            (
                vec![
                    "decommission",
                    plan.as_str(),
                    "--world",
                    "snapshot0.json",
                    "--confirm",
                    &seeded.old_broker_id,
                ],
                3,
            ),
        ] {
            let args: Vec<&str> = args.into_iter().chain(verbosity.iter().copied()).collect();
            let what = format!("warren {} (rehearsing the snapshot)", args.join(" "));
            let out = hunt.run(&what, &mut aws(&args, &amqp));
            assert_eq!(code(&out), expected, "{what}:\n{}", text(&out));
        }
    }
    let out = aws(
        &[
            "decommission",
            &plan,
            "--world",
            "snapshot0.json",
            "--confirm",
            &seeded.old_broker_id,
            "--format",
            "json",
        ],
        &amqp,
    )
    .output()
    .unwrap();
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    let redacted: Vec<&Value> = decision["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            b["kind"] == "unverifiable"
                && b["detail"]
                    .as_str()
                    .unwrap()
                    .contains("/canary/rabbit/password")
        })
        .collect();
    assert_eq!(
        redacted.len(),
        1,
        "the redacted secret is unverifiable: {decision}"
    );
    let out = aws(
        &[
            "plan",
            &plan,
            "--world",
            "snapshot0.json",
            "--format",
            "json",
        ],
        &amqp,
    )
    .output()
    .unwrap();
    let planned: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        planned["warnings"].to_string().contains("redacted"),
        "plan reports the redacted values: {}",
        planned["warnings"]
    );
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            hunt.file(&path);
        }
    }
    report("AWS and snapshot", &hunt);
}

fn report(what: &str, hunt: &Hunt) {
    eprintln!(
        "canary ({what}): {} command runs and {} files checked",
        hunt.runs, hunt.files
    );
}
