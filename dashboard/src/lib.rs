//! The HTML rollout report (cargo feature `html`): one self-contained page
//! per report, with the verdict and criteria of each site, its latency
//! distribution per path, rates and latencies over time with the stage and
//! rollback markers, bytes and throughput, and the top errors.
//!
//! The page needs nothing but a browser: no script, no font, no stylesheet
//! from anywhere; the charts are inline SVG drawn with
//! [`plotters`](https://docs.rs/plotters).
//!
//! The public names: [`Dashboard`] (fed records, rendered with a report)
//! and [`HtmlError`].
//!
//! A [`Dashboard`] is fed in the same single pass over the log as the
//! report: its memory is bounded by the log's duration (per-bucket
//! aggregates, at most a few hundred buckets per site), not by its records.
//!
//! ```
//! use async_upload::dashboard::Dashboard;
//! use async_upload::log::Log;
//! use async_upload::metrics::{ExecutionType, UploadRecord};
//! use async_upload::stages::{Report, ReportOptions};
//!
//! let mut log = Log::default();
//! let mut dashboard = Dashboard::new(None);
//! for i in 0..50 {
//!     let et = if i % 2 == 0 { ExecutionType::Sync } else { ExecutionType::Async };
//!     let record = UploadRecord::new("upload", et, true, 10.0 + f64::from(i), u32::from(i % 2 == 1));
//!     dashboard.record(&record);
//!     log.uploads.push(record);
//! }
//! let report = Report::build(&log, &ReportOptions::default())?;
//! let html = dashboard.render(&report)?;
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(!html.contains("<script") && !html.contains(" src=") && !html.contains("url("));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![warn(clippy::pedantic)]
#![allow(clippy::module_name_repetitions)]

mod axis;
mod charts;
mod error;
mod marker;
mod page;
mod timeline;
mod trace;

use std::collections::BTreeMap;

use async_upload_control::log::{Dedup, Event, Log, StageEvent};
use async_upload_control::stages::Report;
use async_upload_runtime::metrics::UploadRecord;
pub use error::HtmlError;
use marker::{Marker, MarkerKind, VerdictKind};
use trace::SiteTrace;

/// Markers of global operator changes kept (each is drawn on every site).
const MAX_GLOBAL_MARKERS: usize = 100;

/// Gathers, record by record and event by event, what the HTML report
/// draws; [`Dashboard::render`] writes the page.
///
/// Per site: the whole log's time series (calls per path, async success
/// rate, async and sync p50/p95, in 60 to 300 buckets of a round width
/// chosen from the log's span), and over the stage window (which restarts
/// at each stage `entered` event, like the report's): the latency
/// distribution per path, bytes, throughput and error names. Events
/// (stages, verdict changes, rollbacks, operator changes) are markers on
/// the time charts; copies of one event in several instances' files are
/// one marker.
#[derive(Clone, Debug)]
pub struct Dashboard {
    stage: Option<u32>,
    sites: BTreeMap<String, SiteTrace>,
    /// Operator changes of the global configuration: on every site.
    global: Vec<Marker>,
    dedup: Dedup,
}

impl Dashboard {
    /// An empty dashboard whose window is the last stage entered in the log,
    /// or, with `stage`, the last time that stage was entered (until
    /// another stage is entered), as the report's `--stage` chooses.
    #[must_use]
    pub fn new(stage: Option<u32>) -> Self {
        Dashboard {
            stage,
            sites: BTreeMap::new(),
            global: Vec::new(),
            dedup: Dedup::default(),
        }
    }

    /// The dashboard of a whole [`Log`] in memory: its records and events
    /// taken in time order.
    #[must_use]
    pub fn of_log(log: &Log, stage: Option<u32>) -> Self {
        let mut dashboard = Dashboard::new(stage);
        log.replay(&mut dashboard);
        dashboard
    }

    fn site(&mut self, site: &str) -> &mut SiteTrace {
        if !self.sites.contains_key(site) {
            self.sites.insert(site.to_owned(), SiteTrace::new(site));
        }
        self.sites
            .get_mut(site)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Counts one upload record.
    pub fn record(&mut self, record: &UploadRecord) {
        self.site(&record.site).record(record);
    }

    /// Takes in one event: a stage entered (the window restarts), a
    /// verdict, a rollback, a rollback cleared, an operator's change (a
    /// global one marks every site). Other events are ignored.
    pub fn event(&mut self, event: &Event) {
        if !self.dedup.first(event) {
            return;
        }
        let (site, ts) = (event.site(), event.ts());
        let kind = match event {
            Event::Stage(StageEvent::Entered(entered) | StageEvent::RollbackCleared(entered)) => {
                // A new window, as the report's: the stage asked for (else
                // any) starts over, another one ends it.
                let (stage, wanted) = (entered.stage, self.stage);
                let trace = self.site(site);
                match wanted {
                    None => trace.restart_window(),
                    Some(n) if n == stage => trace.restart_window(),
                    Some(_) => trace.close_window(),
                }
                if matches!(event, Event::Stage(StageEvent::RollbackCleared(_))) {
                    MarkerKind::RollbackCleared
                } else {
                    MarkerKind::StageEntered { stage }
                }
            }
            Event::Stage(StageEvent::Verdict(verdict)) => {
                MarkerKind::Verdict(VerdictKind::of(&verdict.evaluation.verdict))
            }
            Event::Rollback(_) => MarkerKind::Rollback,
            Event::Operator(change) => MarkerKind::Operator(change.to_string()),
            _ => return,
        };
        let marker = Marker::new(ts, kind);
        if event.is_global() {
            if self.global.len() < MAX_GLOBAL_MARKERS {
                self.global.push(marker);
            }
        } else {
            self.site(site).mark(marker);
        }
    }

    /// The page: one section per site of `report`, in its order.
    ///
    /// # Errors
    ///
    /// A chart could not be drawn (it names which).
    pub fn render(&self, report: &Report) -> Result<String, HtmlError> {
        page::render(&self.sites, &self.global, report)
    }
}

impl async_upload_control::log::Replay for Dashboard {
    fn record(&mut self, record: &UploadRecord) {
        Dashboard::record(self, record);
    }

    fn event(&mut self, event: &Event) {
        Dashboard::event(self, event);
    }
}
