//! The rules: (stage, triggers, [`Observation`]) → [`Evaluation`], a pure
//! function so every verdict can be replayed from the log. Each rule is
//! written once; the types it produces are in `verdict.rs`.

use std::time::Duration;

use super::stage::{Stage, Triggers};
use super::verdict::{
    Baseline, BaselineSource, Bound, Check, Complaints, Criterion, Evaluation, Health, Latency,
    Memory, Missing, Trigger, TriggerKind, Verdict,
};
use crate::metrics::{ExecutionType, SiteSnapshot};

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
    Ok(Latency {
        async_p50_ms,
        async_p95_ms,
        baseline,
        source,
        p50_ratio: async_p50_ms / baseline.p50_ms,
        p95_ratio: async_p95_ms / baseline.p95_ms,
    })
}

/// One threshold rule: when `measured` is known and not within `bound` of
/// `threshold`, it fires a trigger of `kind`.
struct Rule {
    kind: TriggerKind,
    measured: Option<f64>,
    bound: Bound,
    threshold: f64,
    /// Enrolled calls in the window it is measured on.
    calls: u64,
    window: Duration,
}

impl Rule {
    /// A ceiling on a value measured over the whole stage window.
    fn stage_ceiling(
        kind: TriggerKind,
        measured: Option<f64>,
        threshold: f64,
        health: &Health,
        obs: &Observation<'_>,
    ) -> Self {
        Rule {
            kind,
            measured,
            bound: Bound::AtMost,
            threshold,
            calls: health.enrolled,
            window: obs.elapsed,
        }
    }

    fn fired(self) -> Option<Trigger> {
        let measured = self.measured?;
        (!self.bound.holds(measured, self.threshold)).then_some(Trigger {
            kind: self.kind,
            criterion: None,
            measured,
            threshold: self.threshold,
            calls: self.calls,
            window: self.window,
        })
    }
}

fn fired(rules: impl IntoIterator<Item = Rule>) -> Vec<Trigger> {
    rules.into_iter().filter_map(Rule::fired).collect()
}

/// The immediate triggers: rates over the recent window (with at least
/// `min_calls` enrolled calls in it), critical errors and memory over the
/// stage.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn rollback_rules(
    triggers: &Triggers,
    obs: &Observation<'_>,
    health: &Health,
    recent: &Health,
) -> [Rule; 4] {
    let enough = recent.enrolled >= triggers.min_calls;
    let recent_rule = |kind, measured: Option<f64>, bound, threshold| Rule {
        kind,
        measured: measured.filter(|_| enough),
        bound,
        threshold,
        calls: recent.enrolled,
        window: obs.recent_span,
    };
    let stage_rule =
        |kind, measured, threshold| Rule::stage_ceiling(kind, measured, threshold, health, obs);
    let growth = obs
        .memory
        .filter(|m| m.start_bytes > 0)
        .map(|m| m.now_bytes as f64 / m.start_bytes as f64 - 1.0);
    [
        recent_rule(
            TriggerKind::SuccessRate,
            recent.success_rate,
            Bound::AtLeast,
            triggers.rollback_success_below,
        ),
        recent_rule(
            TriggerKind::ErrorRate,
            recent.error_rate,
            Bound::AtMost,
            triggers.rollback_error_above,
        ),
        // No minimum: one panic in the async path is enough.
        stage_rule(
            TriggerKind::CriticalError,
            Some(health.critical as f64),
            0.0,
        ),
        stage_rule(TriggerKind::Memory, growth, triggers.rollback_memory_growth),
    ]
}

