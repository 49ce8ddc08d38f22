//! The rules: (stage, triggers, [`Observation`]) → [`Evaluation`], a pure
//! function so every verdict can be replayed from the log. Each rule is
//! written once; the types it produces are in `verdict.rs`.

use std::time::Duration;

use super::health::Health;
use super::judge::{rate_interval, Interval};
use super::latency::{compare_frozen, compare_window, Baseline};
use super::rates::RateEvidence;
use super::sequential::Evidence;
use super::stage::{Stage, Triggers};
use super::verdict::{
    BaselineSource, Bound, Check, Complaints, Criterion, Evaluation, Latency, Memory, Missing,
    Trigger, TriggerKind, Verdict,
};
use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot};

/// Everything an evaluation looks at; the controller gathers it, tests
/// build it by hand.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    /// Calls since the stage started: the stage criteria.
    pub stage_window: &'a SiteSnapshot,
    /// Health over the last few minutes (the recent window): the review
    /// band and the rate triggers' context.
    pub recent: Health,
    /// How long the recent window spans.
    pub recent_span: Duration,
    /// Time since the stage started.
    pub elapsed: Duration,
    /// The sync latency frozen at the end of the previous stage, if any.
    pub baseline: Option<&'a Baseline>,
    /// Resident memory, when measured.
    pub memory: Option<Memory>,
    /// How long the recent success rate has stayed in the review band
    /// (below `review_success_below`, not below `rollback_success_below`).
    pub success_band_for: Duration,
    /// The application's complaint rate, when it reports one.
    pub complaints: Option<Complaints>,
    /// The rate triggers' sequential tests as the controller (or a replay
    /// of its log) ran them, one look per tick; `None` judges the stage
    /// window once ([`RateEvidence::one_look`]).
    pub rates: Option<RateEvidence>,
}

