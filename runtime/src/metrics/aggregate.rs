//! The in-memory aggregator: counters and a latency histogram per site and
//! execution type. Memory is fixed per site whatever the number of calls:
//! no record is kept.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use super::path::{PathSnapshot, PathStats};
use super::record::{ExecutionType, UploadRecord};
use super::sink::MetricsSink;
use super::sized::{AtomicSized, SizeClasses};
use super::summary::{Comparison, Summary};

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

/// A copy of one site's counters at one moment.
///
/// Two snapshots subtract ([`SiteSnapshot::since`]) to the calls between
/// them: the sliding windows of the rollout controller.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SiteSnapshot {
    /// The site.
    pub site: String,
    paths: [PathSnapshot; 3],
    /// The sync and async latencies per size class; empty for counters that
    /// did not keep them (a fleet's merged numbers).
    sized: [SizeClasses; 2],
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
    #[must_use]
    pub fn paths(&self) -> &[PathSnapshot; 3] {
        &self.paths
    }

    /// A snapshot of `paths`, in [`ExecutionType::ALL`]'s order, without
    /// latency per size class (a fleet's replicas report paths only).
    #[must_use]
    pub fn from_paths(site: &str, paths: [PathSnapshot; 3]) -> Self {
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
    #[must_use]
    pub fn sized(&self, execution_type: ExecutionType) -> Option<&SizeClasses> {
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

    /// Adds `other`'s counters (another replica's, another process's) to
    /// this one's.
    pub fn merge(&mut self, other: &SiteSnapshot) {
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
