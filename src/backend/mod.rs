//! The one seam through which warren reads (and, in `apply`, changes) the world.
//!
//! Planning and guard code only ever see [`World`] values; each backend turns its own source
//! (a world file, AWS, the brokers) into one.

pub mod rehearsal;

use crate::error::Result;
use crate::model::World;

/// What to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadScope {
    /// Clusters to read; `None`: every cluster.
    pub clusters: Option<Vec<String>>,
}

/// A source of truth about brokers, clusters, services, task definitions and parameters.
pub trait Backend {
    /// What the backend reads, for messages ("world file examples/x.json").
    fn describe(&self) -> String;

    /// Reads the state in `scope`: the clusters and their services, the task definitions they
    /// run, the parameters their secrets name, the schedules, and both brokers with whatever of
    /// their queues, bindings and connections the backend can see.
    ///
    /// # Errors
    /// [`crate::Error::Backend`] or [`crate::Error::Input`] when the source cannot be read.
    fn read(&mut self, scope: &ReadScope) -> Result<World>;
}
