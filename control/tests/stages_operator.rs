//! Operator actions in the record: every change an operator applies
//! through the configuration handle is one `operator` line (what, old →
//! new, by whom); the controller's own changes are not (they have their
//! own events); the report and the dashboard show them, once however many
//! instances' files hold them.
#![cfg(feature = "report")]

use std::time::Duration;

use async_upload::config::handle;
use async_upload_control::log::{self, read_file, Event, Log, Merged};
use async_upload_control::stages::{
    Controller, ManualClock, Report, ReportBuilder, ReportEvent, ReportOptions,
};
use async_upload_dashboard::Dashboard;
use async_upload_runtime::config::SiteOverrides;
use async_upload_runtime::metrics::{self, ExecutionType, MetricsSink, RuntimeFault, UploadRecord};

/// `(site, setting, old, new, by)` of a log's `operator` lines.
type Line = (
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
);

fn operator_lines(log: &Log) -> Vec<Line> {
    log.events
        .iter()
        .filter_map(|event| match event {
            Event::Operator(e) => Some((
                e.site.clone(),
                e.setting.clone(),
                e.old.clone(),
                e.new.clone(),
                e.by.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

#[test]
fn operator_changes_are_logged_once_each_and_the_controllers_are_not() {
    let dir = std::env::temp_dir().join(format!("au-operator-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.jsonl");
    let _ = std::fs::remove_file(&path);
    // The log, as an operator sets it: the first change it records.
    handle()
        .update(|c| c.log_path = Some(path.clone()))
        .unwrap();

    // An operator, through the handle.
    let site = "op_site";
    let overrides = SiteOverrides {
        rollout: Some(10.0),
        ..SiteOverrides::default()
    };
    handle().set_site(site, overrides.clone()).unwrap();
    handle().set_site(site, overrides).unwrap(); // no change: no line
    handle().roll_back(site, "error spike");
    handle().clear_rollback(site);
    handle().update(|c| c.max_retries = 3).unwrap();

    // The controller, through its default actuator: its own events only.
    let controlled = "op_controlled";
    let clock = ManualClock::new();
    let mut controller = Controller::builder(controlled)
        .clock(clock.clone())
        .memory(|| None)
        .start();
    metrics::global().site(controlled).record(
        &UploadRecord::new(controlled, ExecutionType::SyncFallback, true, 5.0, 1)
            .with_fault(RuntimeFault::Panic),
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(controller.tick().verdict.name(), "rollback");
    assert!(handle().rollback_reason(controlled).is_some());
    // A call of the site, for the report to have its records.
    log::global()
        .unwrap()
        .record(&UploadRecord::new(site, ExecutionType::Sync, true, 5.0, 0));
    assert!(log::flush());

    let read = read_file(&path).unwrap();
    assert_eq!(read.errors, []);
    assert_eq!(
        operator_lines(&read),
        [
            (
                None,
                "log_path".into(),
                None,
                some(&path.display().to_string()),
                "operator".into()
            ),
            (
                some(site),
                "rollout".into(),
                None,
                some("10"),
                "operator".into()
            ),
            (
                some(site),
                "rollback".into(),
                None,
                some("error spike"),
                "operator".into()
            ),
            (
                some(site),
                "rollback".into(),
                some("error spike"),
                None,
                "operator".into()
            ),
            (
                None,
                "max_retries".into(),
                some("2"),
                some("3"),
                "operator".into()
            ),
        ]
    );
    assert!(
        read.events
            .iter()
            .any(|e| matches!(e, Event::Rollback(r) if r.site == controlled)),
        "the controller's rollback has its own event"
    );

    // Three instances' copies of the file: each change shown once.
    let bytes = std::fs::read(&path).unwrap();
    let mut merged = Merged::new([&bytes[..], &bytes[..], &bytes[..]]);
    let mut builder = ReportBuilder::new(ReportOptions {
        site: Some(site.into()),
        ..ReportOptions::default()
    });
    let mut dashboard = Dashboard::new(None);
    while let Some((_, line)) = merged.next_event().unwrap() {
        let event = line.unwrap();
        match &event {
            Event::Upload(record) => {
                builder.record(record);
                dashboard.record(record);
            }
            event => {
                builder.event(event);
                dashboard.event(event);
            }
        }
    }
    let report: Report = builder.finish().unwrap();
    let events: Vec<String> = report.sites[0]
        .events
        .events
        .iter()
        .filter(|e| matches!(e, ReportEvent::Operator(_)))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        events,
        [
            format!("global log_path unset → {} (by operator)", path.display()).as_str(),
            "rollout unset → 10 (by operator)",
            "rollback unset → error spike (by operator)",
            "rollback error spike → unset (by operator)",
            "global max_retries 2 → 3 (by operator)",
        ]
    );
    assert!(report.render().contains("rollout unset → 10 (by operator)"));
    let html = dashboard.render(&report).unwrap();
    assert_eq!(
        html.matches("operator: global max_retries 2 → 3").count(),
        1,
        "once, not once per file"
    );
    assert!(html.contains("operator: rollout unset → 10 (by operator)"));
    handle().update(|c| c.log_path = None).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
