//! The last few minutes of one site's records, in slices: what a replay
//! keeps to measure a window's recent calls without keeping the records.
//!
//! A slice counts the records of up to [`SLICE`] of log time; a stage
//! event cuts the current slice so a window always starts on a slice
//! boundary. Slices older than the recent window are recycled, so memory
//! is bounded by [`DEFAULT_RECENT_WINDOW`] / [`SLICE`] snapshots whatever
//! the log's size or rate.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use super::DEFAULT_RECENT_WINDOW;
use crate::metrics::{SiteSnapshot, UploadRecord};

/// How much log time one slice covers at most: the recent window is
/// measured to this precision (it may start up to this much earlier).
pub(crate) const SLICE: Duration = Duration::from_secs(10);

/// The recent calls of a window, and from when they are counted.
#[derive(Clone, Debug)]
pub(crate) struct Recent {
    pub(crate) snapshot: SiteSnapshot,
    pub(crate) from: SystemTime,
}

#[derive(Clone, Debug)]
struct Slice {
    start: SystemTime,
    snapshot: SiteSnapshot,
}

/// One site's slices, oldest first.
#[derive(Clone, Debug)]
pub(crate) struct Tail {
    site: String,
    slices: VecDeque<Slice>,
    spare: Vec<SiteSnapshot>,
}

impl Tail {
    pub(crate) fn new(site: &str) -> Self {
        Tail {
            site: site.to_owned(),
            slices: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// Counts `record` in the slice of its time.
    pub(crate) fn record(&mut self, record: &UploadRecord) {
        let newest = self.slices.back().map(|slice| slice.start);
        match newest {
            Some(start) if record.ts < start => {
                // A late line (another task's record written after a newer
                // one): its slice, if still kept; older ones are outside
                // every recent window still to be measured.
                let after = self.slices.partition_point(|s| s.start <= record.ts);
                if let Some(slice) = after.checked_sub(1).map(|i| &mut self.slices[i]) {
                    slice.snapshot.record(record);
                }
                return;
            }
            Some(start) if record.ts < start + SLICE => {}
            _ => self.open(record.ts),
        }
        if let Some(slice) = self.slices.back_mut() {
            slice.snapshot.record(record);
        }
        self.prune(record.ts);
    }

    /// Starts a new slice at `at` (a stage event): the window starting
    /// there counts none of the records before it.
    pub(crate) fn cut(&mut self, at: SystemTime) {
        if self.slices.back().is_none_or(|slice| slice.start < at) {
            self.open(at);
        }
    }

    fn open(&mut self, start: SystemTime) {
        let snapshot = self
            .spare
            .pop()
            .unwrap_or_else(|| SiteSnapshot::empty(&self.site));
        self.slices.push_back(Slice { start, snapshot });
    }

    /// Recycles the slices that end before `newest - DEFAULT_RECENT_WINDOW`:
    /// no window ending at or after `newest` reaches them.
    fn prune(&mut self, newest: SystemTime) {
        let Some(horizon) = newest.checked_sub(DEFAULT_RECENT_WINDOW) else {
            return;
        };
        while self.slices.len() > 1 && self.slices[1].start <= horizon {
            if let Some(mut old) = self.slices.pop_front() {
                old.snapshot.clear();
                self.spare.push(old.snapshot);
            }
        }
    }

    /// The calls of the window `[start, end)` in its last
    /// [`DEFAULT_RECENT_WINDOW`]: the slices from the one holding
    /// `end - DEFAULT_RECENT_WINDOW` (or from `start`) to `end`.
    pub(crate) fn recent(&self, start: SystemTime, end: SystemTime) -> Recent {
        let from = end
            .checked_sub(DEFAULT_RECENT_WINDOW)
            .unwrap_or(start)
            .max(start);
        let mut recent = Recent {
            snapshot: SiteSnapshot::empty(&self.site),
            from,
        };
        for (i, slice) in self.slices.iter().enumerate() {
            let slice_end = self.slices.get(i + 1).map(|next| next.start);
            let before_from = slice_end.is_some_and(|slice_end| slice_end <= from);
            if slice.start < start || slice.start >= end || before_from {
                continue;
            }
            recent.from = recent.from.min(slice.start);
            recent.snapshot.merge(&slice.snapshot);
        }
        recent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ExecutionType;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn record(secs: u64) -> UploadRecord {
        let mut record = UploadRecord::new("up", ExecutionType::Async, true, 5.0, 1);
        record.ts = at(secs);
        record
    }

    fn calls(recent: &Recent) -> u64 {
        recent.snapshot.path(ExecutionType::Async).count
    }

    #[test]
    fn the_recent_window_counts_the_last_minutes_to_a_slice() {
        let mut tail = Tail::new("up");
        for secs in 0..3600 {
            tail.record(&record(secs));
        }
        let recent = tail.recent(at(0), at(3600));
        let window = DEFAULT_RECENT_WINDOW.as_secs();
        let counted = calls(&recent);
        assert!(
            (window..window + SLICE.as_secs()).contains(&counted),
            "{counted}"
        );
        assert_eq!(
            at(3600).duration_since(recent.from).unwrap().as_secs(),
            counted
        );
        // Bounded by the window, not by the records.
        assert!(tail.slices.len() as u64 <= window / SLICE.as_secs() + 2);
    }

    #[test]
    fn a_cut_starts_a_window_on_a_slice_boundary() {
        let mut tail = Tail::new("up");
        for secs in 0..25 {
            tail.record(&record(secs));
        }
        tail.cut(at(25) - Duration::from_millis(500));
        for secs in 25..30 {
            tail.record(&record(secs));
        }
        let recent = tail.recent(at(25) - Duration::from_millis(500), at(30));
        assert_eq!(calls(&recent), 5);
    }

    #[test]
    fn late_records_count_in_their_slice() {
        let mut tail = Tail::new("up");
        tail.record(&record(0));
        tail.record(&record(100));
        tail.record(&record(5));
        let recent = tail.recent(at(0), at(101));
        assert_eq!(calls(&recent), 3);
        // A window ending before the newest slice leaves it out.
        assert_eq!(calls(&tail.recent(at(0), at(50))), 2);
    }
}
