//! The report replays the controller: the criteria and triggers recorded
//! in a stage's `entered` event, over that stage's window only; with no
//! stage event it says which stage it assumed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_upload_control::log::{
    read_file, Event, JsonlLog, Log, RollbackEvent, StageEntered, StageEvent,
};
use async_upload_control::stages::{
    evaluate, Clock, Controller, Health, HealthSource, ManualClock, Observation, Report,
    ReportError, ReportOptions, Stage, StageWindow, Trigger, Triggers, Verdict,
};
use async_upload_runtime::metrics::{
    ExecutionType, MetricsSink, RuntimeFault, SiteSnapshot, UploadRecord,
};

/// Counters the controller reads, fed with the same records as the log.
struct Counters(Mutex<SiteSnapshot>);

impl HealthSource for Counters {
    fn snapshot(&self, _site: &str) -> Option<SiteSnapshot> {
        Some(self.0.lock().unwrap().clone())
    }
}

fn record(site: &str, et: ExecutionType, success: bool, ts: SystemTime) -> UploadRecord {
    let mut record = UploadRecord::new(site.to_owned(), et, success, 10.0, 1);
    record.ts = ts;
    if !success || et == ExecutionType::SyncFallback {
        record.error_type = Some("timeout".into());
    }
    record
}

fn options(site: &str, stage: Option<u32>) -> ReportOptions {
    ReportOptions {
        site: Some(site.into()),
        stage,
        ..ReportOptions::default()
    }
}

