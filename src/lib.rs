//! Move a critical upload path from blocking code to async code without
//! betting the service on it.
//!
//! One attribute turns the new `async fn` into a guarded rollout: a feature
//! flag and a consistent-hash percentage decide per call which path runs,
//! transient failures are retried under a per-attempt timeout, the old sync
//! path takes over when the new one gives up, and every call is recorded.
//!
//! ```
//! use std::io;
//! use async_upload::async_upload;
//! use bytes::Bytes;
//!
//! #[derive(Clone)]
//! struct UploadRequest {
//!     id: String,
//!     bytes: Bytes, // each attempt clones the request: a reference count, not a copy
//! }
//!
//! // Today's code: blocking, proven.
//! fn upload_blocking(req: UploadRequest) -> io::Result<usize> {
//!     Ok(req.bytes.len())
//! }
//!
//! // The new code. Callers keep calling `upload(req).await`.
//! #[async_upload(retries = 2, timeout = 30, fallback = upload_blocking,
//!                key = req.id.as_str(), size = req.bytes.len())]
//! async fn upload(req: UploadRequest) -> io::Result<usize> {
//!     Ok(req.bytes.len())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Async is off until an operator turns it on (`ASYNC_UPLOAD_ENABLED=true`
//! // and `ASYNC_UPLOAD_ROLLOUT=1`, or the live handle): the first calls take
//! // the sync path, exactly as before the migration.
//! let req = UploadRequest { id: "file-1".into(), bytes: Bytes::from(vec![0; 1024]) };
//! assert_eq!(upload(req).await.unwrap(), 1024);
//!
//! // Enrol every key at run time; the same call now takes the async path.
//! async_upload::config::handle()
//!     .update(|config| {
//!         config.enabled = true;
//!         config.rollout = 100.0;
//!     })
//!     .unwrap();
//! let req = UploadRequest { id: "file-2".into(), bytes: Bytes::from(vec![0; 2048]) };
//! assert_eq!(upload(req).await.unwrap(), 2048);
//! # }
//! ```
//!
//! What this crate holds, by the features that turn it on:
//!
//! | module or item | holds | feature |
//! | --- | --- | --- |
//! | [`async_upload`] | the attribute | |
//! | [`Classify`], [`ErrorClass`], [`Fault`], [`SyncReason`] | which failures retry or fall back; the runtime's own faults | |
//! | [`call_id()`], [`CallId`] | one idempotency key per logical call | |
//! | [`config`] | `Config`, `SiteOverrides`, the live `ConfigHandle` (`handle()`) | |
//! | [`rollout`] | `bucket`, `Rollout`, `RolloutKey`: the hash rollout | |
//! | [`metrics`] | `UploadRecord`, `MetricsSink`, `Aggregator`, snapshots and notices | |
//! | [`log`] | the JSONL log: `JsonlLog`, `Event`, `read_file`, `Merged` (crate `async-upload-control`) | |
//! | [`stages`] | `Stage`, `Triggers`, `Controller`, `Verdict`, the judge's `Interval` (crate `async-upload-control`) | report types: `cli` |
//! | `dashboard` | the HTML report (crate `async-upload-dashboard`) | `html` |
//! | `fleet` | shared flags, stage and rollback in Redis (crate `async-upload-fleet`) | `redis` |
//! | `testing` | scopes that decide a test's paths and keep its records | `testing` |
//!
//! That is the whole surface: `log`, `stages`, `dashboard` and `fleet` are
//! their crates' documentation, re-exported whole; besides them only the
//! generated code's `__private` module is reachable, and it is not an API.
//!
//! The command (`async-upload report`, `async-upload fleet`) is the
//! `async-upload-cli` crate.
//!
//! The error type says which failures are worth a retry, a fallback, or
//! neither, by implementing [`Classify`] (`std::io::Error` does already).
//! [`call_id()`] gives the body, the fallback and the sync path of one call
//! the same [`CallId`], to pass to the backend as an idempotency key.
//! The [`config`] module holds the environment variables and the live handle
//! (kill switch, rollout percentage, per-site overrides); [`metrics`] the
//! record of each call and the sink trait; [`log`] the JSONL log; [`stages`]
//! the rollout controller that moves a site through 1 % → 10 % → 50 % → 100 %
//! and rolls it back when its health breaks. The README has the configuration
//! table, the bucketing formula and the record schema; the guides in the
//! repository's `docs/` folder hold the rest, one concern each: the demo
//! (`docs/demo.md`), the attribute in depth (`docs/attribute.md`), the
//! circuit breaker (`docs/breaker.md`), testing (`docs/testing.md`), records
//! and metrics (`docs/metrics.md`), staged rollout and judging
//! (`docs/staged-rollout.md`), the HTML report (`docs/dashboard.md`), fleet
//! mode (`docs/fleet.md`) and performance (`docs/performance.md`).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The README's and the guides' Rust blocks are doctests, so what they show
// compiles; a guide whose examples need a feature is tested with it.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../docs/attribute.md")]
#[doc = include_str!("../docs/breaker.md")]
#[doc = include_str!("../docs/dashboard.md")]
#[doc = include_str!("../docs/demo.md")]
#[doc = include_str!("../docs/performance.md")]
#[doc = include_str!("../docs/staged-rollout.md")]
struct GuideDoctests;
#[cfg(all(doctest, feature = "testing"))]
#[doc = include_str!("../docs/testing.md")]
struct TestingGuideDoctests;
#[cfg(all(doctest, feature = "metrics"))]
#[doc = include_str!("../docs/metrics.md")]
struct MetricsGuideDoctests;
#[cfg(all(doctest, feature = "redis"))]
#[doc = include_str!("../docs/fleet.md")]
struct FleetGuideDoctests;

