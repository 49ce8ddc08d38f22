//! How long recent successful async attempts took, for the probe timeout
//! of a site without a `probe`: the half-open probe is a real call, and it
//! should cost its caller a little more than a healthy attempt, not a full
//! timeout.
//!
//! A histogram of half-octave buckets (two per power of two, split at
//! 1.5 × 2^k, from 1 µs up) of atomic counters: a success costs two relaxed
//! `fetch_add`s and no allocation; the counts halve every [`DECAY`] samples,
//! so the quantile follows the recent successes. A bucket's upper bound
//! stands for its samples, so the p99 read is at most 1.5 × the true one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Half-octave buckets from 1 µs to about 2^31 µs (36 minutes).
const BUCKETS: usize = 64;
/// The counts halve each time this many samples arrived.
const DECAY: u32 = 512;

/// The probe timeout is this multiple of the recent p99 ...
const P99_FACTOR: u32 = 4;
/// ... and never below this.
pub(crate) const PROBE_TIMEOUT_FLOOR: Duration = Duration::from_millis(50);

/// Recent success durations (see the module docs).
#[derive(Debug)]
pub(crate) struct Latency {
    buckets: [AtomicU32; BUCKETS],
    samples: AtomicU32,
}

/// The bucket of `micros`: two per power of two.
fn bucket(micros: u64) -> usize {
    let micros = micros.max(1);
    let log2 = 63 - micros.leading_zeros() as usize;
    let half = usize::from(log2 > 0 && micros >> (log2 - 1) & 1 == 1);
    (2 * log2 + half).min(BUCKETS - 1)
}

/// The upper bound of bucket `index`, in microseconds.
fn upper_micros(index: usize) -> u64 {
    if index < 2 {
        // 1 µs has no half bucket: bucket 0 is [1, 2).
        return 2;
    }
    let log2 = index / 2;
    let base = 1_u64 << log2;
    if index % 2 == 0 {
        // [2^k, 1.5 × 2^k)
        base + base / 2
    } else {
        2 * base
    }
}

impl Latency {
    pub(crate) const fn new() -> Self {
        Latency {
            buckets: [const { AtomicU32::new(0) }; BUCKETS],
            samples: AtomicU32::new(0),
        }
    }

    /// A successful attempt took `took`.
    pub(crate) fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        if self.samples.fetch_add(1, Ordering::Relaxed) + 1 == DECAY {
            // The one call that completed the period halves every count.
            for count in &self.buckets {
                let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n / 2));
            }
            self.samples.fetch_sub(DECAY / 2, Ordering::Relaxed);
        }
    }

    /// The p99 of the recent successes, if there are any.
    pub(crate) fn p99(&self) -> Option<Duration> {
        let counts: [u32; BUCKETS] =
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        let total: u64 = counts.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        // The smallest bucket with at least 99 % of the samples at or below it.
        let rank = (total * 99).div_ceil(100);
        let mut seen = 0;
        let index = counts
            .iter()
            .position(|&n| {
                seen += u64::from(n);
                seen >= rank
            })
            .unwrap_or(BUCKETS - 1);
        Some(Duration::from_micros(upper_micros(index)))
    }

    /// The timeout of a half-open probe that is a real call:
    /// `max(4 × p99 of recent successes, 50 ms)`, capped by `timeout`;
    /// with no success seen yet, `min(timeout, 1 s)`.
    pub(crate) fn probe_timeout(&self, timeout: Duration) -> Duration {
        self.p99()
            .map_or(Duration::from_secs(1), |p99| {
                (p99 * P99_FACTOR).max(PROBE_TIMEOUT_FLOOR)
            })
            .min(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for micros in [
            1_u64,
            2,
            3,
            5,
            7,
            100,
            999,
            1500,
            4_999,
            1 << 20,
            123_456_789,
        ] {
            let index = bucket(micros);
            assert!(micros < upper_micros(index), "{micros} in {index}");
            if index > 0 {
                assert!(micros >= upper_micros(index - 1), "{micros} in {index}");
            }
        }
    }

    #[test]
    fn the_probe_timeout_follows_recent_successes() {
        let latency = Latency::new();
        let timeout = Duration::from_millis(200);
        assert_eq!(latency.probe_timeout(timeout), timeout, "no data: the cap");
        for _ in 0..1000 {
            latency.record(Duration::from_millis(2));
        }
        // 4 × p99 (2 ms, read as its bucket's 2.05 ms bound) is under the floor.
        assert_eq!(latency.probe_timeout(timeout), PROBE_TIMEOUT_FLOOR);
        for _ in 0..2000 {
            latency.record(Duration::from_millis(30));
        }
        // The decay forgot the fast ones: 4 × ~30 ms.
        let t = latency.probe_timeout(timeout);
        assert!(
            t >= Duration::from_millis(120) && t <= Duration::from_millis(200),
            "{t:?}"
        );
        for _ in 0..2000 {
            latency.record(Duration::from_millis(100));
        }
        assert_eq!(
            latency.probe_timeout(timeout),
            timeout,
            "capped by the timeout"
        );
    }
}
