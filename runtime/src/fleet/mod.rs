//! Fleet mode (cargo feature `redis`): every replica shares each site's
//! enabled flag, rollout, stage, overrides and rollback latch through Redis.
//!
//! The data flow is a flag SDK's: a data source (pub/sub push, plus a
//! version poll every second as a safety net, plus a full resync after
//! every reconnect) writes into the process's live configuration, and the
//! call path reads only that local memory, never Redis. The fleet runs on
//! two threads of its own, never on the service's executor, so an
//! unreachable Redis can neither stall nor fail an upload.
//!
//! With `ASYNC_UPLOAD_REDIS_URL` set, the first use of the configuration
//! starts the fleet with no code ([`global`]); [`Fleet::builder`] is for
//! code that wants its own settings.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `ASYNC_UPLOAD_REDIS_URL` | `redis://host:port[/db]` shared by the fleet | unset (single process) |
//! | `ASYNC_UPLOAD_REDIS_STALE_AFTER` | seconds without contact before this replica falls to the sync path | `never`: keep the last known state |
//! | `ASYNC_UPLOAD_INSTANCE` | this replica's id | host name + process id |
//!
//! The key layout is documented in the README (layout version 1, every key
//! under `async-upload:v1:`).

mod apply;
mod env;
mod health;
mod keys;
mod report;
mod script;
mod seams;
mod state;
mod store;
mod threads;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

pub use env::{INSTANCE, REDIS_STALE_AFTER, REDIS_URL};
pub use report::{merge_reports, ReplicaReport};
pub use seams::LocalGuard;
pub(crate) use state::validate_site;
pub use state::{Defaults, FleetState, SiteState};
pub use store::{FleetError, Store, DEFAULT_TIMEOUT};

use apply::Applier;
use health::HealthBook;

/// How often a replica publishes its report and renews its leases.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How long a report lives: a replica that misses three reports drops out
/// of the fleet's health and status.
pub const REPORT_TTL: Duration = Duration::from_secs(3);
/// How long a lease lives unrenewed: a dead leader's site is taken over
/// within this time plus one report interval.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// The safety-net poll of the state version (pub/sub loses what is sent
/// while a connection is down).
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// A running fleet member: the subscriber and reporter threads and what
/// they share. Cheap to clone.
///
/// ```no_run
/// use async_upload::fleet::Fleet;
///
/// let fleet = Fleet::builder("redis://127.0.0.1:6379")
///     .instance("api-1")
///     .start()?;
/// assert_eq!(fleet.instance(), "api-1");
/// # Ok::<(), async_upload::fleet::FleetError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Fleet {
    inner: Arc<Inner>,
}

/// Settings of a [`Fleet`]; every one has a default.
#[derive(Debug)]
#[must_use = "a builder does nothing until `start`"]
pub struct FleetBuilder {
    url: String,
    instance: Option<String>,
    stale_after: Option<Duration>,
    seed: Option<Defaults>,
    local_enabled: Option<bool>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    url: String,
    instance: String,
    stale_after: Option<Duration>,
    seed: Option<Defaults>,
    /// The actuator's connection (the threads have their own).
    store: Store,
    applier: Mutex<Applier>,
    applied_version: AtomicU64,
    connected: AtomicBool,
    last_contact: Mutex<Option<Instant>>,
    /// Rollbacks latched locally while Redis was unreachable, to latch
    /// fleet-wide once it is reached again.
    pending: Mutex<Vec<(String, String)>>,
    health: Mutex<HealthBook>,
    /// Sites whose lease this replica asks for, and those it holds.
    leads: Mutex<BTreeSet<String>>,
    holding: Mutex<BTreeSet<String>>,
    stop: AtomicBool,
}

static GLOBAL: OnceLock<Fleet> = OnceLock::new();

/// The fleet started from `ASYNC_UPLOAD_REDIS_URL` by the first use of the
/// configuration, if the variable is set.
#[must_use]
pub fn global() -> Option<&'static Fleet> {
    GLOBAL.get()
}

/// Called by the configuration's implicit initialisation (before it is
/// installed, so it must not touch it): with `ASYNC_UPLOAD_REDIS_URL` set,
/// starts the fleet seeded by `config` and returns the config the process
/// starts with, on the sync path until the shared state is read.
pub(crate) fn start_from_env(mut config: crate::config::Config) -> crate::config::Config {
    let lookup = |name: &str| std::env::var(name).ok();
    let Some(url) = lookup(REDIS_URL) else {
        return config;
    };
    let seed = Defaults {
        enabled: config.enabled,
        rollout: config.rollout,
    };
    let stale_after = match lookup(REDIS_STALE_AFTER).map(|raw| env::parse_stale_after(&raw)) {
        None => None,
        Some(Ok(stale)) => stale,
        Some(Err(error)) => {
            tracing::error!(%error, "invalid fleet setting; keeping the last known state (`never`)");
            None
        }
    };
    let mut builder = Fleet::builder(url)
        .seed(seed)
        .local_enabled(env::explicit_enabled(&lookup));
    builder.stale_after = stale_after;
    if let Some(instance) = lookup(INSTANCE).filter(|i| !i.trim().is_empty()) {
        builder = builder.instance(instance);
    }
    match builder.spawn() {
        Ok(fleet) => {
            let _ = GLOBAL.set(fleet);
        }
        Err(error) => {
            tracing::error!(%error, "async-upload fleet not started; running the sync path");
        }
    }
    // No shared state yet: today's behaviour until the first read.
    config.enabled = false;
    config
}

