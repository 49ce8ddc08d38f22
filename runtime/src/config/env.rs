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

use super::error::ConfigError;
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

/// Highest accepted `max_retries`.
pub const MAX_RETRIES_LIMIT: u32 = 10;

/// Longest accepted breaker cool-down.
const COOLDOWN_LIMIT: Duration = Duration::from_secs(3600);

/// Longest accepted per-attempt timeout: a year is already a mistake, and
/// anything beyond risks overflowing deadline arithmetic.
const TIMEOUT_LIMIT: Duration = Duration::from_secs(365 * 24 * 3600);

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

pub(crate) fn parse_path(name: &str, raw: &str) -> Result<PathBuf, ConfigError> {
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

pub(crate) fn parse_threshold(name: &str, raw: &str) -> Result<u8, ConfigError> {
    parse_percent(name, raw, 1, THRESHOLD_ACCEPTED)
}

pub(crate) fn parse_budget(name: &str, raw: &str) -> Result<u8, ConfigError> {
    parse_percent(name, raw, 0, BUDGET_ACCEPTED)
}

pub(crate) fn parse_cooldown(name: &str, raw: &str) -> Result<Duration, ConfigError> {
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
