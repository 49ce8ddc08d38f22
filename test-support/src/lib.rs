//! What the tests, benches and examples of the async-upload crates share,
//! in one place instead of files included by path across crates. A
//! dev-dependency only; never published.
//!
//! - [`records`]: a sink that keeps one site's records, the switches a test
//!   turns on, and an error type with every classification;
//! - [`seams`]: a scripted health source and a recording actuator for the
//!   stage controller;
//! - [`synthetic`]: a synthetic rollout log (stages, verdicts, a rollback,
//!   operator changes) for the report, the dashboard and their benches;
//! - [`rank`]: the nearest-rank quantile of the figures tests print.

pub mod rank;
pub mod records;
pub mod seams;
pub mod synthetic;
