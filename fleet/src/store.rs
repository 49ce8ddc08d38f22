//! [`Store`]: the shared state in Redis, read and written in single round
//! trips (blocking, with short timeouts). The operators' command, the
//! controller's actuator and the fleet's threads use it; the call path
//! never does.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Commands, Connection, ConnectionLike};

use super::connect::{self, ContactCause, FleetError};
use super::keys::Keys;
use super::read::parse_state;
use super::report::ReplicaReport;
use super::script::{self, Mode, Write};
use super::state::{
    field, override_fields, validate_site, validate_text, Defaults, FleetState, SiteState,
};
use async_upload_runtime::config::{ConfigError, SiteOverrides};

/// Longest a [`Store`] waits to connect, and for each reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a stage write found (see [`Store::enter_stage_from`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StageWrite {
    /// Written at this version.
    Written(u64),
    /// The store holds another stage clock than the expected one: someone
    /// else moved the stage (or this very write landed before).
    Moved,
}

/// The shared control state in one Redis, under the `async-upload:v1:`
/// key layout (see docs/fleet.md).
///
/// Each method is one round trip on a connection opened on first use and
/// reopened after an error; every write goes through one Lua script that
/// bumps the state version and publishes the change, so every replica
/// applies it within a second. Every write records who made it (the
/// store's actor: `operator` unless set with [`Store::with_actor`]).
///
/// ```no_run
/// use async_upload_runtime::config::SiteOverrides;
/// use async_upload_fleet::Store;
///
/// let store = Store::open("redis://127.0.0.1:6379")?;
/// store.update_site("upload_file", &SiteOverrides { rollout: Some(10.0), ..Default::default() })?;
/// assert!(store.roll_back("upload_file", "error rate above 5%")?); // this call latched it
/// assert!(!store.roll_back("upload_file", "again")?); // already latched
/// # Ok::<(), async_upload_fleet::FleetError>(())
/// ```
pub struct Store {
    client: redis::Client,
    url: String,
    keys: Keys,
    /// `rediss://`.
    tls: bool,
    actor: String,
    timeout: Duration,
    connection: Mutex<Option<Connection>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store for `url` (`redis://[user:password@]host:port[/db]`, or
    /// `rediss://` for TLS, trusting the system's roots plus those in the
    /// PEM file named by `ASYNC_UPLOAD_REDIS_CA`, if set); nothing is sent yet.
    ///
    /// # Errors
    ///
    /// A URL that is not a Redis URL (Sentinel and Cluster URLs are not
    /// supported), or a CA file that cannot be read as PEM.
    pub fn open(url: &str) -> Result<Store, FleetError> {
        Store::open_with_ca(url, super::env::ca_from_env().as_deref())
    }

    /// As [`Store::open`], with `ca` (a PEM file of extra trusted roots for
    /// `rediss://`) instead of `ASYNC_UPLOAD_REDIS_CA`.
    ///
    /// # Errors
    ///
    /// As [`Store::open`].
    pub fn open_with_ca(url: &str, ca: Option<&Path>) -> Result<Store, FleetError> {
        let client = connect::client(url, ca)?;
        let db = client.get_connection_info().redis_settings().db();
        Ok(Store {
            client,
            url: connect::redacted(url),
            keys: Keys::new(db),
            tls: url.starts_with("rediss://"),
            actor: "operator".to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connection: Mutex::new(None),
        })
    }

    /// Sets how long to wait to connect and for each reply (default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets who the writes of this store are by (default `operator`; the
    /// command line writes `operator:<user>`, a replica its instance id).
    /// Cut to 1 KiB.
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        let actor = actor.into();
        super::state::bounded(&actor, super::keys::TEXT_LIMIT).clone_into(&mut self.actor);
        self
    }

    /// The URL, without its password.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Everything the fleet shares, read in one round trip (one consistent
    /// snapshot). A stored value that is not accepted is local to its
    /// field, site or the defaults: it is in the state's problems, never
    /// an error of the read.
    ///
    /// # Errors
    ///
    /// Redis unreachable, or refusing the read.
    pub fn state(&self) -> Result<FleetState, FleetError> {
        self.state_with(&[])
    }

    /// [`Store::state`], reading the hashes of `known` sites too (in case
    /// the sites set lost them).
    pub(crate) fn state_with(&self, known: &[&str]) -> Result<FleetState, FleetError> {
        let reply: redis::Value = self.query(|c| script::read(known.iter().copied()).invoke(c))?;
        Ok(parse_state(reply))
    }

    /// The store epoch and the state version as stored (the replicas'
    /// cheap safety-net poll; raw, so that a bad value still compares).
    ///
    /// # Errors
    ///
    /// Redis unreachable, or a key of the wrong type.
    pub(crate) fn epoch_and_version(&self) -> Result<(Option<String>, Option<String>), FleetError> {
        self.query(|c| {
            redis::cmd("MGET")
                .arg(Keys::epoch())
                .arg(Keys::version())
                .query(c)
        })
    }

