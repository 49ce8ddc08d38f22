//! A group of log files merged on a thread of its own, its lines handed
//! over in batches: with more files than get parser threads each, the
//! groups share out the parsing across the cores.

use std::fs::File;
use std::io::{self, BufReader};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

use super::sources::{Lines, MergeError, SourcedLine, Sources};

/// Lines handed over at a time.
const BATCH: usize = 1024;

/// What the merging thread hands over.
enum Handover {
    /// Up to [`BATCH`] lines, in order.
    Lines(Vec<SourcedLine>),
    /// The merge is over: every line was handed over, or this stopped it.
    End(Result<(), MergeError>),
}

/// A group of files merging on a thread of its own.
pub(super) struct Handoff {
    /// The index of the group's first file in the whole merge.
    first: usize,
    /// Files in the group.
    pub(super) sources: usize,
    handed: Receiver<Handover>,
    batch: std::vec::IntoIter<SourcedLine>,
    /// The thread said the merge is over.
    over: bool,
}

impl Handoff {
    /// Merges `files`, read line by line, on a thread of its own; the first
    /// is source `first` of the whole merge.
    pub(super) fn spawn(files: Vec<File>, first: usize) -> io::Result<Self> {
        let sources = files.len();
        let (sender, handed) = sync_channel(2);
        thread::Builder::new()
            .name("async-upload-log-merge".into())
            .spawn(move || {
                let mut sources = Sources(
                    files
                        .into_iter()
                        .map(|file| Lines::here(BufReader::new(file)))
                        .collect(),
                );
                hand_over(&mut sources, first, &sender);
            })?;
        Ok(Handoff {
            first,
            sources,
            handed,
            batch: Vec::new().into_iter(),
            over: false,
        })
    }

    /// The group's next line, left in place.
    pub(super) fn peek(&mut self) -> Result<Option<&SourcedLine>, MergeError> {
        self.load()?;
        Ok(self.batch.as_slice().first())
    }

    /// The group's next line.
    pub(super) fn next_event(&mut self) -> Result<Option<SourcedLine>, MergeError> {
        self.load()?;
        Ok(self.batch.next())
    }

    /// Takes the next batch when the current one is used up.
    fn load(&mut self) -> Result<(), MergeError> {
        while self.batch.as_slice().is_empty() && !self.over {
            match self.handed.recv() {
                Ok(Handover::Lines(batch)) => self.batch = batch.into_iter(),
                Ok(Handover::End(end)) => {
                    self.over = true;
                    end?;
                }
                // The thread ended without saying so: it panicked, and the
                // lines it held are lost. Said, not taken for the end.
                Err(_) => {
                    self.over = true;
                    return Err(MergeError {
                        source: self.first,
                        error: io::Error::other("the thread merging these logs stopped"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The merging thread: the lines of `sources` in batches (numbered from `first`),
/// then the end.
fn hand_over(sources: &mut Sources<'_>, first: usize, sender: &SyncSender<Handover>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let end = loop {
            match sources.next_event() {
                Ok(Some((source, line))) => batch.push((first + source, line)),
                Ok(None) => break Some(Ok(())),
                Err(error) => {
                    break Some(Err(MergeError {
                        source: first + error.source,
                        ..error
                    }))
                }
            }
            if batch.len() == BATCH {
                break None;
            }
        };
        // The lines read before an error go out before it. A failed send:
        // the merge was dropped, stop reading.
        if !batch.is_empty() && sender.send(Handover::Lines(batch)).is_err() {
            return;
        }
        if let Some(end) = end {
            let _ = sender.send(Handover::End(end));
            return;
        }
    }
}
