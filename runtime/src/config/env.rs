//! The environment's variables and the rules of their values. Every
//! rejection names the variable, the value and what is accepted.
//!
//! Settings read from elsewhere follow the same rules (fleet mode parses the
//! values it reads from Redis with these functions):
//!
//! ```
//! use async_upload_runtime::config::env::{parse_rollout, ROLLOUT};
//!
//! assert_eq!(parse_rollout(ROLLOUT, "12.5").unwrap(), 12.5);
//! let error = parse_rollout(ROLLOUT, "12.345").unwrap_err();
//! assert_eq!(error.variable(), ROLLOUT);
//! ```

use std::path::PathBuf;
use std::time::Duration;

use super::{Config, ConfigError, SiteOverrides, MAX_RETRIES_LIMIT};
use crate::rollout::Rollout;

/// Turns the async path on (`true`) or off: the global kill switch.
pub const ENABLED: &str = "ASYNC_UPLOAD_ENABLED";
/// The percentage of calls (by key hash) that take the async path.
pub const ROLLOUT: &str = "ASYNC_UPLOAD_ROLLOUT";
/// Whether a call whose async attempts gave up runs the sync path.
pub const FALLBACK: &str = "ASYNC_UPLOAD_FALLBACK";
/// Retries of a failed async attempt.
pub const MAX_RETRIES: &str = "ASYNC_UPLOAD_MAX_RETRIES";
/// Seconds each async attempt may take.
pub const TIMEOUT: &str = "ASYNC_UPLOAD_TIMEOUT";
/// The JSONL file that receives every record and event.
pub const LOG: &str = "ASYNC_UPLOAD_LOG";
/// Whether each site has a circuit breaker and a retry budget.
pub const BREAKER: &str = "ASYNC_UPLOAD_BREAKER";
/// The percentage of recent async attempts that must fail to open a breaker.
pub const BREAKER_THRESHOLD: &str = "ASYNC_UPLOAD_BREAKER_THRESHOLD";
/// Seconds an open breaker waits before it probes.
pub const BREAKER_COOLDOWN: &str = "ASYNC_UPLOAD_BREAKER_COOLDOWN";
/// Retries allowed, in percent of the calls since failures began.
pub const RETRY_BUDGET: &str = "ASYNC_UPLOAD_RETRY_BUDGET";

const BOOL_ACCEPTED: &str = "true/false, 1/0, yes/no or on/off (any case)";
const ROLLOUT_ACCEPTED: &str =
    "a percentage from 0 to 100 with at most two decimals (e.g. 0.5, 10, 100)";
const RETRIES_ACCEPTED: &str = "a whole number of retries from 0 to 10";
const TIMEOUT_ACCEPTED: &str =
    "a number of seconds greater than 0, decimals allowed (e.g. 30, 0.25), at most 31536000 (a year)";
const LOG_ACCEPTED: &str = "the path of a writable file";
const THRESHOLD_ACCEPTED: &str = "a whole percentage of failed attempts from 1 to 100";
const COOLDOWN_ACCEPTED: &str =
    "a number of seconds from 0.001 to 3600, decimals allowed (e.g. 1, 0.5)";
const BUDGET_ACCEPTED: &str = "a whole percentage of calls from 0 to 100";

/// Longest accepted breaker cool-down.
const COOLDOWN_LIMIT: Duration = Duration::from_secs(3600);

/// Longest accepted per-attempt timeout: a year is already a mistake, and
/// anything beyond risks overflowing deadline arithmetic.
const TIMEOUT_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

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

