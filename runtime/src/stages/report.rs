//! The `async-upload report` logic (cargo feature `report`): from a
//! [`Log`] to per-site tables, the async-vs-sync comparison and the stage
//! verdict, replaying what the controller recorded.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use super::evaluate::{evaluate, Observation};
use super::stage::{Stage, Triggers, DEFAULT_STAGES};
use super::verdict::{Evaluation, Verdict};
use super::DEFAULT_RECENT_WINDOW;
use crate::log::{Event, Log, RollbackEvent, StageEntered, StageEvent};
use crate::metrics::{Comparison, ExecutionType, SiteSnapshot, Summary, UploadRecord};

/// What to report on.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Only this site (default every site in the log).
    pub site: Option<String>,
    /// Evaluate this stage (default: the last stage the log shows entered
    /// for the site, else the first).
    pub stage: Option<u32>,
    /// The stage definitions used when the log does not record the stage
    /// judged (default [`DEFAULT_STAGES`]).
    pub stages: Vec<Stage>,
    /// The trigger thresholds used when the log does not record them.
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

/// Why a report could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The log has no upload record (for the requested site, if any).
    NoRecords {
        /// The site asked for.
        site: Option<String>,
    },
    /// The stage asked for is neither entered in the log nor defined.
    UnknownStage {
        /// The stage asked for.
        stage: u32,
        /// The stages defined.
        defined: Vec<u32>,
    },
}

impl core::fmt::Display for ReportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReportError::NoRecords { site: Some(site) } => {
                write!(f, "no upload record for site {site:?}")
            }
            ReportError::NoRecords { site: None } => f.write_str("no upload record"),
            ReportError::UnknownStage { stage, defined } => {
                let defined: Vec<String> = defined.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "no stage {stage}: the log never enters it and the stages defined are {}",
                    defined.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for ReportError {}

/// Where the judged window and its criteria came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StageWindow {
    /// The stage's last `entered` (or `rollback_cleared`) event, up to the
    /// site's next stage event or the end of the log; judged with the
    /// criteria recorded in it, and its triggers when recorded.
    Recorded {
        /// When the window starts.
        #[serde(serialize_with = "timestamp")]
        start: SystemTime,
        /// When the next stage started, if one did.
        #[serde(serialize_with = "maybe_timestamp")]
        until: Option<SystemTime>,
        /// Whether the event recorded the triggers (logs of earlier
        /// versions did not; the report's own then apply).
        triggers_recorded: bool,
    },
    /// The log has no stage event for the site: the stage was assumed (the
    /// one asked for, else the first), judged with the built-in criteria
    /// over all the site's records.
    Assumed {
        /// Whether the stage was asked for (`--stage`).
        requested: bool,
    },
    /// The log has stage events for the site, none entering the stage
    /// asked for: built-in criteria over all the site's records.
    NotEntered,
}

fn timestamp<S: Serializer>(ts: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_micros(*ts))
}

#[allow(clippy::ref_option)] // serde's signature
fn maybe_timestamp<S: Serializer>(
    ts: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => timestamp(ts, serializer),
        None => serializer.serialize_none(),
    }
}

/// The report of one site.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
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
    /// Where the window and its criteria came from.
    pub window: StageWindow,
    /// Whether the window starts at a logged stage event (otherwise at the
    /// site's first record).
    pub window_from_stage_event: bool,
    /// Whether the verdict is a rollback latched in the log (a `rollback`
    /// event not followed by `rollback_cleared`).
    pub latched_rollback: bool,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// One entry per site, sorted by name.
    pub sites: Vec<SiteReport>,
    /// The worst verdict's exit status.
    pub exit_code: i32,
}

impl Verdict {
    /// The process exit status a pipeline gates on: 0 advance or hold, 3
    /// review, 4 rollback.
    #[must_use]
    pub const fn exit_code(&self) -> i32 {
        match self {
            Verdict::Advance | Verdict::Hold { .. } => 0,
            Verdict::Review { .. } => 3,
            Verdict::Rollback { .. } => 4,
        }
    }
}

impl Report {
    /// Builds the report of `log`.
    ///
    /// # Errors
    ///
    /// No upload record (for the requested site), or a stage that is
    /// neither in the log nor defined.
    pub fn build(log: &Log, options: &ReportOptions) -> Result<Report, ReportError> {
        let wanted = |site: &str| options.site.as_deref().is_none_or(|w| w == site);
        let sites: BTreeSet<&str> = log
            .uploads
            .iter()
            .map(|r| r.site.as_ref())
            .filter(|s| wanted(s))
            .collect();
        if sites.is_empty() {
            return Err(ReportError::NoRecords {
                site: options.site.clone(),
            });
        }
        let end = log
            .uploads
            .iter()
            .map(|r| r.ts)
            .chain(log.events.iter().map(Event::ts))
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let sites = sites
            .into_iter()
            .map(|site| site_report(log, options, site, end))
            .collect::<Result<Vec<_>, _>>()?;
        let exit_code = sites
            .iter()
            .map(|r| r.evaluation.verdict.exit_code())
            .max()
            .unwrap_or(0);
        Ok(Report { sites, exit_code })
    }

