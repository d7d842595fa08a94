//! warren moves ECS services from an old RabbitMQ broker to a new one: it discovers every
//! service that points at a broker, orders the move from a publisher/consumer graph, and refuses
//! to delete the old broker while anything still uses it.
//!
//! The core (`config`, `discovery`, `graph`, `plan`) is pure: it computes values from plain
//! data. `backend` reads and changes the world; `render` prints values; `run` wires them to the
//! command line.

pub mod atomic;
pub mod backend;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod error;
pub mod graph;
pub mod model;
pub mod plan;
pub mod render;
pub mod run;

pub use error::{Error, Result};
