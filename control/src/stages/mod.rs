//! Staged rollout: [`Stage`] definitions as data ([`DEFAULT_STAGES`]), the
//! pure [`evaluate`] function that turns a window of metrics into a
//! [`Verdict`], the rollback and review [`Triggers`], and the
//! [`Controller`] that applies them to a site on an injectable [`Clock`],
//! through two seams: an [`Actuator`] and a [`HealthSource`].
//!
//! # Stages
//!
//! [`DEFAULT_STAGES`]: 1 %, 10 %, 50 % and 100 %, each with a success
//! rate, a latency ratio against the sync path (at p50 and p95, at equal
//! size), an error rate, a duration and a number of enrolled calls its
//! window must meet; a value exactly at its threshold passes ([`Bound`]).
//! The table of their values and what each criterion counts is the
//! [staged-rollout guide](https://github.com/async-upload/async-upload/blob/main/docs/staged-rollout.md#stages),
//! written once there and tested against the constant.
//!
//! # Triggers
//!
//! Immediate rollback (the controller latches the kill switch): the data
//! show at 99 % confidence (sequential tests, valid under a look every
//! tick; at least 20 enrolled calls) a true success rate below 95 % or a
//! true error rate above 5 % — in excess of the sync path's own failures in
//! the same looks while that path fails too (both failing together is
//! `hold`, "the sync path fails too (shared backend?)"); a critical error
//! (panic in the async path; no statistics, no minimum); resident memory
//! more than 20 % and 32 MiB above its baseline taken after warm-up. Review (logged, no action): success
//! shown below 97 % for 30 minutes, the interval of the async latency ratio
//! wholly above the larger of 1.2 and the stage's own ratio, a rising
//! complaint rate, or a criterion missed once the stage has its time and
//! samples. The statistics are in `judge.rs`; every check and trigger
//! carries its confidence interval.
//!
//! # Files
//!
//! `stage.rs` the table, `verdict.rs` the types of a decision,
//! `evaluate.rs` the rules, `judge.rs` the confidence and intervals,
//! `sequential.rs` the sequential rate test, `rates.rs` the rate triggers'
//! tests against the sync path, `latency.rs` the comparison at equal size,
//! `warmup.rs` the memory baseline, `watch.rs` one stage's state look by
//! look (the controller's and the report's), `window.rs` the controller's
//! stage window, `seams.rs` the two traits, `controller.rs` the state
//! machine, `report.rs`/`render.rs` the offline report (feature `report`),
//! built in one pass by `replay.rs`, which replays each window at the
//! controller's looks (`ticks.rs`).

mod clock;
mod controller;
mod evaluate;
mod health;
mod judge;
pub(crate) mod latency;
mod memory;
mod rates;
#[cfg(feature = "report")]
mod render;
#[cfg(feature = "report")]
mod replay;
#[cfg(feature = "report")]
mod report;
mod seams;
mod sequential;
pub(crate) mod stage;
#[cfg(feature = "report")]
mod ticks;
pub(crate) mod verdict;
mod warmup;
mod watch;
mod window;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use controller::{
    drive, AdvanceError, Controller, ControllerBuilder, DEFAULT_RECENT_WINDOW, DEFAULT_TICK,
};
pub use evaluate::{evaluate, Observation};
pub use health::Health;
pub use judge::{quantile_ratio, rate_interval, Confidence, ConfidenceError, Interval};
pub use latency::{Baseline, SizeBaseline};
pub use memory::{MemoryProbe, ProcStatm};
pub use rates::{AbsoluteEvidence, RateEvidence, SyncPath};
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use replay::ReportBuilder;
#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use report::{
    EventLog, Replayed, Report, ReportError, ReportEvent, ReportOptions, RollbackFinding,
    SiteReport, StageWindow,
};
pub use seams::{Actuator, HealthSource, LocalActuator};
pub use sequential::{Evidence, EvidenceWindow, LimitError, RateMethod, RateTest};
pub(crate) use stage::secs_opt;
pub use stage::{Stage, Triggers, DEFAULT_STAGES};
pub use verdict::{
    BaselineSource, Bound, Check, Complaints, Criterion, Evaluation, Latency, Memory, Missing,
    Period, Status, Trigger, TriggerKind, Verdict,
};