/// The async latency against the baseline, at equal size (`latency.rs`).
fn latency(stage: &Stage, triggers: &Triggers, obs: &Observation<'_>) -> Result<Latency, Missing> {
    let window = obs.stage_window;
    let direct = window.path(ExecutionType::Async);
    let need = triggers.min_calls;
    let confidence = triggers.confidence;
    let same = Baseline::of(window).filter(|b| b.calls >= need);
    // At 100 % the window has no concurrent sync traffic worth comparing.
    let (baseline, source, (matched, async_calls, baseline_calls)) = match (same, obs.baseline) {
        (Some(same), _) if stage.rollout < 100.0 => {
            let compared = compare_window(window, confidence);
            (same, BaselineSource::SameWindow, compared)
        }
        (_, Some(frozen)) => {
            let compared = compare_frozen(window, frozen, confidence);
            (frozen.clone(), BaselineSource::Frozen, compared)
        }
        (same, None) => {
            return Err(Missing::LatencyData {
                async_calls: direct.latency.len(),
                baseline_calls: same.map_or(0, |b| b.calls),
                need,
            })
        }
    };
    let missing = Missing::LatencyData {
        async_calls,
        baseline_calls,
        need,
    };
    let Some(matched) = matched.filter(|_| async_calls >= need && baseline_calls >= need) else {
        return Err(missing);
    };
    let q = |q: f64| direct.latency.quantile(q).map_or(0.0, |us| us / 1000.0);
    Ok(Latency {
        async_p50_ms: q(0.50),
        async_p95_ms: q(0.95),
        baseline,
        source,
        p50_ratio: matched.ratios.p50.0,
        p95_ratio: matched.ratios.p95.0,
        p50_interval: matched.ratios.p50.1,
        p95_interval: matched.ratios.p95.1,
        size_groups: matched.groups,
        compared_calls: matched.async_calls,
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
        elapsed: Duration,
    ) -> Self {
        Rule {
            kind,
            measured,
            bound: Bound::AtMost,
            threshold,
            calls: health.enrolled,
            window: elapsed,
        }
    }

    fn fired(self) -> Option<Trigger> {
        let measured = self.measured?;
        (!self.bound.holds(measured, self.threshold))
            .then(|| Trigger::new(self.kind, measured, self.threshold, self.calls, self.window))
    }
}

fn fired(rules: impl IntoIterator<Item = Rule>) -> Vec<Trigger> {
    rules.into_iter().filter_map(Rule::fired).collect()
}

/// A rate trigger fired by `evidence`, showing what decided it: the rate of
/// the calls the test fired on, the threshold it held them to (the floor
/// moved by the sync path's failure rate while that path failed too), and
/// the test's own one-sided confidence bound, which lies past it.
fn rate_trigger(kind: TriggerKind, evidence: Evidence, floor: f64, elapsed: Duration) -> Trigger {
    let bad = evidence.window_rate().unwrap_or(f64::NAN);
    let allowed = evidence.allowance;
    let excess = evidence.bound.unwrap_or(evidence.limit);
    // Success triggers show the good rate, error triggers the bad one.
    let (measured, threshold, interval) = if kind == TriggerKind::SuccessRate {
        let high = (1.0 - allowed - excess).clamp(0.0, 1.0);
        (1.0 - bad, floor - allowed, Interval { low: 0.0, high })
    } else {
        let low = (allowed + excess).clamp(0.0, 1.0);
        (bad, floor + allowed, Interval { low, high: 1.0 })
    };
    let span = if evidence.window_span.is_zero() {
        elapsed
    } else {
        evidence.window_span
    };
    let mut trigger = Trigger::new(kind, measured, threshold, evidence.window_calls, span)
        .with_interval(Some(interval));
    trigger.evidence = Some(evidence);
    trigger
}

/// The rate rollback triggers: the sequential tests' evidence that the true
/// success rate is below `rollback_success_below` or the true error rate
/// above `rollback_error_above` (in excess of the sync path's while it
/// fails too), from at least `min_calls` enrolled calls.
pub(crate) fn rate_triggers(
    triggers: &Triggers,
    elapsed: Duration,
    rates: &RateEvidence,
) -> Vec<Trigger> {
    // Evidence from fewer calls than `min_calls` in the stage is left for
    // more data, as a floor under the statistics (4 failures in 4 calls
    // would do for them).
    let enough = |evidence: &Evidence| evidence.fired() && evidence.calls >= triggers.min_calls;
    // The looks with a healthy (or no) sync path, then those where it
    // failed too: the first that shows a breach.
    let first = |healthy: Evidence, excess: Option<Evidence>| {
        [Some(healthy), excess]
            .into_iter()
            .flatten()
            .find(|e| enough(e))
    };
    let excess = rates.excess;
    let success = first(rates.success, excess.map(|e| e.success)).map(|evidence| {
        rate_trigger(
            TriggerKind::SuccessRate,
            evidence,
            triggers.rollback_success_below,
            elapsed,
        )
    });
    let errors = first(rates.errors, excess.map(|e| e.errors)).map(|evidence| {
        rate_trigger(
            TriggerKind::ErrorRate,
            evidence,
            triggers.rollback_error_above,
            elapsed,
        )
    });
    success.into_iter().chain(errors).collect()
}

/// Why a breach of the floors is held, not rolled back: the sync path
/// fails as much in the same looks.
fn shared_failure(triggers: &Triggers, rates: &RateEvidence) -> Option<Missing> {
    if !rates.shared_failure(triggers.min_calls) {
        return None;
    }
    let absolute = rates.absolute?;
    Some(Missing::SyncFailsToo {
        async_failures: absolute.success.window_bad,
        async_calls: absolute.success.window_calls,
        sync_failures: rates.sync.failures,
        sync_calls: rates.sync.calls,
    })
}

/// The immediate threshold triggers over the stage: critical errors, and
/// memory grown past `rollback_memory_growth` (and at least
/// `rollback_memory_floor` bytes) over its baseline taken after warm-up.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn rollback_rules(
    triggers: &Triggers,
    health: &Health,
    elapsed: Duration,
    memory: Option<Memory>,
) -> [Rule; 2] {
    let stage_rule =
        |kind, measured, threshold| Rule::stage_ceiling(kind, measured, threshold, health, elapsed);
    let growth = memory
        .filter(|m| m.start_bytes > 0)
        .filter(|m| m.now_bytes.saturating_sub(m.start_bytes) >= triggers.rollback_memory_floor)
        .map(|m| m.now_bytes as f64 / m.start_bytes as f64 - 1.0);
    [
        // No minimum: one panic in the async path is enough.
        stage_rule(
            TriggerKind::CriticalError,
            Some(health.critical as f64),
            0.0,
        ),
        stage_rule(TriggerKind::Memory, growth, triggers.rollback_memory_growth),
    ]
}

