//! The verdict and what it was decided on: [`Verdict`], [`Evaluation`],
//! the [`Check`] of each stage [`Criterion`] with its [`Bound`], and the
//! [`Trigger`]s that fired. Plain data, written to the log and read back
//! ([`log::Event`](crate::log::Event)).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::health::{present, Health};
use super::judge::Interval;
use super::latency::Baseline;
use super::rates::RateEvidence;
use super::sequential::{Evidence, EvidenceWindow};
use super::stage::{secs, Triggers};

/// Comparisons allow this relative slack so that a value computed exactly
/// at a threshold (a ratio of two quantiles, a rate) is not failed by
/// floating-point rounding; it is far below any meaningful difference.
const SLACK: f64 = 1e-9;

/// How a measured value must compare with its threshold to pass; a value
/// exactly at the threshold passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Bound {
    /// The value must be at least the threshold (`>=` in the log).
    #[serde(rename = ">=")]
    AtLeast,
    /// The value must be at most the threshold (`<=` in the log).
    #[serde(rename = "<=")]
    AtMost,
}

impl Bound {
    /// Whether `measured` is within `threshold`.
    ///
    /// ```
    /// use async_upload::stages::Bound;
    ///
    /// assert!(Bound::AtLeast.holds(0.995, 0.995));
    /// assert!(!Bound::AtMost.holds(1.2, 1.1));
    /// ```
    #[must_use]
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        let slack = threshold.abs() * SLACK;
        match self {
            Bound::AtLeast => measured >= threshold - slack,
            Bound::AtMost => measured <= threshold + slack,
        }
    }

    /// `>=` or `<=`.
    #[must_use]
    pub const fn symbol(self) -> &'static str {
        match self {
            Bound::AtLeast => ">=",
            Bound::AtMost => "<=",
        }
    }
}

/// Where the latency baseline came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// Sync calls in the same window.
    SameWindow,
    /// Frozen at the end of the previous stage (used at 100 % rollout, or
    /// when the window has too few sync calls).
    Frozen,
}

/// Async latency against the baseline, size group by size group
/// (`latency.rs`): the ratios are the weighted mean of the groups' ratios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Latency {
    /// Async median, milliseconds (`async` records only: a fallback paid for both paths).
    pub async_p50_ms: f64,
    /// Async 95th percentile, milliseconds.
    pub async_p95_ms: f64,
    /// The baseline compared with.
    pub baseline: Baseline,
    /// Where it came from.
    pub source: BaselineSource,
    /// Async p50 / baseline p50 at equal size: the groups' ratios combined.
    pub p50_ratio: f64,
    /// Async p95 / baseline p95 at equal size.
    pub p95_ratio: f64,
    /// The confidence interval of the p50 ratio (both histograms' order
    /// statistics; only the async side's against a frozen baseline).
    #[serde(default = "Interval::unknown")]
    pub p50_interval: Interval,
    /// The confidence interval of the p95 ratio.
    #[serde(default = "Interval::unknown")]
    pub p95_interval: Interval,
    /// Size groups compared (1: calls without a size, or of one size; 0
    /// in logs written before sizes were matched).
    #[serde(default)]
    pub size_groups: u32,
    /// Async calls in the compared groups (the rest had no sync calls of
    /// their size to compare with).
    #[serde(default)]
    pub compared_calls: u64,
}

/// A measurement of resident memory at the stage's start and now, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Resident bytes when the stage started.
    pub start_bytes: u64,
    /// Resident bytes now.
    pub now_bytes: u64,
}

/// The application's complaint rate (any unit it likes, e.g. support
/// tickets about uploads per hour): at the stage's start and now.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Complaints {
    /// The first rate reported in this stage.
    pub reference: f64,
    /// The latest rate reported.
    pub current: f64,
}

/// What a stage criterion is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Async success rate (fallbacks count as failures), at least.
    SuccessRate,
    /// User-visible error rate, at most.
    ErrorRate,
    /// Async p50 / baseline p50, at most.
    LatencyP50,
    /// Async p95 / baseline p95, at most.
    LatencyP95,
    /// Seconds since the stage started, at least.
    Duration,
    /// Enrolled calls in the stage window, at least.
    Samples,
}

impl Criterion {
    /// A short human name.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Criterion::SuccessRate => "success rate",
            Criterion::ErrorRate => "error rate",
            Criterion::LatencyP50 => "latency p50",
            Criterion::LatencyP95 => "latency p95",
            Criterion::Duration => "time in stage",
            Criterion::Samples => "samples",
        }
    }
}

