//! Operator actions in the record: one `operator` line per setting an
//! operator's change set, with what it was, what it became and who made
//! it, so the report and the dashboard show who changed what.
//!
//! The configuration handle announces every change it applies
//! ([`applied`]); who made it is the calling thread's [actor](Actor): an
//! operator unless the caller said otherwise. The rollout controller's own
//! changes (a stage's rollout, its rollback) have their own events and say
//! so ([`internal`]); a fleet replica applying a change from the shared
//! state names the instance that made it ([`applied_by`]).

use std::cell::RefCell;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::metrics::rfc3339;

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
    /// What changed: a setting's name as in [`Config`](crate::config::Config)
    /// and [`SiteOverrides`](crate::config::SiteOverrides) (`rollout`,
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

/// Who a configuration change is applied for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    /// Whoever calls the handle: an operator (CLI, code, a script).
    Operator,
    /// An operator of the fleet, through the shared state, on that instance.
    #[cfg(feature = "redis")]
    Instance(String),
    /// The rollout controller, whose changes have events of their own.
    Internal,
}

thread_local! {
    static ACTOR: RefCell<Actor> = const { RefCell::new(Actor::Operator) };
}

/// Runs `f` with changes it applies made by `actor`.
fn acting_as<R>(actor: Actor, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Actor>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(actor) = self.0.take() {
                ACTOR.with(|slot| *slot.borrow_mut() = actor);
            }
        }
    }
    let previous = ACTOR.with(|slot| slot.replace(actor));
    let _restore = Restore(Some(previous));
    f()
}

/// Runs `f`, whose configuration changes are the controller's own (no
/// `operator` line: they have events of their own).
pub(crate) fn internal<R>(f: impl FnOnce() -> R) -> R {
    acting_as(Actor::Internal, f)
}

/// Runs `f`, whose configuration changes an operator made through
/// `instance` (a fleet replica applying the shared state): the lines name it.
#[cfg(feature = "redis")]
pub(crate) fn applied_by<R>(instance: &str, f: impl FnOnce() -> R) -> R {
    acting_as(Actor::Instance(instance.to_owned()), f)
}

/// One setting that a change moved: its name, before and after.
pub(crate) type Change = (&'static str, Option<String>, Option<String>);

/// The configuration handle applied `changes` to `site` (`None`: the
/// global configuration): one line each to the process's log, unless the
/// controller made them.
pub(crate) fn applied(site: Option<&str>, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    let by = match ACTOR.with(|slot| slot.borrow().clone()) {
        Actor::Internal => return,
        Actor::Operator => "operator".to_owned(),
        #[cfg(feature = "redis")]
        Actor::Instance(instance) => instance,
    };
    let Some(log) = super::global() else {
        return;
    };
    let ts = SystemTime::now();
    for (setting, old, new) in changes {
        log.event(OperatorEvent::new(ts, site, setting, (old, new), by.clone()).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_is_scoped_and_restored() {
        let current = || ACTOR.with(|slot| slot.borrow().clone());
        assert_eq!(current(), Actor::Operator);
        internal(|| {
            assert_eq!(current(), Actor::Internal);
            #[cfg(feature = "redis")]
            applied_by("replica-1", || {
                assert_eq!(current(), Actor::Instance("replica-1".into()));
            });
            assert_eq!(current(), Actor::Internal);
        });
        assert_eq!(current(), Actor::Operator);
    }

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
