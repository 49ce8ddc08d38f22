//! Per-bucket aggregates over time, bounded by the log's duration and not
//! by its record count: buckets start one minute wide and double in width
//! (merging neighbours) whenever there would be more than [`MAX_BUCKETS`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::{ExecutionType, Histogram, UploadRecord};

/// The narrowest bucket: one minute.
pub(crate) const MIN_WIDTH: Duration = Duration::from_secs(60);
/// At most this many buckets: a week of one-minute buckets becomes
/// ~32-minute ones, enough points for a chart a screen wide.
pub(crate) const MAX_BUCKETS: usize = 360;

/// What one bucket counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bucket {
    /// Calls per execution type, indexed by [`ExecutionType::index`].
    pub(crate) calls: [u64; 3],
    /// Finished enrolled calls (`async` + `sync_fallback`, not cancelled).
    pub(crate) enrolled: u64,
    /// Enrolled calls the async path served successfully.
    pub(crate) async_successes: u64,
    /// Latency of `async` calls.
    pub(crate) async_latency: Histogram,
    /// Latency of `sync` calls.
    pub(crate) sync_latency: Histogram,
}

impl Bucket {
    fn record(&mut self, record: &UploadRecord) {
        self.calls[record.execution_type.index()] += 1;
        let finished = !record.is_cancelled();
        match record.execution_type {
            ExecutionType::Async => {
                self.async_latency.record(record.duration_micros());
                if finished {
                    self.enrolled += 1;
                    self.async_successes += u64::from(record.success);
                }
            }
            ExecutionType::SyncFallback => self.enrolled += u64::from(finished),
            ExecutionType::Sync => self.sync_latency.record(record.duration_micros()),
        }
    }

    fn merge(&mut self, other: &Bucket) {
        for (mine, theirs) in self.calls.iter_mut().zip(other.calls) {
            *mine += theirs;
        }
        self.enrolled += other.enrolled;
        self.async_successes += other.async_successes;
        self.async_latency.merge(&other.async_latency);
        self.sync_latency.merge(&other.sync_latency);
    }

    /// The async path's success rate (a fallback counts as a failure).
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn success_rate(&self) -> Option<f64> {
        (self.enrolled > 0).then(|| self.async_successes as f64 / self.enrolled as f64)
    }
}

/// Buckets of equal width from `origin` on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timeline {
    /// Start of the first bucket, whole seconds since the epoch; `None`
    /// before the first record.
    origin: Option<u64>,
    /// Bucket width in seconds.
    width: u64,
    buckets: Vec<Bucket>,
}

