//! The report in one pass: a [`ReportBuilder`] takes a log's records and
//! events in time order and keeps, per site, only what the report judges
//! (the window of the stage entered last, the last window of the stage
//! asked for, every record for a log without stage events, and the last
//! minutes in slices), so memory is bounded by the number of sites, not by
//! the log's size.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::report::{judge_site, Judged, Report, ReportError, ReportOptions, SiteReport};
use super::tail::{Recent, Tail};
use crate::log::{Event, RollbackEvent, StageEntered, StageEvent};
use crate::metrics::{SiteSnapshot, UploadRecord};

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
pub(crate) struct Window {
    /// The stage event that opened it; `None` for every record.
    pub(crate) entered: Option<StageEntered>,
    /// Where it starts: the event's time, or the site's first record.
    pub(crate) start: Option<SystemTime>,
    /// The next stage event's time, once one came.
    pub(crate) until: Option<SystemTime>,
    pub(crate) snapshot: SiteSnapshot,
    pub(crate) records: usize,
    /// Measured when the window closed.
    pub(crate) recent: Option<Recent>,
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
