//! The [`Controller`]: applies stages to a site, evaluates them on a clock,
//! rolls back on a breach and writes every decision to the log.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::clock::{Clock, SystemClock};
use super::evaluate::{evaluate, Observation};
use super::health::{Counts, Health};
use super::latency::Baseline;
use super::memory::{MemoryProbe, ProcStatm};
use super::seams::{Actuator, HealthSource, LocalActuator};
use super::stage::{Stage, Triggers, DEFAULT_STAGES};
use super::verdict::{Complaints, Evaluation, Missing, Trigger, TriggerKind, Verdict};
use super::watch::Watch;
use super::window::StageWindow;
use crate::log::{self, Event, JsonlLog, RollbackEvent, StageEntered, StageEvent, VerdictEvent};
use async_upload_runtime::metrics::{self, ExecutionType};

/// The longest recent window (the span the review band and the "sync path
/// fails too" hold look back over), the default for stages of 24 hours
/// and more. With ticks every 30 s, a sustained breach is acted on within
/// 4.5 minutes: inside the 5 minutes DESIGN.md allows.
pub const DEFAULT_RECENT_WINDOW: Duration = Duration::from_secs(4 * 60);

/// The recent window is this fraction of the shortest stage's minimum
/// duration, unless set ([`ControllerBuilder::recent_window`]): 4 minutes
/// of 24 hours, 0.12 s of 43.2 s.
pub(crate) const RECENT_WINDOW_PER_STAGE: u32 = 360;

/// Default interval between evaluations for [`drive`].
pub const DEFAULT_TICK: Duration = Duration::from_secs(30);

/// The recent window of a stage table when none is set: 1/360 of its
/// shortest stage, between one tick and [`DEFAULT_RECENT_WINDOW`].
#[must_use]
pub(crate) fn recent_window_for(stages: &[Stage], tick: Duration) -> Duration {
    let shortest = stages
        .iter()
        .map(|s| s.min_duration)
        .min()
        .unwrap_or(DEFAULT_RECENT_WINDOW);
    (shortest / RECENT_WINDOW_PER_STAGE)
        .clamp(tick.min(DEFAULT_RECENT_WINDOW), DEFAULT_RECENT_WINDOW)
}

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
    /// Set by the builder; else [`recent_window_for`] the stages.
    recent_window: Option<Duration>,
    tick: Duration,
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

    /// Span of the recent window: how far back the review band's health
    /// and the "sync path fails too" hold look. Default: 1/360 of the
    /// shortest stage's minimum duration, between one tick and 4 minutes
    /// (`recent_window_for` in `stages/controller.rs`), so scaled stages scale it too. Recorded in
    /// each `entered` event for the report.
    pub fn recent_window(mut self, span: Duration) -> Self {
        self.setup.recent_window = Some(span);
        self
    }

    /// How often the controller will be ticked (default [`DEFAULT_TICK`]):
    /// recorded in each `entered` event, so that the report replays the
    /// log at the same looks. Tick it at this interval ([`drive`] with
    /// [`Controller::tick_interval`]).
    pub fn tick_interval(mut self, every: Duration) -> Self {
        if !every.is_zero() {
            self.setup.tick = every;
        }
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
    /// [`metrics::global`](async_upload_runtime::metrics::global)).
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
    pub fn start(mut self) -> Controller {
        let now = self.setup.clock.now();
        let recent = self
            .setup
            .recent_window
            .unwrap_or_else(|| recent_window_for(&self.setup.stages, self.setup.tick));
        self.setup.recent_window = Some(recent);
        let watch = Watch::new(&self.setup.triggers, recent);
        let mut controller = Controller {
            site: self.site,
            setup: self.setup,
            index: self.first_stage,
            window: StageWindow::new(now, None),
            watch,
            memory_start: None,
            warned_idle: false,
            complaints: None,
            baseline: None,
            rolled_back: None,
            last: None,
        };
        controller.enter_resuming(controller.index, self.resumed);
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
    window: StageWindow,
    /// The stage's judgement between ticks: the rate triggers' sequential
    /// tests, the recent window, the band's timer, the memory baseline.
    watch: Watch,
    /// Resident bytes when the stage was entered (logged, not judged on).
    memory_start: Option<u64>,
    /// Whether the "this site was never called" warning was given.
    warned_idle: bool,
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
                recent_window: None,
                tick: DEFAULT_TICK,
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
    pub fn frozen_baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// The interval the controller was built to be ticked at
    /// ([`ControllerBuilder::tick_interval`]).
    #[must_use]
    pub fn tick_interval(&self) -> Duration {
        self.setup.tick
    }

    /// The span of its recent window.
    #[must_use]
    pub fn recent_window(&self) -> Duration {
        self.watch.span()
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
        self.warn_if_idle(never_called, now);
        let at = now.saturating_duration_since(self.window.started());
        let resident = self.setup.memory.resident_bytes();
        let (stage_window, look) = if let Some(counters) = fresh {
            let window = self.window.observe(counters);
            let look = self.watch.look(at, Counts::of(&window), resident);
            (window, look)
        } else {
            // Nothing new: the tests see no look, the recent window is empty.
            let mut look = self.watch.look(at, self.watch.last(), resident);
            look.recent = Health::default();
            look.recent_span = Duration::ZERO;
            (self.window.stale(&self.site), look)
        };
        let observation = Observation {
            stage_window: &stage_window,
            recent: look.recent,
            recent_span: look.recent_span,
            elapsed: at,
            baseline: self.baseline.as_ref(),
            memory: look.memory,
            success_band_for: look.band_for,
            complaints: self.complaints,
            rates: Some(look.rates),
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
            .and_then(|counters| self.window.until(&counters));
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
        let waited = now.saturating_duration_since(self.window.started()) >= self.watch.span();
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
        self.enter_resuming(index, None);
    }

    /// Enters stage `index`, or resumes it when it was first entered at
    /// `since` (wall clock): its elapsed time then counts from `since`, its
    /// samples from now (the counters before are not this process's).
    fn enter_resuming(&mut self, index: usize, since: Option<SystemTime>) {
        self.index = index;
        let (number, rollout) = (self.stage().number, self.stage().rollout);
        self.setup.actuator.enter_stage(&self.site, number, rollout);
        let counters = self.setup.health.snapshot(&self.site);
        let now = self.setup.clock.now();
        let ago = since.map_or(Duration::ZERO, |since| {
            self.setup
                .clock
                .wall()
                .duration_since(since)
                .unwrap_or_default()
        });
        self.window = StageWindow::new(now.checked_sub(ago).unwrap_or(now), counters);
        self.memory_start = self.setup.memory.resident_bytes();
        self.watch = Watch::new(&self.setup.triggers, self.watch.span());
        self.complaints = None;
        self.last = None;
        tracing::info!(site = %self.site, stage = self.stage().number, rollout, resumed = since.is_some(), "rollout stage entered");
        self.write(StageEvent::Entered(self.entered().resuming(since)));
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
        .with_baseline(self.baseline.clone())
        .with_memory_bytes(self.memory_start)
        .with_looks(self.setup.tick, self.watch.span())
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
