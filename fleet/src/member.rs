//! A running fleet member: the [`Fleet`] handle, its builder, and the
//! fleet started from the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::apply::Applier;
use crate::connect::FleetError;
use crate::contact::ContactLog;
use crate::env::{self, INSTANCE, REDIS_STALE_AFTER, REDIS_URL};
use crate::health::HealthBook;
use crate::inner::Inner;
use crate::lock::lock;
use crate::state::{self, validate_site, Defaults};
use crate::store::Store;
use crate::timing::REPORT_TTL;
use crate::{keys, script, stage, threads};

/// A running fleet member: the subscriber and reporter threads and what
/// they share. Cheap to clone.
///
/// ```no_run
/// use async_upload_fleet::Fleet;
///
/// let fleet = Fleet::builder("redis://127.0.0.1:6379")
///     .instance("api-1")
///     .start()?;
/// assert_eq!(fleet.instance(), "api-1");
/// # Ok::<(), async_upload_fleet::FleetError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Fleet {
    pub(crate) inner: Arc<Inner>,
}

/// Settings of a [`Fleet`]; every one has a default.
#[derive(Debug)]
#[must_use = "a builder does nothing until `start`"]
pub struct FleetBuilder {
    url: String,
    ca: Option<PathBuf>,
    instance: Option<String>,
    stale_after: Option<Duration>,
    seed: Option<Defaults>,
    local_enabled: Option<bool>,
}

static GLOBAL: OnceLock<Fleet> = OnceLock::new();

/// The fleet started from `ASYNC_UPLOAD_REDIS_URL` by the first use of the
/// configuration, if the variable is set.
#[must_use]
pub fn global() -> Option<&'static Fleet> {
    GLOBAL.get()
}

