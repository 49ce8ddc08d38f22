//! The main job: real uploads over HTTP through an `#[async_upload]`
//! function, against an embedded server that injects faults.
//!
//! ```text
//! cargo run --release --example upload_demo [-- --files 300 --reset-rate 0.08 ...]
//! ```
//!
//! An axum server on 127.0.0.1 stores uploads in a temporary directory,
//! verifies each one's size and MD5, deduplicates on the `Idempotency-Key`
//! both clients send (the call's `async_upload::call_id()`), and
//! injects connection resets, 503 answers and delays into the new client's
//! requests. A few hundred files (1 KiB – 8 MiB) are uploaded through
//! `upload`, whose async path streams the file with `reqwest` and whose
//! fallback is today's blocking `ureq` code; the request id is the rollout
//! key. At the end: the summary per execution type, async vs sync, the
//! stage verdict (all from the JSONL log the run wrote), the CSV export, the
//! HTML report, and the server's own count of files that arrived intact.
//!
//! `--staged` shows the staged rollout live (no Redis): a controller takes
//! the site through stages 1 → 10 → 50 → 100 % with auto-advance, their
//! durations scaled to seconds by `--time-scale`, while uploads loop over
//! the files; `--regress-at N` makes the server fail the async client from
//! stage N, the controller rolls back, every call goes to sync, and a
//! timeline of every transition is printed:
//!
//! ```text
//! cargo run --release --example upload_demo -- --staged --time-scale 0.0005 --regress-at 3
//! ```
//!
//! Configuration comes from the environment (`ASYNC_UPLOAD_*`); unset
//! `ASYNC_UPLOAD_ENABLED` / `ASYNC_UPLOAD_ROLLOUT` default to enabled / 50 %
//! for the demo. Run with `--help` for the fault options.

#[cfg(feature = "redis")]
#[path = "upload_demo/fleet.rs"]
mod fleet;
#[path = "upload_demo/staged.rs"]
mod staged;
#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_upload::async_upload;
use async_upload::config::handle;
use async_upload::log::{read_file, write_csv};
use async_upload::metrics::{self, ExecutionType};
use async_upload::stages::{Report, ReportOptions, DEFAULT_STAGES};
use async_upload_dashboard::Dashboard;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::files::write_files;
use support::server::{Fault, Outage, RandomFaults, Server, Target, Verification};

/// The site name: in records, logs and `ASYNC_UPLOAD_<VAR>__UPLOAD_DEMO` overrides.
const SITE: &str = "upload_demo";

/// The new path: stream the file with reqwest. Three attempts of 2 s each.
#[async_upload(name = "upload_demo", retries = 2, timeout = 2, backoff = 0.05,
               fallback = upload_blocking, key = req.id.as_str(), size = req.size)]
