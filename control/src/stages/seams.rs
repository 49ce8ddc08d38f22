//! The controller's two seams: [`Actuator`] (where its decisions take
//! effect) and [`HealthSource`] (where it reads a site's health), with the
//! in-process defaults [`LocalActuator`] and the metrics
//! [`Aggregator`](async_upload_runtime::metrics::Aggregator).
//!
//! The state machine in [`Controller`](super::Controller) sees only these
//! traits, so another backend (a fleet sharing its state through a store)
//! plugs in without touching it.

use std::sync::Arc;

use async_upload_runtime::config::{self, handle};
use async_upload_runtime::metrics::{Aggregator, SiteSnapshot};

/// Where the controller's decisions take effect: the site's rollout and its kill switch.
pub trait Actuator: Send + Sync {
    /// Routes `rollout` percent of the site's keys to the async path: stage `stage` was entered.
    fn enter_stage(&self, site: &str, stage: u32, rollout: f64);
    /// Latches the site's rollback with `reason`. Returns `true` when this call latched it and
    /// `false` when it was already latched, so that however many deciders see one breach,
    /// exactly one `rollback` event is written.
    fn roll_back(&self, site: &str, reason: &str) -> bool;
    /// Lifts the latch (an operator action).
    fn clear_rollback(&self, site: &str);
    /// The reason of the rollback latched for `site` now, by whoever latched it.
    fn rollback_reason(&self, site: &str) -> Option<String>;
}

/// Where the controller reads a site's health.
pub trait HealthSource: Send + Sync {
    /// The site's cumulative counters now (monotonic; the controller takes differences), or
    /// `None` when no fresh data is available: the controller then holds, never advances.
    fn snapshot(&self, site: &str) -> Option<SiteSnapshot>;
}

/// The in-process actuator: the process's configuration handle
/// ([`config::handle`](async_upload_runtime::config::handle)), the default of
/// [`ControllerBuilder::actuator`](super::ControllerBuilder::actuator).
///
/// Entering a stage sets the site's operator rollout override (keeping its
/// other overrides); a rollback is the handle's per-site kill switch. These
/// are the controller's own changes: they are logged as its `entered` and
/// `rollback` events, not as an operator's.
///
/// ```
/// use async_upload::stages::{Actuator, LocalActuator};
///
/// let actuator = LocalActuator;
/// assert!(actuator.roll_back("docs_local_actuator", "stage 1: manual"));
/// assert!(!actuator.roll_back("docs_local_actuator", "stage 1: again")); // already latched
/// assert_eq!(
///     actuator.rollback_reason("docs_local_actuator").as_deref(),
///     Some("stage 1: manual")
/// );
/// actuator.clear_rollback("docs_local_actuator");
/// assert_eq!(actuator.rollback_reason("docs_local_actuator"), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalActuator;

impl Actuator for LocalActuator {
    fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        // In place, under the handle's lock: an operator's concurrent
        // `set_site` of another override is kept.
        let entered = config::as_controller(|| {
            handle().update_site(site, |overrides| overrides.rollout = Some(rollout))
        });
        if let Err(error) = entered {
            tracing::error!(site, stage, %error, "cannot set the stage's rollout");
        }
    }

    fn roll_back(&self, site: &str, reason: &str) -> bool {
        // "Is it latched? Latch it" is one step of the handle's, so two
        // controllers seeing one breach write one `rollback` event.
        config::as_controller(|| handle().roll_back(site, reason))
    }

    fn clear_rollback(&self, site: &str) {
        config::as_controller(|| handle().clear_rollback(site));
    }

    fn rollback_reason(&self, site: &str) -> Option<String> {
        handle().rollback_reason(site)
    }
}

/// The aggregator's counters are this process's own, so they are always
/// fresh: a site it has not seen yet has made no call.
impl HealthSource for Aggregator {
    fn snapshot(&self, site: &str) -> Option<SiteSnapshot> {
        Some(Aggregator::snapshot(self, site).unwrap_or_else(|| SiteSnapshot::empty(site)))
    }
}

impl<T: Actuator + ?Sized> Actuator for &'static T {
    fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        (**self).enter_stage(site, stage, rollout);
    }
    fn roll_back(&self, site: &str, reason: &str) -> bool {
        (**self).roll_back(site, reason)
    }
    fn clear_rollback(&self, site: &str) {
        (**self).clear_rollback(site);
    }
    fn rollback_reason(&self, site: &str) -> Option<String> {
        (**self).rollback_reason(site)
    }
}

impl<T: Actuator + ?Sized> Actuator for Arc<T> {
    fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        (**self).enter_stage(site, stage, rollout);
    }
    fn roll_back(&self, site: &str, reason: &str) -> bool {
        (**self).roll_back(site, reason)
    }
    fn clear_rollback(&self, site: &str) {
        (**self).clear_rollback(site);
    }
    fn rollback_reason(&self, site: &str) -> Option<String> {
        (**self).rollback_reason(site)
    }
}

impl<T: HealthSource + ?Sized> HealthSource for &'static T {
    fn snapshot(&self, site: &str) -> Option<SiteSnapshot> {
        (**self).snapshot(site)
    }
}

impl<T: HealthSource + ?Sized> HealthSource for Arc<T> {
    fn snapshot(&self, site: &str) -> Option<SiteSnapshot> {
        (**self).snapshot(site)
    }
}
