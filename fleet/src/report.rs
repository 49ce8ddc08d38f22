//! A replica's report (key `async-upload:v1:replica:<instance>`): its
//! liveness, the state version it applied and its cumulative per-site
//! counters, as JSON another language can read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use async_upload_runtime::metrics::{ExecutionType, PathSnapshot, SiteSnapshot};

/// What one replica last published.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReplicaReport {
    /// The replica's id (`ASYNC_UPLOAD_INSTANCE`).
    pub instance: String,
    /// A random id of this run of the process: a replica that restarts
    /// under the same instance id is another run (its counters start over).
    pub run: String,
    /// When it published, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The version of the shared state it has applied (0: none yet).
    pub applied_version: u64,
    /// The store epoch of the state it follows (`None`: none yet).
    pub epoch: Option<String>,
    /// Whether it receives the change channel's pushes (`false`: it
    /// follows changes by the once-a-second poll only, e.g. an ACL user
    /// without the channel right).
    pub pushes: bool,
    /// Whether it runs on state it remembers from a store that is gone
    /// (Redis came back empty, or is another Redis) until an operator sets
    /// the defaults in this one.
    pub remembered: bool,
    /// The sites whose controller it runs (it holds their lease).
    pub leads: Vec<String>,
    /// Its cumulative counters per site since it started.
    pub sites: BTreeMap<String, SiteSnapshot>,
}

/// The report's JSON; `P` is a path's counters, borrowed when written.
#[derive(Serialize, Deserialize)]
struct Wire<P> {
    v: u32,
    instance: String,
    #[serde(default)]
    run: String,
    at_ms: u64,
    applied_version: u64,
    #[serde(default)]
    epoch: Option<String>,
    #[serde(default = "yes")]
    pushes: bool,
    #[serde(default)]
    remembered: bool,
    #[serde(default)]
    leads: Vec<String>,
    /// Per site, per execution type (`"async"`, ...): [`PathSnapshot`]'s
    /// own serde form, the histogram as `[bucket index, count]` pairs.
    sites: BTreeMap<String, BTreeMap<String, P>>,
}

fn yes() -> bool {
    true
}

/// Version of the report's JSON.
const WIRE_VERSION: u32 = 1;

