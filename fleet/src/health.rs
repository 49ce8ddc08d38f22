//! The fleet's merged health: the sum of every replica run's cumulative
//! counters, each run counted once, kept monotonic when replicas come and go.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::report::ReplicaReport;
use async_upload_runtime::metrics::SiteSnapshot;

/// How long a departed run's counters are kept by name: a replica paused
/// for less than this comes back as the same run, counted once.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// How many forgotten runs are remembered as forgotten.
const FORGOTTEN_CAP: usize = 4096;

/// One run of one replica (`ReplicaReport::run`): its last report and
/// whether it is live in the last fetch.
#[derive(Debug)]
struct Run {
    report: ReplicaReport,
    /// When it dropped out of the live reports (`None`: live).
    departed: Option<Instant>,
    /// For a run that came back after it was forgotten: its counters when
    /// it came back (already in `retired`), subtracted from what it reports.
    base: Option<BTreeMap<String, SiteSnapshot>>,
}

impl Run {
    fn counted(&self, site: &str) -> Option<SiteSnapshot> {
        let now = self.report.sites.get(site)?;
        Some(match self.base.as_ref().and_then(|b| b.get(site)) {
            Some(base) => now.since(base),
            None => now.clone(),
        })
    }
}

/// What a fresh snapshot must be newer than: the last explicit clear of
/// the site's latch, in the store epoch the fleet follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Clear {
    pub(crate) epoch: Option<String>,
    pub(crate) version: u64,
}

/// Every run's last report: a controller takes differences of
/// snapshots, so a replica that drops out must not make the fleet's
/// totals go down, and one that comes back must not count twice.
#[derive(Debug, Default)]
pub(crate) struct HealthBook {
    runs: HashMap<String, Run>,
    /// Counters of runs departed long ago, folded together.
    retired: HashMap<String, SiteSnapshot>,
    /// Runs folded into `retired`, oldest first.
    forgotten: VecDeque<String>,
    forgotten_set: HashSet<String>,
    fetched_at: Option<Instant>,
}

impl HealthBook {
    /// Takes the live replicas' reports fetched at `now`.
    pub(crate) fn update(&mut self, reports: Vec<ReplicaReport>, now: Instant) {
        let mut live = HashSet::new();
        for report in reports {
            live.insert(report.run.clone());
            if let Some(run) = self.runs.get_mut(&report.run) {
                run.report = report;
                run.departed = None;
                continue;
            }
            let base = self
                .forgotten_set
                .contains(&report.run)
                .then(|| report.sites.clone());
            self.runs.insert(
                report.run.clone(),
                Run {
                    report,
                    departed: None,
                    base,
                },
            );
        }
        for (name, run) in &mut self.runs {
            if !live.contains(name) && run.departed.is_none() {
                run.departed = Some(now);
            }
        }
        self.forget_departed(now);
        self.fetched_at = Some(now);
    }

    fn forget_departed(&mut self, now: Instant) {
        let old: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, run)| {
                run.departed
                    .is_some_and(|at| now.saturating_duration_since(at) > FORGET_AFTER)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in old {
            let Some(run) = self.runs.remove(&name) else {
                continue;
            };
            for site in run.report.sites.keys() {
                if let Some(counted) = run.counted(site) {
                    self.retired
                        .entry(site.clone())
                        .or_insert_with(|| SiteSnapshot::empty(site))
                        .merge(&counted);
                }
            }
            if self.forgotten_set.insert(name.clone()) {
                self.forgotten.push_back(name);
            }
            while self.forgotten.len() > FORGOTTEN_CAP {
                if let Some(oldest) = self.forgotten.pop_front() {
                    self.forgotten_set.remove(&oldest);
                }
            }
        }
    }

    /// The merged counters of `site`, or `None` when the last fetch is older
    /// than `fresh_for`, no replica is live, or a live replica's report
    /// does not yet include `clear` (it was made before that replica
    /// applied the site's last clear, so its counters may still hold the
    /// calls that broke the stage): no stage is judged on stale data.
    pub(crate) fn snapshot(
        &self,
        site: &str,
        now: Instant,
        fresh_for: Duration,
        clear: Option<&Clear>,
    ) -> Option<SiteSnapshot> {
        let fetched = self.fetched_at?;
        let mut live = self
            .runs
            .values()
            .filter(|r| r.departed.is_none())
            .peekable();
        if now.saturating_duration_since(fetched) > fresh_for || live.peek().is_none() {
            return None;
        }
        if let Some(clear) = clear {
            let behind = |run: &&Run| {
                run.report.epoch != clear.epoch || run.report.applied_version < clear.version
            };
            if live.clone().any(|run| behind(&run)) {
                return None;
            }
        }
        let mut total = self
            .retired
            .get(site)
            .cloned()
            .unwrap_or_else(|| SiteSnapshot::empty(site));
        for counted in self.runs.values().filter_map(|run| run.counted(site)) {
            total.merge(&counted);
        }
        Some(total)
    }

