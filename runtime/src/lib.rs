//! The runtime of [`async-upload`](https://docs.rs/async-upload): everything
//! that runs when an `#[async_upload]` function is called.
//!
//! Users depend on the `async-upload` facade, which re-exports this crate;
//! the modules, one concern each:
//!
//! - [`config`]: the global [`Config`](config::Config), per-site overrides,
//!   environment parsing and the live handle;
//! - [`rollout`]: the consistent-hash bucket and the enrolment decision;
//! - [`policy`]: error classification and backoff;
//! - [`execute`]: the per-call state machine, with each site's circuit
//!   breaker and retry budget;
//! - [`metrics`]: records, sinks, the bounded aggregator and summaries;
//! - `testing` (cargo feature `testing`): scopes that decide the path of a
//!   test's calls and keep their records, isolated from the globals.
//!
//! The public names: at the root, [`Site`], [`Call`], [`Path`],
//! [`SyncReason`], [`ByteCount`], [`Classify`], [`ErrorClass`], [`Fault`],
//! [`ProbeOutcome`], [`call_id()`], [`CallId`], [`ParseCallIdError`]; in
//! [`config`], `Config`, `SiteOverrides`, `ConfigError`, `ConfigHandle`
//! (`handle`), `Settings`, `BreakerSettings`, `BreakerState`, `Startup`
//! (`set_startup`), the attribution of changes (`as_controller`,
//! `applied_by`) and `config::env`; in [`rollout`], `bucket`, `Rollout`,
//! `RolloutKey`; in [`policy`], the error classes and `Backoff`; in
//! [`execute`], `execute`, `execute_in_place`, `Lend`; in [`metrics`], the
//! record, the sinks, the aggregator and its snapshots, the notices, and
//! `metrics::sized` and (feature `serde`) `metrics::rfc3339` and
//! `metrics::upload_from_line` for the layers above.
//!
//! Its dependencies are tokio, tracing, arc-swap, md-5 and fastrand. The
//! cargo features add the rest: `serde` the wire form of records, notices
//! and per-path counters (`serde`, `serde_json`, `humantime`; the log and fleet
//! turn it on), `metrics`, `uuid`, `anyhow`, `report` (the per-call audit
//! of the offline report) and `testing`.
//!
//! The layers above build on it and never the reverse:
//! `async-upload-control` (the JSONL log and the staged rollout),
//! `async-upload-dashboard` (the HTML report) and `async-upload-fleet`
//! (fleet mode through Redis).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::pedantic)]
#![allow(clippy::module_name_repetitions)]

mod breaker;
mod call_id;
#[doc(hidden)]
pub mod classify_fn;
pub mod config;
mod dyn_error;
pub mod execute;
mod lend;
pub mod metrics;
pub mod policy;
pub mod rollout;
#[doc(hidden)]
pub mod send_argument;
mod site;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[doc(hidden)]
pub use breaker::background::probe_ok;
pub use breaker::background::ProbeOutcome;
pub use call_id::{call_id, CallId, ParseCallIdError};
pub use policy::{Classify, ErrorClass, Fault};
pub use site::{ByteCount, Call, Path, Site, SyncReason};
