//! The controller's stage window over a site's cumulative counters: the
//! calls since the stage started (the recent window is the [`Watch`]'s,
//! on counts only).
//!
//! [`Watch`]: super::watch::Watch

use std::time::Instant;

use async_upload_runtime::metrics::SiteSnapshot;

/// The counters at the stage's start and at the last fresh reading.
#[derive(Debug)]
pub(crate) struct StageWindow {
    started: Instant,
    /// The counters when the stage started; `None` until the health source
    /// first had data (the stage window then starts at that first reading).
    start: Option<SiteSnapshot>,
    /// The counters at the last fresh reading.
    last: Option<SiteSnapshot>,
}

impl StageWindow {
    /// The window of a stage starting at `started` with counters `start`.
    pub(crate) fn new(started: Instant, start: Option<SiteSnapshot>) -> Self {
        StageWindow {
            started,
            start,
            last: None,
        }
    }

    /// When the stage started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Takes the counters read now and returns the stage window ending here.
    pub(crate) fn observe(&mut self, counters: SiteSnapshot) -> SiteSnapshot {
        let start = self.start.get_or_insert_with(|| counters.clone());
        let window = counters.since(start);
        self.last = Some(counters);
        window
    }

    /// The stage window as last seen, when the health source has no fresh
    /// data.
    pub(crate) fn stale(&self, site: &str) -> SiteSnapshot {
        match (&self.last, &self.start) {
            (Some(last), Some(start)) => last.since(start),
            _ => SiteSnapshot::empty(site),
        }
    }

    /// The stage window as of `counters`, if the stage has a start.
    pub(crate) fn until(&self, counters: &SiteSnapshot) -> Option<SiteSnapshot> {
        self.start.as_ref().map(|start| counters.since(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_upload_runtime::metrics::{ExecutionType, UploadRecord};

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
    fn the_stage_window_grows_from_its_start() {
        let mut window = StageWindow::new(Instant::now(), Some(with_calls("w", 5)));
        for m in 1..=10u64 {
            assert_eq!(count(&window.observe(with_calls("w", 5 + m * 10))), m * 10);
        }
        assert_eq!(count(&window.stale("w")), 100);
    }

    #[test]
    fn a_stage_with_no_start_begins_at_its_first_reading() {
        let mut window = StageWindow::new(Instant::now(), None);
        assert_eq!(count(&window.stale("w")), 0);
        assert_eq!(count(&window.observe(with_calls("w", 500))), 0);
        assert_eq!(count(&window.observe(with_calls("w", 520))), 20);
        assert_eq!(count(&window.stale("w")), 20);
    }
}
