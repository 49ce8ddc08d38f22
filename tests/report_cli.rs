//! `async-upload report` end to end on logs written by the JSONL sink:
//! tables, verdicts and exit codes (0 hold/advance, 3 review, 4 rollback,
//! 2 bad input), several files merged, CSV and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use async_upload::log::{Event, JsonlLog, StageEntered, StageEvent};
use async_upload::metrics::{ExecutionType, MetricsSink, UploadRecord};
use async_upload::stages::{Triggers, DEFAULT_STAGES};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("au-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn report(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_async-upload"))
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

/// Writes records through the sink: `n` of each (kind, success), spread
/// over `hours` ending now, durations in ms.
fn write_log(path: &Path, site: &str, hours: u64, calls: &[(ExecutionType, bool, u32, f64)]) {
    let log = JsonlLog::open(path).unwrap();
    let start = SystemTime::now() - Duration::from_secs(hours * 3600);
    let total: u32 = calls.iter().map(|c| c.2).sum();
    let step = Duration::from_secs(hours * 3600) / total.max(1);
    let mut ts = start;
    for &(et, success, n, ms) in calls {
        for _ in 0..n {
            let mut record = UploadRecord::new(site.to_owned(), et, success, ms, 1);
            record.ts = ts;
            record.bytes = Some(1024);
            if et == ExecutionType::SyncFallback || !success {
                record.error_type = Some("timeout".into());
            }
            log.record(&record);
            ts += step;
        }
    }
    assert!(log.flush());
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_healthy_young_stage_holds_with_exit_0() {
    let dir = dir("hold");
    let path = dir.join("a.jsonl");
    write_log(
        &path,
        "upload",
        2,
        &[
            (ExecutionType::Sync, true, 500, 10.0),
            (ExecutionType::Async, true, 50, 10.0),
        ],
    );
    let output = report(&[path.to_str().unwrap()]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("site upload (550 records)"), "{stdout}");
    assert!(stdout.contains("stage 1 (1% rollout): HOLD"), "{stdout}");
    assert!(
        stdout.contains("async vs sync (all sizes): p50"),
        "{stdout}"
    );
    assert!(stdout.contains("time in stage"), "{stdout}");
    // No stage event in this log: the report says what it assumed.
    assert!(
        stdout.contains("no stage event for site upload in the log: assumed stage 1"),
        "{stdout}"
    );
    assert!(stdout.contains("choose another with --stage N"), "{stdout}");
}

#[test]
fn a_stage_that_passed_advances_with_exit_0_and_writes_csv_and_json() {
    let dir = dir("advance");
    let path = dir.join("a.jsonl");
    write_log(
        &path,
        "upload",
        25,
        &[
            (ExecutionType::Sync, true, 500, 10.0),
            (ExecutionType::Async, true, 200, 10.0),
        ],
    );
    let csv = dir.join("out.csv");
    let output = report(&[path.to_str().unwrap(), "--csv", csv.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("ADVANCE"), "{}", text(&output));
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(
        rows.starts_with("ts,site,execution_type,success,duration_ms,attempts,error_type,bytes,call_id,sync_reason,ambiguous_attempts\n")
    );
    assert_eq!(rows.lines().count(), 701);

    let output = report(&[path.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["sites"][0]["evaluation"]["verdict"], "advance");
    assert_eq!(json["sites"][0]["summaries"][1]["execution_type"], "async");
    assert_eq!(json["sites"][0]["summaries"][1]["count"], 200);
}

#[test]
fn failures_in_the_recent_window_roll_back_with_exit_4() {
    let dir = dir("rollback");
    let path = dir.join("a.jsonl");
    write_log(
        &path,
        "upload",
        1,
        &[
            (ExecutionType::Sync, true, 100, 10.0),
            (ExecutionType::Async, true, 100, 10.0),
        ],
    );
    // Then a burst of failures, all in the last minutes.
    write_log(
        &path,
        "upload",
        0,
        &[(ExecutionType::Async, false, 30, 10.0)],
    );
    let output = report(&[path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(text(&output).contains("ROLLBACK"));
    assert!(
        text(&output).contains("trigger: success rate"),
        "{}",
        text(&output)
    );
}

#[test]
fn slow_async_calls_ask_for_review_with_exit_3() {
    let dir = dir("review");
    let path = dir.join("a.jsonl");
    write_log(
        &path,
        "upload",
        2,
        &[
            (ExecutionType::Sync, true, 200, 10.0),
            (ExecutionType::Async, true, 100, 15.0),
        ],
    );
    let output = report(&[path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("trigger: latency ratio"),
        "{}",
        text(&output)
    );
}

#[test]
fn files_of_several_instances_merge_and_site_and_stage_filter() {
    let dir = dir("merge");
    let a = dir.join("a.jsonl");
    let b = dir.join("b.jsonl");
    write_log(&a, "upload", 2, &[(ExecutionType::Async, true, 30, 10.0)]);
    write_log(&b, "upload", 2, &[(ExecutionType::Async, true, 40, 10.0)]);
    write_log(&b, "other", 2, &[(ExecutionType::Sync, true, 5, 10.0)]);
    let output = report(&[
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--site",
        "upload",
        "--stage",
        "2",
    ]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("site upload (70 records)"), "{stdout}");
    assert!(!stdout.contains("site other"), "{stdout}");
    assert!(stdout.contains("stage 2 (10% rollout)"), "{stdout}");
}

#[test]
fn bad_input_exits_2() {
    let dir = dir("bad");
    let missing = dir.join("missing.jsonl");
    assert_eq!(report(&[missing.to_str().unwrap()]).status.code(), Some(2));

    let garbage = dir.join("garbage.jsonl");
    std::fs::write(&garbage, "not json\n{\"kind\":1}\n").unwrap();
    let output = report(&[garbage.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1"));

    let good = dir.join("good.jsonl");
    write_log(&good, "upload", 1, &[(ExecutionType::Async, true, 5, 10.0)]);
    let output = report(&[good.to_str().unwrap(), "--site", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        report(&[good.to_str().unwrap(), "--stage", "9"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        report(&[good.to_str().unwrap(), "--stage", "zero"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(report(&[]).status.code(), Some(2));
    // A malformed line among good ones is a warning, not a failure.
    let mixed = dir.join("mixed.jsonl");
    let mut content = std::fs::read_to_string(&good).unwrap();
    content.push_str("{torn\n");
    std::fs::write(&mixed, content).unwrap();
    let output = report(&[mixed.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 6"));
}

/// The report streams: a malformed line deep in a file many parse chunks
/// long is named by its own line number, and a CSV that cannot be written
/// (a full disk) is bad output, exit 2, naming the file.
#[test]
fn a_long_log_streams_with_exact_line_numbers_and_a_full_disk_is_reported() {
    let dir = dir("stream");
    let long = dir.join("long.jsonl");
    let calls: Vec<_> = (0..4_000)
        .map(|i| (ExecutionType::Async, true, 1, 10.0 + f64::from(i % 7)))
        .collect();
    write_log(&long, "upload", 1, &calls);
    let mut lines: Vec<String> = std::fs::read_to_string(&long)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines.len() > 2_000, "{} lines", lines.len());
    lines.insert(2_000, "{torn".into());
    std::fs::write(&long, lines.join("\n") + "\n").unwrap();
    let output = report(&[long.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2001:"), "{stderr}");
    assert_eq!(stderr.matches("(skipped)").count(), 1, "{stderr}");

    let output = report(&[long.to_str().unwrap(), "--csv", "/dev/full"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/dev/full") && stderr.contains("No space left"),
        "{stderr}"
    );
}

/// A rollback the controller wrote stays the verdict, whatever the records
/// say afterwards, until a `rollback_cleared` event follows it.
#[test]
fn a_latched_rollback_from_the_controller_exits_4_until_cleared() {
    use std::sync::{Arc, Mutex};

    use async_upload::metrics::SiteSnapshot;
    use async_upload::stages::{Controller, HealthSource, ManualClock};

    const SITE: &str = "report_latched";
    let dir = dir("latched");
    let path = dir.join("a.jsonl");
    // Healthy traffic of its own would hold at stage 1 ...
    write_log(
        &path,
        SITE,
        2,
        &[
            (ExecutionType::Sync, true, 500, 10.0),
            (ExecutionType::Async, true, 50, 10.0),
        ],
    );
    // ... but the controller saw a panic in the async path and rolled back.
    /// The controller's counters, set by hand.
    struct Counters(Mutex<SiteSnapshot>);
    impl HealthSource for Counters {
        fn snapshot(&self, _site: &str) -> Option<SiteSnapshot> {
            Some(self.0.lock().unwrap().clone())
        }
    }
    let counters = Arc::new(Counters(Mutex::new(SiteSnapshot::empty(SITE))));
    let clock = ManualClock::new();
    let log = JsonlLog::open(&path).unwrap();
    let mut controller = Controller::builder(SITE)
        .clock(clock.clone())
        .memory(|| None)
        .health(Arc::clone(&counters))
        .log(log.clone())
        .start();
    let panicked = UploadRecord::new(SITE, ExecutionType::SyncFallback, true, 5.0, 1)
        .with_fault(async_upload::metrics::RuntimeFault::Panic);
    counters.0.lock().unwrap().record(&panicked);
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "rollback");
    assert!(log.flush());

    let output = report(&[path.to_str().unwrap(), "--site", SITE]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("ROLLBACK"), "{stdout}");
    assert!(
        stdout.contains("criteria and triggers as the controller recorded them"),
        "{stdout}"
    );

    controller.clear_rollback();
    assert!(log.flush());
    let output = report(&[path.to_str().unwrap(), "--site", SITE]);
    let stdout = text(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "once cleared the records decide:\n{stdout}"
    );
}

/// Writes `events` and `records` as the sink writes them, in time order.
fn write_lines(path: &Path, events: &[Event], records: &[UploadRecord]) {
    use std::io::Write as _;
    let mut lines: Vec<(SystemTime, String)> = events
        .iter()
        .cloned()
        .chain(records.iter().cloned().map(Event::Upload))
        .map(|event| {
            let mut value = serde_json::to_value(&event).unwrap();
            value["v"] = 1.into();
            (event.ts(), value.to_string())
        })
        .collect();
    lines.sort_by_key(|(ts, _)| *ts);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (_, line) in lines {
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

/// Calls over `hours` ending now: `sync` of log-uniform sizes (1 KiB – 4
/// MiB), `cohort` async ones `skew` × larger, the async path `slower` ×
/// the sync path per byte; sizes recorded or not.
fn sized_calls(
    hours: u64,
    sync: u32,
    cohort: u32,
    skew: f64,
    slower: f64,
    sized: bool,
) -> Vec<UploadRecord> {
    let mut rng = fastrand::Rng::with_seed(21);
    let start = SystemTime::now() - Duration::from_secs(hours * 3600);
    let span = Duration::from_secs(hours * 3600);
    let mut call = |et, skew: f64, slower: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = (1024.0 * 4096_f64.powf(rng.f64()) * skew) as u64;
        #[allow(clippy::cast_precision_loss)]
        let ms = (5.0 + bytes as f64 / 8192.0) * slower * (0.8 + 0.4 * rng.f64());
        let mut record = UploadRecord::new("upload", et, true, ms, 1);
        record.bytes = sized.then_some(bytes);
        record.ts = start + span.mul_f64(rng.f64());
        record
    };
    let mut records: Vec<UploadRecord> = (0..sync)
        .map(|_| call(ExecutionType::Sync, 1.0, 1.0))
        .collect();
    records.extend((0..cohort).map(|_| call(ExecutionType::Async, skew, slower)));
    records.sort_by_key(|r| r.ts);
    records
}

/// Issue 21's first target: a 1 % cohort whose median size is 1.7 × the
/// rest's, as fast per byte: not held in review on latency.
#[test]
fn a_size_skewed_1_percent_cohort_is_not_reviewed_on_latency() {
    let dir = dir("skewed");
    let path = dir.join("a.jsonl");
    write_lines(&path, &[], &sized_calls(25, 100_000, 1000, 1.7, 1.0, true));
    let output = report(&[path.to_str().unwrap()]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ADVANCE"), "{stdout}");
    assert!(stdout.contains("at equal size ("), "{stdout}");
    // Young, the same cohort holds (it used to be a latency review).
    let young = dir.join("young.jsonl");
    write_lines(&young, &[], &sized_calls(2, 8000, 100, 1.7, 1.0, true));
    let output = report(&[young.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("HOLD"), "{}", text(&output));
}

/// ... a new path 1.5 × slower at every size: review, exit 3.
#[test]
fn a_new_path_slower_at_every_size_is_reviewed_with_exit_3() {
    let dir = dir("slower");
    let path = dir.join("a.jsonl");
    write_lines(&path, &[], &sized_calls(25, 100_000, 1000, 1.0, 1.5, true));
    let output = report(&[path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        text(&output).contains("trigger: latency"),
        "{}",
        text(&output)
    );
}

/// ... sizes unrecorded: today's comparison of all calls, so the skewed
/// cohort reads as slower and is reviewed, as before.
#[test]
fn with_sizes_unrecorded_the_report_compares_as_before() {
    let dir = dir("unsized");
    let path = dir.join("a.jsonl");
    write_lines(&path, &[], &sized_calls(25, 100_000, 1000, 1.7, 1.0, false));
    let output = report(&[path.to_str().unwrap()]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("one size group"), "{stdout}");
}

/// A stage-3 window entered `hours` ago, with `calls` of each (path,
/// success) every minute and, in its last `bad_minutes`, the ones of `bad`.
fn stage_3_log(
    path: &Path,
    hours: u64,
    calls: &[(ExecutionType, bool, u32)],
    bad_minutes: u32,
    bad: &[(ExecutionType, bool, u32)],
) -> SystemTime {
    let end = SystemTime::now();
    let start = end - Duration::from_secs(hours * 3600);
    let entered = Event::Stage(StageEvent::Entered(StageEntered::new(
        start,
        "upload",
        DEFAULT_STAGES[2].clone(),
        Triggers::DEFAULT,
    )));
    let minutes = u32::try_from(hours * 60).unwrap();
    let failing = end - Duration::from_secs(u64::from(bad_minutes) * 60);
    let mut records = Vec::new();
    for minute in 0..minutes {
        let at = start + Duration::from_secs(60) * minute;
        let mix = if at >= failing { bad } else { calls };
        for &(et, success, n) in mix {
            for i in 0..n {
                let mut record = UploadRecord::new("upload", et, success, 10.0, 1);
                record.ts = at + Duration::from_secs(60) * i / n;
                if !success || et == ExecutionType::SyncFallback {
                    record.error_type = Some("http_503".into());
                }
                records.push(record);
            }
        }
    }
    write_lines(path, &[entered], &records);
    failing
}

/// Issue 22: 2 hours healthy, then every async call failing for the last
/// 3 minutes (the sync path perfect): the report rolls back, exit 4, and
/// says when the controller would have, though the log holds no rollback.
#[test]
fn a_stage_whose_last_minutes_fail_exits_4_with_the_moment_it_would_have_rolled_back() {
    let dir = dir("issue22");
    let path = dir.join("a.jsonl");
    let healthy = [
        (ExecutionType::Async, true, 30),
        (ExecutionType::Sync, true, 30),
    ];
    let failing = [
        (ExecutionType::Async, false, 60),
        (ExecutionType::Sync, true, 30),
    ];
    let from = stage_3_log(&path, 2, &healthy, 3, &failing);
    let output = report(&[path.to_str().unwrap()]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("would have rolled back at"), "{stdout}");
    let output = report(&[path.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let at = json["sites"][0]["rollback"]["at"].as_str().unwrap();
    let at = humantime::parse_rfc3339(at).unwrap();
    assert!(
        at >= from && at <= from + Duration::from_secs(60),
        "{at:?} vs {from:?}"
    );
    assert_eq!(json["sites"][0]["rollback"]["logged"], false);
}

/// Both paths failing together (a shared backend down): hold, with the
/// reason; the new path failing alone: rollback.
#[test]
fn both_paths_failing_together_hold_and_the_new_path_alone_rolls_back() {
    let dir = dir("shared");
    let healthy = [
        (ExecutionType::Async, true, 60),
        (ExecutionType::Sync, true, 60),
    ];
    let shared = [
        (ExecutionType::SyncFallback, false, 60),
        (ExecutionType::Sync, false, 60),
    ];
    let path = dir.join("shared.jsonl");
    stage_3_log(&path, 2, &healthy, 2, &shared);
    let output = report(&[path.to_str().unwrap()]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("HOLD"), "{stdout}");
    assert!(
        stdout.contains("missing: the sync path fails too (shared backend?)"),
        "{stdout}"
    );

    let alone = [
        (ExecutionType::SyncFallback, false, 60),
        (ExecutionType::Sync, true, 60),
    ];
    let path = dir.join("alone.jsonl");
    stage_3_log(&path, 2, &healthy, 2, &alone);
    let output = report(&[path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(
        text(&output).contains("trigger: success rate"),
        "{}",
        text(&output)
    );
}

/// A first-release log: an `entered` line without `criteria` (a field added
/// later) is read, and its stage judged with the built-in criteria.
#[test]
fn a_first_release_entered_line_without_criteria_is_read() {
    let dir = dir("v1");
    let path = dir.join("a.jsonl");
    write_log(
        &path,
        "upload",
        1,
        &[(ExecutionType::Async, true, 50, 10.0)],
    );
    let start = humantime::format_rfc3339_micros(SystemTime::now() - Duration::from_secs(7200));
    let mut text_log = format!(
        "{{\"kind\":\"stage\",\"v\":1,\"ts\":\"{start}\",\"site\":\"upload\",\"event\":\"entered\",\"stage\":2,\"rollout\":10.0}}\n"
    );
    text_log.push_str(&std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, text_log).unwrap();
    let output = report(&[path.to_str().unwrap()]);
    let stdout = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        String::from_utf8_lossy(&output.stderr).is_empty(),
        "no line skipped"
    );
    assert!(stdout.contains("stage 2 (10% rollout)"), "{stdout}");
    assert!(
        stdout.contains("criteria not recorded by this log's version"),
        "{stdout}"
    );
    assert!(
        stdout.contains(">= 48.0h"),
        "the built-in stage 2: {stdout}"
    );
}
