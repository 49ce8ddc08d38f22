//! The in-memory aggregator: counters and a latency histogram per site and
//! execution type. Memory is fixed per site whatever the number of calls:
//! no record is kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use super::histogram::{AtomicHistogram, Histogram};
use super::sized::{AtomicSized, Sized};
use super::summary::{Comparison, Summary};
use super::{ExecutionType, MetricsSink, UploadRecord};

/// Counters of many sites.
///
/// The process-wide one ([`global`]) receives every call; build others to
/// aggregate records of your own (e.g. read back from a log).
///
/// ```
/// use async_upload::metrics::{Aggregator, ExecutionType, MetricsSink, UploadRecord};
///
/// let aggregator = Aggregator::new();
/// aggregator.record(&UploadRecord::new("upload", ExecutionType::Async, true, 20.0, 1));
/// aggregator.record(&UploadRecord::new("upload", ExecutionType::Async, false, 40.0, 3));
/// let summary = aggregator.summary("upload", ExecutionType::Async);
/// assert_eq!(summary.count, 2);
/// assert_eq!(summary.success_rate, 0.5);
/// ```
#[derive(Default)]
pub struct Aggregator {
    sites: RwLock<HashMap<String, Arc<SiteStats>>>,
}

static GLOBAL: LazyLock<Aggregator> = LazyLock::new(Aggregator::new);

/// The aggregator every call of every site reports to.
#[must_use]
pub fn global() -> &'static Aggregator {
    &GLOBAL
}

impl Aggregator {
    /// An empty aggregator.
    #[must_use]
    pub fn new() -> Self {
        Aggregator::default()
    }

    /// The counters of `site`, created empty on first use.
    pub fn site(&self, site: &str) -> Arc<SiteStats> {
        if let Some(stats) = self
            .sites
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(site)
        {
            return Arc::clone(stats);
        }
        let mut sites = self.sites.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            sites
                .entry(site.to_owned())
                .or_insert_with(|| Arc::new(SiteStats::new(site))),
        )
    }

    /// The names of all sites seen, sorted.
    #[must_use]
    pub fn sites(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .sites
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// A copy of one site's counters, `None` if the site was never seen.
    #[must_use]
    pub fn snapshot(&self, site: &str) -> Option<SiteSnapshot> {
        let stats = self
            .sites
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(site)
            .cloned();
        stats.map(|stats| stats.snapshot())
    }

    /// The summary of one site and execution type (all zero if never seen).
    #[must_use]
    pub fn summary(&self, site: &str, execution_type: ExecutionType) -> Summary {
        self.snapshot(site)
            .unwrap_or_else(|| SiteSnapshot::empty(site))
            .summary(execution_type)
    }

    /// Async against sync latency at one site.
    #[must_use]
    pub fn comparison(&self, site: &str) -> Comparison {
        self.snapshot(site)
            .unwrap_or_else(|| SiteSnapshot::empty(site))
            .comparison()
    }
}

impl core::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Aggregator")
            .field("sites", &self.sites())
            .finish()
    }
}

impl MetricsSink for Aggregator {
    fn record(&self, record: &UploadRecord) {
        self.site(&record.site).record(record);
    }
}

/// Live counters of one site, one set per execution type.
pub struct SiteStats {
    name: String,
    paths: [PathStats; 3],
    /// Latency per size class of the sync and async paths (the judge
    /// compares like with like).
    sized: [AtomicSized; 2],
}

/// The slot of `execution_type` among the size-classed paths: the two whose
/// latencies the judge compares (a fallback paid for both paths).
fn sized_slot(execution_type: ExecutionType) -> Option<usize> {
    match execution_type {
        ExecutionType::Sync => Some(0),
        ExecutionType::Async => Some(1),
        ExecutionType::SyncFallback => None,
    }
}

impl SiteStats {
    fn new(name: &str) -> Self {
        SiteStats {
            name: name.to_owned(),
            paths: [PathStats::new(), PathStats::new(), PathStats::new()],
            sized: [AtomicSized::new(), AtomicSized::new()],
        }
    }

    /// Counts one record.
    pub fn record(&self, record: &UploadRecord) {
        self.paths[record.execution_type.index()].record(record);
        if let Some(slot) = sized_slot(record.execution_type) {
            self.sized[slot].record(record.bytes, record.duration_micros());
        }
    }

