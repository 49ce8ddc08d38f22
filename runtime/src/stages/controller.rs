//! The [`Controller`]: applies stages to a site, evaluates them on a clock,
//! rolls back on a breach and writes every decision to the log.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::clock::{Clock, SystemClock};
use super::evaluate::{evaluate, Observation};
use super::health::Health;
use super::memory::{MemoryProbe, ProcStatm};
use super::rates::RateMonitors;
use super::seams::{Actuator, HealthSource, LocalActuator};
use super::stage::{Stage, Triggers, DEFAULT_STAGES};
use super::verdict::{Baseline, Complaints, Evaluation, Missing, Trigger, TriggerKind, Verdict};
use super::warmup::MemoryBaseline;
use super::window::{Observed, Windows};
use crate::log::{self, Event, JsonlLog, RollbackEvent, StageEntered, StageEvent, VerdictEvent};
use crate::metrics::{self, ExecutionType};

/// Default span of the recent window the rate triggers look at. With ticks
/// every 30 s, a sustained breach is acted on within 4.5 minutes: inside
/// the 5 minutes DESIGN.md allows.
pub const DEFAULT_RECENT_WINDOW: Duration = Duration::from_secs(4 * 60);

/// Default interval between evaluations for [`drive`].
pub const DEFAULT_TICK: Duration = Duration::from_secs(30);

/// Builds a [`Controller`]; every setting has a default.
#[must_use = "a builder does nothing until `start`"]
pub struct ControllerBuilder {
    site: String,
    setup: Setup,
    first_stage: usize,
    /// When the first stage was entered, if it is resumed.
    resumed: Option<SystemTime>,
}

/// What a controller is configured with; the builder fills it, the
/// controller keeps it.
struct Setup {
    stages: Vec<Stage>,
    triggers: Triggers,
    recent_window: Duration,
    auto_advance: bool,
    clock: Arc<dyn Clock>,
    memory: Arc<dyn MemoryProbe>,
    actuator: Arc<dyn Actuator>,
    health: Arc<dyn HealthSource>,
    log: Option<JsonlLog>,
}

impl core::fmt::Debug for ControllerBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("site", &self.site)
            .field("stages", &self.setup.stages.len())
            .field("auto_advance", &self.setup.auto_advance)
            .finish_non_exhaustive()
    }
}

impl ControllerBuilder {
    /// The stages (default [`DEFAULT_STAGES`]); an empty list keeps the default.
    pub fn stages(mut self, stages: Vec<Stage>) -> Self {
        if !stages.is_empty() {
            self.setup.stages = stages;
        }
        self
    }

    /// The trigger thresholds (default [`Triggers::DEFAULT`]).
    pub fn triggers(mut self, triggers: Triggers) -> Self {
        self.setup.triggers = triggers;
        self
    }

    /// Span of the window the rate triggers look at (default 4 minutes).
    pub fn recent_window(mut self, span: Duration) -> Self {
        self.setup.recent_window = span;
        self
    }

    /// Enter the next stage by itself when a stage passes (default off: an
    /// operator calls [`Controller::advance`]).
    pub fn auto_advance(mut self, on: bool) -> Self {
        self.setup.auto_advance = on;
        self
    }

