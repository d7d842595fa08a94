//! Human output, in the manner of `terraform plan`: one line per change with a symbol, grouped
//! by wave, and a summary line.

use std::fmt::Write as _;

use crate::config::BrokerAlias;
use crate::discovery::Placement;
use crate::plan::{Action, Change, Drain, Plan, Rewrite};
use crate::render::{Palette, Tone};

/// The plan for a person at a terminal. `plan_file` is named in the advice for unmanaged services.
#[must_use]
pub fn plan(plan: &Plan, plan_file: &str, palette: Palette) -> String {
    let by_id = plan.changes_by_id();
    let mut out = String::new();
    let p = palette;
    let b = &plan.brokers;
    let _ = writeln!(
        out,
        "Migration {} ({} strategy): {} -> {}",
        p.paint(Tone::Heading, &plan.migration),
        plan.strategy,
        broker_label(&b.old.id, b.old.name.as_deref()),
        broker_label(&b.new.id, b.new.name.as_deref()),
    );
    out.push('\n');

    if !plan.unmanaged.is_empty() {
        let n = plan.unmanaged.len();
        let _ = writeln!(
            out,
            "{}",
            p.paint(
                Tone::Danger,
                &format!(
                    "{} at the old broker but {} not in the plan:",
                    point(n, "service"),
                    if n == 1 { "is" } else { "are" }
                )
            )
        );
        for u in &plan.unmanaged {
            let _ = writeln!(
                out,
                "  {} {}  ({}, {} through {})",
                p.paint(Tone::Danger, "!"),
                u.id(),
                u.task_definition,
                if u.broker == Placement::Split {
                    "partly on the old broker"
                } else {
                    "on the old broker"
                },
                u.through.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "\n  Add {} to {plan_file} if {} should move:\n",
            if n == 1 { "it" } else { "them" },
            if n == 1 { "it" } else { "they" }
        );
        for u in &plan.unmanaged {
            let _ = writeln!(out, "    [[services]]");
            let _ = writeln!(out, "    cluster = {:?}", u.cluster);
            let _ = writeln!(out, "    name = {:?}", u.service);
            let _ = writeln!(out, "    broker = \"new\"");
            let _ = writeln!(
                out,
                "    publishes = []  # exchanges and queues it publishes to"
            );
            if u.consumes.is_empty() {
                let _ = writeln!(out, "    consumes = []   # queues it consumes");
            } else {
                let queues: Vec<String> = u.consumes.iter().map(|q| format!("{q:?}")).collect();
                let _ = writeln!(
                    out,
                    "    consumes = [{}]  # as the old broker reports",
                    queues.join(", ")
                );
            }
            out.push('\n');
        }
    }

    unmanaged_resources(&mut out, plan, p);
    topology_lines(&mut out, plan, p);
    federation_lines(&mut out, plan, p);

    if plan.waves.is_empty() {
        let _ = writeln!(out, "No service needs to move.");
    } else {
        let _ = writeln!(out, "warren will move these services, wave by wave:");
    }
    retarget_lines(&mut out, plan, None, p);
    for (i, wave) in plan.waves.iter().enumerate() {
        let number = i + 1;
        out.push('\n');
        let waits = drains_of(&plan.drains, Some(number));
        let heading = format!("Wave {number}");
        if waits.is_empty() {
            let _ = writeln!(out, "{}", p.paint(Tone::Heading, &heading));
        } else {
            let _ = writeln!(
                out,
                "{}  (first waits until {waits} drained)",
                p.paint(Tone::Heading, &heading)
            );
        }
        let left: Vec<&Drain> = plan
            .leftovers
            .iter()
            .filter(|l| l.wave == Some(number))
            .collect();
        if let Some(first) = left.first() {
            let queues: Vec<&str> = left.iter().map(|l| l.queue.as_str()).collect();
            let _ = writeln!(
                out,
                "  (once it moved, shovels what is left in {} on the {} broker to the {} broker)",
                queues.join(", "),
                first.broker,
                first.broker.other()
            );
        }
        for id in wave {
            if let Some(change) = by_id.get(id) {
                change_lines(&mut out, change, p);
            }
        }
        retarget_lines(&mut out, plan, Some(number), p);
    }
    let federated = plan
        .federation
        .as_ref()
        .map(crate::plan::Federation::queues)
        .unwrap_or_default();
    // The queues federation empties are told with it, below.
    let unfederated: Vec<Drain> = plan
        .drains
        .iter()
        .filter(|d| {
            !(d.broker == BrokerAlias::Old
                && federated.contains(&(d.vhost.as_str(), d.queue.as_str())))
        })
        .cloned()
        .collect();
    let after = drains_of(&unfederated, None);
    if !after.is_empty() {
        let _ = writeln!(
            out,
            "\nAfter the last wave, warren waits until {after} drained."
        );
    }
    if let Some(after) = federation_after(plan) {
        let _ = writeln!(out, "\n{after}");
    }

    let noops: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Noop)
        .collect();
    if !noops.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Tone::Heading, "Unchanged"));
        for c in noops {
            let state = match c.from {
                None => "on neither broker".to_owned(),
                Some(from) => format!("already on {from}"),
            };
            let _ = writeln!(
                out,
                "  {} {}  {}",
                p.paint(Tone::Quiet, "="),
                c.id(),
                p.paint(Tone::Quiet, &state)
            );
        }
    }

    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Tone::Heading, "Warnings"));
        for w in &plan.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }

    if !plan.notes.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Tone::Heading, "Notes"));
        for n in &plan.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }

    let (moves, unchanged, unmanaged, manual) = plan.counts();
    out.push('\n');
    if manual > 0 {
        let _ = writeln!(
            out,
            "{}",
            p.paint(
                Tone::Danger,
                &format!("{manual} service{} cannot be moved automatically (see why above): apply refuses while the plan has manual changes.", plural(manual))
            )
        );
    }
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            Tone::Heading,
            &format!("Plan: {moves} to move, {unchanged} unchanged, {unmanaged} unmanaged.")
        )
    );
    out
}

