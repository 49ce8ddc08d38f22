//! What a person reads: [`Summary`] per site and execution type, and the
//! async-vs-sync [`Comparison`].

use super::path::PathSnapshot;
use super::record::ExecutionType;

/// Counts, rates and latency of one execution type at one site.
///
/// Rates are over finished calls (successes + failures); cancelled calls
/// are counted but neither succeeded nor failed. With no finished call the
/// rates are 0 and the latencies `None`: check `count` before reading them.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Summary {
    /// The site.
    pub site: String,
    /// The execution type.
    pub execution_type: ExecutionType,
    /// Calls.
    pub count: u64,
    /// Calls that returned `Ok`.
    pub successes: u64,
    /// Calls that returned `Err`.
    pub failures: u64,
    /// Calls whose future was dropped.
    pub cancelled: u64,
    /// Calls with a critical error (a panic in the async body).
    pub critical: u64,
    /// Async attempts made.
    pub attempts: u64,
    /// `successes / (successes + failures)`, 0.0–1.0.
    pub success_rate: f64,
    /// `failures / (successes + failures)`, 0.0–1.0.
    pub error_rate: f64,
    /// Mean call duration, milliseconds.
    pub mean_ms: Option<f64>,
    /// Median call duration, milliseconds (within 3 %).
    pub p50_ms: Option<f64>,
    /// 95th percentile, milliseconds (within 3 %).
    pub p95_ms: Option<f64>,
    /// 99th percentile, milliseconds (within 3 %).
    pub p99_ms: Option<f64>,
    /// Longest call, milliseconds.
    pub max_ms: Option<f64>,
    /// Bytes of calls that declared a size.
    pub bytes: u64,
}

impl Summary {
    pub(crate) fn new(site: &str, execution_type: ExecutionType, path: &PathSnapshot) -> Self {
        let finished = path.successes + path.failures;
        let rate = |n: u64| {
            if finished == 0 {
                0.0
            } else {
                ratio(n, finished)
            }
        };
        let ms = |micros: f64| micros / 1000.0;
        let any = path.count > 0;
        Summary {
            site: site.to_owned(),
            execution_type,
            count: path.count,
            successes: path.successes,
            failures: path.failures,
            cancelled: path.cancelled,
            critical: path.critical,
            attempts: path.attempts,
            success_rate: rate(path.successes),
            error_rate: rate(path.failures),
            mean_ms: any.then(|| ms(ratio(path.duration_sum_us, path.count))),
            p50_ms: path.latency.quantile(0.50).map(ms),
            p95_ms: path.latency.quantile(0.95).map(ms),
            p99_ms: path.latency.quantile(0.99).map(ms),
            #[allow(clippy::cast_precision_loss)]
            max_ms: any.then(|| ms(path.max_us as f64)),
            bytes: path.bytes,
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(numerator: u64, denominator: u64) -> f64 {
    numerator as f64 / denominator as f64
}

/// Latency of the async path against the sync path at one site, over the
/// same calls (`async` against `sync` records; `sync_fallback` calls, which
/// paid for both paths, are in neither).
///
/// A change of `+10.0` means the async path is 10 % slower.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Comparison {
    /// The site.
    pub site: String,
    /// Async calls compared.
    pub async_count: u64,
    /// Sync calls compared.
    pub sync_count: u64,
    /// Async median, milliseconds.
    pub async_p50_ms: Option<f64>,
    /// Sync median, milliseconds.
    pub sync_p50_ms: Option<f64>,
    /// Async 95th percentile, milliseconds.
    pub async_p95_ms: Option<f64>,
    /// Sync 95th percentile, milliseconds.
    pub sync_p95_ms: Option<f64>,
    /// `(async_p50 / sync_p50 - 1) * 100`, when both sides have calls.
    pub p50_change_pct: Option<f64>,
    /// `(async_p95 / sync_p95 - 1) * 100`, when both sides have calls.
    pub p95_change_pct: Option<f64>,
}

impl Comparison {
    pub(crate) fn new(site: &str, async_path: &PathSnapshot, sync_path: &PathSnapshot) -> Self {
        let q =
            |path: &PathSnapshot, q: f64| path.latency.quantile(q).map(|micros| micros / 1000.0);
        let change = |a: Option<f64>, s: Option<f64>| match (a, s) {
            (Some(a), Some(s)) if s > 0.0 => Some((a / s - 1.0) * 100.0),
            _ => None,
        };
        let (async_p50, sync_p50) = (q(async_path, 0.50), q(sync_path, 0.50));
        let (async_p95, sync_p95) = (q(async_path, 0.95), q(sync_path, 0.95));
        Comparison {
            site: site.to_owned(),
            async_count: async_path.count,
            sync_count: sync_path.count,
            async_p50_ms: async_p50,
            sync_p50_ms: sync_p50,
            async_p95_ms: async_p95,
            sync_p95_ms: sync_p95,
            p50_change_pct: change(async_p50, sync_p50),
            p95_change_pct: change(async_p95, sync_p95),
        }
    }
}
