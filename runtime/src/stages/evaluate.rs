//! The pure evaluation: (stage, window metrics, baseline, elapsed time) →
//! [`Evaluation`] with its [`Verdict`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::judge::{quantile_ratio, quantile_ratio_to, rate_interval, Evidence, Interval};
use super::rates::RateEvidence;
use super::stage::{seconds, Stage, Triggers};
use crate::metrics::{ExecutionType, PathSnapshot, SiteSnapshot};

/// Comparisons allow this relative slack so that a value computed exactly
/// at a threshold (a ratio of two quantiles, a rate) is not failed by
/// floating-point rounding; it is far below any meaningful difference.
const SLACK: f64 = 1e-9;

fn at_least(measured: f64, threshold: f64) -> bool {
    measured >= threshold - threshold.abs() * SLACK
}

fn at_most(measured: f64, threshold: f64) -> bool {
    measured <= threshold + threshold.abs() * SLACK
}

#[allow(clippy::cast_precision_loss)]
fn rate(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// The async path's health over a window.
///
/// Enrolled calls are those that took the async path: `async` and
/// `sync_fallback` records. Cancelled calls are neither successes nor
/// failures. A `sync_fallback` call counts as an async **failure** (the new
/// path did not do the job) in [`Health::success_rate`]; the user-visible
/// rates, where the fallback saved the call, are beside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Health {
    /// Finished enrolled calls (successes + failures of `async` and `sync_fallback`).
    pub enrolled: u64,
    /// Calls the async path served successfully.
    pub async_successes: u64,
    /// Enrolled calls whose caller got an error.
    pub user_errors: u64,
    /// Enrolled calls the sync fallback took over.
    pub fallbacks: u64,
    /// Critical errors (a panic in the async path).
    pub critical: u64,
    /// `async_successes / enrolled`: the async path's success rate.
    pub success_rate: Option<f64>,
    /// `1 - user_errors / enrolled`: what callers saw.
    pub user_success_rate: Option<f64>,
    /// `user_errors / enrolled`: the error rate callers saw.
    pub error_rate: Option<f64>,
}

impl Health {
    /// The health of the enrolled calls in `window`.
    #[must_use]
    pub fn of(window: &SiteSnapshot) -> Self {
        let direct = window.path(ExecutionType::Async);
        let fallback = window.path(ExecutionType::SyncFallback);
        let finished = |p: &PathSnapshot| p.successes + p.failures;
        let enrolled = finished(direct) + finished(fallback);
        let user_errors = direct.failures + fallback.failures;
        Health {
            enrolled,
            async_successes: direct.successes,
            user_errors,
            fallbacks: finished(fallback),
            critical: direct.critical + fallback.critical,
            success_rate: rate(direct.successes, enrolled),
            user_success_rate: rate(enrolled - user_errors, enrolled),
            error_rate: rate(user_errors, enrolled),
        }
    }
}

/// Sync-path latency to compare the async path with, frozen at the end of
/// a stage for the next one (at 100 % there is no sync traffic).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Sync median, milliseconds.
    pub p50_ms: f64,
    /// Sync 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// Sync calls it was measured on.
    pub calls: u64,
}

impl Baseline {
    /// The sync path's latency in `window`; `None` without sync calls.
    #[must_use]
    pub fn of(window: &SiteSnapshot) -> Option<Self> {
        let sync = window.path(ExecutionType::Sync);
        Some(Baseline {
            p50_ms: sync.latency.quantile(0.50)? / 1000.0,
            p95_ms: sync.latency.quantile(0.95)? / 1000.0,
            calls: sync.latency.len(),
        })
    }
}

/// Where the latency baseline came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// Sync calls in the same window.
    SameWindow,
    /// Frozen at the end of the previous stage (used at 100 % rollout, or
    /// when the window has too few sync calls).
    Frozen,
}

/// Async latency against the baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Async median, milliseconds (`async` records only: a fallback paid for both paths).
    pub async_p50_ms: f64,
    /// Async 95th percentile, milliseconds.
    pub async_p95_ms: f64,
    /// The baseline compared with.
    pub baseline: Baseline,
    /// Where it came from.
    pub source: BaselineSource,
    /// `async_p50 / baseline p50`.
    pub p50_ratio: f64,
    /// `async_p95 / baseline p95`.
    pub p95_ratio: f64,
    /// The confidence interval of the p50 ratio (both histograms' order
    /// statistics; only the async side's against a frozen baseline).
    pub p50_interval: Interval,
    /// The confidence interval of the p95 ratio.
    pub p95_interval: Interval,
}

