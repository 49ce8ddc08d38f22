//! Configuration: the global [`Config`], per-site [`SiteOverrides`], their
//! environment variables, and the live [`ConfigHandle`] a running service
//! updates without a restart.
//!
//! # Precedence
//!
//! From lowest to highest, for each site:
//!
//! 1. built-in defaults ([`Config::default`]);
//! 2. the global environment (`ASYNC_UPLOAD_*`, read by [`Config::from_env`]),
//!    or a `Config` installed with [`ConfigHandle::replace`];
//! 3. the attribute's values for its site (`retries`, `timeout`, `backoff`);
//! 4. per-site operator overrides: the environment
//!    (`ASYNC_UPLOAD_<VAR>__<SITE>`, e.g. `ASYNC_UPLOAD_ROLLOUT__UPLOAD=10`),
//!    then [`ConfigHandle::set_site`].
//!
//! Two kill switches beat all of these: `enabled = false` in the global
//! config, and a rollback ([`ConfigHandle::roll_back`]). Either sends every
//! call of the site(s) concerned down the sync path.
//!
//! # Environment
//!
//! | variable | meaning | default | accepted |
//! | --- | --- | --- | --- |
//! | `ASYNC_UPLOAD_ENABLED` | the async path may run at all | `false` | true/false/1/0/yes/no/on/off, any case |
//! | `ASYNC_UPLOAD_ROLLOUT` | percent of keys enrolled | `0` | 0–100, up to two decimals |
//! | `ASYNC_UPLOAD_FALLBACK` | fall back to sync when async gives up | `true` | as ENABLED |
//! | `ASYNC_UPLOAD_MAX_RETRIES` | retries after the first async attempt | `2` | 0–10 |
//! | `ASYNC_UPLOAD_TIMEOUT` | seconds per async attempt | `30` | > 0, decimals allowed |
//! | `ASYNC_UPLOAD_LOG` | JSONL file receiving every record and event | unset | a writable path |
//! | `ASYNC_UPLOAD_BREAKER` | per-site circuit breaker and retry budget | `true` | as ENABLED |
//! | `ASYNC_UPLOAD_BREAKER_THRESHOLD` | percent of recent async attempts (at least 10 in 10 s) that must fail to open the breaker | `50` | 1–100 |
//! | `ASYNC_UPLOAD_BREAKER_COOLDOWN` | seconds an open breaker waits before a probe; doubles while probes fail, up to 8 × | `1` | 0.001–3600 |
//! | `ASYNC_UPLOAD_RETRY_BUDGET` | retries allowed, in percent of the calls since failures began (banked up to 20, plus 1 per second) | `20` | 0–100 |

mod changes;
pub mod env;
mod error;
mod live;
mod startup;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::breaker::{BreakerSettings, BreakerState};
pub use changes::{applied_by, as_controller};
pub use error::ConfigError;
#[cfg(feature = "testing")]
pub(crate) use live::SiteControl;
pub use live::{handle, set_startup, ConfigHandle, Settings};
pub(crate) use live::{handle_starting, AttributeOverrides, Origins};
pub use startup::{Startup, StartupAlreadySet};

use crate::rollout::Rollout;

