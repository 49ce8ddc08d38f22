//! The JSONL log: one [`Event`] type for every line, a [`JsonlLog`] sink
//! that writes records and events off the caller's path, a [`Reader`] that
//! parses a log back ([`Merged`]: several instances' logs as one), and CSV
//! export ([`write_csv`], with the `report` feature).
//!
//! # Format
//!
//! One JSON object per line, an [`Event`] tagged by `kind` (and `stage`
//! lines by `event`), with the format version `"v": 1`:
//!
//! ```text
//! {"kind":"upload","ts":"2026-11-30T01:25:18.123456Z","site":"upload","execution_type":"async","success":true,"duration_ms":12.5,"attempts":1,"error_type":null,"bytes":2048,"v":1}
//! {"kind":"stage","event":"entered","ts":"…","site":"upload","stage":2,"rollout":10.0,"criteria":{…},"triggers":{…},…,"v":1}
//! {"kind":"stage","event":"verdict","ts":"…","site":"upload","stage":2,"rollout":10.0,"verdict":"hold",…,"v":1}
//! {"kind":"stage","event":"rollback_cleared","ts":"…","site":"upload","stage":2,…,"v":1}
//! {"kind":"rollback","ts":"…","site":"upload","stage":2,"trigger":"success_rate","measured":0.9,"threshold":0.95,…,"v":1}
//! {"kind":"breaker","ts":"…","site":"upload","event":"open","cooldown_s":1.0,"v":1}
//! {"kind":"operator","ts":"…","site":"upload","setting":"rollout","old":"1","new":"10","by":"operator","v":1}
//! ```
//!
//! `upload` lines are [`UploadRecord`](async_upload_runtime::metrics::UploadRecord)s
//! (raw rollout keys are never logged); `stage` and `rollback` lines are
//! written by the [rollout controller](crate::stages::Controller);
//! `breaker` lines ([`BreakerEvent`]) and `operator` lines
//! ([`OperatorEvent`], one per setting an operator's change moved) are the
//! notices the circuit breakers and the configuration handle send every
//! sink ([`MetricsSink::breaker_changed`], [`MetricsSink::config_changed`]),
//! which the log, a sink, writes. Fields may come in any
//! order; a field added to v1 after the first release is optional, so a
//! log an earlier release wrote stays readable. Durations are written rounded to the microsecond.
//! Reading is strict: a line with a field missing or of the wrong type, a
//! negative or non-finite duration, an impossible timestamp or another
//! format version is a [`LineError`] naming what is wrong, and reading
//! goes on with the next line.
//!
//! # Enabling it
//!
//! With no code: set `ASYNC_UPLOAD_LOG=/var/log/app/uploads.jsonl`; the
//! first use of the configuration installs the sink ([`install_global`]).
//! Keep [`guard`] alive in `main` so the last records reach the file when
//! the process exits:
//!
//! ```no_run
//! fn main() {
//!     let _log = async_upload::log::guard();
//!     // … run the service …
//! } // everything recorded so far is written here
//! ```
//!
//! By hand, a [`JsonlLog`] is a [`MetricsSink`]: added with
//! [`add_sink`](async_upload_runtime::metrics::add_sink), it writes the records and the
//! breaker and operator notices, as the log from `ASYNC_UPLOAD_LOG` does:
//!
//! ```
//! use async_upload::log::JsonlLog;
//! use async_upload::metrics::{add_sink, remove_sink};
//!
//! let path = std::env::temp_dir().join(format!("docs-log-{}.jsonl", std::process::id()));
//! let log = JsonlLog::open(&path)?;
//! let id = add_sink(log.clone());
//! // … calls are recorded …
//! remove_sink(id);
//! log.flush();
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Guarantees
//!
//! - Recording never blocks on I/O and never fails the call: the record is
//!   queued (bounded, [`DEFAULT_CAPACITY`]) and a background thread writes
//!   it, normally within a few milliseconds and well within 100 ms.
//! - When the queue is full or a write fails, the record is dropped and
//!   counted ([`JsonlLog::stats`]); each episode is reported once through
//!   `tracing`. After a failure the file is reopened on the next write, so
//!   the log recovers as soon as the path is writable again (also after its
//!   directory was removed and recreated, or the file rotated away).
//! - Lines are never interleaved: one thread writes whole lines. A line cut
//!   short by a failed write (a full disk) is ended before the next one, in
//!   a file or any writer, so a reader reports it as one malformed line and
//!   reads the rest.
//!
//! [`MetricsSink`]: async_upload_runtime::metrics::MetricsSink
//! [`MetricsSink::breaker_changed`]: async_upload_runtime::metrics::MetricsSink::breaker_changed
//! [`MetricsSink::config_changed`]: async_upload_runtime::metrics::MetricsSink::config_changed

