//! Every setting of the configuration, one row each in [`KNOBS`]: a new
//! setting is a field on [`Config`] (and on [`SiteOverrides`] when an
//! operator may set it per site), its value rules in `env.rs`, and one row
//! here.
//!
//! From the table come reading the environment (`ASYNC_UPLOAD_<VAR>` and
//! `ASYNC_UPLOAD_<VAR>__<SITE>`), checking a `Config` or `SiteOverrides`
//! built in code, layering overrides ([`SiteOverrides::or`]) and the names
//! and values a change reports (the log's `operator` lines), each in the
//! table's order. How a call runs with a setting (`Settings`, the site's
//! packed words, its first-use line) is written where it is used.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{
    parse_bool, parse_budget, parse_cooldown, parse_path, parse_retries, parse_rollout,
    parse_threshold, parse_timeout, site_suffix, validate_budget, validate_cooldown,
    validate_retries, validate_rollout, validate_threshold, validate_timeout, BREAKER,
    BREAKER_COOLDOWN, BREAKER_THRESHOLD, ENABLED, FALLBACK, LOG, MAX_RETRIES, RETRY_BUDGET,
    ROLLOUT, TIMEOUT,
};
use super::error::ConfigError;
use super::global::Config;
use super::overrides::SiteOverrides;

/// Reads the text `raw` of the variable named `name` into `T`; on error
/// leaves it as it was.
type Read<T> = fn(&mut T, &str, &str) -> Result<(), ConfigError>;

/// One setting: its name (the field's, as a change names it) and what is
/// done with it globally and per site.
pub(crate) struct Knob {
    name: &'static str,
    /// `ASYNC_UPLOAD_<VAR>`: `None` for a setting made in code only.
    variable: Option<&'static str>,
    /// Reads the variable into the config.
    read: Option<Read<Config>>,
    /// Checks the config's value of this setting made in code.
    check: fn(&Config) -> Result<(), ConfigError>,
    shown: fn(&Config) -> Option<String>,
    /// `None`: not an operator's setting per site.
    site: Option<SiteKnob>,
}

/// The per-site side of a [`Knob`].
struct SiteKnob {
    /// Reads `ASYNC_UPLOAD_<VAR>__<SITE>`: `None` when only code sets it per site.
    read: Option<Read<SiteOverrides>>,
    check: fn(&SiteOverrides) -> Result<(), ConfigError>,
    /// Fills the setting from `lower` where the first leaves it unset.
    or: fn(&mut SiteOverrides, &SiteOverrides),
    shown: fn(&SiteOverrides) -> Option<String>,
}

/// A row of [`KNOBS`]: `field, VARIABLE, parse[, check][; site]`, or
/// `field; in code[, site]` for a setting no variable holds.
macro_rules! knob {
    ($field:ident, $var:ident, $parse:ident $(, $check:ident)? $(; $site:ident)?) => {
        Knob {
            name: stringify!($field),
            variable: Some($var),
            read: Some(|config, name, raw| {
                config.$field = $parse(name, raw)?.into();
                Ok(())
            }),
            check: |_config| {
                $($check($var, _config.$field)?;)?
                Ok(())
            },
            shown: |config| Shown::shown(&config.$field),
            site: knob!(@site $field $(, $site)?; Some(|overrides, name, raw| {
                overrides.$field = Some($parse(name, raw)?);
                Ok(())
            }) $(, $check)?),
        }
    };
    ($field:ident; in code $(, $site:ident)?) => {
        Knob {
            name: stringify!($field),
            variable: None,
            read: None,
            check: |_| Ok(()),
            shown: |config| Shown::shown(&config.$field),
            site: knob!(@site $field $(, $site)?; None),
        }
    };
    (@site $field:ident; $($rest:tt)*) => { None };
    (@site $field:ident, site; $read:expr $(, $check:ident)?) => {
        Some(SiteKnob {
            read: $read,
            check: |_overrides| {
                $(if let Some(value) = _overrides.$field {
                    $check(stringify!($field), value)?;
                })?
                Ok(())
            },
            or: |overrides, lower| overrides.$field = overrides.$field.or(lower.$field),
            shown: |overrides| overrides.$field.as_ref().and_then(Shown::shown),
        })
    };
}

