//! How a fleet's replica processes talk to the process that runs them
//! (the fleet tests, the demo's `--replicas`): a replica prints
//! `FLEET <wall-clock µs> <word> <name=value>...` on its stdout, and the
//! parent reads each replica's lines into one channel.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc::Sender;
use std::time::{SystemTime, UNIX_EPOCH};

/// One line a replica printed, stamped with the replica's wall clock.
#[derive(Clone, Debug)]
pub struct Line {
    pub replica: usize,
    pub at_us: u64,
    pub words: Vec<String>,
}

impl Line {
    /// The value of `name=value` in the line.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.words
            .iter()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
    }

    /// Whether the line's first word is `first`.
    pub fn is(&self, first: &str) -> bool {
        self.words.first().map(String::as_str) == Some(first)
    }
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Prints one line for the parent (in a replica).
pub fn say(text: &str) {
    use std::io::Write as _;
    // The parent may be gone already (it stops reading, then kills us).
    let _ = writeln!(std::io::stdout().lock(), "FLEET {} {text}", now_us());
}

/// The instance name of replica `index`.
pub fn instance(index: usize) -> String {
    format!("replica-{index}")
}

/// `command` made replica `index` of the fleet on `url`, its log at `log`:
/// the flags an unset environment leaves to the shared state, its stdin
/// and stdout piped to the parent, its stderr the parent's.
pub fn as_replica<'c>(
    command: &'c mut Command,
    index: usize,
    url: &str,
    log: &Path,
) -> &'c mut Command {
    command
        .env("ASYNC_UPLOAD_REDIS_URL", url)
        .env("ASYNC_UPLOAD_INSTANCE", instance(index))
        .env("ASYNC_UPLOAD_LOG", log)
        .env_remove("ASYNC_UPLOAD_ENABLED")
        .env_remove("ASYNC_UPLOAD_ROLLOUT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
}

/// Reads replica `replica`'s `stdout` on a thread of its own and sends its
/// `FLEET` lines to `lines` (other lines, libtest's own, are skipped).
pub fn forward(replica: usize, stdout: ChildStdout, lines: Sender<Line>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest's `test replica_process ... ` has no newline: the
            // replica's first line follows it on the same line.
            let Some(start) = line.find("FLEET ") else {
                continue;
            };
            let mut words = line[start..].split_whitespace();
            words.next();
            let at_us = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            let words = words.map(str::to_owned).collect();
            let line = Line {
                replica,
                at_us,
                words,
            };
            // The parent stopped listening.
            if lines.send(line).is_err() {
                return;
            }
        }
    });
}
