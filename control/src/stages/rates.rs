//! The rate triggers' sequential tests as the controller runs them: one
//! [`RateTest`] per trigger, fed the calls that arrived since the previous
//! look, started over with the stage.
//!
//! Like with like: the old path's failures in the same look are the
//! baseline. The looks in which the sync path is healthy (fewer than two,
//! or no more than the trigger's limit, of its calls failed) or absent (no sync call) feed a test
//! against the absolute floor; the looks in which it fails too feed a
//! second test, against the floor plus the sync path's failure rate (its
//! upper confidence bound, so a shared outage is not blamed on the new
//! path). Two tests, not one with a moving null: a look with a high null
//! is strong evidence *against* a breach, and would bury the first test's
//! evidence of a moderate one; apart, each keeps its power on its looks
//! (and its own `α`, so at most `2α` together). The sync calls are
//! the look's own, or, when the look has fewer than [`SYNC_SAMPLE`] (a
//! cohort near 100 %) and those few do not already fail, those of the
//! recent window. Beside the decisive tests, the same tests against the absolute
//! floors alone say when a breach is the shared backend's: the verdict is
//! then `hold`, not a rollback.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::health::{Counts, Health};
use super::judge::{rate_interval, Confidence};
use super::sequential::{allowance_level, Evidence, RateTest};
use super::stage::Triggers;

/// The smallest bad-call limit a test takes: a success floor of 100 % (or an
/// error ceiling of 0 %) means "any bad call is too many", which this
/// approximates without dividing by zero.
const TIGHTEST_LIMIT: f64 = 1e-6;

/// The evidence of the rate tests at one look.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateEvidence {
    /// Async failures (fallbacks included) against `1 - rollback_success_below`,
    /// over the looks in which the sync path was healthy or absent.
    pub success: Evidence,
    /// User-visible errors against `rollback_error_above`, likewise.
    pub errors: Evidence,
    /// Async failures against `1 - review_success_below` (the review band),
    /// likewise.
    pub band: Evidence,
    /// The success and error tests over the looks in which the sync path
    /// failed too: the async path's excess over its failure rate (absent in
    /// older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excess: Option<AbsoluteEvidence>,
    /// The success and error tests against the absolute floors alone, with
    /// no allowance for the sync path's failures (absent in older logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute: Option<AbsoluteEvidence>,
    /// The sync path over the recent window, and whether it failed past the
    /// success floor in a look of that window.
    #[serde(default)]
    pub sync: SyncPath,
}

/// A success and an error test side by side: the absolute-floor twins over
/// every look, or the excess tests over the sync path's failing looks.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AbsoluteEvidence {
    /// Async failures against `1 - rollback_success_below`.
    pub success: Evidence,
    /// User-visible errors against `rollback_error_above`.
    pub errors: Evidence,
}

/// The sync path as the rate triggers saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncPath {
    /// Finished sync calls in the recent window.
    pub calls: u64,
    /// Failed ones among them.
    pub failures: u64,
    /// Whether the sync path's failure rate was shown above the success
    /// floor's limit in a look of the recent window: it fails too.
    pub failing: bool,
}

impl Default for RateEvidence {
    /// No calls judged: no evidence, at the default thresholds.
    fn default() -> Self {
        RateEvidence::one_look(&Health::default(), &Triggers::DEFAULT)
    }
}

/// Sync calls a look needs to be its own baseline; fewer, and the recent
/// window's are.
pub(crate) const SYNC_SAMPLE: u64 = 5;

/// Failed sync calls it takes, in one window, to say the sync path fails
/// too: one failure among a handful of calls is the old path's usual luck.
pub(crate) const SYNC_FAILURES: u64 = 2;

/// The allowance for a trigger whose bad-call limit is `limit`, given the
/// sync path's `failures` of `calls` in the same window: none while it is
/// healthy (fewer than [`SYNC_FAILURES`] failed, or at most `limit` of its
/// calls) or absent, else its failure rate's upper confidence bound.
pub(crate) fn allowance(failures: u64, calls: u64, limit: f64, confidence: Confidence) -> f64 {
    let failing = failures >= SYNC_FAILURES
        && super::health::rate(failures, calls).is_some_and(|r| r > limit);
    match rate_interval(failures, calls, confidence) {
        Some(interval) if failing => interval.high,
        _ => 0.0,
    }
}

