//! The counters of one execution type at one site, defined once: the public
//! [`PathSnapshot`], its live twin `PathStats` (one atomic per counter, what
//! every call adds to) and `Tally` (what one record adds).
//!
//! A counter is one line of the lists in `path_counters!`'s invocation below,
//! plus what a record adds to it in `Tally::of`: it is then counted live and
//! from records, snapshot, windowed ([`PathSnapshot::since`]), merged across a
//! fleet's replicas and sent in their reports (serde's derive writes the wire
//! form). A counter added to a report must carry
//! `#[cfg_attr(feature = "serde", serde(default))]` in the list, so that
//! reports of replicas that do not send it still read; replicas that do not
//! know it skip it.

use std::sync::atomic::{AtomicU64, Ordering};

use super::histogram::{AtomicHistogram, Histogram};
use super::record::UploadRecord;

/// Declares [`PathSnapshot`], `PathStats`, `Tally` and `Outcome` from two
/// lists, with their arithmetic: the outcomes (each call counts in exactly
/// one; their sum is `count`, which the live counters do not store) and the
/// other sums. `count`, `max_us` (merged by maximum, a window's bounded by
/// its histogram) and `latency` have their own rules, written once here.
///
/// A macro because no derive can write this: serde's derives the wire form,
/// but the atomic twin and the field-by-field sums and differences of named
/// fields have no derive in std, and a derive crate would be a new dependency
/// that still would not know the special fields.
macro_rules! path_counters {
    (
        outcomes { $($(#[$outcome_doc:meta])* $outcome:ident: $Outcome:ident,)+ }
        sums { $($(#[$sum_doc:meta])* $sum:ident,)+ }
    ) => {
        /// Counters of one execution type at one moment.
        ///
        /// With the `serde` feature it is serialisable: the form of a path in a
        /// fleet's replica reports, the histogram as `[bucket index, count]` pairs.
        #[derive(Clone, Debug, Default, PartialEq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub struct PathSnapshot {
            /// Calls: successes + failures + cancelled.
            pub count: u64,
            $($(#[$outcome_doc])* pub $outcome: u64,)+
            $($(#[$sum_doc])* pub $sum: u64,)+
            /// Longest call, in microseconds (over the whole life of the counters).
            pub max_us: u64,
            /// Distribution of call durations.
            #[cfg_attr(feature = "serde", serde(with = "crate::metrics::histogram::buckets"))]
            pub latency: Histogram,
        }

        /// Counters of one execution type at one site.
        pub(super) struct PathStats {
            $($outcome: AtomicU64,)+
            $($sum: AtomicU64,)+
            max_us: AtomicU64,
            latency: AtomicHistogram,
        }

        /// How a call ended, as the counters split them.
        #[derive(Clone, Copy)]
        enum Outcome {
            $($Outcome,)+
        }

        /// What one record adds to the counters of its execution type: the
        /// one definition shared by the live counters and by snapshots built
        /// from records read back from a log.
        struct Tally {
            outcome: Outcome,
            $($sum: u64,)+
            /// The call's duration (its maximum and latency bucket).
            micros: u64,
        }

        impl PathStats {
            pub(super) fn new() -> Self {
                PathStats {
                    $($outcome: AtomicU64::new(0),)+
                    $($sum: AtomicU64::new(0),)+
                    max_us: AtomicU64::new(0),
                    latency: AtomicHistogram::new(),
                }
            }

            // The hot path: inlined into `SiteStats::record` as when both
            // lived in one module (another codegen unit would make it a call).
            #[inline]
            pub(super) fn record(&self, record: &UploadRecord) {
                let tally = Tally::of(record);
                let outcome = match tally.outcome {
                    $(Outcome::$Outcome => &self.$outcome,)+
                };
                outcome.fetch_add(1, Ordering::Relaxed);
                $(
                    // Skipping zero adds keeps uncontended calls off shared cache lines.
                    if tally.$sum > 0 {
                        self.$sum.fetch_add(tally.$sum, Ordering::Relaxed);
                    }
                )+
                // Most calls are not the slowest: a plain load avoids a contended RMW.
                if tally.micros > self.max_us.load(Ordering::Relaxed) {
                    self.max_us.fetch_max(tally.micros, Ordering::Relaxed);
                }
                self.latency.record(tally.micros);
            }

            pub(super) fn snapshot(&self) -> PathSnapshot {
                let mut snapshot = PathSnapshot {
                    count: 0,
                    $($outcome: self.$outcome.load(Ordering::Relaxed),)+
                    $($sum: self.$sum.load(Ordering::Relaxed),)+
                    max_us: self.max_us.load(Ordering::Relaxed),
                    latency: self.latency.snapshot(),
                };
                snapshot.count = 0 $(+ snapshot.$outcome)+;
                snapshot
            }
        }

        impl PathSnapshot {
            pub(super) fn record(&mut self, record: &UploadRecord) {
                let tally = Tally::of(record);
                self.count += 1;
                *match tally.outcome {
                    $(Outcome::$Outcome => &mut self.$outcome,)+
                } += 1;
                $(self.$sum += tally.$sum;)+
                self.max_us = self.max_us.max(tally.micros);
                self.latency.record(tally.micros);
            }

            /// Adds `other`'s counters (another replica's, another
            /// process's) to these; the maximum is the larger one.
            pub fn merge(&mut self, other: &PathSnapshot) {
                self.count += other.count;
                $(self.$outcome += other.$outcome;)+
                $(self.$sum += other.$sum;)+
                self.max_us = self.max_us.max(other.max_us);
                self.latency.merge(&other.latency);
            }

            /// The calls counted after `earlier`, a snapshot of the same counters.
            pub(super) fn since(&self, earlier: &PathSnapshot) -> PathSnapshot {
                let latency = self.latency.since(&earlier.latency);
                PathSnapshot {
                    count: self.count.saturating_sub(earlier.count),
                    $($outcome: self.$outcome.saturating_sub(earlier.$outcome),)+
                    $($sum: self.$sum.saturating_sub(earlier.$sum),)+
                    // The exact maximum of a window is not kept; its histogram bounds it.
                    max_us: latency
                        .upper_bound()
                        .map_or(0, |bound| bound.min(self.max_us)),
                    latency,
                }
            }
        }
    };
}

path_counters! {
    outcomes {
        /// Calls whose caller got `Ok`.
        successes: Success,
        /// Calls whose caller got `Err` (or a propagated panic).
        failures: Failure,
        /// Calls whose future was dropped before they finished.
        cancelled: Cancelled,
    }
    sums {
        /// Calls with a critical error (a panic in the async body).
        critical,
        /// Async attempts made.
        attempts,
        /// Bytes of calls that declared a size.
        bytes,
        /// Sum of call durations, in microseconds.
        duration_sum_us,
    }
}

impl Tally {
    fn of(record: &UploadRecord) -> Self {
        let micros = record.duration_micros();
        Tally {
            outcome: if record.success {
                Outcome::Success
            } else if record.is_cancelled() {
                Outcome::Cancelled
            } else {
                Outcome::Failure
            },
            critical: u64::from(record.is_critical()),
            attempts: u64::from(record.attempts),
            bytes: record.bytes.unwrap_or(0),
            duration_sum_us: micros,
            micros,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record::{ExecutionType, RuntimeFault};

    /// Calls that move every counter: a success of 3 attempts with a size,
    /// a failure, a cancelled call, a critical one.
    fn calls() -> Vec<UploadRecord> {
        let mut sized = UploadRecord::new("up", ExecutionType::Async, true, 12.0, 3);
        sized.bytes = Some(4096);
        vec![
            sized,
            UploadRecord::new("up", ExecutionType::Async, false, 40.5, 2),
            UploadRecord::new("up", ExecutionType::Async, false, 0.2, 1)
                .with_fault(RuntimeFault::Cancelled),
            UploadRecord::new("up", ExecutionType::Async, false, 7.0, 1)
                .with_fault(RuntimeFault::Panic),
        ]
    }

    fn counters(p: &PathSnapshot) -> [u64; 9] {
        [
            p.count,
            p.successes,
            p.failures,
            p.cancelled,
            p.critical,
            p.attempts,
            p.bytes,
            p.duration_sum_us,
            p.max_us,
        ]
    }

    #[test]
    fn live_counters_and_snapshots_count_a_record_alike() {
        let live = PathStats::new();
        let mut snapshot = PathSnapshot::default();
        for call in calls() {
            live.record(&call);
            snapshot.record(&call);
        }
        assert_eq!(live.snapshot(), snapshot);
        assert_eq!(
            counters(&snapshot),
            [4, 1, 2, 1, 1, 7, 4096, 59_700, 40_500]
        );
        assert_eq!(snapshot.latency.len(), 4);
    }

    #[test]
    fn a_window_subtracts_and_bounds_its_maximum_by_its_histogram() {
        let mut before = PathSnapshot::default();
        let calls = calls();
        before.record(&calls[1]);
        let mut after = before.clone();
        for call in [&calls[0], &calls[2], &calls[3]] {
            after.record(call);
        }
        let window = after.since(&before);
        // 12 ms is the window's longest call; its bucket ends at 12_031 µs.
        assert_eq!(counters(&window), [3, 1, 1, 1, 1, 5, 4096, 19_200, 12_031]);
        assert_eq!(window.latency, after.latency.since(&before.latency));
        // Over the whole life, the bound is the true maximum.
        assert_eq!(after.since(&PathSnapshot::default()), after);
        // An earlier snapshot larger than the later one (a counter reset)
        // saturates at zero.
        assert_eq!(counters(&before.since(&after)), [0; 9]);
        assert_eq!(counters(&after.since(&after)), [0; 9]);
    }

    #[test]
    fn merging_adds_counters_and_keeps_the_larger_maximum() {
        let calls = calls();
        let (mut a, mut b) = (PathSnapshot::default(), PathSnapshot::default());
        a.record(&calls[0]);
        a.record(&calls[3]);
        b.record(&calls[1]);
        b.record(&calls[2]);
        let mut both = PathSnapshot::default();
        for call in &calls {
            both.record(call);
        }
        a.merge(&b);
        assert_eq!(a, both);
    }
}
