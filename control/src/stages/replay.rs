//! The report in one pass: a [`ReportBuilder`] takes a log's records and
//! events in time order and keeps, per site, only what the report judges
//! (the window of the stage entered last, the last window of the stage
//! asked for, every record for a log without stage events), so memory is
//! bounded by the number of sites, not by the log's size.
//!
//! Each window is judged as the controller judged it: replayed through its
//! looks ([`Ticks`]: the same sequential tests at the same ticks, the same
//! recent window, the same latch), with the criteria and triggers its stage
//! event recorded; at the end, the window's calls are evaluated once more
//! for the stage criteria, and a rollback latched on the way stays.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::controller::{DEFAULT_RECENT_WINDOW, DEFAULT_TICK};
use super::evaluate::{evaluate, Observation};
use super::latency::Baseline;
use super::report::{
    EventLog, Replayed, Report, ReportError, ReportEvent, ReportOptions, RollbackFinding,
    SiteReport, StageWindow,
};
use super::stage::{Stage, Triggers};
use super::ticks::Ticks;
use super::verdict::Verdict;
use crate::log::{Dedup, Event, Log, RollbackEvent, StageEntered, StageEvent};
use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot, UploadRecord};

/// Builds a [`Report`] from a log read once, in time order, without
/// keeping its records: what `async-upload report` does with logs of any
/// size (tens of millions of lines in well under 100 MB).
///
/// Feed it every line in time order ([`Merged`](crate::log::Merged) reads
/// several instances' files as one), then [`finish`](Self::finish). A line
/// a little out of order (records of concurrent calls) still counts in the
/// window of its time; [`Report::build`] does the same for a log in memory.
///
/// ```
/// use async_upload::log::{Event, Reader};
/// use async_upload::stages::{ReportBuilder, ReportOptions};
///
/// let text = "{\"kind\":\"upload\",\"v\":1,\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"upload\",\
///             \"execution_type\":\"async\",\"success\":true,\"duration_ms\":12.5,\
///             \"attempts\":1,\"error_type\":null,\"bytes\":null}\n";
/// let mut builder = ReportBuilder::new(ReportOptions::default());
/// for line in Reader::new(text.as_bytes()) {
///     match line? {
///         Event::Upload(record) => builder.record(&record),
///         event => builder.event(&event),
///     }
/// }
/// let report = builder.finish()?;
/// assert_eq!(report.sites[0].records, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ReportBuilder {
    options: ReportOptions,
    sites: BTreeMap<String, SiteReplay>,
    end: Option<SystemTime>,
    dedup: Dedup,
    /// Operator changes of the global configuration, for every site.
    global: EventLog,
}

impl ReportBuilder {
    /// A builder reporting as `options` asks.
    #[must_use]
    pub fn new(options: ReportOptions) -> Self {
        ReportBuilder {
            options,
            sites: BTreeMap::new(),
            end: None,
            dedup: Dedup::default(),
            global: EventLog::default(),
        }
    }

    /// Counts one upload record.
    pub fn record(&mut self, record: &UploadRecord) {
        self.saw(record.ts);
        let options = &self.options;
        if let Some(site) = site(&mut self.sites, options, &record.site) {
            site.record(record, options);
        }
    }

    /// Takes in one event: a stage entered (a new window starts), a
    /// rollback fired or cleared, an operator's change. Copies of an event
    /// in other instances' files are taken once. Other events only extend
    /// the log's end.
    pub fn event(&mut self, event: &Event) {
        self.saw(event.ts());
        if let Event::Upload(record) = event {
            self.record(record);
            return;
        }
        if !self.dedup.first(event) {
            return;
        }
        if let Event::Operator(change) = event {
            if change.site.is_none() {
                self.global.push(ReportEvent::Operator(change.clone()));
                return;
            }
        }
        let options = &self.options;
        let Some(site) = site(&mut self.sites, options, event.site()) else {
            return;
        };
        match event {
            Event::Stage(StageEvent::Entered(entered)) => {
                if site.resumes(entered) {
                    // A new controller (a fleet's next leader) going on with
                    // the stage: one stage, one clock, one window.
                    return;
                }
                site.events.push(ReportEvent::StageEntered {
                    ts: entered.ts,
                    stage: entered.stage,
                });
                site.enter(entered, options);
            }
            Event::Stage(StageEvent::RollbackCleared(entered)) => {
                site.events.push(ReportEvent::RollbackCleared {
                    ts: entered.ts,
                    stage: entered.stage,
                });
                site.enter(entered, options);
                site.rollback = None;
            }
            Event::Rollback(rollback) => {
                site.events.push(ReportEvent::Rollback {
                    ts: rollback.ts,
                    stage: rollback.stage,
                    reason: rollback.reason.clone(),
                });
                site.rollback = Some(rollback.clone());
            }
            Event::Operator(change) => site.events.push(ReportEvent::Operator(change.clone())),
            _ => {}
        }
    }