/// Every setting, in the order of the README's configuration table: the order
/// variables are read and checked in, and changes are listed in.
// The log path's row wraps its path in `Some`; the others convert a value
// to its own type.
#[allow(clippy::useless_conversion)]
pub(crate) const KNOBS: [Knob; 12] = [
    knob!(enabled, ENABLED, parse_bool; site),
    knob!(rollout, ROLLOUT, parse_rollout, validate_rollout; site),
    knob!(fallback, FALLBACK, parse_bool; site),
    knob!(max_retries, MAX_RETRIES, parse_retries, validate_retries; site),
    knob!(timeout, TIMEOUT, parse_timeout, validate_timeout; site),
    knob!(backoff_base; in code, site),
    knob!(backoff_cap; in code),
    knob!(log_path, LOG, parse_path),
    knob!(breaker, BREAKER, parse_bool; site),
    knob!(breaker_threshold, BREAKER_THRESHOLD, parse_threshold, validate_threshold; site),
    knob!(breaker_cooldown, BREAKER_COOLDOWN, parse_cooldown, validate_cooldown; site),
    knob!(retry_budget, RETRY_BUDGET, parse_budget, validate_budget; site),
];

/// A setting's value as a change reports it: as its variable spells it
/// (durations in seconds), `None` when unset.
trait Shown {
    fn shown(&self) -> Option<String>;
}

