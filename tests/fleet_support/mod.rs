//! Fleet test support: a `redis-server` of the test's own on a free
//! loopback port (no persistence), and replicas as separate processes
//! (this test binary re-run as `replica_process`), whose stdout lines the
//! test reads.
//!
//! Shared by `fleet_redis` and `fleet_cli`; not every user needs every item.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest any wait of these tests lasts before it fails the test: a
/// deadline against hanging forever, not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A `redis-server` on 127.0.0.1, stopped (SIGKILL) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        Self::start_on(port)
    }

    /// Starts one on `port` (a restart keeps the URL replicas know).
    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server; .ci/run does it)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < PATIENCE,
                "redis-server did not start on {port}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        RedisServer {
            child: Some(child),
            port,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: nothing saved, connections cut).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `INFO stats` total_commands_processed.
    pub fn commands_processed(&self) -> u64 {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "info", "stats"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("total_commands_processed in INFO stats")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

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
}

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
        let instance = format!("replica-{index}");
        let log = dir.join(format!("{instance}.jsonl"));
        let mut command = Command::new(std::env::current_exe().expect("test binary"));
        command
            .args([
                "replica_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FLEET_TEST_REPLICA", "1")
            .env("ASYNC_UPLOAD_REDIS_URL", url)
            .env("ASYNC_UPLOAD_INSTANCE", &instance)
            .env("ASYNC_UPLOAD_LOG", &log)
            .env_remove("ASYNC_UPLOAD_ENABLED")
            .env_remove("ASYNC_UPLOAD_ROLLOUT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("replica process");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let sender = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut words = line.split_whitespace();
                if words.next() != Some("FLEET") {
                    continue; // libtest's own lines
                }
                let at_us = words.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                let words = words.map(str::to_owned).collect();
                if sender
                    .send(Line {
                        replica: index,
                        at_us,
                        words,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
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

/// Microseconds since the Unix epoch (replicas stamp their lines with it).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[path = "../support/rank.rs"]
pub mod rank;
