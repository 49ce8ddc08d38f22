//! Operator actions in the record: one `operator` line per setting an
//! operator's change set, with what it was, what it became and who made
//! it, so the report and the dashboard show who changed what.
//!
//! The configuration handle tells the sinks of every change an operator
//! applies through it ([`MetricsSink::config_changed`]); the
//! [`JsonlLog`](super::JsonlLog) writes each setting it moved as one line
//! (`OperatorEvent::lines`).
//!
//! [`MetricsSink::config_changed`]: async_upload_runtime::metrics::MetricsSink::config_changed

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use async_upload_runtime::metrics::{rfc3339, ConfigChange};

/// An operator's change of one setting, as a replica applied it.
///
/// ```text
/// {"kind":"operator","ts":"…","site":"upload","setting":"rollout","old":"1","new":"10","by":"operator","v":1}
/// {"kind":"operator","ts":"…","setting":"enabled","old":"false","new":"true","by":"replica-2","v":1}
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OperatorEvent {
    /// When it was applied.
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The site; `None` for the global configuration (every site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// What changed: a setting's name as in [`Config`](async_upload_runtime::config::Config)
    /// and [`SiteOverrides`](async_upload_runtime::config::SiteOverrides) (`rollout`,
    /// `enabled`, `timeout`, …), or `rollback` (the kill switch and its
    /// reason).
    pub setting: String,
    /// The value before, in the environment's spelling (`None`: not set).
    pub old: Option<String>,
    /// The value after (`None`: not set any more).
    pub new: Option<String>,
    /// Who made the change: `operator`, or the instance id of the replica
    /// whose operator made it.
    pub by: String,
}

impl OperatorEvent {
    /// The change of `setting` at `site` (`None`: global) from `old` to
    /// `new`, made by `by`.
    #[must_use]
    pub fn new(
        ts: SystemTime,
        site: Option<&str>,
        setting: impl Into<String>,
        (old, new): (Option<String>, Option<String>),
        by: impl Into<String>,
    ) -> Self {
        OperatorEvent {
            ts,
            site: site.map(str::to_owned),
            setting: setting.into(),
            old,
            new,
            by: by.into(),
        }
    }

    /// One line per setting `change` moved, in its order.
    pub(crate) fn lines(change: &ConfigChange) -> impl Iterator<Item = OperatorEvent> + '_ {
        change.settings.iter().map(|setting| {
            OperatorEvent::new(
                change.ts,
                change.site.as_deref(),
                setting.name,
                (setting.old.clone(), setting.new.clone()),
                change.by.clone(),
            )
        })
    }
}

impl core::fmt::Display for OperatorEvent {
    /// `rollout 1 → 10 (by operator)`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
        if self.site.is_none() {
            f.write_str("global ")?;
        }
        write!(
            f,
            "{} {} → {} (by {})",
            self.setting,
            show(&self.old),
            show(&self.new),
            self.by
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back_and_shows_what_changed() {
        let event = OperatorEvent::new(
            SystemTime::UNIX_EPOCH,
            Some("upload"),
            "rollout",
            (Some("1".into()), Some("10".into())),
            "operator",
        );
        assert_eq!(event.to_string(), "rollout 1 → 10 (by operator)");
        let json = serde_json::to_string(&super::super::Event::Operator(event.clone())).unwrap();
        assert!(json.starts_with(r#"{"kind":"operator","#), "{json}");
        let back: super::super::Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, super::super::Event::Operator(event));
    }
}
