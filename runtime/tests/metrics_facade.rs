//! With the `metrics` feature, every record reaches the `metrics` facade,
//! so whatever exporter a service runs sees calls, durations, fallbacks
//! and errors per site and execution type.
#![cfg(feature = "metrics")]

use async_upload_test_support::records as support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_upload_runtime::execute::execute;
use async_upload_runtime::Site;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use support::TestError;

#[derive(Default)]
struct Captured {
    counters: Mutex<BTreeMap<String, Arc<Value>>>,
    histograms: Mutex<BTreeMap<String, Arc<Value>>>,
}

#[derive(Default)]
struct Value(AtomicU64);

impl CounterFn for Value {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl HistogramFn for Value {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// `name{label=value,...}` with labels sorted.
fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::clone(
            self.counters
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default(),
        ))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::clone(
            self.histograms
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default(),
        ))
    }
}

impl Captured {
    fn counter(&self, rendered: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(rendered)
            .map_or(0, |v| v.0.load(Ordering::Relaxed))
    }
    fn histogram(&self, rendered: &str) -> u64 {
        self.histograms
            .lock()
            .unwrap()
            .get(rendered)
            .map_or(0, |v| v.0.load(Ordering::Relaxed))
    }
}

/// What `calls` sent to the facade, run on a current-thread runtime with
/// a recorder of this thread's own.
fn captured(calls: impl std::future::Future<Output = ()>) -> Captured {
    let captured = Captured::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&captured, || runtime.block_on(calls));
    captured
}

#[test]
fn records_reach_the_metrics_facade_per_site_and_execution_type() {
    static SITE: Site = Site::new("facade").with_retries(0);
    let captured = captured(async {
        support::enable_async();
        support::roll_out(SITE.name(), 100.0);
        for i in 0..5_u32 {
            let result = execute(
                SITE.call(&i).with_bytes(100_u32),
                (i,),
                |(i,)| {
                    std::future::ready(if *i < 3 {
                        Ok(*i)
                    } else {
                        Err(TestError::Unsupported)
                    })
                },
                |(i,)| if i == 4 { Err(TestError::Sync) } else { Ok(i) },
            )
            .await;
            assert_eq!(result.is_ok(), i != 4);
        }
    });
    let base = "execution_type=async,site=facade";
    assert_eq!(
        captured.counter(&format!("async_upload_calls_total{{{base},success=true}}")),
        3
    );
    assert_eq!(
        captured.counter(&format!("async_upload_attempts_total{{{base}}}")),
        3
    );
    assert_eq!(
        captured.histogram(&format!("async_upload_duration_seconds{{{base}}}")),
        3
    );
    let fallback = "execution_type=sync_fallback,site=facade";
    assert_eq!(
        captured.counter(&format!(
            "async_upload_calls_total{{{fallback},success=true}}"
        )),
        1
    );
    assert_eq!(
        captured.counter(&format!(
            "async_upload_calls_total{{{fallback},success=false}}"
        )),
        1
    );
    assert_eq!(
        captured.counter(&format!("async_upload_fallbacks_total{{{fallback}}}")),
        2
    );
    assert_eq!(
        captured.counter(&format!(
            "async_upload_errors_total{{error_type=sync,{fallback}}}"
        )),
        1
    );
    assert_eq!(
        captured.counter(&format!("async_upload_bytes_total{{{base}}}")),
        300
    );
    // Why the two fallbacks ran the sync path, as a label.
    assert_eq!(
        captured.counter(&format!(
            "async_upload_sync_calls_total{{{fallback},sync_reason=async_gave_up}}"
        )),
        2
    );
    assert_eq!(
        captured.counter(&format!("async_upload_sync_calls_total{{{base}}}")),
        0,
        "calls served by the async path ran no sync path"
    );
}

#[test]
fn sync_calls_are_counted_per_reason() {
    static OFF: Site = Site::new("facade_reasons");
    let captured = captured(async {
        support::enable_async();
        support::roll_out(OFF.name(), 0.0);
        for i in 0..3_u32 {
            execute(
                OFF.call(&i),
                (i,),
                |(i,)| std::future::ready(Ok::<_, TestError>(*i)),
                |(i,)| Ok(i),
            )
            .await
            .unwrap();
        }
    });
    assert_eq!(
        captured.counter(
            "async_upload_sync_calls_total{execution_type=sync,site=facade_reasons,sync_reason=not_enrolled}"
        ),
        3
    );
}
