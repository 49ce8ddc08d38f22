//! The shared control state as typed values, and its text form in Redis
//! hashes (the same spellings as the environment variables accept).
//!
//! Bad data is local: a value that is not accepted is a [`ConfigError`]
//! naming the key, the field, the value and what is accepted, kept beside
//! the state it belongs to. A bad override, stage or latch makes its site
//! invalid (that site runs the sync path); a bad default makes that
//! default its safe value; every other site is read as usual.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use async_upload_runtime::config::env::{parse_bool, parse_retries, parse_rollout, parse_timeout};
use async_upload_runtime::config::{ConfigError, SiteOverrides};

use super::keys::TEXT_LIMIT;

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
    /// When that stage was entered, in milliseconds since the Unix epoch
    /// (the fleet's one stage clock: a new leader resumes it).
    pub stage_entered_ms: Option<u64>,
    /// The latched rollback's reason (at most 1 KiB), while the site is rolled back.
    pub rollback: Option<String>,
    /// The state version of the last explicit clear of the latch
    /// (`rolled_back = false`), if the store holds one.
    pub cleared_version: Option<u64>,
    /// Who made the site's last change: `operator[:<user>]` for the
    /// command line, a replica's instance id for a leader or a latch.
    pub by: Option<String>,
    /// The state version of the site's last change.
    pub version: u64,
    /// The stored values that are not accepted in an override, the stage
    /// or the latch: any makes the site run the sync path.
    pub problems: Vec<ConfigError>,
    /// The stored values that are not accepted elsewhere (`by`, `version`,
    /// a `reason` over 1 KiB): read as absent (or cut), the site unaffected.
    pub ignored: Vec<ConfigError>,
}

/// Everything the fleet shares, as read in one round trip.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct FleetState {
    /// The store epoch: minted by the first write to a store that has none.
    /// `None`: the store has never held state, or came back empty.
    pub epoch: Option<String>,
    /// The version of the shared state (bumped by every change).
    pub version: u64,
    /// The defaults; `None` before anyone set them (replicas then run the sync path).
    pub defaults: Option<Defaults>,
    /// Who set the defaults last, and at which version.
    pub defaults_by: Option<String>,
    /// The state version of the defaults' last change.
    pub defaults_version: u64,
    /// Every site with a hash of its own.
    pub sites: BTreeMap<String, SiteState>,
    /// The stored values outside any site that are not accepted (the
    /// epoch, the version, the defaults, the sites set).
    pub problems: Vec<ConfigError>,
    /// The version key's text as stored (the poll compares it as text).
    pub(crate) raw_version: Option<String>,
}

impl SiteState {
    /// Whether a stored value of the site is not accepted: it runs the sync path.
    #[must_use]
    pub fn invalid(&self) -> bool {
        !self.problems.is_empty()
    }
}

impl FleetState {
    /// Every problem of the state, the store's and each site's.
    pub fn all_problems(&self) -> impl Iterator<Item = &ConfigError> {
        self.problems.iter().chain(
            self.sites
                .values()
                .flat_map(|s| s.problems.iter().chain(&s.ignored)),
        )
    }
}

/// Field names of the hashes.
pub(crate) mod field {
    pub(crate) const ENABLED: &str = "enabled";
    pub(crate) const ROLLOUT: &str = "rollout";
    pub(crate) const FALLBACK: &str = "fallback";
    pub(crate) const MAX_RETRIES: &str = "max_retries";
    pub(crate) const TIMEOUT: &str = "timeout";
    pub(crate) const STAGE: &str = "stage";
    pub(crate) const STAGE_ENTERED_MS: &str = "stage_entered_ms";
    pub(crate) const ROLLED_BACK: &str = "rolled_back";
    pub(crate) const REASON: &str = "reason";
    pub(crate) const CLEARED_VERSION: &str = "cleared_version";
    pub(crate) const BY: &str = "by";
    pub(crate) const VERSION: &str = "version";
    /// The fields `fleet set` may write on a site.
    pub(crate) const OVERRIDES: [&str; 5] = [ENABLED, ROLLOUT, FALLBACK, MAX_RETRIES, TIMEOUT];
}

/// What the whole-number metadata fields accept.
const WHOLE: &str = "a whole number below 2^53";
/// What a text field accepts.
const TEXT: &str = "text of at most 1024 bytes (the first 1024 are used)";

/// A value as shown in a problem: at most 64 bytes, so that a 20 MB value
/// is never logged whole.
pub(crate) fn shown(raw: &str) -> String {
    const SHOWN: usize = 64;
    if raw.len() <= SHOWN {
        return raw.to_owned();
    }
    let mut text = bounded(raw, SHOWN).to_owned();
    let _ = write!(text, "… ({} bytes)", raw.len());
    text
}

