//! The line format, both ways: writing `upload` and event lines, and the
//! [`Reader`] that parses a log back.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::metrics::UploadRecord;

/// The `"v"` of every line this version writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Line<'a, T: ?Sized> {
    kind: &'a str,
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// `{"kind":"upload","v":1,…record…}\n`
pub(crate) fn upload_line(record: &UploadRecord) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(&Line {
        kind: "upload",
        v: FORMAT_VERSION,
        body: record,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// `{"kind":kind,"v":1,…event…}` (no newline).
pub(crate) fn event_line<T: Serialize + ?Sized>(
    kind: &str,
    event: &T,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Line {
        kind,
        v: FORMAT_VERSION,
        body: event,
    })
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// An `upload` line.
    Upload(UploadRecord),
    /// Any other kind (`stage`, `rollback`, or a kind a newer version writes).
    Event(Event),
}

/// A line other than `upload`, kept as its JSON fields.
///
/// The controller's events are typed on the writing side
/// ([`stages`](crate::stages)); readers pick the fields they need, so a
/// log written by a newer version with extra fields still reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The line's `kind`, e.g. `stage` or `rollback`.
    pub kind: String,
    /// The line's `site`, when it has one.
    pub site: Option<String>,
    /// The line's `ts`, when it has a valid one.
    pub ts: Option<SystemTime>,
    /// Every field of the line, `kind`, `v`, `site` and `ts` included.
    pub fields: Map<String, Value>,
}

impl Event {
    /// A string field.
    #[must_use]
    pub fn str(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// A number field.
    #[must_use]
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.fields.get(name).and_then(Value::as_f64)
    }
}

/// A line that could not be parsed: reported and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl core::fmt::Display for LineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// Parses a log line by line. Blank lines are skipped; a malformed line is
/// an `Err` with its line number, and reading goes on.
///
/// ```
/// use async_upload_runtime::log::{Entry, Reader};
///
/// let text = "{\"kind\":\"upload\",\"v\":1,\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"upload\",\
///             \"execution_type\":\"async\",\"success\":true,\"duration_ms\":12.5,\
///             \"attempts\":1,\"error_type\":null,\"bytes\":null}\n\
///             not json\n";
/// let entries: Vec<_> = Reader::new(text.as_bytes()).collect();
/// assert!(matches!(&entries[0], Ok(Entry::Upload(r)) if r.site == "upload"));
/// assert_eq!(entries[1].as_ref().unwrap_err().line, 2);
/// ```
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    line: usize,
    buffer: Vec<u8>,
    failed: bool,
}

impl<R: BufRead> Reader<R> {
    /// A reader of `inner`.
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            line: 0,
            buffer: Vec::new(),
            failed: false,
        }
    }

    /// The next non-blank line, parsed; `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// Reading failed (the source, not a line's content).
    pub fn next_entry(&mut self) -> io::Result<Option<Result<Entry, LineError>>> {
        loop {
            self.buffer.clear();
            if self.inner.read_until(b'\n', &mut self.buffer)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = match std::str::from_utf8(&self.buffer) {
                Ok(text) => text.trim(),
                Err(error) => {
                    return Ok(Some(Err(self.error(format!("not UTF-8: {error}")))));
                }
            };
            if text.is_empty() {
                continue;
            }
            let parsed = parse_line(text).map_err(|message| LineError {
                line: self.line,
                message,
            });
            return Ok(Some(parsed));
        }
    }

    fn error(&self, message: String) -> LineError {
        LineError {
            line: self.line,
            message,
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Entry, LineError>;

    /// A read error of the source ends the iteration with one `Err` naming
    /// the line it happened after; use [`Reader::next_entry`] to tell the
    /// two apart.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(entry) => entry,
            Err(error) => {
                self.failed = true;
                Some(Err(self.error(format!("read error: {error}"))))
            }
        }
    }
}

fn parse_line(text: &str) -> Result<Entry, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(fields) = value else {
        return Err("not a JSON object".into());
    };
    match fields.get("v") {
        Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(v) => {
            return Err(format!(
                "unsupported format version {v} (this reader reads 1)"
            ))
        }
        None => return Err("no format version `v`".into()),
    }
    let kind = match fields.get("kind") {
        Some(Value::String(kind)) => kind.clone(),
        _ => return Err("no `kind`".into()),
    };
    if kind == "upload" {
        let record: UploadRecord = serde_json::from_value(Value::Object(fields))
            .map_err(|e| format!("bad upload line: {e}"))?;
        return Ok(Entry::Upload(record));
    }
    let site = fields
        .get("site")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let ts = fields
        .get("ts")
        .and_then(Value::as_str)
        .and_then(|ts| humantime::parse_rfc3339_weak(ts).ok());
    Ok(Entry::Event(Event {
        kind,
        site,
        ts,
        fields,
    }))
}

/// A whole log in memory: records, events, and the lines skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Log {
    /// The `upload` lines, in file order.
    pub uploads: Vec<UploadRecord>,
    /// The other lines, in file order.
    pub events: Vec<Event>,
    /// The malformed lines, reported and skipped.
    pub errors: Vec<LineError>,
}

impl Log {
    /// Reads a whole log.
    ///
    /// # Errors
    ///
    /// Reading the source failed; malformed lines are not errors but
    /// [`Log::errors`].
    pub fn read(source: impl BufRead) -> io::Result<Log> {
        let mut reader = Reader::new(source);
        let mut log = Log::default();
        while let Some(entry) = reader.next_entry()? {
            match entry {
                Ok(Entry::Upload(record)) => log.uploads.push(record),
                Ok(Entry::Event(event)) => log.events.push(event),
                Err(error) => log.errors.push(error),
            }
        }
        Ok(log)
    }

    /// Whether no line parsed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty() && self.events.is_empty()
    }

    /// Adds `other`'s entries (another instance's log) and orders records
    /// and events by time; entries with equal times keep their order.
    pub fn merge(&mut self, other: Log) {
        self.uploads.extend(other.uploads);
        self.events.extend(other.events);
        self.errors.extend(other.errors);
        self.uploads.sort_by_key(|record| record.ts);
        self.events.sort_by_key(|event| event.ts);
    }
}

/// Reads the log at `path`.
///
/// # Errors
///
/// The file cannot be opened or read.
pub fn read_file(path: impl AsRef<Path>) -> io::Result<Log> {
    Log::read(BufReader::new(File::open(path)?))
}
