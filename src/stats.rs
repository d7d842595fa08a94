//! What a command run asked of the outside world, for `--stats`: the calls per AWS API
//! (`ecs:DescribeServices`, as IAM names it), per broker management endpoint (`GET
//! /api/queues/{vhost}`, the names left out), AMQP connections and, in rehearsals, the world
//! file's reads and writes; the time spent in each, the attempts retried, and the most AWS
//! requests that were in flight at once.
//!
//! One registry for the process. Nothing is recorded until [`enable`] is called, so a run
//! without `--stats` pays one atomic load per call. A leaf module: it depends on nothing else
//! in the crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static CALLS: Mutex<BTreeMap<String, Tally>> = Mutex::new(BTreeMap::new());

/// The calls of one API or endpoint so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Calls made (a call retried by the SDK counts once).
    pub calls: u64,
    /// Attempts beyond the first, over all calls.
    pub retries: u64,
    /// Time spent in the calls, from asking to the answer (or the failure).
    pub time: Duration,
}

/// Starts recording, for the rest of the process.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether calls are recorded.
#[must_use]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Records one call of `name` that took `time` and was retried `retries` times. Nothing
/// when recording is off.
pub fn record(name: &str, time: Duration, retries: u32) {
    if !enabled() {
        return;
    }
    let mut calls = CALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let tally = calls.entry(name.to_owned()).or_default();
    tally.calls += 1;
    tally.retries += u64::from(retries);
    tally.time += time;
}

/// Runs `call` and records it as one call of `name()` (computed only when recording is on),
/// however it ends.
pub fn timed<T>(name: impl FnOnce() -> String, call: impl FnOnce() -> T) -> T {
    if !enabled() {
        return call();
    }
    let started = Instant::now();
    let answer = call();
    record(&name(), started.elapsed(), 0);
    answer
}

/// One AWS request in flight; the count drops when it is dropped.
#[derive(Debug)]
#[must_use = "the request counts as in flight while this lives"]
pub struct InFlight(());

impl InFlight {
    /// Counts one more request in flight, and the peak.
    pub fn start() -> InFlight {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The most AWS requests in flight at once so far.
#[must_use]
pub fn peak_in_flight() -> usize {
    PEAK.load(Ordering::SeqCst)
}

/// Every tally so far, by name.
#[must_use]
pub fn tallies() -> BTreeMap<String, Tally> {
    CALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Whether `name` is an AWS API (`service:Action`), not a broker endpoint or the world file.
fn is_aws(name: &str) -> bool {
    !name.starts_with("world:")
        && !name.starts_with("amqp ")
        && !name.contains(' ')
        && name.contains(':')
}

/// The report `--stats` prints: `Calls:`, then one aligned line per API or endpoint, sorted
/// by name (`  ecs:DescribeServices   3 calls   41 ms`, with `  2 retries` where attempts were
/// retried), then the most AWS requests in flight at once and the bound, or a line saying no
/// AWS call was made.
#[must_use]
pub fn report(tallies: &BTreeMap<String, Tally>, peak: usize, bound: usize) -> String {
    let mut out = String::from("Calls:\n");
    if tallies.is_empty() {
        out.push_str("  none\n");
    }
    let width = tallies.keys().map(String::len).max().unwrap_or(0);
    let count_width = tallies
        .values()
        .map(|t| t.calls.to_string().len())
        .max()
        .unwrap_or(1);
    let ms_width = tallies
        .values()
        .map(|t| t.time.as_millis().to_string().len())
        .max()
        .unwrap_or(1);
    for (name, tally) in tallies {
        let unit = if tally.calls == 1 { "call " } else { "calls" };
        let _ = write!(
            out,
            "  {name:<width$}  {calls:>count_width$} {unit}  {ms:>ms_width$} ms",
            calls = tally.calls,
            ms = tally.time.as_millis(),
        );
        match tally.retries {
            0 => {}
            1 => out.push_str("  1 retry"),
            n => {
                let _ = write!(out, "  {n} retries");
            }
        }
        // No trailing blanks from the padding of the unit.
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    if tallies.keys().any(|name| is_aws(name)) {
        let _ = writeln!(
            out,
            "AWS requests in flight at most: {peak} (--max-concurrency {bound})"
        );
    } else {
        out.push_str("No AWS call was made.\n");
    }
    out
}

/// The report of this process's calls (see [`report`]), or `None` when recording is off.
#[must_use]
pub fn summary(bound: usize) -> Option<String> {
    enabled().then(|| report(&tallies(), peak_in_flight(), bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(calls: u64, ms: u64, retries: u64) -> Tally {
        Tally {
            calls,
            retries,
            time: Duration::from_millis(ms),
        }
    }

    #[test]
    fn the_report_is_sorted_and_aligned() {
        let tallies = BTreeMap::from([
            ("ssm:GetParameters".to_owned(), tally(1, 7, 0)),
            ("ecs:DescribeServices".to_owned(), tally(12, 141, 2)),
            ("GET /api/queues/{vhost}/{name}".to_owned(), tally(3, 9, 0)),
            ("ecs:ListServices".to_owned(), tally(3, 20, 1)),
        ]);
        assert_eq!(
            report(&tallies, 5, 8),
            "Calls:\n\
             \x20 GET /api/queues/{vhost}/{name}   3 calls    9 ms\n\
             \x20 ecs:DescribeServices            12 calls  141 ms  2 retries\n\
             \x20 ecs:ListServices                 3 calls   20 ms  1 retry\n\
             \x20 ssm:GetParameters                1 call     7 ms\n\
             AWS requests in flight at most: 5 (--max-concurrency 8)\n"
        );
    }

    #[test]
    fn a_run_without_aws_calls_says_so() {
        let tallies = BTreeMap::from([
            ("world:read".to_owned(), tally(2, 3, 0)),
            ("world:write".to_owned(), tally(1, 1, 0)),
        ]);
        assert_eq!(
            report(&tallies, 0, 8),
            "Calls:\n  world:read   2 calls  3 ms\n  world:write  1 call   1 ms\nNo AWS call was made.\n"
        );
        assert_eq!(
            report(&BTreeMap::new(), 0, 8),
            "Calls:\n  none\nNo AWS call was made.\n"
        );
    }

    #[test]
    fn aws_apis_are_told_from_endpoints_and_the_world_file() {
        assert!(is_aws("ecs:DescribeServices"));
        assert!(is_aws("dynamodb:PutItem"));
        assert!(!is_aws("world:read"));
        assert!(!is_aws("GET /api/queues"));
        assert!(!is_aws("amqp connect"));
    }
}
