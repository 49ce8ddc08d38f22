//! One log parsed on several threads, its lines still yielded in order:
//! parsing JSON is nearly all the cost of reading a log, and a report of
//! tens of millions of lines should use every core.
//!
//! A reader thread cuts the file into chunks of whole lines and deals them
//! round-robin to the parsers; the consumer takes the parsed batches back
//! in the same round-robin order. Every channel holds one item, so what is
//! in flight is a few chunks per parser, whatever the file's size.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use super::event::Event;
use super::line::{parse_line, LineError};

/// Bytes per chunk: a few hundred lines, small enough that everything in
/// flight stays in a few megabytes.
const CHUNK: usize = 128 * 1024;

/// A chunk's lines parsed, with line numbers counted from the chunk's
/// start, and how many lines it had: the consumer, which takes chunks in
/// order, makes the numbers the file's.
struct Batch {
    lines: Vec<Result<Event, LineError>>,
    count: usize,
}

type Parsed = io::Result<Batch>;

/// A log parsed by `parsers` threads.
pub(crate) struct Chunked {
    results: Vec<Receiver<Parsed>>,
    /// The parser threads, in the order of `results`, joined when their
    /// channel closes, and the reader.
    parsers: Vec<Option<JoinHandle<()>>>,
    reader: Option<JoinHandle<()>>,
    /// The parser whose batch comes next.
    next: usize,
    /// The current chunk's lines not yet taken, numbered in the file.
    batch: std::vec::IntoIter<Result<Event, LineError>>,
    /// Lines in the chunks received so far.
    lines: usize,
    done: bool,
}

impl Chunked {
    /// Starts reading `source` with `parsers` (at least one) parser threads.
    ///
    /// # Errors
    ///
    /// A thread could not be started.
    pub(crate) fn spawn<R: Read + Send + 'static>(source: R, parsers: usize) -> io::Result<Self> {
        let mut chunks = Vec::new();
        let mut results = Vec::new();
        let mut threads = Vec::new();
        for _ in 0..parsers.max(1) {
            let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Vec<u8>>>(1);
            let (result_tx, result_rx) = sync_channel::<Parsed>(1);
            let parser = thread::Builder::new()
                .name("async-upload-log-parse".into())
                .spawn(move || parse(&chunk_rx, &result_tx))?;
            chunks.push(chunk_tx);
            results.push(result_rx);
            threads.push(Some(parser));
        }
        let reader = thread::Builder::new()
            .name("async-upload-log-read".into())
            .spawn(move || cut(source, &chunks))?;
        Ok(Chunked {
            results,
            parsers: threads,
            reader: Some(reader),
            next: 0,
            batch: Vec::new().into_iter(),
            lines: 0,
            done: false,
        })
    }

    /// The next line, parsed; `Ok(None)` at the end.
    ///
    /// # Errors
    ///
    /// Reading the source failed.
    pub(crate) fn next_event(&mut self) -> io::Result<Option<Result<Event, LineError>>> {
        self.load()?;
        Ok(self.batch.next())
    }

    /// The next line, left in place: a merge compares the times of its
    /// sources' next lines without moving them (an event is a few hundred
    /// bytes).
    ///
    /// # Errors
    ///
    /// Reading the source failed.
    pub(crate) fn peek(&mut self) -> io::Result<Option<&Result<Event, LineError>>> {
        self.load()?;
        Ok(self.batch.as_slice().first())
    }

    /// Takes the next batch when the current one is used up, its line
    /// numbers made the file's.
    fn load(&mut self) -> io::Result<()> {
        while self.batch.as_slice().is_empty() && !self.done {
            let Ok(parsed) = self.results[self.next].recv() else {
                // The parser's channel closed: the end, or a thread died.
                self.done = true;
                return self.ended();
            };
            let mut batch = parsed?;
            for line in &mut batch.lines {
                if let Err(error) = line {
                    error.line += self.lines;
                }
            }
            self.lines += batch.count;
            self.batch = batch.lines.into_iter();
            self.next = (self.next + 1) % self.results.len();
        }
        Ok(())
    }
}

impl Chunked {
    /// The current parser's channel closed: the end of the file when the
    /// parser and the reader returned, an error when either panicked (the
    /// lines it held are lost, and must not read as the end).
    fn ended(&mut self) -> io::Result<()> {
        // The parser has dropped its channel, so it is exiting. It ends
        // normally only once the reader dropped the chunk channels, so then
        // the reader is exiting too; after a parser's panic the reader may
        // be blocked on another parser, and is not waited for.
        if let Some(Err(_)) = self.parsers[self.next].take().map(JoinHandle::join) {
            return Err(io::Error::other("a log parser thread panicked"));
        }
        if let Some(Err(_)) = self.reader.take().map(JoinHandle::join) {
            return Err(io::Error::other("the log reader thread panicked"));
        }
        Ok(())
    }
}

/// The reader thread: whole-line chunks, dealt round-robin; a read error
/// goes in the place of the chunk it cost, and ends the reading.
fn cut<R: Read>(mut source: R, parsers: &[SyncSender<io::Result<Vec<u8>>>]) {
    let mut carry = Vec::new();
    for parser in parsers.iter().cycle() {
        let mut bytes = std::mem::take(&mut carry);
        let at_end = loop {
            match fill(&mut source, &mut bytes) {
                Err(error) => {
                    let _ = parser.send(Err(error));
                    return;
                }
                Ok(0) => break true,
                // A chunk ends after its last whole line (a line longer
                // than a chunk makes the chunk longer); the rest is carried.
                Ok(_) => {
                    if let Some(end) = memchr::memrchr(b'\n', &bytes) {
                        carry = bytes.split_off(end + 1);
                        break false;
                    }
                }
            }
        };
        if bytes.is_empty() {
            return;
        }
        // The consumer went away (the merge was dropped): stop reading.
        if parser.send(Ok(bytes)).is_err() || at_end {
            return;
        }
    }
}

