//! Records and their sinks: [`UploadRecord`], the [`MetricsSink`] trait,
//! the bounded in-memory [`Aggregator`], [`Summary`] and the async-vs-sync
//! [`Comparison`]; the notices sinks also receive ([`BreakerEvent`],
//! [`ConfigChange`]).
//!
//! Every call of an annotated function produces exactly one record. It goes
//! to the global aggregator ([`global`]), to every sink added with
//! [`add_sink`], and, with the `metrics` cargo feature, to the
//! [`metrics`](https://docs.rs/metrics) facade, so any exporter a service
//! already runs (Prometheus, `StatsD`, `OpenTelemetry`) sees it. The call's
//! `tracing` span and events come from the executor itself.
//!
//! Every sink added with [`add_sink`] also hears of the rare events that
//! are no call's record: a circuit breaker's transition
//! ([`MetricsSink::breaker_changed`]) and a change an operator applied to
//! the live configuration ([`MetricsSink::config_changed`]). The JSONL log
//! writes them as its `breaker` and `operator` lines.

mod aggregate;
#[cfg(feature = "report")]
mod audit;
#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "serde")]
mod flat_json;
mod histogram;
mod notice;
mod path;
pub(crate) mod record;
mod registry;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod rfc3339;
mod sink;
pub mod sized;
mod summary;
#[cfg(feature = "serde")]
mod wire;

pub use aggregate::{global, Aggregator, SiteSnapshot, SiteStats};
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use audit::{CallAudit, SiteAudit};
#[cfg(feature = "metrics")]
pub use facade::{MetricsFacadeSink, DURATION_BUCKETS, DURATION_METRIC};
pub use histogram::Histogram;
pub use notice::{BreakerChange, BreakerEvent, ConfigChange, SettingChange};
pub use path::PathSnapshot;
pub(crate) use record::user_error_name;
pub use record::{ExecutionType, ParseSyncReasonError, RuntimeFault, SyncReason, UploadRecord};
pub use registry::{add_sink, remove_sink, replace_sink};
pub use sink::{FanOut, MetricsSink, SinkId};
pub use summary::{Comparison, Summary};

pub(crate) use registry::{dispatch, notify};
/// The JSON shape of a record: the DESIGN fields plus the explicit
/// `critical` and `fault`, both optional on reading for old lines.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use wire::from_line as upload_from_line;
