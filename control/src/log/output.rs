//! Where the writer thread's lines go: the log file, reopened whenever its
//! path no longer names the file held, or any writer. Whatever the target,
//! a line cut short by a failed write (a full disk) is ended before the
//! next one, so every line that can be written starts on a line of its own.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The writer thread's target and what it remembers between batches.
pub(crate) struct Output {
    target: Target,
    /// The last write stopped mid-line: end that line first.
    torn: bool,
    /// Since the first failure of the current episode, the lines dropped.
    failing: Option<u64>,
}

enum Target {
    File(LogFile),
    Writer(Box<dyn Write + Send>),
}

impl Output {
    /// Lines appended to the file at `path` (opened on the first write).
    pub(crate) fn file(path: PathBuf) -> Self {
        Output::new(Target::File(LogFile { path, open: None }))
    }

    /// Lines written to `writer`.
    pub(crate) fn writer(writer: Box<dyn Write + Send>) -> Self {
        Output::new(Target::Writer(writer))
    }

    fn new(target: Target) -> Self {
        Output {
            target,
            torn: false,
            failing: None,
        }
    }

    /// Writes `bytes` (whole lines), returning how many reached the target.
    /// A failure is reported once per episode through `tracing`, and its
    /// recovery too.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> usize {
        let (written, result) = self.try_write(bytes);
        match result {
            Ok(()) => {
                if let Some(dropped) = self.failing.take() {
                    tracing::info!(target = %self.target, dropped, "async-upload log writable again");
                }
            }
            Err(error) => {
                if let Target::File(file) = &mut self.target {
                    // Reopen on the next batch: the cause may be gone by then.
                    file.open = None;
                }
                if written > 0 && !bytes[..written].ends_with(b"\n") {
                    self.torn = true;
                }
                #[allow(clippy::naive_bytecount)] // once per failed batch
                let lost = bytes[written..].iter().filter(|&&b| b == b'\n').count() as u64;
                if let Some(dropped) = &mut self.failing {
                    *dropped += lost;
                } else {
                    tracing::error!(
                        target = %self.target,
                        %error,
                        "async-upload log write failed; dropping lines until it recovers",
                    );
                    self.failing = Some(lost);
                }
            }
        }
        written
    }

    fn try_write(&mut self, bytes: &[u8]) -> (usize, io::Result<()>) {
        let sink: &mut dyn Write = match &mut self.target {
            Target::File(file) => match file.current(&mut self.torn) {
                Ok(file) => file,
                Err(error) => return (0, Err(error)),
            },
            Target::Writer(writer) => writer,
        };
        if self.torn {
            if let (_, Err(error)) = write_counted(sink, b"\n") {
                return (0, Err(error));
            }
            self.torn = false;
        }
        let (written, result) = write_counted(sink, bytes);
        (written, result.and_then(|()| sink.flush()))
    }
}

impl core::fmt::Display for Target {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Target::File(file) => write!(f, "{}", file.path.display()),
            Target::Writer(_) => f.write_str("writer"),
        }
    }
}

/// `write_all` that tells how far it got before an error.
fn write_counted(writer: &mut (impl Write + ?Sized), bytes: &[u8]) -> (usize, io::Result<()>) {
    let mut written = 0;
    while written < bytes.len() {
        match writer.write(&bytes[written..]) {
            Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return (written, Err(error)),
        }
    }
    (written, Ok(()))
}

/// The log file, reopened whenever the path no longer names the file held:
/// a descriptor to a deleted or rotated file would accept writes nobody can
/// read, so "the directory was removed" must show as a failure.
struct LogFile {
    path: PathBuf,
    open: Option<Opened>,
}

/// An open log file and which file it is.
pub(crate) struct Opened {
    file: File,
    /// Device and inode, to notice the path naming another file.
    #[cfg(unix)]
    identity: (u64, u64),
    /// The file ends in the middle of a line (a crash, a full disk).
    ends_mid_line: bool,
}

impl LogFile {
    /// The open file, (re)opened if the path no longer names it; a line
    /// found unfinished at its end sets `torn`.
    fn current(&mut self, torn: &mut bool) -> io::Result<&mut File> {
        if self
            .open
            .as_ref()
            .is_some_and(|open| !open.is_at(&self.path))
        {
            self.open = None;
        }
        let open = if let Some(open) = self.open.take() {
            open
        } else {
            let open = open_log(&self.path)?;
            *torn |= open.ends_mid_line;
            open
        };
        Ok(&mut self.open.insert(open).file)
    }
}

impl Opened {
    #[cfg(unix)]
    fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).is_ok_and(|meta| (meta.dev(), meta.ino()) == self.identity)
    }

    #[cfg(not(unix))]
    fn is_at(&self, _path: &Path) -> bool {
        true
    }
}

/// The one place the log file is opened: created if missing, appended to.
pub(crate) fn open_log(path: &Path) -> io::Result<Opened> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let meta = file.metadata()?;
        let mut last = [0u8; 1];
        let ends_mid_line = meta.len() > 0
            && file.read_exact_at(&mut last, meta.len() - 1).is_ok()
            && last[0] != b'\n';
        Ok(Opened {
            file,
            identity: (meta.dev(), meta.ino()),
            ends_mid_line,
        })
    }
    #[cfg(not(unix))]
    Ok(Opened {
        file,
        ends_mid_line: false,
    })
}