/// `text` cut to at most `limit` bytes at a character boundary.
pub(crate) fn bounded(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A text value cut to [`TEXT_LIMIT`], with a problem when it was longer
/// (the read script sends at most one byte more than the limit).
fn text_field(key: &str, name: &str, raw: &str, problems: &mut Vec<ConfigError>) -> String {
    if raw.len() > TEXT_LIMIT {
        problems.push(ConfigError::new(format!("{key}.{name}"), shown(raw), TEXT));
    }
    bounded(raw, TEXT_LIMIT).to_owned()
}

pub(crate) fn parse_whole(name: &str, raw: &str) -> Result<u64, ConfigError> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|&n| n < 1 << 53)
        .ok_or_else(|| ConfigError::new(name, shown(raw), WHOLE))
}

fn parse_stage(name: &str, raw: &str) -> Result<u32, ConfigError> {
    raw.trim()
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| ConfigError::new(name, shown(raw), "a stage number, 1 or more"))
}

/// The fields of one hash, read one by one: a field that is not accepted
/// is noted and read as absent.
struct Fields<'a> {
    key: &'a str,
    hash: &'a HashMap<String, String>,
    problems: Vec<ConfigError>,
}

impl<'a> Fields<'a> {
    fn new(key: &'a str, hash: &'a HashMap<String, String>) -> Self {
        Fields {
            key,
            hash,
            problems: Vec::new(),
        }
    }

    fn get<T>(&mut self, name: &str, parse: fn(&str, &str) -> Result<T, ConfigError>) -> Option<T> {
        let raw = self.hash.get(name)?;
        match parse(&format!("{}.{name}", self.key), raw) {
            Ok(value) => Some(value),
            Err(error) => {
                // The value as shown, never a 20 MB one.
                self.problems.push(ConfigError::new(
                    error.variable().to_owned(),
                    shown(error.value()),
                    error.expected(),
                ));
                None
            }
        }
    }

    fn text(&mut self, name: &str) -> Option<String> {
        let raw = self.hash.get(name)?;
        Some(text_field(self.key, name, raw, &mut self.problems))
    }
}

