//! The versioned key layout in Redis (documented in docs/fleet.md, so a script
//! in any language can read and write the shared state).
//!
//! Every key starts with `async-upload:v1:`. The layout grows only by keys
//! and fields a reader may ignore (the store epoch, the stage clock, the
//! actors, the per-database change channel came that way); a change that a
//! reader could misread would get a new version prefix.

/// Prefix of every key of layout version 1.
pub(crate) const PREFIX: &str = "async-upload:v1:";

/// The longest text value the fleet reads or writes (`reason`, `by`): 1 KiB.
pub(crate) const TEXT_LIMIT: usize = 1024;

/// The names of every key and channel of one deployment (one database).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    db: i64,
}

impl Keys {
    /// The keys of database `db`.
    pub(crate) fn new(db: i64) -> Self {
        Keys { db }
    }

    /// STRING: the store epoch, a random id minted by the first write to a
    /// store that has none. A store that comes back empty, or another
    /// store, has another epoch (or none): replicas keep what they know.
    pub(crate) fn epoch() -> String {
        format!("{PREFIX}epoch")
    }

    /// HASH `enabled`, `rollout`, `by`, `version`: the fleet-wide defaults
    /// every site follows unless its own hash says otherwise. Absent: none yet.
    pub(crate) fn defaults() -> String {
        format!("{PREFIX}defaults")
    }

    /// SET of the site names that have a hash.
    pub(crate) fn sites() -> String {
        format!("{PREFIX}sites")
    }

    /// HASH of one site: the overrides, the stage clock, the latch and who
    /// made the last change (see docs/fleet.md).
    pub(crate) fn site(site: &str) -> String {
        format!("{PREFIX}site:{site}")
    }

    /// STRING: the version of the shared state, bumped by every change.
    pub(crate) fn version() -> String {
        format!("{PREFIX}version")
    }

    /// Pub/sub channel of this database: `<epoch> <version> <site>` (`*`
    /// for the defaults) after every change. Channels are global to a
    /// Redis server, so the database number is part of the name.
    pub(crate) fn changes(&self) -> String {
        format!("{PREFIX}changes:{}", self.db)
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