macro_rules! shown_as_text {
    ($($type:ty),*) => {$(
        impl Shown for $type {
            fn shown(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
shown_as_text!(bool, f64, u32, u8);

impl Shown for Duration {
    fn shown(&self) -> Option<String> {
        Some(self.as_secs_f64().to_string())
    }
}

impl Shown for Option<PathBuf> {
    fn shown(&self) -> Option<String> {
        self.as_ref().map(|path| path.display().to_string())
    }
}

impl Config {
    /// Reads the `ASYNC_UPLOAD_*` variables of the process environment.
    ///
    /// Unset variables keep their defaults.
    ///
    /// # Errors
    ///
    /// The first variable (in the order the [module docs](crate::config#environment)
    /// list them) whose value is not accepted, naming the variable, the value and what is accepted.
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
        for knob in &KNOBS {
            (knob.check)(self)?;
        }
        if self.backoff_cap < self.backoff_base {
            return Err(ConfigError::new(
                "backoff_cap",
                format!("{:?}", self.backoff_cap),
                "a cap at least as long as backoff_base",
            ));
        }
        Ok(())
    }
}

impl SiteOverrides {
    /// Checks every field that is set.
    ///
    /// # Errors
    ///
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for site in KNOBS.iter().filter_map(|knob| knob.site.as_ref()) {
            (site.check)(self)?;
        }
        Ok(())
    }

    /// `self`'s fields where set, `lower`'s elsewhere.
    #[must_use]
    pub fn or(&self, lower: &SiteOverrides) -> SiteOverrides {
        let mut layered = self.clone();
        for site in KNOBS.iter().filter_map(|knob| knob.site.as_ref()) {
            (site.or)(&mut layered, lower);
        }
        layered
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
    let mut config = Config::default();
    let mut errors = Vec::new();
    for knob in &KNOBS {
        let (Some(variable), Some(read)) = (knob.variable, knob.read) else {
            continue;
        };
        if let Some(raw) = lookup(variable) {
            if let Err(error) = read(&mut config, variable, &raw) {
                errors.push(error);
            }
        }
    }
    config.enabled = config.enabled && errors.is_empty();
    (config, errors)
}

/// The per-site operator overrides `ASYNC_UPLOAD_<VAR>__<SITE>`.
pub(crate) fn site_overrides_from(
    site: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<SiteOverrides, ConfigError> {
    let suffix = site_suffix(site);
    let mut overrides = SiteOverrides::default();
    for knob in &KNOBS {
        let (Some(variable), Some(read)) = (knob.variable, site_read(knob)) else {
            continue;
        };
        let name = format!("{variable}__{suffix}");
        if let Some(raw) = lookup(&name) {
            read(&mut overrides, &name, &raw)?;
        }
    }
    Ok(overrides)
}

/// How `knob`'s per-site variable is read, if it has one.
fn site_read(knob: &Knob) -> Option<Read<SiteOverrides>> {
    knob.site.as_ref()?.read
}

/// Checks `raw` as the per-site variable `name` (`<base>__<SITE>`): `None`
/// when `base` is not a per-site variable.
fn check_site_var(base: &str, name: &str, raw: &str) -> Option<Result<(), ConfigError>> {
    let knob = KNOBS.iter().find(|knob| knob.variable == Some(base))?;
    let read = site_read(knob)?;
    Some(read(&mut SiteOverrides::default(), name, raw))
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

/// Every setting of `config`, by name, as a change reports it.
pub(crate) fn global_settings(
    config: &Config,
) -> impl Iterator<Item = (&'static str, Option<String>)> + '_ {
    KNOBS.iter().map(|knob| (knob.name, (knob.shown)(config)))
}

/// Every per-site setting of `overrides`, by name, as a change reports it.
pub(crate) fn site_settings(
    overrides: &SiteOverrides,
) -> impl Iterator<Item = (&'static str, Option<String>)> + '_ {
    KNOBS
        .iter()
        .filter_map(|knob| Some((knob.name, (knob.site.as_ref()?.shown)(overrides))))
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
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn every_field_has_a_row() {
        // Exhaustive on purpose: a new field does not compile here until it
        // is named, and then fails until it has its row in KNOBS.
        let Config {
            enabled: _,
            rollout: _,
            fallback: _,
            max_retries: _,
            timeout: _,
            backoff_base: _,
            backoff_cap: _,
            log_path: _,
            breaker: _,
            breaker_threshold: _,
            breaker_cooldown: _,
            retry_budget: _,
        } = Config::default();
        let SiteOverrides {
            enabled: _,
            rollout: _,
            fallback: _,
            max_retries: _,
            timeout: _,
            backoff_base: _,
            breaker: _,
            breaker_threshold: _,
            breaker_cooldown: _,
            retry_budget: _,
        } = SiteOverrides::default();
        let names: Vec<_> = KNOBS.iter().map(|knob| knob.name).collect();
        assert_eq!(
            names,
            [
                "enabled",
                "rollout",
                "fallback",
                "max_retries",
                "timeout",
                "backoff_base",
                "backoff_cap",
                "log_path",
                "breaker",
                "breaker_threshold",
                "breaker_cooldown",
                "retry_budget",
            ]
        );
        let per_site: Vec<_> = KNOBS
            .iter()
            .filter(|knob| knob.site.is_some())
            .map(|knob| knob.name)
            .collect();
        assert_eq!(
            per_site,
            [
                "enabled",
                "rollout",
                "fallback",
                "max_retries",
                "timeout",
                "backoff_base",
                "breaker",
                "breaker_threshold",
                "breaker_cooldown",
                "retry_budget",
            ]
        );
    }

    /// A value of every per-site setting, none of them a default.
    fn every_site_setting() -> SiteOverrides {
        SiteOverrides {
            enabled: Some(false),
            rollout: Some(12.5),
            fallback: Some(false),
            max_retries: Some(4),
            timeout: Some(Duration::from_millis(1500)),
            backoff_base: Some(Duration::from_millis(20)),
            breaker: Some(false),
            breaker_threshold: Some(70),
            breaker_cooldown: Some(Duration::from_secs(3)),
            retry_budget: Some(5),
        }
    }

    #[test]
    fn every_site_variable_is_read_into_its_field() {
        let vars = [
            ("ASYNC_UPLOAD_ENABLED__UP", "off"),
            ("ASYNC_UPLOAD_ROLLOUT__UP", "12.5"),
            ("ASYNC_UPLOAD_FALLBACK__UP", "no"),
            ("ASYNC_UPLOAD_MAX_RETRIES__UP", "4"),
            ("ASYNC_UPLOAD_TIMEOUT__UP", "1.5"),
            ("ASYNC_UPLOAD_BREAKER__UP", "0"),
            ("ASYNC_UPLOAD_BREAKER_THRESHOLD__UP", "70"),
            ("ASYNC_UPLOAD_BREAKER_COOLDOWN__UP", "3"),
            ("ASYNC_UPLOAD_RETRY_BUDGET__UP", "5"),
            // Not a per-site variable: never read for a site.
            ("ASYNC_UPLOAD_LOG__UP", "/tmp/x.jsonl"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, raw)| (*raw).to_owned())
        };
        let read = site_overrides_from("up", &lookup).unwrap();
        // Only code sets a site's backoff base.
        let want = SiteOverrides {
            backoff_base: None,
            ..every_site_setting()
        };
        assert_eq!(read, want);
        assert!(site_errors_in(vars.map(|(k, v)| (k.to_owned(), v.to_owned()))).is_empty());
    }

    #[test]
    fn overrides_layer_field_by_field() {
        let all = every_site_setting();
        let none = SiteOverrides::default();
        assert_eq!(none.or(&all), all);
        assert_eq!(all.or(&none), all);
        let upper = SiteOverrides {
            rollout: Some(50.0),
            ..SiteOverrides::default()
        };
        assert_eq!(
            upper.or(&all),
            SiteOverrides {
                rollout: Some(50.0),
                ..all
            }
        );
    }

    /// A value set wrong, and the name its error must give.
    type Case<T> = (fn(&mut T), &'static str);

    #[test]
    fn values_made_in_code_are_checked_by_name() {
        assert!(every_site_setting().validate().is_ok());
        let site: [Case<SiteOverrides>; 6] = [
            (|o| o.rollout = Some(150.0), "rollout"),
            (|o| o.max_retries = Some(11), "max_retries"),
            (|o| o.timeout = Some(Duration::ZERO), "timeout"),
            (|o| o.breaker_threshold = Some(0), "breaker_threshold"),
            (
                |o| o.breaker_cooldown = Some(Duration::ZERO),
                "breaker_cooldown",
            ),
            (|o| o.retry_budget = Some(101), "retry_budget"),
        ];
        for (set, name) in site {
            let mut overrides = SiteOverrides::default();
            set(&mut overrides);
            assert_eq!(overrides.validate().unwrap_err().variable(), name);
        }
        let global: [Case<Config>; 6] = [
            (|c| c.rollout = -1.0, ROLLOUT),
            (|c| c.max_retries = 11, MAX_RETRIES),
            (|c| c.timeout = Duration::ZERO, TIMEOUT),
            (|c| c.breaker_threshold = 101, BREAKER_THRESHOLD),
            (
                |c| c.breaker_cooldown = Duration::from_secs(7200),
                BREAKER_COOLDOWN,
            ),
            (|c| c.retry_budget = 200, RETRY_BUDGET),
        ];
        for (set, variable) in global {
            let mut config = Config::default();
            set(&mut config);
            assert_eq!(config.validate().unwrap_err().variable(), variable);
        }
    }

    #[test]
    fn a_change_names_every_setting_it_moved() {
        let before = Config::default();
        let after = Config {
            enabled: true,
            rollout: 10.0,
            fallback: false,
            max_retries: 3,
            timeout: Duration::from_millis(2500),
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(2),
            log_path: Some(PathBuf::from("/tmp/log.jsonl")),
            breaker: false,
            breaker_threshold: 60,
            breaker_cooldown: Duration::from_secs(2),
            retry_budget: 10,
        };
        // Through the change list the `operator` lines are written from.
        let changes = crate::config::changes::global_changes(&before, &after);
        assert_eq!(changes.len(), KNOBS.len(), "{changes:?}");
        let change = |name, old: Option<&str>, new: &str| {
            crate::metrics::SettingChange::new(name, old.map(str::to_owned), Some(new.to_owned()))
        };
        assert_eq!(changes[4], change("timeout", Some("30"), "2.5"));
        assert_eq!(changes[7], change("log_path", None, "/tmp/log.jsonl"));
        let site: Vec<_> = site_settings(&every_site_setting()).collect();
        assert!(site.iter().all(|(_, value)| value.is_some()), "{site:?}");
        assert_eq!(site[1], ("rollout", Some("12.5".into())));
    }
}

#[cfg(test)]
mod site_var_tests {
    use super::*;
    use std::collections::HashMap;

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

        let variable = format!("{TIMEOUT}__X");
        let bad = site_overrides_from("x", &|n| (n == variable).then(|| "0".into())).unwrap_err();
        assert_eq!(bad.variable(), variable);
    }
}
