//! What `async-upload report` reports (cargo feature `report`): per site,
//! the tables, the async-vs-sync comparison and the stage verdict. Built by
//! replaying a log ([`ReportBuilder`](super::ReportBuilder), `replay.rs`),
//! printed as text (`render.rs`) or as its serde form.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::stage::{secs, Stage, Triggers, DEFAULT_STAGES};
use super::verdict::{Evaluation, Verdict};
use crate::log::OperatorEvent;
use async_upload_runtime::metrics::{Comparison, Summary};

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
        #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::serialize")]
        start: SystemTime,
        /// When the next stage started, if one did.
        #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::option::serialize")]
        until: Option<SystemTime>,
        /// Whether the event recorded the criteria (the first release did
        /// not; the built-in ones of its stage number then apply).
        criteria_recorded: bool,
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
    /// The window's rollback: latched in the log, or found by replaying the
    /// window through the controller's looks (also when the log holds no
    /// rollback event: instances that ran without a controller, or whose
    /// controller died).
    pub rollback: Option<RollbackFinding>,
    /// How the window was replayed.
    pub replayed: Replayed,
    /// The site's stage entries, rollbacks (logged and replayed) and
    /// operator changes (its own and the global ones), in time order.
    pub events: EventLog,
}

/// When a window was rolled back, or would have been.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RollbackFinding {
    /// When: the log's rollback event, else the replay's look that fired.
    #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::serialize")]
    pub at: SystemTime,
    /// Whether the log holds the controller's rollback event.
    pub logged: bool,
    /// When the replay rolled back, if it did.
    #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::option::serialize")]
    pub replayed_at: Option<SystemTime>,
}

/// The looks a window was replayed at: the controller's tick and recent
/// window, as its stage event recorded them (else the defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Replayed {
    /// Interval between looks.
    #[serde(rename = "tick_s", with = "secs")]
    pub tick: Duration,
    /// Span of the recent window.
    #[serde(rename = "recent_window_s", with = "secs")]
    pub recent_window: Duration,
}

/// One line of a site's events.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReportEvent {
    /// The controller entered a stage.
    StageEntered {
        /// When.
        #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::serialize")]
        ts: SystemTime,
        /// The stage.
        stage: u32,
    },
    /// An operator cleared a rollback; the stage started over.
    RollbackCleared {
        /// When.
        #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::serialize")]
        ts: SystemTime,
        /// The stage.
        stage: u32,
    },
    /// The controller latched a rollback (its `rollback` event).
    Rollback {
        /// When.
        #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::serialize")]
        ts: SystemTime,
        /// The stage.
        stage: u32,
        /// Its reason.
        reason: String,
    },
    /// The replay of the judged window rolls back here (whether or not the
    /// log holds the controller's rollback).
    WouldHaveRolledBack {
        /// When.
        #[serde(serialize_with = "async_upload_runtime::metrics::rfc3339::serialize")]
        ts: SystemTime,
        /// What fired.
        reason: String,
    },
    /// An operator's change.
    Operator(OperatorEvent),
}

impl ReportEvent {
    /// When it happened.
    #[must_use]
    pub fn ts(&self) -> SystemTime {
        match self {
            ReportEvent::StageEntered { ts, .. }
            | ReportEvent::RollbackCleared { ts, .. }
            | ReportEvent::Rollback { ts, .. }
            | ReportEvent::WouldHaveRolledBack { ts, .. } => *ts,
            ReportEvent::Operator(e) => e.ts,
        }
    }
}

impl core::fmt::Display for ReportEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReportEvent::StageEntered { stage, .. } => write!(f, "stage {stage} entered"),
            ReportEvent::RollbackCleared { stage, .. } => {
                write!(f, "rollback cleared; stage {stage} starts over")
            }
            ReportEvent::Rollback { stage, reason, .. } => {
                write!(f, "ROLLBACK at stage {stage} ({reason})")
            }
            ReportEvent::WouldHaveRolledBack { reason, .. } => {
                write!(f, "the replay rolls back here ({reason})")
            }
            ReportEvent::Operator(change) => write!(f, "{change}"),
        }
    }
}

/// A site's events: the first [`EventLog::LIMIT`] in time order, and how
/// many more there were (a log is not a place to keep every change, and
/// the report's memory must not grow with it).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EventLog {
    /// The events kept, in time order.
    pub events: Vec<ReportEvent>,
    /// Events left out past the limit.
    pub omitted: u64,
}

impl EventLog {
    /// Events kept per site.
    pub const LIMIT: usize = 200;

    pub(crate) fn push(&mut self, event: ReportEvent) {
        if self.events.len() < Self::LIMIT {
            self.events.push(event);
        } else {
            self.omitted += 1;
        }
    }

    /// Adds `other`'s events (the global ones), in time order.
    pub(crate) fn merge(&mut self, other: &EventLog) {
        for event in &other.events {
            self.push(event.clone());
        }
        self.omitted += other.omitted;
        self.events.sort_by_key(ReportEvent::ts);
    }
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
