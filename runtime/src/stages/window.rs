//! The controller's two windows over a site's cumulative counters: the
//! stage window (since the stage started) and the recent window (about the
//! last few minutes) the rate triggers look at.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::metrics::SiteSnapshot;

/// The calls of both windows, ending at one tick.
#[derive(Debug)]
pub(crate) struct Observed {
    /// Calls since the stage started.
    pub(crate) stage: SiteSnapshot,
    /// Calls in the recent window.
    pub(crate) recent: SiteSnapshot,
    /// How long the recent window spans.
    pub(crate) recent_span: Duration,
}

/// Counters kept per stage: at its start and at recent ticks.
#[derive(Debug)]
pub(crate) struct Windows {
    span: Duration,
    started: Instant,
    /// The counters when the stage started; `None` until the health source
    /// first had data (the stage window then starts at that first reading).
    start: Option<SiteSnapshot>,
    /// Counters of recent ticks, oldest first; the oldest one at or before
    /// `now - span` is kept as the recent window's base.
    history: VecDeque<(Instant, SiteSnapshot)>,
}

impl Windows {
    /// Windows of a stage starting at `started` with counters `start`, the
    /// recent one spanning about `span`.
    pub(crate) fn new(span: Duration, started: Instant, start: Option<SiteSnapshot>) -> Self {
        Windows {
            span,
            started,
            start,
            history: VecDeque::new(),
        }
    }

    /// When the stage started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Starts the windows over: a new stage, or the same one after a rollback.
    pub(crate) fn restart(&mut self, started: Instant, start: Option<SiteSnapshot>) {
        *self = Windows::new(self.span, started, start);
    }

    /// Takes the counters read at `now` and returns both windows ending there.
    pub(crate) fn observe(&mut self, now: Instant, counters: SiteSnapshot) -> Observed {
        let start = self.start.get_or_insert_with(|| counters.clone());
        let stage = counters.since(start);
        let cutoff = now.checked_sub(self.span).unwrap_or(self.started);
        while self.history.len() > 1 && self.history[1].0 <= cutoff {
            self.history.pop_front();
        }
        let (base_at, base) = match self.history.front() {
            Some((at, base)) if *at <= cutoff => (*at, base),
            _ => (self.started, &*start),
        };
        let observed = Observed {
            stage,
            recent: counters.since(base),
            recent_span: now.saturating_duration_since(base_at),
        };
        self.history.push_back((now, counters));
        observed
    }

    /// The windows when the health source has no fresh data: the stage
    /// window as last seen, an empty recent window.
    pub(crate) fn stale(&self, site: &str) -> Observed {
        let stage = match (self.history.back(), &self.start) {
            (Some((_, last)), Some(start)) => last.since(start),
            _ => SiteSnapshot::empty(site),
        };
        Observed {
            stage,
            recent: SiteSnapshot::empty(site),
            recent_span: Duration::ZERO,
        }
    }

    /// The stage window as of `counters`, if the stage has a start.
    pub(crate) fn stage_until(&self, counters: &SiteSnapshot) -> Option<SiteSnapshot> {
        self.start.as_ref().map(|start| counters.since(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ExecutionType, UploadRecord};

    fn with_calls(site: &str, calls: u64) -> SiteSnapshot {
        let mut snapshot = SiteSnapshot::empty(site);
        for _ in 0..calls {
            snapshot.record(&UploadRecord::new(
                site.to_owned(),
                ExecutionType::Async,
                true,
                1.0,
                1,
            ));
        }
        snapshot
    }

    fn count(snapshot: &SiteSnapshot) -> u64 {
        snapshot.path(ExecutionType::Async).count
    }

    #[test]
    fn the_recent_window_slides_and_the_stage_window_grows() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut windows = Windows::new(4 * minute, t0, Some(with_calls("w", 0)));
        for m in 1..=10u32 {
            let observed = windows.observe(t0 + minute * m, with_calls("w", u64::from(m) * 10));
            assert_eq!(count(&observed.stage), u64::from(m) * 10);
            let recent_minutes = m.min(4);
            assert_eq!(count(&observed.recent), u64::from(recent_minutes) * 10);
            assert_eq!(observed.recent_span, minute * recent_minutes);
        }
    }

    #[test]
    fn a_stage_with_no_start_begins_at_its_first_reading() {
        let t0 = Instant::now();
        let mut windows = Windows::new(Duration::from_secs(240), t0, None);
        assert_eq!(count(&windows.stale("w").stage), 0);
        let observed = windows.observe(t0 + Duration::from_secs(30), with_calls("w", 500));
        assert_eq!(count(&observed.stage), 0);
        let observed = windows.observe(t0 + Duration::from_secs(60), with_calls("w", 520));
        assert_eq!(count(&observed.stage), 20);
        assert_eq!(count(&windows.stale("w").stage), 20);
        assert_eq!(count(&windows.stale("w").recent), 0);
    }
}