/// The per-site operator overrides `ASYNC_UPLOAD_<VAR>__<SITE>`.
pub(crate) fn site_overrides_from(
    site: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SiteOverrides, ConfigError> {
    let suffix = site_suffix(site);
    let name = |base: &str| format!("{base}__{suffix}");
    Ok(SiteOverrides {
        enabled: read(lookup, &name(ENABLED), parse_bool)?,
        rollout: read(lookup, &name(ROLLOUT), parse_rollout)?,
        fallback: read(lookup, &name(FALLBACK), parse_bool)?,
        max_retries: read(lookup, &name(MAX_RETRIES), parse_retries)?,
        timeout: read(lookup, &name(TIMEOUT), parse_timeout)?,
        backoff_base: None,
        breaker: read(lookup, &name(BREAKER), parse_bool)?,
        breaker_threshold: read(lookup, &name(BREAKER_THRESHOLD), parse_threshold)?,
        breaker_cooldown: read(lookup, &name(BREAKER_COOLDOWN), parse_cooldown)?,
        retry_budget: read(lookup, &name(RETRY_BUDGET), parse_budget)?,
    })
}

/// Checks `raw` as the per-site variable `name` (`<base>__<SITE>`): `None`
/// when `base` is not a per-site variable.
fn check_site_var(base: &str, name: &str, raw: &str) -> Option<Result<(), ConfigError>> {
    fn ok<T>(result: Result<T, ConfigError>) -> Result<(), ConfigError> {
        result.map(drop)
    }
    Some(match base {
        ENABLED | FALLBACK | BREAKER => ok(parse_bool(name, raw)),
        ROLLOUT => ok(parse_rollout(name, raw)),
        MAX_RETRIES => ok(parse_retries(name, raw)),
        TIMEOUT => ok(parse_timeout(name, raw)),
        BREAKER_THRESHOLD => ok(parse_threshold(name, raw)),
        BREAKER_COOLDOWN => ok(parse_cooldown(name, raw)),
        RETRY_BUDGET => ok(parse_budget(name, raw)),
        _ => return None,
    })
}

/// The bad per-site values among `vars` (`ASYNC_UPLOAD_<VAR>__<SITE>`, as
/// [`site_overrides_from`] reads them), in the order given.
pub(crate) fn site_errors_in(vars: impl IntoIterator<Item = (String, String)>) -> Vec<ConfigError> {
    vars.into_iter()
        .filter_map(|(name, raw)| {
            let (base, site) = name.split_once("__")?;
            if site.is_empty() {
                return None;
            }
            check_site_var(base, &name, &raw)?.err()
        })
        .collect()
}

/// Says `error` (and what it means) on stderr, once per variable and value,
/// when no `tracing` subscriber is there to show its event: a bad value
/// must never go unnoticed, global or per site.
pub(crate) fn report_once(error: &ConfigError, consequence: &str) {
    static SAID: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let key = (error.variable().to_owned(), error.value().to_owned());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !said.contains(&key) {
        said.push(key);
        eprintln!("async-upload: {error}; {consequence}");
    }
}

/// `upload-file.v2` → `UPLOAD_FILE_V2`.
pub(crate) fn site_suffix(site: &str) -> String {
    site.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The parsed value of `name`, `None` when it is unset or bad; a bad value
/// is added to `errors`.
fn keep_valid<T>(
    errors: &mut Vec<ConfigError>,
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    parse: fn(&str, &str) -> Result<T, ConfigError>,
) -> Option<T> {
    read(lookup, name, parse).unwrap_or_else(|error| {
        errors.push(error);
        None
    })
}

/// The parsed value of `name`, `None` when it is unset.
fn read<T>(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    parse: fn(&str, &str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    lookup(name).map(|raw| parse(name, &raw)).transpose()
}

fn parse_path(name: &str, raw: &str) -> Result<PathBuf, ConfigError> {
    if raw.trim().is_empty() {
        return Err(ConfigError::new(name, raw, LOG_ACCEPTED));
    }
    Ok(PathBuf::from(raw))
}

/// A flag: `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, any case.
///
/// # Errors
///
/// Any other text, named as the value of `name`.
pub fn parse_bool(name: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(name, raw, BOOL_ACCEPTED)),
    }
}

/// A rollout percentage from 0 to 100, in decimal text only (`12`, `0.5`, `99.99`): no exponent, sign, `NaN` or
/// `inf`, and no third significant decimal, which would silently round.
///
/// # Errors
///
/// Any other text or a percentage outside 0–100, named as the value of `name`.
pub fn parse_rollout(name: &str, raw: &str) -> Result<f64, ConfigError> {
    let reject = || ConfigError::new(name, raw, ROLLOUT_ACCEPTED);
    let text = raw.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(reject());
    }
    if fraction.len() > 2 && fraction[2..].bytes().any(|b| b != b'0') {
        return Err(reject());
    }
    let percent: f64 = text.parse().map_err(|_| reject())?;
    Rollout::from_percent(percent).map_err(|_| reject())?;
    Ok(percent)
}

/// A whole number of retries, at most [`MAX_RETRIES_LIMIT`].
///
/// # Errors
///
/// Any other text, named as the value of `name`.
pub fn parse_retries(name: &str, raw: &str) -> Result<u32, ConfigError> {
    let retries: u32 = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, raw, RETRIES_ACCEPTED))?;
    validate_retries(name, retries)?;
    Ok(retries)
}

/// Seconds greater than 0, decimals allowed, at most a year.
///
/// # Errors
///
/// Any other text, named as the value of `name`.
pub fn parse_timeout(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    let reject = || ConfigError::new(name, raw, TIMEOUT_ACCEPTED);
    let secs: f64 = raw.trim().parse().map_err(|_| reject())?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(reject());
    }
    let timeout = Duration::try_from_secs_f64(secs).map_err(|_| reject())?;
    validate_timeout(name, timeout).map_err(|_| reject())?;
    Ok(timeout)
}

