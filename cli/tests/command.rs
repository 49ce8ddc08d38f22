//! The installed command (`cargo install async-upload-cli`), run as an
//! operator runs it: the report's verdict is its exit status, its JSON is
//! the records' counts, and bad input is exit 2 naming what was wrong.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use async_upload_control::log::JsonlLog;
use async_upload_runtime::metrics::{ExecutionType, MetricsSink, UploadRecord};

fn command(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_async-upload"))
        .args(args)
        .output()
        .unwrap()
}

/// `sync` and `async` successes of `ms` each, one every `step`, ending now.
fn write_log(path: &Path, sync: u32, asynchronous: u32, step: Duration) {
    let log = JsonlLog::open(path).unwrap();
    let mut ts = SystemTime::now() - step * (sync + asynchronous);
    let kinds = std::iter::repeat_n(ExecutionType::Sync, sync as usize).chain(std::iter::repeat_n(
        ExecutionType::Async,
        asynchronous as usize,
    ));
    for kind in kinds {
        let mut record = UploadRecord::new("upload".to_owned(), kind, true, 10.0, 1);
        record.ts = ts;
        log.record(&record);
        ts += step;
    }
    assert!(log.flush());
}

#[test]
fn a_passed_stage_advances_with_exit_0_and_its_json_counts_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uploads.jsonl");
    // 25 hours of healthy calls: stage 1's time and sample are met.
    write_log(&path, 500, 200, Duration::from_secs(25 * 3600 / 700));
    let path = path.to_str().unwrap();

    let output = command(&["report", path]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("ADVANCE"), "{stdout}");

    let output = command(&["report", path, "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let site = &json["sites"][0];
    assert_eq!(site["site"], "upload");
    assert_eq!(site["evaluation"]["verdict"], "advance");
    let counts: Vec<(&str, u64)> = site["summaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["execution_type"].as_str().unwrap(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(counts.contains(&("sync", 500)), "{counts:?}");
    assert!(counts.contains(&("async", 200)), "{counts:?}");
}

#[test]
fn a_missing_log_is_exit_2_naming_the_file() {
    let output = command(&["report", "/nonexistent/uploads.jsonl"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/uploads.jsonl"), "{stderr}");
}

#[test]
fn an_unknown_argument_is_exit_2() {
    let output = command(&["report", "--no-such-flag", "a.jsonl"]);
    assert_eq!(output.status.code(), Some(2));
}

/// Without the `redis` feature the command has no `fleet`: clap refuses
/// it as bad input rather than the binary pretending to reach Redis.
#[cfg(not(feature = "redis"))]
#[test]
fn without_redis_there_is_no_fleet_command() {
    let output = command(&["fleet", "status", "--site", "upload"]);
    assert_eq!(output.status.code(), Some(2));
}

/// With `redis`, an unreachable Redis is exit 2 too (the fleet tests of
/// the `async-upload` crate drive a real one).
#[cfg(feature = "redis")]
#[test]
fn with_redis_an_unreachable_store_is_exit_2() {
    let output = command(&[
        "fleet",
        "status",
        "--redis",
        "redis://127.0.0.1:1/",
        "--site",
        "upload",
    ]);
    assert_eq!(output.status.code(), Some(2));
}
