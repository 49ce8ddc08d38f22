//! What a replica has said about reaching Redis.

use std::time::Instant;

/// What was said about reaching Redis, so that each thing is said once
/// (an ERROR at start, a WARN at most once a minute while it lasts).
#[derive(Debug, Default)]
#[allow(clippy::struct_excessive_bools)] // each says whether one thing was said
pub(crate) struct ContactLog {
    pub(crate) ever_connected: bool,
    pub(crate) said_at_start: bool,
    pub(crate) last_warn: Option<Instant>,
    pub(crate) said_no_pushes: bool,
    pub(crate) write_back_warned: Option<Instant>,
    pub(crate) said_seed: bool,
}