/// The global configuration of every annotated site.
///
/// Built from the environment with [`Config::from_env`], or by hand:
///
/// ```
/// use std::time::Duration;
/// use async_upload::config::Config;
///
/// let config = Config::default()
///     .with_enabled(true)
///     .with_rollout(10.0)
///     .with_timeout(Duration::from_secs(5));
/// assert!(config.validate().is_ok());
/// assert!(config.fallback); // default
/// assert_eq!(config.max_retries, 2); // default
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Whether the async path may run at all (`ASYNC_UPLOAD_ENABLED`, default `false`).
    /// `false` is a kill switch: every site runs its sync path.
    pub enabled: bool,
    /// Percent of keys enrolled in the async path, 0–100 with at most two
    /// decimals (`ASYNC_UPLOAD_ROLLOUT`, default `0`).
    pub rollout: f64,
    /// Run the sync path when the async path gives up (`ASYNC_UPLOAD_FALLBACK`, default `true`).
    pub fallback: bool,
    /// Retries after the first async attempt, 0–10 (`ASYNC_UPLOAD_MAX_RETRIES`, default `2`,
    /// i.e. three attempts).
    pub max_retries: u32,
    /// Limit of each async attempt (`ASYNC_UPLOAD_TIMEOUT` in seconds, default 30 s).
    pub timeout: Duration,
    /// Base of the exponential backoff between attempts (default 100 ms).
    pub backoff_base: Duration,
    /// Longest backoff between attempts (default 5 s).
    pub backoff_cap: Duration,
    /// JSONL file that receives every record and event (`ASYNC_UPLOAD_LOG`, default none).
    pub log_path: Option<PathBuf>,
    /// Each site's circuit breaker and retry budget (`ASYNC_UPLOAD_BREAKER`, default `true`).
    /// They apply with fallback on or off: off, a call the open breaker
    /// skips fails at once with [`Fault::BreakerOpen`](crate::Fault::BreakerOpen),
    /// and the budget keeps an outage from costing `1 + retries` requests
    /// per call exactly where no sync path absorbs it.
    pub breaker: bool,
    /// Percent of recent async attempts that must fail to open the breaker,
    /// 1–100 (`ASYNC_UPLOAD_BREAKER_THRESHOLD`, default `50`).
    pub breaker_threshold: u8,
    /// How long an open breaker waits before it lets a probe through; it
    /// doubles while probes fail, up to 8 times this
    /// (`ASYNC_UPLOAD_BREAKER_COOLDOWN` in seconds, default 1 s).
    pub breaker_cooldown: Duration,
    /// Retries allowed, in percent of calls, 0–100 (`ASYNC_UPLOAD_RETRY_BUDGET`,
    /// default `20`).
    pub retry_budget: u8,
}

/// Highest accepted `max_retries`.
pub const MAX_RETRIES_LIMIT: u32 = 10;

impl Default for Config {
    /// The safe default: async disabled, i.e. today's behaviour.
    fn default() -> Self {
        Config {
            enabled: false,
            rollout: 0.0,
            fallback: true,
            max_retries: 2,
            timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
            log_path: None,
            breaker: true,
            breaker_threshold: 50,
            breaker_cooldown: Duration::from_secs(1),
            retry_budget: 20,
        }
    }
}

