//! Like with like: latency compared at equal size, failures against the
//! old path's in the same window. The two decisions issue 21 saw go wrong:
//! a size-skewed cohort held in review, and a shared backend's outage
//! rolling the new path back.

use async_upload_test_support::seams;

use std::sync::Arc;
use std::time::Duration;

use async_upload_control::stages::{
    evaluate, Actuator, Controller, ManualClock, Missing, Stage, TriggerKind, Triggers, Verdict,
    DEFAULT_STAGES,
};
use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot, UploadRecord};
use seams::{once, Counters, Latch};

/// Per-byte speed: 1 ms per 8 KiB plus 5 ms, with a ±20 % spread.
fn took(rng: &mut fastrand::Rng, bytes: u64, slower: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let base = 5.0 + bytes as f64 / 8192.0;
    base * slower * (0.8 + 0.4 * rng.f64())
}

/// Log-uniform sizes from 1 KiB to 4 MiB.
fn size(rng: &mut fastrand::Rng) -> u64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (1024.0 * 4096_f64.powf(rng.f64())) as u64;
    bytes
}

fn record(et: ExecutionType, bytes: Option<u64>, ms: f64, success: bool) -> UploadRecord {
    let mut record = UploadRecord::new("sized", et, success, ms, 1);
    record.bytes = bytes;
    record
}

/// A stage window: `sync` calls of log-uniform sizes, `cohort` async calls
/// whose sizes are drawn `skew` times larger (the cohort's median is
/// `skew` × the rest's), the async path `slower` × the sync path per byte.
fn window(sync: u32, cohort: u32, skew: f64, slower: f64, sized: bool) -> SiteSnapshot {
    let mut rng = fastrand::Rng::with_seed(21);
    let mut window = SiteSnapshot::empty("sized");
    for _ in 0..sync {
        let bytes = size(&mut rng);
        let ms = took(&mut rng, bytes, 1.0);
        window.record(&record(
            ExecutionType::Sync,
            sized.then_some(bytes),
            ms,
            true,
        ));
    }
    for _ in 0..cohort {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = (size(&mut rng) as f64 * skew) as u64;
        let ms = took(&mut rng, bytes, slower);
        window.record(&record(
            ExecutionType::Async,
            sized.then_some(bytes),
            ms,
            true,
        ));
    }
    window
}

fn judged(window: &SiteSnapshot, elapsed: Duration) -> async_upload_control::stages::Evaluation {
    evaluate(
        &DEFAULT_STAGES[0],
        &Triggers::DEFAULT,
        &once(window, elapsed),
    )
}

const DAY: Duration = Duration::from_secs(25 * 3600);

#[test]
fn a_size_skewed_cohort_of_equal_speed_per_byte_is_not_held_in_review() {
    // A 1 % cohort whose median size is 1.7 × the rest's.
    let skewed = window(100_000, 1000, 1.7, 1.0, true);
    let median = |et| skewed.path(et).latency.quantile(0.5).unwrap();
    let unmatched = median(ExecutionType::Async) / median(ExecutionType::Sync);
    assert!(unmatched > 1.3, "the cohort is {unmatched}x slower overall");
    let evaluation = judged(&skewed, DAY);
    let latency = evaluation.latency.as_ref().unwrap();
    assert!(latency.size_groups > 5, "{latency:?}");
    assert!((latency.p50_ratio - 1.0).abs() < 0.06, "{latency:?}");
    assert!((latency.p95_ratio - 1.0).abs() < 0.08, "{latency:?}");
    assert_eq!(evaluation.verdict, Verdict::Advance, "{evaluation:#?}");
    // Young: hold, not a latency review on the interval.
    let young = judged(&skewed, Duration::from_secs(3600));
    assert_eq!(young.verdict.name(), "hold", "{young:#?}");
}

#[test]
fn a_new_path_slower_at_every_size_is_reviewed() {
    let slow = window(100_000, 1000, 1.0, 1.5, true);
    let evaluation = judged(&slow, DAY);
    let latency = evaluation.latency.as_ref().unwrap();
    assert!((latency.p50_ratio - 1.5).abs() < 0.1, "{latency:?}");
    let Verdict::Review { triggers } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    assert!(
        triggers.iter().any(|t| t.kind == TriggerKind::Latency),
        "{triggers:?}"
    );
}

#[test]
fn with_sizes_unrecorded_the_paths_compare_as_one_class() {
    let unsized_window = window(10_000, 1000, 1.7, 1.0, false);
    let evaluation = judged(&unsized_window, DAY);
    let latency = evaluation.latency.as_ref().unwrap();
    assert_eq!(latency.size_groups, 1);
    let q = |et, q| unsized_window.path(et).latency.quantile(q).unwrap() / 1000.0;
    assert_eq!(
        latency.p50_ratio,
        q(ExecutionType::Async, 0.5) / q(ExecutionType::Sync, 0.5),
        "today's ratio of the two paths' quantiles"
    );
    assert_eq!(
        latency.p95_ratio,
        latency.async_p95_ms / latency.baseline.p95_ms
    );
    // Skewed and unmatched, it looks slower: today's verdict.
    assert_eq!(evaluation.verdict.name(), "review", "{evaluation:#?}");
}