/// Fleet mode from the environment, as the start-up of the process's
/// configuration runs it ([`config::Startup`](async_upload_runtime::config::Startup); the
/// `async-upload` facade registers it): with `ASYNC_UPLOAD_REDIS_URL` set,
/// starts the [`global`] fleet seeded by `config` and returns the
/// configuration the process starts with, on the sync path until the shared
/// state is read. Without it, returns `config` unchanged.
///
/// Runs before the configuration is put in force: it must not use
/// [`config::handle`](async_upload_runtime::config::handle).
#[must_use]
pub fn start_from_env(
    mut config: async_upload_runtime::config::Config,
) -> async_upload_runtime::config::Config {
    let lookup = |name: &str| std::env::var(name).ok();
    let Some(url) = lookup(REDIS_URL) else {
        return config;
    };
    let stale_after = match lookup(REDIS_STALE_AFTER).map(|raw| env::parse_stale_after(&raw)) {
        None => None,
        Some(Ok(stale)) => stale,
        Some(Err(error)) => {
            tracing::error!(%error, "invalid fleet setting; keeping the last known state (`never`)");
            None
        }
    };
    let mut builder = Fleet::builder(url).local_enabled(env::explicit_enabled(&lookup));
    // Only what the environment says explicitly seeds a new store.
    if env::explicit_routing(&lookup) {
        builder = builder.seed(Defaults {
            enabled: config.enabled,
            rollout: config.rollout,
        });
    }
    builder.stale_after = stale_after;
    builder.ca = env::ca_from_env();
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
            ca: None,
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

    /// Whether this replica receives the change channel's pushes while
    /// connected (`false`: its ACL user may not subscribe, and it follows
    /// changes by the once-a-second poll only).
    #[must_use]
    pub fn receives_pushes(&self) -> bool {
        self.inner.pushes.load(Ordering::Acquire)
    }

    /// Whether this replica runs on the state it remembers from a store
    /// that is gone (Redis came back empty, or is another Redis), until an
    /// operator sets the defaults in the one it reaches now.
    #[must_use]
    pub fn remembered(&self) -> bool {
        lock(&self.inner.applier).remembered()
    }

    /// The shared state's store (one blocking round trip per call; never
    /// call it on the upload path).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Asks for the lease of `site`: the reporter takes it when free and
    /// renews it every [`REPORT_EVERY`](crate::REPORT_EVERY); [`Fleet::is_leader`] says when it
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
        lock(&self.inner.applier)
            .stage(site)
            .map(|(stage, _)| stage)
    }

    /// When `site` entered its shared stage (the fleet's one stage clock),
    /// as this replica last applied it.
    #[must_use]
    pub fn stage_entered(&self, site: &str) -> Option<SystemTime> {
        let (_, entered) = lock(&self.inner.applier).stage(site)?;
        entered.map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The merged cumulative counters of `site` over every replica run
    /// (those that departed too, so the totals never go down; each run
    /// counted once), or `None` without fresh fleet data: this replica does
    /// not lead the site, the last fetch is older than [`REPORT_TTL`], or a
    /// live replica has not yet reported since it applied the site's last
    /// cleared rollback.
    #[must_use]
    pub fn health(&self, site: &str) -> Option<async_upload_runtime::metrics::SiteSnapshot> {
        let clear = lock(&self.inner.applier).clear(site);
        lock(&self.inner.health).snapshot(site, Instant::now(), REPORT_TTL, clear.as_ref())
    }

    /// Records that `site` entered `stage` with `rollout` percent, for every
    /// replica (the leader's controller; see [`Fleet::drive`]). The stage
    /// clock is the store's: a stage already in force keeps the time it
    /// was entered; a write whose reply is lost is read back, never
    /// repeated blindly or reverted.
    pub fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        stage::enter(&self.inner, site, stage, rollout);
    }

    /// Latches the rollback of `site` fleet-wide: `true` when this call
    /// latched it. The local kill switch is thrown first, so this replica
    /// is protected even when Redis is unreachable; a latch Redis did not
    /// get is written back as soon as it is reached.
    pub fn roll_back(&self, site: &str, reason: &str) -> bool {
        let reason = state::bounded(reason, keys::TEXT_LIMIT);
        // Before the local switch: from then on the sync thread sees the
        // latch, and its write-back would win the race to Redis and leave
        // this call finding the site "already latched".
        let _latching = Latching::new(&self.inner.latching, site);
        let local = async_upload_runtime::config::handle();
        let newly_local = local.rollback_reason(site).is_none();
        if newly_local {
            local.roll_back(site, reason);
        }
        lock(&self.inner.applier).latch(site, reason);
        match self.inner.store.roll_back(site, reason) {
            Ok(latched) => latched,
            Err(error) => {
                tracing::warn!(site, %error, "async-upload fleet: rollback latched locally; written to Redis once it is reached");
                newly_local
            }
        }
    }

    /// Lifts the rollback of `site` in Redis (an operator action through
    /// code); every replica lifts it when the change reaches it. Nothing is
    /// written when this replica holds no latch for the site (the store
    /// cleared it already).
    pub fn clear_rollback(&self, site: &str) {
        let handle = async_upload_runtime::config::handle();
        {
            let mut applier = lock(&self.inner.applier);
            if !applier.latched(site) && handle.rollback_reason(site).is_none() {
                return;
            }
            applier.unlatch(site);
        }
        handle.clear_rollback(site);
        if let Err(error) = self.inner.store.clear_rollback(site) {
            tracing::error!(site, %error, "async-upload fleet: rollback not cleared in Redis; the store's latch comes back");
        }
    }

    /// The reason of the rollback latched for `site`, as this replica knows it.
    #[must_use]
    pub fn rollback_reason(&self, site: &str) -> Option<String> {
        async_upload_runtime::config::handle().rollback_reason(site)
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

    /// After this long without contact with valid shared state, run the
    /// sync path until Redis is reached again (default: never, keep the
    /// last known state).
    pub fn stale_after(mut self, after: Duration) -> Self {
        self.stale_after = Some(after);
        self
    }

    /// The defaults written to Redis if it has never held state (no store
    /// epoch, and no live replica remembers one). Without a seed an empty
    /// Redis keeps every replica on the sync path until an operator sets
    /// the defaults; a replica never seeds over state it has seen.
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

    /// A PEM file of extra trusted roots for `rediss://` (added to the
    /// system's), as `ASYNC_UPLOAD_REDIS_CA` gives when started from the
    /// environment.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }

    /// Starts the subscriber and reporter threads. Never waits for Redis:
    /// until the shared state is read, the process keeps the configuration
    /// it has (the sync path when started from the environment).
    ///
    /// # Errors
    ///
    /// A URL that is not a Redis URL, a CA file that is not PEM, or an
    /// instance id with whitespace.
    pub fn start(self) -> Result<Fleet, FleetError> {
        self.spawn()
    }

    fn spawn(self) -> Result<Fleet, FleetError> {
        let instance = self.instance.unwrap_or_else(env::default_instance);
        validate_site(&instance).map_err(|_| {
            async_upload_runtime::config::ConfigError::new(
                INSTANCE,
                &instance,
                "an id without whitespace",
            )
        })?;
        let store = Store::open_with_ca(&self.url, self.ca.as_deref())?.with_actor(&instance);
        let inner = Arc::new(Inner {
            url: self.url,
            ca: self.ca,
            applier: Mutex::new(Applier::new(&instance, self.local_enabled)),
            instance,
            run: script::mint_epoch(),
            stale_after: self.stale_after,
            seed: self.seed,
            store,
            applied_version: AtomicU64::new(0),
            seen: Mutex::new((None, None)),
            connected: AtomicBool::new(false),
            pushes: AtomicBool::new(false),
            last_contact: Mutex::new(None),
            first_contact: Mutex::new(None),
            contact_log: Mutex::new(ContactLog::default()),
            health: Mutex::new(HealthBook::default()),
            leads: Mutex::new(BTreeSet::new()),
            holding: Mutex::new(BTreeSet::new()),
            stages: Mutex::new(BTreeMap::new()),
            latching: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
        });
        threads::spawn(&inner)?;
        Ok(Fleet { inner })
    }
}

/// A site marked as being latched by a call of this replica, while the
/// guard lives (counted: two controllers of one replica may latch at once).
struct Latching<'a> {
    sites: &'a Mutex<BTreeMap<String, usize>>,
    site: &'a str,
}

impl<'a> Latching<'a> {
    fn new(sites: &'a Mutex<BTreeMap<String, usize>>, site: &'a str) -> Self {
        *lock(sites).entry(site.to_owned()).or_default() += 1;
        Latching { sites, site }
    }
}

impl Drop for Latching<'_> {
    fn drop(&mut self) {
        let mut sites = lock(self.sites);
        if let Some(calls) = sites.get_mut(self.site) {
            *calls -= 1;
            if *calls == 0 {
                sites.remove(self.site);
            }
        }
    }
}
