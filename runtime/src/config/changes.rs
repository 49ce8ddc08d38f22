//! What a change of the live configuration changed, setting by setting,
//! in the environment's spellings, and who made it: the notice the sinks
//! receive ([`MetricsSink::config_changed`]), which the JSONL log writes as
//! its `operator` lines.
//!
//! Who made a change is the calling thread's [actor](Actor): an operator
//! unless the caller said otherwise. The rollout controller's own changes
//! (a stage's rollout, its rollback) have their own events and are not
//! notified ([`as_controller`]); a fleet replica applying a change from the
//! shared state names the instance that made it ([`applied_by`]).
//!
//! [`MetricsSink::config_changed`]: crate::metrics::MetricsSink::config_changed

use std::cell::RefCell;
use std::time::SystemTime;

use super::global::Config;
use super::knobs;
use super::overrides::SiteOverrides;
use crate::metrics::{ConfigChange, SettingChange};

/// Who a configuration change is applied for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Actor {
    /// Whoever calls the handle: an operator (CLI, code, a script).
    Operator,
    /// An operator of the fleet, through the shared state, on that instance.
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

/// Runs `f` as the rollout controller: the configuration changes it applies
/// on this thread send the sinks no notice, because they have events of
/// their own (a stage's rollout, a rollback with its reason).
///
/// ```
/// use async_upload_runtime::config::{self, as_controller};
///
/// // No `operator` line in the log for the controller's own rollback.
/// as_controller(|| config::handle().roll_back("avatars", "p99 above 2 s"));
/// # config::handle().clear_rollback("avatars");
/// ```
pub fn as_controller<R>(f: impl FnOnce() -> R) -> R {
    acting_as(Actor::Internal, f)
}

/// Runs `f`, whose configuration changes an operator made through
/// `instance` (a fleet replica applying the shared state): the notices
/// this thread sends name `instance` as who made them.
pub fn applied_by<R>(instance: &str, f: impl FnOnce() -> R) -> R {
    acting_as(Actor::Instance(instance.to_owned()), f)
}

/// The configuration handle applied `changes` to `site` (`None`: the
/// global configuration): one notice to the sinks, unless nothing changed
/// or the controller made them.
pub(crate) fn notify_applied(site: Option<&str>, changes: Vec<SettingChange>) {
    if changes.is_empty() {
        return;
    }
    let by = match ACTOR.with(|slot| slot.borrow().clone()) {
        Actor::Internal => return,
        Actor::Operator => "operator".to_owned(),
        Actor::Instance(instance) => instance,
    };
    crate::metrics::notify(|sinks| {
        sinks.config_changed(&ConfigChange::new(SystemTime::now(), site, by, changes));
    });
}

/// Each setting that differs, of two lists of the same settings.
fn differing(
    before: impl IntoIterator<Item = (&'static str, Option<String>)>,
    after: impl IntoIterator<Item = (&'static str, Option<String>)>,
) -> Vec<SettingChange> {
    before
        .into_iter()
        .zip(after)
        .filter(|((_, old), (_, new))| old != new)
        .map(|((name, old), (_, new))| SettingChange::new(name, old, new))
        .collect()
}

/// Every setting of `overrides` and the rollback, by name.
fn site_settings<'a>(
    overrides: &'a SiteOverrides,
    rollback: Option<&'a String>,
) -> impl Iterator<Item = (&'static str, Option<String>)> + 'a {
    knobs::site_settings(overrides).chain(std::iter::once(("rollback", rollback.cloned())))
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
    pub(crate) fn changes(&self, after: &SiteState) -> Vec<SettingChange> {
        differing(
            site_settings(&self.overrides, self.rollback.as_ref()),
            site_settings(&after.overrides, after.rollback.as_ref()),
        )
    }
}

/// What changed in the global configuration.
pub(crate) fn global_changes(before: &Config, after: &Config) -> Vec<SettingChange> {
    differing(
        knobs::global_settings(before),
        knobs::global_settings(after),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn change(name: &'static str, old: Option<&str>, new: Option<&str>) -> SettingChange {
        SettingChange::new(name, old.map(str::to_owned), new.map(str::to_owned))
    }

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
                change("rollout", None, Some("12.5")),
                change("timeout", None, Some("1.5")),
                change("rollback", None, Some("error spike")),
            ]
        );
        assert!(after.changes(&after).is_empty());
        let config = Config::default();
        let changes = global_changes(&config, &config.clone().with_enabled(true));
        assert_eq!(changes, [change("enabled", Some("false"), Some("true"))]);
    }

    #[test]
    fn the_actor_is_scoped_and_restored() {
        let current = || ACTOR.with(|slot| slot.borrow().clone());
        assert_eq!(current(), Actor::Operator);
        as_controller(|| {
            assert_eq!(current(), Actor::Internal);
            applied_by("replica-1", || {
                assert_eq!(current(), Actor::Instance("replica-1".into()));
            });
            assert_eq!(current(), Actor::Internal);
        });
        assert_eq!(current(), Actor::Operator);
    }
}