    /// The clock (default the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.setup.clock = Arc::new(clock);
        self
    }

    /// The memory probe (default [`ProcStatm`]).
    pub fn memory(mut self, probe: impl MemoryProbe + 'static) -> Self {
        self.setup.memory = Arc::new(probe);
        self
    }

    /// Where the controller's decisions take effect: the site's rollout and
    /// its kill switch (default [`LocalActuator`], this process's
    /// configuration handle).
    pub fn actuator(mut self, actuator: impl Actuator + 'static) -> Self {
        self.setup.actuator = Arc::new(actuator);
        self
    }

    /// Where the site's counters come from (default the global aggregator,
    /// [`metrics::global`](crate::metrics::global)).
    pub fn health(mut self, health: impl HealthSource + 'static) -> Self {
        self.setup.health = Arc::new(health);
        self
    }

    /// The log events go to (default the one from `ASYNC_UPLOAD_LOG`, if any).
    pub fn log(mut self, log: JsonlLog) -> Self {
        self.setup.log = Some(log);
        self
    }

    /// Start at stage `number` instead of the first (e.g. after a restart).
    pub fn starting_at(mut self, number: u32) -> Self {
        if let Some(index) = self.setup.stages.iter().position(|s| s.number == number) {
            self.first_stage = index;
        }
        self
    }

    /// Resume stage `number`, entered at `entered` (wall clock), instead of
    /// the first: its elapsed time counts from then (a fleet's new leader
    /// goes on with the shared stage clock); its samples count from now.
    pub fn resume_stage(mut self, number: u32, entered: SystemTime) -> Self {
        if let Some(index) = self.setup.stages.iter().position(|s| s.number == number) {
            self.first_stage = index;
            self.resumed = Some(entered);
        }
        self
    }

    /// Enters the first stage: sets the site's rollout, writes the `entered`
    /// event, and starts the stage's window.
    #[must_use = "the controller acts only when ticked"]
    pub fn start(self) -> Controller {
        let now = self.setup.clock.now();
        let windows = Windows::new(self.setup.recent_window, now, None);
        let mut controller = Controller {
            site: self.site,
            setup: self.setup,
            index: self.first_stage,
            windows,
            memory_start: None,
            memory_baseline: MemoryBaseline::default(),
            rates: RateMonitors::new(&Triggers::DEFAULT),
            warned_idle: false,
            band_since: None,
            complaints: None,
            baseline: None,
            rolled_back: None,
            last: None,
        };
        controller.enter(controller.index);
        if let Some(entered) = self.resumed {
            let ago = controller
                .setup
                .clock
                .wall()
                .duration_since(entered)
                .unwrap_or_default();
            let started = now.checked_sub(ago).unwrap_or(now);
            let counters = controller.setup.health.snapshot(&controller.site);
            controller.windows.restart(started, counters);
        }
        controller
    }
}

/// Drives one site through its stages.
///
/// Call [`Controller::tick`] periodically (or hand it to [`drive`]): each
/// tick evaluates the stage and recent windows, writes the verdict, and on
/// a rollback verdict latches the site's kill switch.
/// A rollback is latched: only [`Controller::clear_rollback`] (or an
/// operator clearing the kill switch) lifts it, and the stage then starts
/// over. Advancing is explicit ([`Controller::advance`]) unless built with
/// `auto_advance(true)`.
///
/// The controller acts and reads only through its two seams: an
/// [`Actuator`] (the rollout and the kill switch; by default
/// [`LocalActuator`], this process's configuration handle) and a
/// [`HealthSource`] (the site's counters; by default the global
/// aggregator). When the source has no fresh counters the controller
/// holds. It sets only the site's rollout; the async path must be enabled
/// (`ASYNC_UPLOAD_ENABLED=true`) for it to run.
///
/// ```
/// use std::time::{Duration, Instant};
/// use async_upload::stages::{Controller, ManualClock};
///
/// let clock = ManualClock::new();
/// let mut controller = Controller::builder("docs_controller").clock(clock.clone()).start();
/// assert_eq!(controller.stage().rollout, 1.0);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(controller.tick().verdict.name(), "hold"); // no calls yet
/// ```
pub struct Controller {
    site: String,
    setup: Setup,
    index: usize,
    windows: Windows,
    /// Resident bytes when the stage was entered (logged, not judged on).
    memory_start: Option<u64>,
    /// The baseline the memory trigger judges on, taken after warm-up.
    memory_baseline: MemoryBaseline,
    /// The rate triggers' sequential tests, one look per tick.
    rates: RateMonitors,
    /// Whether the "this site was never called" warning was given.
    warned_idle: bool,
    band_since: Option<Instant>,
    complaints: Option<Complaints>,
    baseline: Option<Baseline>,
    rolled_back: Option<Evaluation>,
    last: Option<Evaluation>,
}

