//! Fleet test support: a `redis-server` of the test's own on a free
//! loopback port (no persistence), and replicas as separate processes
//! (this test binary re-run as `replica_process`), whose stdout lines the
//! test reads.
//!
//! Shared by `fleet_redis`, `fleet_cli` and `fleet_promises`; not every
//! user needs every item.
#![allow(dead_code)]

#[path = "../support/redis.rs"]
mod redis;
pub mod replica;
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
        // An empty value unsets the variable.
        for (name, value) in env {
            if value.is_empty() {
                command.env_remove(name);
            } else {
                command.env(name, value);
            }
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

    /// Sends one command line to the replica (see `replica.rs`).
    pub fn send(&mut self, command: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{command}");
            let _ = stdin.flush();
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

/// Every line the replicas printed, kept: waits read new lines and keep
/// them, so a later question can be asked of the whole history.
pub struct Lines {
    receiver: Receiver<Line>,
    pub seen: Vec<Line>,
}

impl Lines {
    pub fn new(receiver: Receiver<Line>) -> Self {
        Lines {
            receiver,
            seen: Vec::new(),
        }
    }

    /// Takes the lines printed so far.
    pub fn drain(&mut self) {
        self.seen.extend(self.receiver.try_iter());
    }

    /// Waits for the first new line `accept` accepts; fails after [`PATIENCE`].
    pub fn wait(&mut self, what: &str, mut accept: impl FnMut(&Line) -> bool) -> Line {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if accept(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let logs: Vec<&Line> = self.seen.iter().filter(|l| l.is("log")).collect();
                    let mut per: std::collections::BTreeMap<usize, usize> = Default::default();
                    for line in &self.seen {
                        *per.entry(line.replica).or_default() += 1;
                    }
                    panic!("no replica printed {what} within {PATIENCE:?}; lines per replica {per:?}; their log events: {logs:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("replicas gone while waiting for {what}")
                }
            }
        }
    }

    /// Waits until each of `replicas` printed a line `accept` accepts (the
    /// lines already seen count); returns each one's first such line.
    pub fn wait_each(
        &mut self,
        replicas: &[usize],
        what: &str,
        accept: impl Fn(&Line) -> bool,
    ) -> Vec<Line> {
        let mut found: Vec<Option<Line>> = replicas
            .iter()
            .map(|r| {
                self.seen
                    .iter()
                    .find(|l| l.replica == *r && accept(l))
                    .cloned()
            })
            .collect();
        while found.iter().any(Option::is_none) {
            let line = self.wait(what, |l| {
                replicas
                    .iter()
                    .position(|r| *r == l.replica)
                    .is_some_and(|i| found[i].is_none())
                    && accept(l)
            });
            let index = replicas.iter().position(|r| *r == line.replica).unwrap();
            found[index] = Some(line);
        }
        found.into_iter().flatten().collect()
    }

    /// The lines seen so far that `accept` accepts, oldest first.
    pub fn all(&mut self, accept: impl Fn(&Line) -> bool) -> Vec<Line> {
        self.drain();
        self.seen.iter().filter(|l| accept(l)).cloned().collect()
    }

    /// The last line of `replica` seen so far that `accept` accepts.
    pub fn last(&mut self, replica: usize, accept: impl Fn(&Line) -> bool) -> Option<Line> {
        self.drain();
        self.seen
            .iter()
            .rev()
            .find(|l| l.replica == replica && accept(l))
            .cloned()
    }
}

/// A `state` line of `site`.
pub fn state_of(site: &str) -> impl Fn(&Line) -> bool + '_ {
    move |l: &Line| l.is("state") && l.get("site") == Some(site)
}

/// Replicas `0..count` of the fleet on `url`, each with `env` and the
/// extra environment `per(index)` gives it.
pub fn start_replicas(
    url: &str,
    count: usize,
    env: &[(&str, &str)],
    per: impl Fn(usize) -> Vec<(String, String)>,
) -> (tempfile::TempDir, Vec<Replica>, Lines) {
    let dir = tempfile::tempdir().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    let replicas = (0..count)
        .map(|i| {
            let own = per(i);
            let mut all: Vec<(&str, &str)> = env.to_vec();
            all.extend(own.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            Replica::start(i, url, dir.path(), &all, &sender)
        })
        .collect();
    (dir, replicas, Lines::new(receiver))
}

/// Runs `async-upload fleet --redis URL ARGS…` with `env` (features
/// `cli,redis` only: the binary exists then).
pub fn cli(url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let Some(exe) = option_env!("CARGO_BIN_EXE_async-upload") else {
        panic!("the async-upload binary is built with features cli,redis only");
    };
    let mut command = Command::new(exe);
    command
        .arg("fleet")
        .args(["--redis", url])
        .args(args)
        .env_remove("ASYNC_UPLOAD_REDIS_URL")
        .env_remove("ASYNC_UPLOAD_REDIS_CA");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("async-upload runs")
}

/// `fleet status --json` at `url`, which must exit 0.
pub fn status_json(url: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let out = cli(url, &["status", "--json"], env);
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}
