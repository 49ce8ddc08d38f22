//! The global [`Config`]: its fields, defaults and builders, and how the
//! environment's variables are read into it.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{
    self, keep_valid, parse_bool, parse_budget, parse_cooldown, parse_path, parse_retries,
    parse_rollout, parse_threshold, parse_timeout, BREAKER, BREAKER_COOLDOWN, BREAKER_THRESHOLD,
    ENABLED, FALLBACK, LOG, MAX_RETRIES, RETRY_BUDGET, ROLLOUT, TIMEOUT,
};
use super::error::ConfigError;
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
    /// Reads the `ASYNC_UPLOAD_*` variables of the process environment.
    ///
    /// Unset variables keep their defaults.
    ///
    /// # Errors
    ///
    /// The first variable (in the order of the
    /// [module's table](crate::config#environment)) whose value is
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
        config_from(&lookup)
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

pub(crate) fn config_from(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let (config, mut errors) = config_keeping_valid(lookup);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors.swap_remove(0))
    }
}

/// Reads every variable on its own: each valid value is kept, each bad one
/// is reported (in the order of the table) and left at its default, and
/// any error sends routing to the safe default, async off. So a typo in
/// `ASYNC_UPLOAD_ENABLED` never discards a valid `ASYNC_UPLOAD_LOG`.
pub(crate) fn config_keeping_valid(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (Config, Vec<ConfigError>) {
    let defaults = Config::default();
    let mut errors = Vec::new();
    let config = Config {
        enabled: keep_valid(&mut errors, lookup, ENABLED, parse_bool).unwrap_or(defaults.enabled),
        rollout: keep_valid(&mut errors, lookup, ROLLOUT, parse_rollout)
            .unwrap_or(defaults.rollout),
        fallback: keep_valid(&mut errors, lookup, FALLBACK, parse_bool)
            .unwrap_or(defaults.fallback),
        max_retries: keep_valid(&mut errors, lookup, MAX_RETRIES, parse_retries)
            .unwrap_or(defaults.max_retries),
        timeout: keep_valid(&mut errors, lookup, TIMEOUT, parse_timeout)
            .unwrap_or(defaults.timeout),
        log_path: keep_valid(&mut errors, lookup, LOG, parse_path).or(defaults.log_path),
        breaker: keep_valid(&mut errors, lookup, BREAKER, parse_bool).unwrap_or(defaults.breaker),
        breaker_threshold: keep_valid(&mut errors, lookup, BREAKER_THRESHOLD, parse_threshold)
            .unwrap_or(defaults.breaker_threshold),
        breaker_cooldown: keep_valid(&mut errors, lookup, BREAKER_COOLDOWN, parse_cooldown)
            .unwrap_or(defaults.breaker_cooldown),
        retry_budget: keep_valid(&mut errors, lookup, RETRY_BUDGET, parse_budget)
            .unwrap_or(defaults.retry_budget),
        ..defaults
    };
    let enabled = config.enabled && errors.is_empty();
    (Config { enabled, ..config }, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MAX_RETRIES;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn unset_variables_keep_the_defaults() {
        assert_eq!(from(&[]).unwrap(), Config::default());
    }

    #[test]
    fn every_variable_is_read() {
        let config = from(&[
            (ENABLED, "On"),
            (ROLLOUT, "12.5"),
            (FALLBACK, "no"),
            (MAX_RETRIES, "0"),
            (TIMEOUT, "0.25"),
            (LOG, "/tmp/x.jsonl"),
        ])
        .unwrap();
        assert!(config.enabled);
        assert!((config.rollout - 12.5).abs() < f64::EPSILON);
        assert!(!config.fallback);
        assert_eq!(config.max_retries, 0);
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.log_path, Some(PathBuf::from("/tmp/x.jsonl")));
    }

    #[test]
    fn booleans_accept_every_documented_spelling() {
        for (raw, want) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("On", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("NO", false),
            ("off", false),
        ] {
            assert_eq!(from(&[(ENABLED, raw)]).unwrap().enabled, want, "{raw}");
        }
    }

    #[test]
    fn rollout_accepts_up_to_two_decimals() {
        for (raw, want) in [
            ("0", 0.0),
            ("0.5", 0.5),
            ("100", 100.0),
            ("99.99", 99.99),
            ("10.500", 10.5),
        ] {
            assert!(
                (from(&[(ROLLOUT, raw)]).unwrap().rollout - want).abs() < 1e-9,
                "{raw}"
            );
        }
    }

    #[test]
    fn every_bad_value_names_variable_value_and_what_is_accepted() {
        let cases = [
            (ROLLOUT, "abc"),
            (ROLLOUT, "150"),
            (ROLLOUT, "-1"),
            (ROLLOUT, "NaN"),
            (ROLLOUT, "0.001"),
            (ROLLOUT, "1e2"),
            (ROLLOUT, "inf"),
            (ROLLOUT, ""),
            (ROLLOUT, "5."),
            (ROLLOUT, "100.01"),
            (ENABLED, "maybe"),
            (ENABLED, ""),
            (FALLBACK, "2"),
            (TIMEOUT, "0"),
            (TIMEOUT, "-3"),
            (TIMEOUT, "1e400"),
            (TIMEOUT, "NaN"),
            (TIMEOUT, ""),
            (TIMEOUT, "1e-12"),
            (TIMEOUT, "1e300"),
            (MAX_RETRIES, "11"),
            (MAX_RETRIES, "2.5"),
            (MAX_RETRIES, "-1"),
            (MAX_RETRIES, ""),
            (LOG, ""),
            (BREAKER, "maybe"),
            (BREAKER_THRESHOLD, "0"),
            (BREAKER_THRESHOLD, "101"),
            (BREAKER_THRESHOLD, "50.5"),
            (BREAKER_COOLDOWN, "0"),
            (BREAKER_COOLDOWN, "-1"),
            (BREAKER_COOLDOWN, "7200"),
            (BREAKER_COOLDOWN, "NaN"),
            (RETRY_BUDGET, "101"),
            (RETRY_BUDGET, "-5"),
        ];
        for (name, raw) in cases {
            let err = from(&[(name, raw)]).expect_err(&format!("{name}={raw:?} must be rejected"));
            assert_eq!(err.variable(), name);
            assert_eq!(err.value(), raw);
            let message = err.to_string();
            assert!(message.starts_with(&format!("{name}=")), "{message}");
            assert!(message.contains("expected"), "{message}");
        }
    }

    #[test]
    fn a_bad_value_turns_routing_off_and_keeps_every_valid_setting() {
        let map: HashMap<String, String> = [
            (ENABLED, "ture"),
            (ROLLOUT, "100"),
            (TIMEOUT, "-1"),
            (MAX_RETRIES, "4"),
            (LOG, "/tmp/kept.jsonl"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        let (config, errors) = config_keeping_valid(&|n| map.get(n).cloned());
        let named: Vec<_> = errors.iter().map(ConfigError::variable).collect();
        assert_eq!(named, [ENABLED, TIMEOUT]);
        assert!(!config.enabled);
        assert_eq!(config.log_path, Some(PathBuf::from("/tmp/kept.jsonl")));
        assert_eq!(config.max_retries, 4);
        assert!((config.rollout - 100.0).abs() < f64::EPSILON);
        assert_eq!(config.timeout, Config::default().timeout);
        // A valid `enabled = true` is still overruled by any other error.
        let (config, errors) = config_keeping_valid(&|n| match n {
            ENABLED => Some("1".into()),
            MAX_RETRIES => Some("99".into()),
            _ => None,
        });
        assert_eq!(errors.len(), 1);
        assert!(!config.enabled);
    }
}