impl Fleet {
    /// A builder for a fleet sharing state through the Redis at `url`.
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            instance: None,
            stale_after: None,
            seed: None,
            local_enabled: None,
        }
    }

    /// This replica's id.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The version of the shared state this replica applied last (0: none yet).
    #[must_use]
    pub fn applied_version(&self) -> u64 {
        self.inner.applied_version.load(Ordering::Acquire)
    }

    /// Whether the subscriber is connected to Redis now.
    #[must_use]
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// The shared state's store (one blocking round trip per call; never
    /// call it on the upload path).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Asks for the lease of `site`: the reporter takes it when free and
    /// renews it every [`REPORT_EVERY`]; [`Fleet::is_leader`] says when it
    /// is held. Exactly one replica holds a site's lease at a time.
    ///
    /// # Errors
    ///
    /// A site name with whitespace or an empty one.
    pub fn lead(&self, site: &str) -> Result<(), FleetError> {
        validate_site(site)?;
        lock(&self.inner.leads).insert(site.to_owned());
        Ok(())
    }

    /// Whether this replica holds the lease of `site` now (as of its last renewal).
    #[must_use]
    pub fn is_leader(&self, site: &str) -> bool {
        lock(&self.inner.holding).contains(site)
    }

    /// The stage of `site` in the shared state as this replica last applied it.
    #[must_use]
    pub fn shared_stage(&self, site: &str) -> Option<u32> {
        lock(&self.inner.applier).stage(site)
    }

    /// The merged cumulative counters of `site` over every live replica
    /// (and those that departed, so the totals never go down), or `None`
    /// without fresh fleet data (this replica is not the site's leader, or
    /// the last fetch is older than [`REPORT_TTL`]).
    #[must_use]
    pub fn health(&self, site: &str) -> Option<crate::metrics::SiteSnapshot> {
        lock(&self.inner.health).snapshot(site, Instant::now(), REPORT_TTL)
    }

    /// Records that `site` entered `stage` with `rollout` percent, for every
    /// replica. An unreachable Redis is logged: the fleet keeps its state.
    pub fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        if let Err(error) = self.inner.store.enter_stage(site, stage, rollout) {
            tracing::error!(site, stage, %error, "async-upload fleet: stage not shared");
        }
    }

    /// Latches the rollback of `site` fleet-wide: `true` when this call
    /// latched it. The local kill switch is thrown first, so this replica
    /// is protected even when Redis is unreachable; the latch is then
    /// written to Redis on reconnection.
    pub fn roll_back(&self, site: &str, reason: &str) -> bool {
        let local = crate::config::handle();
        let newly_local = local.rollback_reason(site).is_none();
        if newly_local {
            local.roll_back(site, reason);
        }
        match self.inner.store.roll_back(site, reason) {
            Ok(latched) => latched,
            Err(error) => {
                tracing::warn!(site, %error, "async-upload fleet: rollback latched locally; Redis gets it on reconnection");
                lock(&self.inner.pending).push((site.to_owned(), reason.to_owned()));
                newly_local
            }
        }
    }

    /// Lifts the rollback of `site` in Redis; every replica lifts it when
    /// the change reaches it (an operator action).
    pub fn clear_rollback(&self, site: &str) {
        if let Err(error) = self.inner.store.clear_rollback(site) {
            tracing::error!(site, %error, "async-upload fleet: rollback not cleared");
        }
    }

    /// The reason of the rollback latched for `site`, as this replica knows it.
    #[must_use]
    pub fn rollback_reason(&self, site: &str) -> Option<String> {
        crate::config::handle().rollback_reason(site)
    }

    /// Stops the fleet's threads (within about 100 ms); the live
    /// configuration keeps the last applied state.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Release);
    }
}

impl FleetBuilder {
    /// This replica's id in status and logs (default host name + process id).
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// After this long without contact, run the sync path until Redis is
    /// reached again (default: never, keep the last known state).
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.stale_after = Some(after);
        self
    }

    /// The defaults written to Redis if it has none yet (the environment's,
    /// when started from it). Without a seed an empty Redis keeps every
    /// replica on the sync path until an operator sets the defaults.
    pub fn seed(mut self, defaults: Defaults) -> Self {
        self.seed = Some(defaults);
        self
    }

    /// An explicit local `enabled`: `Some(false)` keeps this replica on the
    /// sync path whatever the shared state says.
    pub fn local_enabled(mut self, enabled: Option<bool>) -> Self {
        self.local_enabled = enabled;
        self
    }

    /// Starts the subscriber and reporter threads. Never waits for Redis:
    /// until the shared state is read, the process keeps the configuration
    /// it has (the sync path when started from the environment).
    ///
    /// # Errors
    ///
    /// A URL that is not a Redis URL, or an instance id with whitespace.
    pub fn start(self) -> Result<Fleet, FleetError> {
        self.spawn()
    }

    fn spawn(self) -> Result<Fleet, FleetError> {
        let store = Store::open(&self.url)?;
        let instance = self.instance.unwrap_or_else(env::default_instance);
        validate_site(&instance).map_err(|_| {
            crate::config::ConfigError::new(INSTANCE, &instance, "an id without whitespace")
        })?;
        let inner = Arc::new(Inner {
            url: self.url,
            instance,
            stale_after: self.stale_after,
            seed: self.seed,
            store,
            applier: Mutex::new(Applier::new(self.local_enabled)),
            applied_version: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            last_contact: Mutex::new(None),
            pending: Mutex::new(Vec::new()),
            health: Mutex::new(HealthBook::default()),
            leads: Mutex::new(BTreeSet::new()),
            holding: Mutex::new(BTreeSet::new()),
            stop: AtomicBool::new(false),
        });
        threads::spawn(&inner)?;
        Ok(Fleet { inner })
    }
}

/// A poisoned lock still holds consistent data here (every change is a
/// single assignment or a whole `apply`).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