/// A measurement of resident memory at the stage's start and now, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident bytes when the stage started.
    pub start_bytes: u64,
    /// Resident bytes now.
    pub now_bytes: u64,
}

/// The application's complaint rate (any unit it likes, e.g. support
/// tickets about uploads per hour): at the stage's start and now.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Complaints {
    /// The first rate reported in this stage.
    pub reference: f64,
    /// The latest rate reported.
    pub current: f64,
}

/// Everything an evaluation looks at; the controller gathers it, tests
/// build it by hand.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    /// Calls since the stage started: the stage criteria.
    pub stage_window: &'a SiteSnapshot,
    /// Calls in the last few minutes: the rate triggers.
    pub recent_window: &'a SiteSnapshot,
    /// How long the recent window spans.
    pub recent_span: Duration,
    /// Time since the stage started.
    pub elapsed: Duration,
    /// The sync latency frozen at the end of the previous stage, if any.
    pub baseline: Option<Baseline>,
    /// Resident memory, when measured.
    pub memory: Option<Memory>,
    /// How long the recent success rate has stayed in the review band
    /// (below `review_success_below`, not below `rollback_success_below`).
    pub success_band_for: Duration,
    /// The application's complaint rate, when it reports one.
    pub complaints: Option<Complaints>,
    /// The rate triggers' sequential tests as the controller ran them, one
    /// look per tick; `None` (a report judging a finished log) judges the
    /// stage window once ([`RateEvidence::one_look`]).
    pub rates: Option<RateEvidence>,
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

/// The state of one criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// The criterion.
    pub criterion: Criterion,
    /// The measured value (rates as fractions, latency as ratios, time in
    /// seconds); `None` without data.
    pub measured: Option<f64>,
    /// `>=` or `<=`.
    pub op: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// The confidence interval of `measured`, for rates and latency ratios:
    /// how solid a pass or a miss is (the status is decided on `measured`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// The outcome.
    pub status: Status,
}

/// What fired a review or rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trigger {
    /// What fired.
    pub kind: TriggerKind,
    /// For [`TriggerKind::CriterionNotMet`], which criterion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criterion: Option<Criterion>,
    /// The value seen (a rate, a ratio, a count, a growth fraction).
    pub measured: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Enrolled calls in the window it was measured on.
    pub calls: u64,
    /// The span of that window.
    #[serde(rename = "window_s", serialize_with = "seconds")]
    pub window: Duration,
    /// The confidence interval of `measured`, for a rate or a ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// For a rate trigger, the sequential test's evidence it fired on.
    #[serde(skip_serializing_if = "Option::is_none")]
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

    fn with_interval(mut self, interval: Option<Interval>) -> Self {
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
            (TriggerKind::Manual, _) => "manual rollback",
        };
        write!(f, "{name}: measured {:.4}", self.measured)?;
        if let Some(interval) = self.interval {
            write!(f, " [{:.4}, {:.4}]", interval.low, interval.high)?;
        }
        write!(
            f,
            " vs threshold {:.4} ({} calls over {}s)",
            self.threshold,
            self.calls,
            self.window.as_secs()
        )
    }
}

/// What is still short before a stage can pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
        #[serde(rename = "have_s", serialize_with = "seconds")]
        have: Duration,
        /// Time needed.
        #[serde(rename = "need_s", serialize_with = "seconds")]
        need: Duration,
    },
    /// Not enough calls on one side of the latency comparison.
    LatencyData {
        /// Async calls in the window.
        async_calls: u64,
        /// Baseline (sync) calls available.
        baseline_calls: u64,
        /// Calls each side needs.
        need: u64,
    },
}

/// The decision about a stage. Worst wins: rollback > review > hold > advance.
#[derive(Clone, Debug, PartialEq, Serialize)]
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

    /// Severity for "worst wins": advance 0, hold 1, review 2, rollback 3.
    #[must_use]
    pub const fn severity(&self) -> u8 {
        match self {
            Verdict::Advance => 0,
            Verdict::Hold { .. } => 1,
            Verdict::Review { .. } => 2,
            Verdict::Rollback { .. } => 3,
        }
    }

    /// The process exit status a pipeline gates on: 0 advance or hold, 3
    /// review, 4 rollback.
    #[must_use]
    pub const fn exit_code(&self) -> i32 {
        match self {
            Verdict::Advance | Verdict::Hold { .. } => 0,
            Verdict::Review { .. } => 3,
            Verdict::Rollback { .. } => 4,
        }
    }
}