pub use async_upload_macros::async_upload;
pub use async_upload_runtime::{
    call_id, ByteCount, CallId, Classify, ErrorClass, Fault, ParseCallIdError, SyncReason,
};

// The facade documents what a service writes code against: the attribute,
// the configuration, the records and the rollout formula. The layers above
// the hot path (the log and the stages, the HTML report, fleet mode) are
// re-exported whole and documented in their own crates; nothing else is
// reachable (what generated code needs is in `__private`).

pub mod config {
    //! Configuration: the global [`Config`] and its `ASYNC_UPLOAD_*`
    //! environment variables, per-site [`SiteOverrides`], and the live
    //! [`ConfigHandle`] ([`handle`]) a running service changes without a
    //! restart: kill switch, rollout percentage, per-site overrides, rollback.
    pub use async_upload_runtime::config::{Config, ConfigError, ConfigHandle, SiteOverrides};

    /// The process-wide configuration handle.
    ///
    /// The first use reads the environment and starts what it names: the
    /// JSONL log of `ASYNC_UPLOAD_LOG` and, with the `redis` feature, the
    /// fleet of `ASYNC_UPLOAD_REDIS_URL`. A bad value never panics: the error
    /// is logged through `tracing` (and kept in [`ConfigHandle::init_error`]),
    /// routing takes the safe default (async disabled) and every valid
    /// setting that is not routing (the log path, retries, timeout) is kept.
    ///
    /// ```
    /// let config = async_upload::config::handle().config();
    /// assert!(!config.enabled); // nothing in the environment: today's behaviour
    /// ```
    #[must_use]
    pub fn handle() -> &'static ConfigHandle {
        crate::start::start();
        async_upload_runtime::config::handle()
    }
}

pub mod rollout {
    //! Who takes the async path: `bucket = md5(salt ++ ":" ++ key) % 10000`,
    //! enrolled when `bucket < round(percent * 100)`. [`bucket`] reproduces
    //! the formula; [`RolloutKey`] is what a `key = …` expression hashes.
    pub use async_upload_runtime::rollout::{bucket, Rollout, RolloutError, RolloutKey};
}

pub mod metrics {
    //! One [`UploadRecord`] per call, the [`MetricsSink`] trait that receives
    //! every record ([`add_sink`]) and the breakers' and operators' notices
    //! ([`BreakerEvent`], [`ConfigChange`]), and the bounded in-memory
    //! [`Aggregator`] ([`global`]) with its per-site [`SiteSnapshot`] and
    //! [`Summary`].
    /// Latency per size class of a [`SiteSnapshot`] ([`SiteSnapshot::sized`]).
    pub use async_upload_runtime::metrics::sized::SizeClasses;
    /// Why a call took the sync path (the same type as [`crate::SyncReason`]).
    #[doc(no_inline)]
    pub use async_upload_runtime::metrics::SyncReason;
    pub use async_upload_runtime::metrics::{
        add_sink, global, remove_sink, Aggregator, BreakerChange, BreakerEvent, Comparison,
        ConfigChange, ExecutionType, FanOut, Histogram, MetricsSink, ParseSyncReasonError,
        PathSnapshot, RuntimeFault, SettingChange, SinkId, SiteSnapshot, SiteStats, Summary,
        UploadRecord,
    };
    /// Per site, why calls went sync and what ran after an ambiguous attempt
    /// (part of the `async-upload report` command).
    #[cfg(feature = "cli")]
    pub use async_upload_runtime::metrics::{CallAudit, SiteAudit};
    /// Forwards every record to the `metrics` crate facade (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub use async_upload_runtime::metrics::{MetricsFacadeSink, DURATION_BUCKETS, DURATION_METRIC};
}

/// The JSONL log: one event per line, the sink `ASYNC_UPLOAD_LOG` installs,
/// and a strict reader (crate `async-upload-control`).
#[doc(no_inline)]
pub use async_upload_control::log;
/// The staged rollout: stages, the judge and its triggers, the controller
/// and the offline report (crate `async-upload-control`).
#[doc(no_inline)]
pub use async_upload_control::stages;

/// The self-contained HTML rollout report (feature `html`, crate
/// `async-upload-dashboard`).
#[cfg(feature = "html")]
#[doc(no_inline)]
pub use async_upload_dashboard as dashboard;
/// Fleet mode (feature `redis`, crate `async-upload-fleet`): shared flags,
/// stage and rollback in Redis.
#[cfg(feature = "redis")]
#[doc(no_inline)]
pub use async_upload_fleet as fleet;

/// Testing code that uses the attribute (cargo feature `testing`, for
/// `[dev-dependencies]`): `testing::scope()` decides the path of a test's
/// calls and keeps their records, isolated from the process's globals.
#[cfg(feature = "testing")]
pub use async_upload_runtime::testing;

mod start;

/// Generated code reaches the runtime through here; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::start::STARTUP;
    pub use async_upload_runtime::classify_fn::{
        attempt as classify_attempt, sync as classify_sync, Classified,
    };
    pub use async_upload_runtime::execute::{execute, execute_in_place, Lend};
    pub use async_upload_runtime::probe_ok;
    pub use async_upload_runtime::send_argument::SendArgument;
    #[doc(no_inline)]
    pub use async_upload_runtime::{ByteCount, Site};
}
