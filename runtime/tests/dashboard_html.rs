//! The HTML report's structure, without a browser: every chart is there for
//! every site, the tables show the numbers the report's JSON shows, and the
//! page fetches nothing.
#![cfg(feature = "html")]

#[path = "support/synthetic.rs"]
mod synthetic;

use std::sync::OnceLock;
use std::time::Duration;

use async_upload_runtime::dashboard::Dashboard;
use async_upload_runtime::log::{Event, Log, Reader};
use async_upload_runtime::stages::{Report, ReportOptions};
use synthetic::Scenario;

/// A two-day rollout at 20 calls per minute, read back as the report reads it.
fn scenario_log() -> (Scenario, Vec<u8>) {
    let scenario = Scenario {
        span: Duration::from_secs(2 * 24 * 3600),
        calls_per_minute: 20,
        ..Scenario::week("upload")
    };
    let mut bytes = Vec::new();
    synthetic::write(&mut bytes, &scenario).unwrap();
    (scenario, bytes)
}

/// The scenario's report and page, made once for every test.
fn rendered() -> &'static (Scenario, Report, String) {
    static PAGE: OnceLock<(Scenario, Report, String)> = OnceLock::new();
    PAGE.get_or_init(|| {
        let (scenario, bytes) = scenario_log();
        let (report, html) = render(&bytes);
        (scenario, report, html)
    })
}

fn render(bytes: &[u8]) -> (Report, String) {
    let mut log = Log::default();
    let mut dashboard = Dashboard::new(None);
    for entry in Reader::new(bytes) {
        match entry.unwrap() {
            Event::Upload(record) => {
                dashboard.record(&record);
                log.uploads.push(record);
            }
            event => {
                dashboard.event(&event);
                log.events.push(event);
            }
        }
    }
    let report = Report::build(&log, &ReportOptions::default()).unwrap();
    let html = dashboard.render(&report).unwrap();
    (report, html)
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?}"));
    &text[from..from + len]
}

#[test]
fn every_chart_is_drawn_for_the_site() {
    let (_, _, html) = rendered();
    for chart in [
        "latency",
        "calls",
        "success",
        "latency-over-time",
        "transfer",
    ] {
        let figure = between(html, &format!("data-chart=\"{chart}\">"), "</figure>");
        assert!(figure.starts_with("<svg"), "{chart}: {}", &figure[..40]);
        // Each chart draws data: a polyline of a series or a bar.
        assert!(
            figure.contains("<polyline") || figure.contains("<rect"),
            "{chart} draws nothing"
        );
    }
    // The series of each path, in its colour.
    let calls = between(html, "data-chart=\"calls\">", "</figure>");
    for color in ["#1F77B4", "#E66101", "#9467BD"] {
        assert!(calls.to_uppercase().contains(color), "no {color} series");
    }
}

#[test]
fn the_page_fetches_nothing() {
    let (_, _, html) = rendered();
    for needle in ["<script", " src=", "href=", "url(", "@import", "<link"] {
        assert!(!html.contains(needle), "the page contains {needle:?}");
    }
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
}

#[test]
fn the_tables_show_what_the_json_report_shows() {
    let (_, report, html) = rendered();
    let json = serde_json::to_value(report).unwrap();
    let site = &json["sites"][0];
    let verdict = site["evaluation"]["verdict"].as_str().unwrap();
    assert_eq!(between(html, "data-verdict=\"", "\""), verdict);
    for summary in site["summaries"].as_array().unwrap() {
        let path = summary["execution_type"].as_str().unwrap();
        let row = between(html, &format!("<tr data-path=\"{path}\">"), "</tr>");
        let cells: Vec<&str> = row
            .split("data-value=\"")
            .skip(1)
            .map(|c| &c[..c.find('"').unwrap()])
            .collect();
        let want: Vec<String> = ["count", "p50_ms", "p95_ms", "p99_ms", "bytes"]
            .iter()
            .filter(|k| !summary[**k].is_null())
            .map(|k| summary[*k].to_string())
            .collect();
        assert_eq!(cells, want, "{path}");
    }
    for check in site["evaluation"]["checks"].as_array().unwrap() {
        let criterion = check["criterion"].as_str().unwrap();
        let row = between(html, &format!("data-criterion=\"{criterion}\">"), "</tr>");
        let measured = between(row, "data-value=\"", "\"");
        match check["measured"].as_f64() {
            Some(value) => assert_eq!(measured.parse::<f64>().unwrap(), value, "{criterion}"),
            None => assert_eq!(measured, "", "{criterion}"),
        }
    }
}

#[test]
fn the_controller_events_are_marked_where_they_happened() {
    let (scenario, _, html) = rendered();
    let t = scenario.timeline();
    let events = between(html, "<table class=\"markers\">", "</table>");
    for (at, what) in [
        (t.stage2, "stage 2 entered"),
        (t.stage3, "stage 3 entered"),
        (t.rollback, "ROLLBACK fired"),
        (t.cleared, "rollback cleared"),
    ] {
        let row = format!(
            "<tr><td>{}</td><td>{what}</td></tr>",
            humantime::format_rfc3339_seconds(at)
        );
        assert!(events.contains(&row), "no {row} in {events}");
    }
    for chart in ["calls", "success", "latency-over-time"] {
        let figure = between(html, &format!("data-chart=\"{chart}\">"), "</figure>");
        for label in ["stage 3", "ROLLBACK", "cleared"] {
            assert!(figure.contains(label), "{chart} has no {label} marker");
        }
    }
}
