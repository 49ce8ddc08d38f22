//! The fleet's one stage clock: the stage and the time it was entered live
//! in the site's hash, written by the site's leader with a compare-and-set
//! (so two leaders for a moment never advance twice), and a write whose
//! reply is lost is read back and settled, never reverted.

use super::inner::Inner;
use super::lock::{lock, unix_ms};
use super::pending::{Pending, PendingStage};
use super::store::StageWrite;

/// The leader's controller entered `stage`: write it unless the store
/// holds it already (a resume keeps the store's clock; a stage the store
/// lost is written back with the time it was entered).
pub(crate) fn enter(inner: &Inner, site: &str, stage: u32, rollout: f64) {
    let (in_force, stored) = {
        let applier = lock(&inner.applier);
        (applier.stage(site), applier.stored_stage(site))
    };
    let entered_ms = match in_force {
        Some((now, entered)) if now == stage => {
            if stored.is_some_and(|(s, clock)| s == stage && clock.is_some()) {
                return;
            }
            entered.unwrap_or_else(unix_ms)
        }
        _ => unix_ms(),
    };
    let write = PendingStage {
        stage,
        rollout,
        entered_ms,
        expected: stored,
        state: Pending::Unsure,
    };
    attempt(inner, site, write);
}

/// The stage and its clock (Unix ms) of this replica's stage write for
/// `site` that is not yet applied, if there is one: until it is, the
/// applied stage is behind this replica's, not newer.
pub(crate) fn pending_stage(inner: &Inner, site: &str) -> Option<(u32, u64)> {
    lock(&inner.stages)
        .get(site)
        .map(|write| (write.stage, write.entered_ms))
}

fn attempt(inner: &Inner, site: &str, mut write: PendingStage) {
    let epoch = lock(&inner.applier).epoch();
    let result = inner.store.enter_stage_from(
        site,
        write.expected,
        (write.stage, write.rollout, write.entered_ms),
    );
    match result {
        Ok(StageWrite::Written(version)) => {
            write.state = Pending::Written { version, epoch };
            lock(&inner.stages).insert(site.to_owned(), write);
        }
        Ok(StageWrite::Moved) => read_back(inner, site, write, false),
        Err(error) => {
            tracing::warn!(
                site, stage = write.stage, %error,
                "async-upload fleet: stage write not confirmed; reading it back before anything else"
            );
            lock(&inner.stages).insert(site.to_owned(), write);
        }
    }
}

/// Reads the site back and settles a write whose outcome is unknown:
/// landed, to retry (the store still holds the expected clock), or
/// overtaken (someone else moved the stage: the controller follows).
fn read_back(inner: &Inner, site: &str, mut write: PendingStage, retry: bool) {
    let stored = match inner.store.site(site) {
        Ok(stored) => stored,
        Err(error) => {
            tracing::debug!(site, %error, "async-upload fleet: stage read-back failed; trying again");
            lock(&inner.stages).insert(site.to_owned(), write);
            return;
        }
    };
    let now = stored
        .as_ref()
        .and_then(|s| s.stage.map(|stage| (stage, s.stage_entered_ms)));
    if now == Some((write.stage, Some(write.entered_ms))) {
        tracing::info!(
            site,
            stage = write.stage,
            "async-upload fleet: the stage write had landed"
        );
        write.state = Pending::Written {
            version: stored.map_or(0, |s| s.version),
            epoch: lock(&inner.applier).epoch(),
        };
        lock(&inner.stages).insert(site.to_owned(), write);
    } else if now == write.expected && retry {
        attempt(inner, site, write);
    } else {
        lock(&inner.stages).remove(site);
        tracing::info!(
            site,
            stage = write.stage,
            stored = ?now.map(|(stage, _)| stage),
            by = stored.as_ref().and_then(|s| s.by.as_deref()).unwrap_or(""),
            "async-upload fleet: the stage was moved by someone else; following the store"
        );
    }
}

/// Forgets the writes the applied state has reached and, with
/// `read_back` (the reporter, every second), reads back those whose reply
/// was lost.
pub(crate) fn settle(inner: &Inner, read_back_lost: bool) {
    let pending: Vec<(String, PendingStage)> = lock(&inner.stages)
        .iter()
        .map(|(site, write)| (site.clone(), write.clone()))
        .collect();
    for (site, write) in pending {
        match &write.state {
            Pending::Unsure if read_back_lost => read_back(inner, &site, write, true),
            Pending::Unsure => {}
            Pending::Written { version, epoch } => {
                let applier = lock(&inner.applier);
                let reached = applier.version() >= *version || applier.epoch() != *epoch;
                drop(applier);
                if reached {
                    lock(&inner.stages).remove(&site);
                }
            }
        }
    }
}