/// The definitions apply creates on the new broker before the first wave.
fn topology_lines(out: &mut String, plan: &Plan, p: Palette) {
    if plan.topology.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            Tone::Heading,
            &format!(
                "New broker: {} to create before the first wave",
                plan.topology.len()
            )
        )
    );
    for item in &plan.topology {
        let _ = writeln!(
            out,
            "  {} {}",
            p.paint(Tone::Update, "+"),
            item.definition()
        );
    }
    out.push('\n');
}

/// Under `federate`, what apply declares on the new broker before the first wave.
fn federation_lines(out: &mut String, plan: &Plan, p: Palette) {
    let Some(federation) = &plan.federation else {
        return;
    };
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            Tone::Heading,
            "New broker: federation from the old broker, declared before the first wave"
        )
    );
    for line in federation_steps(federation) {
        let _ = writeln!(out, "  {} {line}", p.paint(Tone::Update, "+"));
    }
    let _ = writeln!(out, "  then checks that every federation link is running");
    out.push('\n');
}

/// One line per upstream, then one for the policies: `upstream warren-m in vhost / (URL from
/// $VAR)`, `2 policies federating: q1 (priority 0), q2 (priority 8)`.
#[must_use]
pub fn federation_steps(federation: &crate::plan::Federation) -> Vec<String> {
    let mut lines: Vec<String> = federation
        .upstreams
        .iter()
        .map(|u| {
            format!(
                "upstream {} in vhost {} (URL from ${})",
                u.name, u.vhost, u.url_env
            )
        })
        .collect();
    let queues = federation.queues();
    let several_vhosts = federation.upstreams.len() > 1;
    let policies: Vec<String> = federation
        .policies
        .iter()
        .zip(&queues)
        .map(|(policy, (vhost, queue))| {
            if several_vhosts {
                format!("{queue} in {vhost} (priority {})", policy.priority)
            } else {
                format!("{queue} (priority {})", policy.priority)
            }
        })
        .collect();
    let n = federation.policies.len();
    lines.push(format!(
        "{n} polic{} federating: {}",
        if n == 1 { "y" } else { "ies" },
        policies.join(", ")
    ));
    lines
}

/// Under `federate`, what apply does once the last wave moved.
#[must_use]
pub fn federation_after(plan: &Plan) -> Option<String> {
    let federation = plan.federation.as_ref()?;
    let queues: Vec<&str> = federation.queues().into_iter().map(|(_, q)| q).collect();
    Some(format!(
        "After the last wave, warren waits until {} on the old broker {} empty (a queue that stalls is shovelled to the new broker), then removes the federation policies and upstreams.",
        queues.join(", "),
        if queues.len() == 1 { "is" } else { "are" }
    ))
}

/// Resources that are not ECS services and point at the old broker: each with what to do.
fn unmanaged_resources(out: &mut String, plan: &Plan, p: Palette) {
    let n = plan.unmanaged_resources.len();
    if n == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            Tone::Danger,
            &format!(
                "{} at the old broker; warren does not change {}:",
                point(n, "other resource"),
                if n == 1 { "it" } else { "them" }
            )
        )
    );
    for r in &plan.unmanaged_resources {
        let _ = writeln!(
            out,
            "  {} {}  (through {})",
            p.paint(Tone::Danger, "!"),
            r.id(),
            r.through.join(", ")
        );
        let _ = writeln!(out, "      {}", r.action);
    }
    out.push('\n');
}