impl RateEvidence {
    /// The evidence of the calls in `window` judged once
    /// ([`Evidence::one_look`]): what can be said of a finished window
    /// without its history. The sync calls of the same window are the
    /// baseline, as for the sequential tests.
    #[must_use]
    pub fn one_look(window: &Health, triggers: &Triggers) -> Self {
        let calls = window.enrolled;
        let async_failures = calls.saturating_sub(window.async_successes);
        let confidence = triggers.confidence;
        let sync = |limit| allowance(window.sync_failures, window.sync_calls, limit, confidence);
        let look = |bad, calls, limit: f64, allowed: f64| {
            let null = (limit + allowed).min(1.0);
            let mut evidence = Evidence::one_look(bad, calls, null, confidence);
            evidence.limit = limit;
            evidence.allowance = allowed;
            evidence.bound = evidence.bound.map(|b| b - allowed);
            evidence
        };
        let success_limit = 1.0 - triggers.rollback_success_below;
        let band_limit = 1.0 - triggers.review_success_below;
        let error_limit = triggers.rollback_error_above;
        // The one look goes to the healthy-sync tests or to the excess ones.
        let failing = sync(success_limit) > 0.0;
        let (healthy, sick) = if failing { (0, calls) } else { (calls, 0) };
        let part = |n: u64| {
            if n == 0 {
                (0, 0)
            } else {
                (async_failures, window.user_errors)
            }
        };
        let ((h_failures, h_errors), (f_failures, f_errors)) = (part(healthy), part(sick));
        RateEvidence {
            success: look(h_failures, healthy, success_limit, 0.0),
            errors: look(h_errors, healthy, error_limit, 0.0),
            band: look(h_failures, healthy, band_limit, 0.0),
            excess: Some(AbsoluteEvidence {
                success: look(f_failures, sick, success_limit, sync(success_limit)),
                errors: look(f_errors, sick, error_limit, sync(error_limit)),
            }),
            absolute: Some(AbsoluteEvidence {
                success: look(async_failures, calls, success_limit, 0.0),
                errors: look(window.user_errors, calls, error_limit, 0.0),
            }),
            sync: SyncPath {
                calls: window.sync_calls,
                failures: window.sync_failures,
                failing: sync(success_limit) > 0.0,
            },
        }
    }

    /// The absolute floors are breached (on at least `min_calls` calls)
    /// but not in excess of the sync path, which fails too: the shared
    /// backend's failure, not the new path's.
    pub(crate) fn shared_failure(&self, min_calls: u64) -> bool {
        let decisive = |e: &Evidence| e.fired() && e.calls >= min_calls;
        let either = |pair: Option<AbsoluteEvidence>| {
            pair.is_some_and(|a| decisive(&a.success) || decisive(&a.errors))
        };
        let breached = decisive(&self.success) || decisive(&self.errors) || either(self.excess);
        self.sync.failing && either(self.absolute) && !breached
    }
}

/// Which looks a test takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Looks {
    /// Those in which the sync path is healthy or absent, against the floor.
    SyncHealthy,
    /// Those in which the sync path fails too, against the floor plus its
    /// failure rate.
    SyncFailing,
    /// Every look, against the floor.
    All,
}

/// One test with its limit, fed per look.
#[derive(Clone, Debug)]
struct Monitor {
    test: RateTest,
    limit: f64,
    looks: Looks,
}

impl Monitor {
    fn new(limit: f64, confidence: Confidence, looks: Looks) -> Self {
        let limit = limit.clamp(TIGHTEST_LIMIT, 1.0 - TIGHTEST_LIMIT);
        let test = match RateTest::new(limit, confidence) {
            Ok(test) => test,
            // Only a NaN threshold gets here: it can be exceeded by nothing.
            Err(_) => RateTest::new(1.0 - TIGHTEST_LIMIT, confidence)
                .unwrap_or_else(|_| unreachable!("a limit inside (0, 1)")),
        };
        Monitor { test, limit, looks }
    }

    fn look(
        &mut self,
        bad: u64,
        calls: u64,
        sync: SyncSample,
        at: Duration,
        confidence: Confidence,
    ) {
        let allowed = sync.allowance(self.limit, confidence);
        let level = match (self.looks, allowed > 0.0) {
            (Looks::All, _) | (Looks::SyncHealthy, false) => 0,
            (Looks::SyncFailing, true) => allowance_level(allowed),
            // Not this test's look: it sees no calls (its clock moves on).
            (Looks::SyncHealthy, true) | (Looks::SyncFailing, false) => {
                self.test.look(0, 0, 0, at);
                return;
            }
        };
        self.test.look(bad, calls, level, at);
    }
}

/// The sync path's `(failures, calls)` in one look and in the recent
/// window (the look's included).
#[derive(Clone, Copy, Debug)]
struct SyncSample {
    look: (u64, u64),
    recent: (u64, u64),
}