impl Criterion {
    /// How this criterion's measured value must compare with its threshold.
    #[must_use]
    pub const fn bound(self) -> Bound {
        match self {
            Criterion::ErrorRate | Criterion::LatencyP50 | Criterion::LatencyP95 => Bound::AtMost,
            Criterion::SuccessRate | Criterion::Duration | Criterion::Samples => Bound::AtLeast,
        }
    }
}

/// The state of one criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Met.
    Pass,
    /// Not met.
    Fail,
    /// Not enough data to say.
    Pending,
}

/// One stage criterion: measured against its threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Check {
    /// The criterion.
    pub criterion: Criterion,
    /// The measured value (rates as fractions, latency as ratios, time in
    /// seconds); `None` without data.
    #[serde(deserialize_with = "present")]
    pub measured: Option<f64>,
    /// How the measured value must compare with the threshold.
    #[serde(rename = "op")]
    pub bound: Bound,
    /// The threshold.
    pub threshold: f64,
    /// The confidence interval of `measured`, for rates and latency ratios:
    /// how solid a pass or a miss is (the status is decided on `measured`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// The outcome.
    pub status: Status,
}

impl Check {
    /// `criterion` measured as `measured` (`None`: no data yet) against `threshold`.
    #[must_use]
    pub fn new(criterion: Criterion, measured: Option<f64>, threshold: f64) -> Self {
        let bound = criterion.bound();
        let status = match measured {
            None => Status::Pending,
            Some(m) if bound.holds(m, threshold) => Status::Pass,
            Some(_) => Status::Fail,
        };
        Check {
            criterion,
            measured,
            bound,
            threshold,
            interval: None,
            status,
        }
    }

    /// The check with the confidence interval of its measured value.
    #[must_use]
    pub fn with_interval(mut self, interval: Option<Interval>) -> Self {
        self.interval = interval;
        self
    }

    /// The review trigger of a failed criterion, measured over `calls`
    /// enrolled calls and `window`.
    pub(crate) fn not_met(&self, calls: u64, window: Duration) -> Option<Trigger> {
        let measured = self.measured.filter(|_| self.status == Status::Fail)?;
        Some(Trigger {
            criterion: Some(self.criterion),
            ..Trigger::new(
                TriggerKind::CriterionNotMet,
                measured,
                self.threshold,
                calls,
                window,
            )
            .with_interval(self.interval)
        })
    }
}

/// What fired a review or rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TriggerKind {
    /// Rollback: async success rate below the floor in the recent window.
    SuccessRate,
    /// Rollback: user-visible error rate above the ceiling in the recent window.
    ErrorRate,
    /// Rollback: a critical error (panic in the async path) in the stage.
    CriticalError,
    /// Rollback: resident memory grew too much since the stage started.
    Memory,
    /// Review: success rate in the review band for too long.
    SustainedLowSuccess,
    /// Review: async latency above the review ratio.
    Latency,
    /// Review: the application's complaint rate is rising.
    Complaints,
    /// Review: the stage had its time and samples but missed a criterion.
    CriterionNotMet,
    /// Rollback by an operator or another tool, found on the kill switch.
    Manual,
}

impl TriggerKind {
    /// Whether this trigger rolls back (otherwise it asks for a review).
    #[must_use]
    pub const fn is_rollback(self) -> bool {
        matches!(
            self,
            TriggerKind::SuccessRate
                | TriggerKind::ErrorRate
                | TriggerKind::CriticalError
                | TriggerKind::Memory
                | TriggerKind::Manual
        )
    }
}

/// A fired trigger, with the value and threshold it fired on.
///
/// For a rate trigger these are what decided it: the rate of the calls
/// the sequential test fired on (since the stage started, or since its
/// last restart), the threshold it was held to (the floor, moved by the
/// sync path's own failure rate while that path failed too), the test's
/// own confidence bound (which lies past the threshold), and the number
/// of calls the minimum applies to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Trigger {
    /// What fired.
    pub kind: TriggerKind,
    /// For [`TriggerKind::CriterionNotMet`], which criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion: Option<Criterion>,
    /// The value seen (a rate, a ratio, a count, a growth fraction).
    pub measured: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Enrolled calls in the window it was measured on.
    pub calls: u64,
    /// The span of that window.
    #[serde(rename = "window_s", with = "secs")]
    pub window: Duration,
    /// The confidence interval of `measured`, for a rate or a ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// For a rate trigger, the sequential test's evidence it fired on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl Trigger {
    /// A trigger that is not about one stage criterion.
    pub(crate) fn new(
        kind: TriggerKind,
        measured: f64,
        threshold: f64,
        calls: u64,
        window: Duration,
    ) -> Self {
        Trigger {
            kind,
            criterion: None,
            measured,
            threshold,
            calls,
            window,
            interval: None,
            evidence: None,
        }
    }

    pub(crate) fn with_interval(mut self, interval: Option<Interval>) -> Self {
        self.interval = interval;
        self
    }
}

