//! What the applier changed in this replica's configuration, typed: one
//! [`Change`] per setting per site, with who made it in the shared state.
//! Every change an operator (or a leader) makes reaches each replica as
//! these, in one place ([`Change::emit`]).

use std::fmt;
use std::time::Duration;

/// One change applied from the shared state.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub(crate) struct Change {
    /// The site, or `None` for the fleet-wide defaults.
    pub(crate) site: Option<String>,
    /// What changed, old → new.
    pub(crate) what: What,
    /// Who made it, as the shared state says (`operator[:<user>]`, an
    /// instance id), or `None` when the replica itself decided (a site
    /// with bad data runs the sync path; a latch it keeps from a store
    /// that came back empty).
    pub(crate) by: Option<String>,
}

/// A setting, old → new (`None`: not set, the site follows the defaults).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum What {
    /// The async path may run (fleet-wide, or this site's override).
    Enabled {
        old: Option<bool>,
        new: Option<bool>,
    },
    /// Percent of keys enrolled.
    Rollout { old: Option<f64>, new: Option<f64> },
    /// Fall back to the sync path when the async path gives up.
    Fallback {
        old: Option<bool>,
        new: Option<bool>,
    },
    /// Retries after the first attempt.
    MaxRetries { old: Option<u32>, new: Option<u32> },
    /// Seconds per async attempt.
    Timeout {
        old: Option<Duration>,
        new: Option<Duration>,
    },
    /// The rollout stage.
    Stage { old: Option<u32>, new: Option<u32> },
    /// The rollback latch: its reason while latched.
    Rollback {
        old: Option<String>,
        new: Option<String>,
    },
}

impl What {
    /// The setting's name, as in the key layout.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            What::Enabled { .. } => "enabled",
            What::Rollout { .. } => "rollout",
            What::Fallback { .. } => "fallback",
            What::MaxRetries { .. } => "max_retries",
            What::Timeout { .. } => "timeout",
            What::Stage { .. } => "stage",
            What::Rollback { .. } => "rolled_back",
        }
    }

    fn values(&self) -> (String, String) {
        fn show<T: fmt::Debug>(value: Option<&T>) -> String {
            value.map_or_else(|| "unset".to_owned(), |v| format!("{v:?}"))
        }
        match self {
            What::Enabled { old, new } | What::Fallback { old, new } => {
                (show(old.as_ref()), show(new.as_ref()))
            }
            What::Rollout { old, new } => (show(old.as_ref()), show(new.as_ref())),
            What::MaxRetries { old, new } | What::Stage { old, new } => {
                (show(old.as_ref()), show(new.as_ref()))
            }
            What::Timeout { old, new } => (show(old.as_ref()), show(new.as_ref())),
            What::Rollback { old, new } => (show(old.as_ref()), show(new.as_ref())),
        }
    }
}

impl Change {
    /// Reports the change: one `tracing` event (the operator-action event
    /// of the log is built from this same value).
    pub(crate) fn emit(&self, instance: &str) {
        let (old, new) = self.what.values();
        tracing::info!(
            instance,
            site = self.site.as_deref().unwrap_or("*"),
            setting = self.what.name(),
            %old,
            %new,
            by = self.by.as_deref().unwrap_or("this replica"),
            "async-upload fleet: change applied"
        );
    }
}
