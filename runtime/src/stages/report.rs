//! The `async-upload report` logic (cargo feature `report`): from a
//! [`Log`] to per-site tables, the async-vs-sync comparison and the stage
//! verdict, replaying what the controller recorded.

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use super::evaluate::{evaluate, Observation};
use super::replay::Window;
use super::stage::{Stage, Triggers, DEFAULT_STAGES};
use super::tail::Recent;
use super::verdict::{Evaluation, Verdict};
use crate::log::{Log, RollbackEvent};
use crate::metrics::{Comparison, ExecutionType, Summary};

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
        #[serde(serialize_with = "crate::metrics::rfc3339::serialize")]
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

#[allow(clippy::ref_option)] // serde's signature
fn maybe_timestamp<S: Serializer>(
    ts: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => crate::metrics::rfc3339::serialize(ts, serializer),
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
    /// Builds the report of `log`: its records and events replayed in
    /// time order through a [`ReportBuilder`](super::ReportBuilder).
    ///
    /// # Errors
    ///
    /// No upload record (for the requested site), or a stage that is
    /// neither in the log nor defined.
    pub fn build(log: &Log, options: &ReportOptions) -> Result<Report, ReportError> {
        let mut builder = super::ReportBuilder::new(options.clone());
        log.replay(&mut builder);
        builder.finish()
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
pub(crate) struct Judged {
    stage: Stage,
    triggers: Triggers,
    window: StageWindow,
    start: Option<SystemTime>,
    until: Option<SystemTime>,
    baseline: Option<super::verdict::Baseline>,
}

impl Judged {
    /// The window a stage event opened: judged with the criteria, triggers
    /// and baseline it recorded.
    pub(crate) fn recorded(window: &Window, options: &ReportOptions) -> Judged {
        let entered = window
            .entered
            .as_ref()
            .unwrap_or_else(|| unreachable!("a recorded window has its stage event"));
        Judged {
            stage: entered.criteria.clone(),
            triggers: entered
                .triggers
                .clone()
                .unwrap_or_else(|| options.triggers.clone()),
            window: StageWindow::Recorded {
                start: entered.ts,
                until: window.until,
                triggers_recorded: entered.triggers.is_some(),
            },
            start: Some(entered.ts),
            until: window.until,
            baseline: entered.baseline,
        }
    }

    /// Stage `number` as `options` define it, over every record: the log
    /// never enters it (`started`: the site has other stage events).
    pub(crate) fn built_in(
        options: &ReportOptions,
        number: u32,
        started: bool,
    ) -> Result<Judged, ReportError> {
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
            window: if started {
                StageWindow::NotEntered
            } else {
                StageWindow::Assumed {
                    requested: options.stage.is_some(),
                }
            },
            start: None,
            until: None,
            baseline: None,
        })
    }
}

/// The report of one site: `window`'s calls judged as `judged` says, up to
/// `end`, with `recent` its last minutes and `rollback` the site's last
/// rollback not cleared.
pub(crate) fn judge_site(
    judged: Judged,
    window: &Window,
    recent: &Recent,
    end: SystemTime,
    rollback: Option<&RollbackEvent>,
) -> SiteReport {
    let start = window.start.unwrap_or(end);
    let snapshot = &window.snapshot;
    let observation = Observation {
        stage_window: snapshot,
        recent_window: &recent.snapshot,
        recent_span: end.duration_since(recent.from).unwrap_or_default(),
        elapsed: end.duration_since(start).unwrap_or(Duration::ZERO),
        baseline: judged.baseline,
        memory: None,
        success_band_for: Duration::ZERO,
        complaints: None,
        rates: None,
    };
    let mut evaluation = evaluate(&judged.stage, &judged.triggers, &observation);
    let latched = rollback.filter(|rollback| latched_in(rollback, &judged));
    if let Some(rollback) = latched {
        if !matches!(evaluation.verdict, Verdict::Rollback { .. }) {
            evaluation.verdict = Verdict::Rollback {
                triggers: vec![rollback.first_trigger()],
            };
        }
    }
    SiteReport {
        site: snapshot.site.clone(),
        records: window.records,
        summaries: ExecutionType::ALL
            .iter()
            .map(|&et| snapshot.summary(et))
            .collect(),
        comparison: snapshot.comparison(),
        evaluation,
        window_from_stage_event: judged.start.is_some(),
        window: judged.window,
        latched_rollback: latched.is_some(),
    }
}

/// Whether the site's last rollback not cleared is in force in the judged
/// window: the window is the site's current one, or the rollback happened
/// in it.
fn latched_in(rollback: &RollbackEvent, judged: &Judged) -> bool {
    let in_window = judged.start.is_none_or(|start| rollback.ts >= start)
        && judged.until.is_none_or(|until| rollback.ts < until);
    judged.until.is_none() || in_window
}