fn epoch_secs(ts: SystemTime) -> u64 {
    ts.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl Timeline {
    /// Counts `record` in the bucket of its time.
    pub(crate) fn record(&mut self, record: &UploadRecord) {
        let slot = self.slot(epoch_secs(record.ts));
        self.buckets[slot].record(record);
    }

    /// The index of the bucket holding `secs`, creating buckets (and
    /// widening them) as needed.
    fn slot(&mut self, secs: u64) -> usize {
        let origin = if let Some(origin) = self.origin {
            origin
        } else {
            self.width = MIN_WIDTH.as_secs();
            let origin = secs - secs % self.width;
            self.origin = Some(origin);
            origin
        };
        if secs < origin {
            // An earlier record (another instance's log, or lines written
            // out of order): prepend whole buckets, keeping the alignment.
            let missing = (origin - secs).div_ceil(self.width);
            let missing_len = usize::try_from(missing).unwrap_or(usize::MAX);
            self.buckets.splice(
                0..0,
                std::iter::repeat_with(Bucket::default).take(missing_len.min(1 << 20)),
            );
            self.origin = Some(origin - missing * self.width);
            self.shrink();
            return self.slot(secs);
        }
        let index = usize::try_from((secs - origin) / self.width).unwrap_or(usize::MAX);
        if index >= MAX_BUCKETS {
            self.widen();
            return self.slot(secs);
        }
        if index >= self.buckets.len() {
            self.buckets.resize_with(index + 1, Bucket::default);
        }
        index
    }

    /// Doubles the width until the buckets fit in [`MAX_BUCKETS`].
    fn shrink(&mut self) {
        while self.buckets.len() > MAX_BUCKETS {
            self.widen();
        }
    }

    /// Doubles the bucket width, merging neighbours. The origin moves to a
    /// multiple of the new width so that bucket edges stay round.
    fn widen(&mut self) {
        let Some(origin) = self.origin else { return };
        let width = self.width * 2;
        let new_origin = origin - origin % width;
        let mut merged: Vec<Bucket> = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for (i, bucket) in self.buckets.drain(..).enumerate() {
            let start = origin + i as u64 * self.width;
            let slot = usize::try_from((start - new_origin) / width).unwrap_or(usize::MAX);
            if slot >= merged.len() {
                merged.resize_with(slot + 1, Bucket::default);
            }
            merged[slot].merge(&bucket);
        }
        self.origin = Some(new_origin);
        self.width = width;
        self.buckets = merged;
    }

    /// The bucket width.
    pub(crate) fn width(&self) -> Duration {
        Duration::from_secs(self.width)
    }

    /// Each bucket with its start time, in seconds since the epoch.
    pub(crate) fn buckets(&self) -> impl Iterator<Item = (u64, &Bucket)> {
        let origin = self.origin.unwrap_or(0);
        let width = self.width;
        self.buckets
            .iter()
            .enumerate()
            .map(move |(i, b)| (origin + i as u64 * width, b))
    }

    /// `[first bucket's start, last bucket's end)` in seconds since the epoch.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        let origin = self.origin?;
        Some((origin, origin + self.buckets.len() as u64 * self.width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, execution_type: ExecutionType, success: bool) -> UploadRecord {
        let mut record = UploadRecord::new("s", execution_type, success, 10.0, 1);
        record.ts = UNIX_EPOCH + Duration::from_secs(secs);
        record
    }

    #[test]
    fn a_minute_per_bucket_for_short_logs() {
        let mut timeline = Timeline::default();
        for secs in [120, 130, 179, 180, 300] {
            timeline.record(&at(secs, ExecutionType::Async, true));
        }
        assert_eq!(timeline.width(), MIN_WIDTH);
        let counts: Vec<u64> = timeline.buckets().map(|(_, b)| b.calls[1]).collect();
        assert_eq!(counts, [3, 1, 0, 1]);
        assert_eq!(timeline.span(), Some((120, 360)));
    }

    #[test]
    fn a_week_stays_within_the_bucket_bound_and_loses_no_call() {
        let mut timeline = Timeline::default();
        let week = 7 * 24 * 3600;
        let mut calls = 0;
        for secs in (0..week).step_by(37) {
            timeline.record(&at(secs, ExecutionType::Sync, true));
            calls += 1;
        }
        assert!(timeline.buckets().count() <= MAX_BUCKETS);
        assert_eq!(timeline.width(), Duration::from_secs(60 * 32));
        let total: u64 = timeline.buckets().map(|(_, b)| b.calls[0]).sum();
        assert_eq!(total, calls);
        let latency: u64 = timeline.buckets().map(|(_, b)| b.sync_latency.len()).sum();
        assert_eq!(latency, calls);
    }

    #[test]
    fn earlier_records_prepend_buckets() {
        let mut timeline = Timeline::default();
        timeline.record(&at(600, ExecutionType::Async, true));
        timeline.record(&at(59, ExecutionType::SyncFallback, true));
        timeline.record(&at(620, ExecutionType::Async, false));
        let buckets: Vec<_> = timeline.buckets().collect();
        assert_eq!(buckets[0].0, 0);
        assert_eq!(buckets[0].1.calls[2], 1);
        let last = buckets.last().unwrap();
        assert_eq!(last.0, 600);
        assert_eq!(last.1.success_rate(), Some(0.5));
        assert_eq!(buckets[0].1.success_rate(), Some(0.0));
    }
}
