//! Per-site operator overrides: [`SiteOverrides`]. How the variables
//! `ASYNC_UPLOAD_<VAR>__<SITE>` are read into them, how they are checked
//! and layered is `knobs.rs`.

use std::time::Duration;

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