    fn saw(&mut self, ts: SystemTime) {
        self.end = Some(self.end.map_or(ts, |end| end.max(ts)));
    }

    /// The report: one entry per site with records, by name.
    ///
    /// # Errors
    ///
    /// No upload record (for the requested site), or a stage that is
    /// neither in the log nor defined.
    pub fn finish(self) -> Result<Report, ReportError> {
        let end = self.end.unwrap_or(SystemTime::UNIX_EPOCH);
        let global = self.global;
        let sites = self
            .sites
            .into_values()
            .filter(|site| site.all.records > 0)
            .map(|site| site.report(&self.options, end, &global))
            .collect::<Result<Vec<_>, _>>()?;
        if sites.is_empty() {
            return Err(ReportError::NoRecords {
                site: self.options.site,
            });
        }
        let exit_code = sites
            .iter()
            .map(|r| r.evaluation.verdict.exit_code())
            .max()
            .unwrap_or(0);
        Ok(Report { sites, exit_code })
    }
}

/// The replay of `name`, made on its first line; `None` for a site the
/// options leave out.
fn site<'a>(
    sites: &'a mut BTreeMap<String, SiteReplay>,
    options: &ReportOptions,
    name: &str,
) -> Option<&'a mut SiteReplay> {
    if options.site.as_deref().is_some_and(|only| only != name) {
        return None;
    }
    if !sites.contains_key(name) {
        sites.insert(name.to_owned(), SiteReplay::new(name));
    }
    sites.get_mut(name)
}

impl crate::log::Replay for ReportBuilder {
    fn record(&mut self, record: &UploadRecord) {
        ReportBuilder::record(self, record);
    }

    fn event(&mut self, event: &Event) {
        ReportBuilder::event(self, event);
    }
}

/// The calls of one window: from a stage event to the next, or every
/// record of the site; and the controller's looks at them.
#[derive(Clone, Debug)]
struct Window {
    /// The stage event that opened it; `None` for every record.
    entered: Option<StageEntered>,
    /// Where it starts: the event's time, or the site's first record.
    start: Option<SystemTime>,
    /// The next stage event's time, once one came.
    until: Option<SystemTime>,
    snapshot: SiteSnapshot,
    records: usize,
    /// The looks, from the window's start (for every record: from the
    /// first record seen).
    ticks: Option<Ticks>,
}

impl Window {
    fn new(site: &str, entered: Option<&StageEntered>, options: &ReportOptions) -> Self {
        let ticks = entered.map(|e| {
            let triggers = e.triggers.as_ref().unwrap_or(&options.triggers);
            Ticks::new(
                triggers,
                e.tick.unwrap_or(DEFAULT_TICK),
                e.recent_window.unwrap_or(DEFAULT_RECENT_WINDOW),
                e.since.unwrap_or(e.ts),
            )
        });
        Window {
            start: entered.map(|e| e.since.unwrap_or(e.ts)),
            entered: entered.cloned(),
            until: None,
            snapshot: SiteSnapshot::empty(site),
            records: 0,
            ticks,
        }
    }

    fn holds(&self, ts: SystemTime) -> bool {
        self.start.is_none_or(|start| ts >= start) && self.until.is_none_or(|until| ts < until)
    }

    fn record(&mut self, record: &UploadRecord, options: &ReportOptions) {
        let ticks = self.ticks.get_or_insert_with(|| {
            Ticks::new(
                &options.triggers,
                DEFAULT_TICK,
                DEFAULT_RECENT_WINDOW,
                record.ts,
            )
        });
        ticks.record(record);
        self.snapshot.record(record);
        self.records += 1;
    }

    fn stage(&self) -> Option<u32> {
        self.entered.as_ref().map(|e| e.stage)
    }
}