impl core::fmt::Display for Trigger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match (self.kind, self.criterion) {
            (TriggerKind::CriterionNotMet, Some(criterion)) => criterion.label(),
            (TriggerKind::SuccessRate, _) => "success rate",
            (TriggerKind::ErrorRate, _) => "error rate",
            (TriggerKind::CriticalError, _) => "critical errors",
            (TriggerKind::Memory, _) => "memory growth",
            (TriggerKind::SustainedLowSuccess, _) => "sustained low success rate",
            (TriggerKind::Latency, _) => "latency ratio",
            (TriggerKind::Complaints, _) => "complaint rate",
            (TriggerKind::CriterionNotMet, None) => "stage criterion",
            (TriggerKind::Manual, _) => {
                return f.write_str("manual rollback (latched outside the controller)");
            }
        };
        write!(f, "{name}: measured {:.4}", self.measured)?;
        if let Some(interval) = self.interval {
            write!(f, " [{:.4}, {:.4}]", interval.low, interval.high)?;
        }
        write!(f, " vs threshold {:.4}", self.threshold)?;
        if let Some(evidence) = &self.evidence {
            if evidence.allowance > 0.0 {
                write!(
                    f,
                    " (the floor moved by the sync path's own failure rate, {:.2}%)",
                    evidence.allowance * 100.0
                )?;
            }
            let (count, span) = (evidence.window_calls, Period(evidence.window_span));
            // The calls the test fired on, and the stage's, which the
            // minimum of calls applies to.
            return match evidence.window {
                EvidenceWindow::SinceRestart => write!(
                    f,
                    " (fired on the {count} enrolled calls of the last {span}, since the test's \
                     last restart; {} enrolled calls since the stage started)",
                    evidence.calls
                ),
                _ => write!(
                    f,
                    " (fired on the {count} enrolled calls since the stage started, {span})"
                ),
            };
        }
        write!(
            f,
            " ({} enrolled calls over {})",
            self.calls,
            Period(self.window)
        )
    }
}

/// A duration for a person: seconds under a minute, minutes under an
/// hour, hours under two days, days beyond.
///
/// ```
/// use std::time::Duration;
/// use async_upload::stages::Period;
///
/// assert_eq!(Period(Duration::from_millis(120)).to_string(), "0.1s");
/// assert_eq!(Period(Duration::from_secs(43)).to_string(), "43.0s");
/// assert_eq!(Period(Duration::from_secs(90)).to_string(), "1.5 min");
/// assert_eq!(Period(Duration::from_secs(72 * 3600)).to_string(), "3.0 d");
/// assert_eq!(Period(Duration::from_secs(24 * 3600)).to_string(), "24.0h");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(pub Duration);

impl core::fmt::Display for Period {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs < 60.0 {
            write!(f, "{secs:.1}s")
        } else if secs < 3600.0 {
            write!(f, "{:.1} min", secs / 60.0)
        } else if secs < 48.0 * 3600.0 {
            write!(f, "{:.1}h", secs / 3600.0)
        } else {
            write!(f, "{:.1} d", secs / 86_400.0)
        }
    }
}

/// What is still short before a stage can pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Missing {
    /// The health source had no fresh counters at this tick: the controller
    /// holds until it has.
    FreshHealth,
    /// Too few enrolled calls.
    Samples {
        /// Calls so far.
        have: u64,
        /// Calls needed.
        need: u64,
    },
    /// Too little time.
    Time {
        /// Time so far.
        #[serde(rename = "have_s", with = "secs")]
        have: Duration,
        /// Time needed.
        #[serde(rename = "need_s", with = "secs")]
        need: Duration,
    },
    /// Not enough calls on one side of the latency comparison (in the size
    /// groups where both paths have calls).
    LatencyData {
        /// Async calls compared.
        async_calls: u64,
        /// Baseline (sync) calls compared.
        baseline_calls: u64,
        /// Calls each side needs.
        need: u64,
    },
    /// The async path breaches a rollback floor, but no more than the sync
    /// path fails in the same looks: a shared backend is down. Not the new
    /// path's fault, so not a rollback; not a pass either.
    SyncFailsToo {
        /// Failed enrolled calls the absolute floor fired on.
        async_failures: u64,
        /// Enrolled calls it fired on.
        async_calls: u64,
        /// Failed sync calls in the recent window.
        sync_failures: u64,
        /// Sync calls in the recent window.
        sync_calls: u64,
    },
}

