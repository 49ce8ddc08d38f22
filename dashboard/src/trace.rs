//! What the page shows of one site, gathered record by record: the whole
//! log's [`Timeline`], the stage window's distributions, sizes and errors,
//! and the controller's markers.

use std::collections::BTreeMap;

use super::marker::{Marker, MarkerKind};
use super::timeline::Timeline;
use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot, UploadRecord};

/// Distinct error names kept per path; the rest count as [`OTHER_ERRORS`]
/// (a log with an unbounded variety of names stays bounded in memory).
const MAX_ERROR_NAMES: usize = 64;
/// The name under which errors past [`MAX_ERROR_NAMES`] are counted.
pub(crate) const OTHER_ERRORS: &str = "(other)";
/// Verdict markers kept per site: verdicts are logged every tick, only
/// changes are marked, and a flapping verdict stops being marked here.
const MAX_VERDICT_MARKERS: usize = 100;
/// Markers of any kind kept per site.
const MAX_MARKERS: usize = 500;

/// Bytes and time of the successful calls of one path that declared a
/// size: a failed call moved no file, and its time says nothing of speed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Transfer {
    pub(crate) bytes: u64,
    pub(crate) micros: u64,
}

impl Transfer {
    /// Bytes per second over the calls that declared a size.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn throughput(self) -> Option<f64> {
        (self.micros > 0).then(|| self.bytes as f64 / (self.micros as f64 / 1e6))
    }
}

/// One site's accumulators.
#[derive(Clone, Debug)]
pub(crate) struct SiteTrace {
    pub(crate) timeline: Timeline,
    pub(crate) window: SiteSnapshot,
    pub(crate) transfer: [Transfer; 3],
    pub(crate) errors: [BTreeMap<String, u64>; 3],
    pub(crate) markers: Vec<Marker>,
    window_open: bool,
    verdict_markers: usize,
}

impl SiteTrace {
    pub(crate) fn new(site: &str) -> Self {
        SiteTrace {
            timeline: Timeline::default(),
            window: SiteSnapshot::empty(site),
            transfer: [Transfer::default(); 3],
            errors: Default::default(),
            markers: Vec::new(),
            window_open: true,
            verdict_markers: 0,
        }
    }

    pub(crate) fn record(&mut self, record: &UploadRecord) {
        self.timeline.record(record);
        if !self.window_open {
            return;
        }
        self.window.record(record);
        let path = record.execution_type.index();
        if let Some(bytes) = record.bytes.filter(|_| record.success) {
            self.transfer[path].bytes += bytes;
            self.transfer[path].micros += record.duration_micros();
        }
        // A failed call's error, or the async error a fallback recovered from.
        if let Some(name) = record.error_type.as_deref() {
            let errors = &mut self.errors[path];
            if let Some(count) = errors.get_mut(name) {
                *count += 1;
            } else if errors.len() < MAX_ERROR_NAMES {
                errors.insert(name.to_owned(), 1);
            } else {
                *errors.entry(OTHER_ERRORS.to_owned()).or_default() += 1;
            }
        }
    }

    /// A new stage window: distributions, sizes and errors start over.
    pub(crate) fn restart_window(&mut self) {
        let site = std::mem::take(&mut self.window.site);
        self.window = SiteSnapshot::empty(&site);
        self.transfer = [Transfer::default(); 3];
        self.errors = Default::default();
        self.window_open = true;
    }

    /// The window ends: later records only reach the timeline.
    pub(crate) fn close_window(&mut self) {
        self.window_open = false;
    }

    pub(crate) fn mark(&mut self, marker: Marker) {
        if self.markers.len() >= MAX_MARKERS {
            return;
        }
        if let MarkerKind::Verdict(verdict) = &marker.kind {
            let last = self.markers.iter().rev().find_map(|m| match &m.kind {
                MarkerKind::Verdict(v) => Some(*v),
                _ => None,
            });
            if last == Some(*verdict) || self.verdict_markers >= MAX_VERDICT_MARKERS {
                return;
            }
            self.verdict_markers += 1;
        }
        self.markers.push(marker);
    }

    /// The most frequent error names of one path, most frequent first.
    pub(crate) fn top_errors(&self, path: ExecutionType, n: usize) -> Vec<(&str, u64)> {
        let mut errors: Vec<(&str, u64)> = self.errors[path.index()]
            .iter()
            .map(|(name, &count)| (name.as_str(), count))
            .collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        errors.truncate(n);
        errors
    }

    /// The site's markers with `extra` ones (global changes, the report's
    /// replayed rollback), in time order: the order they are numbered in.
    pub(crate) fn sorted_markers<'a>(&'a self, extra: &'a [Marker]) -> Vec<&'a Marker> {
        let mut markers: Vec<&Marker> = self.markers.iter().chain(extra).collect();
        markers.sort_by_key(|m| m.ts);
        markers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    use crate::marker::VerdictKind;

    fn failed(name: &str) -> UploadRecord {
        let mut record = UploadRecord::new("s", ExecutionType::Async, false, 5.0, 3);
        record.error_type = Some(name.to_owned().into());
        record
    }

    #[test]
    fn errors_are_bounded_and_ranked() {
        let mut trace = SiteTrace::new("s");
        for _ in 0..3 {
            trace.record(&failed("reset"));
        }
        // 63 more names fill the map; the 10 after them count as other.
        for i in 0..(MAX_ERROR_NAMES + 9) {
            trace.record(&failed(&format!("e{i}")));
        }
        let top = trace.top_errors(ExecutionType::Async, 2);
        assert_eq!(top[0], (OTHER_ERRORS, 10));
        assert_eq!(top[1], ("reset", 3));
        assert!(trace.errors[1].len() <= MAX_ERROR_NAMES + 1);
    }

    #[test]
    fn a_window_restarts_and_closes_but_the_timeline_keeps_everything() {
        let mut trace = SiteTrace::new("s");
        trace.record(&failed("reset"));
        trace.restart_window();
        let mut ok = UploadRecord::new("s", ExecutionType::Sync, true, 5.0, 0);
        ok.bytes = Some(1_000_000);
        trace.record(&ok);
        let mut lost = ok.clone();
        lost.success = false;
        trace.record(&lost);
        trace.close_window();
        trace.record(&failed("reset"));
        assert_eq!(trace.window.path(ExecutionType::Async).count, 0);
        assert_eq!(trace.window.path(ExecutionType::Sync).count, 2);
        // Only the successful call's bytes and time.
        assert_eq!(trace.transfer[0].bytes, 1_000_000);
        assert_eq!(trace.transfer[0].throughput(), Some(2e8));
        let calls: u64 = trace.timeline.buckets().map(|(_, b)| b.calls[1]).sum();
        assert_eq!(calls, 2);
    }

    #[test]
    fn only_verdict_changes_are_marked() {
        let mut trace = SiteTrace::new("s");
        let at = SystemTime::UNIX_EPOCH;
        for verdict in [VerdictKind::Hold, VerdictKind::Hold, VerdictKind::Review] {
            trace.mark(Marker::new(at, MarkerKind::Verdict(verdict)));
        }
        trace.mark(Marker::new(at, MarkerKind::Rollback));
        assert_eq!(trace.markers.len(), 3);
    }
}
