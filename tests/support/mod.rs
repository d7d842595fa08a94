//! Fixtures for tests that run against real components: the local AWS emulator ([`moto`]), the
//! incident example seeded into it ([`seed`]) and the other resources that can point at a broker
//! ([`resources`]); the AWS calls the source makes ([`calls`]); real RabbitMQ nodes
//! ([`rabbit`]), clients that follow the world file ([`worker`]) and numbered traffic through
//! them with a summary of what arrived ([`traffic`]). Include with
//! `mod support;`, or one module alone with `#[path = "support/moto.rs"] mod moto;` (each stands
//! on its own).
#![allow(dead_code)]

pub mod calls;
pub mod moto;
pub mod rabbit;
pub mod resources;
pub mod seed;
pub mod traffic;
pub mod worker;