impl SyncSample {
    /// The allowance at `limit`: of the look's own sync calls when there
    /// are enough of them, or when they already fail past the limit (a
    /// shared outage's first look), else of the recent window's.
    fn allowance(self, limit: f64, confidence: Confidence) -> f64 {
        let own = allowance(self.look.0, self.look.1, limit, confidence);
        if self.look.1 >= SYNC_SAMPLE || own > 0.0 {
            own
        } else {
            allowance(self.recent.0, self.recent.1, limit, confidence)
        }
    }
}

/// The controller's tests over one stage.
#[derive(Clone, Debug)]
pub(crate) struct RateMonitors {
    confidence: Confidence,
    success: Monitor,
    errors: Monitor,
    band: Monitor,
    success_excess: Monitor,
    errors_excess: Monitor,
    success_absolute: Monitor,
    errors_absolute: Monitor,
    /// The stage window's counts at the previous look.
    seen: Counts,
}

impl RateMonitors {
    /// Fresh tests with the thresholds and confidence of `triggers`.
    pub(crate) fn new(triggers: &Triggers) -> Self {
        let confidence = triggers.confidence;
        let success = 1.0 - triggers.rollback_success_below;
        let errors = triggers.rollback_error_above;
        RateMonitors {
            confidence,
            success: Monitor::new(success, confidence, Looks::SyncHealthy),
            errors: Monitor::new(errors, confidence, Looks::SyncHealthy),
            band: Monitor::new(
                1.0 - triggers.review_success_below,
                confidence,
                Looks::SyncHealthy,
            ),
            success_excess: Monitor::new(success, confidence, Looks::SyncFailing),
            errors_excess: Monitor::new(errors, confidence, Looks::SyncFailing),
            success_absolute: Monitor::new(success, confidence, Looks::All),
            errors_absolute: Monitor::new(errors, confidence, Looks::All),
            seen: Counts::default(),
        }
    }

    /// Takes the stage window's counts at `at` (time since the stage
    /// started); the calls since the previous look are one look's data,
    /// `recent` the recent window's sync `(failures, calls)` (this look's
    /// included). Returns whether the sync path failed past the success
    /// floor in this look. Counts that shrank (new counters) start the
    /// differences over without feeding anything.
    pub(crate) fn observe(
        &mut self,
        stage_window: &Counts,
        at: Duration,
        recent: (u64, u64),
    ) -> bool {
        let now = *stage_window;
        let before = std::mem::replace(&mut self.seen, now);
        if now.enrolled < before.enrolled
            || now.async_successes < before.async_successes
            || now.user_errors < before.user_errors
            || now.sync_calls < before.sync_calls
        {
            return false;
        }
        let look = now.since(&before);
        let confidence = self.confidence;
        let sync = SyncSample {
            look: (look.sync_failures, look.sync_calls),
            recent,
        };
        let failing = sync.allowance(self.success.limit, confidence) > 0.0;
        if look.enrolled == 0 {
            return failing;
        }
        let (calls, async_failures) = (look.enrolled, look.async_failures());
        for monitor in [
            &mut self.success,
            &mut self.band,
            &mut self.success_excess,
            &mut self.success_absolute,
        ] {
            monitor.look(async_failures, calls, sync, at, confidence);
        }
        for monitor in [
            &mut self.errors,
            &mut self.errors_excess,
            &mut self.errors_absolute,
        ] {
            monitor.look(look.user_errors, calls, sync, at, confidence);
        }
        failing
    }

