//! The HTML report's structure, without a browser: every chart is there for
//! every site, the tables show the numbers the report's JSON shows, and the
//! page fetches nothing.

use async_upload_test_support::synthetic;

use std::sync::OnceLock;
use std::time::Duration;

use async_upload_control::log::{Event, Log, Reader};
use async_upload_control::stages::{Report, ReportOptions};
use async_upload_dashboard::Dashboard;
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
        let want: Vec<String> = ["count", "p50_ms", "p95_ms", "p99_ms"]
            .iter()
            .filter(|k| !summary[**k].is_null())
            .map(|k| summary[*k].to_string())
            .collect();
        assert_eq!(cells[..cells.len() - 1], want, "{path}");
        // Bytes: of the window's successful calls only (a failed call moved
        // no file), so at most the summary's, which counts every call.
        let bytes: u64 = cells.last().unwrap().parse().unwrap();
        assert_eq!(bytes, successful_bytes(path), "{path}");
        assert!(bytes <= summary["bytes"].as_u64().unwrap());
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

/// The bytes of the successful `path` calls in the report's window.
fn successful_bytes(path: &str) -> u64 {
    let (_, report, _) = rendered();
    let (_, bytes) = scenario_log();
    let json = serde_json::to_value(report).unwrap();
    let start = json["sites"][0]["window"]["start"].as_str().unwrap();
    let start = humantime::parse_rfc3339(start).unwrap();
    Log::read(bytes.as_slice())
        .unwrap()
        .uploads
        .iter()
        .filter(|r| r.ts >= start && r.success && r.execution_type.as_str() == path)
        .filter_map(|r| r.bytes)
        .sum()
}

/// The `<text>` elements of an SVG: `(x, y, text)`.
fn texts(svg: &str) -> Vec<(f64, f64, String)> {
    svg.split("<text")
        .skip(1)
        .map(|element| {
            let attribute = |name: &str| {
                between(element, &format!(" {name}=\""), "\"")
                    .parse::<f64>()
                    .unwrap()
            };
            let text = between(element, ">", "</text>").trim().to_owned();
            (attribute("x"), attribute("y"), text)
        })
        .collect()
}

/// The numbers a marker label covers: `3` or `3–5`.
fn covered(label: &str) -> Option<std::ops::RangeInclusive<usize>> {
    let (first, last) = label.split_once('–').unwrap_or((label, label));
    Some(first.parse().ok()?..=last.parse().ok()?)
}

#[test]
fn the_controller_events_are_marked_where_they_happened() {
    let (scenario, _, html) = rendered();
    let t = scenario.timeline();
    let events = between(html, "<table class=\"markers\">", "</table>");
    let mut numbers = Vec::new();
    for (at, what) in [
        (t.stage2, "stage 2 entered"),
        (t.stage3, "stage 3 entered"),
        (t.rollback, "ROLLBACK fired"),
        (t.cleared, "rollback cleared"),
    ] {
        let cells = format!(
            "<td>{}</td><td>{what}</td></tr>",
            humantime::format_rfc3339_millis(at)
        );
        let at = events
            .find(&cells)
            .unwrap_or_else(|| panic!("no {cells} in {events}"));
        let row = &events[events[..at].rfind("<tr>").unwrap()..at];
        numbers.push(between(row, "<td>", "</td>").parse::<usize>().unwrap());
    }
    for chart in ["calls", "success", "latency-over-time"] {
        let figure = between(html, &format!("data-chart=\"{chart}\">"), "</figure>");
        let labels: Vec<_> = texts(figure)
            .into_iter()
            .filter_map(|t| covered(&t.2))
            .collect();
        for n in &numbers {
            assert!(
                labels.iter().any(|range| range.contains(n)),
                "{chart} has no marker {n}: {labels:?}"
            );
        }
    }
}

/// Time axis labels, marker labels and y labels of every time chart: no
/// label repeats on an axis, no two marker labels overlap.
#[test]
fn time_charts_have_unique_ticks_and_markers_that_never_overlap() {
    let (_, _, html) = rendered();
    for chart in ["calls", "success", "latency-over-time"] {
        let figure = between(html, &format!("data-chart=\"{chart}\">"), "</figure>");
        let texts = texts(figure);
        // The x labels sit on one line below the plot, the y labels in a column.
        let bottom = texts.iter().map(|t| t.1).fold(0.0, f64::max);
        let x_labels: Vec<&str> = texts
            .iter()
            .filter(|t| (t.1 - bottom).abs() < 0.5 && t.2.contains(':'))
            .map(|t| t.2.as_str())
            .collect();
        assert!(x_labels.len() >= 3, "{chart}: {x_labels:?}");
        let mut unique = x_labels.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), x_labels.len(), "{chart}: {x_labels:?}");
        let markers: Vec<&(f64, f64, String)> =
            texts.iter().filter(|t| covered(&t.2).is_some()).collect();
        for (i, a) in markers.iter().enumerate() {
            for b in &markers[i + 1..] {
                let width = |t: &(f64, f64, String)| 7.0 * t.2.chars().count() as f64;
                let same_row = (a.1 - b.1).abs() < 11.0;
                let apart = a.0 + width(a) <= b.0 || b.0 + width(b) <= a.0;
                assert!(!same_row || apart, "{chart}: {a:?} overlaps {b:?}");
            }
        }
    }
}

#[test]
fn the_bar_charts_have_one_slot_per_path() {
    let (_, _, html) = rendered();
    let figure = between(html, "data-chart=\"transfer\">", "</figure>");
    let labels: Vec<String> = texts(figure)
        .into_iter()
        .map(|t| t.2)
        .filter(|t| ["sync", "async", "sync_fallback"].contains(&t.as_str()))
        .collect();
    assert_eq!(labels, ["sync", "async", "sync_fallback"].repeat(2));
    // Three bars per chart filling the plot: the gap after the last bar
    // is its margin, not a whole empty slot.
    let number = |element: &str, name: &str| {
        between(element, &format!(" {name}=\""), "\"")
            .parse::<f64>()
            .unwrap()
    };
    for half in [0.0, 480.0] {
        let inside = |x: f64| x >= half && x < half + 480.0;
        let grid: Vec<f64> = figure
            .split("<line")
            .skip(1)
            .filter(|l| l.contains("stroke=\"#E1E1E1\""))
            .flat_map(|l| [number(l, "x1"), number(l, "x2")])
            .filter(|&x| inside(x))
            .collect();
        let right = grid.iter().copied().fold(f64::MIN, f64::max);
        let bars: Vec<(f64, f64)> = figure
            .split("<rect")
            .skip(1)
            .filter(|r| {
                ["#1F77B4", "#E66101", "#9467BD"]
                    .iter()
                    .any(|c| r.contains(c))
            })
            .map(|r| (number(r, "x"), number(r, "width")))
            .filter(|&(x, _)| inside(x))
            .collect();
        assert_eq!(bars.len(), 3, "{bars:?}");
        let slot = bars[1].0 - bars[0].0;
        let (last_x, last_w) = bars[2];
        assert!(
            right - (last_x + last_w) < slot / 2.0,
            "an empty slot: {bars:?} in a plot ending at {right}"
        );
    }
}