    /// The current state version alone.
    ///
    /// # Errors
    ///
    /// Redis unreachable.
    pub fn version(&self) -> Result<u64, FleetError> {
        let (_, version) = self.epoch_and_version()?;
        Ok(version
            .and_then(|v| super::state::parse_whole("version", &v).ok())
            .unwrap_or(0))
    }

    /// Sets the fleet-wide defaults.
    ///
    /// # Errors
    ///
    /// Redis unreachable, or a rollout outside 0–100 with more than two decimals.
    pub fn set_defaults(&self, defaults: Defaults) -> Result<u64, FleetError> {
        check_rollout(defaults.rollout)?;
        self.write(Mode::Set, None, defaults.fields(), Vec::new())
    }

    /// Sets only the defaults given (`Some`), keeping the others as stored
    /// (so the kill switch works whatever the other field holds).
    ///
    /// # Errors
    ///
    /// Redis unreachable, nothing given, or a rollout out of range.
    pub fn update_defaults(
        &self,
        enabled: Option<bool>,
        rollout: Option<f64>,
    ) -> Result<u64, FleetError> {
        let mut set = Vec::new();
        if let Some(enabled) = enabled {
            set.push((field::ENABLED, enabled.to_string()));
        }
        if let Some(rollout) = rollout {
            check_rollout(rollout)?;
            set.push((field::ROLLOUT, rollout.to_string()));
        }
        if set.is_empty() {
            return Err(ConfigError::new("defaults", "", "enabled, rollout or both").into());
        }
        self.write(Mode::Set, None, set, Vec::new())
    }

    /// Writes `defaults` only into a store that has never held state (no
    /// store epoch): the environment seeds a new store. `true` when this
    /// call wrote them.
    ///
    /// # Errors
    ///
    /// As [`Store::set_defaults`].
    pub fn seed_defaults(&self, defaults: Defaults) -> Result<bool, FleetError> {
        check_rollout(defaults.rollout)?;
        Ok(self.write(Mode::Seed, None, defaults.fields(), Vec::new())? > 0)
    }

    /// Writes the overrides of `site` that are set (`Some`), keeping the others.
    ///
    /// # Errors
    ///
    /// Redis unreachable, a bad site name or an override out of range.
    pub fn update_site(&self, site: &str, overrides: &SiteOverrides) -> Result<u64, FleetError> {
        validate_site(site)?;
        overrides.validate()?;
        let (set, _unset) = override_fields(overrides);
        self.write(Mode::Set, Some(site), set, Vec::new())
    }

    /// Removes every override of `site` (it follows the defaults again).
    ///
    /// # Errors
    ///
    /// Redis unreachable or a bad site name.
    pub fn clear_site(&self, site: &str) -> Result<u64, FleetError> {
        validate_site(site)?;
        self.write(Mode::Set, Some(site), Vec::new(), field::OVERRIDES.to_vec())
    }

    /// Records that `site` entered `stage` now, routing `rollout` percent
    /// of its keys (an operator's `fleet advance`).
    ///
    /// # Errors
    ///
    /// Redis unreachable, a bad site name or rollout.
    pub fn enter_stage(&self, site: &str, stage: u32, rollout: f64) -> Result<u64, FleetError> {
        validate_site(site)?;
        check_rollout(rollout)?;
        self.write(
            Mode::Set,
            Some(site),
            stage_fields(stage, rollout, super::lock::unix_ms()),
            Vec::new(),
        )
    }

    /// Records that `site` entered `stage` at `entered_ms`, only if its
    /// stage clock is still `expected` (the leader's compare-and-set).
    pub(crate) fn enter_stage_from(
        &self,
        site: &str,
        expected: Option<(u32, Option<u64>)>,
        stage: (u32, f64, u64),
    ) -> Result<StageWrite, FleetError> {
        let (number, rollout, entered_ms) = stage;
        check_rollout(rollout)?;
        let version = self.write(
            Mode::Stage { expected },
            Some(site),
            stage_fields(number, rollout, entered_ms),
            Vec::new(),
        )?;
        Ok(if version > 0 {
            StageWrite::Written(version)
        } else {
            StageWrite::Moved
        })
    }

    /// Latches the rollback of `site` with `reason`, atomically: `true` when
    /// this call latched it, `false` when it already was.
    ///
    /// # Errors
    ///
    /// Redis unreachable, a bad site name or a reason over 1 KiB.
    pub fn roll_back(&self, site: &str, reason: &str) -> Result<bool, FleetError> {
        validate_site(site)?;
        validate_text("reason", reason)?;
        let version = self.write(
            Mode::Latch,
            Some(site),
            vec![
                (field::ROLLED_BACK, "true".to_owned()),
                (field::REASON, reason.to_owned()),
            ],
            vec![field::CLEARED_VERSION],
        )?;
        Ok(version > 0)
    }

    /// Lifts the rollback of `site` (an operator action): writes an
    /// explicit clear, the only thing that makes a replica lift a latch it
    /// has seen. The site's stage starts over (its clock restarts now).
    ///
    /// # Errors
    ///
    /// Redis unreachable or a bad site name.
    pub fn clear_rollback(&self, site: &str) -> Result<u64, FleetError> {
        validate_site(site)?;
        self.write(
            Mode::Set,
            Some(site),
            vec![
                (field::ROLLED_BACK, "false".to_owned()),
                (field::CLEARED_VERSION, "$version".to_owned()),
                (field::STAGE_ENTERED_MS, super::lock::unix_ms().to_string()),
            ],
            vec![field::REASON],
        )
    }

