//! `--format markdown`: a pull-request comment with the summary, a table of waves, the
//! warnings and a mermaid diagram of the waves.

use std::fmt::Write as _;

use crate::config::BrokerAlias;
use crate::plan::{Action, Drain, Plan};
use crate::render::human;

/// The plan as GitHub-flavoured Markdown.
#[must_use]
pub fn plan(plan: &Plan, plan_file: &str) -> String {
    let by_id = plan.changes_by_id();
    let mut out = String::new();
    let (moves, unchanged, unmanaged, manual) = plan.counts();
    let b = &plan.brokers;
    let _ = writeln!(out, "### warren plan: `{}`\n", escape(&plan.migration));
    let _ = writeln!(
        out,
        "**Plan: {moves} to move, {unchanged} unchanged, {unmanaged} unmanaged.**\n"
    );
    let _ = writeln!(
        out,
        "From the old broker `{}` to the new broker `{}`, strategy `{}`.\n",
        b.old.id, b.new.id, plan.strategy
    );
    if manual > 0 {
        let _ = writeln!(out, "> [!CAUTION]\n> {manual} service(s) cannot be moved automatically (see the reasons below); `warren apply` refuses while the plan has manual changes.\n");
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **Services that point at the old broker but are not in `{}`:**",
            escape(plan_file)
        );
        for u in &plan.unmanaged {
            let _ = writeln!(
                out,
                "> - `{}` (`{}`, through {})",
                u.id(),
                u.task_definition,
                u.through
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        out.push('\n');
    }
    if !plan.unmanaged_resources.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **Other resources that point at the old broker (warren does not change them):**"
        );
        for r in &plan.unmanaged_resources {
            let _ = writeln!(
                out,
                "> - {} `{}` (through {}): {}",
                r.kind,
                escape(&r.name),
                r.through
                    .iter()
                    .map(|t| format!("`{}`", escape(t)))
                    .collect::<Vec<_>>()
                    .join(", "),
                r.action
            );
        }
        out.push('\n');
    }
    if !plan.topology.is_empty() {
        let _ = writeln!(
            out,
            "#### New broker: {} to create before the first wave\n",
            plan.topology.len()
        );
        for item in &plan.topology {
            let _ = writeln!(out, "- {}", escape(&item.definition().to_string()));
        }
        out.push('\n');
    }
    if let Some(federation) = &plan.federation {
        let _ = writeln!(
            out,
            "#### New broker: federation from the old broker, declared before the first wave\n"
        );
        for line in human::federation_steps(federation) {
            let _ = writeln!(out, "- {}", escape(&line));
        }
        let _ = writeln!(out, "- then checks that every federation link is running\n");
    }
    if !plan.waves.is_empty() {
        let _ = writeln!(out, "| Wave | Service | From | To | Rewrites | Waits for |");
        let _ = writeln!(out, "|---:|---|---|---|---|---|");
        for (i, wave) in plan.waves.iter().enumerate() {
            let waits: Vec<String> = plan
                .drains
                .iter()
                .filter(|d| d.wave == Some(i + 1))
                .map(|d| format!("`{}` ({})", d.queue, d.broker))
                .collect();
            for (j, id) in wave.iter().enumerate() {
                let Some(c) = by_id.get(id) else {
                    continue;
                };
                let rewrites: Vec<String> = c
                    .rewrites
                    .iter()
                    .map(|r| {
                        format!(
                            "`{}/{}`",
                            r.container,
                            r.variable
                                .as_deref()
                                .or(r.parameter.as_deref())
                                .or(r.field.as_deref())
                                .unwrap_or("")
                        )
                    })
                    .collect();
                let service = if c.action == Action::Manual {
                    format!(
                        "`{id}` (manual: {})",
                        escape(c.reason.as_deref().unwrap_or(""))
                    )
                } else {
                    format!("`{id}`")
                };
                let _ = writeln!(
                    out,
                    "| {} | {service} | {} | {} | {} | {} |",
                    i + 1,
                    c.from
                        .map_or_else(|| "neither".to_owned(), |f| f.to_string()),
                    c.to,
                    rewrites.join(", "),
                    if j == 0 {
                        waits.join(", ")
                    } else {
                        String::new()
                    }
                );
            }
        }
        out.push('\n');
    }
    broker_steps_after_waves(&mut out, plan);
    let noops: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Noop)
        .map(|c| format!("`{}`", c.id()))
        .collect();
    if !noops.is_empty() {
        let _ = writeln!(out, "Unchanged: {}.\n", noops.join(", "));
    }
    retargets(&mut out, plan);
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "#### Warnings\n");
        for w in &plan.warnings {
            let _ = writeln!(out, "- {}", escape(w));
        }
        out.push('\n');
    }
    if !plan.waves.is_empty() {
        let _ = writeln!(out, "```mermaid\nflowchart LR");
        let mut n = 0;
        for (i, wave) in plan.waves.iter().enumerate() {
            let _ = writeln!(out, "  subgraph w{}[\"Wave {}\"]", i + 1, i + 1);
            for id in wave {
                let _ = writeln!(out, "    s{n}[\"{}\"]", id.replace('"', "'"));
                n += 1;
            }
            let _ = writeln!(out, "  end");
        }
        for i in 1..plan.waves.len() {
            let _ = writeln!(out, "  w{i} --> w{}", i + 1);
        }
        let _ = writeln!(out, "```");
    }
    out
}

