//! A replica's report (key `async-upload:v1:replica:<instance>`): its
//! liveness, the state version it applied and its cumulative per-site
//! counters, as JSON another language can read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{ExecutionType, Histogram, PathSnapshot, SiteSnapshot};

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

#[derive(Serialize, Deserialize)]
struct Wire {
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
    sites: BTreeMap<String, BTreeMap<String, WirePath>>,
}

fn yes() -> bool {
    true
}

/// [`PathSnapshot`] on the wire; the histogram as `[bucket index, count]` pairs.
#[derive(Serialize, Deserialize)]
struct WirePath {
    count: u64,
    successes: u64,
    failures: u64,
    cancelled: u64,
    critical: u64,
    attempts: u64,
    bytes: u64,
    duration_sum_us: u64,
    max_us: u64,
    latency: Vec<(usize, u64)>,
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
                    .map(|(kind, p)| {
                        let wire = WirePath {
                            count: p.count,
                            successes: p.successes,
                            failures: p.failures,
                            cancelled: p.cancelled,
                            critical: p.critical,
                            attempts: p.attempts,
                            bytes: p.bytes,
                            duration_sum_us: p.duration_sum_us,
                            max_us: p.max_us,
                            latency: p.latency.buckets().collect(),
                        };
                        (kind.as_str().to_owned(), wire)
                    })
                    .collect();
                (site.clone(), paths)
            })
            .collect();
        let wire = Wire {
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
        let wire: Wire = serde_json::from_str(json).ok()?;
        if wire.v != WIRE_VERSION {
            return None;
        }
        let mut sites = BTreeMap::new();
        for (site, mut paths) in wire.sites {
            let mut out: [PathSnapshot; 3] = Default::default();
            for (slot, kind) in out.iter_mut().zip(ExecutionType::ALL) {
                if let Some(p) = paths.remove(kind.as_str()) {
                    *slot = PathSnapshot {
                        count: p.count,
                        successes: p.successes,
                        failures: p.failures,
                        cancelled: p.cancelled,
                        critical: p.critical,
                        attempts: p.attempts,
                        bytes: p.bytes,
                        duration_sum_us: p.duration_sum_us,
                        max_us: p.max_us,
                        latency: Histogram::from_buckets(p.latency)?,
                    };
                }
            }
            sites.insert(site.clone(), SiteSnapshot::from_paths(&site, out));
        }
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
    use crate::metrics::UploadRecord;

    fn snapshot(calls: &[(ExecutionType, bool, f64)]) -> SiteSnapshot {
        let mut snapshot = SiteSnapshot::empty("up");
        for &(kind, ok, ms) in calls {
            snapshot.record(&UploadRecord::new("up", kind, ok, ms, 1));
        }
        snapshot
    }

    #[test]
    fn a_report_round_trips_through_json() {
        let report = ReplicaReport {
            instance: "host-1".into(),
            run: "0123abcd".into(),
            at_ms: 1_700_000_000_000,
            applied_version: 42,
            epoch: Some("e".into()),
            pushes: false,
            remembered: true,
            leads: vec!["up".into()],
            sites: BTreeMap::from([(
                "up".to_owned(),
                snapshot(&[
                    (ExecutionType::Async, true, 12.0),
                    (ExecutionType::Sync, false, 300.0),
                ]),
            )]),
        };
        let back = ReplicaReport::from_json(&report.to_json()).unwrap();
        assert_eq!(back, report);
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
