//! The controller through its two seams only: an actuator and a health
//! source other than the in-process defaults drive the same state machine,
//! no fresh data never advances, and one breach seen by two deciders
//! sharing one latch writes one `rollback` event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_upload_control::log::{read_file, Event, JsonlLog};
use async_upload_control::stages::{
    Actuator, Controller, HealthSource, ManualClock, Missing, Stage, Verdict,
};
use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot, UploadRecord};

/// An actuator that remembers what it was told, with one shared latch.
#[derive(Default)]
struct Recording {
    stages: Mutex<Vec<(String, u32, f64)>>,
    latch: Mutex<Option<String>>,
    latch_calls: Mutex<u32>,
}

impl Actuator for Recording {
    fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        self.stages
            .lock()
            .unwrap()
            .push((site.to_owned(), stage, rollout));
    }
    fn roll_back(&self, _site: &str, reason: &str) -> bool {
        *self.latch_calls.lock().unwrap() += 1;
        let mut latch = self.latch.lock().unwrap();
        if latch.is_some() {
            return false;
        }
        *latch = Some(reason.to_owned());
        true
    }
    fn clear_rollback(&self, _site: &str) {
        *self.latch.lock().unwrap() = None;
    }
    fn rollback_reason(&self, _site: &str) -> Option<String> {
        self.latch.lock().unwrap().clone()
    }
}

/// Counters set by hand; `None` models a source with no fresh data.
#[derive(Default)]
struct Counters(Mutex<Option<SiteSnapshot>>);

impl HealthSource for Counters {
    fn snapshot(&self, _site: &str) -> Option<SiteSnapshot> {
        self.0.lock().unwrap().clone()
    }
}

impl Counters {
    fn add(&self, site: &str, et: ExecutionType, success: bool, n: u32) {
        let mut guard = self.0.lock().unwrap();
        let counters = guard.get_or_insert_with(|| SiteSnapshot::empty(site));
        for _ in 0..n {
            counters.record(&UploadRecord::new(site.to_owned(), et, success, 0.02, 1));
        }
    }

    fn go_dark(&self) -> Option<SiteSnapshot> {
        self.0.lock().unwrap().take()
    }
}

fn quick_stages() -> Vec<Stage> {
    vec![
        Stage::new(1, 5.0)
            .with_min_duration(Duration::from_secs(60))
            .with_min_samples(20),
        Stage::new(2, 50.0),
    ]
}

/// A controller of `site` over [`quick_stages`] on a manual clock, acting
/// through a recording actuator and reading test counters.
fn rig(site: &str) -> (Controller, Arc<Recording>, Arc<Counters>, ManualClock) {
    let actuator = Arc::new(Recording::default());
    let health = Arc::new(Counters::default());
    let clock = ManualClock::new();
    let controller = Controller::builder(site)
        .stages(quick_stages())
        .clock(clock.clone())
        .memory(|| None)
        .actuator(Arc::clone(&actuator))
        .health(Arc::clone(&health))
        .start();
    (controller, actuator, health, clock)
}

#[test]
fn the_controller_acts_only_through_its_actuator() {
    let site = "seams_actuator";
    let (mut controller, actuator, health, clock) = rig(site);
    assert_eq!(
        *actuator.stages.lock().unwrap(),
        [(site.to_owned(), 1, 5.0)]
    );
    health.add(site, ExecutionType::Async, true, 30);
    health.add(site, ExecutionType::Sync, true, 30);
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "hold");
    health.add(site, ExecutionType::Async, true, 30);
    health.add(site, ExecutionType::Sync, true, 30);
    clock.advance(Duration::from_secs(60));
    assert_eq!(controller.tick().verdict, Verdict::Advance);
    assert_eq!(controller.advance().unwrap().number, 2);
    assert_eq!(
        actuator.stages.lock().unwrap()[1],
        (site.to_owned(), 2, 50.0)
    );

    // A latch set by someone else (an operator, another replica) is obeyed.
    assert!(actuator.roll_back(site, "operator"));
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "rollback");
    assert!(controller.rollback().is_some());
    controller.clear_rollback();
    assert_eq!(actuator.rollback_reason(site), None);
}

#[test]
fn no_fresh_health_holds_and_never_advances() {
    let site = "seams_stale";
    let (mut controller, actuator, health, clock) = rig(site);
    // No data at all: hold, saying why.
    clock.advance(Duration::from_secs(120));
    let verdict = controller.tick().verdict.clone();
    assert_eq!(
        verdict,
        Verdict::Hold {
            missing: vec![Missing::FreshHealth]
        }
    );
    // The window starts at the first reading; healthy traffic that would pass ...
    health.add(site, ExecutionType::Async, true, 1);
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "hold");
    health.add(site, ExecutionType::Async, true, 60);
    health.add(site, ExecutionType::Sync, true, 60);
    clock.advance(Duration::from_secs(60));
    assert_eq!(controller.tick().verdict, Verdict::Advance);
    // ... but once the source goes dark the controller holds again.
    let last = health.go_dark().unwrap();
    clock.advance(Duration::from_secs(30));
    let evaluation = controller.tick().clone();
    assert_eq!(evaluation.verdict.name(), "hold", "{evaluation:?}");
    assert!(controller.advance().is_err());
    assert_eq!(actuator.stages.lock().unwrap().len(), 1);
    // Back with data (counters kept growing meanwhile): it decides again.
    *health.0.lock().unwrap() = Some(last);
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict, Verdict::Advance);
}

#[test]
fn one_breach_seen_by_two_deciders_writes_one_rollback_event() {
    let site = "seams_one_latch";
    let dir = std::env::temp_dir().join(format!("au-seams-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latch.jsonl");
    let _ = std::fs::remove_file(&path);
    let log = JsonlLog::open(&path).unwrap();
    let actuator = Arc::new(Recording::default());
    let health = Arc::new(Counters(Mutex::new(Some(SiteSnapshot::empty(site)))));
    let clock = ManualClock::new();
    let build = || {
        Controller::builder(site)
            .clock(clock.clone())
            .memory(|| None)
            .actuator(Arc::clone(&actuator))
            .health(Arc::clone(&health))
            .log(log.clone())
            .start()
    };
    let (mut first, mut second) = (build(), build());
    health.add(site, ExecutionType::SyncFallback, true, 50);
    clock.advance(Duration::from_secs(30));
    assert_eq!(first.tick().verdict.name(), "rollback");
    assert_eq!(second.tick().verdict.name(), "rollback");
    assert!(first.rollback().is_some() && second.rollback().is_some());
    assert!(*actuator.latch_calls.lock().unwrap() >= 1);

    assert!(log.flush());
    let written = read_file(&path).unwrap();
    assert_eq!(written.errors, []);
    let rollbacks = written
        .events
        .iter()
        .filter(|e| matches!(e, Event::Rollback(_)));
    assert_eq!(rollbacks.count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
