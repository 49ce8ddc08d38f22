//! The line format, both ways: an [`Event`] framed with the format version
//! `"v"`, written rounded and read strictly, and the [`Reader`] that parses
//! a log back.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::event::{Event, StageEvent};
use async_upload_runtime::metrics::UploadRecord;

/// The `"v"` of every line this version writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// An event as written: its own fields, then `"v"`.
#[derive(Serialize)]
struct Framed<'a> {
    #[serde(flatten)]
    event: &'a Event,
    v: u32,
}

/// A line as read: `"v"` must be [`FORMAT_VERSION`].
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "v", deserialize_with = "version")]
    _version: (),
    #[serde(flatten)]
    event: Event,
}

fn version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    let v = u64::deserialize(deserializer)?;
    if v == u64::from(FORMAT_VERSION) {
        Ok(())
    } else {
        Err(D::Error::custom(format_args!(
            "unsupported format version {v} (this reader reads {FORMAT_VERSION})"
        )))
    }
}

/// `duration_ms` as written: rounded to the microsecond (the aggregator's
/// unit), so the log says `0.367`, not `0.36667900000000003`.
pub(crate) fn round_ms(duration_ms: f64) -> f64 {
    (duration_ms * 1000.0).round() / 1000.0
}

/// One line, `\n` included, for `event`; an upload's duration is rounded
/// to the microsecond first.
pub(crate) fn encode(event: &Event) -> serde_json::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(&Framed {
        event,
        v: FORMAT_VERSION,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// One `upload` line for `record`, its duration rounded to the microsecond.
pub(crate) fn encode_upload(mut record: UploadRecord) -> serde_json::Result<Vec<u8>> {
    record.duration_ms = round_ms(record.duration_ms);
    encode(&Event::Upload(record))
}

/// Parses one line (without its newline) strictly: a field that does not
/// parse, a missing one, or a value no writer produces is an error naming it.
///
/// # Errors
///
/// What is wrong with the line, for a person.
pub(crate) fn decode(text: &str) -> Result<Event, String> {
    let frame: Frame = serde_json::from_str(text).map_err(|e| e.to_string())?;
    check(&frame.event)?;
    Ok(frame.event)
}

/// What serde cannot say: values that parse but no writer produces.
fn check(event: &Event) -> Result<(), String> {
    match event {
        Event::Upload(record) => check_upload(record),
        Event::Stage(StageEvent::Entered(e) | StageEvent::RollbackCleared(e))
            if e.criteria.as_ref().is_some_and(|c| c.number != e.stage) =>
        {
            Err(format!(
                "`stage` {} and `criteria.number` {} disagree",
                e.stage,
                e.criteria.as_ref().map_or(0, |c| c.number)
            ))
        }
        _ => Ok(()),
    }
}

fn check_upload(record: &UploadRecord) -> Result<(), String> {
    if record.duration_ms.is_finite() && record.duration_ms >= 0.0 {
        return Ok(());
    }
    Err(format!(
        "`duration_ms` {} is not a duration: a finite number of milliseconds ≥ 0 is accepted",
        record.duration_ms
    ))
}

/// Line number `line` of a log, its newline included or not: `None` when
/// it is blank, else the event or what is wrong with it.
pub(crate) fn parse_line(bytes: &[u8], line: usize) -> Option<Result<Event, LineError>> {
    // Nearly every line is an upload: parsed straight from the bytes into a
    // record, without the tagged enum's buffering of each line. Anything
    // else, or anything wrong, takes the strict path, which names the fault.
    // A record that fails the check goes the strict way too, to be named.
    let upload = async_upload_runtime::metrics::upload_from_line(bytes, FORMAT_VERSION)
        .filter(|record| check_upload(record).is_ok());
    if let Some(record) = upload {
        return Some(Ok(Event::Upload(record)));
    }
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) if text.trim().is_empty() => return None,
        Ok(text) => decode(text.trim()),
        Err(error) => Err(format!("not UTF-8: {error}")),
    };
    Some(parsed.map_err(|message| LineError { line, message }))
}

/// A line that could not be parsed: reported and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
/// use async_upload::log::{Event, Reader};
///
/// let text = "{\"kind\":\"upload\",\"v\":1,\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"upload\",\
///             \"execution_type\":\"async\",\"success\":true,\"duration_ms\":12.5,\
///             \"attempts\":1,\"error_type\":null,\"bytes\":null}\n\
///             not json\n";
/// let events: Vec<_> = Reader::new(text.as_bytes()).collect();
/// assert!(matches!(&events[0], Ok(Event::Upload(r)) if r.site == "upload"));
/// assert_eq!(events[1].as_ref().unwrap_err().line, 2);
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
    pub fn next_event(&mut self) -> io::Result<Option<Result<Event, LineError>>> {
        loop {
            self.buffer.clear();
            if self.inner.read_until(b'\n', &mut self.buffer)? == 0 {
                return Ok(None);
            }
            self.line += 1;
            if let Some(parsed) = parse_line(&self.buffer, self.line) {
                return Ok(Some(parsed));
            }
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
    type Item = Result<Event, LineError>;

    /// A read error of the source ends the iteration with one `Err` naming
    /// the line it happened after; use [`Reader::next_event`] to tell the
    /// two apart.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_event() {
            Ok(event) => event,
            Err(error) => {
                self.failed = true;
                Some(Err(self.error(format!("read error: {error}"))))
            }
        }
    }
}

/// A whole log in memory: the upload records, the controller's events, and
/// the lines skipped.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Log {
    /// The `upload` lines, in file order.
    pub uploads: Vec<UploadRecord>,
    /// The other lines (the controller's `stage` and `rollback` events), in
    /// file order.
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
        while let Some(event) = reader.next_event()? {
            match event {
                Ok(Event::Upload(record)) => log.uploads.push(record),
                Ok(event) => log.events.push(event),
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
        self.events.sort_by_key(Event::ts);
    }
}

/// What a log is replayed into: its records and events, in time order.
#[cfg(feature = "report")]
pub trait Replay {
    /// One upload record.
    fn record(&mut self, record: &UploadRecord);
    /// One controller event.
    fn event(&mut self, event: &Event);
}

#[cfg(feature = "report")]
impl Log {
    /// Feeds `into` every record and event in time order (an event before
    /// the records of its instant), whether or not the log was sorted.
    pub fn replay(&self, into: &mut impl Replay) {
        let mut uploads: Vec<&UploadRecord> = self.uploads.iter().collect();
        let mut events: Vec<&Event> = self.events.iter().collect();
        // Stable: equal times keep the file's order.
        uploads.sort_by_key(|record| record.ts);
        events.sort_by_key(|event| event.ts());
        let mut events = events.into_iter().peekable();
        for record in uploads {
            while let Some(event) = events.next_if(|e| e.ts() <= record.ts) {
                into.event(event);
            }
            into.record(record);
        }
        events.for_each(|event| into.event(event));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_to_the_microsecond() {
        // 366 679 ns measured, as the executor computes it.
        let measured = 366_679.0 / 1e6;
        assert_eq!(serde_json::to_string(&round_ms(measured)).unwrap(), "0.367");
        assert_eq!(
            serde_json::to_string(&round_ms(12.345_678_9)).unwrap(),
            "12.346"
        );
        assert_eq!(serde_json::to_string(&round_ms(1500.0)).unwrap(), "1500.0");
    }
}