    /// The evidence now, with the sync path of the recent window.
    pub(crate) fn evidence(&self, sync: SyncPath) -> RateEvidence {
        RateEvidence {
            success: self.success.test.evidence(),
            errors: self.errors.test.evidence(),
            band: self.band.test.evidence(),
            excess: Some(AbsoluteEvidence {
                success: self.success_excess.test.evidence(),
                errors: self.errors_excess.test.evidence(),
            }),
            absolute: Some(AbsoluteEvidence {
                success: self.success_absolute.test.evidence(),
                errors: self.errors_absolute.test.evidence(),
            }),
            sync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(enrolled: u64, async_successes: u64, user_errors: u64) -> Counts {
        Counts {
            enrolled,
            async_successes,
            user_errors,
            ..Counts::default()
        }
    }

    fn with_sync(mut counts: Counts, calls: u64, failures: u64) -> Counts {
        counts.sync_calls = calls;
        counts.sync_failures = failures;
        counts
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn feeds_the_differences_between_looks() {
        let mut monitors = RateMonitors::new(&Triggers::DEFAULT);
        monitors.observe(&counts(40, 37, 0), MINUTE, (0, 0));
        monitors.observe(&counts(40, 37, 0), 2 * MINUTE, (0, 0)); // no new calls: no new look
        let evidence = monitors.evidence(SyncPath::default());
        assert_eq!((evidence.success.calls, evidence.success.bad), (40, 3));
        assert!(!evidence.success.fired());
        monitors.observe(&counts(1040, 837, 0), 3 * MINUTE, (0, 0));
        let evidence = monitors.evidence(SyncPath::default());
        assert_eq!((evidence.success.calls, evidence.success.bad), (1040, 203));
        assert!(evidence.success.fired() && evidence.band.fired());
        assert!(!evidence.errors.fired(), "the fallback saved every call");
    }

    #[test]
    fn one_look_agrees_with_the_sequential_test_on_clear_cases() {
        for (enrolled, ok, errors, fired) in [(40, 37, 0, false), (1000, 800, 0, true)] {
            let window = counts(enrolled, ok, errors);
            let once = RateEvidence::one_look(&window.health(), &Triggers::DEFAULT);
            let mut monitors = RateMonitors::new(&Triggers::DEFAULT);
            monitors.observe(&window, MINUTE, (0, 0));
            let ticked = monitors.evidence(SyncPath::default());
            assert_eq!(once.success.fired(), fired);
            assert_eq!(ticked.success.fired(), fired);
            assert!(!once.errors.fired() && !ticked.errors.fired());
        }
    }

    #[test]
    fn degenerate_thresholds_do_not_panic() {
        let triggers = Triggers {
            rollback_success_below: 1.0,
            rollback_error_above: f64::NAN,
            review_success_below: 0.0,
            ..Triggers::DEFAULT
        };
        let mut monitors = RateMonitors::new(&triggers);
        monitors.observe(&counts(100, 90, 1), MINUTE, (0, 0));
        let evidence = monitors.evidence(SyncPath::default());
        assert!(evidence.success.fired(), "a floor of 100 %: {evidence:?}");
        assert!(
            !evidence.errors.fired(),
            "a NaN ceiling is exceeded by nothing"
        );
    }

    #[test]
    fn a_shared_outage_breaches_the_absolute_floor_only() {
        let mut monitors = RateMonitors::new(&Triggers::DEFAULT);
        // Healthy, then every call of both paths fails for three looks.
        let mut total = with_sync(counts(100, 100, 0), 100, 0);
        monitors.observe(&total, MINUTE, (0, 100));
        for look in 2..5 {
            total.enrolled += 50;
            total.user_errors += 50;
            total.sync_calls += 50;
            total.sync_failures += 50;
            assert!(
                monitors.observe(&total, MINUTE * look, (50, 50)),
                "the sync path fails too"
            );
        }
        let evidence = monitors.evidence(SyncPath {
            failing: true,
            ..SyncPath::default()
        });
        let absolute = evidence.absolute.unwrap();
        assert!(absolute.success.fired() && absolute.errors.fired());
        let excess = evidence.excess.unwrap();
        assert!(
            !excess.success.fired() && !excess.errors.fired(),
            "{evidence:#?}"
        );
        assert!(
            !evidence.success.fired() && !evidence.errors.fired(),
            "{evidence:#?}"
        );
        assert!(evidence.shared_failure(20));
        // The new path failing alone, the same calls: a breach.
        total.enrolled += 200;
        total.user_errors += 200;
        total.sync_calls += 200;
        monitors.observe(&total, MINUTE * 6, (0, 200));
        let evidence = monitors.evidence(SyncPath::default());
        assert!(evidence.success.fired() && evidence.errors.fired());
        assert!(!evidence.shared_failure(20));
    }

    #[test]
    fn the_new_path_failing_well_past_the_old_still_fires_in_a_shared_outage() {
        let mut monitors = RateMonitors::new(&Triggers::DEFAULT);
        let mut total = Counts::default();
        for look in 1..10 {
            // The sync path fails 30 % of 1000 calls, the async path 90 %.
            total.enrolled += 1000;
            total.async_successes += 100;
            total.user_errors += 900;
            total.sync_calls += 1000;
            total.sync_failures += 300;
            assert!(monitors.observe(&total, MINUTE * look, (300, 1000)));
        }
        let evidence = monitors
            .evidence(SyncPath::default())
            .excess
            .unwrap()
            .success;
        assert!(evidence.fired(), "{evidence:?}");
        assert!(
            evidence.allowance > 0.3 && evidence.allowance < 0.4,
            "{evidence:?}"
        );
        let bound = evidence.bound.unwrap();
        assert!(
            bound >= 0.05 && bound < 0.9 - evidence.allowance,
            "{evidence:?}"
        );
    }
}