/// The latency review: the interval of the async/baseline p50 or p95 ratio
/// wholly above the larger of `review_latency_ratio` and the stage's own
/// ratio (the one whose interval is furthest past it).
fn latency_review(
    stage: &Stage,
    triggers: &Triggers,
    obs: &Observation<'_>,
    health: &Health,
    latency: Option<&Latency>,
) -> Option<Trigger> {
    let latency = latency?;
    // The global ratio never overrules a looser one the stage set for itself.
    let limit = triggers.review_latency_ratio.max(stage.max_latency_ratio);
    // Evidence, not a point estimate: the whole interval is past the limit.
    let (ratio, interval) = [
        (latency.p50_ratio, latency.p50_interval),
        (latency.p95_ratio, latency.p95_interval),
    ]
    .into_iter()
    .filter(|(_, interval)| !Bound::AtMost.holds(interval.low, limit))
    .max_by(|a, b| a.1.low.total_cmp(&b.1.low))?;
    Some(
        Trigger::new(
            TriggerKind::Latency,
            ratio,
            limit,
            health.enrolled,
            obs.elapsed,
        )
        .with_interval(Some(interval)),
    )
}

/// The gradual threshold triggers: a sustained low success rate (the band's
/// test fired for `review_sustained`), a rising complaint rate.
fn review_rules(
    triggers: &Triggers,
    obs: &Observation<'_>,
    health: &Health,
    recent: &Health,
) -> [Rule; 2] {
    let stage_rule = |kind, measured, threshold| {
        Rule::stage_ceiling(kind, measured, threshold, health, obs.elapsed)
    };
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
            TriggerKind::Complaints,
            complaints.map(|(current, _)| current),
            complaints.map_or(0.0, |(_, limit)| limit),
        ),
    ]
}

