//! One judge: the report replays a log through the controller's own
//! decision code, so the live `Controller` ticking through some records and
//! the report of the log those records and its events make reach the same
//! verdict at the same moment.

use async_upload_test_support::seams;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_upload_control::log::{read_file, Event, JsonlLog, Log, StageEntered, StageEvent};
use async_upload_control::stages::{
    Clock, Controller, ManualClock, Report, ReportOptions, Stage, Trigger, TriggerKind, Triggers,
    Verdict, DEFAULT_RECENT_WINDOW, DEFAULT_STAGES, DEFAULT_TICK,
};
use async_upload_runtime::metrics::{ExecutionType, UploadRecord};
use seams::{Counters, Latch};

const SITE: &str = "replay";
const TICK: Duration = Duration::from_secs(30);

/// What a generated log's traffic does.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Healthy,
    /// The async path succeeds this often, all along.
    Degraded(f64),
    /// From `at` (fraction of the run), the async path fails this often.
    BrokenAt(f64, f64),
    /// From `at` for `for` (fractions), both paths fail this often.
    SharedOutage(f64, f64, f64),
    /// Short bursts of async failures on healthy traffic.
    Bursts,
    /// A few calls a minute.
    Sparse,
}

#[derive(Clone, Debug)]
struct Case {
    kind: Kind,
    minutes: u32,
    calls_per_minute: f64,
    rollout: f64,
    seed: u64,
}

impl Case {
    fn generate(rng: &mut fastrand::Rng, index: u64) -> Case {
        let kind = match index % 6 {
            0 => Kind::Healthy,
            1 => Kind::Degraded(0.90 + rng.f64() * 0.07),
            2 => Kind::BrokenAt(0.1 + rng.f64() * 0.8, 0.2 + rng.f64() * 0.8),
            3 => Kind::SharedOutage(
                0.1 + rng.f64() * 0.6,
                0.02 + rng.f64() * 0.1,
                0.5 + rng.f64() * 0.5,
            ),
            4 => Kind::Bursts,
            _ => Kind::Sparse,
        };
        let calls_per_minute = match kind {
            Kind::Sparse => 0.5 + rng.f64() * 3.0,
            _ => 10.0 + rng.f64() * 150.0,
        };
        Case {
            kind,
            minutes: 30 + rng.u32(0..150),
            calls_per_minute,
            rollout: [0.01, 0.1, 0.5, 0.9][rng.usize(0..4)],
            seed: rng.u64(..),
        }
    }

    /// The async path's failure rate and the sync path's at `fraction` of the run.
    fn failures(&self, fraction: f64, minute: u32) -> (f64, f64) {
        match self.kind {
            Kind::Healthy | Kind::Sparse => (0.002, 0.001),
            Kind::Degraded(success) => (1.0 - success, 0.001),
            Kind::BrokenAt(at, rate) if fraction >= at => (rate, 0.001),
            Kind::SharedOutage(at, length, rate) if (at..at + length).contains(&fraction) => {
                (rate, rate)
            }
            Kind::Bursts if minute % 17 == 5 => (0.5, 0.001),
            _ => (0.002, 0.001),
        }
    }

    /// The records, in time order, `ts` whole microseconds after `t0`.
    fn records(&self, t0: SystemTime) -> Vec<UploadRecord> {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let total_us = u64::from(self.minutes) * 60_000_000;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let calls = (self.calls_per_minute * f64::from(self.minutes)) as u64;
        let mut at: Vec<u64> = (0..calls).map(|_| rng.u64(1..total_us)).collect();
        at.sort_unstable();
        at.into_iter()
            .map(|us| {
                #[allow(clippy::cast_precision_loss)]
                let fraction = us as f64 / total_us as f64;
                let minute = u32::try_from(us / 60_000_000).unwrap();
                let (async_fails, sync_fails) = self.failures(fraction, minute);
                let sync_ok = rng.f64() >= sync_fails;
                let mut record = if rng.f64() < self.rollout {
                    if rng.f64() >= async_fails {
                        UploadRecord::new(
                            SITE,
                            ExecutionType::Async,
                            true,
                            10.0 + rng.f64() * 5.0,
                            1,
                        )
                    } else {
                        let mut r =
                            UploadRecord::new(SITE, ExecutionType::SyncFallback, sync_ok, 40.0, 3);
                        r.error_type = Some("timeout".into());
                        r
                    }
                } else {
                    UploadRecord::new(
                        SITE,
                        ExecutionType::Sync,
                        sync_ok,
                        10.0 + rng.f64() * 5.0,
                        0,
                    )
                };
                record.ts = t0 + Duration::from_micros(us);
                record
            })
            .collect()
    }
}

/// A clock whose wall time is a whole microsecond, as the log writes it.
fn clock() -> ManualClock {
    let clock = ManualClock::new();
    let nanos = clock
        .wall()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    clock.advance(Duration::from_nanos(u64::from(
        (1000 - nanos % 1000) % 1000,
    )));
    clock
}