    /// The instances in the last fetch.
    #[cfg(test)]
    pub(crate) fn live(&self) -> Vec<&str> {
        let mut live: Vec<&str> = self
            .runs
            .values()
            .filter(|r| r.departed.is_none())
            .map(|r| r.report.instance.as_str())
            .collect();
        live.sort_unstable();
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_upload_runtime::metrics::{ExecutionType, UploadRecord};

    fn report(instance: &str, run: &str, async_calls: usize) -> ReplicaReport {
        let mut snapshot = SiteSnapshot::empty("up");
        for _ in 0..async_calls {
            snapshot.record(&UploadRecord::new("up", ExecutionType::Async, true, 5.0, 1));
        }
        ReplicaReport {
            instance: instance.into(),
            run: run.into(),
            at_ms: 0,
            applied_version: 1,
            epoch: Some("e".into()),
            pushes: true,
            remembered: false,
            leads: Vec::new(),
            sites: BTreeMap::from([("up".to_owned(), snapshot)]),
        }
    }

    fn count(book: &HealthBook, now: Instant) -> Option<u64> {
        book.snapshot("up", now, Duration::from_secs(3), None)
            .map(|s| s.path(ExecutionType::Async).count)
    }

    #[test]
    fn live_replicas_are_summed() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", "a1", 2), report("b", "b1", 3)], now);
        assert_eq!(count(&book, now), Some(5));
    }

    #[test]
    fn a_departed_replica_drops_out_but_its_counts_stay() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", "a1", 2), report("b", "b1", 3)], now);
        book.update(vec![report("a", "a1", 4)], now);
        assert_eq!(book.live(), vec!["a"]);
        assert_eq!(
            count(&book, now),
            Some(7),
            "monotonic: b's 3 calls are kept"
        );
    }

    #[test]
    fn a_replica_that_misses_its_ttl_and_comes_back_counts_once() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", "a1", 100), report("b", "b1", 50)], now);
        // b paused past its TTL: gone from one fetch, back in the next.
        book.update(vec![report("a", "a1", 110)], now);
        book.update(vec![report("a", "a1", 120), report("b", "b1", 60)], now);
        assert_eq!(count(&book, now), Some(180), "b counted once, not 50 + 60");
    }

    #[test]
    fn a_restarted_replica_is_a_new_run_and_the_old_one_stays_counted() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", "a1", 5)], now);
        book.update(vec![report("a", "a2", 1)], now);
        assert_eq!(count(&book, now), Some(6));
    }

    #[test]
    fn a_run_back_after_it_was_forgotten_adds_only_what_it_counts_since() {
        let t0 = Instant::now();
        let mut book = HealthBook::default();
        book.update(vec![report("a", "a1", 10), report("b", "b1", 5)], t0);
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        book.update(vec![report("a", "a1", 10)], t0 + Duration::from_secs(1));
        book.update(vec![report("a", "a1", 10)], later + Duration::from_secs(1));
        assert_eq!(count(&book, later + Duration::from_secs(1)), Some(15));
        book.update(
            vec![report("a", "a1", 10), report("b", "b1", 5)],
            later + Duration::from_secs(2),
        );
        book.update(
            vec![report("a", "a1", 10), report("b", "b1", 8)],
            later + Duration::from_secs(3),
        );
        assert_eq!(count(&book, later + Duration::from_secs(3)), Some(18));
    }

    #[test]
    fn no_snapshot_until_every_live_report_includes_the_clear() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        let clear = Clear {
            epoch: Some("e".into()),
            version: 2,
        };
        book.update(vec![report("a", "a1", 3)], now);
        assert!(book
            .snapshot("up", now, Duration::from_secs(3), Some(&clear))
            .is_none());
        let mut after = report("a", "a1", 3);
        after.applied_version = 2;
        book.update(vec![after], now);
        assert!(book
            .snapshot("up", now, Duration::from_secs(3), Some(&clear))
            .is_some());
    }

    #[test]
    fn stale_or_empty_data_is_none() {
        let now = Instant::now();
        let mut book = HealthBook::default();
        assert_eq!(count(&book, now), None, "never fetched");
        book.update(vec![report("a", "a1", 1)], now);
        assert_eq!(count(&book, now + Duration::from_secs(10)), None, "stale");
        book.update(Vec::new(), now);
        assert_eq!(count(&book, now), None, "no live replica");
    }
}