impl core::fmt::Debug for Controller {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Controller")
            .field("site", &self.site)
            .field("stage", &self.stage().number)
            .field("rolled_back", &self.rolled_back.is_some())
            .finish_non_exhaustive()
    }
}

/// Why [`Controller::advance`] did not advance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdvanceError {
    /// The site is rolled back; clear the rollback first.
    RolledBack,
    /// The last verdict was not `advance` (or there was none yet).
    NotPassed(&'static str),
    /// The site is at its last stage.
    LastStage,
}

impl core::fmt::Display for AdvanceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AdvanceError::RolledBack => f.write_str("the site is rolled back"),
            AdvanceError::NotPassed(verdict) => {
                write!(f, "the stage has not passed (last verdict: {verdict})")
            }
            AdvanceError::LastStage => f.write_str("already at the last stage"),
        }
    }
}

impl std::error::Error for AdvanceError {}

impl Controller {
    /// A builder for the controller of `site`.
    pub fn builder(site: impl Into<String>) -> ControllerBuilder {
        ControllerBuilder {
            site: site.into(),
            setup: Setup {
                stages: DEFAULT_STAGES.to_vec(),
                triggers: Triggers::DEFAULT,
                recent_window: DEFAULT_RECENT_WINDOW,
                auto_advance: false,
                clock: Arc::new(SystemClock),
                memory: Arc::new(ProcStatm),
                actuator: Arc::new(LocalActuator),
                health: Arc::new(metrics::global()),
                log: None,
            },
            first_stage: 0,
            resumed: None,
        }
    }

    /// The site controlled.
    #[must_use]
    pub fn site(&self) -> &str {
        &self.site
    }

    /// The current stage.
    #[must_use]
    pub fn stage(&self) -> &Stage {
        &self.setup.stages[self.index]
    }

    /// The latest evaluation, if any tick happened in this stage.
    #[must_use]
    pub fn last_evaluation(&self) -> Option<&Evaluation> {
        self.last.as_ref()
    }

    /// The evaluation that rolled the site back, while it is rolled back.
    #[must_use]
    pub fn rollback(&self) -> Option<&Evaluation> {
        self.rolled_back.as_ref()
    }

    /// The baseline frozen at the end of the previous stage, if any.
    #[must_use]
    pub fn frozen_baseline(&self) -> Option<Baseline> {
        self.baseline
    }

    /// Reports the application's complaint rate; the first report in a
    /// stage is its reference, a rise past it by more than
    /// `review_complaint_growth` asks for a review.
    pub fn report_complaint_rate(&mut self, rate: f64) {
        if !rate.is_finite() || rate < 0.0 {
            return;
        }
        match &mut self.complaints {
            Some(complaints) => complaints.current = rate,
            None => {
                self.complaints = Some(Complaints {
                    reference: rate,
                    current: rate,
                });
            }
        }
    }

