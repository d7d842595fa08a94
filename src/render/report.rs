//! Human reports of `apply`, `rollback`, `decommission` and `status`.

use std::fmt::Write as _;
use std::path::Path;

use crate::discovery::Placement;
use crate::executor::{Report, Schedule, Skipped};
use crate::guard::Decision;
use crate::plan::Plan;
use crate::render::{Palette, Tone};
use crate::status::Status;

/// The outcome of an apply or rollback run; `what` is "Apply" or "Rollback".
#[must_use]
pub fn run(report: &Report, what: &str) -> String {
    let mut out = String::new();
    if !report.moved.is_empty() {
        let _ = writeln!(out, "Moved:");
        for m in &report.moved {
            let _ = writeln!(
                out,
                "  ~ {}  {} -> {}  (wave {})",
                m.service, m.from, m.to, m.wave
            );
        }
    }
    if !report.retargeted.is_empty() {
        let _ = writeln!(out, "Scheduled tasks retargeted:");
        for r in &report.retargeted {
            let _ = writeln!(out, "  ~ {}  {} -> {}", r.schedule, r.from, r.to);
        }
    }
    if !report.shovelled.is_empty() {
        let _ = writeln!(out, "Shovelled:");
        for s in &report.shovelled {
            let _ = writeln!(
                out,
                "  > {}  {} message{} from the {} broker to the {} broker",
                s.queue,
                s.messages,
                if s.messages == 1 { "" } else { "s" },
                s.from,
                s.from.other()
            );
        }
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "Warnings:");
        for w in &report.warnings {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    if !report.failed.is_empty() {
        let _ = writeln!(out, "Failed (left on the revision shown):");
        for f in &report.failed {
            let _ = writeln!(
                out,
                "  ! {}  on {}  (wave {}): {}",
                f.service, f.running, f.wave, f.reason
            );
        }
    }
    if !report.not_started.is_empty() {
        let _ = writeln!(out, "Not started:");
        for id in &report.not_started {
            let _ = writeln!(out, "  - {id}");
        }
    }
    skipped_lines(&mut out, &report.skipped);
    match &report.stopped {
        None => {
            let _ = writeln!(
                out,
                "\n{what} complete: {} moved, {} failed, {} not started.",
                report.moved.len(),
                report.failed.len(),
                report.not_started.len()
            );
        }
        Some(why) => {
            let _ = writeln!(
                out,
                "\n{what} stopped: {} moved, {} failed, {} not started. {why}.",
                report.moved.len(),
                report.failed.len(),
                report.not_started.len()
            );
        }
    }
    out
}

fn skipped_lines(out: &mut String, skipped: &[Skipped]) {
    if !skipped.is_empty() {
        let _ = writeln!(out, "Left alone:");
        for s in skipped {
            let _ = writeln!(out, "  = {}: {}", s.service, s.reason);
        }
    }
}

/// What `apply` says when every service is already where the plan wants it.
#[must_use]
pub fn nothing_to_do(plan: &Plan, skipped: &[Skipped]) -> String {
    let mut out = String::new();
    skipped_lines(&mut out, skipped);
    let _ = writeln!(
        out,
        "No changes: every service in {} is where the plan wants it. Nothing was applied.",
        plan.migration
    );
    out
}

/// What `rollback` says when the journal records nothing to undo.
#[must_use]
pub fn nothing_to_roll_back(journal: &Path, skipped: &[Skipped]) -> String {
    let mut out = String::new();
    skipped_lines(&mut out, skipped);
    let _ = writeln!(
        out,
        "Nothing to roll back: {} records no move that is still in place.",
        journal.display()
    );
    out
}

/// What `rollback` will do, for the confirmation prompt.
#[must_use]
pub fn rollback_preview(schedule: &Schedule, palette: Palette) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "warren will put these services back on the revision they ran before:"
    );
    for (i, wave) in schedule.waves.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}",
            palette.paint(Tone::Heading, &format!("Wave {}", i + 1))
        );
        for m in wave {
            let target = match &m.target {
                crate::executor::Target::Existing(key) => key.clone(),
                crate::executor::Target::Register(td) => td.key(),
            };
            let _ = writeln!(
                out,
                "  {} {}  {} -> {target}",
                palette.paint(Tone::Update, "~"),
                m.id(),
                m.from
            );
        }
    }
    if !schedule.retargets.is_empty() {
        let _ = writeln!(
            out,
            "\nand put these scheduled tasks back on the revision they started before:"
        );
        for r in &schedule.retargets {
            let _ = writeln!(
                out,
                "  {} {}  {} -> {}",
                palette.paint(Tone::Update, "~"),
                crate::retarget::label_of(&r.task),
                r.task.task_definition,
                r.to.as_deref().unwrap_or("?")
            );
        }
    }
    if !schedule.undeclare.is_empty() {
        let _ = writeln!(
            out,
            "\nand remove from the new broker what apply declared for federation (a queue's policy before the queue drains there):"
        );
        for (declared, _) in &schedule.undeclare {
            let _ = writeln!(out, "  {} {declared}", palette.paint(Tone::Danger, "-"));
        }
    }
    out
}

