//! The page around the charts: banner, tables, layout and style, all inline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::charts::{self, RateLines};
use super::error::HtmlError;
use super::marker::{Marker, MarkerKind, VerdictKind};
use super::trace::SiteTrace;
use async_upload_control::stages::{Check, Criterion, Period, Report, SiteReport, Status, Verdict};
use async_upload_runtime::metrics::ExecutionType;

/// Error names listed per path.
const TOP_ERRORS: usize = 5;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#222;background:#fafafa}
h1{font-size:22px;margin:4px 0}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
.banner{padding:10px 14px;border-radius:6px;font-size:16px;margin:8px 0;color:#fff}
.verdict-advance{background:#2b8a3e}.verdict-hold{background:#5c7cfa}
.verdict-review{background:#e67700}.verdict-rollback{background:#c92a2a}
.banner .reason{display:block;font-size:13px;margin-top:4px;opacity:.95}
table{border-collapse:collapse;margin:6px 0;font-size:13px;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
.pass{color:#2b8a3e}.fail{color:#c92a2a;font-weight:bold}.short,.pending{color:#666}
figure.chart{margin:10px 0;background:#fff;border:1px solid #e5e5e5;width:fit-content}
figure.chart svg{display:block}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
.note{font-size:13px;color:#555;margin:4px 0}
body:has(figure:target)>header,body:has(figure:target) section>:not(figure:target){display:none}
body:has(figure:target){padding:0;background:#fff}body:has(figure:target) figure:target{margin:0;border:0}
";

/// The whole page.
pub(super) fn render(
    sites: &BTreeMap<String, SiteTrace>,
    global: &[Marker],
    report: &Report,
) -> Result<String, HtmlError> {
    let mut out = String::with_capacity(256 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
    out.push_str("<title>async-upload rollout report</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body>\n<header><h1>async-upload rollout report</h1>");
    let _ = writeln!(
        out,
        "<p class=\"note\">{} site(s); worst verdict's exit status {}. Times are UTC. \
         Colours: {} sync, {} async, {} sync_fallback.</p></header>",
        report.sites.len(),
        report.exit_code,
        swatch(ExecutionType::Sync),
        swatch(ExecutionType::Async),
        swatch(ExecutionType::SyncFallback),
    );
    // A site the dashboard did not see (no record reached it) draws empty charts.
    let empty = SiteTrace::new("");
    for (i, site) in report.sites.iter().enumerate() {
        let trace = sites.get(&site.site).unwrap_or(&empty);
        // The global changes, and the replay's rollback where the log has none.
        let mut extra = global.to_vec();
        if let Some(finding) = site.rollback.filter(|f| !f.logged) {
            extra.push(Marker::new(finding.at, MarkerKind::WouldRollBack));
        }
        section(&mut out, i, site, trace, &trace.sorted_markers(&extra))
            .map_err(|e| HtmlError::new(format!("site {:?}: {e}", site.site)))?;
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

fn swatch(et: ExecutionType) -> String {
    let c = charts::color(et);
    format!(
        "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>",
        c.0, c.1, c.2
    )
}

/// `text` with HTML's special characters escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn verdict_kind(verdict: &Verdict) -> VerdictKind {
    match verdict {
        Verdict::Advance => VerdictKind::Advance,
        Verdict::Hold { .. } => VerdictKind::Hold,
        Verdict::Review { .. } => VerdictKind::Review,
        Verdict::Rollback { .. } => VerdictKind::Rollback,
    }
}

/// Why the verdict is what it is, in one line.
fn reason(site: &SiteReport) -> String {
    let text = match &site.evaluation.verdict {
        Verdict::Advance => "every stage criterion is met".to_owned(),
        Verdict::Hold { missing } => {
            let parts: Vec<String> = missing.iter().map(ToString::to_string).collect();
            format!("not enough data yet: {}", parts.join("; "))
        }
        Verdict::Review { triggers } | Verdict::Rollback { triggers } => triggers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    };
    match site.rollback {
        Some(finding) if finding.logged => {
            format!("{text} (a rollback latched in the log, not cleared since)")
        }
        Some(finding) => format!(
            "{text} (the controller would have rolled back at {}: the log holds no rollback event)",
            humantime::format_rfc3339_seconds(finding.at)
        ),
        None => text,
    }
}

fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

/// A criterion's value in its unit.
fn show(criterion: Criterion, value: f64) -> String {
    match criterion {
        Criterion::SuccessRate | Criterion::ErrorRate => pct(value),
        Criterion::LatencyP50 | Criterion::LatencyP95 => format!("{value:.3}x"),
        Criterion::Duration => Period(Duration::from_secs_f64(value.max(0.0))).to_string(),
        Criterion::Samples => format!("{value:.0}"),
    }
}

fn status(check: &Check) -> (&'static str, &'static str) {
    match check.status {
        Status::Pass => ("pass", "pass"),
        Status::Fail if matches!(check.criterion, Criterion::Duration | Criterion::Samples) => {
            ("short", "short")
        }
        Status::Fail => ("fail", "FAIL"),
        Status::Pending => ("pending", "pending"),
    }
}

fn section(
    out: &mut String,
    i: usize,
    site: &SiteReport,
    trace: &SiteTrace,
    markers: &[&Marker],
) -> Result<(), HtmlError> {
    let e = &site.evaluation;
    let kind = verdict_kind(&e.verdict);
    let _ = write!(
        out,
        "<section class=\"site\" id=\"site{i}\" data-site=\"{name}\">\n<h2>site {name}</h2>\n\
         <div class=\"banner verdict-{v}\" data-verdict=\"{v}\"><strong>{upper}</strong> \
         &mdash; stage {stage} ({rollout}% rollout), {records} records in the stage window\
         <span class=\"reason\">{reason}</span></div>\n",
        name = escape(&site.site),
        v = kind.as_str(),
        upper = kind.as_str().to_uppercase(),
        stage = e.stage,
        rollout = e.rollout,
        records = site.records,
        reason = escape(&reason(site)),
    );
    if !site.window_from_stage_event {
        out.push_str("<p class=\"note\">No stage event in the log: the window starts at the site's first record.</p>\n");
    }
    if let Some(latency) = &e.latency {
        let source = match latency.source {
            async_upload_control::stages::BaselineSource::SameWindow => {
                "sync calls in the same window"
            }
            async_upload_control::stages::BaselineSource::Frozen => {
                "baseline frozen at the end of the previous stage"
            }
        };
        let _ = writeln!(
            out,
            "<p class=\"note\">Latency baseline: {source}, compared at equal size \
             ({} size group(s), {} async calls compared).</p>",
            latency.size_groups, latency.compared_calls
        );
    }
    criteria(out, site);
    paths(out, site, trace);
    let h = &e.health;
    let _ = writeln!(
        out,
        "<p class=\"note\">Async path health: {} enrolled, success {} (fallbacks count as failures), \
         user-visible success {}, {} fallbacks, {} critical.</p>",
        h.enrolled,
        h.success_rate.map_or_else(|| "-".into(), pct),
        h.user_success_rate.map_or_else(|| "-".into(), pct),
        h.fallbacks,
        h.critical
    );
    let lines = RateLines {
        stage: e
            .checks
            .iter()
            .find(|c| c.criterion == Criterion::SuccessRate)
            .map(|c| c.threshold),
        rollback: Some(e.thresholds.rollback_success_below),
    };
    let matched = e.latency.as_ref().map(|l| (l.p50_ratio, l.p95_ratio));
    let figures: [(&str, Result<String, HtmlError>); 5] = [
        ("latency", charts::latency_distribution(trace)),
        ("calls", charts::calls_over_time(trace, markers)),
        ("success", charts::success_over_time(trace, markers, lines)),
        (
            "latency-over-time",
            charts::latency_over_time(trace, markers, matched),
        ),
        ("transfer", charts::transfer(trace)),
    ];
    for (name, svg) in figures {
        let svg = svg.map_err(|e| HtmlError::new(format!("chart {name}: {e}")))?;
        let _ = writeln!(
            out,
            "<figure class=\"chart\" id=\"site{i}-{name}\" data-chart=\"{name}\">{svg}</figure>"
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Time charts: buckets of {} over the whole log; markers numbered as in the events table below (stage entered, verdict changes, rollback, rollback cleared, operator changes).</p>",
        Period(trace.timeline.width())
    );
    errors(out, trace);
    events(out, markers);
    out.push_str("</section>\n");
    Ok(())
}

/// An interval's end as the criterion shows its values; an unbounded end as `∞`.
fn bound(criterion: Criterion, value: f64) -> String {
    if value.is_finite() {
        show(criterion, value)
    } else {
        "∞".into()
    }
}

fn criteria(out: &mut String, site: &SiteReport) {
    let _ = writeln!(
        out,
        "<h3>Stage criteria</h3>\n<table class=\"criteria\"><tr><th>criterion</th><th>measured</th><th>{}% interval</th><th>threshold</th><th>status</th></tr>",
        site.evaluation.thresholds.confidence.level() * 100.0
    );
    for check in &site.evaluation.checks {
        let (class, label) = status(check);
        let _ = writeln!(
            out,
            "<tr data-criterion=\"{key}\"><td>{name}</td><td data-value=\"{raw}\">{measured}</td><td>{interval}</td><td>{op} {threshold}</td><td class=\"{class}\">{label}</td></tr>",
            key = serde_json::to_value(check.criterion)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            name = check.criterion.label(),
            raw = check.measured.map_or_else(String::new, |v| v.to_string()),
            measured = check
                .measured
                .map_or_else(|| "-".into(), |v| show(check.criterion, v)),
            interval = check.interval.map_or_else(
                || "-".into(),
                |i| format!(
                    "[{}, {}]",
                    bound(check.criterion, i.low),
                    bound(check.criterion, i.high)
                ),
            ),
            op = escape(check.bound.symbol()),
            threshold = show(check.criterion, check.threshold),
        );
    }
    out.push_str("</table>\n");
}

fn paths(out: &mut String, site: &SiteReport, trace: &SiteTrace) {
    out.push_str(
        "<h3>Paths in the stage window</h3>\n<table class=\"paths\"><tr><th>path</th><th>calls</th><th>success</th>\
         <th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>bytes (successful calls)</th><th>throughput</th></tr>\n",
    );
    for s in &site.summaries {
        let ms = |v: Option<f64>| {
            v.map_or_else(
                || "<td>-</td>".to_owned(),
                |v| format!("<td data-value=\"{v}\">{v:.1}</td>"),
            )
        };
        let finished = s.successes + s.failures > 0;
        let transfer = trace.transfer[s.execution_type.index()];
        let throughput = transfer.throughput().map_or_else(
            || "-".into(),
            |t| format!("{:.1} MiB/s", t / (1024.0 * 1024.0)),
        );
        let _ = writeln!(
            out,
            "<tr data-path=\"{et}\"><td>{swatch}{et}</td><td data-value=\"{count}\">{count}</td><td>{success}</td>{p50}{p95}{p99}<td data-value=\"{bytes}\">{bytes}</td><td>{throughput}</td></tr>",
            et = s.execution_type,
            swatch = swatch(s.execution_type),
            count = s.count,
            success = if finished { pct(s.success_rate) } else { "-".into() },
            p50 = ms(s.p50_ms),
            p95 = ms(s.p95_ms),
            p99 = ms(s.p99_ms),
            bytes = transfer.bytes,
        );
    }
    out.push_str("</table>\n");
}

fn errors(out: &mut String, trace: &SiteTrace) {
    out.push_str("<h3>Top error types per path (stage window: failures, and the async errors fallbacks recovered from)</h3>\n<table class=\"errors\"><tr><th>path</th><th>error type</th><th>calls</th></tr>\n");
    let mut any = false;
    for et in ExecutionType::ALL {
        for (name, count) in trace.top_errors(et, TOP_ERRORS) {
            any = true;
            let _ = writeln!(
                out,
                "<tr><td>{swatch}{et}</td><td>{name}</td><td>{count}</td></tr>",
                swatch = swatch(et),
                name = escape(name)
            );
        }
    }
    if !any {
        out.push_str("<tr><td colspan=\"3\">no error</td></tr>\n");
    }
    out.push_str("</table>\n");
}

/// The events table: the numbers the time charts' markers carry.
fn events(out: &mut String, markers: &[&Marker]) {
    if markers.is_empty() {
        return;
    }
    out.push_str("<h3>Events</h3>\n<table class=\"markers\"><tr><th>#</th><th>time (UTC)</th><th>event</th></tr>\n");
    for (i, marker) in markers.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            humantime::format_rfc3339_millis(marker.ts),
            escape(&marker.kind.describe())
        );
    }
    out.push_str("</table>\n");
}
