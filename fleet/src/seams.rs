//! The fleet behind the controller's two seams: [`Fleet`] is an
//! [`Actuator`] (stage and latch shared through Redis) and a
//! [`HealthSource`] (the merged numbers of every live replica).

use std::time::{Duration, UNIX_EPOCH};

use async_upload_control::stages::{Actuator, Controller, ControllerBuilder, HealthSource};
use async_upload_runtime::metrics::SiteSnapshot;

use super::connect::FleetError;
use super::lock::lock;
use super::member::Fleet;
use super::state::validate_site;

impl Actuator for Fleet {
    fn enter_stage(&self, site: &str, stage: u32, rollout: f64) {
        Fleet::enter_stage(self, site, stage, rollout);
    }

    fn roll_back(&self, site: &str, reason: &str) -> bool {
        Fleet::roll_back(self, site, reason)
    }

    fn clear_rollback(&self, site: &str) {
        Fleet::clear_rollback(self, site);
    }

    fn rollback_reason(&self, site: &str) -> Option<String> {
        Fleet::rollback_reason(self, site)
    }
}

impl HealthSource for Fleet {
    fn snapshot(&self, site: &str) -> Option<SiteSnapshot> {
        self.health(site)
    }
}

/// A replica's own immediate trigger: decides on its own counters (always
/// fresh) and latches through the fleet, so the first replica to see a
/// breach rolls back every replica and writes the one `rollback` event,
/// and a replica cut off from Redis still throws its own kill switch.
/// Stages are the leader's business: entering one here changes nothing.
#[derive(Clone, Debug)]
pub struct LocalGuard {
    fleet: Fleet,
}

impl LocalGuard {
    /// The guard of this replica in `fleet`.
    #[must_use]
    pub fn new(fleet: Fleet) -> Self {
        LocalGuard { fleet }
    }
}

impl Actuator for LocalGuard {
    fn enter_stage(&self, _site: &str, _stage: u32, _rollout: f64) {
        // The leader's controller owns the stage; the guard only watches.
    }

    fn roll_back(&self, site: &str, reason: &str) -> bool {
        self.fleet.roll_back(site, reason)
    }

    fn clear_rollback(&self, _site: &str) {
        // The guard's controller calls this only once the latch is already
        // gone; writing the clear again could lift a newer latch.
    }

    fn rollback_reason(&self, site: &str) -> Option<String> {
        self.fleet.rollback_reason(site)
    }
}

impl Fleet {
    /// Runs the rollout controller of `site` across the fleet, ticking every
    /// `every` on a thread of its own, with controllers from `build`
    /// (`Controller::builder(site)` plus your stages, triggers and log).
    ///
    /// This replica asks for the site's lease. While it holds it, it runs
    /// the site's one controller on the fleet's merged health, resuming the
    /// shared stage at the time it was entered (the fleet's one stage
    /// clock) and following an operator's `fleet advance`; otherwise it
    /// runs a [`LocalGuard`] controller on its own counters, its immediate
    /// trigger, which follows the shared stage and never advances itself.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use async_upload_fleet::Fleet;
    /// use async_upload_control::stages::Controller;
    ///
    /// let fleet = Fleet::builder("redis://127.0.0.1:6379").start()?;
    /// fleet.drive("upload_file", Duration::from_secs(30), || {
    ///     Controller::builder("upload_file").auto_advance(true)
    /// })?;
    /// # Ok::<(), async_upload_fleet::FleetError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A bad site name, or the thread could not be started.
    pub fn drive(
        &self,
        site: &str,
        every: Duration,
        build: impl Fn() -> ControllerBuilder + Send + 'static,
    ) -> Result<(), FleetError> {
        validate_site(site)?;
        self.lead(site)?;
        let fleet = self.clone();
        let site = site.to_owned();
        std::thread::Builder::new()
            .name(format!("async-upload-fleet-{site}"))
            .spawn(move || {
                let mut role: Option<(bool, Controller)> = None;
                let mut clear = lock(&fleet.inner.applier).clear(&site);
                while !fleet.inner.stopped() {
                    let leading = fleet.is_leader(&site);
                    if role.as_ref().is_none_or(|(was, _)| *was != leading) {
                        role = Some((leading, fleet.controller(&site, leading, every, &build)));
                    }
                    if let Some((leading, controller)) = role.as_mut() {
                        fleet.follow_shared_stage(&site, controller, *leading);
                        // A clear starts the stage over for every controller,
                        // also one that had not yet seen the latch: its
                        // windows must not judge calls from before the clear.
                        let now = lock(&fleet.inner.applier).clear(&site);
                        if now != clear {
                            clear = now;
                            controller.clear_rollback();
                        }
                        controller.tick();
                    }
                    std::thread::sleep(every);
                }
            })
            .map_err(|error| FleetError::Redis {
                url: self.inner.store.url().to_owned(),
                detail: format!("cannot start the controller thread: {error}"),
                cause: super::connect::ContactCause::Server,
            })?;
        Ok(())
    }

    /// The leader's controller (fleet health, shared stage) or the guard,
    /// both resuming the shared stage clock. Either is ticked every
    /// `every`, which its `entered` events record for the report's replay.
    fn controller(
        &self,
        site: &str,
        leading: bool,
        every: Duration,
        build: &impl Fn() -> ControllerBuilder,
    ) -> Controller {
        // This replica's own stage write, while unsettled, is newer than the
        // applied state: a controller that takes over from the one that
        // wrote it (the lease moved meanwhile) starts there, not a stage back.
        let shared = super::stage::pending_stage(&self.inner, site)
            .map(|(stage, ms)| (stage, Some(ms)))
            .or_else(|| lock(&self.inner.applier).stage(site));
        let build = || build().tick_interval(every);
        let builder = match shared {
            Some((stage, Some(ms))) => {
                build().resume_stage(stage, UNIX_EPOCH + Duration::from_millis(ms))
            }
            Some((stage, None)) => build().starting_at(stage),
            None => build(),
        };
        if leading {
            tracing::info!(site, instance = %self.instance(), stage = ?shared.map(|(s, _)| s), "async-upload fleet: this replica runs the site's controller");
            builder.actuator(self.clone()).health(self.clone()).start()
        } else {
            // A guard judges, and follows the shared stage: it never moves it.
            builder
                .auto_advance(false)
                .actuator(LocalGuard::new(self.clone()))
                .health(async_upload_runtime::metrics::global())
                .start()
        }
    }

    /// The shared stage moved (an operator's `fleet advance`, another
    /// leader's write): follow it. Never while this replica's own stage
    /// write is not yet applied, when the applied stage is behind, not
    /// newer (also for a guard: the lease may have moved since the write).
    /// A stage the store lost (it came back empty) is written back by its
    /// leader with the time it was entered.
    fn follow_shared_stage(&self, site: &str, controller: &mut Controller, leading: bool) {
        if super::stage::pending_stage(&self.inner, site).is_some() {
            return;
        }
        let (in_force, stored) = {
            let applier = lock(&self.inner.applier);
            (applier.stage(site), applier.stored_stage(site))
        };
        let Some((stage, _)) = in_force else {
            return;
        };
        if stage != controller.stage().number {
            if controller.set_stage(stage).is_none() {
                tracing::error!(
                    site,
                    stage,
                    "async-upload fleet: the shared stage is not one of the controller's"
                );
            }
        } else if leading && stored.is_none() {
            let rollout = controller.stage().rollout;
            self.enter_stage(site, stage, rollout);
        }
    }
}
