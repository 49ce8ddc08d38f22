//! Where records go: the [`MetricsSink`] trait and [`FanOut`] to several
//! sinks. The process-wide list of them is `registry.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::notice::{BreakerEvent, ConfigChange};
use super::record::UploadRecord;

/// Receives every record of every call.
///
/// Called on the caller's task right after the call finishes: keep it quick
/// and non-blocking (hand slow work to a queue, as the JSONL sink does).
///
/// Closures are sinks:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use async_upload::metrics::{ExecutionType, MetricsSink, UploadRecord};
///
/// let calls = AtomicUsize::new(0);
/// let sink = |_: &UploadRecord| {
///     calls.fetch_add(1, Ordering::Relaxed);
/// };
/// sink.record(&UploadRecord::new("upload", ExecutionType::Sync, true, 1.0, 0));
/// assert_eq!(calls.load(Ordering::Relaxed), 1);
/// ```
///
/// Beside the records, a sink hears of the rare events that are no call's
/// record: [`breaker_changed`](MetricsSink::breaker_changed) and
/// [`config_changed`](MetricsSink::config_changed). Both do nothing unless
/// the sink says otherwise; the JSONL log (`async_upload::log::JsonlLog`) writes
/// them as its `breaker` and `operator` lines.
///
/// ```
/// use std::sync::Mutex;
/// use async_upload::metrics::{BreakerEvent, ConfigChange, MetricsSink, UploadRecord};
///
/// #[derive(Default)]
/// struct Audit(Mutex<Vec<String>>);
///
/// impl MetricsSink for Audit {
///     fn record(&self, _: &UploadRecord) {}
///
///     fn breaker_changed(&self, event: &BreakerEvent) {
///         self.0.lock().unwrap().push(format!("{}: {:?}", event.site, event.event));
///     }
///
///     fn config_changed(&self, change: &ConfigChange) {
///         for setting in &change.settings {
///             self.0.lock().unwrap().push(format!("{} by {}", setting.name, change.by));
///         }
///     }
/// }
/// ```
pub trait MetricsSink: Send + Sync {
    /// Takes one record.
    fn record(&self, record: &UploadRecord);

    /// A site's circuit breaker changed state, or its retry budget ran dry:
    /// once per transition, never per call. Does nothing by default.
    ///
    /// Called on the thread of the call (or background probe) that made the
    /// transition: keep it as quick as [`record`](MetricsSink::record).
    fn breaker_changed(&self, event: &BreakerEvent) {
        let _ = event;
    }

    /// An operator's change of the live configuration was applied (through
    /// the [`ConfigHandle`](crate::config::ConfigHandle), the environment
    /// reloaded, or in fleet mode the shared state): one notice per change,
    /// with every setting it moved. The rollout controller's own changes
    /// are not notified (they have stage events of their own). Does nothing
    /// by default.
    ///
    /// Called while the configuration handle holds its lock, so that the
    /// notices come in the order the changes were applied: keep it quick,
    /// and do not call the handle's methods that change or resolve a site
    /// from here (they wait for that lock); [`ConfigHandle::config`] is
    /// fine.
    ///
    /// [`ConfigHandle::config`]: crate::config::ConfigHandle::config
    fn config_changed(&self, change: &ConfigChange) {
        let _ = change;
    }
}

impl<F: Fn(&UploadRecord) + Send + Sync> MetricsSink for F {
    fn record(&self, record: &UploadRecord) {
        self(record);
    }
}

impl<S: MetricsSink + ?Sized> MetricsSink for Arc<S> {
    fn record(&self, record: &UploadRecord) {
        (**self).record(record);
    }

    fn breaker_changed(&self, event: &BreakerEvent) {
        (**self).breaker_changed(event);
    }

    fn config_changed(&self, change: &ConfigChange) {
        (**self).config_changed(change);
    }
}

/// Hands each record (and each notice) to several sinks, in order.
///
/// ```
/// use std::sync::Arc;
/// use async_upload::metrics::{Aggregator, ExecutionType, FanOut, MetricsSink, UploadRecord};
///
/// let a = Arc::new(Aggregator::new());
/// let b = Arc::new(Aggregator::new());
/// let fan_out = FanOut::new(vec![a.clone(), b.clone()]);
/// fan_out.record(&UploadRecord::new("upload", ExecutionType::Sync, true, 1.0, 0));
/// assert_eq!(a.snapshot("upload").unwrap().path(ExecutionType::Sync).count, 1);
/// assert_eq!(b.snapshot("upload").unwrap().path(ExecutionType::Sync).count, 1);
/// ```
#[derive(Clone, Default)]
pub struct FanOut {
    pub(super) sinks: Vec<(SinkId, Arc<dyn MetricsSink>)>,
}

impl FanOut {
    /// A fan-out to `sinks`.
    #[must_use]
    pub fn new(sinks: Vec<Arc<dyn MetricsSink>>) -> Self {
        FanOut {
            sinks: sinks
                .into_iter()
                .map(|sink| (SinkId::next(), sink))
                .collect(),
        }
    }

    /// Number of sinks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there is no sink.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl core::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FanOut")
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl MetricsSink for FanOut {
    fn record(&self, record: &UploadRecord) {
        for (_, sink) in &self.sinks {
            sink.record(record);
        }
    }

    fn breaker_changed(&self, event: &BreakerEvent) {
        for (_, sink) in &self.sinks {
            sink.breaker_changed(event);
        }
    }

    fn config_changed(&self, change: &ConfigChange) {
        for (_, sink) in &self.sinks {
            sink.config_changed(change);
        }
    }
}

/// Identifies a sink added with [`add_sink`](super::add_sink), to remove it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SinkId(u64);

impl SinkId {
    pub(super) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        SinkId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