/// One site's replay.
#[derive(Clone, Debug)]
struct SiteReplay {
    /// Every record: the window of a log without (the asked) stage events.
    all: Window,
    /// Since the last stage event.
    current: Option<Window>,
    /// The last closed window of the stage asked for (`--stage`).
    kept: Option<Window>,
    /// The last rollback, unless cleared since.
    rollback: Option<RollbackEvent>,
    /// Its stage entries, rollbacks and operator changes.
    events: EventLog,
}

impl SiteReplay {
    fn new(site: &str) -> Self {
        SiteReplay {
            all: Window::new(site, None, &ReportOptions::default()),
            current: None,
            kept: None,
            rollback: None,
            events: EventLog::default(),
        }
    }

    fn record(&mut self, record: &UploadRecord, options: &ReportOptions) {
        self.all.start = Some(self.all.start.map_or(record.ts, |s| s.min(record.ts)));
        self.all.record(record, options);
        if let Some(window) = self.current.as_mut().filter(|w| w.holds(record.ts)) {
            window.record(record, options);
        } else if let Some(window) = self.kept.as_mut().filter(|w| w.holds(record.ts)) {
            window.record(record, options);
        }
    }

    /// Whether `entered` resumes the stage the current window holds (and
    /// that no rollback interrupted): the window goes on.
    fn resumes(&self, entered: &StageEntered) -> bool {
        entered.since.is_some()
            && self.rollback.is_none()
            && self.current.as_ref().and_then(Window::stage) == Some(entered.stage)
    }

    /// A stage event: the current window closes (kept if it is the stage
    /// asked for) and a new one opens.
    fn enter(&mut self, entered: &StageEntered, options: &ReportOptions) {
        if let Some(mut closed) = self.current.take() {
            if options.stage.is_some() && closed.stage() == options.stage {
                closed.until = Some(entered.ts);
                self.kept = Some(closed);
            }
        }
        let site = self.all.snapshot.site.clone();
        self.current = Some(Window::new(&site, Some(entered), options));
    }

    fn report(
        self,
        options: &ReportOptions,
        log_end: SystemTime,
        global: &EventLog,
    ) -> Result<SiteReport, ReportError> {
        let number = options
            .stage
            .or_else(|| self.current.as_ref().and_then(Window::stage))
            .unwrap_or(options.stages[0].number);
        let started = self.current.is_some();
        let recorded = [self.current, self.kept]
            .into_iter()
            .flatten()
            .find(|window| window.stage() == Some(number));
        let (judged, window) = match recorded {
            Some(window) => (Judged::recorded(&window, options), window),
            None => (Judged::built_in(options, number, started)?, self.all),
        };
        let mut events = self.events;
        events.merge(global);
        Ok(judge_site(
            judged,
            window,
            log_end,
            self.rollback.as_ref(),
            events,
        ))
    }
}

impl Report {
    /// Builds the report of `log`: its records and events replayed in
    /// time order through a [`ReportBuilder`](super::ReportBuilder).
    ///
    /// # Errors
    ///
    /// No upload record (for the requested site), or a stage that is
    /// neither in the log nor defined.
    pub fn build(log: &Log, options: &ReportOptions) -> Result<Report, ReportError> {
        let mut builder = ReportBuilder::new(options.clone());
        log.replay(&mut builder);
        builder.finish()
    }
}

/// The stage judged for one site: its criteria, triggers and window.
struct Judged {
    stage: Stage,
    triggers: Triggers,
    window: StageWindow,
    start: Option<SystemTime>,
    until: Option<SystemTime>,
    baseline: Option<Baseline>,
}

impl Judged {
    /// The window a stage event opened: judged with the criteria, triggers
    /// and baseline it recorded (the built-in criteria of its stage number
    /// when a first-release log did not record them).
    fn recorded(window: &Window, options: &ReportOptions) -> Judged {
        let entered = window
            .entered
            .as_ref()
            .unwrap_or_else(|| unreachable!("a recorded window has its stage event"));
        let stage = entered.criteria.clone().unwrap_or_else(|| {
            let built_in = options.stages.iter().find(|s| s.number == entered.stage);
            Stage {
                number: entered.stage,
                rollout: entered.rollout,
                ..built_in
                    .cloned()
                    .unwrap_or_else(|| Stage::new(entered.stage, entered.rollout))
            }
        });
        Judged {
            stage,
            triggers: entered
                .triggers
                .clone()
                .unwrap_or_else(|| options.triggers.clone()),
            window: StageWindow::Recorded {
                start: entered.ts,
                until: window.until,
                criteria_recorded: entered.criteria.is_some(),
                triggers_recorded: entered.triggers.is_some(),
            },
            start: Some(entered.ts),
            until: window.until,
            baseline: entered.baseline.clone(),
        }
    }

