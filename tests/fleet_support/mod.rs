//! Fleet test support: a `redis-server` of the test's own on a free
//! loopback port (no persistence), and replicas as separate processes
//! (this test binary re-run as `replica_process`), whose stdout lines the
//! test reads.
//!
//! Shared by `fleet_redis` and `fleet_cli`; not every user needs every item.
#![allow(dead_code)]

#[path = "../support/rank.rs"]
pub mod rank;
#[path = "../support/redis.rs"]
mod redis;
#[path = "../support/replica_lines.rs"]
pub mod replica_lines;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

pub use redis::RedisServer;
pub use replica_lines::Line;

/// A `redis-server` of the test's own on a free port; the test fails when
/// it cannot start one.
pub fn redis_server() -> RedisServer {
    RedisServer::start()
        .expect("redis-server starts (apt-get install redis-server; .ci/run does it)")
}

/// Longest any wait of these tests lasts before it fails the test: a
/// deadline against hanging forever, not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A replica process: this test binary running `replica_process`.
pub struct Replica {
    child: Child,
    stdin: Option<ChildStdin>,
    pub instance: String,
    pub log: PathBuf,
}

impl Replica {
    /// Starts replica `index` of a fleet on `url`, its log in `dir`, with
    /// extra environment `env`; its lines go to `lines`.
    pub fn start(
        index: usize,
        url: &str,
        dir: &Path,
        env: &[(&str, &str)],
        lines: &std::sync::mpsc::Sender<Line>,
    ) -> Self {
        let instance = replica_lines::instance(index);
        let log = dir.join(format!("{instance}.jsonl"));
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        replica_lines::as_replica(&mut command, index, url, &log)
            .args([
                "replica_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FLEET_TEST_REPLICA", "1");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("replica process");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        replica_lines::forward(index, stdout, lines.clone());
        Replica {
            child,
            stdin,
            instance,
            log,
        }
    }

    /// Process id (for `kill -STOP`/`-CONT`/`-9`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the replica to stop its load, flush its log and exit; waits.
    pub fn finish(mut self) -> std::process::ExitStatus {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "stop");
        }
        self.child.wait().expect("replica exit status")
    }

    /// Sends `signal` (`-9`, `-STOP`, `-CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {}", self.pid());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the first line that `accept` accepts; fails the test after [`PATIENCE`].
pub fn wait_for(lines: &Receiver<Line>, what: &str, mut accept: impl FnMut(&Line) -> bool) -> Line {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if accept(&line) => return line,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                panic!("no replica printed {what} within {PATIENCE:?}")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("replicas gone while waiting for {what}"),
        }
    }
}

/// Polls `condition` until it holds; fails the test after [`PATIENCE`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        thread::sleep(Duration::from_millis(20));
    }
}