/// The gradual triggers: a sustained low success rate, latency against the
/// baseline, a rising complaint rate.
fn review_rules(
    triggers: &Triggers,
    obs: &Observation<'_>,
    health: &Health,
    recent: &Health,
    latency: Option<&Latency>,
) -> [Rule; 3] {
    let stage_rule =
        |kind, measured, threshold| Rule::stage_ceiling(kind, measured, threshold, health, obs);
    let sustained = obs.success_band_for >= triggers.review_sustained;
    let complaints = obs.complaints.filter(|c| c.current > c.reference).map(|c| {
        (
            c.current,
            c.reference * (1.0 + triggers.review_complaint_growth),
        )
    });
    [
        Rule {
            kind: TriggerKind::SustainedLowSuccess,
            measured: sustained.then(|| recent.success_rate.unwrap_or(0.0)),
            bound: Bound::AtLeast,
            threshold: triggers.review_success_below,
            calls: recent.enrolled,
            window: obs.success_band_for,
        },
        stage_rule(
            TriggerKind::Latency,
            latency.map(|l| l.p50_ratio.max(l.p95_ratio)),
            triggers.review_latency_ratio,
        ),
        stage_rule(
            TriggerKind::Complaints,
            complaints.map(|(current, _)| current),
            complaints.map_or(0.0, |(_, limit)| limit),
        ),
    ]
}

/// The stage's criteria, measured.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn checks(
    stage: &Stage,
    obs: &Observation<'_>,
    health: &Health,
    latency: Option<&Latency>,
) -> Vec<Check> {
    [
        (
            Criterion::SuccessRate,
            health.success_rate,
            stage.min_success_rate,
        ),
        (
            Criterion::ErrorRate,
            health.error_rate,
            stage.max_error_rate,
        ),
        (
            Criterion::LatencyP50,
            latency.map(|l| l.p50_ratio),
            stage.max_latency_ratio,
        ),
        (
            Criterion::LatencyP95,
            latency.map(|l| l.p95_ratio),
            stage.max_latency_ratio,
        ),
        (
            Criterion::Duration,
            Some(obs.elapsed.as_secs_f64()),
            stage.min_duration.as_secs_f64(),
        ),
        (
            Criterion::Samples,
            Some(health.enrolled as f64),
            stage.min_samples as f64,
        ),
    ]
    .into_iter()
    .map(|(criterion, measured, threshold)| Check::new(criterion, measured, threshold))
    .collect()
}

/// What the stage still lacks before it can pass.
fn missing(
    stage: &Stage,
    obs: &Observation<'_>,
    health: &Health,
    latency: Option<&Missing>,
) -> Vec<Missing> {
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
    missing.extend(latency.cloned());
    missing
}

/// Decides a stage: a pure function of the stage, the triggers and what was
/// observed, so every verdict can be replayed from the log.
///
/// - **Rollback** (checked first, in every state): in the recent window,
///   with at least `min_calls` enrolled calls, success below 95 % or
///   errors above 5 %; any critical error in the stage (no minimum);
///   resident memory more than 20 % above the stage's start.
/// - **Review**: success in the 95–97 % band for 30 minutes; async p50 or
///   p95 above 1.2 × the baseline; a rising complaint rate; or the stage
///   has its time and samples but misses a criterion.
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
/// };
/// let evaluation = evaluate(&DEFAULT_STAGES[0], &Triggers::DEFAULT, &observation);
/// assert_eq!(evaluation.verdict.name(), "hold"); // 10 calls, 1 hour: too little of both
/// ```
#[must_use]
pub fn evaluate(stage: &Stage, triggers: &Triggers, obs: &Observation<'_>) -> Evaluation {
    let health = Health::of(obs.stage_window);
    let recent = Health::of(obs.recent_window);
    let latency = latency(stage, triggers, obs);
    let (latency, latency_short) = match latency {
        Ok(latency) => (Some(latency), None),
        Err(short) => (None, Some(short)),
    };
    let rollback = fired(rollback_rules(triggers, obs, &health, &recent));
    let mut review = fired(review_rules(
        triggers,
        obs,
        &health,
        &recent,
        latency.as_ref(),
    ));
    let checks = checks(stage, obs, &health, latency.as_ref());
    let missing = missing(stage, obs, &health, latency_short.as_ref());
    // A criterion missed once the stage has had its time and samples is a
    // human decision: the stage cannot pass, and it is not a breach.
    if missing.is_empty() {
        review.extend(
            checks
                .iter()
                .filter_map(|check| check.not_met(health.enrolled, obs.elapsed)),
        );
    }
    // Worst wins.
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
        thresholds: triggers.clone(),
    }
}
