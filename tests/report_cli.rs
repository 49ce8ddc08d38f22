//! `async-upload report` end to end on logs written by the JSONL sink:
//! tables, verdicts and exit codes (0 hold/advance, 3 review, 4 rollback,
//! 2 bad input), several files merged, CSV and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use async_upload::log::JsonlLog;
use async_upload::metrics::{ExecutionType, MetricsSink, UploadRecord};

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
    assert!(stdout.contains("async vs sync: p50"), "{stdout}");
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