    /// The human-readable report.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for site in &self.sites {
            super::render::site(&mut out, site);
        }
        out
    }
}

/// The stage judged for one site: its criteria, triggers and window.
struct Judged {
    stage: Stage,
    triggers: Triggers,
    window: StageWindow,
    start: Option<SystemTime>,
    until: Option<SystemTime>,
    baseline: Option<super::verdict::Baseline>,
}

/// Chooses the stage and window: the last time the log shows the stage
/// asked for (else the last stage entered) starting, up to the next stage
/// event; without one, the built-in definition over every record.
fn judged(options: &ReportOptions, starts: &[&StageEntered]) -> Result<Judged, ReportError> {
    let number = options
        .stage
        .or_else(|| starts.last().map(|e| e.stage))
        .unwrap_or(options.stages[0].number);
    if let Some(at) = starts.iter().rposition(|e| e.stage == number) {
        let entered = starts[at];
        return Ok(Judged {
            stage: entered.criteria.clone(),
            triggers: entered
                .triggers
                .clone()
                .unwrap_or_else(|| options.triggers.clone()),
            window: StageWindow::Recorded {
                start: entered.ts,
                until: starts.get(at + 1).map(|next| next.ts),
                triggers_recorded: entered.triggers.is_some(),
            },
            start: Some(entered.ts),
            until: starts.get(at + 1).map(|next| next.ts),
            baseline: entered.baseline,
        });
    }
    let stage = options
        .stages
        .iter()
        .find(|s| s.number == number)
        .ok_or_else(|| ReportError::UnknownStage {
            stage: number,
            defined: options.stages.iter().map(|s| s.number).collect(),
        })?;
    Ok(Judged {
        stage: stage.clone(),
        triggers: options.triggers.clone(),
        window: if starts.is_empty() {
            StageWindow::Assumed {
                requested: options.stage.is_some(),
            }
        } else {
            StageWindow::NotEntered
        },
        start: None,
        until: None,
        baseline: None,
    })
}

fn site_report(
    log: &Log,
    options: &ReportOptions,
    site: &str,
    log_end: SystemTime,
) -> Result<SiteReport, ReportError> {
    let events: Vec<&Event> = log.events.iter().filter(|e| e.site() == site).collect();
    let starts: Vec<&StageEntered> = events
        .iter()
        .filter_map(|e| match e {
            Event::Stage(StageEvent::Entered(entered) | StageEvent::RollbackCleared(entered)) => {
                Some(entered)
            }
            _ => None,
        })
        .collect();
    let judged = judged(options, &starts)?;
    let records: Vec<&UploadRecord> = log
        .uploads
        .iter()
        .filter(|r| r.site == site)
        .filter(|r| judged.until.is_none_or(|until| r.ts < until))
        .collect();
    let end = judged.until.unwrap_or(log_end);
    let start = judged
        .start
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
    let observation = Observation {
        stage_window: &window,
        recent_window: &recent,
        recent_span: end.duration_since(recent_from).unwrap_or_default(),
        elapsed: end.duration_since(start).unwrap_or(Duration::ZERO),
        baseline: judged.baseline,
        memory: None,
        success_band_for: Duration::ZERO,
        complaints: None,
        rates: None,
    };
    let mut evaluation = evaluate(&judged.stage, &judged.triggers, &observation);
    let latched = latched_rollback(&events, &judged);
    if let Some(rollback) = latched {
        if !matches!(evaluation.verdict, Verdict::Rollback { .. }) {
            evaluation.verdict = Verdict::Rollback {
                triggers: vec![rollback.first_trigger()],
            };
        }
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
        window_from_stage_event: judged.start.is_some(),
        window: judged.window,
        latched_rollback: latched.is_some(),
    })
}

/// The rollback still in force in the judged window: the site's last
/// `rollback` not followed by `rollback_cleared`, when the window is the
/// site's current one or the rollback happened in it.
fn latched_rollback<'a>(events: &[&'a Event], judged: &Judged) -> Option<&'a RollbackEvent> {
    let last = events.iter().rev().find_map(|e| match e {
        Event::Rollback(rollback) => Some(Some(rollback)),
        Event::Stage(StageEvent::RollbackCleared(_)) => Some(None),
        _ => None,
    })??;
    let in_window = judged.start.is_none_or(|start| last.ts >= start)
        && judged.until.is_none_or(|until| last.ts < until);
    (judged.until.is_none() || in_window).then_some(last)
}
