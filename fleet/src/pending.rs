//! A stage write of the leader not yet seen back in the applied state.

/// A stage write of this replica not yet seen in the applied state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingStage {
    pub(crate) stage: u32,
    pub(crate) rollout: f64,
    pub(crate) entered_ms: u64,
    /// The stage clock the store held when the write was decided.
    pub(crate) expected: Option<(u32, Option<u64>)>,
    pub(crate) state: Pending,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pending {
    /// The reply was lost (timeout, connection error): read it back.
    Unsure,
    /// Landed at this version of the store with this epoch: done once the
    /// applied state reaches it.
    Written { version: u64, epoch: Option<String> },
}
