//! Several instances' logs read as one, in time order, a line at a time.

use std::fs::File;
use std::io::BufRead;
use std::num::NonZeroUsize;
use std::path::Path;

use super::chunked::Chunked;
use super::handoff::Handoff;
use super::sources::{earliest, Lines, MergeError, SourcedLine, Sources};

/// Up to this many files, each is parsed on threads of its own; more are
/// read line by line and merged on one thread, so memory and threads stay
/// bounded whatever the number of files.
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
    merge: Merge<'a>,
}

enum Merge<'a> {
    /// Merged in the caller's thread.
    Here(Sources<'a>),
    /// Groups of files, each merged on a thread of its own, their lines
    /// handed over in batches and merged here.
    Groups(Vec<Handoff>),
}

impl core::fmt::Debug for Merged<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let sources = match &self.merge {
            Merge::Here(sources) => sources.0.len(),
            Merge::Groups(groups) => groups.iter().map(|group| group.sources).sum(),
        };
        f.debug_struct("Merged")
            .field("sources", &sources)
            .finish_non_exhaustive()
    }
}

impl<'a> Merged<'a> {
    /// Merges `sources`, each a log in time order, read in the caller's
    /// thread.
    pub fn new<R: BufRead + 'a>(sources: impl IntoIterator<Item = R>) -> Self {
        Merged {
            merge: Merge::Here(Sources(sources.into_iter().map(Lines::here).collect())),
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
        match &mut self.merge {
            Merge::Here(sources) => sources.next_event(),
            Merge::Groups(groups) => {
                let peeks = groups
                    .iter_mut()
                    .map(|group| Ok(group.peek()?.map(|(_, line)| line)));
                match earliest(peeks)? {
                    Some(group) => groups[group].next_event(),
                    None => Ok(None),
                }
            }
        }
    }
}

impl Merged<'static> {
    /// Opens the log files at `paths` and merges them, parsing on every
    /// core: up to 16 files each get parser threads of their own (the cores
    /// shared out among them); more are read line by line and merged on
    /// one thread, beside the caller's.
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
        let count = files.len();
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        if count > MAX_THREADED_FILES {
            // One group of neighbouring files per core: each merged on a
            // thread of its own, the groups merged here. Ties still go to
            // the lower index, as a group holds a range of them.
            let per_group = count.div_ceil(cores);
            let mut files = files.into_iter();
            let groups = (0..count)
                .step_by(per_group)
                .map(|first| {
                    let group: Vec<File> = files.by_ref().take(per_group).collect();
                    Handoff::spawn(group, first).map_err(|error| MergeError {
                        source: first,
                        error,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Merged {
                merge: Merge::Groups(groups),
            });
        }
        let parsers = (cores / count.max(1)).max(1);
        let lines = files
            .into_iter()
            .enumerate()
            .map(|(source, file)| {
                Chunked::spawn(file, parsers)
                    .map(Lines::Threads)
                    .map_err(|error| MergeError { source, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Merged {
            merge: Merge::Here(Sources(lines)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_796_000_000;

    fn upload(second: u64) -> String {
        let ts = std::time::UNIX_EPOCH + std::time::Duration::from_secs(START + second);
        format!(
            "{{\"kind\":\"upload\",\"v\":1,\"ts\":\"{}\",\"site\":\"up\",\
             \"execution_type\":\"sync\",\"success\":true,\"duration_ms\":1.0,\"attempts\":0,\
             \"error_type\":null,\"bytes\":null}}\n",
            humantime::format_rfc3339(ts)
        )
    }

    /// `sources` written as files in a fresh directory.
    fn files(name: &str, sources: &[String]) -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
        let dir = std::env::temp_dir().join(format!("au-merge-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = sources
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let path = dir.join(format!("{i}.jsonl"));
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        (dir, paths)
    }

    /// Each line out: its source, and its second or `None` for a bad line.
    fn drain(mut merged: Merged<'_>) -> Vec<(usize, Option<u64>)> {
        let mut out = Vec::new();
        while let Some((source, line)) = merged.next_event().unwrap() {
            let second = line.ok().map(|event| {
                let since = event.ts().duration_since(std::time::UNIX_EPOCH).unwrap();
                since.as_secs() - START
            });
            out.push((source, second));
        }
        out
    }

    #[test]
    fn lines_come_out_in_time_order_ties_by_source_bad_lines_at_once() {
        let sources = [
            upload(1) + &upload(4) + &upload(4),
            upload(2) + "torn {\n" + &upload(3),
            String::new(),
            upload(1) + &upload(5),
        ];
        let expected = [
            (0, Some(1)),
            (3, Some(1)),
            (1, Some(2)),
            // Read while source 0 waits at second 4: a bad line has no time.
            (1, None),
            (1, Some(3)),
            (0, Some(4)),
            (0, Some(4)),
            (3, Some(5)),
        ];
        assert_eq!(
            drain(Merged::new(sources.iter().map(String::as_bytes))),
            expected
        );
        // The same from files, each parsed on threads of its own, and from
        // more files than get threads of their own (merged on one thread).
        let (dir, paths) = files("few", &sources);
        assert_eq!(drain(Merged::open(&paths).unwrap()), expected);
        // The last source moved to the second group: its tie with source 0
        // still goes to source 0.
        let mut many = sources[..3].to_vec();
        many.resize(MAX_THREADED_FILES, String::new());
        many.push(sources[3].clone());
        let (many_dir, many_paths) = files("many", &many);
        let last = MAX_THREADED_FILES;
        let moved = expected.map(|(source, line)| (if source == 3 { last } else { source }, line));
        assert_eq!(drain(Merged::open(&many_paths).unwrap()), moved);
        for dir in [dir, many_dir] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn many_files_merge_across_handed_over_batches() {
        // Dealt round-robin: file i holds the seconds i, i + 20, i + 40...
        let count = 20;
        let sources: Vec<String> = (0..count)
            .map(|i| (0..200).map(|j| upload(j * count + i)).collect())
            .collect();
        let (dir, paths) = files("batches", &sources);
        let lines = drain(Merged::open(&paths).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
        let expected: Vec<_> = (0..count * 200)
            .map(|second| (usize::try_from(second % count).unwrap(), Some(second)))
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn no_source_is_an_empty_log() {
        assert!(drain(Merged::new(Vec::<&[u8]>::new())).is_empty());
    }
}
