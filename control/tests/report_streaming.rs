//! The report in one pass: what the streaming builder counts in each stage
//! window is what a filter over the whole log in memory counts, and a
//! fleet's log split over several instance files reports exactly as the
//! one file does.

use async_upload_test_support::synthetic;

use std::time::Duration;

use async_upload_control::log::{Event, Log, Merged, StageEntered, StageEvent};
use async_upload_control::stages::{Report, ReportBuilder, ReportOptions, StageWindow};
use async_upload_runtime::metrics::ExecutionType;
use synthetic::Scenario;

/// A one-day rollout at 30 calls per minute: stages 2 and 3, a rollback
/// and its clearing (a second window of stage 3).
fn scenario_bytes() -> Vec<u8> {
    let scenario = Scenario {
        span: Duration::from_secs(24 * 3600),
        calls_per_minute: 30,
        ..Scenario::week("upload")
    };
    let mut bytes = Vec::new();
    synthetic::write(&mut bytes, &scenario).unwrap();
    bytes
}

/// The report of `sources` read as one, in a single pass.
fn streamed(sources: &[&[u8]], stage: Option<u32>) -> Report {
    let mut merged = Merged::new(sources.iter().copied());
    let mut builder = ReportBuilder::new(ReportOptions {
        stage,
        ..ReportOptions::default()
    });
    while let Some((_, line)) = merged.next_event().unwrap() {
        match line.unwrap() {
            Event::Upload(record) => builder.record(&record),
            event => builder.event(&event),
        }
    }
    builder.finish().unwrap()
}

fn starts(log: &Log) -> Vec<&StageEntered> {
    log.events
        .iter()
        .filter_map(|event| match event {
            Event::Stage(StageEvent::Entered(e) | StageEvent::RollbackCleared(e)) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn each_stage_window_counts_exactly_the_records_of_its_time() {
    let bytes = scenario_bytes();
    let log = Log::read(bytes.as_slice()).unwrap();
    let starts = starts(&log);
    assert!(starts.len() >= 3, "the scenario enters stages: {starts:?}");
    for (at, entered) in starts.iter().enumerate() {
        // The report judges the last window of a stage: skip the earlier ones.
        if starts[at + 1..]
            .iter()
            .any(|later| later.stage == entered.stage)
        {
            continue;
        }
        let until = starts.get(at + 1).map(|next| next.ts);
        let in_window = |ts| ts >= entered.ts && until.is_none_or(|until| ts < until);
        let count = |kind: Option<ExecutionType>| {
            log.uploads
                .iter()
                .filter(|r| in_window(r.ts) && kind.is_none_or(|k| r.execution_type == k))
                .count()
        };
        let report = streamed(&[&bytes], Some(entered.stage));
        let site = &report.sites[0];
        assert_eq!(site.records, count(None), "stage {}", entered.stage);
        for summary in &site.summaries {
            assert_eq!(
                summary.count,
                count(Some(summary.execution_type)) as u64,
                "stage {} {:?}",
                entered.stage,
                summary.execution_type
            );
        }
        assert!(
            matches!(site.window, StageWindow::Recorded { start, until: u, .. } if start == entered.ts && u == until),
            "{:?}",
            site.window
        );
        // The in-memory report is the same replay.
        let in_memory = Report::build(
            &log,
            &ReportOptions {
                stage: Some(entered.stage),
                ..ReportOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&in_memory).unwrap(),
            serde_json::to_value(&report).unwrap()
        );
    }
}

#[test]
fn a_log_split_over_instances_reports_as_the_one_file() {
    let bytes = scenario_bytes();
    // Three instances: records dealt round-robin, the controller's events in
    // the first (the leader's) file.
    let mut files = [Vec::new(), Vec::new(), Vec::new()];
    let mut next = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let instance = if line.starts_with(b"{\"kind\":\"upload\"") {
            next = (next + 1) % files.len();
            next
        } else {
            0
        };
        files[instance].extend_from_slice(line);
    }
    let split: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    for stage in [None, Some(2), Some(3)] {
        let one = streamed(&[&bytes], stage);
        let three = streamed(&split, stage);
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            serde_json::to_value(&three).unwrap(),
            "stage {stage:?}"
        );
    }
}
