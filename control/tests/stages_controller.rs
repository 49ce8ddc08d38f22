//! The controller on simulated time: stage 1 → 2, then failures roll the
//! site back within 5 simulated minutes, enrolled keys take the sync path,
//! the rollback is latched and logged.

use async_upload_test_support::records as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_upload_control::log::{read_file, Event, JsonlLog, RollbackEvent, StageEvent};
use async_upload_control::stages::{
    drive, AdvanceError, Controller, ManualClock, TokioClock, TriggerKind, Verdict,
};
use async_upload_runtime::config::handle;
use async_upload_runtime::metrics::{self, ExecutionType, RuntimeFault, UploadRecord};
use async_upload_runtime::Site;

use support::enable_async;

static SITE: Site = Site::new("ctl_rollout");

/// Synthetic calls straight into the global aggregator (durations in µs,
/// exact below 32).
fn feed(site: &str, et: ExecutionType, success: bool, n: u32) {
    let stats = metrics::global().site(site);
    for _ in 0..n {
        let mut record = UploadRecord::new(site.to_owned(), et, success, 0.020, 1);
        if et == ExecutionType::SyncFallback {
            record.error_type = Some("io".into());
        }
        stats.record(&record);
    }
}

#[test]
fn stage_1_to_2_then_failures_roll_back_within_5_minutes() {
    enable_async();
    let site = SITE.name();
    let dir = std::env::temp_dir().join(format!("au-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rollout.jsonl");
    let _ = std::fs::remove_file(&path);
    let log = JsonlLog::open(&path).unwrap();
    let clock = ManualClock::new();
    let mut controller = Controller::builder(site)
        .clock(clock.clone())
        .memory(|| Some(100_000_000))
        .log(log.clone())
        .start();
    assert_eq!(handle().site_overrides(site).rollout, Some(1.0));
    assert_eq!(
        controller.advance(),
        Err(AdvanceError::NotPassed("none yet"))
    );

    // Stage 1: 25 simulated hours of healthy traffic, ticked hourly.
    for hour in 0..25 {
        feed(site, ExecutionType::Async, true, 10);
        feed(site, ExecutionType::Sync, true, 50);
        clock.advance(Duration::from_secs(3600));
        let verdict = controller.tick().verdict.clone();
        if hour < 23 {
            assert_eq!(verdict.name(), "hold", "hour {hour}: {verdict:?}");
        }
    }
    assert_eq!(
        controller.last_evaluation().unwrap().verdict,
        Verdict::Advance
    );
    assert_eq!(controller.advance().unwrap().number, 2);
    assert_eq!(handle().site_overrides(site).rollout, Some(10.0));
    assert!(controller.frozen_baseline().is_some());

    // A key enrolled at 10 % runs async.
    let key = (0u32..).find(|k| SITE.bucket(k) < 1000).unwrap();
    assert!(SITE.call(&key).runs_async());

    // Stage 2: an hour of healthy traffic, ticked every 30 s.
    for _ in 0..120 {
        feed(site, ExecutionType::Async, true, 10);
        feed(site, ExecutionType::Sync, true, 40);
        clock.advance(Duration::from_secs(30));
        assert_eq!(controller.tick().verdict.name(), "hold");
    }

    // Then half the async calls fail (the fallback saves them): after an
    // hour of healthy calls, the CUSUM sees it within a few ticks.
    let breach = clock.elapsed();
    let mut ticks = 0;
    loop {
        feed(site, ExecutionType::Async, true, 5);
        feed(site, ExecutionType::SyncFallback, true, 5);
        feed(site, ExecutionType::Sync, true, 40);
        clock.advance(Duration::from_secs(30));
        ticks += 1;
        if controller.tick().verdict.name() == "rollback" {
            break;
        }
        assert!(ticks < 10, "no rollback after {ticks} ticks");
    }
    let took = clock.elapsed() - breach;
    assert!(
        took <= Duration::from_secs(5 * 60),
        "rollback after {took:?}"
    );
    assert!(ticks > 1, "one tick of 10 calls is not evidence enough");

    // The kill switch is on: the enrolled key now takes the sync path.
    assert!(handle()
        .rollback_reason(site)
        .unwrap()
        .contains("success rate"));
    assert!(!SITE.call(&key).runs_async());

    // Latched: healthy traffic does not lift it, nor can it advance.
    for _ in 0..20 {
        feed(site, ExecutionType::Sync, true, 50);
        clock.advance(Duration::from_secs(30));
        assert_eq!(controller.tick().verdict.name(), "rollback");
    }
    assert_eq!(controller.advance(), Err(AdvanceError::RolledBack));
    assert!(!SITE.call(&key).runs_async());

    // The rollback event is in the file with what it was decided on.
    assert!(log.flush());
    let written = read_file(&path).unwrap();
    assert_eq!(written.errors, []);
    let rollbacks: Vec<&RollbackEvent> = written
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Rollback(rollback) => Some(rollback),
            _ => None,
        })
        .collect();
    assert_eq!(rollbacks.len(), 1);
    let event = rollbacks[0];
    assert_eq!(event.site, site);
    assert_eq!(event.trigger, TriggerKind::SuccessRate);
    assert_eq!(event.threshold, 0.95);
    assert!(event.measured < 0.95);
    assert_eq!(event.stage, 2);
    let entered: Vec<u32> = written
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stage(StageEvent::Entered(entered)) => Some(entered.stage),
            _ => None,
        })
        .collect();
    assert_eq!(entered, [1, 2]);
    let verdicts = written
        .events
        .iter()
        .filter(|e| matches!(e, Event::Stage(StageEvent::Verdict(_))))
        .count();
    assert_eq!(verdicts, 25 + 120 + ticks + 20);

    // An operator clears it: stage 2 starts over, enrolled keys go async.
    controller.clear_rollback();
    assert!(handle().rollback_reason(site).is_none());
    assert!(SITE.call(&key).runs_async());
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "hold");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_panic_rolls_back_on_the_next_tick() {
    enable_async();
    let site = "ctl_panic";
    let clock = ManualClock::new();
    let mut controller = Controller::builder(site)
        .clock(clock.clone())
        .memory(|| None)
        .start();
    let record = UploadRecord::new(site, ExecutionType::SyncFallback, true, 1.0, 1)
        .with_fault(RuntimeFault::Panic);
    metrics::global().site(site).record(&record);
    clock.advance(Duration::from_secs(30));
    let Verdict::Rollback { triggers } = &controller.tick().verdict else {
        panic!("expected a rollback")
    };
    assert_eq!(triggers[0].kind, TriggerKind::CriticalError);
    assert!(handle().rollback_reason(site).is_some());
    controller.clear_rollback();
}