/// Appends up to [`CHUNK`] bytes of `source` to `bytes`; the number of
/// bytes read (fewer than a chunk only at the end, 0 once there).
fn fill<R: Read>(source: &mut R, bytes: &mut Vec<u8>) -> io::Result<usize> {
    // `read_to_end` reads into the spare capacity without zeroing it first
    // (and retries `Interrupted`).
    bytes.reserve(CHUNK);
    source.take(CHUNK as u64).read_to_end(bytes)
}

/// A parser thread: each chunk's lines, parsed, in order, numbered from
/// the chunk's first.
fn parse(chunks: &Receiver<io::Result<Vec<u8>>>, results: &SyncSender<Parsed>) {
    for chunk in chunks {
        let parsed = chunk.map(|bytes| {
            let mut count = 0;
            // Sized up front: growing a vector of events copies them.
            let mut lines = Vec::with_capacity(memchr::memchr_iter(b'\n', &bytes).count() + 1);
            lines.extend(lines_of(&bytes).filter_map(|line| {
                count += 1;
                parse_line(line, count)
            }));
            Batch { lines, count }
        });
        if results.send(parsed).is_err() {
            return;
        }
    }
}

/// `bytes` cut after each newline; the last line may have none.
fn lines_of(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    // memchr, not a byte-at-a-time split: finding the newlines was a sixth
    // of a parser's time.
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(second: u32) -> String {
        format!(
            "{{\"kind\":\"upload\",\"v\":1,\"ts\":\"2026-11-30T00:00:{:02}Z\",\"site\":\"up\",\
             \"execution_type\":\"sync\",\"success\":true,\"duration_ms\":1.0,\"attempts\":0,\
             \"error_type\":null,\"bytes\":null}}\n",
            second % 60
        )
    }

    fn read_all(text: String, parsers: usize) -> Vec<Result<Event, LineError>> {
        let mut chunked = Chunked::spawn(io::Cursor::new(text.into_bytes()), parsers).unwrap();
        let mut lines = Vec::new();
        while let Some(line) = chunked.next_event().unwrap() {
            lines.push(line);
        }
        lines
    }

    #[test]
    fn lines_come_back_in_order_with_their_numbers() {
        // Many chunks' worth, a bad line and a blank one among them, and no
        // newline at the very end.
        let mut text = String::new();
        for i in 0..20_000 {
            text += &upload(i);
            if i == 12_345 {
                text += "not json\n\n";
            }
        }
        text.pop();
        for parsers in [1, 2, 3] {
            let lines = read_all(text.clone(), parsers);
            assert_eq!(lines.len(), 20_001);
            let bad = lines.iter().position(Result::is_err).unwrap();
            assert_eq!(bad, 12_346);
            assert_eq!(lines[bad].as_ref().unwrap_err().line, 12_347);
            let seconds: Vec<u64> = lines
                .iter()
                .filter_map(|line| line.as_ref().ok())
                .map(|event| {
                    event
                        .ts()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        % 60
                })
                .collect();
            let expected: Vec<u64> = (0..20_000).map(|i| i % 60).collect();
            assert_eq!(seconds, expected, "with {parsers} parsers");
        }
    }

    #[test]
    fn a_chunk_is_cut_after_each_newline() {
        let cut = |text: &'static str| lines_of(text.as_bytes()).collect::<Vec<_>>();
        assert_eq!(cut("a\n\nbc"), [&b"a\n"[..], b"\n", b"bc"]);
        assert_eq!(cut("a\n"), [&b"a\n"[..]]);
        assert!(cut("").is_empty());
    }

    #[test]
    fn an_empty_source_has_no_line() {
        assert!(read_all(String::new(), 2).is_empty());
    }

    /// Fails after the first chunk.
    struct Broken(usize);

    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk gone"));
            }
            let line = upload(0);
            let n = line.len().min(buf.len()).min(self.0);
            buf[..n].copy_from_slice(&line.as_bytes()[..n]);
            self.0 -= n;
            Ok(n)
        }
    }

    /// Panics after the first chunk, as a bug in a reader would.
    struct Panicking(usize);

    impl Read for Panicking {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(self.0 > 0, "the source broke");
            let line = upload(0);
            let n = line.len().min(buf.len()).min(self.0);
            buf[..n].copy_from_slice(&line.as_bytes()[..n]);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_thread_that_panics_is_an_error_not_an_end() {
        let mut chunked = Chunked::spawn(Panicking(upload(0).len() * 3), 2).unwrap();
        let mut lines = 0;
        let error = loop {
            match chunked.next_event() {
                Ok(Some(_)) => lines += 1,
                Ok(None) => panic!("the end after {lines} lines"),
                Err(error) => break error,
            }
        };
        assert_eq!(error.to_string(), "the log reader thread panicked");
    }

    #[test]
    fn a_read_error_is_an_error_not_an_end() {
        let mut chunked = Chunked::spawn(Broken(upload(0).len()), 2).unwrap();
        let mut result = Ok(None);
        for _ in 0..10 {
            result = chunked.next_event();
            if !matches!(result, Ok(Some(_))) {
                break;
            }
        }
        assert_eq!(result.unwrap_err().to_string(), "disk gone");
    }
}