    /// A consistent-enough copy: each counter is read once; calls finishing
    /// meanwhile may be counted in some counters and not yet in others.
    #[must_use]
    pub fn snapshot(&self) -> SiteSnapshot {
        SiteSnapshot {
            site: self.name.clone(),
            paths: [
                self.paths[0].snapshot(),
                self.paths[1].snapshot(),
                self.paths[2].snapshot(),
            ],
            sized: [self.sized[0].snapshot(), self.sized[1].snapshot()],
        }
    }
}

impl core::fmt::Debug for SiteStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SiteStats")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Counters of one execution type at one site.
struct PathStats {
    successes: AtomicU64,
    failures: AtomicU64,
    cancelled: AtomicU64,
    critical: AtomicU64,
    attempts: AtomicU64,
    bytes: AtomicU64,
    duration_sum_us: AtomicU64,
    max_us: AtomicU64,
    latency: AtomicHistogram,
}

impl PathStats {
    fn new() -> Self {
        PathStats {
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            critical: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            duration_sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            latency: AtomicHistogram::new(),
        }
    }

    fn record(&self, record: &UploadRecord) {
        let tally = Tally::of(record);
        let add = |counter: &AtomicU64, n: u64| {
            // Skipping zero adds keeps uncontended calls off shared cache lines.
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(
            match tally.outcome {
                Outcome::Success => &self.successes,
                Outcome::Failure => &self.failures,
                Outcome::Cancelled => &self.cancelled,
            },
            1,
        );
        add(&self.critical, tally.critical);
        add(&self.attempts, tally.attempts);
        add(&self.bytes, tally.bytes);
        add(&self.duration_sum_us, tally.micros);
        // Most calls are not the slowest: a plain load avoids a contended RMW.
        if tally.micros > self.max_us.load(Ordering::Relaxed) {
            self.max_us.fetch_max(tally.micros, Ordering::Relaxed);
        }
        self.latency.record(tally.micros);
    }

    fn snapshot(&self) -> PathSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let successes = load(&self.successes);
        let failures = load(&self.failures);
        let cancelled = load(&self.cancelled);
        PathSnapshot {
            count: successes + failures + cancelled,
            successes,
            failures,
            cancelled,
            critical: load(&self.critical),
            attempts: load(&self.attempts),
            bytes: load(&self.bytes),
            duration_sum_us: load(&self.duration_sum_us),
            max_us: load(&self.max_us),
            latency: self.latency.snapshot(),
        }
    }
}

/// A copy of one site's counters at one moment.
///
/// Two snapshots subtract ([`SiteSnapshot::since`]) to the calls between
/// them: the sliding windows of the rollout controller.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteSnapshot {
    /// The site.
    pub site: String,
    paths: [PathSnapshot; 3],
    /// The sync and async latencies per size class; empty for counters that
    /// did not keep them (a fleet's merged numbers).
    sized: [Sized; 2],
}

impl SiteSnapshot {
    /// A snapshot with no calls.
    #[must_use]
    pub fn empty(site: &str) -> Self {
        SiteSnapshot {
            site: site.to_owned(),
            paths: Default::default(),
            sized: Default::default(),
        }
    }

    /// The counters of every execution type, in [`ExecutionType::ALL`]'s order.
    #[cfg(feature = "redis")]
    pub(crate) fn paths(&self) -> &[PathSnapshot; 3] {
        &self.paths
    }

    /// A snapshot of `paths`, in [`ExecutionType::ALL`]'s order (the fleet merges replicas').
    #[cfg(feature = "redis")]
    pub(crate) fn from_paths(site: &str, paths: [PathSnapshot; 3]) -> Self {
        SiteSnapshot {
            site: site.to_owned(),
            paths,
            sized: Default::default(),
        }
    }

    /// The counters of one execution type.
    #[must_use]
    pub fn path(&self, execution_type: ExecutionType) -> &PathSnapshot {
        &self.paths[execution_type.index()]
    }

    /// Counts one record (for aggregating records read back from a log).
    pub fn record(&mut self, record: &UploadRecord) {
        self.paths[record.execution_type.index()].record(record);
        if let Some(slot) = sized_slot(record.execution_type) {
            self.sized[slot].record(record.bytes, record.duration_micros());
        }
    }

    /// The latency per size class of `execution_type` (sync or async; a
    /// fallback has none), for the calls that declared a size.
    pub(crate) fn sized(&self, execution_type: ExecutionType) -> Option<&Sized> {
        sized_slot(execution_type).map(|slot| &self.sized[slot])
    }