fn feed(counters: &Counters, et: ExecutionType, success: bool, n: u32) {
    let mut snapshot = counters.0.lock().unwrap();
    for _ in 0..n {
        snapshot.record(&record(et, None, 10.0, success));
    }
}

/// Issue 21: nginx stopped for 7 s. Both paths fail together: hold, with
/// the reason, not a rollback; when the new path alone fails, a rollback.
#[test]
fn both_paths_failing_together_hold_and_the_new_path_failing_alone_rolls_back() {
    let clock = ManualClock::new();
    let counters = Arc::new(Counters::new("sized"));
    let latch = Arc::new(Latch::default());
    let stage = Stage::new(3, 50.0)
        .with_min_duration(Duration::from_secs(3600))
        .with_min_samples(100);
    let mut controller = Controller::builder("sized")
        .stages(vec![stage])
        .clock(clock.clone())
        .memory(|| None)
        .health(Arc::clone(&counters))
        .actuator(Arc::clone(&latch))
        .tick_interval(Duration::from_secs(1))
        .recent_window(Duration::from_secs(10))
        .start();
    let tick = |controller: &mut Controller| {
        clock.advance(Duration::from_secs(1));
        controller.tick().verdict.clone()
    };
    for _ in 0..30 {
        feed(&counters, ExecutionType::Async, true, 50);
        feed(&counters, ExecutionType::Sync, true, 50);
        assert_eq!(tick(&mut controller).name(), "hold");
    }
    // The shared backend is down: 54 of 55 calls fail on either path.
    for second in 0..7 {
        feed(&counters, ExecutionType::SyncFallback, false, 54);
        feed(&counters, ExecutionType::Async, true, 1);
        feed(&counters, ExecutionType::Sync, false, 54);
        feed(&counters, ExecutionType::Sync, true, 1);
        let verdict = tick(&mut controller);
        let Verdict::Hold { missing } = &verdict else {
            panic!("second {second}: {verdict:?}")
        };
        assert!(
            missing
                .iter()
                .any(|m| matches!(m, Missing::SyncFailsToo { .. })),
            "second {second}: {missing:?}"
        );
        assert!(
            missing[0]
                .to_string()
                .starts_with("the sync path fails too (shared backend?)"),
            "{missing:?}"
        );
    }
    assert_eq!(
        latch.rollback_reason("sized"),
        None,
        "no rollback for the backend's outage"
    );
    // Back up; then the new path alone fails.
    for _ in 0..15 {
        feed(&counters, ExecutionType::Async, true, 50);
        feed(&counters, ExecutionType::Sync, true, 50);
        assert_ne!(tick(&mut controller).name(), "rollback");
    }
    feed(&counters, ExecutionType::SyncFallback, false, 50);
    feed(&counters, ExecutionType::Sync, true, 50);
    let verdict = tick(&mut controller);
    let Verdict::Rollback { triggers } = &verdict else {
        panic!("{verdict:?}")
    };
    // The reason shows what decided: the look's 50 failed calls.
    let reason = latch.rollback_reason("sized").unwrap();
    assert!(
        reason.contains("fired on the 50 enrolled calls of the last 1.0s"),
        "{reason}"
    );
    assert!(triggers[0].measured < triggers[0].threshold, "{triggers:?}");
    assert!(
        triggers[0].interval.unwrap().high <= triggers[0].threshold,
        "{triggers:?}"
    );
    // A panic still rolls back at once, shared outage or not (it is latched now).
    assert!(controller.rollback().is_some());
}

/// Critical faults roll back at once, whatever the sync path does.
#[test]
fn a_panic_rolls_back_in_a_shared_outage_too() {
    let clock = ManualClock::new();
    let counters = Arc::new(Counters::new("sized"));
    let mut controller = Controller::builder("sized")
        .clock(clock.clone())
        .memory(|| None)
        .health(Arc::clone(&counters))
        .actuator(Latch::default())
        .start();
    feed(&counters, ExecutionType::Sync, false, 100);
    counters.0.lock().unwrap().record(
        &record(ExecutionType::SyncFallback, None, 5.0, false)
            .with_fault(async_upload_runtime::metrics::RuntimeFault::Panic),
    );
    clock.advance(Duration::from_secs(30));
    let Verdict::Rollback { triggers } = controller.tick().verdict.clone() else {
        panic!("a panic rolls back")
    };
    assert_eq!(triggers[0].kind, TriggerKind::CriticalError);
}