impl Config {
    /// Reads the `ASYNC_UPLOAD_*` variables of the process environment.
    ///
    /// Unset variables keep their defaults.
    ///
    /// # Errors
    ///
    /// The first variable (in the order of the table above) whose value is
    /// not accepted, naming the variable, the value and what is accepted.
    /// Nothing is half-applied: on error no `Config` is returned.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup` instead
    /// of the process environment (useful in tests and for other sources).
    ///
    /// ```
    /// use async_upload::config::Config;
    ///
    /// let config = Config::from_lookup(|name| match name {
    ///     "ASYNC_UPLOAD_ENABLED" => Some("yes".into()),
    ///     "ASYNC_UPLOAD_ROLLOUT" => Some("0.5".into()),
    ///     _ => None,
    /// })?;
    /// assert!(config.enabled);
    /// assert_eq!(config.rollout, 0.5);
    /// # Ok::<(), async_upload::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        env::config_from(&lookup)
    }

    /// Checks every field against what is accepted.
    ///
    /// # Errors
    ///
    /// The first field out of range, named as its environment variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        env::validate_rollout(env::ROLLOUT, self.rollout)?;
        env::validate_retries(env::MAX_RETRIES, self.max_retries)?;
        env::validate_timeout(env::TIMEOUT, self.timeout)?;
        env::validate_threshold(env::BREAKER_THRESHOLD, self.breaker_threshold)?;
        env::validate_cooldown(env::BREAKER_COOLDOWN, self.breaker_cooldown)?;
        env::validate_budget(env::RETRY_BUDGET, self.retry_budget)?;
        if self.backoff_cap < self.backoff_base {
            return Err(ConfigError::new(
                "backoff_cap",
                format!("{:?}", self.backoff_cap),
                "a cap at least as long as backoff_base",
            ));
        }
        Ok(())
    }

    /// The rollout as a bucket threshold. Call [`Config::validate`] first:
    /// an invalid percentage counts as 0 %.
    #[must_use]
    pub fn rollout_threshold(&self) -> Rollout {
        Rollout::from_percent(self.rollout).unwrap_or(Rollout::NONE)
    }

    /// Sets [`Config::enabled`].
    #[must_use]
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets [`Config::rollout`] (percent).
    #[must_use]
    pub fn with_rollout(mut self, percent: f64) -> Self {
        self.rollout = percent;
        self
    }

    /// Sets [`Config::fallback`].
    #[must_use]
    pub fn with_fallback(mut self, fallback: bool) -> Self {
        self.fallback = fallback;
        self
    }

    /// Sets [`Config::max_retries`].
    #[must_use]
    pub fn with_max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets [`Config::timeout`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Config::backoff_base`] and [`Config::backoff_cap`].
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Sets [`Config::log_path`].
    #[must_use]
    pub fn with_log_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_path = Some(path.into());
        self
    }
}

/// Operator overrides for one site, above the attribute's values.
///
/// `None` leaves a field to the lower levels. `enabled: Some(true)` cannot
/// lift the global kill switch; `Some(false)` turns this site off.
///
/// From the environment, `ASYNC_UPLOAD_<VAR>__<SITE>` with the site name in
/// upper case and every character other than `A-Z0-9` replaced by `_`
/// (`ASYNC_UPLOAD_ROLLOUT__UPLOAD_FILE=25` for site `upload_file`), for
/// `ENABLED`, `ROLLOUT`, `FALLBACK`, `MAX_RETRIES`, `TIMEOUT`, `BREAKER`,
/// `BREAKER_THRESHOLD`, `BREAKER_COOLDOWN` and `RETRY_BUDGET`.
///
/// ```
/// use async_upload::config::SiteOverrides;
///
/// let overrides = SiteOverrides { rollout: Some(25.0), ..SiteOverrides::default() };
/// assert!(overrides.validate().is_ok());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SiteOverrides {
    /// Turn the site off (`Some(false)`); `Some(true)` cannot override the global kill switch.
    pub enabled: Option<bool>,
    /// Rollout percent for this site.
    pub rollout: Option<f64>,
    /// Fallback on or off for this site.
    pub fallback: Option<bool>,
    /// Retries after the first attempt for this site (0–10).
    pub max_retries: Option<u32>,
    /// Per-attempt timeout for this site.
    pub timeout: Option<Duration>,
    /// Backoff base for this site.
    pub backoff_base: Option<Duration>,
    /// Circuit breaker and retry budget on or off for this site.
    pub breaker: Option<bool>,
    /// Percent of recent attempts that must fail to open this site's breaker (1–100).
    pub breaker_threshold: Option<u8>,
    /// First cool-down of this site's breaker.
    pub breaker_cooldown: Option<Duration>,
    /// Retries allowed at this site, in percent of calls (0–100).
    pub retry_budget: Option<u8>,
}

impl SiteOverrides {
    /// Checks every field that is set.
    ///
    /// # Errors
    ///
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(rollout) = self.rollout {
            env::validate_rollout("rollout", rollout)?;
        }
        if let Some(retries) = self.max_retries {
            env::validate_retries("max_retries", retries)?;
        }
        if let Some(timeout) = self.timeout {
            env::validate_timeout("timeout", timeout)?;
        }
        if let Some(threshold) = self.breaker_threshold {
            env::validate_threshold("breaker_threshold", threshold)?;
        }
        if let Some(cooldown) = self.breaker_cooldown {
            env::validate_cooldown("breaker_cooldown", cooldown)?;
        }
        if let Some(budget) = self.retry_budget {
            env::validate_budget("retry_budget", budget)?;
        }
        Ok(())
    }

    /// `self`'s fields where set, `lower`'s elsewhere.
    #[must_use]
    pub fn or(&self, lower: &SiteOverrides) -> SiteOverrides {
        SiteOverrides {
            enabled: self.enabled.or(lower.enabled),
            rollout: self.rollout.or(lower.rollout),
            fallback: self.fallback.or(lower.fallback),
            max_retries: self.max_retries.or(lower.max_retries),
            timeout: self.timeout.or(lower.timeout),
            backoff_base: self.backoff_base.or(lower.backoff_base),
            breaker: self.breaker.or(lower.breaker),
            breaker_threshold: self.breaker_threshold.or(lower.breaker_threshold),
            breaker_cooldown: self.breaker_cooldown.or(lower.breaker_cooldown),
            retry_budget: self.retry_budget.or(lower.retry_budget),
        }
    }
}