    /// The calls made after `earlier`, a snapshot of the same site.
    #[must_use]
    pub fn since(&self, earlier: &SiteSnapshot) -> SiteSnapshot {
        SiteSnapshot {
            site: self.site.clone(),
            paths: [0, 1, 2].map(|i| self.paths[i].since(&earlier.paths[i])),
            sized: [0, 1].map(|i| self.sized[i].since(&earlier.sized[i])),
        }
    }

    /// Adds `other`'s counters (another replica's) to this one's.
    #[cfg(feature = "redis")]
    pub(crate) fn merge(&mut self, other: &SiteSnapshot) {
        for (mine, theirs) in self.paths.iter_mut().zip(&other.paths) {
            mine.merge(theirs);
        }
        for (mine, theirs) in self.sized.iter_mut().zip(&other.sized) {
            mine.merge(theirs);
        }
    }

    /// The summary of one execution type.
    #[must_use]
    pub fn summary(&self, execution_type: ExecutionType) -> Summary {
        Summary::new(&self.site, execution_type, self.path(execution_type))
    }

    /// Async against sync latency.
    #[must_use]
    pub fn comparison(&self) -> Comparison {
        Comparison::new(
            &self.site,
            self.path(ExecutionType::Async),
            self.path(ExecutionType::Sync),
        )
    }
}

/// Counters of one execution type at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathSnapshot {
    /// Calls: successes + failures + cancelled.
    pub count: u64,
    /// Calls whose caller got `Ok`.
    pub successes: u64,
    /// Calls whose caller got `Err` (or a propagated panic).
    pub failures: u64,
    /// Calls whose future was dropped before they finished.
    pub cancelled: u64,
    /// Calls with a critical error (a panic in the async body).
    pub critical: u64,
    /// Async attempts made.
    pub attempts: u64,
    /// Bytes of calls that declared a size.
    pub bytes: u64,
    /// Sum of call durations, in microseconds.
    pub duration_sum_us: u64,
    /// Longest call, in microseconds (over the whole life of the counters).
    pub max_us: u64,
    /// Distribution of call durations.
    pub latency: Histogram,
}

impl PathSnapshot {
    fn record(&mut self, record: &UploadRecord) {
        let tally = Tally::of(record);
        self.count += 1;
        *match tally.outcome {
            Outcome::Success => &mut self.successes,
            Outcome::Failure => &mut self.failures,
            Outcome::Cancelled => &mut self.cancelled,
        } += 1;
        self.critical += tally.critical;
        self.attempts += tally.attempts;
        self.bytes += tally.bytes;
        self.duration_sum_us += tally.micros;
        self.max_us = self.max_us.max(tally.micros);
        self.latency.record(tally.micros);
    }

    #[cfg(feature = "redis")]
    fn merge(&mut self, other: &PathSnapshot) {
        self.count += other.count;
        self.successes += other.successes;
        self.failures += other.failures;
        self.cancelled += other.cancelled;
        self.critical += other.critical;
        self.attempts += other.attempts;
        self.bytes += other.bytes;
        self.duration_sum_us += other.duration_sum_us;
        self.max_us = self.max_us.max(other.max_us);
        self.latency.merge(&other.latency);
    }

    fn since(&self, earlier: &PathSnapshot) -> PathSnapshot {
        let latency = self.latency.since(&earlier.latency);
        PathSnapshot {
            count: self.count.saturating_sub(earlier.count),
            successes: self.successes.saturating_sub(earlier.successes),
            failures: self.failures.saturating_sub(earlier.failures),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
            critical: self.critical.saturating_sub(earlier.critical),
            attempts: self.attempts.saturating_sub(earlier.attempts),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            duration_sum_us: self.duration_sum_us.saturating_sub(earlier.duration_sum_us),
            // The exact maximum of a window is not kept; its histogram bounds it.
            max_us: latency
                .upper_bound()
                .map_or(0, |bound| bound.min(self.max_us)),
            latency,
        }
    }
}

/// How a call ended, as the counters split them.
#[derive(Clone, Copy)]
enum Outcome {
    Success,
    Failure,
    Cancelled,
}

/// What one record adds to the counters of its execution type: the one
/// definition shared by the live counters and by snapshots built from
/// records read back from a log.
struct Tally {
    outcome: Outcome,
    critical: u64,
    attempts: u64,
    bytes: u64,
    micros: u64,
}

impl Tally {
    fn of(record: &UploadRecord) -> Self {
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
            micros: record.duration_micros(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RuntimeFault;

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

    #[cfg(feature = "redis")]
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