async fn upload(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// Today's path: a blocking ureq upload.
fn upload_blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

/// Uploads files through `#[async_upload]` against a loopback server that injects faults.
#[derive(Parser, Debug)]
#[command(name = "upload_demo")]
struct Args {
    /// Number of files (default 300, sizes spread from 1 KiB to 8 MiB; with
    /// --staged 1000 files of --staged-file-kib each, uploaded in a loop).
    #[arg(long)]
    files: Option<usize>,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Fraction of requests whose async attempts are reset (TCP RST) [default: 0.08; 0 with --staged].
    #[arg(long)]
    reset_rate: Option<f64>,
    /// Fraction of requests whose async attempts get HTTP 503 [default: 0.06; 0 with --staged].
    #[arg(long)]
    unavailable_rate: Option<f64>,
    /// Fraction of requests whose async attempts are delayed by --delay-ms [default: 0.04; 0 with --staged].
    #[arg(long)]
    delay_rate: Option<f64>,
    /// Delay of a delayed attempt, in ms (above the 2 s attempt timeout: the attempt times out).
    #[arg(long, default_value_t = 2500)]
    delay_ms: u64,
    /// A faulted request fails its first 1..=N attempts (N = 3 exhausts the retries: fallback).
    #[arg(long, default_value_t = 3)]
    max_streak: u32,
    /// Also inject the faults into the blocking client (the fallback can then fail too).
    #[arg(long)]
    faults_on_sync: bool,
    /// Seed of the file contents and of the fault draw.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory for the JSONL log, the CSV export and the HTML report (default: a temp dir).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the demo runs,
    /// e.g. 127.0.0.1:9000 (built with `--features metrics`).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// With --metrics-addr: after the uploads, keep serving until standard
    /// input closes (so Prometheus, or a test, can scrape the final counts).
    #[arg(long, requires = "metrics_addr")]
    metrics_linger: bool,
    /// The staged rollout, live: a controller takes the site through the
    /// default stages 1 → 10 → 50 → 100 % (auto-advance), uploads loop over
    /// the files meanwhile, and a timeline of every transition is printed.
    #[arg(long)]
    staged: bool,
    /// With --staged: stage durations scaled to seconds. Each stage's
    /// minimum duration (24 h, 48 h, 72 h, 1 week) is multiplied by this:
    /// 0.0005 makes them 43.2 s, 86.4 s, 129.6 s and 302.4 s.
    #[arg(long, default_value_t = 0.0005, requires = "staged")]
    time_scale: f64,
    /// With --staged: each stage's minimum enrolled calls (100, 500, 2000,
    /// 5000) is multiplied by this, for a run too short or slow to make them.
    #[arg(long, default_value_t = 1.0, requires = "staged")]
    samples_scale: f64,
    /// With --staged: when stage N is entered, the server starts answering
    /// 503 to every request of the async client (a regression), so the
    /// controller's rollback trigger fires.
    #[arg(long, value_name = "N", requires = "staged")]
    regress_at: Option<u32>,
    /// With --staged: replaces every stage's latency criterion (async p50 and
    /// p95 at most this × sync; built in 1.10, 1.05, 1.02, 1.00), for a debug
    /// build or a busy machine where the two HTTP clients' own speed, not the
    /// rollout, decides the comparison.
    #[arg(long, value_name = "RATIO", requires = "staged")]
    latency_ratio: Option<f64>,
    /// With --staged: size of every file, in KiB (one size, so async and
    /// sync latencies compare like for like).
    #[arg(long, default_value_t = 32, requires = "staged")]
    staged_file_kib: u64,
    /// With --staged: milliseconds between two evaluations of the stage.
    #[arg(long, default_value_t = 100, requires = "staged")]
    tick_ms: u64,
    /// With --staged: run the rollout across N replica processes sharing
    /// their state through a redis-server the demo starts (built with
    /// `--features redis`; needs redis-server installed).
    #[arg(long, value_name = "N", requires = "staged")]
    replicas: Option<usize>,
    /// Internal: run as a replica uploading to the server at URL.
    #[arg(long, hide = true, value_name = "URL")]
    replica_of: Option<String>,
    /// Internal: this replica's index.
    #[arg(long, hide = true, default_value_t = 0)]
    replica_index: usize,
    /// Internal: the directory of the files a replica uploads its share of.
    #[arg(long, hide = true)]
    files_dir: Option<PathBuf>,
}

impl Args {
    /// A fault rate: as given, else its default (none with --staged: the
    /// regression is the staged run's fault).
    fn rate(&self, given: Option<f64>, default: f64) -> f64 {
        given.unwrap_or(if self.staged { 0.0 } else { default })
    }
    fn reset_rate(&self) -> f64 {
        self.rate(self.reset_rate, 0.08)
    }
    fn unavailable_rate(&self) -> f64 {
        self.rate(self.unavailable_rate, 0.06)
    }
    fn delay_rate(&self) -> f64 {
        self.rate(self.delay_rate, 0.04)
    }
    fn files(&self) -> usize {
        self.files.unwrap_or(if self.staged { 1000 } else { 300 })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    for (name, rate) in [
        ("--reset-rate", args.reset_rate()),
        ("--unavailable-rate", args.unavailable_rate()),
        ("--delay-rate", args.delay_rate()),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            eprintln!("{name} must be between 0 and 1, not {rate}");
            return ExitCode::from(2);
        }
    }
    if args.files() == 0 || args.concurrency == 0 {
        eprintln!("--files and --concurrency must be at least 1");
        return ExitCode::from(2);
    }
    if args.staged {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !positive(args.time_scale) || !positive(args.samples_scale) {
            eprintln!("--time-scale and --samples-scale must be positive numbers");
            return ExitCode::from(2);
        }
        if let Some(n) = args.regress_at {
            if !DEFAULT_STAGES.iter().any(|s| s.number == n) {
                eprintln!(
                    "--regress-at must be a stage number, 1 to {}",
                    DEFAULT_STAGES.len()
                );
                return ExitCode::from(2);
            }
        }
        if args
            .latency_ratio
            .is_some_and(|r| !(r > 0.0 && r.is_finite()))
        {
            eprintln!("--latency-ratio must be a positive number");
            return ExitCode::from(2);
        }
        if args.staged_file_kib == 0 || args.tick_ms == 0 {
            eprintln!("--staged-file-kib and --tick-ms must be at least 1");
            return ExitCode::from(2);
        }
    }
    if args.replicas == Some(0) {
        eprintln!("--replicas must be at least 1");
        return ExitCode::from(2);
    }
    #[cfg(not(feature = "redis"))]
    if args.replicas.is_some() || args.replica_of.is_some() {
        eprintln!(
            "--replicas needs the redis feature: cargo run --release --features redis --example upload_demo -- --staged --replicas 3"
        );
        return ExitCode::from(2);
    }
    #[cfg(feature = "redis")]
    if args.replicas.is_some() && args.replica_of.is_none() && !support::redis::installed() {
        eprintln!("--replicas needs redis-server, which is not installed here");
        println!("install it with: apt-get install -y redis-server");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    #[cfg(feature = "redis")]
    if let Some(url) = args.replica_of.clone() {
        return match runtime.block_on(fleet::replica(&args, &url)) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("upload_demo replica: {error}");
                ExitCode::FAILURE
            }
        };
    }
    // The server stands in for a remote service: it gets threads of its own,
    // so its work (hashing, disk writes) does not tax the async client's
    // workers while the blocking client runs on threads of its own.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("upload-server")
        .enable_all()
        .build()
        .expect("a Tokio runtime for the server");
    match runtime.block_on(run(args, server_runtime.handle().clone())) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("upload_demo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Demo defaults for what the user did not set; the log path.
fn configure(out: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let unset = |name: &str| std::env::var_os(name).is_none();
    if let Some(error) = handle().init_error() {
        println!("config: {error}");
        println!("config: invalid environment: async disabled, every upload takes the sync path");
    } else {
        let (enable, rollout) = (unset("ASYNC_UPLOAD_ENABLED"), unset("ASYNC_UPLOAD_ROLLOUT"));
        handle().update(|c| {
            if enable {
                c.enabled = true;
            }
            if rollout {
                c.rollout = 50.0;
            }
        })?;
    }
    let log = match handle().config().log_path.clone() {
        Some(path) => path,
        None => {
            let path = out.join("uploads.jsonl");
            let _ = std::fs::remove_file(&path);
            handle().update(|c| c.log_path = Some(path.clone()))?;
            path
        }
    };
    let config = handle().config();
    let settings = site_settings();
    let origin = |name: &str| {
        if unset(name) {
            " (demo default)"
        } else {
            " (environment)"
        }
    };
    println!(
        "config: enabled={}{} rollout={}%{} fallback={} retries={} timeout={:?} (site {SITE})",
        settings.enabled,
        origin("ASYNC_UPLOAD_ENABLED"),
        config.rollout,
        origin("ASYNC_UPLOAD_ROLLOUT"),
        settings.fallback,
        settings.max_retries,
        settings.timeout,
    );
    Ok(log)
}

/// The settings `upload` runs with. The attribute's `Site` is private to
/// the generated function, so this is a twin with the same name and values:
/// it resolves the same live configuration.
fn site_settings() -> async_upload_runtime::config::Settings {
    static TWIN: async_upload_runtime::Site = async_upload_runtime::Site::new(SITE)
        .with_retries(2)
        .with_timeout(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(50));
    TWIN.settings()
}

#[allow(clippy::too_many_lines)] // the demo's script, step by step
async fn run(
    args: Args,
    server_runtime: tokio::runtime::Handle,
) -> Result<bool, Box<dyn std::error::Error>> {
    if let Some(addr) = args.metrics_addr {
        serve_metrics(addr)?;
    }
    // Everything recorded reaches the JSONL file before `run` returns.
    let _log_guard = async_upload::log::guard();
    let started_at = SystemTime::now();
    let out = match &args.out {
        Some(out) => out.clone(),
        None => std::env::temp_dir().join("async-upload-demo"),
    };
    std::fs::create_dir_all(&out)?;
    let log_path = configure(&out)?;

    let work = tempfile::Builder::new().prefix("upload-demo-").tempdir()?;
    let (src_dir, store_dir) = (work.path().join("files"), work.path().join("store"));
    let (count, seed) = (args.files(), args.seed);
    let (min, max) = if args.staged {
        (args.staged_file_kib * 1024, args.staged_file_kib * 1024)
    } else {
        (1024, 8 * 1024 * 1024)
    };
    let clock = Instant::now();
    let files =
        tokio::task::spawn_blocking(move || write_files(&src_dir, "req", count, min, max, seed))
            .await??;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "files: {} written in {:.1} s, {:.1} MiB in all ({}) in {}",
        files.len(),
        clock.elapsed().as_secs_f64(),
        mib(total_bytes),
        if args.staged {
            format!("{} KiB each", args.staged_file_kib)
        } else {
            "1 KiB – 8 MiB".into()
        },
        work.path().join("files").display()
    );

    let faults = RandomFaults {
        reset: args.reset_rate(),
        unavailable: args.unavailable_rate(),
        delay_rate: args.delay_rate(),
        delay: Duration::from_millis(args.delay_ms),
        max_streak: args.max_streak,
        target: if args.faults_on_sync {
            Target::All
        } else {
            Target::AsyncOnly
        },
        seed: args.seed,
    };
    // `--regress-at`: switched on when the stage is entered.
    let regression = Outage::new(Fault::Unavailable, Target::AsyncOnly);
    let server = server_runtime
        .spawn(Server::start(
            store_dir.clone(),
            regression.over(faults.into_fn()),
        ))
        .await??;
    println!(
        "server: {} storing in {}; faults on {}: reset {}%, 503 {}%, delay {}% ({} ms) of requests, for their first 1–{} attempts",
        server.base_url(),
        store_dir.display(),
        if args.faults_on_sync { "both clients" } else { "the async client" },
        args.reset_rate() * 100.0,
        args.unavailable_rate() * 100.0,
        args.delay_rate() * 100.0,
        args.delay_ms,
        args.max_streak.max(1),
    );

    #[cfg(feature = "redis")]
    if args.replicas.is_some() {
        let files_dir = work.path().join("files");
        return run_fleet(&args, &files, &server, regression, &files_dir, &out).await;
    }
    let endpoint = Endpoint::new(server.base_url());
    let clock = Instant::now();
    let (calls, failures, staged) = if args.staged {
        let outcome = run_staged(&args, &files, &endpoint, regression).await;
        (outcome.calls, outcome.failures.clone(), Some(outcome))
    } else {
        let (calls, failures) = upload_all(&args, &files, &endpoint).await?;
        (calls, failures, None)
    };
    let elapsed = clock.elapsed();
    let total_bytes = total_bytes * calls / files.len() as u64;
    println!(
        "uploads: {calls} calls in {:.1} s ({:.0} MiB/s), {} succeeded, {} failed",
        elapsed.as_secs_f64(),
        mib(total_bytes) / elapsed.as_secs_f64(),
        calls - failures.len() as u64,
        failures.len()
    );
    for failure in failures.iter().take(10) {
        println!("  failed: {failure}");
    }
    if let Some(outcome) = &staged {
        match outcome.rolled_back_at {
            Some(stage) => println!(
                "staged: rolled back at stage {stage}; {} calls after the rollback latched, {} of them on the async path (decided before it)",
                outcome.calls_after_rollback, outcome.async_after_rollback
            ),
            None if outcome.completed => println!("staged: every stage passed, rollout complete at 100%"),
            None => println!("staged: stopped at stage {} without passing it", outcome.stage),
        }
    }

    let check = server_check(&server, &files, staged.is_none());

    // Summary, comparison and verdict from the records the run logged.
    if !async_upload::log::flush() {
        println!("warning: the JSONL log did not flush in time");
    }
    let mut log = read_file(&log_path)?;
    log.uploads.retain(|r| r.site == SITE && r.ts >= started_at);
    log.events.retain(|e| e.ts() >= started_at);
    let rollout = site_settings().rollout.percent();
    let stage = match &staged {
        Some(outcome) => DEFAULT_STAGES
            .iter()
            .find(|s| s.number == outcome.stage)
            .unwrap_or(&DEFAULT_STAGES[0]),
        None => DEFAULT_STAGES
            .iter()
            .rev()
            .find(|s| s.rollout <= rollout)
            .unwrap_or(&DEFAULT_STAGES[0]),
    };
    println!();
    let html_path = out.join("report.html");
    match Report::build(
        &log,
        &ReportOptions {
            site: Some(SITE.into()),
            stage: Some(stage.number),
            ..ReportOptions::default()
        },
    ) {
        Ok(report) => {
            print!("{}", report.render());
            // The same report as a page with charts, beside the JSONL and CSV.
            let page = Dashboard::of_log(&log, Some(stage.number)).render(&report)?;
            std::fs::write(&html_path, page)?;
        }
        Err(error) => println!("no report: {error}"),
    }
    println!();

    let csv_path = out.join("uploads.csv");
    write_csv(
        std::io::BufWriter::new(std::fs::File::create(&csv_path)?),
        log.uploads.iter(),
    )?;
    let aggregated: u64 = metrics::global().snapshot(SITE).map_or(0, |s| {
        ExecutionType::ALL.iter().map(|&et| s.path(et).count).sum()
    });
    println!(
        "records: {calls} calls made, {aggregated} in the in-memory aggregator, {} in the JSONL log",
        log.uploads.len()
    );
    let stats = async_upload::log::global().map(|l| l.stats());
    println!(
        "JSONL log: {}{}",
        log_path.display(),
        stats.map_or_else(String::new, |s| format!(
            " ({} lines written, {} dropped)",
            s.written,
            s.dropped()
        ))
    );
    println!("CSV export: {}", csv_path.display());
    if html_path.exists() {
        println!("HTML report: {}", html_path.display());
    }
    println!(
        "report again: cargo run -q --features cli --bin async-upload -- report {} --stage {}",
        log_path.display(),
        stage.number
    );

    if let (true, Some(addr)) = (args.metrics_linger, args.metrics_addr) {
        println!("metrics: still serving http://{addr}/metrics; close standard input to exit");
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await??;
    }

    let ok = failures.is_empty()
        && if staged.is_none() {
            check.each_stored_once()
        } else {
            check.all_intact()
        }
        && aggregated == calls
        && log.uploads.len() as u64 == calls;
    if !ok {
        println!("FAILED: a file was lost or corrupted, or the records do not match the calls");
    }
    // The staged run must show what it was asked to: the rollback at the
    // regressed stage, or without a regression the whole rollout.
    let shown = staged.as_ref().is_none_or(|outcome| match args.regress_at {
        Some(n) => outcome.rolled_back_at == Some(n),
        None => outcome.completed,
    });
    if !shown {
        println!("FAILED: the staged rollout did not reach what was asked (see the timeline)");
    }
    Ok(ok && shown)
}

/// The server's own view: every file re-read from its disk. With one call
/// per file, each must be stored once: the clients send the call id as the
/// `Idempotency-Key`, so a retry or fallback of an upload that landed is a
/// duplicate the server acknowledges without storing; with several calls
/// per file (`--staged`) a later call stores its file again.
fn server_check(
    server: &Server,
    files: &[support::files::TestFile],
    one_call_per_file: bool,
) -> Verification {
    let counters = server.counters();
    let check = server.verify_files(files);
    println!(
        "server: {} requests; injected {} resets, {} 503s, {} delays; {} stored, {} duplicate uploads acknowledged by their Idempotency-Key without storing, {} rejected, {} cut off",
        counters.requests,
        counters.resets,
        counters.unavailable,
        counters.delays,
        counters.stored,
        counters.duplicates,
        counters.rejected,
        counters.incomplete,
    );
    let stored = if one_call_per_file {
        format!("{} stored more than once", check.stored_again.len())
    } else {
        format!("{} stored again by a later call", check.stored_again.len())
    };
    println!(
        "server-side check: {}/{} files arrived intact (size + MD5 re-read from disk); {stored}; {} missing, {} corrupted",
        check.intact,
        check.expected,
        check.missing.len(),
        check.corrupted.len()
    );
    check
}

/// The default run: every file once, with a progress bar.
async fn upload_all(
    args: &Args,
    files: &[support::files::TestFile],
    endpoint: &Endpoint,
) -> Result<(u64, Vec<String>), Box<dyn std::error::Error>> {
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} files  {msg}")?
            .progress_chars("=> "),
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for file in files {
        let request = file.request(endpoint);
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            let id = request.id.clone();
            (id, upload(request).await)
        });
    }
    let mut failures = Vec::new();
    let mut calls = 0_u64;
    while let Some(joined) = tasks.join_next().await {
        let (id, result) = joined?;
        calls += 1;
        if let Err(error) = result {
            failures.push(format!("{id}: {error}"));
        }
        progress.inc(1);
        if let Some(snapshot) = metrics::global().snapshot(SITE) {
            let n = |et| snapshot.path(et).count;
            progress.set_message(format!(
                "sync {} · async {} · sync_fallback {}",
                n(ExecutionType::Sync),
                n(ExecutionType::Async),
                n(ExecutionType::SyncFallback)
            ));
        }
    }
    progress.finish_and_clear();
    Ok((calls, failures))
}

