//! Shared by the end-to-end tests, the upload demo and the benchmark: a
//! loopback upload server with fault injection, the async (`reqwest`) and
//! blocking (`ureq`) clients, and test files.
//!
//! Each user includes it by path (`#[path = "../tests/support/mod.rs"]`);
//! not every user needs every item.
#![allow(dead_code)]

pub mod client;
pub mod files;
pub mod fixture;
pub mod probe;
pub mod redis;
pub mod replica_lines;
pub mod server;