    /// Evaluates the stage now, acts on the verdict and writes it to the log.
    pub fn tick(&mut self) -> &Evaluation {
        let now = self.setup.clock.now();
        let external = self.setup.actuator.rollback_reason(&self.site);
        if self.rolled_back.is_some() && external.is_none() {
            // An operator lifted the kill switch by hand: start the stage over.
            self.clear_rollback();
        }
        let fresh = self.setup.health.snapshot(&self.site);
        let stale = fresh.is_none();
        let never_called = fresh.as_ref().is_some_and(|counters| {
            ExecutionType::ALL
                .iter()
                .all(|&path| counters.path(path).count == 0)
        });
        let Observed {
            stage: stage_window,
            recent: recent_window,
            recent_span,
        } = match fresh {
            Some(counters) => self.windows.observe(now, counters),
            None => self.windows.stale(&self.site),
        };

        let health = Health::of(&stage_window);
        self.warn_if_idle(never_called, now);
        self.rates.observe(&health);
        let rates = self.rates.evidence();
        let memory = self.memory_baseline.observe(
            health.enrolled,
            self.setup.memory.resident_bytes(),
            self.setup.triggers.min_calls,
        );
        // The band trigger's own test, not a point estimate: evidence that
        // success is below the review line while the rollback test is quiet.
        let in_band = rates.band.fired() && !rates.success.fired();
        self.band_since = if in_band {
            self.band_since.or(Some(now))
        } else {
            None
        };

        let observation = Observation {
            stage_window: &stage_window,
            recent_window: &recent_window,
            recent_span,
            elapsed: now.saturating_duration_since(self.windows.started()),
            baseline: self.baseline,
            memory,
            success_band_for: self.band_since.map_or(Duration::ZERO, |since| now - since),
            complaints: self.complaints,
            rates: Some(rates),
        };
        let mut evaluation = evaluate(self.stage(), &self.setup.triggers, &observation);
        if let Some(latched) = &self.rolled_back {
            // Latched: the stage stays rolled back whatever the window says now.
            evaluation.verdict = latched.verdict.clone();
        } else if let Some(reason) = external {
            evaluation.verdict = Verdict::Rollback {
                triggers: vec![Trigger::new(
                    TriggerKind::Manual,
                    0.0,
                    0.0,
                    0,
                    Duration::ZERO,
                )],
            };
            tracing::warn!(site = %self.site, %reason, "site rolled back outside the controller");
            self.rolled_back = Some(evaluation.clone());
        } else if stale && !matches!(evaluation.verdict, Verdict::Rollback { .. }) {
            // Without fresh counters the controller holds, whatever the
            // stale window would say.
            evaluation.verdict = Verdict::Hold {
                missing: vec![Missing::FreshHealth],
            };
        }
        self.write(StageEvent::Verdict(VerdictEvent::new(
            self.setup.clock.wall(),
            &self.site,
            evaluation.clone(),
        )));
        let act = self.rolled_back.is_none();
        if let (true, Verdict::Rollback { triggers }) = (act, &evaluation.verdict) {
            self.roll_back(&evaluation, triggers);
        }
        let passed = matches!(evaluation.verdict, Verdict::Advance);
        self.last = Some(evaluation);
        if passed && self.setup.auto_advance && self.index + 1 < self.setup.stages.len() {
            let decided = self.last.clone();
            if self.advance().is_ok() {
                // Keep the evaluation that passed the stage; `advance` checks
                // its stage number, so it cannot advance twice on it.
                self.last = decided;
            }
        }
        self.last
            .as_ref()
            .unwrap_or_else(|| unreachable!("set above"))
    }

    fn roll_back(&mut self, evaluation: &Evaluation, triggers: &[Trigger]) {
        let reason = format!("stage {}: {}", evaluation.stage, log::reason(triggers));
        // Another decider may have latched the same breach first: it wrote the event.
        if self.setup.actuator.roll_back(&self.site, &reason) {
            let event = RollbackEvent::new(
                self.setup.clock.wall(),
                &self.site,
                (evaluation.stage, evaluation.rollout),
                triggers.to_vec(),
            );
            if let Some(event) = event {
                self.write(event);
            }
        }
        self.rolled_back = Some(evaluation.clone());
    }

