//! A `redis-server` of one's own on a free loopback port, no persistence:
//! what the fleet tests, the fleet demo and the fleet bench run against.
//! The tests also start it with a password, TLS, or as a Cluster node or
//! a Sentinel, and freeze it (`SIGSTOP`).

use std::collections::BTreeSet;
use std::io;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How many fresh ports a server started on a free port is tried on
/// before the start fails.
const START_TRIES: usize = 5;

/// Ports this process has handed out: tests run in parallel threads, and
/// the kernel may hand the port a test has just released to the next
/// `bind(0)` — two servers on one port, one of them exits, and the test
/// whose server it was meets the other test's (killed with it).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Whether `redis-server` can be run.
pub fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A free loopback port, never one this process has handed out before.
pub fn free_port() -> io::Result<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
}

/// A `redis-server` on 127.0.0.1, stopped (SIGKILL) when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Arguments it was started with after the port (a restart keeps them).
    args: Vec<String>,
    /// `redis-cli` arguments that reach it (TLS, password).
    cli_args: Vec<String>,
    scheme: &'static str,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts connections.
    pub fn start() -> io::Result<Self> {
        Self::on_free_port(Self::start_on)
    }

    /// Starts one on `port` (a restart keeps the URL replicas know).
    pub fn start_on(port: u16) -> io::Result<Self> {
        Self::spawn(port, &[], Vec::new(), Vec::new(), "redis")
    }

    /// Starts one on a free port with extra `redis-server` arguments
    /// (`--requirepass`, `--cluster-enabled yes`, …).
    pub fn start_with(args: &[&str]) -> io::Result<Self> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Self::on_free_port(|port| Self::spawn(port, &[], args.clone(), Vec::new(), "redis"))
    }

    /// Starts one that speaks TLS only, with the server certificate and
    /// key at `cert` and `key` (PEM) and `ca` the CA that signed them.
    pub fn start_tls(cert: &str, key: &str, ca: &str) -> io::Result<Self> {
        let args: Vec<String> = [
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            ca,
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        let cli: Vec<String> = ["--tls", "--cacert", ca]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        Self::on_free_port(|port| Self::spawn(port, &[], args.clone(), cli.clone(), "rediss"))
    }

    /// Starts a Redis Sentinel (its configuration file at `config`, which
    /// it rewrites) on a free port.
    pub fn start_sentinel(config: &str) -> io::Result<Self> {
        Self::on_free_port(|port| {
            // Rewritten by the server: a fresh one for each try.
            std::fs::write(config, "sentinel resolve-hostnames no\n")?;
            Self::spawn(
                port,
                &[config, "--sentinel"],
                Vec::new(),
                Vec::new(),
                "redis",
            )
        })
    }

    /// Starts one with `start` on a free port, again on another when the
    /// server did not come up on it (the port was taken meanwhile).
    fn on_free_port(mut start: impl FnMut(u16) -> io::Result<Self>) -> io::Result<Self> {
        let mut tries = 1;
        loop {
            match start(free_port()?) {
                Err(_) if tries < START_TRIES => tries += 1,
                started => return started,
            }
        }
    }

    fn spawn(
        port: u16,
        leading: &[&str],
        args: Vec<String>,
        cli_args: Vec<String>,
        scheme: &'static str,
    ) -> io::Result<Self> {
        let tls = scheme == "rediss";
        let mut command = Command::new("redis-server");
        command.args(leading);
        if tls {
            command.args(["--port", "0", "--tls-port", &port.to_string()]);
        } else {
            command.args(["--port", &port.to_string()]);
        }
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&args)
            .stdout(Stdio::null())
            .spawn()?;
        // Killed on drop, also when it never comes up.
        let mut server = RedisServer {
            child: Some(child),
            port,
            args,
            cli_args,
            scheme,
        };
        server.wait_until_up()?;
        Ok(server)
    }

    /// Waits until the server answers, and makes sure what answers is
    /// this server: a connection alone may reach another process on the
    /// port, or the kernel's self-connection to a port nobody holds yet.
    fn wait_until_up(&mut self) -> io::Result<()> {
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("started");
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "redis-server exited ({status}) on port {}",
                    self.port
                )));
            }
            let pid = child.id();
            match self.answer() {
                Answer::Pid(theirs) if theirs != pid => {
                    return Err(io::Error::other(format!(
                        "port {} is held by process {theirs}, not this redis-server",
                        self.port
                    )));
                }
                Answer::Pid(_) | Answer::AuthRequired => return Ok(()),
                Answer::Nothing => {}
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(io::Error::other(format!(
                    "redis-server did not start on port {}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What `INFO server` through `redis-cli` (which also speaks TLS)
    /// gets from whatever listens on the port.
    fn answer(&self) -> Answer {
        // Quiet: "Could not connect" is the usual answer while it starts.
        let Ok(out) = self
            .redis_cli(None, &["INFO", "server"])
            .stderr(Stdio::null())
            .output()
        else {
            return Answer::Nothing;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(pid) = text
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
        {
            Answer::Pid(pid)
        } else if text.contains("NOAUTH") {
            Answer::AuthRequired
        } else {
            Answer::Nothing
        }
    }

    /// Kills it and starts an empty one on the same port with the same
    /// arguments (no persistence: everything it held is gone).
    pub fn restart_empty(&mut self) -> io::Result<()> {
        self.kill();
        let args = std::mem::take(&mut self.args);
        let cli = std::mem::take(&mut self.cli_args);
        *self = Self::spawn(self.port, &[], args, cli, self.scheme)?;
        Ok(())
    }

    /// `redis://127.0.0.1:<port>` (`rediss://` for TLS).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
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

    /// Sends `signal` (`-STOP` freezes it, `-CONT` thaws it).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }

    /// Runs `redis-cli` against it with `args` (after `auth`, if given);
    /// returns its stdout, trimmed.
    pub fn cli_as(&self, auth: Option<&str>, args: &[&str]) -> String {
        let out = self.redis_cli(auth, args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The `redis-cli` command that sends `args` to it (after `auth`).
    fn redis_cli(&self, auth: Option<&str>, args: &[&str]) -> Command {
        let mut command = Command::new("redis-cli");
        command
            .args(["-p", &self.port.to_string()])
            .args(&self.cli_args);
        if let Some(password) = auth {
            command.args(["-a", password, "--no-auth-warning"]);
        }
        command.args(args);
        command
    }

    /// Runs `redis-cli` against it with `args`.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_as(None, args)
    }

    /// `INFO stats` `total_commands_processed`, through `redis-cli`.
    pub fn commands_processed(&self) -> io::Result<u64> {
        self.cli(&["info", "stats"])
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| io::Error::other("no total_commands_processed in INFO stats"))
    }
}

/// What answered on a server's port.
enum Answer {
    /// A Redis with this process id.
    Pid(u32),
    /// A Redis that wants a password first (the test's own, if it runs).
    AuthRequired,
    /// Nothing, or nothing that speaks Redis yet.
    Nothing,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