#[test]
fn memory_growth_rolls_back_and_an_external_clear_restarts_the_stage() {
    enable_async();
    let site = "ctl_memory";
    let clock = ManualClock::new();
    let resident = Arc::new(Mutex::new(100_000_000u64));
    let probe = Arc::clone(&resident);
    let mut controller = Controller::builder(site)
        .clock(clock.clone())
        .memory(move || Some(*probe.lock().unwrap()))
        .start();
    // Warm-up: the baseline is taken at 20 calls, judged 20 calls later.
    for _ in 0..2 {
        feed(site, ExecutionType::Async, true, 20);
        clock.advance(Duration::from_secs(30));
        assert_eq!(controller.tick().verdict.name(), "hold");
    }
    *resident.lock().unwrap() = 200_000_000;
    feed(site, ExecutionType::Async, true, 20);
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "rollback");
    // An operator lifts the kill switch by hand; memory measured afresh.
    handle().clear_rollback(site);
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "hold");
    assert!(controller.rollback().is_none());
}

#[test]
fn a_service_warming_up_with_its_controller_is_not_rolled_back() {
    enable_async();
    let site = "ctl_warm_up";
    let clock = ManualClock::new();
    let resident = Arc::new(Mutex::new(6_700_000u64));
    let probe = Arc::clone(&resident);
    let mut controller = Controller::builder(site)
        .clock(clock.clone())
        .memory(move || Some(*probe.lock().unwrap()))
        .start();
    // Two calls, +31 % of a few megabytes; then 40 MB of caches with no
    // async call at all; then the service settles and serves.
    feed(site, ExecutionType::Async, true, 2);
    *resident.lock().unwrap() = 8_800_000;
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "hold");
    *resident.lock().unwrap() = 48_800_000;
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "hold");
    for _ in 0..20 {
        feed(site, ExecutionType::Async, true, 10);
        feed(site, ExecutionType::Sync, true, 10);
        *resident.lock().unwrap() += 500_000;
        clock.advance(Duration::from_secs(30));
        let evaluation = controller.tick();
        assert_eq!(evaluation.verdict.name(), "hold", "{evaluation:#?}");
    }
    assert!(handle().rollback_reason(site).is_none());
}

#[test]
fn auto_advance_enters_the_next_stage_by_itself() {
    enable_async();
    let site = "ctl_auto";
    let clock = ManualClock::new();
    let stages = vec![
        async_upload_control::stages::Stage::new(1, 5.0)
            .with_min_duration(Duration::from_secs(60))
            .with_min_samples(20),
        async_upload_control::stages::Stage::new(2, 50.0),
    ];
    let mut controller = Controller::builder(site)
        .stages(stages)
        .clock(clock.clone())
        .memory(|| None)
        .auto_advance(true)
        .start();
    feed(site, ExecutionType::Async, true, 30);
    feed(site, ExecutionType::Sync, true, 30);
    clock.advance(Duration::from_secs(120));
    assert_eq!(controller.tick().verdict, Verdict::Advance);
    assert_eq!(controller.stage().number, 2);
    assert_eq!(handle().site_overrides(site).rollout, Some(50.0));
}

#[tokio::test(start_paused = true)]
async fn drive_ticks_on_tokio_time_through_days_in_milliseconds() {
    enable_async();
    let site = "ctl_drive";
    let controller = Arc::new(Mutex::new(
        Controller::builder(site)
            .clock(TokioClock)
            .memory(|| None)
            .start(),
    ));
    let task = tokio::spawn(drive(Arc::clone(&controller), Duration::from_secs(30)));
    for _ in 0..(2 * 24 * 60) {
        // Two simulated days, a minute at a time, all traffic healthy.
        feed(site, ExecutionType::Async, true, 1);
        feed(site, ExecutionType::Sync, true, 1);
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let verdict = controller
        .lock()
        .unwrap()
        .last_evaluation()
        .unwrap()
        .verdict
        .clone();
    assert_eq!(verdict, Verdict::Advance);
    // A breach: every call fails; the next ticks roll back.
    feed(site, ExecutionType::SyncFallback, true, 200);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(controller.lock().unwrap().rollback().is_some());
    task.abort();
    controller.lock().unwrap().clear_rollback();
}

/// Collects what a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_site_never_called_warns_once() {
    let written = Written::default();
    let writer = written.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let clock = ManualClock::new();
        let mut controller = Controller::builder("ctl_never_called_mistyped")
            .clock(clock.clone())
            .memory(|| None)
            .start();
        for _ in 0..40 {
            clock.advance(Duration::from_secs(30));
            assert_eq!(controller.tick().verdict.name(), "hold");
        }
    });
    let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("no call of this site has been recorded"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("ctl_never_called_mistyped"), "{text}");
}
