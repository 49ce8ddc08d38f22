//! The read script's reply as a [`FleetState`]: each key's type is
//! checked, a key of the wrong type or a value that is not accepted
//! becomes a problem of its own key, never a failed read.

use std::collections::HashMap;

use redis::Value;

use super::keys::Keys;
use super::state::{self, parse_whole, shown, validate_site, Defaults, FleetState, SiteState};
use async_upload_runtime::config::ConfigError;

/// One entry of the reply: the key's type and, for a string or a hash, its value.
struct Entry {
    kind: String,
    value: Option<Value>,
}

fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Int(n) => n.to_string(),
        _ => String::new(),
    }
}

fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => Vec::new(),
    }
}

fn entry(value: Value) -> Entry {
    let mut parts = items(value).into_iter();
    Entry {
        kind: parts.next().map(|k| text(&k)).unwrap_or_default(),
        value: parts.next(),
    }
}

impl Entry {
    /// The string's text; `None` when absent. A key of another type is a problem.
    fn string(self, key: &str, problems: &mut Vec<ConfigError>) -> Option<String> {
        match self.kind.as_str() {
            "string" => self.value.as_ref().map(text),
            "none" => None,
            other => {
                problems.push(wrong_type(key, other, "a string"));
                None
            }
        }
    }

    /// The hash's fields; empty when absent. A key of another type is a problem.
    fn hash(self, key: &str, problems: &mut Vec<ConfigError>) -> HashMap<String, String> {
        match self.kind.as_str() {
            "hash" => {
                let flat: Vec<String> = self
                    .value
                    .map(items)
                    .unwrap_or_default()
                    .iter()
                    .map(text)
                    .collect();
                flat.chunks(2)
                    .filter_map(|pair| match pair {
                        [name, value] => Some((name.clone(), value.clone())),
                        _ => None,
                    })
                    .collect()
            }
            "none" => HashMap::new(),
            other => {
                problems.push(wrong_type(key, other, "a hash"));
                HashMap::new()
            }
        }
    }
}

fn wrong_type(key: &str, kind: &str, accepted: &'static str) -> ConfigError {
    ConfigError::new(key, format!("a key of type {kind}"), accepted)
}

/// The state in the read script's reply (see `script.rs`).
pub(crate) fn parse_state(reply: Value) -> FleetState {
    let mut parts = items(reply).into_iter();
    let mut next = || parts.next().unwrap_or(Value::Nil);
    let (epoch, version, defaults, sites_set) =
        (entry(next()), entry(next()), entry(next()), entry(next()));
    let sites = next();
    let mut state = FleetState::default();
    let problems = &mut state.problems;
    state.epoch = epoch
        .string(&Keys::epoch(), problems)
        .map(|e| state::bounded(&e, 64).to_owned());
    if let Some(raw) = version.string(&Keys::version(), problems) {
        match parse_whole(&Keys::version(), &raw) {
            Ok(version) => state.version = version,
            Err(error) => problems.push(error),
        }
        state.raw_version = Some(raw);
    }
    let hash = defaults.hash(&Keys::defaults(), problems);
    let (defaults, by, defaults_version) = Defaults::parse(&Keys::defaults(), &hash, problems);
    state.defaults = defaults;
    state.defaults_by = by;
    state.defaults_version = defaults_version;
    if !matches!(sites_set.kind.as_str(), "set" | "none") {
        problems.push(wrong_type(
            &Keys::sites(),
            &sites_set.kind,
            "a set of site names",
        ));
    }
    parse_sites(&mut state, sites);
    state
}

/// The sites part of the reply (`{name, entry, …}`) into `state`; a site
/// whose key is absent is not in the state.
fn parse_sites(state: &mut FleetState, flat: Value) {
    let mut flat = items(flat).into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        let name = text(&name);
        if let Err(error) = validate_site(&name) {
            state.problems.push(ConfigError::new(
                Keys::sites(),
                shown(&name),
                error.expected(),
            ));
            continue;
        }
        let entry = entry(value);
        if entry.kind == "none" {
            continue;
        }
        let key = Keys::site(&name);
        let mut problems = Vec::new();
        let hash = entry.hash(&key, &mut problems);
        let mut site = SiteState::parse(&key, &hash);
        site.problems.append(&mut problems);
        state.sites.insert(name, site);
    }
}