/// A verdict with everything it was decided on.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    pub latency: Option<Latency>,
    /// Memory, when measured.
    pub memory: Option<Memory>,
    /// Time since the stage started.
    #[serde(rename = "elapsed_s", serialize_with = "seconds")]
    pub elapsed: Duration,
    /// The rate triggers' sequential tests at this look.
    pub rates: RateEvidence,
    /// The thresholds of the triggers.
    pub thresholds: Triggers,
}

fn latency(stage: &Stage, triggers: &Triggers, obs: &Observation<'_>) -> Result<Latency, Missing> {
    let direct = obs.stage_window.path(ExecutionType::Async);
    let async_calls = direct.latency.len();
    let same = Baseline::of(obs.stage_window).filter(|b| b.calls >= triggers.min_calls);
    // At 100 % the window has no concurrent sync traffic worth comparing.
    let (baseline, source) = match (same, obs.baseline) {
        (Some(same), _) if stage.rollout < 100.0 => (Some(same), BaselineSource::SameWindow),
        (_, Some(frozen)) => (Some(frozen), BaselineSource::Frozen),
        _ => (None, BaselineSource::SameWindow),
    };
    let missing = Missing::LatencyData {
        async_calls,
        baseline_calls: baseline.map_or(0, |b| b.calls),
        need: triggers.min_calls,
    };
    let Some(baseline) = baseline else {
        return Err(missing);
    };
    if async_calls < triggers.min_calls || baseline.p50_ms <= 0.0 || baseline.p95_ms <= 0.0 {
        return Err(missing);
    }
    let q = |q: f64| direct.latency.quantile(q).map_or(0.0, |us| us / 1000.0);
    let (async_p50_ms, async_p95_ms) = (q(0.50), q(0.95));
    let confidence = triggers.confidence;
    let sync = &obs.stage_window.path(ExecutionType::Sync).latency;
    let interval = |q: f64, baseline_ms: f64| {
        let interval = match source {
            BaselineSource::SameWindow => quantile_ratio(&direct.latency, sync, q, confidence),
            BaselineSource::Frozen => {
                quantile_ratio_to(&direct.latency, baseline_ms * 1000.0, q, confidence)
            }
        };
        // Both sides have calls here; an empty side would know nothing.
        interval.unwrap_or(Interval {
            low: 0.0,
            high: f64::INFINITY,
        })
    };
    Ok(Latency {
        async_p50_ms,
        async_p95_ms,
        baseline,
        source,
        p50_ratio: async_p50_ms / baseline.p50_ms,
        p95_ratio: async_p95_ms / baseline.p95_ms,
        p50_interval: interval(0.50, baseline.p50_ms),
        p95_interval: interval(0.95, baseline.p95_ms),
    })
}

/// A rate trigger fired by `evidence`: the rate shown is that of the calls
/// the evidence came from (the stage's when the test since its start fired,
/// else the recent window's), with its interval.
fn rate_trigger(
    kind: TriggerKind,
    evidence: Evidence,
    threshold: f64,
    bad_of: impl Fn(&Health) -> u64,
    (health, recent): (&Health, &Health),
    (elapsed, recent_span): (Duration, Duration),
    confidence: super::judge::Confidence,
) -> Trigger {
    let since_start = evidence.since_start >= evidence.start_threshold;
    let (window, span) = if since_start {
        (health, elapsed)
    } else {
        (recent, recent_span)
    };
    // Success triggers show the good rate, error triggers the bad one.
    let good = kind == TriggerKind::SuccessRate;
    let bad = bad_of(window);
    let shown = if good { window.enrolled - bad } else { bad };
    let measured = rate(shown, window.enrolled).unwrap_or(f64::NAN);
    let mut trigger = Trigger::new(kind, measured, threshold, window.enrolled, span)
        .with_interval(rate_interval(shown, window.enrolled, confidence));
    trigger.evidence = Some(evidence);
    trigger
}

