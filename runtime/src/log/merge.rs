//! Several instances' logs read as one, in time order, a line at a time.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::num::NonZeroUsize;
use std::path::Path;

use super::chunked::Chunked;
use super::event::Event;
use super::line::{LineError, Reader};

/// Up to this many files, each is parsed on threads of its own; more are
/// read line by line in the caller's thread, so memory stays bounded
/// whatever the number of files.
const MAX_THREADED_FILES: usize = 16;

/// Several logs (one per instance) read as one: each step yields the
/// earliest of the sources' next lines, so a fleet's files replay in time
/// order while only a few lines per file are held in memory.
///
/// Each source is expected in time order, as a sink writes it; a malformed
/// line is yielded as soon as it is read, with its source's index.
/// [`Merged::open`] parses files on every core; [`Merged::new`] reads any
/// [`BufRead`] in the caller's thread.
///
/// ```
/// use async_upload::log::{Event, Merged};
///
/// let line = |ts: &str| format!(
///     "{{\"kind\":\"upload\",\"v\":1,\"ts\":\"{ts}\",\"site\":\"up\",\"execution_type\":\"sync\",\
///      \"success\":true,\"duration_ms\":1.0,\"attempts\":0,\"error_type\":null,\"bytes\":null}}\n"
/// );
/// let a = line("2026-11-30T00:00:01Z") + &line("2026-11-30T00:00:03Z");
/// let b = line("2026-11-30T00:00:02Z");
/// let mut merged = Merged::new([a.as_bytes(), b.as_bytes()]);
/// let mut order = Vec::new();
/// while let Some((source, line)) = merged.next_event()? {
///     assert!(matches!(line, Ok(Event::Upload(_))));
///     order.push(source);
/// }
/// assert_eq!(order, [0, 1, 0]);
/// # Ok::<(), async_upload::log::MergeError>(())
/// ```
pub struct Merged<'a> {
    sources: Vec<Source<'a>>,
}

impl core::fmt::Debug for Merged<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Merged")
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

struct Source<'a> {
    lines: Lines<'a>,
    /// The next parsed line, read ahead.
    head: Option<Event>,
    done: bool,
}

/// Where a source's lines come from.
enum Lines<'a> {
    /// Read and parsed in the caller's thread.
    Here(Reader<Box<dyn BufRead + 'a>>),
    /// Read and parsed on threads of their own.
    Threads(Chunked),
}

impl Lines<'_> {
    fn next_event(&mut self) -> io::Result<Option<Result<Event, LineError>>> {
        match self {
            Lines::Here(reader) => reader.next_event(),
            Lines::Threads(chunked) => chunked.next_event(),
        }
    }
}

/// One line of a merged log: the index of its source, and its event or
/// what is wrong with it.
pub type SourcedLine = (usize, Result<Event, LineError>);

/// Opening or reading one of the merged sources failed (the source, not a
/// line's content): the merge cannot go on without losing its lines.
#[derive(Debug)]
#[non_exhaustive]
pub struct MergeError {
    /// The index of the source, in the order given.
    pub source: usize,
    /// What failed.
    pub error: io::Error,
}

impl core::fmt::Display for MergeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "log {}: {}", self.source, self.error)
    }
}

impl std::error::Error for MergeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<'a> Merged<'a> {
    /// Merges `sources`, each a log in time order, read in the caller's
    /// thread.
    pub fn new<R: BufRead + 'a>(sources: impl IntoIterator<Item = R>) -> Self {
        Self::of(
            sources
                .into_iter()
                .map(|source| Lines::Here(Reader::new(Box::new(source)))),
        )
    }

    fn of(lines: impl Iterator<Item = Lines<'a>>) -> Self {
        Merged {
            sources: lines
                .map(|lines| Source {
                    lines,
                    head: None,
                    done: false,
                })
                .collect(),
        }
    }

    /// The earliest next line of any source, with the source's index;
    /// `Ok(None)` when every source is at its end. Equal times come from
    /// the lower index first.
    ///
    /// # Errors
    ///
    /// Reading a source failed.
    pub fn next_event(&mut self) -> Result<Option<SourcedLine>, MergeError> {
        // One source needs no merging: its lines go straight out, an event
        // being a few hundred bytes to move.
        if let [source] = self.sources.as_mut_slice() {
            let line = source.lines.next_event();
            return line
                .map(|line| line.map(|line| (0, line)))
                .map_err(|error| MergeError { source: 0, error });
        }
        for (index, source) in self.sources.iter_mut().enumerate() {
            if source.head.is_some() || source.done {
                continue;
            }
            match source.lines.next_event().map_err(|error| MergeError {
                source: index,
                error,
            })? {
                Some(Ok(event)) => source.head = Some(event),
                Some(Err(error)) => return Ok(Some((index, Err(error)))),
                None => source.done = true,
            }
        }
        let earliest = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(index, source)| Some((source.head.as_ref()?.ts(), index)))
            .min();
        Ok(earliest.and_then(|(_, index)| {
            let event = self.sources[index].head.take()?;
            Some((index, Ok(event)))
        }))
    }
}

impl Merged<'static> {
    /// Opens the log files at `paths` and merges them, parsing on every
    /// core: a few files each get parser threads of their own (the cores
    /// shared out among them), more than 16 are read line by line.
    ///
    /// # Errors
    ///
    /// A file cannot be opened, or a thread started.
    pub fn open<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Result<Self, MergeError> {
        let files = paths
            .into_iter()
            .enumerate()
            .map(|(source, path)| File::open(path).map_err(|error| MergeError { source, error }))
            .collect::<Result<Vec<_>, _>>()?;
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let parsers =
            (files.len() <= MAX_THREADED_FILES).then(|| (cores / files.len().max(1)).max(1));
        let lines = files
            .into_iter()
            .enumerate()
            .map(|(source, file)| match parsers {
                Some(parsers) => Chunked::spawn(file, parsers)
                    .map(Lines::Threads)
                    .map_err(|error| MergeError { source, error }),
                None => Ok(Lines::Here(Reader::new(Box::new(BufReader::new(file))))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::of(lines.into_iter()))
    }
}
