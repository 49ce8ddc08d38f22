//! The `async-upload report` logic: from a [`Log`] to per-site tables,
//! the async-vs-sync comparison and the stage verdict.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::evaluate::{
    evaluate, Baseline, Evaluation, Observation, Status, Trigger, TriggerKind, Verdict,
};
use super::stage::{Stage, Triggers, DEFAULT_STAGES};
use super::DEFAULT_RECENT_WINDOW;
use crate::log::{Event, Log};
use crate::metrics::{Comparison, ExecutionType, SiteSnapshot, Summary, UploadRecord};

/// What to report on.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Only this site (default every site in the log).
    pub site: Option<String>,
    /// Evaluate this stage (default: the last stage the log shows entered
    /// for the site, else the first).
    pub stage: Option<u32>,
    /// The stage definitions (default [`DEFAULT_STAGES`]).
    pub stages: Vec<Stage>,
    /// The trigger thresholds.
    pub triggers: Triggers,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            site: None,
            stage: None,
            stages: DEFAULT_STAGES.to_vec(),
            triggers: Triggers::DEFAULT,
        }
    }
}

/// The report of one site.
#[derive(Clone, Debug, Serialize)]
pub struct SiteReport {
    /// The site.
    pub site: String,
    /// Upload records of the site in the stage window.
    pub records: usize,
    /// One summary per execution type.
    pub summaries: Vec<Summary>,
    /// Async against sync latency.
    pub comparison: Comparison,
    /// The stage verdict.
    pub evaluation: Evaluation,
    /// Whether the window starts at a logged `entered` event (otherwise at
    /// the site's first record).
    pub window_from_stage_event: bool,
    /// Whether the verdict is a rollback latched in the log (a `rollback`
    /// event not followed by `rollback_cleared`).
    pub latched_rollback: bool,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// One entry per site, sorted by name.
    pub sites: Vec<SiteReport>,
    /// The worst verdict's exit status.
    pub exit_code: i32,
}

fn event_stage(event: &Event) -> Option<u32> {
    event
        .fields
        .get("stage")?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
}

impl Report {
    /// Builds the report of `log`.
    ///
    /// # Errors
    ///
    /// No upload record (for the requested site), or a stage number that is
    /// not defined: a message for the user.
    pub fn build(log: &Log, options: &ReportOptions) -> Result<Report, String> {
        let wanted = |site: &str| options.site.as_deref().is_none_or(|w| w == site);
        let sites: BTreeSet<&str> = log
            .uploads
            .iter()
            .map(|r| r.site.as_ref())
            .filter(|s| wanted(s))
            .collect();
        if sites.is_empty() {
            return Err(match &options.site {
                Some(site) => format!("no upload record for site {site:?}"),
                None => "no upload record".into(),
            });
        }
        let end = log
            .uploads
            .iter()
            .map(|r| r.ts)
            .chain(log.events.iter().filter_map(|e| e.ts))
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut reports = Vec::new();
        for site in sites {
            reports.push(site_report(log, options, site, end)?);
        }
        let exit_code = reports
            .iter()
            .map(|r| r.evaluation.verdict.exit_code())
            .max()
            .unwrap_or(0);
        Ok(Report {
            sites: reports,
            exit_code,
        })
    }

    /// The human-readable report.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for site in &self.sites {
            render_site(&mut out, site);
        }
        out
    }
}