/// The immediate triggers: the rate tests' evidence, critical errors and
/// memory over the stage.
fn rollback_triggers(
    triggers: &Triggers,
    obs: &Observation<'_>,
    health: &Health,
    recent: &Health,
    rates: &RateEvidence,
) -> Vec<Trigger> {
    let mut rollback = Vec::new();
    let windows = (health, recent);
    let spans = (obs.elapsed, obs.recent_span);
    // Evidence from fewer calls than `min_calls` is left for more data, as
    // a floor under the statistics (4 failures in 4 calls would do for them).
    let enough = |evidence: &Evidence| evidence.calls >= triggers.min_calls;
    if rates.success.fired() && enough(&rates.success) {
        rollback.push(rate_trigger(
            TriggerKind::SuccessRate,
            rates.success,
            triggers.rollback_success_below,
            |h| h.enrolled - h.async_successes,
            windows,
            spans,
            triggers.confidence,
        ));
    }
    if rates.errors.fired() && enough(&rates.errors) {
        rollback.push(rate_trigger(
            TriggerKind::ErrorRate,
            rates.errors,
            triggers.rollback_error_above,
            |h| h.user_errors,
            windows,
            spans,
            triggers.confidence,
        ));
    }
    if health.critical > 0 {
        #[allow(clippy::cast_precision_loss)]
        rollback.push(Trigger::new(
            TriggerKind::CriticalError,
            health.critical as f64,
            0.0,
            health.enrolled,
            obs.elapsed,
        ));
    }
    if let Some(memory) = obs.memory.filter(|m| m.start_bytes > 0) {
        #[allow(clippy::cast_precision_loss)]
        let growth = memory.now_bytes as f64 / memory.start_bytes as f64 - 1.0;
        let grown = memory.now_bytes.saturating_sub(memory.start_bytes);
        if !at_most(growth, triggers.rollback_memory_growth)
            && grown >= triggers.rollback_memory_floor
        {
            rollback.push(Trigger::new(
                TriggerKind::Memory,
                growth,
                triggers.rollback_memory_growth,
                health.enrolled,
                obs.elapsed,
            ));
        }
    }

    rollback
}

fn check(
    criterion: Criterion,
    (measured, interval): (Option<f64>, Option<Interval>),
    op: &'static str,
    threshold: f64,
) -> Check {
    let status = match measured {
        None => Status::Pending,
        Some(m) if op == ">=" && at_least(m, threshold) => Status::Pass,
        Some(m) if op == "<=" && at_most(m, threshold) => Status::Pass,
        Some(_) => Status::Fail,
    };
    Check {
        criterion,
        measured,
        op,
        threshold,
        interval,
        status,
    }
}

