//! One command run's session: the backend it works against, the migration's journal and lock,
//! and how much it says. "Lock, then read, then act" is written here once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::aws::journal::TableJournal;
use crate::backend::aws::lock::TableLock;
use crate::backend::aws::Aws;
use crate::backend::broker as live;
use crate::backend::rehearsal::Rehearsal;
use crate::backend::{Backend, ReadScope};
use crate::cli::{RecordArgs, WorldArg};
use crate::discovery::ResolvedBroker;
use crate::error::Result;
use crate::journal::{Entries, Journal};
use crate::lock::{self, Holder, Lock};
use crate::model::World;
use crate::render::Palette;

/// How a command talks to the person running it.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// 0, 1 (`-v`) or 2 (`-vv`).
    pub verbosity: u8,
    pub palette: Palette,
}

/// Which migration a command works on, and where its journal and lock live: the same place
/// whatever form of the plan (plan file or saved plan) the command was given.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: String,
    pub region: Option<String>,
    /// The DynamoDB table of the team lock and shared journal (AWS only).
    pub lock_table: Option<String>,
    /// On AWS, the plan file the migration is made from: its journal and lock sit beside it.
    pub plan_file: PathBuf,
}

/// A held migration lock; dropping it releases it.
enum Held {
    File(Lock),
    Table(TableLock),
}

impl Held {
    fn holder(&self) -> &Holder {
        match self {
            Held::File(lock) => &lock.holder,
            Held::Table(lock) => &lock.holder,
        }
    }
}

/// The backend, journal and lock of one command run.
pub struct Session {
    backend: Box<dyn Backend>,
    migration: Migration,
    /// The file the journal and a file lock sit beside: the world file, or the plan on AWS.
    anchor: PathBuf,
    journal: Journal,
    output: Output,
    lock: Option<Held>,
    /// On AWS with a lock table: the client of that table, shared by the lock and the journal.
    table: Option<(Arc<tokio::runtime::Runtime>, aws_sdk_dynamodb::Client)>,
}

impl Session {
    /// A session that only reads (`plan`, `status`): no lock.
    ///
    /// # Errors
    /// As [`Aws::connect`] on AWS (no region, no credentials).
    pub fn reading(migration: Migration, world: &WorldArg, output: Output) -> Result<Session> {
        Session::open(migration, world, None, output)
    }

    /// A session that changes things (`apply`, `rollback`, `decommission`): it takes the
    /// migration's lock before anything is read, and holds it until it is dropped.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the holder when another run holds the lock; as
    /// [`Session::reading`] otherwise.
    pub fn changing(
        migration: Migration,
        world: &WorldArg,
        record: &RecordArgs,
        command: &str,
        output: Output,
    ) -> Result<Session> {
        let mut session = Session::open(migration, world, Some(record), output)?;
        session.lock(command)?;
        Ok(session)
    }

    fn open(
        migration: Migration,
        world: &WorldArg,
        record: Option<&RecordArgs>,
        output: Output,
    ) -> Result<Session> {
        let (backend, anchor, on_aws): (Box<dyn Backend>, PathBuf, bool) = match &world.path {
            Some(path) => (Box::new(Rehearsal::new(path)), path.clone(), false),
            None => (
                Box::new(Aws::connect(migration.region.as_deref())?),
                migration.plan_file.clone(),
                true,
            ),
        };
        let mut journal = match record.and_then(|r| r.journal.as_deref()) {
            Some(path) => Journal::new(path),
            None => Journal::beside(&anchor),
        };
        let mut table = None;
        if let Some(name) = migration.lock_table.as_deref().filter(|_| on_aws) {
            let runtime = crate::backend::aws::runtime()?;
            let config = crate::backend::aws::load_config(&runtime, migration.region.as_deref())?;
            let client = crate::backend::aws::dynamodb(&config);
            journal = journal.with_shared(Box::new(TableJournal::new(
                runtime.clone(),
                client.clone(),
                name,
                &migration.name,
            )));
            table = Some((runtime, client));
        }
        Ok(Session {
            backend,
            migration,
            anchor,
            journal,
            output,
            lock: None,
            table,
        })
    }

