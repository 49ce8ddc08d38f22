//! The pure evaluation: every verdict and every trigger at and around its
//! threshold.

use async_upload_test_support::seams;

use std::time::Duration;

use async_upload_control::stages::{
    evaluate, Baseline, BaselineSource, Complaints, Criterion, Evaluation, Memory, Missing,
    Observation, Stage, Status, TriggerKind, Triggers, Verdict, DEFAULT_STAGES,
};
use async_upload_runtime::metrics::{ExecutionType, RuntimeFault, SiteSnapshot, UploadRecord};

use ExecutionType::{Async, Sync, SyncFallback};

const HOUR: Duration = Duration::from_secs(3600);

/// A window with `n` records of one kind; durations in microseconds are
/// below 32 µs so the histogram holds them exactly.
struct Window(SiteSnapshot);

impl Window {
    fn new() -> Self {
        Window(SiteSnapshot::empty("eval"))
    }

    fn add(mut self, n: u32, et: ExecutionType, success: bool, micros: u32) -> Self {
        for _ in 0..n {
            let mut record = UploadRecord::new("eval", et, success, f64::from(micros) / 1000.0, 1);
            if !success || et == SyncFallback {
                record.error_type = Some("io".into());
            }
            self.0.record(&record);
        }
        self
    }

    fn panic(mut self) -> Self {
        let record =
            UploadRecord::new("eval", SyncFallback, true, 0.02, 1).with_fault(RuntimeFault::Panic);
        self.0.record(&record);
        self
    }
}

fn observe(window: &SiteSnapshot, elapsed: Duration) -> Observation<'_> {
    seams::once(window, elapsed)
}

fn stage1(obs: &Observation<'_>) -> Evaluation {
    evaluate(&DEFAULT_STAGES[0], &Triggers::DEFAULT, obs)
}

fn triggers(verdict: &Verdict) -> Vec<TriggerKind> {
    match verdict {
        Verdict::Review { triggers } | Verdict::Rollback { triggers } => {
            triggers.iter().map(|t| t.kind).collect()
        }
        _ => Vec::new(),
    }
}

fn status(evaluation: &Evaluation, criterion: Criterion) -> Status {
    evaluation
        .checks
        .iter()
        .find(|c| c.criterion == criterion)
        .unwrap()
        .status
}

/// 10 000 enrolled calls, `successes` served by the async path, the rest
/// saved by the fallback (no user-visible error), plus a sync baseline at
/// the same latency.
fn healthy_but(successes: u32) -> SiteSnapshot {
    Window::new()
        .add(successes, Async, true, 20)
        .add(10_000 - successes, SyncFallback, true, 20)
        .add(100, Sync, true, 20)
        .0
}

#[test]
fn success_rate_99_50_advances_and_99_49_asks_for_review() {
    let at = healthy_but(9950);
    let evaluation = stage1(&observe(&at, 25 * HOUR));
    assert_eq!(evaluation.verdict, Verdict::Advance, "{evaluation:#?}");
    assert_eq!(evaluation.health.success_rate, Some(0.995));
    assert_eq!(evaluation.health.user_success_rate, Some(1.0));

    let below = healthy_but(9949);
    let evaluation = stage1(&observe(&below, 25 * HOUR));
    assert_eq!(status(&evaluation, Criterion::SuccessRate), Status::Fail);
    let Verdict::Review { triggers } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    assert_eq!(triggers[0].kind, TriggerKind::CriterionNotMet);
    assert_eq!(triggers[0].criterion, Some(Criterion::SuccessRate));
    assert_eq!(triggers[0].measured, 0.9949);
    assert_eq!(triggers[0].threshold, 0.995);
}

#[test]
fn a_missed_criterion_before_the_time_is_up_is_hold() {
    let below = healthy_but(9949);
    let evaluation = stage1(&observe(&below, 23 * HOUR));
    assert_eq!(status(&evaluation, Criterion::SuccessRate), Status::Fail);
    assert_eq!(
        evaluation.verdict,
        Verdict::Hold {
            missing: vec![Missing::Time {
                have: 23 * HOUR,
                need: 24 * HOUR
            }]
        }
    );
}