    /// Enters the next stage, freezing the sync baseline of the stage that
    /// passed.
    ///
    /// # Errors
    ///
    /// The site is rolled back, the last verdict was not `advance`, or
    /// there is no next stage.
    pub fn advance(&mut self) -> Result<&Stage, AdvanceError> {
        if self.rolled_back.is_some() {
            return Err(AdvanceError::RolledBack);
        }
        match &self.last {
            Some(evaluation)
                if evaluation.verdict == Verdict::Advance
                    && evaluation.stage == self.stage().number => {}
            Some(evaluation) => return Err(AdvanceError::NotPassed(evaluation.verdict.name())),
            None => return Err(AdvanceError::NotPassed("none yet")),
        }
        if self.index + 1 >= self.setup.stages.len() {
            return Err(AdvanceError::LastStage);
        }
        self.freeze_baseline();
        self.enter(self.index + 1);
        Ok(self.stage())
    }

    /// Operator override: enters stage `number` whatever the verdict (the
    /// baseline of the current stage is frozen first). `None` if there is no
    /// such stage. A rollback stays latched.
    pub fn set_stage(&mut self, number: u32) -> Option<&Stage> {
        let index = self.setup.stages.iter().position(|s| s.number == number)?;
        self.freeze_baseline();
        self.enter(index);
        Some(self.stage())
    }

    /// Lifts the rollback (the kill switch too) and starts the current stage
    /// over with a fresh window.
    pub fn clear_rollback(&mut self) {
        self.setup.actuator.clear_rollback(&self.site);
        if self.rolled_back.take().is_some() {
            self.write(StageEvent::RollbackCleared(self.entered()));
        }
        self.enter(self.index);
    }

    fn freeze_baseline(&mut self) {
        let window = self
            .setup
            .health
            .snapshot(&self.site)
            .and_then(|counters| self.windows.stage_until(&counters));
        if let Some(baseline) = window
            .as_ref()
            .and_then(Baseline::of)
            .filter(|b| b.calls >= self.setup.triggers.min_calls)
        {
            self.baseline = Some(baseline);
        }
    }

    /// A site that has never been called after a whole recent window is
    /// more likely a mistyped name than a quiet service: say so, once, since
    /// the verdict alone (hold, no samples) looks like patience.
    fn warn_if_idle(&mut self, never_called: bool, now: Instant) {
        let waited =
            now.saturating_duration_since(self.windows.started()) >= self.setup.recent_window;
        if never_called && waited && !self.warned_idle {
            self.warned_idle = true;
            tracing::warn!(
                site = %self.site,
                "no call of this site has been recorded since the controller started: \
                 check that the controller's site name is the one the #[async_upload] \
                 function reports (its `name` key, else the function's name)"
            );
        }
    }

    fn enter(&mut self, index: usize) {
        self.index = index;
        let (number, rollout) = (self.stage().number, self.stage().rollout);
        self.setup.actuator.enter_stage(&self.site, number, rollout);
        let counters = self.setup.health.snapshot(&self.site);
        self.windows.restart(self.setup.clock.now(), counters);
        self.memory_start = self.setup.memory.resident_bytes();
        self.memory_baseline = MemoryBaseline::default();
        self.rates = RateMonitors::new(&self.setup.triggers);
        self.band_since = None;
        self.complaints = None;
        self.last = None;
        tracing::info!(site = %self.site, stage = self.stage().number, rollout, "rollout stage entered");
        self.write(StageEvent::Entered(self.entered()));
    }

    /// The `entered` event of the current stage, as it starts now: what
    /// the report will judge it by.
    fn entered(&self) -> StageEntered {
        StageEntered::new(
            self.setup.clock.wall(),
            &self.site,
            self.stage().clone(),
            self.setup.triggers.clone(),
        )
        .with_baseline(self.baseline)
        .with_memory_bytes(self.memory_start)
    }

    fn write(&self, event: impl Into<Event>) {
        if let Some(log) = self.setup.log.clone().or_else(crate::log::global) {
            log.event(event.into());
        }
    }
}

/// Ticks `controller` every `every` (Tokio's time, so `tokio::time::pause`
/// drives it in tests), forever; spawn it and keep the `Arc` to advance or
/// clear rollbacks.
pub async fn drive(controller: Arc<Mutex<Controller>>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tick();
    }
}