fn site_report(
    log: &Log,
    options: &ReportOptions,
    site: &str,
    end: SystemTime,
) -> Result<SiteReport, String> {
    let events: Vec<&Event> = log
        .events
        .iter()
        .filter(|e| e.site.as_deref() == Some(site))
        .collect();
    let entered = |number: u32| {
        events.iter().rev().find(|e| {
            e.kind == "stage" && e.str("event") == Some("entered") && event_stage(e) == Some(number)
        })
    };
    let number = options
        .stage
        .or_else(|| {
            events
                .iter()
                .rev()
                .find(|e| e.kind == "stage" && e.str("event") == Some("entered"))
                .and_then(|e| event_stage(e))
        })
        .unwrap_or(options.stages[0].number);
    let stage = options
        .stages
        .iter()
        .find(|s| s.number == number)
        .ok_or_else(|| {
            format!(
                "no stage {number} (stages are 1..={})",
                options.stages.len()
            )
        })?;
    let entered_event = entered(number);
    let records: Vec<&UploadRecord> = log.uploads.iter().filter(|r| r.site == site).collect();
    let start = entered_event
        .and_then(|e| e.ts)
        .or_else(|| records.iter().map(|r| r.ts).min())
        .unwrap_or(end);
    let recent_from = end
        .checked_sub(DEFAULT_RECENT_WINDOW)
        .unwrap_or(start)
        .max(start);
    let mut window = SiteSnapshot::empty(site);
    let mut recent = SiteSnapshot::empty(site);
    let mut count = 0;
    for record in records.iter().filter(|r| r.ts >= start) {
        window.record(record);
        count += 1;
        if record.ts >= recent_from {
            recent.record(record);
        }
    }
    let baseline = entered_event
        .and_then(|e| e.fields.get("baseline"))
        .and_then(|b| serde_json::from_value::<Baseline>(b.clone()).ok());
    let observation = Observation {
        stage_window: &window,
        recent_window: &recent,
        recent_span: end.duration_since(recent_from).unwrap_or_default(),
        elapsed: end.duration_since(start).unwrap_or(Duration::ZERO),
        baseline,
        memory: None,
        success_band_for: Duration::ZERO,
        complaints: None,
        rates: None,
    };
    let mut evaluation = evaluate(stage, &options.triggers, &observation);
    // A rollback in the log stays in force until the log shows it cleared.
    let latched = events.iter().rev().find(|e| {
        e.kind == "rollback" || (e.kind == "stage" && e.str("event") == Some("rollback_cleared"))
    });
    let mut latched_rollback = false;
    if let Some(event) = latched.filter(|e| e.kind == "rollback") {
        if !matches!(evaluation.verdict, Verdict::Rollback { .. }) {
            let kind = event
                .fields
                .get("trigger")
                .and_then(|t| serde_json::from_value::<TriggerKind>(t.clone()).ok())
                .unwrap_or(TriggerKind::Manual);
            evaluation.verdict = Verdict::Rollback {
                triggers: vec![Trigger::new(
                    kind,
                    event.f64("measured").unwrap_or(f64::NAN),
                    event.f64("threshold").unwrap_or(f64::NAN),
                    0,
                    Duration::ZERO,
                )],
            };
        }
        latched_rollback = true;
    }
    Ok(SiteReport {
        site: site.to_owned(),
        records: count,
        summaries: ExecutionType::ALL
            .iter()
            .map(|&et| window.summary(et))
            .collect(),
        comparison: window.comparison(),
        evaluation,
        window_from_stage_event: entered_event.is_some(),
        latched_rollback,
    })
}

fn pct(rate: f64) -> String {
    format!("{:.2}%", rate * 100.0)
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

#[allow(clippy::too_many_lines)] // the report's layout, line by line
fn render_site(out: &mut String, site: &SiteReport) {
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
            super::evaluate::BaselineSource::SameWindow => "sync calls in the same window",
            super::evaluate::BaselineSource::Frozen => {
                "baseline frozen at the end of the previous stage"
            }
        };
        let _ = writeln!(out, "  latency baseline: {source}");
    }
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
            super::evaluate::Criterion::SuccessRate | super::evaluate::Criterion::ErrorRate => {
                pct(v)
            }
            super::evaluate::Criterion::LatencyP50 | super::evaluate::Criterion::LatencyP95 => {
                format!("{v:.3}x")
            }
            super::evaluate::Criterion::Duration => format!("{:.1}h", v / 3600.0),
            super::evaluate::Criterion::Samples => format!("{v:.0}"),
        };
        let status = match check.status {
            Status::Pass => "pass",
            Status::Fail
                if matches!(
                    check.criterion,
                    super::evaluate::Criterion::Duration | super::evaluate::Criterion::Samples
                ) =>
            {
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
            format!("{} {}", check.op, show(check.threshold)),
        );
    }
    match &e.verdict {
        Verdict::Hold { missing } => {
            for m in missing {
                let _ = writeln!(
                    out,
                    "    missing: {}",
                    serde_json::to_string(m).unwrap_or_default()
                );
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
