//! One event type for the log, shared by its writers (the sink, the rollout
//! controller) and its readers ([`read_file`](super::read_file), the
//! report): [`Event`].

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::stages::latency::Baseline;
use crate::stages::stage::{Stage, Triggers};
use crate::stages::verdict::{Evaluation, Trigger, TriggerKind};
use async_upload_runtime::metrics::{rfc3339, BreakerEvent, UploadRecord};

use super::operator::OperatorEvent;

/// One line of the JSONL log, tagged by `kind` (and, for `stage` lines, by
/// `event`).
///
/// ```
/// use async_upload::log::Event;
/// use async_upload::metrics::{ExecutionType, UploadRecord};
///
/// let event = Event::Upload(UploadRecord::new("upload", ExecutionType::Async, true, 12.5, 1));
/// assert_eq!(event.site(), "upload");
/// let json = serde_json::to_string(&event).unwrap();
/// assert!(json.starts_with(r#"{"kind":"upload","#));
/// let back: Event = serde_json::from_str(&json).unwrap();
/// assert!(matches!(back, Event::Upload(record) if record.site == "upload"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
// Events other than uploads are rare and the log's queue boxes them; a box
// here would show in every construction and match.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// `"kind":"upload"`: one call's record.
    Upload(UploadRecord),
    /// `"kind":"stage"`: the rollout controller entered a stage, decided a
    /// verdict, or saw its rollback cleared.
    Stage(StageEvent),
    /// `"kind":"rollback"`: the controller latched the site's rollback.
    Rollback(RollbackEvent),
    /// `"kind":"breaker"`: the site's circuit breaker changed state, or its
    /// retry budget ran dry (once per transition, never per call).
    Breaker(BreakerEvent),
    /// `"kind":"operator"`: an operator's change a replica applied (one
    /// line per setting changed), with who made it.
    Operator(OperatorEvent),
}

impl Event {
    /// When it happened.
    #[must_use]
    pub fn ts(&self) -> SystemTime {
        match self {
            Event::Upload(record) => record.ts,
            Event::Stage(StageEvent::Entered(e) | StageEvent::RollbackCleared(e)) => e.ts,
            Event::Stage(StageEvent::Verdict(e)) => e.ts,
            Event::Rollback(e) => e.ts,
            Event::Breaker(e) => e.ts,
            Event::Operator(e) => e.ts,
        }
    }

    /// The site it is about; `""` for a change of the global
    /// configuration, which is about every site ([`Event::is_global`]).
    #[must_use]
    pub fn site(&self) -> &str {
        match self {
            Event::Upload(record) => &record.site,
            Event::Stage(StageEvent::Entered(e) | StageEvent::RollbackCleared(e)) => &e.site,
            Event::Stage(StageEvent::Verdict(e)) => &e.site,
            Event::Rollback(e) => &e.site,
            Event::Breaker(e) => &e.site,
            Event::Operator(e) => e.site.as_deref().unwrap_or(""),
        }
    }

    /// Whether it is about every site: an operator's change of the global
    /// configuration.
    #[must_use]
    pub fn is_global(&self) -> bool {
        matches!(self, Event::Operator(e) if e.site.is_none())
    }
}

/// A `stage` line, tagged by `event`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // as for `Event`
pub enum StageEvent {
    /// `"event":"entered"`: the stage started (its window starts here).
    Entered(StageEntered),
    /// `"event":"verdict"`: one evaluation, with everything it was decided on.
    Verdict(VerdictEvent),
    /// `"event":"rollback_cleared"`: an operator lifted the rollback; the
    /// stage starts over.
    RollbackCleared(StageEntered),
}

/// A stage started (or started over): what the controller judges it by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageEntered {
    /// When.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The site.
    pub site: String,
    /// The stage's number.
    pub stage: u32,
    /// The stage's rollout percent.
    pub rollout: f64,
    /// The stage's criteria, as the controller judges them. `None` in logs
    /// of the first release, which did not record them; a reader then says
    /// which it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<Stage>,
    /// The trigger thresholds the controller applies. `None` in logs of
    /// versions that did not record them; a reader then says which it uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Triggers>,
    /// The interval the controller is ticked at: the report replays the log
    /// at the same looks (`None` in older logs: the default, 30 s).
    #[serde(
        default,
        rename = "tick_s",
        with = "crate::stages::secs_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub tick: Option<Duration>,
    /// The span of the controller's recent window (`None` in older logs).
    #[serde(
        default,
        rename = "recent_window_s",
        with = "crate::stages::secs_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub recent_window: Option<Duration>,
    /// The sync latency frozen at the end of the previous stage, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// Resident memory when the stage started, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// When the stage was first entered, if this controller resumed it
    /// rather than entering it anew (a fleet's new leader going on with the
    /// shared stage clock): the stage's window and clock go on from then,
    /// and the report does not start the stage over. `None` for a stage
    /// entered anew, and in older logs.
    #[serde(
        default,
        with = "async_upload_runtime::metrics::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<SystemTime>,
}

