//! The rate triggers' sequential tests as the controller runs them: one
//! [`RateTest`] per trigger, fed the calls that arrived since the previous
//! tick, started over with the stage.

use serde::{Deserialize, Serialize};

use super::health::Health;
use super::judge::{Confidence, Evidence, RateTest};
use super::stage::Triggers;

/// The smallest bad-call limit a test takes: a success floor of 100 % (or an
/// error ceiling of 0 %) means "any bad call is too many", which this
/// approximates without dividing by zero.
const TIGHTEST_LIMIT: f64 = 1e-6;

/// The evidence of the three rate tests at one look.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateEvidence {
    /// Async failures (fallbacks included) against `1 - rollback_success_below`.
    pub success: Evidence,
    /// User-visible errors against `rollback_error_above`.
    pub errors: Evidence,
    /// Async failures against `1 - review_success_below` (the review band).
    pub band: Evidence,
}

impl Default for RateEvidence {
    /// No calls judged: no evidence, at the default thresholds.
    fn default() -> Self {
        RateEvidence::one_look(&Health::default(), &Triggers::DEFAULT)
    }
}

impl RateEvidence {
    /// The evidence of the calls in `window` judged once
    /// ([`Evidence::one_look`]): what a report can say from a finished log.
    #[must_use]
    pub fn one_look(window: &Health, triggers: &Triggers) -> Self {
        let calls = window.enrolled;
        let async_failures = calls.saturating_sub(window.async_successes);
        let look = |bad, limit| Evidence::one_look(bad, calls, limit, triggers.confidence);
        RateEvidence {
            success: look(async_failures, 1.0 - triggers.rollback_success_below),
            errors: look(window.user_errors, triggers.rollback_error_above),
            band: look(async_failures, 1.0 - triggers.review_success_below),
        }
    }
}

/// The controller's three tests over one stage.
#[derive(Clone, Debug)]
pub(crate) struct RateMonitors {
    success: RateTest,
    errors: RateTest,
    band: RateTest,
    /// The stage window's counts at the previous look.
    seen: Counts,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    enrolled: u64,
    async_failures: u64,
    user_errors: u64,
}

impl Counts {
    fn of(health: &Health) -> Self {
        Counts {
            enrolled: health.enrolled,
            async_failures: health.enrolled.saturating_sub(health.async_successes),
            user_errors: health.user_errors,
        }
    }
}

fn test(limit: f64, confidence: Confidence) -> RateTest {
    let limit = limit.clamp(TIGHTEST_LIMIT, 1.0 - TIGHTEST_LIMIT);
    match RateTest::new(limit, confidence) {
        Ok(test) => test,
        // Only a NaN threshold gets here: it can be exceeded by nothing.
        Err(_) => RateTest::new(1.0 - TIGHTEST_LIMIT, confidence)
            .unwrap_or_else(|_| unreachable!("a limit inside (0, 1)")),
    }
}

impl RateMonitors {
    /// Fresh tests with the thresholds and confidence of `triggers`.
    pub(crate) fn new(triggers: &Triggers) -> Self {
        let confidence = triggers.confidence;
        RateMonitors {
            success: test(1.0 - triggers.rollback_success_below, confidence),
            errors: test(triggers.rollback_error_above, confidence),
            band: test(1.0 - triggers.review_success_below, confidence),
            seen: Counts::default(),
        }
    }

    /// Takes the stage window's health now; the calls since the previous
    /// look are one look's data. A window that shrank (new counters) starts
    /// the differences over without feeding anything.
    pub(crate) fn observe(&mut self, stage_window: &Health) {
        let now = Counts::of(stage_window);
        let before = self.seen;
        self.seen = now;
        if now.enrolled < before.enrolled
            || now.async_failures < before.async_failures
            || now.user_errors < before.user_errors
        {
            return;
        }
        let calls = now.enrolled - before.enrolled;
        if calls == 0 {
            return;
        }
        self.success
            .observe(now.async_failures - before.async_failures, calls);
        self.errors
            .observe(now.user_errors - before.user_errors, calls);
        self.band
            .observe(now.async_failures - before.async_failures, calls);
    }

    /// The evidence now.
    pub(crate) fn evidence(&self) -> RateEvidence {
        RateEvidence {
            success: self.success.evidence(),
            errors: self.errors.evidence(),
            band: self.band.evidence(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(enrolled: u64, async_successes: u64, user_errors: u64) -> Health {
        Health {
            enrolled,
            async_successes,
            user_errors,
            ..Health::default()
        }
    }

    #[test]
    fn feeds_the_differences_between_looks() {
        let mut monitors = RateMonitors::new(&Triggers::DEFAULT);
        monitors.observe(&health(40, 37, 0));
        monitors.observe(&health(40, 37, 0)); // no new calls: no new look
        let evidence = monitors.evidence();
        assert_eq!((evidence.success.calls, evidence.success.bad), (40, 3));
        assert!(!evidence.success.fired());
        monitors.observe(&health(1040, 837, 0));
        let evidence = monitors.evidence();
        assert_eq!((evidence.success.calls, evidence.success.bad), (1040, 203));
        assert!(evidence.success.fired() && evidence.band.fired());
        assert!(!evidence.errors.fired(), "the fallback saved every call");
    }

    #[test]
    fn one_look_agrees_with_the_sequential_test_on_clear_cases() {
        for (enrolled, ok, errors, fired) in [(40, 37, 0, false), (1000, 800, 0, true)] {
            let once = RateEvidence::one_look(&health(enrolled, ok, errors), &Triggers::DEFAULT);
            let mut monitors = RateMonitors::new(&Triggers::DEFAULT);
            monitors.observe(&health(enrolled, ok, errors));
            let ticked = monitors.evidence();
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
        monitors.observe(&health(100, 90, 1));
        let evidence = monitors.evidence();
        assert!(evidence.success.fired(), "a floor of 100 %: {evidence:?}");
        assert!(
            !evidence.errors.fired(),
            "a NaN ceiling is exceeded by nothing"
        );
    }
}