#[test]
fn a_handful_of_errors_is_not_a_rollback_ten_percent_over_hundreds_is() {
    // 6 % of 100 calls: a point estimate past 5 %, but no evidence.
    let six = Window::new()
        .add(94, Async, true, 20)
        .add(6, Async, false, 20)
        .0;
    let evaluation = stage1(&observe(&six, HOUR));
    assert!(
        !matches!(evaluation.verdict, Verdict::Rollback { .. }),
        "{evaluation:#?}"
    );
    assert_eq!(evaluation.recent.error_rate, Some(0.06));
    assert!(!evaluation.rates.errors.fired());

    let sustained = Window::new()
        .add(270, Async, true, 20)
        .add(30, Async, false, 20)
        .0;
    let evaluation = stage1(&observe(&sustained, HOUR));
    let Verdict::Rollback { triggers } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    let kinds: Vec<_> = triggers.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [TriggerKind::SuccessRate, TriggerKind::ErrorRate]);
    assert_eq!(triggers[0].measured, 0.90);
    assert_eq!(triggers[0].threshold, 0.95);
    assert!(triggers[0].interval.unwrap().contains(0.90));
    assert!(triggers[0].interval.unwrap().high < 0.95);
    assert_eq!(triggers[1].measured, 0.10);
    assert_eq!(triggers[1].threshold, 0.05);
    assert_eq!(triggers[1].calls, 300);
    assert!(triggers[1].evidence.unwrap().fired());
}

#[test]
fn fallbacks_that_save_the_call_still_fail_the_async_path() {
    // Users saw no error, but the async path failed 10 % of its calls.
    let saved = Window::new()
        .add(270, Async, true, 20)
        .add(30, SyncFallback, true, 20)
        .0;
    let evaluation = stage1(&observe(&saved, HOUR));
    assert_eq!(triggers(&evaluation.verdict), [TriggerKind::SuccessRate]);
    assert_eq!(evaluation.recent.error_rate, Some(0.0));
    assert_eq!(evaluation.recent.user_success_rate, Some(1.0));
}

#[test]
fn rate_triggers_need_twenty_calls_a_critical_error_needs_none() {
    let nineteen = Window::new().add(19, Async, false, 20).0;
    let evaluation = stage1(&observe(&nineteen, HOUR));
    assert_eq!(evaluation.verdict.name(), "hold", "{evaluation:#?}");

    let twenty = Window::new().add(20, Async, false, 20).0;
    assert_eq!(stage1(&observe(&twenty, HOUR)).verdict.name(), "rollback");

    let one_panic = Window::new().panic().0;
    let evaluation = stage1(&observe(&one_panic, HOUR));
    assert_eq!(triggers(&evaluation.verdict), [TriggerKind::CriticalError]);
}

#[test]
fn nothing_at_all_is_hold_with_everything_missing() {
    let empty = SiteSnapshot::empty("eval");
    let evaluation = stage1(&observe(&empty, Duration::ZERO));
    let Verdict::Hold { missing } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    assert_eq!(missing.len(), 3); // samples, time, latency data
    assert!(evaluation
        .checks
        .iter()
        .any(|c| c.status == Status::Pending));
}

/// Stage 1 window with enough time and samples; async latency `async_us`
/// against sync at 20 µs.
fn latency_window(async_fast: u32, async_us: u32, async_slow: u32, slow_us: u32) -> SiteSnapshot {
    Window::new()
        .add(async_fast, Async, true, async_us)
        .add(async_slow, Async, true, slow_us)
        .add(100, Sync, true, 20)
        .0
}

#[test]
fn latency_exactly_1_10_passes_and_above_fails() {
    let exact = latency_window(200, 22, 0, 0);
    let evaluation = stage1(&observe(&exact, 25 * HOUR));
    let latency = evaluation.latency.as_ref().unwrap();
    assert_eq!(latency.source, BaselineSource::SameWindow);
    assert!((latency.p50_ratio - 1.10).abs() < 1e-12);
    assert_eq!(evaluation.verdict, Verdict::Advance, "{evaluation:#?}");

    let above = latency_window(200, 23, 0, 0); // 1.15×
    let evaluation = stage1(&observe(&above, 25 * HOUR));
    assert_eq!(status(&evaluation, Criterion::LatencyP50), Status::Fail);
    assert_eq!(status(&evaluation, Criterion::LatencyP95), Status::Fail);
    assert_eq!(
        triggers(&evaluation.verdict),
        [TriggerKind::CriterionNotMet, TriggerKind::CriterionNotMet]
    );
}

