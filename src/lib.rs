//! warren moves ECS services from an old RabbitMQ broker to a new one: it discovers every
//! service that points at a broker, orders the move from a publisher/consumer graph, and refuses
//! to delete the old broker while anything still uses it.
//!
//! The core (`config`, `discovery`, `graph`, `plan`) is pure: it computes values from plain
//! data. `backend` reads and changes the world; `render` prints values; `commands` wires them to
//! the command line.

pub mod atomic;
pub mod backend;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod error;
pub mod executor;
pub mod graph;
pub mod guard;
pub mod host;
pub mod journal;
pub mod limits;
pub mod lock;
pub mod model;
pub mod moves;
pub mod ownership;
pub mod plan;
pub mod precondition;
pub mod progress;
pub mod render;
pub mod resources;
pub mod retarget;
pub mod rollback;
pub mod sources;
pub mod stats;
pub mod status;

pub use error::{Error, Result};

#[cfg(not(target_env = "msvc"))]
#[doc(hidden)]
pub use tikv_jemallocator;

/// Makes jemalloc the allocator of the program it is written in (warren's binary and its
/// benchmarks), with the heap on transparent huge pages: a region-sized plan touches about a
/// hundred megabytes, which 4 KiB pages make tens of thousands of TLB entries and page faults
/// (docs/PERFORMANCE.md). jemalloc also keeps what a run frees for its next allocations instead
/// of giving it back to the kernel at once. One arena: warren's heavy work runs on one thread,
/// and an arena per thread of the AWS client's runtime would each hold huge pages of its own.
/// The library itself sets no allocator.
#[macro_export]
macro_rules! allocator {
    () => {
        #[cfg(not(target_env = "msvc"))]
        #[global_allocator]
        static ALLOCATOR: $crate::tikv_jemallocator::Jemalloc = $crate::tikv_jemallocator::Jemalloc;

        /// jemalloc's options, read when it starts (`_RJEM_MALLOC_CONF` in the environment
        /// overrides them).
        #[cfg(not(target_env = "msvc"))]
        #[export_name = "_rjem_malloc_conf"]
        #[allow(non_upper_case_globals)]
        pub static malloc_conf: &[u8] = b"thp:always,metadata_thp:auto,narenas:1\0";
    };
}
