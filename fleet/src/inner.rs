//! What a fleet member's threads and its handle share.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::apply::Applier;
use crate::contact::ContactLog;
use crate::health::HealthBook;
use crate::pending::PendingStage;
use crate::state::Defaults;
use crate::store::Store;

/// The state of one running fleet member, behind the [`Fleet`](crate::Fleet)
/// handle's `Arc`.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) url: String,
    pub(crate) ca: Option<PathBuf>,
    pub(crate) instance: String,
    /// This run of the process (the report's `run`).
    pub(crate) run: String,
    pub(crate) stale_after: Option<Duration>,
    pub(crate) seed: Option<Defaults>,
    /// The actuator's connection (the threads have their own).
    pub(crate) store: Store,
    pub(crate) applier: Mutex<Applier>,
    pub(crate) applied_version: AtomicU64,
    /// The store's epoch and version as stored, at the last read.
    pub(crate) seen: Mutex<(Option<String>, Option<String>)>,
    pub(crate) connected: AtomicBool,
    pub(crate) pushes: AtomicBool,
    /// The last contact with valid shared state (what `stale_after` counts).
    pub(crate) last_contact: Mutex<Option<Instant>>,
    /// The first time this replica reached Redis (the seed waits a report TTL).
    pub(crate) first_contact: Mutex<Option<Instant>>,
    pub(crate) contact_log: Mutex<ContactLog>,
    pub(crate) health: Mutex<HealthBook>,
    /// Sites whose lease this replica asks for, and those it holds.
    pub(crate) leads: Mutex<BTreeSet<String>>,
    pub(crate) holding: Mutex<BTreeSet<String>>,
    /// The leader's stage writes not yet seen back in the applied state.
    pub(crate) stages: Mutex<BTreeMap<String, PendingStage>>,
    /// Sites whose rollback a call of this replica is latching in Redis
    /// right now: the sync thread does not write those back meanwhile, so
    /// the call that latched learns it did (and writes the one event).
    pub(crate) latching: Mutex<BTreeMap<String, usize>>,
    pub(crate) stop: AtomicBool,
}