/// A whole percentage in `low..=100`.
fn parse_percent(
    name: &str,
    raw: &str,
    low: u8,
    accepted: &'static str,
) -> Result<u8, ConfigError> {
    match raw.trim().parse::<u8>() {
        Ok(percent) if (low..=100).contains(&percent) => Ok(percent),
        _ => Err(ConfigError::new(name, raw, accepted)),
    }
}

fn parse_threshold(name: &str, raw: &str) -> Result<u8, ConfigError> {
    parse_percent(name, raw, 1, THRESHOLD_ACCEPTED)
}

fn parse_budget(name: &str, raw: &str) -> Result<u8, ConfigError> {
    parse_percent(name, raw, 0, BUDGET_ACCEPTED)
}

fn parse_cooldown(name: &str, raw: &str) -> Result<Duration, ConfigError> {
    let reject = || ConfigError::new(name, raw, COOLDOWN_ACCEPTED);
    let secs: f64 = raw.trim().parse().map_err(|_| reject())?;
    let cooldown = Duration::try_from_secs_f64(secs).map_err(|_| reject())?;
    validate_cooldown(name, cooldown).map_err(|_| reject())?;
    Ok(cooldown)
}

pub(crate) fn validate_threshold(name: &str, percent: u8) -> Result<(), ConfigError> {
    if (1..=100).contains(&percent) {
        Ok(())
    } else {
        Err(ConfigError::new(
            name,
            percent.to_string(),
            THRESHOLD_ACCEPTED,
        ))
    }
}

pub(crate) fn validate_budget(name: &str, percent: u8) -> Result<(), ConfigError> {
    if percent <= 100 {
        Ok(())
    } else {
        Err(ConfigError::new(name, percent.to_string(), BUDGET_ACCEPTED))
    }
}

pub(crate) fn validate_cooldown(name: &str, cooldown: Duration) -> Result<(), ConfigError> {
    if cooldown < Duration::from_millis(1) || cooldown > COOLDOWN_LIMIT {
        return Err(ConfigError::new(
            name,
            format!("{}", cooldown.as_secs_f64()),
            COOLDOWN_ACCEPTED,
        ));
    }
    Ok(())
}

pub(crate) fn validate_rollout(name: &str, percent: f64) -> Result<(), ConfigError> {
    Rollout::from_percent(percent)
        .map(drop)
        .map_err(|_| ConfigError::new(name, percent.to_string(), ROLLOUT_ACCEPTED))
}

pub(crate) fn validate_retries(name: &str, retries: u32) -> Result<(), ConfigError> {
    if retries > MAX_RETRIES_LIMIT {
        return Err(ConfigError::new(
            name,
            retries.to_string(),
            RETRIES_ACCEPTED,
        ));
    }
    Ok(())
}

pub(crate) fn validate_timeout(name: &str, timeout: Duration) -> Result<(), ConfigError> {
    if timeout.is_zero() || timeout > TIMEOUT_LIMIT {
        return Err(ConfigError::new(
            name,
            format!("{}", timeout.as_secs_f64()),
            TIMEOUT_ACCEPTED,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod site_var_tests {
    use super::*;

    #[test]
    fn bad_per_site_values_are_found_by_name_alone() {
        let vars = [
            ("ASYNC_UPLOAD_TIMEOUT__NGINX_UPLOAD", "abc"),
            ("ASYNC_UPLOAD_ROLLOUT__OK", "10"),
            ("ASYNC_UPLOAD_ENABLED__OTHER", "maybe"),
            ("ASYNC_UPLOAD_TIMEOUT", "abc"), // global: not per site
            ("ASYNC_UPLOAD_UNKNOWN__SITE", "x"),
            ("PATH", "/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let errors = site_errors_in(vars);
        let names: Vec<&str> = errors.iter().map(ConfigError::variable).collect();
        assert_eq!(
            names,
            [
                "ASYNC_UPLOAD_TIMEOUT__NGINX_UPLOAD",
                "ASYNC_UPLOAD_ENABLED__OTHER"
            ]
        );
        assert!(errors[0].to_string().contains("seconds"), "{}", errors[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn site_overrides_use_the_site_suffix() {
        let map: HashMap<String, String> = [
            ("ASYNC_UPLOAD_ROLLOUT__UPLOAD_FILE_V2", "25"),
            ("ASYNC_UPLOAD_MAX_RETRIES__UPLOAD_FILE_V2", "4"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        let overrides = site_overrides_from("upload-file.v2", &|n| map.get(n).cloned()).unwrap();
        assert_eq!(overrides.rollout, Some(25.0));
        assert_eq!(overrides.max_retries, Some(4));
        assert_eq!(overrides.enabled, None);

        let bad = site_overrides_from("x", &|n| {
            (n == "ASYNC_UPLOAD_TIMEOUT__X").then(|| "0".into())
        })
        .unwrap_err();
        assert_eq!(bad.variable(), "ASYNC_UPLOAD_TIMEOUT__X");
    }
}
