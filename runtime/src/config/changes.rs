//! What a change of the live configuration changed, setting by setting,
//! in the environment's spellings: the content of the log's `operator`
//! lines ([`log::OperatorEvent`](crate::log::OperatorEvent)).

use std::time::Duration;

use super::{Config, SiteOverrides};
use crate::log::Change;

fn text<T: ToString>(value: Option<T>) -> Option<String> {
    value.map(|v| v.to_string())
}

fn seconds(value: Option<Duration>) -> Option<String> {
    value.map(|d| d.as_secs_f64().to_string())
}

/// Each `(setting, before, after)` that differs, of two lists of the same
/// settings.
fn differing<const N: usize>(
    before: [(&'static str, Option<String>); N],
    after: [(&'static str, Option<String>); N],
) -> Vec<Change> {
    before
        .into_iter()
        .zip(after)
        .map(|((name, old), (_, new))| (name, old, new))
        .filter(|(_, old, new)| old != new)
        .collect()
}

/// Every setting of `overrides`, by name. Exhaustive on purpose: a new
/// field does not compile until it is listed here, so no change goes
/// unrecorded.
fn site_settings(
    overrides: &SiteOverrides,
    rollback: Option<&String>,
) -> [(&'static str, Option<String>); 11] {
    let SiteOverrides {
        enabled,
        rollout,
        fallback,
        max_retries,
        timeout,
        backoff_base,
        breaker,
        breaker_threshold,
        breaker_cooldown,
        retry_budget,
    } = overrides;
    [
        ("enabled", text(*enabled)),
        ("rollout", text(*rollout)),
        ("fallback", text(*fallback)),
        ("max_retries", text(*max_retries)),
        ("timeout", seconds(*timeout)),
        ("backoff_base", seconds(*backoff_base)),
        ("breaker", text(*breaker)),
        ("breaker_threshold", text(*breaker_threshold)),
        ("breaker_cooldown", seconds(*breaker_cooldown)),
        ("retry_budget", text(*retry_budget)),
        ("rollback", rollback.cloned()),
    ]
}

/// The settings of one site an operator can change, before a change.
#[derive(Clone, Debug)]
pub(crate) struct SiteState {
    overrides: SiteOverrides,
    rollback: Option<String>,
}

impl SiteState {
    pub(crate) fn new(overrides: &SiteOverrides, rollback: Option<&String>) -> Self {
        SiteState {
            overrides: overrides.clone(),
            rollback: rollback.cloned(),
        }
    }

    /// What changed from `self` to `after`.
    pub(crate) fn changes(&self, after: &SiteState) -> Vec<Change> {
        differing(
            site_settings(&self.overrides, self.rollback.as_ref()),
            site_settings(&after.overrides, after.rollback.as_ref()),
        )
    }
}

/// What changed in the global configuration. Exhaustive, as for sites.
pub(crate) fn global_changes(before: &Config, after: &Config) -> Vec<Change> {
    let settings = |c: &Config| {
        let Config {
            enabled,
            rollout,
            fallback,
            max_retries,
            timeout,
            backoff_base,
            backoff_cap,
            log_path,
            breaker,
            breaker_threshold,
            breaker_cooldown,
            retry_budget,
        } = c;
        [
            ("enabled", text(Some(enabled))),
            ("rollout", text(Some(rollout))),
            ("fallback", text(Some(fallback))),
            ("max_retries", text(Some(max_retries))),
            ("timeout", seconds(Some(*timeout))),
            ("backoff_base", seconds(Some(*backoff_base))),
            ("backoff_cap", seconds(Some(*backoff_cap))),
            (
                "log_path",
                log_path.as_ref().map(|p| p.display().to_string()),
            ),
            ("breaker", text(Some(breaker))),
            ("breaker_threshold", text(Some(breaker_threshold))),
            ("breaker_cooldown", seconds(Some(*breaker_cooldown))),
            ("retry_budget", text(Some(retry_budget))),
        ]
    };
    differing(settings(before), settings(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_a_change() {
        let before = SiteState::new(&SiteOverrides::default(), None);
        let after = SiteState::new(
            &SiteOverrides {
                rollout: Some(12.5),
                timeout: Some(Duration::from_millis(1500)),
                ..SiteOverrides::default()
            },
            Some(&"error spike".to_owned()),
        );
        assert_eq!(
            before.changes(&after),
            [
                ("rollout", None, Some("12.5".to_owned())),
                ("timeout", None, Some("1.5".to_owned())),
                ("rollback", None, Some("error spike".to_owned())),
            ]
        );
        assert!(after.changes(&after).is_empty());
        let config = Config::default();
        let changes = global_changes(&config, &config.clone().with_enabled(true));
        assert_eq!(
            changes,
            [("enabled", Some("false".to_owned()), Some("true".to_owned()))]
        );
    }
}
