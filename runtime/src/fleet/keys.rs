//! The versioned key layout in Redis (documented in the README, so a script
//! in any language can read and write the shared state).
//!
//! Every key starts with `async-upload:v1:`; a change of layout gets a new
//! version prefix, so replicas of two releases never misread each other.

/// Prefix of every key of layout version 1.
pub(crate) const PREFIX: &str = "async-upload:v1:";

/// The names of every key and channel of one deployment.
#[derive(Clone, Debug)]
pub(crate) struct Keys;

impl Keys {
    /// HASH `enabled`, `rollout`: the fleet-wide defaults every site follows
    /// unless its own hash says otherwise. Absent: no state yet.
    pub(crate) fn defaults() -> String {
        format!("{PREFIX}defaults")
    }

    /// SET of the site names that have a hash.
    pub(crate) fn sites() -> String {
        format!("{PREFIX}sites")
    }

    /// HASH of one site: `enabled`, `rollout`, `fallback`, `max_retries`,
    /// `timeout`, `stage`, `rolled_back`, `reason`, `version`.
    pub(crate) fn site(site: &str) -> String {
        format!("{PREFIX}site:{site}")
    }

    /// STRING: the version of the shared state, bumped by every change.
    pub(crate) fn version() -> String {
        format!("{PREFIX}version")
    }

    /// Pub/sub channel: `<version> <site>` (`*` for the defaults) after
    /// every change.
    pub(crate) fn changes() -> String {
        format!("{PREFIX}changes")
    }

    /// STRING with a TTL: the instance that runs the site's controller.
    pub(crate) fn lease(site: &str) -> String {
        format!("{PREFIX}lease:{site}")
    }

    /// STRING (JSON) with a TTL: one replica's last report.
    pub(crate) fn replica(instance: &str) -> String {
        format!("{PREFIX}replica:{instance}")
    }

    /// ZSET: instance → milliseconds since the Unix epoch of its last report.
    pub(crate) fn replicas() -> String {
        format!("{PREFIX}replicas")
    }
}
