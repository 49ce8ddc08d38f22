//! One stage's running judgement, look by look: the rate triggers'
//! sequential tests, the recent window, the review band's timer and the
//! memory baseline. The live [`Controller`](super::Controller) and the
//! offline report's replay both feed a [`Watch`] the same counts at the
//! same looks, so they reach the same verdicts at the same moments.
//!
//! Times are durations since the stage started: the controller's clock is
//! monotonic, a log's is wall time, and neither matters beyond that.

use std::collections::VecDeque;
use std::time::Duration;

use super::health::{Counts, Health};
use super::rates::{RateEvidence, RateMonitors, SyncPath};
use super::stage::Triggers;
use super::verdict::Memory;
use super::warmup::MemoryBaseline;

/// What one look shows, beside the stage window itself.
#[derive(Clone, Debug)]
pub(crate) struct Look {
    /// The rate tests' evidence.
    pub(crate) rates: RateEvidence,
    /// Health over the recent window.
    pub(crate) recent: Health,
    /// How long the recent window spans.
    pub(crate) recent_span: Duration,
    /// How long the review band's test has fired without the rollback one.
    pub(crate) band_for: Duration,
    /// Memory against its warm baseline, once worth judging.
    pub(crate) memory: Option<Memory>,
}

/// The state of one stage between looks.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    triggers: Triggers,
    span: Duration,
    rates: RateMonitors,
    /// The stage's counts at recent looks, oldest first; the oldest one at
    /// or before `now - span` is the recent window's base.
    history: VecDeque<(Duration, Counts)>,
    /// The last look in which the sync path failed past the success floor.
    sync_failed_at: Option<Duration>,
    band_since: Option<Duration>,
    memory: MemoryBaseline,
    last: Counts,
}

impl Watch {
    /// A stage starting now, judged by `triggers`, its recent window
    /// spanning about `span`.
    pub(crate) fn new(triggers: &Triggers, span: Duration) -> Self {
        Watch {
            triggers: triggers.clone(),
            span,
            rates: RateMonitors::new(triggers),
            history: VecDeque::new(),
            sync_failed_at: None,
            band_since: None,
            memory: MemoryBaseline::default(),
            last: Counts::default(),
        }
    }

    /// The span of the recent window.
    pub(crate) fn span(&self) -> Duration {
        self.span
    }

    /// The stage's counts at the last look.
    pub(crate) fn last(&self) -> Counts {
        self.last
    }

    /// Looks at `at`: `totals` are the stage window's counts (every call
    /// since the stage started), `resident` the process's memory if
    /// measured.
    pub(crate) fn look(&mut self, at: Duration, totals: Counts, resident: Option<u64>) -> Look {
        let (recent, recent_span) = self.recent(at, totals);
        if self
            .rates
            .observe(&totals, at, (recent.sync_failures, recent.sync_calls))
        {
            self.sync_failed_at = Some(at);
        }
        let sync = SyncPath {
            calls: recent.sync_calls,
            failures: recent.sync_failures,
            failing: self
                .sync_failed_at
                .is_some_and(|failed| at.saturating_sub(failed) <= self.span),
        };
        let rates = self.rates.evidence(sync);
        let memory = self
            .memory
            .observe(totals.enrolled, resident, self.triggers.min_calls);
        // The band trigger's own test, not a point estimate: evidence that
        // success is below the review line while the rollback test is quiet.
        let in_band = rates.band.fired() && !rates.success.fired();
        self.band_since = if in_band {
            self.band_since.or(Some(at))
        } else {
            None
        };
        self.last = totals;
        Look {
            rates,
            recent: recent.health(),
            recent_span,
            band_for: self
                .band_since
                .map_or(Duration::ZERO, |since| at.saturating_sub(since)),
            memory,
        }
    }

    /// The recent window ending at `at`, and its span.
    fn recent(&mut self, at: Duration, totals: Counts) -> (Counts, Duration) {
        let cutoff = at.saturating_sub(self.span);
        while self.history.len() > 1 && self.history[1].0 <= cutoff {
            self.history.pop_front();
        }
        let (base_at, base) = match self.history.front() {
            Some(&(when, base)) if when <= cutoff => (when, base),
            _ => (Duration::ZERO, Counts::default()),
        };
        self.history.push_back((at, totals));
        (totals.since(&base), at.saturating_sub(base_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(n: u64) -> Counts {
        Counts {
            enrolled: n,
            async_successes: n,
            ..Counts::default()
        }
    }

    #[test]
    fn the_recent_window_slides_and_the_stage_window_grows() {
        let minute = Duration::from_secs(60);
        let mut watch = Watch::new(&Triggers::DEFAULT, 4 * minute);
        for m in 1..=10u32 {
            let look = watch.look(minute * m, calls(u64::from(m) * 10), None);
            let recent_minutes = m.min(4);
            assert_eq!(look.recent.enrolled, u64::from(recent_minutes) * 10);
            assert_eq!(look.recent_span, minute * recent_minutes);
            assert_eq!(watch.last().enrolled, u64::from(m) * 10);
        }
    }

    #[test]
    fn a_sync_failure_is_remembered_for_a_recent_window() {
        let second = Duration::from_secs(1);
        let mut watch = Watch::new(&Triggers::DEFAULT, 10 * second);
        let mut total = calls(0);
        total.sync_calls = 50;
        total.sync_failures = 50;
        assert!(watch.look(second, total, None).rates.sync.failing);
        total.sync_calls += 50;
        assert!(watch.look(5 * second, total, None).rates.sync.failing);
        total.sync_calls += 50;
        assert!(!watch.look(12 * second, total, None).rates.sync.failing);
    }
}