/// The stage's criteria, measured, with the confidence intervals of the
/// rates and the latency ratios.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn checks(
    stage: &Stage,
    triggers: &Triggers,
    obs: &Observation<'_>,
    health: &Health,
    latency: Option<&Latency>,
) -> Vec<Check> {
    let confidence = triggers.confidence;
    let rate_of = |k| rate_interval(k, health.enrolled, confidence);
    [
        (
            Criterion::SuccessRate,
            health.success_rate,
            rate_of(health.async_successes),
            stage.min_success_rate,
        ),
        (
            Criterion::ErrorRate,
            health.error_rate,
            rate_of(health.user_errors),
            stage.max_error_rate,
        ),
        (
            Criterion::LatencyP50,
            latency.map(|l| l.p50_ratio),
            latency.map(|l| l.p50_interval),
            stage.max_latency_ratio,
        ),
        (
            Criterion::LatencyP95,
            latency.map(|l| l.p95_ratio),
            latency.map(|l| l.p95_interval),
            stage.max_latency_ratio,
        ),
        (
            Criterion::Duration,
            Some(obs.elapsed.as_secs_f64()),
            None,
            stage.min_duration.as_secs_f64(),
        ),
        (
            Criterion::Samples,
            Some(health.enrolled as f64),
            None,
            stage.min_samples as f64,
        ),
    ]
    .into_iter()
    .map(|(criterion, measured, interval, threshold)| {
        Check::new(criterion, measured, threshold).with_interval(interval)
    })
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

/// Every rollback trigger that fires on what a look shows: the rate
/// triggers' evidence, critical errors and memory over the stage. The one
/// rule set the controller's tick and the report's replay both apply.
pub(crate) fn rollbacks(
    triggers: &Triggers,
    health: &Health,
    elapsed: Duration,
    memory: Option<Memory>,
    rates: &RateEvidence,
) -> Vec<Trigger> {
    let mut rollback = rate_triggers(triggers, elapsed, rates);
    rollback.extend(fired(rollback_rules(triggers, health, elapsed, memory)));
    rollback
}

/// Decides a stage: a pure function of the stage, the triggers and what was
/// observed, so every verdict can be replayed from the log.
///
/// - **Rollback** (checked first, in every state): the sequential rate
///   tests ([`Observation::rates`]) show, at `triggers.confidence`, a true
///   async success rate below 95 % or a true error rate above 5 % (while
///   the sync path fails too, below 95 % *of its own success rate*); any
///   critical error in the stage (no statistics, no minimum); resident
///   memory more than 20 % and at least `rollback_memory_floor` above its
///   baseline taken after warm-up.
/// - **Review**: success in the 95–97 % band for 30 minutes (the band's
///   test fired); the interval of the async/baseline p50 or p95 ratio
///   wholly above the larger of 1.2 and the stage's own ratio; a rising
///   complaint rate; or the stage has its time and samples but misses a
///   criterion.
/// - **Hold**: time, samples or latency data still short (listed); or a
///   floor breached only as much as the sync path fails too, in the same
///   looks ("the sync path fails too (shared backend?)").
/// - **Advance**: every criterion met. Latency passes only when both the
///   p50 ratio and the p95 ratio are within the stage's ratio.
///
/// ```
/// use std::time::Duration;
/// use async_upload::metrics::{ExecutionType, SiteSnapshot, UploadRecord};
/// use async_upload::stages::{evaluate, Health, Observation, Triggers, Verdict, DEFAULT_STAGES};
///
/// let mut window = SiteSnapshot::empty("upload");
/// for _ in 0..10 {
///     window.record(&UploadRecord::new("upload", ExecutionType::Async, true, 10.0, 1));
/// }
/// let observation = Observation {
///     stage_window: &window,
///     recent: Health::of(&window),
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
pub fn evaluate(stage: &Stage, triggers: &Triggers, obs: &Observation<'_>) -> Evaluation {
    let health = Health::of(obs.stage_window);
    let recent = &obs.recent;
    let latency = latency(stage, triggers, obs);
    let (latency, latency_short) = match latency {
        Ok(latency) => (Some(latency), None),
        Err(short) => (None, Some(short)),
    };
    let rates = obs
        .rates
        .unwrap_or_else(|| RateEvidence::one_look(&health, triggers));
    let rollback = rollbacks(triggers, &health, obs.elapsed, obs.memory, &rates);
    let [sustained, complaints] = review_rules(triggers, obs, &health, recent);
    let mut review: Vec<Trigger> = sustained
        .fired()
        .into_iter()
        .chain(latency_review(
            stage,
            triggers,
            obs,
            &health,
            latency.as_ref(),
        ))
        .chain(complaints.fired())
        .collect();
    let checks = checks(stage, triggers, obs, &health, latency.as_ref());
    let mut missing = missing(stage, obs, &health, latency_short.as_ref());
    if rollback.is_empty() {
        missing.splice(0..0, shared_failure(triggers, &rates));
    }
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
        recent: recent.clone(),
        latency,
        memory: obs.memory,
        elapsed: obs.elapsed,
        rates,
        thresholds: triggers.clone(),
    }
}
