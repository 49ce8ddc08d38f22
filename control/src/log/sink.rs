//! [`JsonlLog`]: a bounded queue on the caller's side, one writer thread on
//! the other.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::event::Event;
use super::line;
use super::operator::OperatorEvent;
use super::output::{open_log, Output};
use async_upload_runtime::metrics::{BreakerEvent, ConfigChange, MetricsSink, UploadRecord};

/// Records the queue holds before it drops new ones.
pub const DEFAULT_CAPACITY: usize = 8192;

/// Events (stage, rollback) are rare and matter more than any single
/// record, so they may exceed the capacity by this much.
const EVENT_HEADROOM: usize = 1024;

/// How long [`JsonlLog::flush`] waits for the writer at most.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters of a [`JsonlLog`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Lines written to the file.
    pub written: u64,
    /// Lines dropped because the queue was full.
    pub dropped_full: u64,
    /// Lines dropped because writing them failed.
    pub dropped_io: u64,
}

impl LogStats {
    /// All lines dropped, for whatever reason.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_io
    }
}

/// A JSONL log: a [`MetricsSink`] that writes every record (and the
/// controller's events, the breakers' transitions and the operators'
/// configuration changes) as one line, from a background thread.
///
/// Cloning gives another handle to the same log; the writer thread stops,
/// after writing what is queued, when the last handle is dropped.
///
/// ```
/// use async_upload::log::{read_file, JsonlLog};
/// use async_upload::metrics::{ExecutionType, MetricsSink, UploadRecord};
///
/// let path = std::env::temp_dir().join(format!("docs-jsonl-{}.jsonl", std::process::id()));
/// # std::fs::remove_file(&path).ok();
/// let log = JsonlLog::open(&path)?;
/// log.record(&UploadRecord::new("upload", ExecutionType::Async, true, 12.5, 1));
/// assert!(log.flush());
/// assert_eq!(log.stats().written, 1);
/// assert_eq!(read_file(&path)?.uploads.len(), 1);
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct JsonlLog {
    handle: Arc<Handle>,
}

/// Builds a [`JsonlLog`] with a capacity other than [`DEFAULT_CAPACITY`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `open` or `spawn`"]
pub struct JsonlLogBuilder {
    target: TargetSpec,
    capacity: usize,
}

enum TargetSpec {
    Path(PathBuf),
    Writer(Box<dyn Write + Send>),
}

impl core::fmt::Debug for TargetSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TargetSpec::Path(path) => f.debug_tuple("Path").field(path).finish(),
            TargetSpec::Writer(_) => f.write_str("Writer"),
        }
    }
}

impl JsonlLogBuilder {
    /// Queue capacity in records (at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Opens (creates, appends to) the file, then starts the writer.
    ///
    /// # Errors
    ///
    /// The file cannot be opened for appending. (For a writer target this
    /// never fails.)
    pub fn open(self) -> io::Result<JsonlLog> {
        if let TargetSpec::Path(path) = &self.target {
            open_log(path)?;
        }
        Ok(self.spawn())
    }

    /// Starts the writer without checking the file first: a path that is
    /// not writable yet drops (and counts) records until it is.
    #[must_use]
    pub fn spawn(self) -> JsonlLog {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
            capacity: self.capacity,
            written: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_io: AtomicU64::new(0),
            full_episode: AtomicBool::new(false),
        });
        let output = match self.target {
            TargetSpec::Path(path) => Output::file(path),
            TargetSpec::Writer(writer) => Output::writer(writer),
        };
        let writer_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("async-upload-log".into())
            .spawn(move || writer_loop(&writer_shared, output));
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(error) => {
                // Without a writer every line is dropped and counted: the
                // service goes on, the log says why once.
                tracing::error!(%error, "cannot start the async-upload log writer thread");
                shared.lock().writer_gone = true;
                None
            }
        };
        JsonlLog {
            handle: Arc::new(Handle { shared, thread }),
        }
    }
}

