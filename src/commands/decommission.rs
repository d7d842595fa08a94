//! `warren decommission`: deletes the old broker, only when nothing needs it any more. Fails
//! closed: a check that cannot be made is a blocker.

use std::time::SystemTime;

use super::clients;
use super::{everything, migration_of, pretty_json, Output, Session};
use crate::backend::broker as live;
use crate::backend::ReadScope;
use crate::cli::{DecommissionArgs, ReportFormat};
use crate::config::Config;
use crate::discovery;
use crate::error::{Error, Result};
use crate::guard::{self, Blocker, BlockerKind, Decision};
use crate::journal::{Entry, Outcome, Step};
use crate::model::World;
use crate::render;

pub fn run(args: &DecommissionArgs, output: Output) -> Result<u8> {
    let config = Config::load(&args.plan)?;
    let migration = migration_of(&config, &args.plan, args.record.lock_table.as_deref());
    let mut session =
        Session::changing(migration, &args.world, &args.record, "decommission", output)?;
    let name = config.migration.name.clone();

    // Read under the lock: a rollback that finished a moment ago is seen.
    let mut unreadable = Vec::new();
    let world = match session.read_state(&ReadScope {
        // The secrets the plan opts in to read; any other stays an unverifiable blocker.
        secrets: config.migration.read_secrets.clone(),
        ..everything()
    }) {
        Ok(mut world) => {
            for broker in discovery::resolve_brokers(&config, &world) {
                if let Err(e) = live::read_topology(session.backend(), &mut world, &broker) {
                    unreadable.push(Blocker {
                        kind: BlockerKind::Unverifiable,
                        detail: e.to_string(),
                    });
                }
            }
            // An open connection blocks whether or not its service is known: when the tasks
            // cannot be read, it stays an unknown client and nothing is added.
            let [old, _] = discovery::resolve_brokers(&config, &world);
            let _ = clients::locate(session.backend(), &mut world, &[&old], None);
            world
        }
        Err(Error::Backend(why)) => {
            let decision = Decision {
                broker: discovery::resolve_broker(&config.old, &World::default()).id,
                refused: true,
                blockers: vec![Blocker {
                    kind: BlockerKind::Unverifiable,
                    detail: format!("the state could not be read: {why}"),
                }],
            };
            print!("{}", render_decision(&decision, args.format));
            return Err(Error::Blocked(
                "a check could not be made; nothing was deleted".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    let [old, new] = discovery::resolve_brokers(&config, &world);
    if args.confirm != old.id {
        return Err(Error::Refused(format!(
            "--confirm {} does not match the old broker's id {}; nothing was deleted",
            args.confirm, old.id
        )));
    }
    let start = SystemTime::now();
    if old
        .in_world(&world)
        .is_some_and(crate::model::Broker::is_deleted)
    {
        let decision = Decision {
            broker: old.id.clone(),
            refused: false,
            blockers: Vec::new(),
        };
        print!("{}", render_decision(&decision, args.format));
        eprintln!("The old broker {} is already deleted.", old.id);
        return Ok(0);
    }
    let mut blockers = guard::blockers(&world, &old, &new);
    blockers.extend(unreadable);
    if !blockers.is_empty() {
        let decision = Decision {
            broker: old.id.clone(),
            refused: true,
            blockers,
        };
        session.journal().append(
            &Entry::new(&name, Step::Decommission, start, Outcome::Refused)
                .detail(format!("{} blocker(s)", decision.blockers.len())),
        )?;
        print!("{}", render_decision(&decision, args.format));
        let n = decision.blockers.len();
        return Err(Error::Blocked(format!(
            "{n} blocker{} still need{} broker {}; nothing was deleted",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            old.id
        )));
    }
    // Write-ahead: the intent is recorded before the broker is deleted.
    session.journal().append(
        &Entry::new(&name, Step::Decommission, start, Outcome::Started)
            .detail(format!("deleting broker {}", old.id)),
    )?;
    if let Err(e) = session.backend().delete_broker(&old) {
        session.journal().append(
            &Entry::new(&name, Step::Decommission, start, Outcome::Failed).detail(e.to_string()),
        )?;
        return Err(e);
    }
    session.journal().append(
        &Entry::new(&name, Step::Decommission, start, Outcome::Ok)
            .detail(format!("deleted broker {}", old.id)),
    )?;
    let decision = Decision {
        broker: old.id.clone(),
        refused: false,
        blockers: Vec::new(),
    };
    print!("{}", render_decision(&decision, args.format));
    Ok(0)
}

fn render_decision(decision: &Decision, format: ReportFormat) -> String {
    match format {
        ReportFormat::Human => render::report::decision(decision),
        ReportFormat::Json => pretty_json(decision),
    }
}
