//! The shared control state as typed values, and its text form in Redis
//! hashes (the same spellings as the environment variables accept).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use crate::config::env::{parse_bool, parse_retries, parse_rollout, parse_timeout};
use crate::config::{ConfigError, SiteOverrides};

/// The fleet-wide defaults (key `async-upload:v1:defaults`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    /// The async path may run at all, fleet-wide.
    pub enabled: bool,
    /// Percent of keys enrolled for sites without a rollout of their own.
    pub rollout: f64,
}

/// One site's shared state (key `async-upload:v1:site:<site>`).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SiteState {
    /// Operator overrides of the site (enabled, rollout, fallback, retries, timeout).
    pub overrides: SiteOverrides,
    /// The rollout stage the site's controller is in.
    pub stage: Option<u32>,
    /// The latched rollback's reason, while the site is rolled back.
    pub rollback: Option<String>,
    /// The state version of the site's last change.
    pub version: u64,
}

/// Everything the fleet shares, as read in one round trip.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct FleetState {
    /// The version of the shared state (bumped by every change).
    pub version: u64,
    /// The defaults; `None` before anyone seeded them (replicas then run the sync path).
    pub defaults: Option<Defaults>,
    /// Every site with a hash of its own.
    pub sites: BTreeMap<String, SiteState>,
}

/// Field names of the hashes.
pub(crate) mod field {
    pub(crate) const ENABLED: &str = "enabled";
    pub(crate) const ROLLOUT: &str = "rollout";
    pub(crate) const FALLBACK: &str = "fallback";
    pub(crate) const MAX_RETRIES: &str = "max_retries";
    pub(crate) const TIMEOUT: &str = "timeout";
    pub(crate) const STAGE: &str = "stage";
    pub(crate) const ROLLED_BACK: &str = "rolled_back";
    pub(crate) const REASON: &str = "reason";
    pub(crate) const VERSION: &str = "version";
    /// The fields `fleet set` may write on a site.
    pub(crate) const OVERRIDES: [&str; 5] = [ENABLED, ROLLOUT, FALLBACK, MAX_RETRIES, TIMEOUT];
}

/// Reads one field with the environment's parser, naming `key.field` in the error.
fn read<T>(
    hash: &HashMap<String, String>,
    key: &str,
    name: &str,
    parse: fn(&str, &str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    hash.get(name)
        .map(|raw| parse(&format!("{key}.{name}"), raw))
        .transpose()
}

fn parse_u64(name: &str, raw: &str) -> Result<u64, ConfigError> {
    raw.trim()
        .parse()
        .map_err(|_| ConfigError::new(name, raw, "a whole number"))
}

fn parse_stage(name: &str, raw: &str) -> Result<u32, ConfigError> {
    raw.trim()
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| ConfigError::new(name, raw, "a stage number, 1 or more"))
}

impl Defaults {
    /// Parses the defaults hash; `Ok(None)` when it is empty (no state).
    pub(crate) fn parse(
        key: &str,
        hash: &HashMap<String, String>,
    ) -> Result<Option<Defaults>, ConfigError> {
        if hash.is_empty() {
            return Ok(None);
        }
        Ok(Some(Defaults {
            enabled: read(hash, key, field::ENABLED, parse_bool)?.unwrap_or(false),
            rollout: read(hash, key, field::ROLLOUT, parse_rollout)?.unwrap_or(0.0),
        }))
    }

    /// The hash fields.
    pub(crate) fn fields(self) -> Vec<(&'static str, String)> {
        vec![
            (field::ENABLED, self.enabled.to_string()),
            (field::ROLLOUT, self.rollout.to_string()),
        ]
    }
}