/// `--staged`: the controller over the scaled stages, uploads in a loop, the timeline.
async fn run_staged(
    args: &Args,
    files: &[support::files::TestFile],
    endpoint: &Endpoint,
    regression: Outage,
) -> staged::Outcome {
    let (stages, recent_window) = print_plan(args);
    let plan = staged::Plan {
        stages,
        regress_at: args.regress_at,
        tick: Duration::from_millis(args.tick_ms),
        recent_window,
        after_rollback: Duration::from_secs(2),
        patience: 3.0,
    };
    staged::run(plan, files, endpoint, args.concurrency, regression).await
}

/// The staged run's stages and recent window, as printed for the reader.
fn print_plan(args: &Args) -> (Vec<async_upload::stages::Stage>, Duration) {
    let stages = staged::stages(args.time_scale, args.samples_scale, args.latency_ratio);
    let recent_window = async_upload::stages::DEFAULT_RECENT_WINDOW
        .mul_f64(args.time_scale)
        .max(Duration::from_secs(1));
    println!(
        "staged: stages 1 → 10 → 50 → 100 % (DEFAULT_STAGES), auto-advance, evaluated every {} ms; time scale {} (stage durations scaled to seconds: {})",
        args.tick_ms,
        args.time_scale,
        stages
            .iter()
            .map(|s| format!("{:.1}s", s.min_duration.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if (args.samples_scale - 1.0).abs() > f64::EPSILON {
        println!(
            "staged: minimum samples scaled ×{} to fit the demo's traffic: {} enrolled calls (the built-in 100, 500, 2000, 5000)",
            args.samples_scale,
            stages
                .iter()
                .map(|s| s.min_samples.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        println!("staged: minimum samples as built in: 100, 500, 2000, 5000 enrolled calls");
    }
    if let Some(ratio) = args.latency_ratio {
        println!(
            "staged: latency criterion of every stage replaced by --latency-ratio: async p50 and p95 at most {ratio}× sync (built in 1.10, 1.05, 1.02, 1.00)"
        );
    }
    println!(
        "staged: rate triggers over a recent window of {:.1}s; {}",
        recent_window.as_secs_f64(),
        match args.regress_at {
            Some(n) => format!("regression (async requests answered 503) from stage {n}"),
            None => "no regression injected".into(),
        }
    );
    (stages, recent_window)
}

/// `--staged --replicas N`: the rollout across replica processes sharing
/// their state through a redis-server of the demo's own.
#[cfg(feature = "redis")]
async fn run_fleet(
    args: &Args,
    files: &[support::files::TestFile],
    server: &Server,
    regression: Outage,
    files_dir: &Path,
    out: &Path,
) -> Result<bool, Box<dyn std::error::Error>> {
    let _ = print_plan(args);
    let redis = support::redis::RedisServer::start()?;
    let clock = Instant::now();
    let outcome = fleet::run(args, &redis, files_dir, out, &server.base_url(), regression).await;
    drop(redis);
    println!("fleet: replicas exited, redis-server stopped");
    let outcome = outcome?;
    println!(
        "uploads: {} calls by {} replicas in {:.1} s, {} failed",
        outcome.calls,
        args.replicas.unwrap_or(1),
        clock.elapsed().as_secs_f64(),
        outcome.failures
    );
    let logged: u64 = outcome.records.values().sum();
    println!(
        "records: {logged} in the replicas' logs ({}), {} calls made",
        outcome
            .records
            .iter()
            .map(|(path, n)| format!("{path} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        outcome.calls
    );
    match outcome.rolled_back_at {
        Some(stage) => println!("staged: rolled back at stage {stage}"),
        None if outcome.completed => {
            println!("staged: every stage passed, rollout complete at 100%")
        }
        None => println!(
            "staged: stopped at stage {} without passing it",
            outcome.stage
        ),
    }
    let check = server_check(server, files, false);
    let ok = outcome.failures == 0 && check.all_intact() && logged == outcome.calls;
    if !ok {
        println!("FAILED: a file was lost or corrupted, an upload failed, or the records do not match the calls");
    }
    let shown = match args.regress_at {
        Some(n) => outcome.rolled_back_at == Some(n),
        None => outcome.completed,
    };
    if !shown {
        println!("FAILED: the staged rollout did not reach what was asked (see the timeline)");
    }
    Ok(ok && shown)
}

/// Installs the Prometheus exporter: every record reaches it through the
/// `metrics` facade, the call durations as a real histogram (buckets from
/// 1 ms to 60 s) so that `histogram_quantile` works.
#[cfg(feature = "metrics")]
fn serve_metrics(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::DURATION_METRIC.into()),
            &metrics::DURATION_BUCKETS,
        )?
        .with_http_listener(addr)
        .install()?;
    println!("metrics: serving http://{addr}/metrics (Prometheus text format)");
    Ok(())
}

#[cfg(not(feature = "metrics"))]
fn serve_metrics(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    Err(format!(
        "--metrics-addr {addr} needs the metrics feature: \
         cargo run --release --example upload_demo --features metrics -- --metrics-addr {addr}"
    )
    .into())
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