#[test]
fn latency_needs_both_p50_and_p95() {
    // p50 = 20 µs (1.0×) but p95 = 22 µs... then 23 µs (1.15×).
    let tail = latency_window(180, 20, 20, 23);
    let evaluation = stage1(&observe(&tail, 25 * HOUR));
    assert_eq!(status(&evaluation, Criterion::LatencyP50), Status::Pass);
    assert_eq!(status(&evaluation, Criterion::LatencyP95), Status::Fail);
    assert_eq!(evaluation.verdict.name(), "review");
}

#[test]
fn latency_above_1_2_asks_for_review_at_any_time() {
    let slow = latency_window(200, 25, 0, 0); // 1.25×
    let evaluation = stage1(&observe(&slow, HOUR));
    assert_eq!(triggers(&evaluation.verdict), [TriggerKind::Latency]);
    let exact = latency_window(200, 24, 0, 0); // 1.20×: at the threshold, no review
    assert_eq!(stage1(&observe(&exact, HOUR)).verdict.name(), "hold");
}

#[test]
fn a_stage_with_a_looser_latency_ratio_is_not_held_in_review_by_the_global_one() {
    let slow = latency_window(200, 50, 0, 0); // 2.5×
    let loose = Stage::new(1, 1.0)
        .with_latency_ratio(3.0)
        .with_min_duration(Duration::from_secs(60));
    let evaluation = evaluate(&loose, &Triggers::DEFAULT, &observe(&slow, HOUR));
    assert_eq!(evaluation.verdict, Verdict::Advance, "{evaluation:#?}");
    // The default stage (1.10) is reviewed, at the global 1.2, and says so.
    let evaluation = stage1(&observe(&slow, HOUR));
    let Verdict::Review { triggers } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    assert_eq!(triggers[0].kind, TriggerKind::Latency);
    assert_eq!(triggers[0].threshold, 1.2);
    // A stage ratio above 1.2 is the review line itself.
    let tight_global = Stage::new(1, 1.0).with_latency_ratio(2.0);
    let evaluation = evaluate(&tight_global, &Triggers::DEFAULT, &observe(&slow, HOUR));
    let Verdict::Review { triggers } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    assert_eq!(triggers[0].threshold, 2.0);
}

#[test]
fn a_slow_p95_from_a_handful_of_calls_is_not_a_review() {
    // 20 async calls, two of them slow: the p95 ratio's interval is unbounded.
    let few = Window::new()
        .add(18, Async, true, 20)
        .add(2, Async, true, 60)
        .add(20, Sync, true, 20)
        .0;
    let evaluation = stage1(&observe(&few, HOUR));
    let latency = evaluation.latency.as_ref().unwrap();
    assert!(latency.p95_ratio > 1.2, "{latency:?}");
    assert!(latency.p95_interval.high.is_infinite());
    assert_eq!(evaluation.verdict.name(), "hold", "{evaluation:#?}");
}

#[test]
fn checks_show_their_interval_beside_the_estimate() {
    let window = healthy_but(9950);
    let evaluation = stage1(&observe(&window, 25 * HOUR));
    let success = evaluation
        .checks
        .iter()
        .find(|c| c.criterion == Criterion::SuccessRate)
        .unwrap();
    let interval = success.interval.unwrap();
    assert!(interval.contains(success.measured.unwrap()), "{interval:?}");
    assert!(interval.low < 0.995 && interval.high > 0.995);
    let time = evaluation
        .checks
        .iter()
        .find(|c| c.criterion == Criterion::Duration)
        .unwrap();
    assert!(time.interval.is_none());
}

#[test]
fn at_100_percent_the_frozen_baseline_is_used() {
    // Sync calls in the window are slow (40 µs) and must be ignored.
    let window = Window::new()
        .add(6000, Async, true, 20)
        .add(100, Sync, true, 30)
        .0;
    let mut obs = observe(&window, 8 * 24 * HOUR);
    let stage4 = &DEFAULT_STAGES[3];
    let evaluation = evaluate(stage4, &Triggers::DEFAULT, &obs);
    assert!(evaluation.latency.is_none());
    assert!(
        matches!(&evaluation.verdict, Verdict::Hold { missing } if matches!(missing[0], Missing::LatencyData { .. }))
    );

    let frozen = Baseline::new(0.020, 0.020, 500);
    obs.baseline = Some(&frozen);
    let evaluation = evaluate(stage4, &Triggers::DEFAULT, &obs);
    let latency = evaluation.latency.as_ref().unwrap();
    assert_eq!(latency.source, BaselineSource::Frozen);
    assert_eq!(evaluation.verdict, Verdict::Advance, "{evaluation:#?}");
}