/// What apply does on the brokers after a wave: the leftovers it shovels (`drain`, a cycle's
/// queues), the queues it waits for after the last wave, and federation's end (`federate`).
fn broker_steps_after_waves(out: &mut String, plan: &Plan) {
    let mut lines = Vec::new();
    for wave in 1..=plan.waves.len() {
        let left: Vec<&Drain> = plan
            .leftovers
            .iter()
            .filter(|l| l.wave == Some(wave))
            .collect();
        if let Some(first) = left.first() {
            lines.push(format!(
                "After wave {wave}, warren shovels what is left in {} on the {} broker to the {} broker.",
                left.iter().map(|l| format!("`{}`", l.queue)).collect::<Vec<_>>().join(", "),
                first.broker,
                first.broker.other()
            ));
        }
    }
    let federated = plan
        .federation
        .as_ref()
        .map(crate::plan::Federation::queues)
        .unwrap_or_default();
    let waits: Vec<String> = plan
        .drains
        .iter()
        .filter(|d| {
            d.wave.is_none()
                && !(d.broker == BrokerAlias::Old
                    && federated.contains(&(d.vhost.as_str(), d.queue.as_str())))
        })
        .map(|d| format!("`{}` ({})", d.queue, d.broker))
        .collect();
    if !waits.is_empty() {
        lines.push(format!(
            "After the last wave, warren waits until {} {} drained.",
            waits.join(", "),
            if waits.len() == 1 { "is" } else { "are" }
        ));
    }
    lines.extend(human::federation_after(plan).map(|l| escape(&l)));
    for line in &lines {
        let _ = writeln!(out, "{line}\n");
    }
}

/// The scheduled tasks apply retargets, and the notes on those it leaves alone.
fn retargets(out: &mut String, plan: &Plan) {
    if !plan.retargets.is_empty() {
        let _ = writeln!(out, "#### Scheduled tasks retargeted\n");
        for r in &plan.retargets {
            let when = r.wave.map_or_else(
                || "before the first wave".to_owned(),
                |w| format!("wave {w}"),
            );
            let to = match &r.to {
                Some(key) => format!("`{key}`, which `{}` runs", r.to_service),
                None => format!("the revision registered for `{}`", r.to_service),
            };
            let _ = writeln!(
                out,
                "- {} ({when}): `{}` -> {to}",
                escape(&r.label()),
                r.from
            );
        }
        out.push('\n');
    }
    if !plan.notes.is_empty() {
        let _ = writeln!(out, "#### Notes\n");
        for n in &plan.notes {
            let _ = writeln!(out, "- {}", escape(n));
        }
        out.push('\n');
    }
}

/// Escapes what Markdown tables and text would otherwise interpret.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