// The guard example needs its `main` to show where the guard lives.
#![allow(clippy::needless_doctest_main)]

mod chunked;
#[cfg(feature = "report")]
mod csv;
#[cfg(feature = "report")]
mod dedup;
mod event;
mod handoff;
mod line;
mod merge;
mod operator;
mod output;
mod sink;
mod sources;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(feature = "report")]
#[cfg_attr(docsrs, doc(cfg(feature = "report")))]
pub use self::csv::{write_csv, CsvWriter, CSV_HEADER};
#[cfg(feature = "report")]
pub use dedup::Dedup;
pub(crate) use event::reason;
pub use event::{Event, RollbackEvent, StageEntered, StageEvent, VerdictEvent};
// The breaker's notice is the `breaker` line's content: also here, beside
// the log's other events, where it always was.
pub use async_upload_runtime::metrics::{BreakerChange, BreakerEvent};
#[cfg(feature = "report")]
pub use line::Replay;
pub use line::{read_file, LineError, Log, Reader, FORMAT_VERSION};
pub use merge::Merged;
pub use operator::OperatorEvent;
pub use sink::{FlushGuard, JsonlLog, LogStats, DEFAULT_CAPACITY};
pub use sources::{MergeError, SourcedLine};

use async_upload_runtime::metrics::{replace_sink, MetricsSink, SinkId};

/// The log installed from `ASYNC_UPLOAD_LOG` / `Config::log_path`.
struct Installed {
    path: PathBuf,
    log: JsonlLog,
    sink: SinkId,
}

static GLOBAL: Mutex<Option<Installed>> = Mutex::new(None);

/// Makes `path` the process's JSONL log: every record of every site goes
/// there from now on. `None` removes it.
///
/// Idempotent: installing the same path again changes nothing; another path
/// replaces the previous log (which is flushed first). The configuration
/// calls this with `Config::log_path` when it is first read and whenever it
/// changes, so `ASYNC_UPLOAD_LOG` needs no code.
///
/// Never panics and never fails the service: a path that cannot be opened
/// is reported through `tracing` and the log is installed anyway, dropping
/// (and counting) records until the path becomes writable.
pub fn install_global(path: Option<&Path>) {
    let mut global = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
    if global.as_ref().map(|installed| installed.path.as_path()) == path {
        return;
    }
    let previous = global.take();
    let next = path.map(|path| {
        let log = match JsonlLog::open(path) {
            Ok(log) => log,
            Err(error) => {
                tracing::error!(
                    path = %path.display(),
                    %error,
                    "cannot open the async-upload log; records are dropped until it is writable",
                );
                JsonlLog::builder(path).spawn()
            }
        };
        (path.to_owned(), log)
    });
    // One step from the previous log to the next: a record or a notice (a
    // breaker's transition on another thread) sent meanwhile reaches one
    // of them, never neither nor both.
    let sink = replace_sink(
        previous.as_ref().map(|installed| installed.sink),
        next.as_ref()
            .map(|(_, log)| Arc::new(log.clone()) as Arc<dyn MetricsSink>),
    );
    if let Some(previous) = previous {
        previous.log.flush();
    }
    if let (Some((path, log)), Some(sink)) = (next, sink) {
        *global = Some(Installed { path, log, sink });
    }
}

/// The log installed by [`install_global`] (from `ASYNC_UPLOAD_LOG`), if any.
#[must_use]
pub fn global() -> Option<JsonlLog> {
    GLOBAL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|installed| installed.log.clone())
}

/// Waits until everything recorded so far is in the global log's file (or
/// dropped); `true` if it got there within the flush timeout, or if there
/// is no global log.
#[allow(clippy::must_use_candidate)] // flushing for its effect is the usual use
pub fn flush() -> bool {
    global().is_none_or(|log| log.flush())
}

/// Flushes the global log when dropped: keep one alive in `main` so a
/// service that exits loses no record.
///
/// The guard looks the global log up when it drops, so a log installed
/// after the guard was made (`ASYNC_UPLOAD_LOG` is installed when the
/// configuration is first read, e.g. by the first call) is flushed too.
#[must_use = "the log is flushed when the guard is dropped"]
pub fn guard() -> FlushGuard {
    FlushGuard::calling(flush)
}
