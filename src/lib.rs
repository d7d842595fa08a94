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
