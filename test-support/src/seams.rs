//! The controller's seams as the stage tests drive them: counters set by
//! hand ([`Counters`]), a latch of the test's own ([`Latch`]), and the
//! observation of a window judged once ([`once`]).

use std::sync::Mutex;
use std::time::Duration;

use async_upload_control::stages::{Actuator, Health, HealthSource, Observation};
use async_upload_runtime::metrics::SiteSnapshot;

/// Counters the controller reads: what the test recorded so far.
pub struct Counters(pub Mutex<SiteSnapshot>);

impl Counters {
    pub fn new(site: &str) -> Self {
        Counters(Mutex::new(SiteSnapshot::empty(site)))
    }
}

impl HealthSource for Counters {
    fn snapshot(&self, _site: &str) -> Option<SiteSnapshot> {
        Some(self.0.lock().unwrap().clone())
    }
}

/// A latch of the test's own, so runs share nothing (not even the
/// process's configuration).
#[derive(Default)]
pub struct Latch(Mutex<Option<String>>);

impl Actuator for Latch {
    fn enter_stage(&self, _site: &str, _stage: u32, _rollout: f64) {}

    fn roll_back(&self, _site: &str, reason: &str) -> bool {
        let mut latch = self.0.lock().unwrap();
        let first = latch.is_none();
        latch.get_or_insert_with(|| reason.to_owned());
        first
    }

    fn clear_rollback(&self, _site: &str) {
        *self.0.lock().unwrap() = None;
    }

    fn rollback_reason(&self, _site: &str) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
}

/// `window` observed once, `elapsed` into its stage: its own recent window,
/// no baseline, memory, band or complaints, the rates judged in one look.
pub fn once(window: &SiteSnapshot, elapsed: Duration) -> Observation<'_> {
    Observation {
        stage_window: window,
        recent: Health::of(window),
        recent_span: Duration::from_secs(240),
        elapsed,
        baseline: None,
        memory: None,
        success_band_for: Duration::ZERO,
        complaints: None,
        rates: None,
    }
}