#[test]
fn memory_up_20_percent_is_fine_up_more_rolls_back_a_few_megabytes_never() {
    let window = Window::new().add(50, Async, true, 20).0;
    let mut obs = observe(&window, HOUR);
    obs.memory = Some(Memory {
        start_bytes: 1_000_000_000,
        now_bytes: 1_200_000_000,
    });
    assert_eq!(stage1(&obs).verdict.name(), "hold");
    obs.memory = Some(Memory {
        start_bytes: 1_000_000_000,
        now_bytes: 1_201_000_000,
    });
    assert_eq!(triggers(&stage1(&obs).verdict), [TriggerKind::Memory]);
    // +31 % of a small service is below the absolute floor (32 MiB).
    obs.memory = Some(Memory {
        start_bytes: 6_700_000,
        now_bytes: 8_800_000,
    });
    assert_eq!(stage1(&obs).verdict.name(), "hold");
}

#[test]
fn success_in_the_band_for_30_minutes_asks_for_review() {
    let window = Window::new()
        .add(96, Async, true, 20)
        .add(4, Async, false, 20)
        .0;
    let mut obs = observe(&window, HOUR);
    obs.success_band_for = Duration::from_secs(29 * 60);
    assert_eq!(stage1(&obs).verdict.name(), "hold");
    obs.success_band_for = Duration::from_secs(30 * 60);
    assert_eq!(
        triggers(&stage1(&obs).verdict),
        [TriggerKind::SustainedLowSuccess]
    );
}

#[test]
fn a_rising_complaint_rate_asks_for_review() {
    let window = Window::new().add(50, Async, true, 20).0;
    let mut obs = observe(&window, HOUR);
    obs.complaints = Some(Complaints {
        reference: 2.0,
        current: 3.0,
    });
    assert_eq!(stage1(&obs).verdict.name(), "hold"); // +50 %: at the threshold
    obs.complaints = Some(Complaints {
        reference: 2.0,
        current: 3.1,
    });
    assert_eq!(triggers(&stage1(&obs).verdict), [TriggerKind::Complaints]);
}

#[test]
fn worst_verdict_wins() {
    // Slow (review) and a panic (rollback): rollback.
    let window = Window::new()
        .add(200, Async, true, 30)
        .add(100, Sync, true, 20)
        .panic()
        .0;
    let evaluation = stage1(&observe(&window, HOUR));
    let Verdict::Rollback { triggers } = &evaluation.verdict else {
        panic!("{evaluation:#?}")
    };
    assert_eq!(triggers[0].kind, TriggerKind::CriticalError);
    // Exit codes belong to the report (feature `report`).
    #[cfg(feature = "report")]
    {
        assert_eq!(evaluation.verdict.exit_code(), 4);
        assert_eq!(Verdict::Review { triggers: vec![] }.exit_code(), 3);
        assert_eq!(Verdict::Hold { missing: vec![] }.exit_code(), 0);
    }
}

#[test]
fn evaluations_serialize_with_values_and_thresholds() {
    let ten_percent = Window::new()
        .add(270, Async, true, 20)
        .add(30, Async, false, 20)
        .0;
    let json = serde_json::to_value(stage1(&observe(&ten_percent, HOUR))).unwrap();
    assert_eq!(json["verdict"], "rollback");
    assert_eq!(json["triggers"][1]["kind"], "error_rate");
    assert_eq!(json["triggers"][1]["measured"], 0.10);
    assert_eq!(json["triggers"][1]["threshold"], 0.05);
    assert!(json["triggers"][1]["interval"]["low"].as_f64().unwrap() > 0.05);
    assert_eq!(json["triggers"][1]["evidence"]["method"], "binomial");
    assert_eq!(json["rates"]["errors"]["bad"], 30);
    assert_eq!(json["thresholds"]["confidence"], 0.99);
    assert!(json["checks"][0]["interval"]["high"].is_number());
    assert_eq!(json["checks"][0]["criterion"], "success_rate");
    assert_eq!(json["thresholds"]["min_calls"], 20);
}
