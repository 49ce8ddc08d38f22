//! The sources of a merge: each log's lines, read line by line in the
//! caller's thread or parsed on threads of their own, peeked at in place;
//! and their merge in time order.

use std::io::{self, BufRead};
use std::time::SystemTime;

use super::chunked::Chunked;
use super::event::Event;
use super::line::{LineError, Reader};

/// Where a source's lines come from.
// A merge holds a few of these, the read-ahead line inline.
#[allow(clippy::large_enum_variant)]
pub(super) enum Lines<'a> {
    /// Read and parsed in the caller's thread; the next line read ahead.
    Here {
        reader: Reader<Box<dyn BufRead + 'a>>,
        head: Option<Result<Event, LineError>>,
    },
    /// Read and parsed on threads of their own.
    Threads(Chunked),
}

impl Lines<'_> {
    pub(super) fn next_event(&mut self) -> io::Result<Option<Result<Event, LineError>>> {
        match self {
            Lines::Here { reader, head } => match head.take() {
                Some(line) => Ok(Some(line)),
                None => reader.next_event(),
            },
            Lines::Threads(chunked) => chunked.next_event(),
        }
    }

    pub(super) fn peek(&mut self) -> io::Result<Option<&Result<Event, LineError>>> {
        match self {
            Lines::Here { reader, head } => {
                if head.is_none() {
                    *head = reader.next_event()?;
                }
                Ok(head.as_ref())
            }
            Lines::Threads(chunked) => chunked.peek(),
        }
    }
}

impl<'a> Lines<'a> {
    /// `source` read line by line in the calling thread.
    pub(super) fn here(source: impl BufRead + 'a) -> Self {
        Lines::Here {
            reader: Reader::new(Box::new(source)),
            head: None,
        }
    }
}

/// Sources merged in the calling thread.
pub(super) struct Sources<'a>(pub(super) Vec<Lines<'a>>);

impl Sources<'_> {
    /// The earliest next line of any source, with the source's index.
    pub(super) fn next_event(&mut self) -> Result<Option<SourcedLine>, MergeError> {
        let sources = &mut self.0;
        // One source needs no comparing.
        let index = if sources.len() == 1 {
            0
        } else {
            let peeks = sources.iter_mut().enumerate().map(|(index, source)| {
                source.peek().map_err(|error| MergeError {
                    source: index,
                    error,
                })
            });
            match earliest(peeks)? {
                Some(index) => index,
                None => return Ok(None),
            }
        };
        let Some(source) = sources.get_mut(index) else {
            return Ok(None);
        };
        let line = source.next_event().map_err(|error| MergeError {
            source: index,
            error,
        })?;
        Ok(line.map(|line| (index, line)))
    }
}

/// Which of the next lines `peeks` (one per source, in order) comes first:
/// a malformed line at once (it has no time), else the earliest, the lower
/// index on a tie; `None` when every source is at its end. The lines are
/// compared where they are, and only the one chosen is then moved: an
/// event is a few hundred bytes.
pub(super) fn earliest<'l>(
    peeks: impl Iterator<Item = Result<Option<&'l Result<Event, LineError>>, MergeError>>,
) -> Result<Option<usize>, MergeError> {
    let mut earliest: Option<(SystemTime, usize)> = None;
    for (index, peek) in peeks.enumerate() {
        let ts = match peek? {
            None => continue,
            Some(Err(_)) => return Ok(Some(index)),
            Some(Ok(event)) => event.ts(),
        };
        if earliest.is_none_or(|(at, _)| ts < at) {
            earliest = Some((ts, index));
        }
    }
    Ok(earliest.map(|(_, index)| index))
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