impl Defaults {
    /// Parses the defaults hash; `None` when it is empty (none set). A bad
    /// field takes its safe value (`enabled` false, `rollout` 0).
    pub(crate) fn parse(
        key: &str,
        hash: &HashMap<String, String>,
        problems: &mut Vec<ConfigError>,
    ) -> (Option<Defaults>, Option<String>, u64) {
        if hash.is_empty() {
            return (None, None, 0);
        }
        let mut fields = Fields::new(key, hash);
        let defaults = Defaults {
            enabled: fields.get(field::ENABLED, parse_bool).unwrap_or(false),
            rollout: fields.get(field::ROLLOUT, parse_rollout).unwrap_or(0.0),
        };
        let by = fields.text(field::BY);
        let version = fields.get(field::VERSION, parse_whole).unwrap_or(0);
        problems.append(&mut fields.problems);
        (Some(defaults), by, version)
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
    /// Parses a site hash. Problems in the fields that decide the route
    /// (overrides, stage, latch) make the site invalid; a bad metadata
    /// field (`by`, `version`, …) is noted and read as absent.
    pub(crate) fn parse(key: &str, hash: &HashMap<String, String>) -> Self {
        let mut fields = Fields::new(key, hash);
        let overrides = SiteOverrides {
            enabled: fields.get(field::ENABLED, parse_bool),
            rollout: fields.get(field::ROLLOUT, parse_rollout),
            fallback: fields.get(field::FALLBACK, parse_bool),
            max_retries: fields.get(field::MAX_RETRIES, parse_retries),
            timeout: fields.get(field::TIMEOUT, parse_timeout),
            // Breaker settings stay local to each replica.
            ..SiteOverrides::default()
        };
        let stage_number = fields.get(field::STAGE, parse_stage);
        let rolled_back = fields.get(field::ROLLED_BACK, parse_bool);
        let routing = fields.problems.len();
        let reason = fields.text(field::REASON);
        let mut state = SiteState {
            overrides,
            stage: stage_number,
            stage_entered_ms: fields.get(field::STAGE_ENTERED_MS, parse_whole),
            rollback: (rolled_back == Some(true)).then(|| reason.unwrap_or_default()),
            cleared_version: None,
            by: fields.text(field::BY),
            version: fields.get(field::VERSION, parse_whole).unwrap_or(0),
            problems: Vec::new(),
            ignored: Vec::new(),
        };
        if rolled_back == Some(false) {
            // An explicit clear; a clear written by hand without a version
            // still counts as one, from the site's last change.
            state.cleared_version = Some(
                fields
                    .get(field::CLEARED_VERSION, parse_whole)
                    .unwrap_or(state.version),
            );
        }
        // Only the routing problems make the site invalid.
        let mut problems = fields.problems;
        state.ignored = problems.split_off(routing);
        state.problems = problems;
        state
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
/// An empty name, one longer than 256 bytes, or one with whitespace or
/// control characters (the change channel separates fields with a space).
pub(crate) fn validate_site(site: &str) -> Result<(), ConfigError> {
    if site.is_empty()
        || site.len() > 256
        || site.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ConfigError::new(
            "site",
            shown(site),
            "a non-empty site name of at most 256 bytes without whitespace (the function's name, e.g. upload_file)",
        ));
    }
    Ok(())
}

/// Checks a text value an operator or a caller writes (`reason`).
///
/// # Errors
///
/// Text longer than 1 KiB.
pub(crate) fn validate_text(name: &str, text: &str) -> Result<(), ConfigError> {
    if text.len() > TEXT_LIMIT {
        return Err(ConfigError::new(
            name,
            shown(text),
            "text of at most 1024 bytes",
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
        fields.insert("stage_entered_ms".into(), "1700000000000".into());
        fields.insert("rolled_back".into(), "true".into());
        fields.insert("reason".into(), "panic".into());
        fields.insert("by".into(), "replica-1".into());
        fields.insert("version".into(), "7".into());
        let state = SiteState::parse("k", &fields);
        assert_eq!(state.overrides, overrides);
        assert_eq!(state.stage, Some(2));
        assert_eq!(state.stage_entered_ms, Some(1_700_000_000_000));
        assert_eq!(state.rollback.as_deref(), Some("panic"));
        assert_eq!(state.by.as_deref(), Some("replica-1"));
        assert_eq!(state.version, 7);
        assert!(!state.invalid());
    }

    #[test]
    fn a_bad_field_makes_its_site_invalid_naming_key_field_value_and_what_is_accepted() {
        let state = SiteState::parse(
            "async-upload:v1:site:up",
            &hash(&[("max_retries", "99"), ("rollout", "5")]),
        );
        assert!(state.invalid());
        let problem = &state.problems[0];
        assert_eq!(problem.variable(), "async-upload:v1:site:up.max_retries");
        assert_eq!(problem.value(), "99");
        assert!(problem.expected().contains("0 to 10"), "{problem}");
        assert_eq!(
            state.overrides.rollout,
            Some(5.0),
            "the good fields are read"
        );
        let bad_stage = SiteState::parse("k", &hash(&[("stage", "0")]));
        assert!(bad_stage.problems[0].to_string().contains("stage number"));
    }

    #[test]
    fn bad_metadata_is_ignored_and_does_not_make_the_site_invalid() {
        let state = SiteState::parse("k", &hash(&[("version", "18446744073709551615")]));
        assert!(!state.invalid());
        assert_eq!(state.version, 0);
        assert_eq!(state.ignored[0].variable(), "k.version");
    }

    #[test]
    fn a_latch_is_true_in_any_spelling_and_a_clear_is_explicit() {
        let latched = SiteState::parse("k", &hash(&[("rolled_back", "1"), ("reason", "r")]));
        assert_eq!(latched.rollback.as_deref(), Some("r"));
        let cleared = SiteState::parse(
            "k",
            &hash(&[("rolled_back", "false"), ("cleared_version", "9")]),
        );
        assert_eq!(cleared.rollback, None);
        assert_eq!(cleared.cleared_version, Some(9));
        let never = SiteState::parse("k", &hash(&[("rollout", "5")]));
        assert_eq!(never.cleared_version, None);
        let bad = SiteState::parse("k", &hash(&[("rolled_back", "maybe")]));
        assert!(bad.invalid());
        assert_eq!(bad.rollback, None);
    }

    #[test]
    fn long_text_is_bounded_to_1_kib_and_shown_short() {
        let long = "x".repeat(TEXT_LIMIT + 1);
        let state = SiteState::parse("k", &hash(&[("rolled_back", "true"), ("reason", &long)]));
        assert_eq!(state.rollback.as_deref().map(str::len), Some(TEXT_LIMIT));
        assert!(!state.invalid(), "a long reason still latches");
        assert!(shown(&"é".repeat(40_000)).len() < 100);
        assert!(validate_text("reason", &long).is_err());
    }

    #[test]
    fn bad_defaults_take_their_safe_values() {
        let mut problems = Vec::new();
        assert_eq!(
            Defaults::parse("k", &HashMap::new(), &mut problems),
            (None, None, 0)
        );
        let (defaults, by, _) = Defaults::parse(
            "k",
            &hash(&[("enabled", "true"), ("rollout", "abc"), ("by", "operator")]),
            &mut problems,
        );
        let defaults = defaults.unwrap();
        assert!(defaults.enabled);
        assert!(defaults.rollout.abs() < f64::EPSILON);
        assert_eq!(by.as_deref(), Some("operator"));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].variable(), "k.rollout");
    }

    #[test]
    fn site_names_with_spaces_are_refused() {
        assert!(validate_site("upload_file").is_ok());
        assert!(validate_site("").is_err());
        assert!(validate_site("a b").is_err());
        assert!(validate_site(&"a".repeat(300)).is_err());
    }
}
