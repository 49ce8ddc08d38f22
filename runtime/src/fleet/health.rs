//! The fleet's merged health: the sum of every live replica's cumulative
//! counters, kept monotonic when replicas come and go.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::report::ReplicaReport;
use crate::metrics::{ExecutionType, SiteSnapshot};

/// The replicas' reports as last fetched, plus what departed replicas had
/// counted: a controller takes differences of snapshots, so a replica that
/// drops out must not make the fleet's totals go down.
#[derive(Debug, Default)]
pub(crate) struct HealthBook {
    live: BTreeMap<String, ReplicaReport>,
    retired: HashMap<String, SiteSnapshot>,
    fetched_at: Option<Instant>,
}

impl HealthBook {
    /// Takes the live replicas' reports fetched at `now`.
    pub(crate) fn update(&mut self, reports: Vec<ReplicaReport>, now: Instant) {
        let mut next = BTreeMap::new();
        for report in reports {
            if let Some(old) = self.live.remove(&report.instance) {
                if restarted(&old, &report) {
                    self.retire(&old);
                }
            }
            next.insert(report.instance.clone(), report);
        }
        for (_, departed) in std::mem::take(&mut self.live) {
            self.retire(&departed);
        }
        self.live = next;
        self.fetched_at = Some(now);
    }

    fn retire(&mut self, report: &ReplicaReport) {
        for (site, snapshot) in &report.sites {
            self.retired
                .entry(site.clone())
                .or_insert_with(|| SiteSnapshot::empty(site))
                .merge(snapshot);
        }
    }

    /// The merged counters of `site`, or `None` when the last fetch is older
    /// than `fresh_for` or no replica is live: no stage is promoted without
    /// fresh fleet data.
    pub(crate) fn snapshot(
        &self,
        site: &str,
        now: Instant,
        fresh_for: Duration,
    ) -> Option<SiteSnapshot> {
        let fetched = self.fetched_at?;
        if now.saturating_duration_since(fetched) > fresh_for || self.live.is_empty() {
            return None;
        }
        let mut total = self
            .retired
            .get(site)
            .cloned()
            .unwrap_or_else(|| SiteSnapshot::empty(site));
        for report in self.live.values() {
            if let Some(snapshot) = report.sites.get(site) {
                total.merge(snapshot);
            }
        }
        Some(total)
    }

    /// The instances in the last fetch.
    #[cfg(test)]
    pub(crate) fn live(&self) -> impl Iterator<Item = &str> {
        self.live.keys().map(String::as_str)
    }
}

/// A replica that counts fewer calls than before restarted with the same id.
fn restarted(old: &ReplicaReport, new: &ReplicaReport) -> bool {
    old.sites.iter().any(|(site, before)| {
        let after = new.sites.get(site);
        ExecutionType::ALL
            .into_iter()
            .any(|kind| after.map_or(0, |a| a.path(kind).count) < before.path(kind).count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::UploadRecord;

    fn report(instance: &str, async_calls: usize) -> ReplicaReport {
        let mut snapshot = SiteSnapshot::empty("up");
        for _ in 0..async_calls {
            snapshot.record(&UploadRecord::new("up", ExecutionType::Async, true, 5.0, 1));
        }
        ReplicaReport {
            instance: instance.into(),
            at_ms: 0,
            applied_version: 1,
            leads: Vec::new(),
            sites: BTreeMap::from([("up".to_owned(), snapshot)]),
        }
    }

    fn async_count(book: &HealthBook, now: Instant) -> Option<u64> {
        book.snapshot("up", now, Duration::from_secs(3))
            .map(|s| s.path(ExecutionType::Async).count)
    }

    #[test]
    fn live_replicas_are_summed() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", 2), report("b", 3)], now);
        assert_eq!(async_count(&book, now), Some(5));
    }

    #[test]
    fn a_departed_replica_drops_out_but_its_counts_stay() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", 2), report("b", 3)], now);
        book.update(vec![report("a", 4)], now);
        assert_eq!(book.live().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(
            async_count(&book, now),
            Some(7),
            "monotonic: b's 3 calls are kept"
        );
    }

    #[test]
    fn a_restarted_replica_does_not_lower_the_totals() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", 5)], now);
        book.update(vec![report("a", 1)], now);
        assert_eq!(async_count(&book, now), Some(6));
    }

    #[test]
    fn stale_or_empty_data_is_none() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        assert_eq!(async_count(&book, now), None, "never fetched");
        book.update(vec![report("a", 1)], now);
        assert_eq!(
            async_count(&book, now + Duration::from_secs(10)),
            None,
            "stale"
        );
        book.update(Vec::new(), now);
        assert_eq!(async_count(&book, now), None, "no live replica");
    }
}