fn temp_log(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("au-report-{}-{name}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn the_report_agrees_with_the_controller_on_its_own_log() {
    let site = "replay_agrees";
    let path = temp_log(site);
    let log = JsonlLog::open(&path).unwrap();
    let counters = Arc::new(Counters(Mutex::new(SiteSnapshot::empty(site))));
    let clock = ManualClock::new();
    // A short canary stage: the built-in stage 1 (24 h, 100 samples) would hold.
    let canary = Stage::new(1, 5.0)
        .with_min_duration(Duration::from_secs(600))
        .with_min_samples(40);
    let triggers = Triggers {
        min_calls: 10,
        ..Triggers::DEFAULT
    };
    let mut controller = Controller::builder(site)
        .stages(vec![canary.clone(), Stage::new(2, 50.0)])
        .triggers(triggers.clone())
        .clock(clock.clone())
        .memory(|| None)
        .health(Arc::clone(&counters))
        .log(log.clone())
        .start();
    for _ in 0..20 {
        clock.advance(Duration::from_secs(60));
        for et in [
            ExecutionType::Async,
            ExecutionType::Async,
            ExecutionType::Sync,
        ] {
            let record = record(site, et, true, clock.wall());
            counters.0.lock().unwrap().record(&record);
            log.record(&record);
        }
        controller.tick();
    }
    assert_eq!(
        controller.last_evaluation().unwrap().verdict,
        Verdict::Advance
    );
    assert!(log.flush());

    let read = read_file(&path).unwrap();
    assert_eq!(read.errors, []);
    let report = Report::build(&read, &options(site, None)).unwrap();
    let site_report = &report.sites[0];
    assert_eq!(site_report.evaluation.verdict, Verdict::Advance);
    assert_eq!(site_report.evaluation.thresholds, triggers);
    assert!(matches!(
        site_report.window,
        StageWindow::Recorded {
            triggers_recorded: true,
            until: None,
            ..
        }
    ));
    assert!(report.render().contains("as the controller recorded them"));
    // The built-in table disagrees: that is what the report used to do.
    let mut built_in = read.clone();
    built_in.events.clear();
    let assumed = Report::build(&built_in, &options(site, None)).unwrap();
    assert_eq!(assumed.sites[0].evaluation.verdict.name(), "hold");
    std::fs::remove_file(&path).unwrap();
}

/// Stage `stage` entered at `at` with the built-in criteria.
fn entered(site: &str, stage: u32, at: SystemTime) -> Event {
    let criteria = Stage::new(stage, f64::from(stage) * 10.0);
    Event::Stage(StageEvent::Entered(StageEntered::new(
        at,
        site,
        criteria,
        Triggers::DEFAULT,
    )))
}

#[test]
fn a_stage_is_judged_over_its_own_window_only() {
    let site = "replay_window";
    let t0 = SystemTime::now() - Duration::from_secs(3 * 3600);
    let hour = Duration::from_secs(3600);
    let mut log = Log::default();
    for (stage, calls) in [(1, 10), (2, 20), (3, 40)] {
        let start = t0 + hour * (stage - 1);
        log.events.push(entered(site, stage, start));
        for i in 0..calls {
            let ts = start + Duration::from_secs(60 * (i + 1));
            log.uploads
                .push(record(site, ExecutionType::Async, true, ts));
        }
    }
    let report = Report::build(&log, &options(site, Some(2))).unwrap();
    let two = &report.sites[0];
    assert_eq!(two.records, 20, "only stage 2's records");
    assert_eq!(two.evaluation.stage, 2);
    assert_eq!(two.evaluation.health.enrolled, 20);
    assert_eq!(
        two.evaluation.elapsed, hour,
        "stage 2 ended when stage 3 started"
    );
    assert!(matches!(
        two.window,
        StageWindow::Recorded { until: Some(_), .. }
    ));
    // By default: the last stage entered, up to the end of the log.
    let report = Report::build(&log, &options(site, None)).unwrap();
    assert_eq!(report.sites[0].evaluation.stage, 3);
    assert_eq!(report.sites[0].records, 40);
}

#[test]
fn with_no_stage_event_the_report_says_which_stage_it_assumed() {
    let site = "replay_assumed";
    let now = SystemTime::now();
    let mut log = Log::default();
    log.uploads
        .push(record(site, ExecutionType::Async, true, now));
    let report = Report::build(&log, &options(site, None)).unwrap();
    assert_eq!(
        report.sites[0].window,
        StageWindow::Assumed { requested: false }
    );
    let text = report.render();
    assert!(text.contains("assumed stage 1"), "{text}");
    assert!(text.contains("--stage N"), "{text}");

    let report = Report::build(&log, &options(site, Some(3))).unwrap();
    assert_eq!(report.sites[0].evaluation.stage, 3);
    assert_eq!(
        report.sites[0].window,
        StageWindow::Assumed { requested: true }
    );
    assert_eq!(
        Report::build(&log, &options(site, Some(9))).unwrap_err(),
        ReportError::UnknownStage {
            stage: 9,
            defined: vec![1, 2, 3, 4]
        }
    );
    assert_eq!(
        Report::build(&log, &options("nope", None)).unwrap_err(),
        ReportError::NoRecords {
            site: Some("nope".into())
        }
    );
}

#[test]
fn exit_codes_follow_the_worst_verdict() {
    assert_eq!(Verdict::Advance.exit_code(), 0);
    assert_eq!(Verdict::Hold { missing: vec![] }.exit_code(), 0);
    assert_eq!(Verdict::Review { triggers: vec![] }.exit_code(), 3);
    assert_eq!(Verdict::Rollback { triggers: vec![] }.exit_code(), 4);
}

#[test]
fn a_stage_never_entered_is_judged_with_the_built_in_criteria() {
    let site = "replay_not_entered";
    let now = SystemTime::now();
    let mut log = Log::default();
    log.events
        .push(entered(site, 1, now - Duration::from_secs(60)));
    log.uploads
        .push(record(site, ExecutionType::Async, true, now));
    let report = Report::build(&log, &options(site, Some(2))).unwrap();
    assert_eq!(report.sites[0].window, StageWindow::NotEntered);
    assert_eq!(report.sites[0].evaluation.stage, 2);
    assert!(report.render().contains("never shows stage 2 entered"));
}

#[test]
fn a_rollback_stays_with_the_window_it_happened_in() {
    let site = "replay_latch";
    let t0 = SystemTime::now() - Duration::from_secs(7200);
    let hour = Duration::from_secs(3600);
    let mut log = Log::default();
    log.events.push(entered(site, 1, t0));
    log.uploads.push(record(
        site,
        ExecutionType::Async,
        true,
        t0 + Duration::from_secs(60),
    ));
    log.events.push(entered(site, 2, t0 + hour));
    log.uploads.push(record(
        site,
        ExecutionType::Async,
        true,
        t0 + hour + Duration::from_secs(60),
    ));
    let trigger = evaluate_panic(site);
    log.events.push(Event::Rollback(
        RollbackEvent::new(
            t0 + hour + Duration::from_secs(120),
            site,
            (2, 20.0),
            vec![trigger],
        )
        .unwrap(),
    ));
    // Stage 2, where it happened and which is the site's current one: rollback.
    let current = Report::build(&log, &options(site, None)).unwrap();
    assert!(current.sites[0].latched_rollback);
    assert_eq!(current.exit_code, 4);
    // Stage 1 ended before it: its own verdict.
    let past = Report::build(&log, &options(site, Some(1))).unwrap();
    assert!(!past.sites[0].latched_rollback);
    assert_eq!(past.exit_code, 0);
}

/// The trigger a panic in the async path fires.
fn evaluate_panic(site: &str) -> Trigger {
    let mut window = SiteSnapshot::empty(site);
    let panicked = record(site, ExecutionType::SyncFallback, true, SystemTime::now())
        .with_fault(RuntimeFault::Panic);
    window.record(&panicked);
    let observation = Observation {
        stage_window: &window,
        recent: Health::of(&window),
        recent_span: Duration::from_secs(60),
        elapsed: Duration::from_secs(60),
        baseline: None,
        memory: None,
        success_band_for: Duration::ZERO,
        complaints: None,
        rates: None,
    };
    let Verdict::Rollback { triggers } =
        evaluate(&Stage::new(2, 20.0), &Triggers::DEFAULT, &observation).verdict
    else {
        panic!("a panic rolls back")
    };
    triggers[0].clone()
}

/// A fleet's next leader resumes the shared stage: its `entered` event
/// says since when, and the report keeps one stage, one clock and one
/// window, as the fleet does (a new window at each leader change restarted
/// the stage's clock in the report).
#[test]
fn a_resumed_stage_is_one_window_from_its_first_entry() {
    let site = "replay_resumed";
    let path = temp_log(site);
    let log = JsonlLog::open(&path).unwrap();
    let stages = vec![Stage::new(1, 1.0), Stage::new(2, 10.0)];
    let clock = ManualClock::new();
    // The log keeps microseconds.
    let micros = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    };
    let first = SystemTime::UNIX_EPOCH
        + Duration::from_micros(u64::try_from(micros(clock.wall())).unwrap());
    log.event(entered(site, 2, first));
    for _ in 0..10 {
        clock.advance(Duration::from_secs(60));
        log.record(&record(site, ExecutionType::Async, true, clock.wall()));
    }
    // The leader dies; the next one resumes stage 2 from its first entry.
    let controller = Controller::builder(site)
        .stages(stages)
        .clock(clock.clone())
        .memory(|| None)
        .health(Arc::new(Counters(Mutex::new(SiteSnapshot::empty(site)))))
        .log(log.clone())
        .resume_stage(2, first)
        .start();
    assert_eq!(controller.stage().number, 2);
    for _ in 0..10 {
        clock.advance(Duration::from_secs(60));
        log.record(&record(site, ExecutionType::Async, true, clock.wall()));
    }
    assert!(log.flush());

    let read = read_file(&path).unwrap();
    assert_eq!(read.errors, []);
    let since: Vec<_> = read
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stage(StageEvent::Entered(e)) => Some(e.since),
            _ => None,
        })
        .collect();
    assert_eq!(since, [None, Some(first)], "the resumption says since when");
    let report = Report::build(&read, &options(site, Some(2))).unwrap();
    let two = &report.sites[0];
    assert_eq!(two.records, 20, "both leaders' calls are the stage's");
    let elapsed = two.evaluation.elapsed.as_secs_f64();
    assert!(
        (elapsed - 1200.0).abs() < 0.01,
        "20 minutes in stage 2: {elapsed}"
    );
    assert!(matches!(two.window, StageWindow::Recorded { start, .. } if start == first));
    let entries = two
        .events
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                async_upload_control::stages::ReportEvent::StageEntered { .. }
            )
        })
        .count();
    assert_eq!(entries, 1, "stage 2 was entered once");
    std::fs::remove_file(&path).unwrap();
}
