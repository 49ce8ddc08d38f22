//! [`Store`]: the shared state in Redis, read and written in single round
//! trips (blocking, with short timeouts). The operators' command and the
//! controller's actuator use it; the call path never does.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::{Commands, Connection, ConnectionLike};

use super::keys::Keys;
use super::report::ReplicaReport;
use super::script::{Mode, Write};
use super::state::{field, override_fields, validate_site, Defaults, FleetState, SiteState};
use crate::config::{ConfigError, SiteOverrides};

/// Longest a [`Store`] waits to connect, and for each reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// What went wrong talking to the shared state.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// Redis could not be reached, or refused the command.
    Redis {
        /// The URL, without its password.
        url: String,
        /// Redis's error text.
        detail: String,
    },
    /// A value (given, or read from Redis) is not accepted.
    Invalid(ConfigError),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Redis { url, detail } => write!(f, "Redis at {url}: {detail}"),
            FleetError::Invalid(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for FleetError {}

impl From<ConfigError> for FleetError {
    fn from(error: ConfigError) -> Self {
        FleetError::Invalid(error)
    }
}

/// The shared control state in one Redis, under the `async-upload:v1:`
/// key layout (see the README).
///
/// Each method is one round trip on a connection opened on first use and
/// reopened after an error; every write goes through one Lua script that
/// bumps the state version and publishes the change, so every replica
/// applies it within a second.
///
/// ```no_run
/// use async_upload::config::SiteOverrides;
/// use async_upload::fleet::Store;
///
/// let store = Store::open("redis://127.0.0.1:6379")?;
/// store.update_site("upload_file", &SiteOverrides { rollout: Some(10.0), ..Default::default() })?;
/// assert!(store.roll_back("upload_file", "error rate above 5%")?); // this call latched it
/// assert!(!store.roll_back("upload_file", "again")?); // already latched
/// # Ok::<(), async_upload::fleet::FleetError>(())
/// ```
pub struct Store {
    client: redis::Client,
    url: String,
    timeout: Duration,
    connection: Mutex<Option<Connection>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store for `url` (`redis://host:port[/db]`); nothing is sent yet.
    ///
    /// # Errors
    ///
    /// A URL that is not a Redis URL.
    pub fn open(url: &str) -> Result<Store, FleetError> {
        let client = client(url)?;
        Ok(Store {
            client,
            url: redacted(url),
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

    /// Everything the fleet shares, read in one round trip.
    ///
    /// # Errors
    ///
    /// Redis unreachable, or a stored value that is not accepted.
    pub fn state(&self) -> Result<FleetState, FleetError> {
        let (version, defaults, names): (Option<u64>, HashMap<String, String>, Vec<String>) = self
            .query(|c| {
                redis::pipe()
                    .get(Keys::version())
                    .hgetall(Keys::defaults())
                    .smembers(Keys::sites())
                    .query(c)
            })?;
        let hashes: Vec<HashMap<String, String>> = if names.is_empty() {
            Vec::new()
        } else {
            self.query(|c| {
                let mut pipe = redis::pipe();
                for name in &names {
                    pipe.hgetall(Keys::site(name));
                }
                pipe.query(c)
            })?
        };
        let mut state = FleetState {
            version: version.unwrap_or(0),
            defaults: Defaults::parse(&Keys::defaults(), &defaults)?,
            sites: std::collections::BTreeMap::new(),
        };
        for (name, hash) in names.into_iter().zip(hashes) {
            let site = SiteState::parse(&Keys::site(&name), &hash)?;
            state.sites.insert(name, site);
        }
        Ok(state)
    }

    /// The current state version alone (the replicas' cheap safety-net poll).
    ///
    /// # Errors
    ///
    /// Redis unreachable.
    pub fn version(&self) -> Result<u64, FleetError> {
        let version: Option<u64> = self.query(|c| c.get(Keys::version()))?;
        Ok(version.unwrap_or(0))
    }

    /// Sets the fleet-wide defaults.
    ///
    /// # Errors
    ///
    /// Redis unreachable, or a rollout outside 0–100 with more than two decimals.
    pub fn set_defaults(&self, defaults: Defaults) -> Result<u64, FleetError> {
        check_defaults(defaults)?;
        self.write(&Write {
            mode: Mode::Set,
            site: None,
            set: defaults.fields(),
            delete: Vec::new(),
        })
    }

    /// Writes `defaults` only if there are none yet (the environment seeds
    /// an empty state). `true` when this call wrote them.
    ///
    /// # Errors
    ///
    /// As [`Store::set_defaults`].
    pub fn seed_defaults(&self, defaults: Defaults) -> Result<bool, FleetError> {
        check_defaults(defaults)?;
        let version = self.write(&Write {
            mode: Mode::Seed,
            site: None,
            set: defaults.fields(),
            delete: Vec::new(),
        })?;
        Ok(version > 0)
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
        self.write(&Write {
            mode: Mode::Set,
            site: Some(site),
            set,
            delete: Vec::new(),
        })
    }

    /// Removes every override of `site` (it follows the defaults again).
    ///
    /// # Errors
    ///
    /// Redis unreachable or a bad site name.
    pub fn clear_site(&self, site: &str) -> Result<u64, FleetError> {
        validate_site(site)?;
        self.write(&Write {
            mode: Mode::Set,
            site: Some(site),
            set: Vec::new(),
            delete: field::OVERRIDES.to_vec(),
        })
    }

    /// Records that `site` entered `stage`, routing `rollout` percent of its keys.
    ///
    /// # Errors
    ///
    /// Redis unreachable, a bad site name or rollout.
    pub fn enter_stage(&self, site: &str, stage: u32, rollout: f64) -> Result<u64, FleetError> {
        validate_site(site)?;
        SiteOverrides {
            rollout: Some(rollout),
            ..SiteOverrides::default()
        }
        .validate()?;
        self.write(&Write {
            mode: Mode::Set,
            site: Some(site),
            set: vec![
                (field::STAGE, stage.to_string()),
                (field::ROLLOUT, rollout.to_string()),
            ],
            delete: Vec::new(),
        })
    }

    /// Latches the rollback of `site` with `reason`, atomically: `true` when
    /// this call latched it, `false` when it already was.
    ///
    /// # Errors
    ///
    /// Redis unreachable or a bad site name.
    pub fn roll_back(&self, site: &str, reason: &str) -> Result<bool, FleetError> {
        validate_site(site)?;
        let version = self.write(&Write {
            mode: Mode::Latch,
            site: Some(site),
            set: vec![
                (field::ROLLED_BACK, "true".to_owned()),
                (field::REASON, reason.to_owned()),
            ],
            delete: Vec::new(),
        })?;
        Ok(version > 0)
    }

    /// Lifts the rollback of `site` (an operator action).
    ///
    /// # Errors
    ///
    /// Redis unreachable or a bad site name.
    pub fn clear_rollback(&self, site: &str) -> Result<u64, FleetError> {
        validate_site(site)?;
        self.write(&Write {
            mode: Mode::Set,
            site: Some(site),
            set: Vec::new(),
            delete: vec![field::ROLLED_BACK, field::REASON],
        })
    }

    /// The reports of the live replicas (those whose report has not expired),
    /// by instance.
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

    fn write(&self, write: &Write<'_>) -> Result<u64, FleetError> {
        self.query(|c| write.invocation().invoke(c))
    }

    /// Runs `command` on the connection, opening it first if needed; an
    /// error drops the connection so the next call reconnects.
    pub(crate) fn query<T>(
        &self,
        command: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, FleetError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_none_or(|c| !c.is_open()) {
            let connection = self
                .client
                .get_connection_with_timeout(self.timeout)
                .and_then(|c| {
                    c.set_read_timeout(Some(self.timeout))?;
                    c.set_write_timeout(Some(self.timeout))?;
                    Ok(c)
                })
                .map_err(|e| self.error(&e))?;
            *slot = Some(connection);
        }
        let connection = slot
            .as_mut()
            .unwrap_or_else(|| unreachable!("opened above"));
        command(connection).map_err(|e| {
            *slot = None;
            self.error(&e)
        })
    }

    fn error(&self, error: &redis::RedisError) -> FleetError {
        FleetError::Redis {
            url: self.url.clone(),
            detail: error.to_string(),
        }
    }
}

fn check_defaults(defaults: Defaults) -> Result<(), ConfigError> {
    SiteOverrides {
        rollout: Some(defaults.rollout),
        ..SiteOverrides::default()
    }
    .validate()
}

/// The client of `url`, or an error saying what a Redis URL looks like.
pub(crate) fn client(url: &str) -> Result<redis::Client, FleetError> {
    let accepted = "redis://host:port[/db] (optionally redis://:password@host:port)";
    if !url.starts_with("redis://") {
        return Err(ConfigError::new(super::env::REDIS_URL, redacted(url), accepted).into());
    }
    redis::Client::open(url)
        .map_err(|_| ConfigError::new(super::env::REDIS_URL, redacted(url), accepted).into())
}

/// `url` without a password, for logs and errors.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(redacted("redis://:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn a_url_that_is_not_redis_is_refused_with_what_is_accepted() {
        let error = Store::open("http://localhost:6379").unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("ASYNC_UPLOAD_REDIS_URL") && text.contains("redis://host:port"),
            "{text}"
        );
    }
}