/// What the live controller did on a case's records.
struct Live {
    /// The first tick that rolled back, and its triggers.
    rollback: Option<(SystemTime, Vec<Trigger>)>,
    last: Verdict,
    log: Log,
}

fn live(
    stage: &Stage,
    records: &[UploadRecord],
    clock: &ManualClock,
    minutes: u32,
    path: &std::path::Path,
) -> Live {
    let log = JsonlLog::open(path).unwrap();
    let counters = Arc::new(Counters::new(SITE));
    let mut controller = Controller::builder(SITE)
        .stages(vec![stage.clone()])
        .clock(clock.clone())
        .memory(|| None)
        .health(Arc::clone(&counters))
        .actuator(Latch::default())
        .tick_interval(TICK)
        .log(log.clone())
        .start();
    let mut next = 0;
    let mut rollback = None;
    let mut last = Verdict::Advance;
    for _ in 0..(minutes * 2) {
        clock.advance(TICK);
        let now = clock.wall();
        while next < records.len() && records[next].ts < now {
            counters.0.lock().unwrap().record(&records[next]);
            next += 1;
        }
        let verdict = controller.tick().verdict.clone();
        if let (None, Verdict::Rollback { triggers }) = (&rollback, &verdict) {
            rollback = Some((now, triggers.clone()));
        }
        last = verdict;
    }
    assert!(log.flush());
    // The controller's events from its log, the records as they were made.
    let mut read = read_file(path).unwrap();
    assert_eq!(read.errors, []);
    read.uploads = records.to_vec();
    Live {
        rollback,
        last,
        log: read,
    }
}

/// The log as an instance without a controller (or whose controller died)
/// leaves it: the records, the stage's `entered` event and the last verdict
/// line (the log's end), no rollback.
fn without_rollback(log: &Log) -> Log {
    let mut stripped = log.clone();
    let last = log
        .events
        .iter()
        .rev()
        .find(|e| matches!(e, Event::Stage(StageEvent::Verdict(_))))
        .cloned();
    stripped
        .events
        .retain(|e| matches!(e, Event::Stage(StageEvent::Entered(_))));
    stripped.events.extend(last);
    stripped
}

/// A rate trigger's reason never contradicts its evidence: what decided is
/// what it shows.
fn consistent(trigger: &Trigger) {
    let interval = trigger.interval.expect("a rate trigger shows its interval");
    match trigger.kind {
        TriggerKind::SuccessRate => {
            assert!(trigger.measured < trigger.threshold, "{trigger}");
            assert!(interval.high <= trigger.threshold + 1e-9, "{trigger}");
        }
        TriggerKind::ErrorRate => {
            assert!(trigger.measured > trigger.threshold, "{trigger}");
            assert!(interval.low >= trigger.threshold - 1e-9, "{trigger}");
        }
        _ => {}
    }
    let evidence = trigger.evidence.expect("a rate trigger shows its evidence");
    assert!(evidence.calls >= Triggers::DEFAULT.min_calls, "{trigger}");
    assert_eq!(trigger.calls, evidence.window_calls, "{trigger}");
}