    /// Stage `number` as `options` define it, over every record: the log
    /// never enters it (`started`: the site has other stage events).
    fn built_in(
        options: &ReportOptions,
        number: u32,
        started: bool,
    ) -> Result<Judged, ReportError> {
        let stage = options
            .stages
            .iter()
            .find(|s| s.number == number)
            .ok_or_else(|| ReportError::UnknownStage {
                stage: number,
                defined: options.stages.iter().map(|s| s.number).collect(),
            })?;
        Ok(Judged {
            stage: stage.clone(),
            triggers: options.triggers.clone(),
            window: if started {
                StageWindow::NotEntered
            } else {
                StageWindow::Assumed {
                    requested: options.stage.is_some(),
                }
            },
            start: None,
            until: None,
            baseline: None,
        })
    }
}

/// The report of one site: `window`'s calls judged as `judged` says, up to
/// its end, through the controller's looks, with `rollback` the site's last
/// rollback not cleared.
fn judge_site(
    judged: Judged,
    mut window: Window,
    log_end: SystemTime,
    rollback: Option<&RollbackEvent>,
    mut events: EventLog,
) -> SiteReport {
    let end = window.until.unwrap_or(log_end);
    let start = window.start.unwrap_or(end);
    let elapsed = end.duration_since(start).unwrap_or(Duration::ZERO);
    let mut ticks = window.ticks.take().unwrap_or_else(|| {
        Ticks::new(&judged.triggers, DEFAULT_TICK, DEFAULT_RECENT_WINDOW, start)
    });
    let look = ticks.finish(end);
    let observation = Observation {
        stage_window: &window.snapshot,
        recent: look.recent,
        recent_span: look.recent_span,
        elapsed,
        baseline: judged.baseline.as_ref(),
        memory: None,
        success_band_for: look.band_for,
        complaints: None,
        rates: Some(look.rates),
    };
    let mut evaluation = evaluate(&judged.stage, &judged.triggers, &observation);
    let logged = rollback.filter(|rollback| latched_in(rollback, &judged));
    let replayed = ticks.latched().cloned();
    if let Some(latched) = &replayed {
        events.push(ReportEvent::WouldHaveRolledBack {
            ts: latched.at,
            reason: crate::log::reason(&latched.triggers),
        });
    }
    // Latched: the stage stays rolled back whatever its calls say since,
    // as in the controller; the log's own rollback comes first.
    let finding = match (logged, &replayed) {
        (Some(logged), _) => {
            evaluation.verdict = Verdict::Rollback {
                triggers: vec![logged.first_trigger()],
            };
            Some(RollbackFinding {
                at: logged.ts,
                logged: true,
                replayed_at: replayed.as_ref().map(|r| r.at),
            })
        }
        (None, Some(latched)) => {
            evaluation.verdict = Verdict::Rollback {
                triggers: latched.triggers.clone(),
            };
            Some(RollbackFinding {
                at: latched.at,
                logged: false,
                replayed_at: Some(latched.at),
            })
        }
        (None, None) => None,
    };
    let (tick, recent_window) = ticks.looks();
    let snapshot = &window.snapshot;
    SiteReport {
        site: snapshot.site.clone(),
        records: window.records,
        summaries: ExecutionType::ALL
            .iter()
            .map(|&et| snapshot.summary(et))
            .collect(),
        comparison: snapshot.comparison(),
        evaluation,
        window_from_stage_event: judged.start.is_some(),
        window: judged.window,
        latched_rollback: logged.is_some(),
        rollback: finding,
        replayed: Replayed {
            tick,
            recent_window,
        },
        events,
    }
}

/// Whether the site's last rollback not cleared is in force in the judged
/// window: the window is the site's current one, or the rollback happened
/// in it.
fn latched_in(rollback: &RollbackEvent, judged: &Judged) -> bool {
    let in_window = judged.start.is_none_or(|start| rollback.ts >= start)
        && judged.until.is_none_or(|until| rollback.ts < until);
    judged.until.is_none() || in_window
}