impl JsonlLog {
    /// A log appending to `path` (created if missing), with the default capacity.
    ///
    /// # Errors
    ///
    /// The file cannot be opened for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<JsonlLog> {
        Self::builder(path).open()
    }

    /// A builder for a log appending to `path`.
    pub fn builder(path: impl AsRef<Path>) -> JsonlLogBuilder {
        JsonlLogBuilder {
            target: TargetSpec::Path(path.as_ref().to_owned()),
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// A builder for a log writing to any writer (standard error, a pipe, a
    /// test double). A failed write drops its lines as for a file; there is
    /// no reopening.
    pub fn builder_for_writer(writer: impl Write + Send + 'static) -> JsonlLogBuilder {
        JsonlLogBuilder {
            target: TargetSpec::Writer(Box::new(writer)),
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Queues an event's line; never blocks on I/O.
    ///
    /// The controller's events may exceed the queue capacity a little (they
    /// are rare and carry decisions), so a burst of records does not crowd
    /// them out; an upload record is queued as [`MetricsSink::record`] does.
    pub fn event(&self, event: Event) {
        let shared = &self.handle.shared;
        match event {
            Event::Upload(record) => shared.push(Item::Upload(record), shared.capacity),
            event => shared.push(
                Item::Event(Box::new(event)),
                shared.capacity + EVENT_HEADROOM,
            ),
        }
    }

    /// Waits until every line queued before this call is written (or
    /// dropped), for at most 5 seconds; `false` on timeout.
    #[allow(clippy::must_use_candidate)] // flushing for its effect is the usual use
    pub fn flush(&self) -> bool {
        self.flush_timeout(FLUSH_TIMEOUT)
    }

    /// Like [`JsonlLog::flush`], waiting at most `timeout`.
    #[allow(clippy::must_use_candidate)] // flushing for its effect is the usual use
    pub fn flush_timeout(&self, timeout: Duration) -> bool {
        let shared = &self.handle.shared;
        let deadline = Instant::now() + timeout;
        let mut state = shared.lock();
        let target = state.enqueued;
        while state.processed < target && !state.writer_gone {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = shared
                .done
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.processed >= target
    }

    /// Lines written and dropped so far.
    #[must_use]
    pub fn stats(&self) -> LogStats {
        let shared = &self.handle.shared;
        LogStats {
            written: shared.written.load(Ordering::Relaxed),
            dropped_full: shared.dropped_full.load(Ordering::Relaxed),
            dropped_io: shared.dropped_io.load(Ordering::Relaxed),
        }
    }

    /// A guard that flushes this log when dropped.
    #[must_use = "the log is flushed when the guard is dropped"]
    pub fn guard(&self) -> FlushGuard {
        FlushGuard {
            flush: Flush::Log(self.clone()),
        }
    }
}

impl core::fmt::Debug for JsonlLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JsonlLog")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl MetricsSink for JsonlLog {
    /// Queues the record; never blocks on I/O. The record is cloned (site
    /// and error names are usually `'static`, so this is cheap) and
    /// serialized on the writer thread.
    fn record(&self, record: &UploadRecord) {
        self.handle
            .shared
            .push(Item::Upload(record.clone()), self.handle.shared.capacity);
    }

    /// Queues the transition's `breaker` line, as [`JsonlLog::event`] does.
    fn breaker_changed(&self, event: &BreakerEvent) {
        self.event(Event::Breaker(event.clone()));
    }

    /// Queues one `operator` line per setting the change moved, as
    /// [`JsonlLog::event`] does.
    fn config_changed(&self, change: &ConfigChange) {
        for line in OperatorEvent::lines(change) {
            self.event(Event::Operator(line));
        }
    }
}

/// Flushes a log when dropped. See [`guard`](crate::log::guard) and [`JsonlLog::guard`].
#[derive(Debug)]
pub struct FlushGuard {
    flush: Flush,
}

#[derive(Debug)]
enum Flush {
    /// This log.
    Log(JsonlLog),
    /// Whatever this finds when the guard drops (the global log's flush,
    /// which looks up the log installed then).
    Call(fn() -> bool),
}

impl FlushGuard {
    /// A guard that calls `flush` when it drops.
    pub(crate) fn calling(flush: fn() -> bool) -> Self {
        FlushGuard {
            flush: Flush::Call(flush),
        }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        let flushed = match &self.flush {
            Flush::Log(log) => log.flush(),
            Flush::Call(flush) => flush(),
        };
        if !flushed {
            tracing::warn!("the async-upload log was not flushed in time; some lines may be lost");
        }
    }
}

/// The last handle stops the writer, after it wrote what is queued.
struct Handle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // The writer only returns; a panic in it was already reported.
            let _ = thread.join();
        }
    }
}