#[test]
fn the_live_controller_and_the_report_reach_the_same_verdict_at_the_same_moment() {
    let stage = Stage::new(1, 10.0)
        .with_min_duration(Duration::from_secs(20 * 60))
        .with_min_samples(50)
        .with_latency_ratio(1.5);
    let dir = std::env::temp_dir().join(format!("au-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = fastrand::Rng::with_seed(2026);
    let (mut rolled_back, mut held_shared) = (0, 0);
    for index in 0..60 {
        let case = Case::generate(&mut rng, index);
        let clock = clock();
        let t0 = clock.wall();
        let records = case.records(t0);
        let path = dir.join(format!("case-{index}.jsonl"));
        let _ = std::fs::remove_file(&path);
        let live = live(&stage, &records, &clock, case.minutes, &path);
        let report =
            Report::build(&without_rollback(&live.log), &ReportOptions::default()).unwrap();
        if std::env::var_os("REPLAY_DEBUG").is_some()
            && live.rollback.is_some() != report.sites[0].rollback.is_some()
        {
            eprintln!(
                "records {} log uploads {} events {}",
                records.len(),
                live.log.uploads.len(),
                live.log.events.len()
            );
            eprintln!("{}", report.render());
        }
        let site = &report.sites[0];
        match (&live.rollback, site.rollback) {
            (Some((at, triggers)), Some(found)) => {
                assert!(!found.logged, "{case:?}");
                let apart = found
                    .at
                    .duration_since(*at)
                    .or_else(|_| at.duration_since(found.at));
                assert!(
                    apart.unwrap() <= TICK,
                    "{case:?}: live at {at:?}, report at {:?}",
                    found.at
                );
                triggers.iter().for_each(consistent);
                // A healthy site is never rolled back; a shared outage
                // neither, where the sync path has calls enough in a look
                // to be its baseline (with one or two, its state at an
                // outage's onset is unknown).
                let sync_per_look = case.calls_per_minute * (1.0 - case.rollout) / 2.0;
                let shared = matches!(case.kind, Kind::SharedOutage(..)) && sync_per_look >= 10.0;
                assert!(
                    !matches!(case.kind, Kind::Healthy) && !shared,
                    "{case:?}: a false rollback: {triggers:?}"
                );
                rolled_back += 1;
            }
            (None, None) => {
                assert_eq!(site.evaluation.verdict.name(), live.last.name(), "{case:?}");
                if let Verdict::Hold { missing } = &live.last {
                    held_shared += usize::from(
                        missing
                            .iter()
                            .any(|m| m.to_string().contains("sync path fails too")),
                    );
                }
            }
            (live_rollback, found) => panic!("{case:?}: live {live_rollback:?}, report {found:?}"),
        }
        // With its rollback event, the log reports it as logged, at that moment.
        let logged = Report::build(&live.log, &ReportOptions::default()).unwrap();
        assert_eq!(
            logged.sites[0].rollback.is_some(),
            live.rollback.is_some(),
            "{case:?}"
        );
        std::fs::remove_file(&path).unwrap();
    }
    // The generator covers both outcomes.
    assert!(rolled_back >= 10, "{rolled_back} of 60 rolled back");
    assert!(rolled_back <= 40, "{rolled_back} of 60 rolled back");
    eprintln!("{rolled_back} of 60 rolled back; {held_shared} held: the sync path fails too");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stage `number` of the built-in table entered at `at`, as the
/// controller records it.
fn entered(number: usize, at: SystemTime) -> Event {
    Event::Stage(StageEvent::Entered(
        StageEntered::new(
            at,
            SITE,
            DEFAULT_STAGES[number - 1].clone(),
            Triggers::DEFAULT,
        )
        .with_looks(DEFAULT_TICK, DEFAULT_RECENT_WINDOW),
    ))
}

fn call(et: ExecutionType, success: bool, at: SystemTime) -> UploadRecord {
    let mut record = UploadRecord::new(SITE, et, success, 12.0, 1);
    record.ts = at;
    record
}

/// Issue 22: a stage-3 log, 2 hours healthy, whose last 3 minutes have
/// every async call failing (180 of 180, the sync path perfect), the
/// criteria and triggers recorded. The report used to judge the stage's
/// rate with one look over the whole window (180 failures in 3,690 calls:
/// hold, exit 0); the controller, looking every tick, rolls back.
#[test]
fn regression_issue_22_a_stage_3_log_whose_last_3_minutes_fail_rolls_back() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut log = Log::default();
    log.events.push(entered(3, t0));
    let healthy = Duration::from_secs(2 * 3600);
    for i in 0..3510u32 {
        let at = t0 + healthy * i / 3510;
        log.uploads.push(call(ExecutionType::Async, true, at));
        log.uploads.push(call(
            ExecutionType::Sync,
            true,
            at + Duration::from_millis(500),
        ));
    }
    let failing = t0 + healthy;
    for i in 0..180u32 {
        let at = failing + Duration::from_secs(1) * i;
        log.uploads.push(call(ExecutionType::Async, false, at));
        log.uploads.push(call(
            ExecutionType::Sync,
            true,
            at + Duration::from_millis(500),
        ));
    }
    let report = Report::build(&log, &ReportOptions::default()).unwrap();
    assert_eq!(report.exit_code, 4, "{}", report.render());
    let site = &report.sites[0];
    let found = site.rollback.unwrap();
    assert!(!found.logged);
    let after = found.at.duration_since(failing).unwrap();
    assert!(after <= Duration::from_secs(60), "{after:?}");
    let text = report.render();
    assert!(text.contains("would have rolled back at"), "{text}");
    let Verdict::Rollback { triggers } = &site.evaluation.verdict else {
        panic!("{text}")
    };
    triggers.iter().for_each(consistent);
}

/// The log of an instance without a controller: no stage event at all;
/// replayed from its first record at the default tick.
#[test]
fn a_log_without_stage_events_is_replayed_too() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut log = Log::default();
    for i in 0..2000u32 {
        let at = t0 + Duration::from_secs(2) * i;
        log.uploads.push(call(ExecutionType::Async, i < 1900, at));
    }
    let report = Report::build(&log, &ReportOptions::default()).unwrap();
    assert_eq!(report.exit_code, 4, "{}", report.render());
    let found = report.sites[0].rollback.unwrap();
    let when = found.at.duration_since(t0).unwrap();
    assert!(
        when >= Duration::from_secs(3800) && when <= Duration::from_secs(3800 + 120),
        "{when:?}"
    );
    assert_eq!(report.sites[0].replayed.tick, DEFAULT_TICK);
}
