//! A `redis-server` of one's own on a free loopback port, no persistence:
//! what the fleet tests, the fleet demo and the fleet bench run against.
//! The tests also start it with a password, TLS, or as a Cluster node or
//! a Sentinel, and freeze it (`SIGSTOP`).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `redis-server` can be run.
pub fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A free loopback port.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
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
        Self::start_on(free_port()?)
    }

    /// Starts one on `port` (a restart keeps the URL replicas know).
    pub fn start_on(port: u16) -> io::Result<Self> {
        Self::spawn(port, &[], Vec::new(), Vec::new(), "redis")
    }

    /// Starts one on a free port with extra `redis-server` arguments
    /// (`--requirepass`, `--cluster-enabled yes`, …).
    pub fn start_with(args: &[&str]) -> io::Result<Self> {
        let args = args.iter().map(|a| (*a).to_owned()).collect();
        Self::spawn(free_port()?, &[], args, Vec::new(), "redis")
    }

    /// Starts one that speaks TLS only, with the server certificate and
    /// key at `cert` and `key` (PEM) and `ca` the CA that signed them.
    pub fn start_tls(cert: &str, key: &str, ca: &str) -> io::Result<Self> {
        let port = free_port()?;
        let args = [
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
        let cli = ["--tls", "--cacert", ca]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        Self::spawn(port, &[], args, cli, "rediss")
    }

    /// Starts a Redis Sentinel (its configuration file at `config`, which
    /// it rewrites) on a free port.
    pub fn start_sentinel(config: &str) -> io::Result<Self> {
        std::fs::write(config, "sentinel resolve-hostnames no\n")?;
        Self::spawn(
            free_port()?,
            &[config, "--sentinel"],
            Vec::new(),
            Vec::new(),
            "redis",
        )
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
        let server = RedisServer {
            child: Some(child),
            port,
            args,
            cli_args,
            scheme,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > START_TIMEOUT {
                return Err(io::Error::other(format!(
                    "redis-server did not start on port {port}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
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
        let mut command = Command::new("redis-cli");
        command
            .args(["-p", &self.port.to_string()])
            .args(&self.cli_args);
        if let Some(password) = auth {
            command.args(["-a", password, "--no-auth-warning"]);
        }
        let out = command.args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
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

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
