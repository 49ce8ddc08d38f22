//! The report as text, line by line (the `--json` output is its serde form).

use std::fmt::Write as _;

use super::report::{Report, SiteReport, StageWindow};
use super::verdict::{BaselineSource, Criterion, Status, Verdict};

impl Report {
    /// The human-readable report.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for site in &self.sites {
            self::site(&mut out, site);
        }
        out
    }
}

fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

#[allow(clippy::too_many_lines)] // the report's layout, line by line
pub(super) fn site(out: &mut String, site: &SiteReport) {
    let _ = writeln!(out, "site {} ({} records)", site.site, site.records);
    let _ = writeln!(
        out,
        "  {:<14} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>12}",
        "path", "count", "success", "error", "p50 ms", "p95 ms", "p99 ms", "bytes"
    );
    for s in &site.summaries {
        let finished = s.successes + s.failures > 0;
        let rate = |r: f64| if finished { pct(r) } else { "-".into() };
        let _ = writeln!(
            out,
            "  {:<14} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>12}",
            s.execution_type.as_str(),
            s.count,
            rate(s.success_rate),
            rate(s.error_rate),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            s.bytes
        );
    }
    let c = &site.comparison;
    let change = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:+.1}%"));
    let _ = writeln!(
        out,
        "  async vs sync: p50 {} vs {} ms ({}), p95 {} vs {} ms ({})",
        ms(c.async_p50_ms),
        ms(c.sync_p50_ms),
        change(c.p50_change_pct),
        ms(c.async_p95_ms),
        ms(c.sync_p95_ms),
        change(c.p95_change_pct)
    );
    let e = &site.evaluation;
    let h = &e.health;
    let _ = writeln!(
        out,
        "  async path health: {} enrolled, success {} (fallbacks count as failures), user-visible success {}, {} fallbacks, {} critical",
        h.enrolled,
        h.success_rate.map_or_else(|| "-".into(), pct),
        h.user_success_rate.map_or_else(|| "-".into(), pct),
        h.fallbacks,
        h.critical
    );
    if let Some(latency) = &e.latency {
        let source = match latency.source {
            BaselineSource::SameWindow => "sync calls in the same window",
            BaselineSource::Frozen => "baseline frozen at the end of the previous stage",
        };
        let _ = writeln!(out, "  latency baseline: {source}");
    }
    window(out, site);
    let _ = writeln!(
        out,
        "  stage {} ({}% rollout): {}{}",
        e.stage,
        e.rollout,
        e.verdict.name().to_uppercase(),
        if site.latched_rollback {
            " (latched in the log)"
        } else {
            ""
        }
    );
    let confidence = format!("{}% interval", e.thresholds.confidence.level() * 100.0);
    let _ = writeln!(
        out,
        "    {:<14} {:>12} {:>22} {:>14}  status",
        "criterion", "measured", confidence, "threshold"
    );
    for check in &e.checks {
        let show = |v: f64| match check.criterion {
            Criterion::SuccessRate | Criterion::ErrorRate => pct(v),
            Criterion::LatencyP50 | Criterion::LatencyP95 => {
                format!("{v:.3}x")
            }
            Criterion::Duration => format!("{:.1}h", v / 3600.0),
            Criterion::Samples => format!("{v:.0}"),
        };
        let status = match check.status {
            Status::Pass => "pass",
            Status::Fail if matches!(check.criterion, Criterion::Duration | Criterion::Samples) => {
                "short"
            }
            Status::Fail => "FAIL",
            Status::Pending => "pending",
        };
        let bound = |v: f64| if v.is_finite() { show(v) } else { "∞".into() };
        let interval = check.interval.map_or_else(
            || "-".into(),
            |i| format!("[{}, {}]", bound(i.low), bound(i.high)),
        );
        let _ = writeln!(
            out,
            "    {:<14} {:>12} {:>22} {:>14}  {status}",
            check.criterion.label(),
            check.measured.map_or_else(|| "-".into(), show),
            interval,
            format!("{} {}", check.bound.symbol(), show(check.threshold)),
        );
    }
    match &e.verdict {
        Verdict::Hold { missing } => {
            for m in missing {
                let _ = writeln!(out, "    missing: {m}");
            }
        }
        Verdict::Review { triggers } | Verdict::Rollback { triggers } => {
            for t in triggers {
                let _ = writeln!(out, "    trigger: {t}");
            }
        }
        Verdict::Advance => {}
    }
    out.push('\n');
}

/// Says what the verdict below was judged on, and how to choose otherwise.
fn window(out: &mut String, site: &SiteReport) {
    let stage = site.evaluation.stage;
    let ts = |ts: std::time::SystemTime| humantime::format_rfc3339_seconds(ts).to_string();
    let _ = match &site.window {
        StageWindow::Recorded {
            start,
            until,
            triggers_recorded,
        } => writeln!(
            out,
            "  window: stage {stage} from its stage event at {} to {}; criteria{} as the controller recorded them",
            ts(*start),
            until.map_or_else(|| "the end of the log".into(), |until| format!("the next stage event at {}", ts(until))),
            if *triggers_recorded {
                " and triggers"
            } else {
                " (triggers not recorded by this log's version: the defaults)"
            },
        ),
        StageWindow::Assumed { requested: false } => writeln!(
            out,
            "  no stage event for site {} in the log: assumed stage {stage} over all its records (choose another with --stage N)",
            site.site
        ),
        StageWindow::Assumed { requested: true } => writeln!(
            out,
            "  no stage event for site {} in the log: stage {stage} as asked, over all its records, with the built-in criteria",
            site.site
        ),
        StageWindow::NotEntered => writeln!(
            out,
            "  the log never shows stage {stage} entered for site {}: built-in criteria over all its records",
            site.site
        ),
    };
}
