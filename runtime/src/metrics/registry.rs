//! The process-wide list of sinks every call reports to, and the breaker
//! and the configuration send their notices to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

use super::record::UploadRecord;
use super::sink::{FanOut, MetricsSink, SinkId};

/// Sinks beyond the global aggregator; replaced whole on change, so every
/// call reads the list without a lock.
static SINKS: LazyLock<ArcSwap<FanOut>> = LazyLock::new(|| ArcSwap::from_pointee(default_sinks()));
/// Whether `SINKS` may be non-empty; set before a sink is added.
static ANY_SINK: AtomicBool = AtomicBool::new(cfg!(feature = "metrics"));

fn default_sinks() -> FanOut {
    #[cfg(feature = "metrics")]
    {
        FanOut::new(vec![Arc::new(super::facade::MetricsFacadeSink)])
    }
    #[cfg(not(feature = "metrics"))]
    {
        FanOut::default()
    }
}

/// Adds a sink that receives the record of every call from now on, beside
/// the global [`Aggregator`](super::Aggregator) (which always receives them).
///
/// ```
/// use std::sync::Arc;
/// use async_upload::metrics::{add_sink, remove_sink, Aggregator};
///
/// let mine = Arc::new(Aggregator::new());
/// let id = add_sink(mine.clone());
/// assert!(remove_sink(id));
/// ```
pub fn add_sink(sink: impl MetricsSink + 'static) -> SinkId {
    let id = SinkId::next();
    let sink: Arc<dyn MetricsSink> = Arc::new(sink);
    ANY_SINK.store(true, Ordering::Release);
    SINKS.rcu(|current| {
        let mut next = FanOut::clone(current);
        next.sinks.push((id, Arc::clone(&sink)));
        next
    });
    id
}

/// Removes a sink added with [`add_sink`]; `false` if it was not there.
pub fn remove_sink(id: SinkId) -> bool {
    let before = SINKS.rcu(|current| {
        let mut next = FanOut::clone(current);
        next.sinks.retain(|(sink_id, _)| *sink_id != id);
        next
    });
    before.sinks.iter().any(|(sink_id, _)| *sink_id == id)
}

/// Puts `sink` in the place of the sink `previous` (either may be `None`)
/// in one step, so a record or notice sent meanwhile reaches exactly one of
/// them; the new sink's id, if there is one.
pub fn replace_sink(
    previous: Option<SinkId>,
    sink: Option<Arc<dyn MetricsSink>>,
) -> Option<SinkId> {
    let added = sink.map(|sink| (SinkId::next(), sink));
    if added.is_some() {
        ANY_SINK.store(true, Ordering::Release);
    }
    SINKS.rcu(|current| {
        let mut next = FanOut::clone(current);
        if let Some(previous) = previous {
            next.sinks.retain(|(sink_id, _)| *sink_id != previous);
        }
        if let Some((id, sink)) = &added {
            next.sinks.push((*id, Arc::clone(sink)));
        }
        next
    });
    added.map(|(id, _)| id)
}

/// Hands a record to every added sink.
pub(crate) fn dispatch(record: &UploadRecord) {
    // Most services add no sink: skip the list's load (a few ns per call).
    if !ANY_SINK.load(Ordering::Acquire) {
        return;
    }
    let sinks = SINKS.load();
    if !sinks.is_empty() {
        sinks.record(record);
    }
}

/// Hands a notice to every added sink: `send` is called with them all (as
/// one sink) only if there is one, so a notice nobody hears is never built.
pub(crate) fn notify(send: impl FnOnce(&dyn MetricsSink)) {
    if !ANY_SINK.load(Ordering::Acquire) {
        return;
    }
    let sinks = SINKS.load();
    if !sinks.is_empty() {
        send(&**sinks);
    }
}
