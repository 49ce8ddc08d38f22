//! Notices: the rare events of the hot path that are not a call's record,
//! as its sinks receive them ([`MetricsSink::breaker_changed`],
//! [`MetricsSink::config_changed`]).
//!
//! They live beside the records so that the breaker and the configuration
//! tell the sinks and know nothing of who listens; the JSONL log is one
//! listener, writing them as `breaker` and `operator` lines.
//!
//! [`MetricsSink::breaker_changed`]: super::MetricsSink::breaker_changed
//! [`MetricsSink::config_changed`]: super::MetricsSink::config_changed

use std::time::{Duration, SystemTime};

#[cfg(feature = "serde")]
use super::rfc3339;

/// A `breaker` line: what changed in a site's circuit breaker or retry budget.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use async_upload::metrics::{BreakerChange, BreakerEvent};
///
/// let event = BreakerEvent::new(
///     SystemTime::now(),
///     "upload",
///     BreakerChange::Open,
///     Some(Duration::from_secs(2)),
/// );
/// assert_eq!(event.cooldown_s, Some(2.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct BreakerEvent {
    /// When.
    #[cfg_attr(feature = "serde", serde(with = "rfc3339"))]
    pub ts: SystemTime,
    /// The site.
    pub site: String,
    /// What changed.
    pub event: BreakerChange,
    /// How long the breaker stays open before it probes, when it opened.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub cooldown_s: Option<f64>,
}

impl BreakerEvent {
    /// The event of `site`'s breaker or budget changing at `ts`.
    #[must_use]
    pub fn new(
        ts: SystemTime,
        site: impl Into<String>,
        event: BreakerChange,
        cooldown: Option<Duration>,
    ) -> Self {
        BreakerEvent {
            ts,
            site: site.into(),
            event,
            cooldown_s: cooldown.map(|c| c.as_secs_f64()),
        }
    }
}

/// What a [`BreakerEvent`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum BreakerChange {
    /// The breaker opened: enrolled calls go straight to the sync path.
    Open,
    /// The cool-down ended: probe calls try the async path.
    HalfOpen,
    /// The breaker closed: the async path serves again.
    Closed,
    /// The retry budget ran dry: failed attempts fall back without retrying.
    RetryBudgetExhausted,
}

/// One setting a change of the live configuration moved: its name, what
/// it was and what it became, in the environment's spelling (`None`: not
/// set).
///
/// ```
/// use async_upload::metrics::SettingChange;
///
/// let change = SettingChange::new("rollout", Some("1".into()), Some("10".into()));
/// assert_eq!(change.name, "rollout");
/// assert_eq!(change.new.as_deref(), Some("10"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettingChange {
    /// The setting's name as in [`Config`](crate::config::Config) and
    /// [`SiteOverrides`](crate::config::SiteOverrides) (`rollout`,
    /// `enabled`, `timeout`, …), or `rollback` (the kill switch and its
    /// reason).
    pub name: &'static str,
    /// The value before.
    pub old: Option<String>,
    /// The value after.
    pub new: Option<String>,
}

impl SettingChange {
    /// The change of `name` from `old` to `new`.
    #[must_use]
    pub fn new(name: &'static str, old: Option<String>, new: Option<String>) -> Self {
        SettingChange { name, old, new }
    }
}

/// The settings one change of the live configuration moved, made by an
/// operator (or, in fleet mode, by the operator of another replica): what
/// the JSONL log writes as one `operator` line per setting.
///
/// Changes the rollout controller makes itself (a stage's rollout, its
/// rollback) are not configuration notices: they have stage events of
/// their own.
///
/// ```
/// use std::time::SystemTime;
/// use async_upload::metrics::{ConfigChange, SettingChange};
///
/// let change = ConfigChange::new(
///     SystemTime::now(),
///     Some("upload"),
///     "operator",
///     vec![SettingChange::new("rollout", Some("1".into()), Some("10".into()))],
/// );
/// assert_eq!(change.site.as_deref(), Some("upload"));
/// assert_eq!(change.settings.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigChange {
    /// When it was applied.
    pub ts: SystemTime,
    /// The site; `None` for the global configuration (every site).
    pub site: Option<String>,
    /// Who made it: `operator`, or the instance id of the fleet replica
    /// whose operator made it.
    pub by: String,
    /// Every setting it moved (at least one), in a fixed order.
    pub settings: Vec<SettingChange>,
}

impl ConfigChange {
    /// The change of `settings` at `site` (`None`: global) at `ts`, made by `by`.
    #[must_use]
    pub fn new(
        ts: SystemTime,
        site: Option<&str>,
        by: impl Into<String>,
        settings: Vec<SettingChange>,
    ) -> Self {
        ConfigChange {
            ts,
            site: site.map(str::to_owned),
            by: by.into(),
            settings,
        }
    }
}