impl StageEntered {
    /// The event of `site` entering `criteria`'s stage at `ts`.
    #[must_use]
    pub fn new(
        ts: SystemTime,
        site: impl Into<String>,
        criteria: Stage,
        triggers: Triggers,
    ) -> Self {
        StageEntered {
            ts,
            site: site.into(),
            stage: criteria.number,
            rollout: criteria.rollout,
            criteria: Some(criteria),
            triggers: Some(triggers),
            tick: None,
            recent_window: None,
            baseline: None,
            memory_bytes: None,
            since: None,
        }
    }

    /// With the controller's tick and recent window.
    #[must_use]
    pub fn with_looks(mut self, tick: Duration, recent_window: Duration) -> Self {
        self.tick = Some(tick);
        self.recent_window = Some(recent_window);
        self
    }

    /// With the baseline frozen at the end of the previous stage.
    #[must_use]
    pub fn with_baseline(mut self, baseline: Option<Baseline>) -> Self {
        self.baseline = baseline;
        self
    }

    /// With the resident memory at the start.
    #[must_use]
    pub fn with_memory_bytes(mut self, bytes: Option<u64>) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// A resumption of the stage first entered at `since` (`None`: entered
    /// anew).
    #[must_use]
    pub fn resuming(mut self, since: Option<SystemTime>) -> Self {
        self.since = since;
        self
    }
}

/// One evaluation of a stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VerdictEvent {
    /// When.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The site.
    pub site: String,
    /// The verdict and what it was decided on (boxed: it is most of the
    /// event's size, and every line read is moved as an [`Event`]).
    #[serde(flatten)]
    pub evaluation: Box<Evaluation>,
}

impl VerdictEvent {
    /// The verdict event of `site` at `ts`.
    #[must_use]
    pub fn new(ts: SystemTime, site: impl Into<String>, evaluation: Evaluation) -> Self {
        VerdictEvent {
            ts,
            site: site.into(),
            evaluation: Box::new(evaluation),
        }
    }
}

/// The controller latched a site's rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RollbackEvent {
    /// When.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The site.
    pub site: String,
    /// The stage it was in.
    pub stage: u32,
    /// That stage's rollout percent.
    pub rollout: f64,
    /// The first trigger that fired.
    pub trigger: TriggerKind,
    /// Its measured value.
    pub measured: f64,
    /// Its threshold.
    pub threshold: f64,
    /// Every trigger, as one line for people (also the kill switch's reason).
    pub reason: String,
    /// Every trigger that fired.
    pub triggers: Vec<Trigger>,
}

impl RollbackEvent {
    /// The rollback of `site` at `ts`, in stage `stage` at `rollout` percent,
    /// because of `triggers` (at least one; `None` without).
    #[must_use]
    pub fn new(
        ts: SystemTime,
        site: impl Into<String>,
        (stage, rollout): (u32, f64),
        triggers: Vec<Trigger>,
    ) -> Option<Self> {
        let first = triggers.first()?;
        Some(RollbackEvent {
            ts,
            site: site.into(),
            stage,
            rollout,
            trigger: first.kind,
            measured: first.measured,
            threshold: first.threshold,
            reason: reason(&triggers),
            triggers,
        })
    }

    /// The trigger that latched it, as the report shows it.
    #[must_use]
    pub fn first_trigger(&self) -> Trigger {
        self.triggers.first().cloned().unwrap_or_else(|| {
            Trigger::new(
                self.trigger,
                self.measured,
                self.threshold,
                0,
                Duration::ZERO,
            )
        })
    }
}

/// Every trigger on one line: `success rate: measured … ; error rate: …`.
pub(crate) fn reason(triggers: &[Trigger]) -> String {
    triggers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<UploadRecord> for Event {
    fn from(record: UploadRecord) -> Self {
        Event::Upload(record)
    }
}

impl From<StageEvent> for Event {
    fn from(event: StageEvent) -> Self {
        Event::Stage(event)
    }
}

impl From<RollbackEvent> for Event {
    fn from(event: RollbackEvent) -> Self {
        Event::Rollback(event)
    }
}

impl From<OperatorEvent> for Event {
    fn from(event: OperatorEvent) -> Self {
        Event::Operator(event)
    }
}
