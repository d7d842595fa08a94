//! Fixtures for tests that run against real components: the local AWS emulator ([`moto`]) and
//! the incident example seeded into it ([`seed`]). Include with `mod support;`, or one module
//! alone with `#[path = "support/moto.rs"] mod moto;` (each stands on its own).
#![allow(dead_code)]

pub mod moto;
pub mod rabbit;
pub mod seed;
