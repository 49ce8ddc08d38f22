//! The vertical markers of the time charts: what an event shows, and the
//! verdicts' kinds for colours.

use std::time::SystemTime;

use async_upload_control::stages::Verdict;

/// What a vertical marker on the time charts shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MarkerKind {
    /// The controller entered a stage: the stage window starts here.
    StageEntered { stage: u32 },
    /// The logged verdict changed.
    Verdict(VerdictKind),
    /// A rollback fired.
    Rollback,
    /// An operator cleared a rollback.
    RollbackCleared,
    /// An operator changed a setting: what, old → new, by whom.
    Operator(String),
    /// The report's replay of the window rolls back here; the log has no
    /// rollback event.
    WouldRollBack,
}

impl MarkerKind {
    /// The marker for a person, as the events table lists it.
    pub(crate) fn describe(&self) -> String {
        match self {
            MarkerKind::StageEntered { stage } => format!("stage {stage} entered"),
            MarkerKind::Verdict(v) => format!("verdict: {}", v.as_str()),
            MarkerKind::Rollback => "ROLLBACK fired".to_owned(),
            MarkerKind::RollbackCleared => "rollback cleared".to_owned(),
            MarkerKind::Operator(change) => format!("operator: {change}"),
            MarkerKind::WouldRollBack => {
                "the controller would have rolled back here (no rollback in the log)".to_owned()
            }
        }
    }
}

/// A marker at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) ts: SystemTime,
    pub(crate) kind: MarkerKind,
}

impl Marker {
    pub(crate) const fn new(ts: SystemTime, kind: MarkerKind) -> Self {
        Marker { ts, kind }
    }
}

/// The four verdicts, for colours and markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VerdictKind {
    Advance,
    Hold,
    Review,
    Rollback,
}

impl VerdictKind {
    pub(crate) const fn of(verdict: &Verdict) -> Self {
        match verdict {
            Verdict::Advance => VerdictKind::Advance,
            Verdict::Hold { .. } => VerdictKind::Hold,
            Verdict::Review { .. } => VerdictKind::Review,
            Verdict::Rollback { .. } => VerdictKind::Rollback,
        }
    }

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Advance => "advance",
            VerdictKind::Hold => "hold",
            VerdictKind::Review => "review",
            VerdictKind::Rollback => "rollback",
        }
    }
}