fn change_lines(out: &mut String, c: &Change, p: Palette) {
    let from = c
        .from
        .map_or_else(|| "neither".to_owned(), |f| f.to_string());
    match c.action {
        Action::Update => {
            let _ = writeln!(
                out,
                "  {} {}  {from} -> {}  ({})",
                p.paint(Tone::Update, "~"),
                c.id(),
                c.to,
                c.task_definition
            );
        }
        Action::Manual => {
            let _ = writeln!(
                out,
                "  {} {}  {from} -> {}  ({}), manual",
                p.paint(Tone::Danger, "!"),
                c.id(),
                c.to,
                c.task_definition
            );
            if let Some(reason) = &c.reason {
                let _ = writeln!(out, "      {}", p.paint(Tone::Danger, reason));
            }
        }
        Action::Noop => {}
    }
    for r in &c.rewrites {
        let _ = writeln!(out, "      {}", rewrite_line(r));
    }
}

/// The scheduled tasks apply retargets in `wave` (`None`: before the first wave, their services
/// having moved already), each with the overrides it rewrites.
fn retarget_lines(out: &mut String, plan: &Plan, wave: Option<usize>, p: Palette) {
    let mut retargets = plan.retargets.iter().filter(|r| r.wave == wave).peekable();
    if wave.is_none() && retargets.peek().is_some() {
        let _ = writeln!(
            out,
            "\n{}",
            p.paint(
                Tone::Heading,
                "Before the first wave (their services have moved already)"
            )
        );
    }
    for r in retargets {
        let to = match &r.to {
            Some(key) => format!("{key}, which {} runs", r.to_service),
            None => format!("the revision registered for {}", r.to_service),
        };
        let _ = writeln!(
            out,
            "  {} {}: {} -> {to}",
            p.paint(Tone::Update, "~"),
            r.label(),
            r.from
        );
        for (container, vars) in &r.overrides_after {
            for (name, value) in vars {
                let before = r
                    .overrides_before
                    .get(container)
                    .and_then(|v| v.get(name))
                    .map_or("", String::as_str);
                let _ = writeln!(
                    out,
                    "      {container}: {name} (override) {before:?} -> {value:?}"
                );
            }
        }
    }
}

/// `app: SPRING_RABBITMQ_HOST "old" -> "new"`; a field as its path, like a variable
/// (`app: command[1] "old" -> "new"`).
#[must_use]
pub fn rewrite_line(r: &Rewrite) -> String {
    match (&r.variable, &r.parameter, &r.field) {
        (Some(v), _, _) if r.env_file.is_some() => format!(
            "{}: {v} {:?} -> {:?} (from env file {}; set in the container's environment, over the file)",
            r.container,
            r.from,
            r.to,
            r.env_file.as_deref().unwrap_or_default()
        ),
        (Some(v), _, _) | (None, None, Some(v)) => {
            format!("{}: {v} {:?} -> {:?}", r.container, r.from, r.to)
        }
        (None, Some(s), _) => format!("{}: {s} (secret) {} -> {}", r.container, r.from, r.to),
        (None, None, None) => format!("{}: {:?} -> {:?}", r.container, r.from, r.to),
    }
}

/// "q1, q2 on the old broker are" for the drains of `wave`, grouped by broker.
fn drains_of(drains: &[Drain], wave: Option<usize>) -> String {
    let mut groups: Vec<String> = Vec::new();
    let mut count = 0;
    for alias in [BrokerAlias::Old, BrokerAlias::New] {
        let queues: Vec<&str> = drains
            .iter()
            .filter(|d| d.wave == wave && d.broker == alias)
            .map(|d| d.queue.as_str())
            .collect();
        if !queues.is_empty() {
            count += queues.len();
            groups.push(format!("{} on the {alias} broker", queues.join(", ")));
        }
    }
    if groups.is_empty() {
        return String::new();
    }
    format!(
        "{} {}",
        groups.join(" and "),
        if count == 1 { "is" } else { "are" }
    )
}

fn broker_label(id: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{id} ({name})"),
        None => id.to_owned(),
    }
}

/// `1 service points`, `2 services point`.
fn point(n: usize, noun: &str) -> String {
    format!(
        "{n} {noun}{} point{}",
        plural(n),
        if n == 1 { "s" } else { "" }
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
