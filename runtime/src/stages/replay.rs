//! The report in one pass: a [`ReportBuilder`] takes a log's records and
//! events in time order and keeps, per site, only what the report judges
//! (the window of the stage entered last, the last window of the stage
//! asked for, every record for a log without stage events, and the last
//! minutes in slices), so memory is bounded by the number of sites, not by
//! the log's size; at the end each site's window is judged as the stage
//! event that opened it recorded.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::evaluate::{evaluate, Observation};
use super::report::{Report, ReportError, ReportOptions, SiteReport, StageWindow};
use super::stage::{Stage, Triggers};
use super::tail::{Recent, Tail};
use super::verdict::{Baseline, Verdict};
use crate::log::{Event, Log, RollbackEvent, StageEntered, StageEvent};
use crate::metrics::{ExecutionType, SiteSnapshot, UploadRecord};

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
}

impl ReportBuilder {
    /// A builder reporting as `options` asks.
    #[must_use]
    pub fn new(options: ReportOptions) -> Self {
        ReportBuilder {
            options,
            sites: BTreeMap::new(),
            end: None,
        }
    }

    /// Counts one upload record.
    pub fn record(&mut self, record: &UploadRecord) {
        self.saw(record.ts);
        if let Some(site) = self.site(&record.site) {
            site.record(record);
        }
    }

    /// Takes in one controller event: a stage entered (a new window
    /// starts), a rollback fired or cleared. Other events only extend the
    /// log's end.
    pub fn event(&mut self, event: &Event) {
        self.saw(event.ts());
        let wanted = self.options.stage;
        let Some(site) = self.site(event.site()) else {
            return;
        };
        match event {
            Event::Upload(record) => site.record(record),
            Event::Stage(StageEvent::Entered(entered)) => site.enter(entered, wanted),
            Event::Stage(StageEvent::RollbackCleared(entered)) => {
                site.enter(entered, wanted);
                site.rollback = None;
            }
            Event::Rollback(rollback) => site.rollback = Some(rollback.clone()),
            _ => {}
        }
    }

    fn saw(&mut self, ts: SystemTime) {
        self.end = Some(self.end.map_or(ts, |end| end.max(ts)));
    }

    fn site(&mut self, name: &str) -> Option<&mut SiteReplay> {
        if self
            .options
            .site
            .as_deref()
            .is_some_and(|only| only != name)
        {
            return None;
        }
        if !self.sites.contains_key(name) {
            self.sites.insert(name.to_owned(), SiteReplay::new(name));
        }
        self.sites.get_mut(name)
    }

    /// The report: one entry per site with records, by name.
    ///
    /// # Errors
    ///
    /// No upload record (for the requested site), or a stage that is
    /// neither in the log nor defined.
    pub fn finish(self) -> Result<Report, ReportError> {
        let end = self.end.unwrap_or(SystemTime::UNIX_EPOCH);
        let sites = self
            .sites
            .into_values()
            .filter(|site| site.all.records > 0)
            .map(|site| site.report(&self.options, end))
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

impl crate::log::Replay for ReportBuilder {
    fn record(&mut self, record: &UploadRecord) {
        ReportBuilder::record(self, record);
    }

    fn event(&mut self, event: &Event) {
        ReportBuilder::event(self, event);
    }
}

/// The calls of one window: from a stage event to the next, or every
/// record of the site.
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
    /// Measured when the window closed.
    recent: Option<Recent>,
}

impl Window {
    fn new(site: &str, entered: Option<&StageEntered>) -> Self {
        Window {
            start: entered.map(|e| e.ts),
            entered: entered.cloned(),
            until: None,
            snapshot: SiteSnapshot::empty(site),
            records: 0,
            recent: None,
        }
    }

    fn holds(&self, ts: SystemTime) -> bool {
        self.start.is_none_or(|start| ts >= start) && self.until.is_none_or(|until| ts < until)
    }

    fn record(&mut self, record: &UploadRecord) {
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
    tail: Tail,
    /// The last rollback, unless cleared since.
    rollback: Option<RollbackEvent>,
}

impl SiteReplay {
    fn new(site: &str) -> Self {
        SiteReplay {
            all: Window::new(site, None),
            current: None,
            kept: None,
            tail: Tail::new(site),
            rollback: None,
        }
    }

    fn record(&mut self, record: &UploadRecord) {
        self.all.start = Some(self.all.start.map_or(record.ts, |s| s.min(record.ts)));
        self.all.record(record);
        self.tail.record(record);
        if let Some(window) = self.current.as_mut().filter(|w| w.holds(record.ts)) {
            window.record(record);
        } else if let Some(window) = self.kept.as_mut().filter(|w| w.holds(record.ts)) {
            window.record(record);
        }
    }

    /// A stage event: the current window closes (kept if it is the stage
    /// asked for) and a new one opens.
    fn enter(&mut self, entered: &StageEntered, wanted: Option<u32>) {
        if let Some(mut closed) = self.current.take() {
            if wanted.is_some() && closed.stage() == wanted {
                closed.until = Some(entered.ts);
                let start = closed.start.unwrap_or(entered.ts);
                closed.recent = Some(self.tail.recent(start, entered.ts));
                self.kept = Some(closed);
            }
        }
        self.tail.cut(entered.ts);
        self.current = Some(Window::new(&self.all.snapshot.site, Some(entered)));
    }

    fn report(
        self,
        options: &ReportOptions,
        log_end: SystemTime,
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
        let end = window.until.unwrap_or(log_end);
        let start = window.start.unwrap_or(end);
        let recent = window
            .recent
            .clone()
            .unwrap_or_else(|| self.tail.recent(start, end));
        Ok(judge_site(
            judged,
            &window,
            &recent,
            end,
            self.rollback.as_ref(),
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
    /// and baseline it recorded.
    fn recorded(window: &Window, options: &ReportOptions) -> Judged {
        let entered = window
            .entered
            .as_ref()
            .unwrap_or_else(|| unreachable!("a recorded window has its stage event"));
        Judged {
            stage: entered.criteria.clone(),
            triggers: entered
                .triggers
                .clone()
                .unwrap_or_else(|| options.triggers.clone()),
            window: StageWindow::Recorded {
                start: entered.ts,
                until: window.until,
                triggers_recorded: entered.triggers.is_some(),
            },
            start: Some(entered.ts),
            until: window.until,
            baseline: entered.baseline,
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
/// `end`, with `recent` its last minutes and `rollback` the site's last
/// rollback not cleared.
fn judge_site(
    judged: Judged,
    window: &Window,
    recent: &Recent,
    end: SystemTime,
    rollback: Option<&RollbackEvent>,
) -> SiteReport {
    let start = window.start.unwrap_or(end);
    let snapshot = &window.snapshot;
    let observation = Observation {
        stage_window: snapshot,
        recent_window: &recent.snapshot,
        recent_span: end.duration_since(recent.from).unwrap_or_default(),
        elapsed: end.duration_since(start).unwrap_or(Duration::ZERO),
        baseline: judged.baseline,
        memory: None,
        success_band_for: Duration::ZERO,
        complaints: None,
        rates: None,
    };
    let mut evaluation = evaluate(&judged.stage, &judged.triggers, &observation);
    let latched = rollback.filter(|rollback| latched_in(rollback, &judged));
    if let Some(rollback) = latched {
        if !matches!(evaluation.verdict, Verdict::Rollback { .. }) {
            evaluation.verdict = Verdict::Rollback {
                triggers: vec![rollback.first_trigger()],
            };
        }
    }
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
        latched_rollback: latched.is_some(),
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