/// For a person: what is short, and how far.
///
/// ```
/// use std::time::Duration;
/// use async_upload::stages::Missing;
///
/// let short = Missing::Time { have: Duration::from_secs(3600), need: Duration::from_secs(86_400) };
/// assert_eq!(short.to_string(), "time in stage: 1.0h of 24.0h");
/// let scaled = Missing::Time { have: Duration::from_millis(100), need: Duration::from_secs(43) };
/// assert_eq!(scaled.to_string(), "time in stage: 0.1s of 43.0s");
/// ```
impl core::fmt::Display for Missing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Missing::FreshHealth => f.write_str("fresh health counters (none at this tick)"),
            Missing::Samples { have, need } => write!(f, "samples: {have} of {need} enrolled calls"),
            Missing::Time { have, need } => {
                // Both in the unit of what is needed, so they compare at a glance.
                let (have, need) = (have.as_secs_f64(), need.as_secs_f64());
                let (unit, per) = unit_of(need);
                write!(f, "time in stage: {:.1}{unit} of {:.1}{unit}", have / per, need / per)
            }
            Missing::LatencyData {
                async_calls,
                baseline_calls,
                need,
            } => write!(
                f,
                "latency data: {async_calls} async and {baseline_calls} baseline calls of matching sizes, {need} each needed"
            ),
            Missing::SyncFailsToo {
                async_failures,
                async_calls,
                sync_failures,
                sync_calls,
            } => write!(
                f,
                "the sync path fails too (shared backend?): {async_failures} of {async_calls} \
                 enrolled calls and {sync_failures} of {sync_calls} sync calls failed"
            ),
        }
    }
}

/// The unit a duration of `secs` seconds reads best in, and its size in
/// seconds: seconds under five minutes, minutes under an hour, else hours.
pub(crate) fn unit_of(secs: f64) -> (&'static str, f64) {
    if secs < 300.0 {
        ("s", 1.0)
    } else if secs < 3600.0 {
        (" min", 60.0)
    } else {
        ("h", 3600.0)
    }
}

/// The decision about a stage. Worst wins: rollback > review > hold > advance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every criterion is met: the stage may advance.
    Advance,
    /// Not enough time, samples or data yet.
    Hold {
        /// What is short.
        missing: Vec<Missing>,
    },
    /// A gradual trigger fired: a human should look; nothing is changed.
    Review {
        /// What fired.
        triggers: Vec<Trigger>,
    },
    /// An immediate trigger fired: the site goes back to the sync path.
    Rollback {
        /// What fired.
        triggers: Vec<Trigger>,
    },
}

impl Verdict {
    /// `advance`, `hold`, `review` or `rollback`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Verdict::Advance => "advance",
            Verdict::Hold { .. } => "hold",
            Verdict::Review { .. } => "review",
            Verdict::Rollback { .. } => "rollback",
        }
    }
}

/// A verdict with everything it was decided on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Evaluation {
    /// The stage's number.
    pub stage: u32,
    /// The stage's rollout percent.
    pub rollout: f64,
    /// The decision.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The stage criteria, measured against their thresholds.
    pub checks: Vec<Check>,
    /// Health over the stage window.
    pub health: Health,
    /// Health over the recent window (the rate triggers).
    pub recent: Health,
    /// Latency against the baseline, when both sides have enough calls.
    #[serde(deserialize_with = "present")]
    pub latency: Option<Latency>,
    /// Memory, when measured.
    #[serde(deserialize_with = "present")]
    pub memory: Option<Memory>,
    /// Time since the stage started.
    #[serde(rename = "elapsed_s", with = "secs")]
    pub elapsed: Duration,
    /// The rate triggers' sequential tests at this look (a log written
    /// before they were recorded reads as no evidence).
    #[serde(default)]
    pub rates: RateEvidence,
    /// The thresholds of the triggers.
    pub thresholds: Triggers,
}
