//! The controller's looks at one window of a log, in log time: the offline
//! report's judge is the live one.
//!
//! A window starts at its stage event (or the site's first record); the
//! controller would have looked at `start + k × tick` for `k = 1, 2, …`,
//! each look taking the calls recorded before it. [`Ticks`] makes exactly
//! those looks, through the same [`Watch`] and the same rollback rules
//! ([`rollbacks`]), and latches the first rollback as the controller does.
//! Looks with no new calls change nothing the rollback rules read, so a
//! quiet stretch of the log is skipped, all but the looks the recent
//! window still reaches.

use std::time::{Duration, SystemTime};

use super::evaluate::rollbacks;
use super::health::Counts;
use super::stage::Triggers;
use super::verdict::Trigger;
use super::watch::{Look, Watch};
use async_upload_runtime::metrics::UploadRecord;

/// A rollback the looks latched: when, and what fired.
#[derive(Clone, Debug)]
pub(crate) struct Latched {
    pub(crate) at: SystemTime,
    pub(crate) triggers: Vec<Trigger>,
}

/// One window's looks.
#[derive(Clone, Debug)]
pub(crate) struct Ticks {
    watch: Watch,
    triggers: Triggers,
    tick: Duration,
    start: SystemTime,
    /// The last look made (`k`).
    done: u64,
    /// When the next look is due: a record before it needs no look.
    next: SystemTime,
    /// Calls counted so far, and at the last look.
    counts: Counts,
    looked: Counts,
    last: Option<Look>,
    latched: Option<Latched>,
}

impl Ticks {
    /// The looks of a window starting at `start`, every `tick`, judged by
    /// `triggers` with a recent window of `recent_window`.
    pub(crate) fn new(
        triggers: &Triggers,
        tick: Duration,
        recent_window: Duration,
        start: SystemTime,
    ) -> Self {
        Ticks {
            watch: Watch::new(triggers, recent_window),
            triggers: triggers.clone(),
            tick: tick.max(Duration::from_millis(1)),
            start,
            done: 0,
            next: start + tick.max(Duration::from_millis(1)),
            counts: Counts::default(),
            looked: Counts::default(),
            last: None,
            latched: None,
        }
    }

    /// Counts `record`, after the looks due before it.
    pub(crate) fn record(&mut self, record: &UploadRecord) {
        self.until(record.ts);
        self.counts.record(record);
    }

    /// Time of look `k` since the window's start.
    fn at(&self, k: u64) -> Duration {
        self.tick
            .saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
    }

    /// Makes every look due at or before `ts`.
    pub(crate) fn until(&mut self, ts: SystemTime) {
        if ts < self.next {
            return;
        }
        let Ok(since) = ts.duration_since(self.start) else {
            return;
        };
        let due = u64::try_from(since.as_nanos() / self.tick.as_nanos()).unwrap_or(u64::MAX);
        if due <= self.done {
            return;
        }
        // The first look due takes every call since the last one; the ones
        // after it see nothing new, and only those the recent window still
        // reaches at the last one can matter.
        self.look(self.done + 1, self.at(self.done + 1));
        let reach = u64::try_from(self.watch.span().as_nanos() / self.tick.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        for k in (self.done + 1).max(due.saturating_sub(reach))..=due {
            self.look(k, self.at(k));
        }
    }

    fn look(&mut self, k: u64, at: Duration) {
        let look = self.watch.look(at, self.counts, None);
        if self.latched.is_none() {
            let health = self.counts.health();
            let fired = rollbacks(&self.triggers, &health, at, None, &look.rates);
            if !fired.is_empty() {
                self.latched = Some(Latched {
                    at: self.start + at,
                    triggers: fired,
                });
            }
        }
        self.looked = self.counts;
        self.last = Some(look);
        self.done = self.done.max(k);
        self.next = self.start + self.at(self.done + 1);
    }

    /// The window ends at `end`: the looks due, then one at `end` itself
    /// for the calls since the last tick (where the controller's next tick
    /// would see them). Returns the last look.
    pub(crate) fn finish(&mut self, end: SystemTime) -> Look {
        self.until(end);
        if self.last.is_none() || self.counts != self.looked {
            let at = end.duration_since(self.start).unwrap_or_default();
            self.look(self.done, at);
        }
        self.last
            .clone()
            .unwrap_or_else(|| unreachable!("a look was made above"))
    }

    /// The rollback latched, if any.
    pub(crate) fn latched(&self) -> Option<&Latched> {
        self.latched.as_ref()
    }

    /// The calls counted so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// The tick and recent window the looks use.
    pub(crate) fn looks(&self) -> (Duration, Duration) {
        (self.tick, self.watch.span())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_upload_runtime::metrics::ExecutionType;

    fn at(start: SystemTime, secs: f64, et: ExecutionType, success: bool) -> UploadRecord {
        let mut record = UploadRecord::new("t", et, success, 5.0, 1);
        record.ts = start + Duration::from_secs_f64(secs);
        record
    }

    #[test]
    fn a_breach_latches_at_the_first_look_after_it() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let tick = Duration::from_secs(30);
        let mut ticks = Ticks::new(&Triggers::DEFAULT, tick, Duration::from_secs(240), start);
        // An hour healthy, then every async call fails from 3600 s on.
        for i in 0..14_400 {
            let secs = f64::from(i) * 0.5 + 0.25;
            let ok = secs < 3600.0;
            ticks.record(&at(start, secs, ExecutionType::Async, ok));
        }
        let last = ticks.finish(start + Duration::from_secs(7200));
        assert!(last.rates.success.fired(), "{:#?}", last.rates.success);
        let latched = ticks.latched().unwrap();
        let when = latched.at.duration_since(start).unwrap();
        assert_eq!(when.as_secs() % 30, 0, "at a tick: {when:?}");
        assert!((3600..=3660).contains(&when.as_secs()), "{when:?}");
        assert_eq!(ticks.counts().enrolled, 14_400);
    }

    #[test]
    fn a_quiet_stretch_is_skipped_but_the_recent_window_is_right() {
        let start = SystemTime::UNIX_EPOCH;
        let mut ticks = Ticks::new(
            &Triggers::DEFAULT,
            Duration::from_secs(1),
            Duration::from_secs(10),
            start,
        );
        ticks.record(&at(start, 0.5, ExecutionType::Sync, true));
        // A day later: one look with the call, and ten looks before it.
        ticks.record(&at(start, 86_400.5, ExecutionType::Sync, true));
        assert_eq!(ticks.done, 86_400);
        let last = ticks.finish(start + Duration::from_secs_f64(86_400.9));
        assert_eq!(last.recent.sync_calls, 1);
        assert!(
            last.recent_span <= Duration::from_secs(11),
            "{:?}",
            last.recent_span
        );
    }
}
