//! Writes the shared state into the process's live configuration, the only
//! thing the call path reads. Each transition is applied and logged once:
//! the applier compares with what it applied last, never per call.

use crate::config::ConfigHandle;

use super::state::FleetState;

/// What this replica has applied, and the local rules on top of it.
#[derive(Debug)]
pub(crate) struct Applier {
    /// An explicit `ASYNC_UPLOAD_ENABLED`: `Some(false)` is a local kill
    /// switch the shared state cannot lift.
    local_enabled: Option<bool>,
    /// The state applied last; `None` before the first contact.
    last: Option<FleetState>,
    /// The replica fell to the sync path after `stale_after` without contact.
    stale: bool,
}

impl Applier {
    pub(crate) fn new(local_enabled: Option<bool>) -> Self {
        Applier {
            local_enabled,
            last: None,
            stale: false,
        }
    }

    /// The version applied last (0: none).
    pub(crate) fn version(&self) -> u64 {
        self.last.as_ref().map_or(0, |s| s.version)
    }

    /// The stage of `site` in the state applied last.
    pub(crate) fn stage(&self, site: &str) -> Option<u32> {
        self.last.as_ref()?.sites.get(site)?.stage
    }

    /// Applies `state`: the defaults to the global config, each site's
    /// overrides and latch to its control. A site that has left the shared
    /// state loses its overrides and latch.
    pub(crate) fn apply(&mut self, state: FleetState, handle: &ConfigHandle) {
        if self.stale {
            tracing::info!(
                version = state.version,
                "async-upload fleet: Redis reached again; shared state applied"
            );
            self.stale = false;
        }
        self.apply_defaults(&state, handle);
        for (site, shared) in &state.sites {
            if handle.site_overrides(site) != shared.overrides {
                if let Err(error) = handle.set_site(site, shared.overrides.clone()) {
                    tracing::error!(site, %error, "async-upload fleet: shared overrides not applied");
                }
            }
            match (&shared.rollback, handle.rollback_reason(site)) {
                (Some(reason), None) => {
                    handle.roll_back(site, reason.clone());
                }
                // Only Redis confirming the latch is gone lifts a rollback seen locally.
                (None, Some(_)) => {
                    tracing::info!(
                        site,
                        version = state.version,
                        "async-upload fleet: rollback cleared"
                    );
                    handle.clear_rollback(site);
                }
                _ => {}
            }
        }
        if let Some(last) = &self.last {
            for gone in last.sites.keys().filter(|s| !state.sites.contains_key(*s)) {
                handle.clear_site(gone);
                handle.clear_rollback(gone);
            }
        }
        if self.last.as_ref().map(|s| s.version) != Some(state.version) {
            tracing::debug!(version = state.version, "async-upload fleet: state applied");
        }
        self.last = Some(state);
    }

    fn apply_defaults(&self, state: &FleetState, handle: &ConfigHandle) {
        let config = handle.config();
        let (enabled, rollout) = match state.defaults {
            Some(d) => (d.enabled && self.local_enabled != Some(false), d.rollout),
            // No shared state yet: today's behaviour, the sync path.
            None => (false, config.rollout),
        };
        if config.enabled != enabled || config.rollout.to_bits() != rollout.to_bits() {
            tracing::info!(
                enabled,
                rollout,
                version = state.version,
                "async-upload fleet: defaults applied"
            );
            if let Err(error) = handle.update(|c| {
                c.enabled = enabled;
                c.rollout = rollout;
            }) {
                tracing::error!(%error, "async-upload fleet: shared defaults not applied");
            }
        }
    }

    /// No contact for longer than `stale_after`: the replica runs the sync
    /// path until Redis is reached again. Logged once.
    pub(crate) fn fall_to_sync(&mut self, handle: &ConfigHandle) {
        if self.stale {
            return;
        }
        self.stale = true;
        tracing::warn!("async-upload fleet: no contact with Redis for ASYNC_UPLOAD_REDIS_STALE_AFTER; running the sync path");
        if let Err(error) = handle.update(|c| c.enabled = false) {
            tracing::error!(%error, "async-upload fleet: cannot fall to the sync path");
        }
        // The next contact re-applies everything.
        self.last = self.last.take().map(|mut s| {
            s.version = 0;
            s
        });
    }
}