impl SiteState {
    /// Parses a site hash. A value that is not accepted is an error naming
    /// the key, the field, the value and what is accepted.
    pub(crate) fn parse(key: &str, hash: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let rolled_back = read(hash, key, field::ROLLED_BACK, parse_bool)?.unwrap_or(false);
        Ok(SiteState {
            overrides: SiteOverrides {
                enabled: read(hash, key, field::ENABLED, parse_bool)?,
                rollout: read(hash, key, field::ROLLOUT, parse_rollout)?,
                fallback: read(hash, key, field::FALLBACK, parse_bool)?,
                max_retries: read(hash, key, field::MAX_RETRIES, parse_retries)?,
                timeout: read(hash, key, field::TIMEOUT, parse_timeout)?,
                // Breaker settings stay local to each replica.
                ..SiteOverrides::default()
            },
            stage: read(hash, key, field::STAGE, parse_stage)?,
            rollback: rolled_back.then(|| hash.get(field::REASON).cloned().unwrap_or_default()),
            version: read(hash, key, field::VERSION, parse_u64)?.unwrap_or(0),
        })
    }
}

/// The hash fields of the overrides that are set, and the names of those
/// that are not (to delete).
pub(crate) fn override_fields(
    overrides: &SiteOverrides,
) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let values = [
        overrides.enabled.map(|b| b.to_string()),
        overrides.rollout.map(|p| p.to_string()),
        overrides.fallback.map(|b| b.to_string()),
        overrides.max_retries.map(|n| n.to_string()),
        overrides.timeout.map(seconds),
    ];
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for (name, value) in field::OVERRIDES.into_iter().zip(values) {
        match value {
            Some(value) => set.push((name, value)),
            None => unset.push(name),
        }
    }
    (set, unset)
}

/// Seconds as the environment writes them (`30`, `2.5`).
fn seconds(duration: Duration) -> String {
    let mut text = String::new();
    let _ = write!(text, "{}", duration.as_secs_f64());
    text
}

/// Checks a site name given by an operator or a caller.
///
/// # Errors
///
/// An empty name, or one with whitespace or control characters (the
/// change channel separates fields with a space).
pub(crate) fn validate_site(site: &str) -> Result<(), ConfigError> {
    if site.is_empty() || site.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            "site",
            site,
            "a non-empty site name without whitespace (the function's name, e.g. upload_file)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_site_hash_round_trips_through_its_fields() {
        let overrides = SiteOverrides {
            enabled: Some(true),
            rollout: Some(12.5),
            fallback: None,
            max_retries: Some(3),
            timeout: Some(Duration::from_millis(2500)),
            ..SiteOverrides::default()
        };
        let (set, unset) = override_fields(&overrides);
        assert_eq!(unset, vec![field::FALLBACK]);
        let mut fields: HashMap<String, String> =
            set.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        fields.insert("stage".into(), "2".into());
        fields.insert("rolled_back".into(), "true".into());
        fields.insert("reason".into(), "panic".into());
        fields.insert("version".into(), "7".into());
        let state = SiteState::parse("k", &fields).unwrap();
        assert_eq!(state.overrides, overrides);
        assert_eq!(state.stage, Some(2));
        assert_eq!(state.rollback.as_deref(), Some("panic"));
        assert_eq!(state.version, 7);
    }

    #[test]
    fn a_bad_field_names_key_field_value_and_what_is_accepted() {
        let error =
            SiteState::parse("async-upload:v1:site:up", &hash(&[("rollout", "150")])).unwrap_err();
        assert_eq!(error.variable(), "async-upload:v1:site:up.rollout");
        assert_eq!(error.value(), "150");
        let error = SiteState::parse("k", &hash(&[("stage", "0")])).unwrap_err();
        assert!(error.to_string().contains("stage number"), "{error}");
    }

    #[test]
    fn empty_defaults_mean_no_state() {
        assert_eq!(Defaults::parse("k", &HashMap::new()).unwrap(), None);
        let defaults = Defaults::parse("k", &hash(&[("enabled", "true"), ("rollout", "5")]))
            .unwrap()
            .unwrap();
        assert!(defaults.enabled);
        assert!((defaults.rollout - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn site_names_with_spaces_are_refused() {
        assert!(validate_site("upload_file").is_ok());
        assert!(validate_site("").is_err());
        assert!(validate_site("a b").is_err());
    }
}
