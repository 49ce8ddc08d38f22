//! Forwarding records to the `metrics` crate facade (feature `metrics`).

use metrics::{counter, histogram};

use super::record::{ExecutionType, UploadRecord};
use super::sink::MetricsSink;

/// The name of the call-duration histogram, in seconds.
pub const DURATION_METRIC: &str = "async_upload_duration_seconds";

/// Bucket bounds (seconds) fit for upload latencies, 1 ms to 60 s, for an
/// exporter that needs them: `metrics-exporter-prometheus` renders a
/// histogram as a summary unless it is given buckets, and only a real
/// Prometheus histogram aggregates across instances with
/// `histogram_quantile`.
///
/// ```text
/// PrometheusBuilder::new()
///     .set_buckets_for_metric(Matcher::Full(DURATION_METRIC.into()), &DURATION_BUCKETS)?
///     .with_http_listener(([0, 0, 0, 0], 9000))
///     .install()?;
/// ```
///
/// (`examples/upload_demo.rs` does exactly this for `--metrics-addr`.)
pub const DURATION_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Forwards every record to the [`metrics`](https://docs.rs/metrics) facade.
///
/// Installed automatically when the `metrics` feature is on. Series, all
/// labelled `site` and `execution_type`:
///
/// | name | kind | meaning |
/// | --- | --- | --- |
/// | `async_upload_calls_total` | counter | calls, also labelled `success` |
/// | `async_upload_duration_seconds` | histogram | whole-call duration ([`DURATION_BUCKETS`]) |
/// | `async_upload_attempts_total` | counter | async attempts |
/// | `async_upload_fallbacks_total` | counter | calls the sync path took over |
/// | `async_upload_errors_total` | counter | failed calls, also labelled `error_type` |
/// | `async_upload_bytes_total` | counter | bytes of calls that declare a size |
/// | `async_upload_sync_calls_total` | counter | calls that ran the sync path, also labelled `sync_reason` ([`SyncReason`](super::SyncReason)) |
/// | `async_upload_ambiguous_attempts_total` | counter | async attempts whose outcome is unknown (timeout, panic, may have landed) |
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsFacadeSink;

impl MetricsSink for MetricsFacadeSink {
    fn record(&self, record: &UploadRecord) {
        let site = record.site.clone();
        let execution_type = record.execution_type.as_str();
        counter!(
            "async_upload_calls_total",
            "site" => site.clone(),
            "execution_type" => execution_type,
            "success" => if record.success { "true" } else { "false" },
        )
        .increment(1);
        histogram!(DURATION_METRIC, "site" => site.clone(), "execution_type" => execution_type)
            .record(record.duration_ms / 1000.0);
        if record.attempts > 0 {
            counter!("async_upload_attempts_total", "site" => site.clone(), "execution_type" => execution_type)
                .increment(u64::from(record.attempts));
        }
        if record.execution_type == ExecutionType::SyncFallback {
            counter!("async_upload_fallbacks_total", "site" => site.clone(), "execution_type" => execution_type)
                .increment(1);
        }
        if !record.success {
            counter!(
                "async_upload_errors_total",
                "site" => site.clone(),
                "execution_type" => execution_type,
                "error_type" => record.error_type.clone().unwrap_or(std::borrow::Cow::Borrowed("unknown")),
            )
            .increment(1);
        }
        if let Some(reason) = record.sync_reason {
            counter!(
                "async_upload_sync_calls_total",
                "site" => site.clone(),
                "execution_type" => execution_type,
                "sync_reason" => reason.as_str(),
            )
            .increment(1);
        }
        if record.ambiguous_attempts > 0 {
            counter!("async_upload_ambiguous_attempts_total", "site" => site.clone(), "execution_type" => execution_type)
                .increment(u64::from(record.ambiguous_attempts));
        }
        if let Some(bytes) = record.bytes {
            counter!("async_upload_bytes_total", "site" => site, "execution_type" => execution_type).increment(bytes);
        }
    }
}