impl ReplicaReport {
    /// The JSON stored in Redis.
    pub(crate) fn to_json(&self) -> String {
        let sites = self
            .sites
            .iter()
            .map(|(site, snapshot)| {
                let paths = ExecutionType::ALL
                    .into_iter()
                    .zip(snapshot.paths())
                    .map(|(kind, path)| (kind.as_str().to_owned(), path))
                    .collect();
                (site.clone(), paths)
            })
            .collect();
        let wire: Wire<&PathSnapshot> = Wire {
            v: WIRE_VERSION,
            instance: self.instance.clone(),
            run: self.run.clone(),
            at_ms: self.at_ms,
            applied_version: self.applied_version,
            epoch: self.epoch.clone(),
            pushes: self.pushes,
            remembered: self.remembered,
            leads: self.leads.clone(),
            sites,
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses a report; `None` for a report this version cannot read (it
    /// then counts as no data, never as zeros).
    pub(crate) fn from_json(json: &str) -> Option<Self> {
        let wire: Wire<PathSnapshot> = serde_json::from_str(json).ok()?;
        if wire.v != WIRE_VERSION {
            return None;
        }
        let sites = wire
            .sites
            .into_iter()
            .map(|(site, mut paths)| {
                // Execution types this version does not know are skipped.
                let paths =
                    ExecutionType::ALL.map(|kind| paths.remove(kind.as_str()).unwrap_or_default());
                let snapshot = SiteSnapshot::from_paths(&site, paths);
                (site, snapshot)
            })
            .collect();
        Some(ReplicaReport {
            // A report without a run id counts as one run per instance.
            run: if wire.run.is_empty() {
                wire.instance.clone()
            } else {
                wire.run
            },
            instance: wire.instance,
            at_ms: wire.at_ms,
            applied_version: wire.applied_version,
            epoch: wire.epoch,
            pushes: wire.pushes,
            remembered: wire.remembered,
            leads: wire.leads,
            sites,
        })
    }
}

/// The merged cumulative counters of `site` over `reports` (the fleet's
/// health as `async-upload fleet status` shows it).
#[must_use]
pub fn merge_reports(reports: &[ReplicaReport], site: &str) -> SiteSnapshot {
    let mut total = SiteSnapshot::empty(site);
    for snapshot in reports.iter().filter_map(|r| r.sites.get(site)) {
        total.merge(snapshot);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_upload_runtime::metrics::{Histogram, UploadRecord};

    fn snapshot(calls: &[(ExecutionType, bool, f64)]) -> SiteSnapshot {
        let mut snapshot = SiteSnapshot::empty("up");
        for &(kind, ok, ms) in calls {
            snapshot.record(&UploadRecord::new("up", kind, ok, ms, 1));
        }
        snapshot
    }

    /// The report of replica `host-1` (leading `up`) with `sites`.
    fn report_of(sites: BTreeMap<String, SiteSnapshot>) -> ReplicaReport {
        ReplicaReport {
            instance: "host-1".into(),
            run: "0123abcd".into(),
            at_ms: 1_700_000_000_000,
            applied_version: 42,
            epoch: Some("e".into()),
            pushes: false,
            remembered: true,
            leads: vec!["up".into()],
            sites,
        }
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let report = report_of(BTreeMap::from([(
            "up".to_owned(),
            snapshot(&[
                (ExecutionType::Async, true, 12.0),
                (ExecutionType::Sync, false, 300.0),
            ]),
        )]));
        let back = ReplicaReport::from_json(&report.to_json()).unwrap();
        assert_eq!(back, report);
    }

    /// A report with a non-zero value in every counter of every path, and
    /// its JSON: the v1 wire form replicas of every version read and write.
    fn pinned_report() -> ReplicaReport {
        let path = |base: u64, micros: &[u64]| {
            let mut latency = Histogram::default();
            for &us in micros {
                latency.record(us);
            }
            PathSnapshot {
                count: base + 6,
                successes: base + 3,
                failures: base + 2,
                cancelled: base + 1,
                critical: base + 1,
                attempts: base + 9,
                bytes: base + 4096,
                duration_sum_us: base + 123_456,
                max_us: base + 98_765,
                latency,
            }
        };
        let up = SiteSnapshot::from_paths(
            "up",
            [
                path(0, &[7, 1_000, 98_765]),
                path(10, &[31, 32, 40_000]),
                path(20, &[2_000_000]),
            ],
        );
        report_of(BTreeMap::from([
            ("up".to_owned(), up),
            ("idle".to_owned(), SiteSnapshot::empty("idle")),
        ]))
    }

    const PINNED_JSON: &str = concat!(
        r#"{"v":1,"instance":"host-1","run":"0123abcd","at_ms":1700000000000,"#,
        r#""applied_version":42,"epoch":"e","pushes":false,"remembered":true,"leads":["up"],"#,
        r#""sites":{"idle":{"#,
        r#""async":{"count":0,"successes":0,"failures":0,"cancelled":0,"critical":0,"attempts":0,"bytes":0,"duration_sum_us":0,"max_us":0,"latency":[]},"#,
        r#""sync":{"count":0,"successes":0,"failures":0,"cancelled":0,"critical":0,"attempts":0,"bytes":0,"duration_sum_us":0,"max_us":0,"latency":[]},"#,
        r#""sync_fallback":{"count":0,"successes":0,"failures":0,"cancelled":0,"critical":0,"attempts":0,"bytes":0,"duration_sum_us":0,"max_us":0,"latency":[]}},"#,
        r#""up":{"#,
        r#""async":{"count":16,"successes":13,"failures":12,"cancelled":11,"critical":11,"#,
        r#""attempts":19,"bytes":4106,"duration_sum_us":123466,"max_us":98775,"#,
        r#""latency":[[31,1],[32,1],[359,1]]},"#,
        r#""sync":{"count":6,"successes":3,"failures":2,"cancelled":1,"critical":1,"#,
        r#""attempts":9,"bytes":4096,"duration_sum_us":123456,"max_us":98765,"#,
        r#""latency":[[7,1],[190,1],[400,1]]},"#,
        r#""sync_fallback":{"count":26,"successes":23,"failures":22,"cancelled":21,"critical":21,"#,
        r#""attempts":29,"bytes":4116,"duration_sum_us":123476,"max_us":98785,"#,
        r#""latency":[[541,1]]}}}}"#,
    );

    #[test]
    fn the_v1_wire_form_is_pinned() {
        assert_eq!(pinned_report().to_json(), PINNED_JSON);
        assert_eq!(ReplicaReport::from_json(PINNED_JSON), Some(pinned_report()));
    }

    /// How a reader takes reports other versions wrote: absent paths are
    /// empty, fields it does not know are ignored, a missing counter or a
    /// bucket out of range makes the report unreadable (no data, not zeros).
    #[test]
    fn reports_of_other_versions_are_read_field_by_field() {
        let counters = r#""count":3,"successes":1,"failures":1,"cancelled":1,"critical":0,"attempts":4,"bytes":0,"duration_sum_us":60,"max_us":30"#;
        // A path of an execution type this version does not know is skipped.
        let report = |path: &str| {
            ReplicaReport::from_json(&format!(
                r#"{{"v":1,"instance":"a","at_ms":1,"applied_version":1,"sites":{{"up":{{"async":{path},"canary":{{{counters},"latency":[]}}}}}}}}"#
            ))
        };
        let read = report(&format!(
            r#"{{{counters},"latency":[[7,1],[7,2]],"retried":5}}"#
        ))
        .unwrap();
        assert_eq!(read.run, "a");
        assert!(read.pushes);
        let up = &read.sites["up"];
        let path = up.path(ExecutionType::Async);
        assert_eq!((path.count, path.attempts, path.max_us), (3, 4, 30));
        assert_eq!(path.latency.len(), 3);
        assert_eq!(up.path(ExecutionType::Sync), &PathSnapshot::default());
        assert!(report(&format!(r#"{{{counters},"latency":[[100000,1]]}}"#)).is_none());
        assert!(report(r#"{"count":3,"latency":[]}"#).is_none());
    }

    #[test]
    fn a_report_of_another_version_is_not_read() {
        assert!(ReplicaReport::from_json(
            r#"{"v":2,"instance":"a","at_ms":1,"applied_version":1,"sites":{}}"#
        )
        .is_none());
        assert!(ReplicaReport::from_json("not json").is_none());
    }

    #[test]
    fn merging_adds_counts_and_histograms() {
        let mut a = snapshot(&[(ExecutionType::Async, true, 10.0)]);
        let b = snapshot(&[
            (ExecutionType::Async, false, 20.0),
            (ExecutionType::Async, true, 30.0),
        ]);
        a.merge(&b);
        let async_path = a.path(ExecutionType::Async);
        assert_eq!(async_path.count, 3);
        assert_eq!(async_path.successes, 2);
        assert_eq!(async_path.latency.len(), 3);
        assert_eq!(async_path.max_us, 30_000);
    }
}