/// A queued line, serialized by the writer thread. Records are the common
/// case and small; the controller's events are boxed so they do not make
/// every slot of the queue as large as a verdict.
enum Item {
    Upload(UploadRecord),
    Event(Box<Event>),
}

#[derive(Default)]
struct State {
    queue: VecDeque<Item>,
    /// Items accepted so far; flush waits until `processed` reaches it.
    enqueued: u64,
    /// Items written or dropped by the writer so far.
    processed: u64,
    shutdown: bool,
    writer_gone: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: an item arrived in an empty queue, or shutdown.
    wake: Condvar,
    /// Wakes flushers: a batch was processed.
    done: Condvar,
    capacity: usize,
    written: AtomicU64,
    dropped_full: AtomicU64,
    dropped_io: AtomicU64,
    /// Set by the caller that dropped the first record of an overflow, so
    /// the writer (not the caller) reports it through `tracing`.
    full_episode: AtomicBool,
}

impl Shared {
    /// A panic elsewhere cannot leave `State` half-changed (each change is
    /// a push or a counter), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, item: Item, limit: usize) {
        let mut state = self.lock();
        if state.queue.len() >= limit || state.writer_gone {
            drop(state);
            self.dropped_full.fetch_add(1, Ordering::Relaxed);
            self.full_episode.store(true, Ordering::Relaxed);
            return;
        }
        let was_empty = state.queue.is_empty();
        state.queue.push_back(item);
        state.enqueued += 1;
        drop(state);
        // The writer waits only on an empty queue: one wake-up per batch,
        // not one syscall per record.
        if was_empty {
            self.wake.notify_one();
        }
    }
}

fn writer_loop(shared: &Shared, mut output: Output) {
    let mut overflow_reported = 0;
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut ends = Vec::new();
    loop {
        let (batch, upto) = {
            let mut state = shared.lock();
            while state.queue.is_empty() && !state.shutdown {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.queue.is_empty() {
                state.writer_gone = true;
                drop(state);
                shared.done.notify_all();
                return;
            }
            (std::mem::take(&mut state.queue), state.enqueued)
        };
        buffer.clear();
        ends.clear();
        let mut unserializable = 0;
        for item in batch {
            let encoded = match item {
                Item::Upload(record) => line::encode_upload(record),
                Item::Event(event) => line::encode(&event),
            };
            match encoded {
                Ok(bytes) => {
                    buffer.extend_from_slice(&bytes);
                    ends.push(buffer.len());
                }
                Err(error) => {
                    unserializable += 1;
                    tracing::error!(%error, "cannot serialize a log line; dropped");
                }
            }
        }
        let written = output.write(&buffer);
        let complete = ends.iter().take_while(|&&end| end <= written).count();
        shared.written.fetch_add(complete as u64, Ordering::Relaxed);
        shared.dropped_io.fetch_add(
            (ends.len() - complete + unserializable) as u64,
            Ordering::Relaxed,
        );
        if shared.full_episode.swap(false, Ordering::Relaxed) {
            let total = shared.dropped_full.load(Ordering::Relaxed);
            tracing::warn!(
                dropped = total - overflow_reported,
                dropped_total = total,
                capacity = shared.capacity,
                "async-upload log queue full; records dropped",
            );
            overflow_reported = total;
        }
        shared.lock().processed = upto;
        shared.done.notify_all();
    }
}
