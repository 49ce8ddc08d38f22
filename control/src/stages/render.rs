//! The report as text, section by section (the `--json` output is its
//! serde form). A section is a function of one [`SiteReport`]; a new one
//! is a function here and a line in [`site`].

use std::fmt::Write as _;
use std::time::SystemTime;

use super::report::{Report, SiteReport, StageWindow};
use super::verdict::{unit_of, BaselineSource, Criterion, Period, Status, Verdict};

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

fn ts(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// One site, section by section.
pub(super) fn site(out: &mut String, site: &SiteReport) {
    paths(out, site);
    health(out, site);
    window(out, site);
    verdict(out, site);
    events(out, site);
    out.push('\n');
}

/// The per-path table and the async-vs-sync comparison.
fn paths(out: &mut String, site: &SiteReport) {
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
        "  async vs sync (all sizes): p50 {} vs {} ms ({}), p95 {} vs {} ms ({})",
        ms(c.async_p50_ms),
        ms(c.sync_p50_ms),
        change(c.p50_change_pct),
        ms(c.async_p95_ms),
        ms(c.sync_p95_ms),
        change(c.p95_change_pct)
    );
}

/// The async path's health and where the latency baseline came from.
fn health(out: &mut String, site: &SiteReport) {
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
        let groups = match latency.size_groups {
            0 | 1 => "one size group".to_owned(),
            n => format!("{n} size groups"),
        };
        let _ = writeln!(
            out,
            "  latency baseline: {source}, at equal size ({groups}; {} of {} async calls compared)",
            latency.compared_calls,
            site.summaries
                .iter()
                .find(|s| s.execution_type == async_upload_runtime::metrics::ExecutionType::Async)
                .map_or(0, |s| s.count),
        );
    }
}

/// What the verdict below was judged on, and how to choose otherwise.
fn window(out: &mut String, site: &SiteReport) {
    let stage = site.evaluation.stage;
    let _ = match &site.window {
        StageWindow::Recorded {
            start,
            until,
            criteria_recorded,
            triggers_recorded,
        } => writeln!(
            out,
            "  window: stage {stage} from its stage event at {} to {}; {} as the controller recorded them",
            ts(*start),
            until.map_or_else(|| "the end of the log".into(), |until| format!("the next stage event at {}", ts(until))),
            match (criteria_recorded, triggers_recorded) {
                (true, true) => "criteria and triggers",
                (true, false) => "criteria (triggers not recorded by this log's version: the defaults)",
                (false, _) => "stage number and rollout (criteria not recorded by this log's version: the built-in ones)",
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
    let _ = writeln!(
        out,
        "  replayed as the controller looks: every {} from the window's start, recent window {}",
        Period(site.replayed.tick),
        Period(site.replayed.recent_window)
    );
}

/// A criterion's value in its unit (times in the unit of the threshold).
fn show(criterion: Criterion, value: f64, threshold: f64) -> String {
    match criterion {
        Criterion::SuccessRate | Criterion::ErrorRate => pct(value),
        Criterion::LatencyP50 | Criterion::LatencyP95 => format!("{value:.3}x"),
        Criterion::Duration => {
            let (unit, per) = unit_of(threshold);
            format!("{:.1}{unit}", value / per)
        }
        Criterion::Samples => format!("{value:.0}"),
    }
}

/// The verdict, the criteria table and what is missing or fired.
fn verdict(out: &mut String, site: &SiteReport) {
    let e = &site.evaluation;
    let rolled_back = match &site.rollback {
        Some(finding) if finding.logged => format!(" (latched in the log at {})", ts(finding.at)),
        Some(finding) => format!(
            " (would have rolled back at {}: the log holds no rollback event)",
            ts(finding.at)
        ),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "  stage {} ({}% rollout): {}{rolled_back}",
        e.stage,
        e.rollout,
        e.verdict.name().to_uppercase(),
    );
    if let Some(replayed) = site
        .rollback
        .and_then(|f| f.replayed_at.filter(|_| f.logged))
    {
        let _ = writeln!(
            out,
            "    the replay of this window rolls back at {} too",
            ts(replayed)
        );
    }
    let confidence = format!("{}% interval", e.thresholds.confidence.level() * 100.0);
    let _ = writeln!(
        out,
        "    {:<14} {:>12} {:>22} {:>14}  status",
        "criterion", "measured", confidence, "threshold"
    );
    for check in &e.checks {
        let show = |v: f64| show(check.criterion, v, check.threshold);
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
}

/// The site's events, in time order.
fn events(out: &mut String, site: &SiteReport) {
    if site.events.events.is_empty() {
        return;
    }
    let _ = writeln!(out, "  events:");
    for event in &site.events.events {
        let _ = writeln!(out, "    {}  {event}", ts(event.ts()));
    }
    if site.events.omitted > 0 {
        let _ = writeln!(out, "    … and {} more", site.events.omitted);
    }
}