    /// The site's state alone (a write's read-back).
    pub(crate) fn site(&self, site: &str) -> Result<Option<SiteState>, FleetError> {
        let state = self.state_with(&[site])?;
        Ok(state.sites.get(site).cloned())
    }

    /// The reports of the live replicas (those whose report has not expired),
    /// by instance. A report this release cannot read is skipped.
    ///
    /// # Errors
    ///
    /// Redis unreachable.
    pub fn replicas(&self) -> Result<Vec<ReplicaReport>, FleetError> {
        let instances: Vec<String> = self.query(|c| c.zrange(Keys::replicas(), 0, -1))?;
        if instances.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = instances.iter().map(|i| Keys::replica(i)).collect();
        let reports: Vec<Option<String>> =
            self.query(|c| redis::cmd("MGET").arg(&keys).query(c))?;
        let mut live: Vec<ReplicaReport> = reports
            .iter()
            .flatten()
            .filter_map(|json| ReplicaReport::from_json(json))
            .collect();
        live.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(live)
    }

    /// The instance that holds the lease of `site` (runs its controller), if any.
    ///
    /// # Errors
    ///
    /// Redis unreachable.
    pub fn leader(&self, site: &str) -> Result<Option<String>, FleetError> {
        self.query(|c| c.get(Keys::lease(site)))
    }

    fn write(
        &self,
        mode: Mode,
        site: Option<&str>,
        mut set: Vec<(&'static str, String)>,
        delete: Vec<&'static str>,
    ) -> Result<u64, FleetError> {
        set.push((field::BY, self.actor.clone()));
        let write = Write {
            mode,
            site,
            set,
            delete,
        };
        self.query(|c| write.invocation(&self.keys).invoke(c))
    }

    /// Drops the connection: the next call opens a fresh one (a session
    /// starts on a fresh connection, never on one a restart killed).
    pub(crate) fn reset(&self) {
        *self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Runs `command` on the connection, opening it first if needed; an
    /// error drops the connection so the next call reconnects. A reused
    /// connection that turns out dead (Redis restarted: broken pipe, reset)
    /// is replaced once at once, before the error is given up on: every
    /// command here is safe to send twice (reads, and writes that check
    /// before they write or write the same fields again).
    pub(crate) fn query<T>(
        &self,
        mut command: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, FleetError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let reused = slot.as_ref().is_some_and(ConnectionLike::is_open);
        for attempt in 0..2 {
            if slot.as_ref().is_none_or(|c| !c.is_open()) {
                *slot = Some(self.connect()?);
            }
            let connection = slot
                .as_mut()
                .unwrap_or_else(|| unreachable!("opened above"));
            match command(connection) {
                Ok(value) => return Ok(value),
                Err(error) => {
                    *slot = None;
                    let dead = error.is_io_error() && !error.is_timeout();
                    if !(attempt == 0 && reused && dead) {
                        return Err(self.error(&error));
                    }
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    fn connect(&self) -> Result<Connection, FleetError> {
        connect::open(&self.client, self.timeout).map_err(|e| self.error(&e))
    }

    pub(crate) fn error(&self, error: &redis::RedisError) -> FleetError {
        connect::error(&self.url, error)
    }

    /// Checks that the server is a standalone Redis: Sentinel and Cluster
    /// are not supported (a user without the right to `INFO` passes).
    pub(crate) fn probe(&self) -> Result<(), FleetError> {
        let info: Result<String, FleetError> =
            self.query(|c| redis::cmd("INFO").arg("server").query(c));
        match info {
            Ok(info) => connect::check_mode(&self.url, &info),
            Err(error) if error.cause() == Some(ContactCause::Permission) => Ok(()),
            Err(FleetError::Redis { url, detail, cause })
                if cause == ContactCause::Unreachable && !self.tls && closed(&detail) =>
            {
                // A fresh connection closed before its first reply: the
                // port speaks TLS (a Redis that is down refuses, it does not close).
                Err(FleetError::Redis {
                    url,
                    detail: format!("{detail}; is it a TLS port? use rediss://"),
                    cause: ContactCause::Tls,
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// A connection the server closed (rather than refused or timed out).
fn closed(detail: &str) -> bool {
    ["end of file", "reset by peer", "Broken pipe", "broken pipe"]
        .iter()
        .any(|needle| detail.contains(needle))
}

fn stage_fields(stage: u32, rollout: f64, entered_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        (field::STAGE, stage.to_string()),
        (field::STAGE_ENTERED_MS, entered_ms.to_string()),
        (field::ROLLOUT, rollout.to_string()),
    ]
}

fn check_rollout(rollout: f64) -> Result<(), ConfigError> {
    SiteOverrides {
        rollout: Some(rollout),
        ..SiteOverrides::default()
    }
    .validate()
}