/// The decommission decision.
#[must_use]
pub fn decision(decision: &Decision) -> String {
    let mut out = String::new();
    if decision.refused {
        let _ = writeln!(
            out,
            "Decommission of {} refused: {} blocker{}. Nothing was deleted.\n",
            decision.broker,
            decision.blockers.len(),
            if decision.blockers.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        for b in &decision.blockers {
            let kind = serde_json::to_value(b.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(out, "  ! {kind:<15} {}", b.detail);
        }
    } else {
        let _ = writeln!(
            out,
            "Broker {} is deleted. Nothing pointed at it any more.",
            decision.broker
        );
    }
    out
}

/// The state of a migration now.
#[must_use]
pub fn status(status: &Status, palette: Palette) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Migration {}: {} -> {}\n",
        palette.paint(Tone::Heading, &status.migration),
        status.brokers.old.id,
        status.brokers.new.id
    );
    let _ = writeln!(out, "{}", palette.paint(Tone::Heading, "Services"));
    for s in &status.services {
        let (mark, note) = match (s.wants, s.done()) {
            (None, _) => (
                palette.paint(Tone::Danger, "!"),
                "not in the plan".to_owned(),
            ),
            (Some(_), true) => (palette.paint(Tone::Quiet, "="), "done".to_owned()),
            (Some(w), false) if !s.unlisted.is_empty() => (
                palette.paint(Tone::Update, "~"),
                format!(
                    "to move to {w}: {} still on {} (not in broker_env)",
                    s.unlisted.join(", "),
                    w.other()
                ),
            ),
            (Some(w), false) => (palette.paint(Tone::Update, "~"), format!("to move to {w}")),
        };
        let on = match s.broker {
            Placement::Neither => "neither broker".to_owned(),
            Placement::Split => "both brokers (split)".to_owned(),
            b => format!("{b}"),
        };
        let _ = writeln!(
            out,
            "  {mark} {}/{}  on {on}  ({}), {note}",
            s.cluster, s.service, s.task_definition
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        palette.paint(
            Tone::Heading,
            &format!("Queues on the old broker {}", status.brokers.old.id)
        )
    );
    match &status.queues {
        None => {
            let _ = writeln!(out, "  (could not be read)");
        }
        Some(queues) if queues.is_empty() => {
            let _ = writeln!(out, "  (none)");
        }
        Some(queues) => {
            for q in queues {
                let _ = writeln!(
                    out,
                    "  {} {}  {} message{}, {} consumer{}",
                    q.vhost,
                    q.name,
                    q.messages,
                    if q.messages == 1 { "" } else { "s" },
                    q.consumers,
                    if q.consumers == 1 { "" } else { "s" }
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        palette.paint(
            Tone::Heading,
            &format!("Connections to the old broker {}", status.brokers.old.id)
        )
    );
    if status.connections.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for c in &status.connections {
        let _ = writeln!(
            out,
            "  from {}",
            crate::clients::describe(&c.connection, &c.services)
        );
    }
    if let Some(journal) = &status.journal {
        let _ = writeln!(out, "\n{}", palette.paint(Tone::Heading, "Journal"));
        match &journal.last {
            None => {
                let _ = writeln!(out, "  no entries in {}", journal.place);
            }
            Some(last) => {
                let subject = match (&last.cluster, &last.service, &last.queue) {
                    (Some(c), Some(s), _) => format!(" {c}/{s}"),
                    (_, _, Some(q)) => format!(" {q}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {} entr{} in {}; the last: {} {}{subject} {}",
                    journal.entries,
                    if journal.entries == 1 { "y" } else { "ies" },
                    journal.place,
                    last.time_end,
                    last.step,
                    last.result,
                );
            }
        }
    }
    out.push('\n');
    if let Some(state) = status
        .old_broker_state
        .as_deref()
        .filter(|s| s.eq_ignore_ascii_case("DELETED"))
    {
        let _ = writeln!(
            out,
            "The old broker {} is {state}: the migration is complete.",
            status.brokers.old.id
        );
    } else if status.decommission.would_pass {
        let _ = writeln!(out, "Decommission would pass today.");
    } else {
        let n = status.decommission.blockers.len();
        let _ = writeln!(
            out,
            "{}",
            palette.paint(
                Tone::Danger,
                &format!(
                    "Decommission would be refused today: {n} blocker{}.",
                    if n == 1 { "" } else { "s" }
                )
            )
        );
        for b in &status.decommission.blockers {
            let _ = writeln!(out, "  - {}", b.detail);
        }
    }
    out
}
