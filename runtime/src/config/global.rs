//! The global [`Config`]: its fields, defaults and builders. How the
//! environment is read into it and how it is checked is `knobs.rs`.

use std::path::PathBuf;
use std::time::Duration;

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
