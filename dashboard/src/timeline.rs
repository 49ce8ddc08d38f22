//! Per-bucket aggregates over time, bounded by the log's duration and not
//! by its record count, at any scale: buckets start 10 ms wide and widen
//! along a ladder of round widths ([`WIDTHS`]: 10 ms, 20 ms, 100 ms, …,
//! 1 min, 2 min, 10 min, …, 1 d, then doubling), merging neighbours,
//! whenever there would be more than [`MAX_BUCKETS`]. Each width is a
//! multiple of the one before (at most 5 ×), and bucket edges are multiples
//! of the width since the epoch, so a log of any span gets between 60 and
//! 300 buckets with round edges: a 60-second run 300 buckets of 200 ms, a
//! week 168 of an hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_upload_runtime::metrics::{ExecutionType, Histogram, UploadRecord};

/// The bucket widths, milliseconds; past the last, widths double.
pub(crate) const WIDTHS: [u64; 17] = [
    10, 20, 100, 200, 1_000, 2_000, 10_000, 30_000, 60_000, 120_000, 600_000, 1_800_000, 3_600_000,
    7_200_000, 21_600_000, 43_200_000, 86_400_000,
];
/// At most this many buckets; after a widening (at most 5 ×) at least 60.
pub(crate) const MAX_BUCKETS: usize = 300;

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
    /// Start of the first bucket, milliseconds since the epoch; `None`
    /// before the first record.
    origin: Option<u64>,
    /// Bucket width in milliseconds.
    width: u64,
    buckets: Vec<Bucket>,
}

fn epoch_ms(ts: SystemTime) -> u64 {
    u64::try_from(
        ts.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// The width after `width` on the ladder.
fn wider(width: u64) -> u64 {
    WIDTHS
        .iter()
        .copied()
        .find(|&w| w > width)
        .unwrap_or(width.saturating_mul(2))
}

impl Timeline {
    /// Counts `record` in the bucket of its time.
    pub(crate) fn record(&mut self, record: &UploadRecord) {
        let slot = self.slot(epoch_ms(record.ts));
        self.buckets[slot].record(record);
    }

    /// The index of the bucket holding `ms`, creating buckets (and
    /// widening them) as needed.
    fn slot(&mut self, ms: u64) -> usize {
        let origin = if let Some(origin) = self.origin {
            origin
        } else {
            self.width = WIDTHS[0];
            let origin = ms - ms % self.width;
            self.origin = Some(origin);
            origin
        };
        if ms < origin {
            // An earlier record (another instance's log, or lines written
            // out of order): prepend whole buckets, keeping the alignment,
            // once they are wide enough for the span to fit.
            let missing = (origin - ms).div_ceil(self.width);
            let fits = usize::try_from(missing)
                .ok()
                .filter(|&m| m + self.buckets.len() <= MAX_BUCKETS);
            let Some(missing_len) = fits else {
                self.widen();
                return self.slot(ms);
            };
            self.buckets.splice(
                0..0,
                std::iter::repeat_with(Bucket::default).take(missing_len),
            );
            self.origin = Some(origin - missing * self.width);
            return self.slot(ms);
        }
        let index = usize::try_from((ms - origin) / self.width).unwrap_or(usize::MAX);
        if index >= MAX_BUCKETS {
            self.widen();
            return self.slot(ms);
        }
        if index >= self.buckets.len() {
            self.buckets.resize_with(index + 1, Bucket::default);
        }
        index
    }

    /// Moves to the next width of the ladder, merging neighbours. The
    /// origin moves to a multiple of the new width so that bucket edges
    /// stay round.
    fn widen(&mut self) {
        let Some(origin) = self.origin else { return };
        let width = wider(self.width);
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
        Duration::from_millis(self.width)
    }

    /// Each bucket with its start time, in seconds since the epoch.
    #[allow(clippy::cast_precision_loss)] // ms since the epoch: far below 2^52
    pub(crate) fn buckets(&self) -> impl Iterator<Item = (f64, &Bucket)> {
        let origin = self.origin.unwrap_or(0);
        let width = self.width;
        self.buckets
            .iter()
            .enumerate()
            .map(move |(i, b)| ((origin + i as u64 * width) as f64 / 1000.0, b))
    }

    /// `[first bucket's start, last bucket's end)` in seconds since the epoch.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn span(&self) -> Option<(f64, f64)> {
        let origin = self.origin?;
        let end = origin + self.buckets.len() as u64 * self.width;
        Some((origin as f64 / 1000.0, end as f64 / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, execution_type: ExecutionType, success: bool) -> UploadRecord {
        let mut record = UploadRecord::new("s", execution_type, success, 10.0, 1);
        record.ts = UNIX_EPOCH + Duration::from_millis(ms);
        record
    }

    #[test]
    fn the_ladder_widens_by_whole_multiples() {
        for pair in WIDTHS.windows(2) {
            assert_eq!(pair[1] % pair[0], 0, "{pair:?}");
            assert!(pair[1] / pair[0] <= 5, "{pair:?}");
        }
    }

    #[test]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn any_span_gets_between_60_and_300_round_buckets() {
        for span_ms in [
            2_000,
            60_000,
            130_000,
            3_600_000,
            86_400_000,
            7 * 86_400_000,
        ] {
            let mut timeline = Timeline::default();
            let start = 1_795_000_000_123;
            for i in 0..2000u64 {
                timeline.record(&at(start + span_ms * i / 2000, ExecutionType::Async, true));
            }
            let buckets = timeline.buckets().count();
            assert!(
                (60..=MAX_BUCKETS).contains(&buckets),
                "{span_ms} ms: {buckets}"
            );
            let width = u64::try_from(timeline.width().as_millis()).unwrap();
            assert!(WIDTHS.contains(&width), "{width}");
            let (first, _) = timeline.span().unwrap();
            assert_eq!((first * 1000.0).round() as u64 % width, 0, "round edges");
            let calls: u64 = timeline.buckets().map(|(_, b)| b.calls[1]).sum();
            assert_eq!(calls, 2000);
        }
        // A 60-second run: 200 ms buckets.
        let mut timeline = Timeline::default();
        for i in 0..600 {
            timeline.record(&at(1_000_000 + i * 100, ExecutionType::Sync, true));
        }
        assert_eq!(timeline.width(), Duration::from_millis(200));
    }

    #[test]
    fn earlier_records_prepend_buckets() {
        let mut timeline = Timeline::default();
        timeline.record(&at(600_000, ExecutionType::Async, true));
        timeline.record(&at(59_000, ExecutionType::SyncFallback, true));
        timeline.record(&at(620_000, ExecutionType::Async, false));
        let buckets: Vec<_> = timeline.buckets().collect();
        assert!(buckets.len() <= MAX_BUCKETS);
        assert_eq!(buckets[0].1.calls[2], 1, "{:?}", timeline.span());
        let rates: Vec<f64> = buckets
            .iter()
            .filter_map(|(_, b)| b.success_rate())
            .collect();
        assert_eq!(rates, [0.0, 1.0, 0.0], "the fallback, then 600 s and 620 s");
        assert_eq!(buckets[0].1.success_rate(), Some(0.0));
    }
}
