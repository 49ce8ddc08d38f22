//! Per-site operator overrides: [`SiteOverrides`], and the variables
//! `ASYNC_UPLOAD_<VAR>__<SITE>` they are read from.

use std::time::Duration;

use super::env::{
    self, parse_bool, parse_budget, parse_cooldown, parse_retries, parse_rollout, parse_threshold,
    parse_timeout, read, site_suffix, BREAKER, BREAKER_COOLDOWN, BREAKER_THRESHOLD, ENABLED,
    FALLBACK, MAX_RETRIES, RETRY_BUDGET, ROLLOUT, TIMEOUT,
};
use super::error::ConfigError;

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

    use std::collections::HashMap;

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