/// Decides a stage: a pure function of the stage, the triggers and what was
/// observed, so every verdict can be replayed from the log.
///
/// - **Rollback** (checked first, in every state): the sequential rate
///   tests ([`Observation::rates`]) show, at `triggers.confidence`, a true
///   async success rate below 95 % or a true error rate above 5 %; any
///   critical error in the stage (no statistics, no minimum); resident
///   memory more than 20 % and at least `rollback_memory_floor` above its
///   baseline taken after warm-up.
/// - **Review**: success in the 95–97 % band for 30 minutes (the band's
///   test fired); the interval of the async/baseline p50 or p95 ratio
///   wholly above the larger of 1.2 and the stage's own ratio; a rising
///   complaint rate; or the stage has its time and samples but misses a
///   criterion.
/// - **Hold**: time, samples or latency data still short (listed).
/// - **Advance**: every criterion met. Latency passes only when both the
///   p50 ratio and the p95 ratio are within the stage's ratio.
///
/// ```
/// use std::time::Duration;
/// use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot, UploadRecord};
/// use async_upload_runtime::stages::{evaluate, Observation, Triggers, Verdict, DEFAULT_STAGES};
///
/// let mut window = SiteSnapshot::empty("upload");
/// for _ in 0..10 {
///     window.record(&UploadRecord::new("upload", ExecutionType::Async, true, 10.0, 1));
/// }
/// let observation = Observation {
///     stage_window: &window,
///     recent_window: &window,
///     recent_span: Duration::from_secs(240),
///     elapsed: Duration::from_secs(3600),
///     baseline: None,
///     memory: None,
///     success_band_for: Duration::ZERO,
///     complaints: None,
///     rates: None,
/// };
/// let evaluation = evaluate(&DEFAULT_STAGES[0], &Triggers::DEFAULT, &observation);
/// assert_eq!(evaluation.verdict.name(), "hold"); // 10 calls, 1 hour: too little of both
/// ```
#[must_use]
#[allow(clippy::too_many_lines)] // one decision, read top to bottom: triggers, checks, verdict
pub fn evaluate(stage: &Stage, triggers: &Triggers, obs: &Observation<'_>) -> Evaluation {
    let health = Health::of(obs.stage_window);
    let recent = Health::of(obs.recent_window);

    let rates = obs
        .rates
        .unwrap_or_else(|| RateEvidence::one_look(&health, triggers));
    let rollback = rollback_triggers(triggers, obs, &health, &recent, &rates);
    let latency = latency(stage, triggers, obs);
    let mut review = Vec::new();
    if obs.success_band_for >= triggers.review_sustained {
        review.push(Trigger::new(
            TriggerKind::SustainedLowSuccess,
            recent.success_rate.unwrap_or(0.0),
            triggers.review_success_below,
            recent.enrolled,
            obs.success_band_for,
        ));
    }
    if let Ok(latency) = &latency {
        // The global ratio never overrules a looser one the stage set for itself.
        let limit = triggers.review_latency_ratio.max(stage.max_latency_ratio);
        // Evidence, not a point estimate: the whole interval is past the limit.
        let slower = [
            (latency.p50_ratio, latency.p50_interval),
            (latency.p95_ratio, latency.p95_interval),
        ]
        .into_iter()
        .filter(|(_, interval)| !at_most(interval.low, limit))
        .max_by(|a, b| a.1.low.total_cmp(&b.1.low));
        if let Some((ratio, interval)) = slower {
            review.push(
                Trigger::new(
                    TriggerKind::Latency,
                    ratio,
                    limit,
                    health.enrolled,
                    obs.elapsed,
                )
                .with_interval(Some(interval)),
            );
        }
    }
    if let Some(complaints) = obs.complaints {
        let limit = complaints.reference * (1.0 + triggers.review_complaint_growth);
        if complaints.current > complaints.reference && !at_most(complaints.current, limit) {
            review.push(Trigger::new(
                TriggerKind::Complaints,
                complaints.current,
                limit,
                health.enrolled,
                obs.elapsed,
            ));
        }
    }

    let (p50, p95) = match &latency {
        Ok(l) => (
            (Some(l.p50_ratio), Some(l.p50_interval)),
            (Some(l.p95_ratio), Some(l.p95_interval)),
        ),
        Err(_) => ((None, None), (None, None)),
    };
    let confidence = triggers.confidence;
    let errors = health.user_errors;
    #[allow(clippy::cast_precision_loss)]
    let checks = vec![
        check(
            Criterion::SuccessRate,
            (
                health.success_rate,
                rate_interval(health.async_successes, health.enrolled, confidence),
            ),
            ">=",
            stage.min_success_rate,
        ),
        check(
            Criterion::ErrorRate,
            (
                health.error_rate,
                rate_interval(errors, health.enrolled, confidence),
            ),
            "<=",
            stage.max_error_rate,
        ),
        check(Criterion::LatencyP50, p50, "<=", stage.max_latency_ratio),
        check(Criterion::LatencyP95, p95, "<=", stage.max_latency_ratio),
        check(
            Criterion::Duration,
            (Some(obs.elapsed.as_secs_f64()), None),
            ">=",
            stage.min_duration.as_secs_f64(),
        ),
        check(
            Criterion::Samples,
            (Some(health.enrolled as f64), None),
            ">=",
            stage.min_samples as f64,
        ),
    ];

    let mut missing = Vec::new();
    if health.enrolled < stage.min_samples {
        missing.push(Missing::Samples {
            have: health.enrolled,
            need: stage.min_samples,
        });
    }
    if obs.elapsed < stage.min_duration {
        missing.push(Missing::Time {
            have: obs.elapsed,
            need: stage.min_duration,
        });
    }
    let latency = match latency {
        Ok(latency) => Some(latency),
        Err(short) => {
            missing.push(short);
            None
        }
    };
    // A criterion missed once the stage has had its time and samples is a
    // human decision: the stage cannot pass, and it is not a breach.
    if missing.is_empty() {
        for failed in checks.iter().filter(|c| c.status == Status::Fail) {
            review.push(Trigger {
                criterion: Some(failed.criterion),
                ..Trigger::new(
                    TriggerKind::CriterionNotMet,
                    failed.measured.unwrap_or(f64::NAN),
                    failed.threshold,
                    health.enrolled,
                    obs.elapsed,
                )
                .with_interval(failed.interval)
            });
        }
    }

    let verdict = if !rollback.is_empty() {
        Verdict::Rollback { triggers: rollback }
    } else if !review.is_empty() {
        Verdict::Review { triggers: review }
    } else if !missing.is_empty() {
        Verdict::Hold { missing }
    } else {
        Verdict::Advance
    };
    Evaluation {
        stage: stage.number,
        rollout: stage.rollout,
        verdict,
        checks,
        health,
        recent,
        latency,
        memory: obs.memory,
        elapsed: obs.elapsed,
        rates,
        thresholds: triggers.clone(),
    }
}