    /// The migration the session works on.
    #[must_use]
    pub fn migration(&self) -> &Migration {
        &self.migration
    }

    /// How the command prints.
    #[must_use]
    pub fn output(&self) -> Output {
        self.output
    }

    /// The backend, for the changes a command makes.
    pub fn backend(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// The migration's journal.
    #[must_use]
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The backend and the journal together, for the executor.
    pub fn parts(&mut self) -> (&mut dyn Backend, &Journal) {
        (self.backend.as_mut(), &self.journal)
    }

    /// The migration's journal entries; a torn line is reported on stderr.
    ///
    /// # Errors
    /// As [`Journal::entries`].
    pub fn entries(&self) -> Result<Entries> {
        let entries = self.journal.entries(&self.migration.name)?;
        if let Some(torn) = &entries.torn {
            eprintln!("warning: {torn}");
        }
        Ok(entries)
    }

    fn lock(&mut self, command: &str) -> Result<()> {
        let name = self.migration.name.clone();
        let (held, warning) = match (self.migration.lock_table.as_deref(), &self.table) {
            (Some(table), Some((runtime, client))) => {
                let (lock, warning) =
                    TableLock::acquire(runtime.clone(), client.clone(), table, &name, command)?;
                (Held::Table(lock), warning)
            }
            _ => {
                let (lock, warning) =
                    Lock::acquire(&lock_path(&self.anchor, &name), &name, command)?;
                (Held::File(lock), warning)
            }
        };
        if let Some(warning) = warning {
            eprintln!("warning: {warning}");
        }
        if self.output.verbosity >= 1 {
            eprintln!("Took the lock of {name}: {}.", held.holder());
        }
        self.lock = Some(held);
        Ok(())
    }

    /// Reads the state in `scope`; with `-v`, says what was read and how long it took, with
    /// `-vv` also every service and the task definition it runs.
    ///
    /// # Errors
    /// As [`Backend::read`].
    pub fn read_state(&mut self, scope: &ReadScope) -> Result<World> {
        let started = std::time::Instant::now();
        let world = self.backend.read(scope)?;
        if self.output.verbosity >= 1 {
            let services: usize = world.clusters.iter().map(|c| c.services.len()).sum();
            eprintln!(
                "Read {} cluster(s), {services} service(s), {} task definition(s), {} parameter(s), {} broker(s) and {} schedule(s) from {} in {} ms.",
                world.clusters.len(),
                world.task_definitions.len(),
                world.parameters.len(),
                world.brokers.len(),
                world.schedules.len(),
                self.backend.describe(),
                started.elapsed().as_millis()
            );
        }
        if self.output.verbosity >= 2 {
            for cluster in &world.clusters {
                for service in &cluster.services {
                    eprintln!(
                        "  {}/{} runs {}",
                        cluster.name, service.name, service.task_definition
                    );
                }
            }
        }
        Ok(world)
    }

    /// Reads the state in `scope`, then the queues, bindings and connections of `brokers` that
    /// the backend could not see, from the brokers themselves where the plan gives a
    /// management URL.
    ///
    /// # Errors
    /// As [`Session::read_state`] and [`live::read_topology`].
    pub fn read(
        &mut self,
        scope: &ReadScope,
        brokers: impl Fn(&World) -> Vec<ResolvedBroker>,
    ) -> Result<World> {
        let mut world = self.read_state(scope)?;
        for broker in brokers(&world) {
            live::read_topology(self.backend.as_mut(), &mut world, &broker)?;
        }
        Ok(world)
    }
}

/// The lock file of `migration` beside `anchor`.
#[must_use]
pub fn lock_path(anchor: &Path, migration: &str) -> PathBuf {
    lock::path_for(anchor.parent().unwrap_or_else(|| Path::new("")), migration)
}
