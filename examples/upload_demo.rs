//! The main job: real uploads over HTTP through an `#[async_upload]`
//! function, against an embedded server that injects faults.
//!
//! ```text
//! cargo run --release --example upload_demo [-- --files 300 --reset-rate 0.08 ...]
//! ```
//!
//! An axum server on 127.0.0.1 stores uploads in a temporary directory,
//! verifies each one's size and MD5, stores a request id at most once, and
//! injects connection resets, 503 answers and delays into the new client's
//! requests. A few hundred files (1 KiB – 8 MiB) are uploaded through
//! `upload`, whose async path streams the file with `reqwest` and whose
//! fallback is today's blocking `ureq` code; the request id is the rollout
//! key. At the end: the summary per execution type, async vs sync, the
//! stage verdict (all from the JSONL log the run wrote), the CSV export,
//! and the server's own count of files that arrived intact.
//!
//! Configuration comes from the environment (`ASYNC_UPLOAD_*`); unset
//! `ASYNC_UPLOAD_ENABLED` / `ASYNC_UPLOAD_ROLLOUT` default to enabled / 50 %
//! for the demo. Run with `--help` for the fault options.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_upload::async_upload;
use async_upload::config::handle;
use async_upload::log::{read_file, write_csv};
use async_upload::metrics::{self, ExecutionType};
use async_upload::stages::{Report, ReportOptions, DEFAULT_STAGES};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::files::write_files;
use support::server::{RandomFaults, Server, Target};

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
    /// Number of files (sizes spread from 1 KiB to 8 MiB).
    #[arg(long, default_value_t = 300)]
    files: usize,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Fraction of requests whose async attempts are reset (TCP RST).
    #[arg(long, default_value_t = 0.08)]
    reset_rate: f64,
    /// Fraction of requests whose async attempts get HTTP 503.
    #[arg(long, default_value_t = 0.06)]
    unavailable_rate: f64,
    /// Fraction of requests whose async attempts are delayed by --delay-ms.
    #[arg(long, default_value_t = 0.04)]
    delay_rate: f64,
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
    /// Directory for the JSONL log and the CSV export (default: a temp dir).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    for (name, rate) in [
        ("--reset-rate", args.reset_rate),
        ("--unavailable-rate", args.unavailable_rate),
        ("--delay-rate", args.delay_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            eprintln!("{name} must be between 0 and 1, not {rate}");
            return ExitCode::from(2);
        }
    }
    if args.files == 0 || args.concurrency == 0 {
        eprintln!("--files and --concurrency must be at least 1");
        return ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
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
fn site_settings() -> async_upload::config::Settings {
    static TWIN: async_upload::Site = async_upload::Site::new(SITE)
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
    let (count, seed) = (args.files, args.seed);
    let clock = Instant::now();
    let files = tokio::task::spawn_blocking(move || {
        write_files(&src_dir, "req", count, 1024, 8 * 1024 * 1024, seed)
    })
    .await??;
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "files: {} written in {:.1} s, {:.1} MiB in all (1 KiB – 8 MiB) in {}",
        files.len(),
        clock.elapsed().as_secs_f64(),
        mib(total_bytes),
        work.path().join("files").display()
    );

    let faults = RandomFaults {
        reset: args.reset_rate,
        unavailable: args.unavailable_rate,
        delay_rate: args.delay_rate,
        delay: Duration::from_millis(args.delay_ms),
        max_streak: args.max_streak,
        target: if args.faults_on_sync {
            Target::All
        } else {
            Target::AsyncOnly
        },
        seed: args.seed,
    };
    let server = server_runtime
        .spawn(Server::start(store_dir.clone(), faults.into_fn()))
        .await??;
    println!(
        "server: {} storing in {}; faults on {}: reset {}%, 503 {}%, delay {}% ({} ms) of requests, for their first 1–{} attempts",
        server.base_url(),
        store_dir.display(),
        if args.faults_on_sync { "both clients" } else { "the async client" },
        args.reset_rate * 100.0,
        args.unavailable_rate * 100.0,
        args.delay_rate * 100.0,
        args.delay_ms,
        args.max_streak.max(1),
    );

    let endpoint = Endpoint::new(server.base_url());
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} files  {msg}")?
            .progress_chars("=> "),
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let clock = Instant::now();
    for file in &files {
        let request = file.request(&endpoint);
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
    let elapsed = clock.elapsed();
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

    // The server's own view: every file re-read from its disk.
    let counters = server.counters();
    let check = server.verify(
        files
            .iter()
            .map(|f| (f.id.as_str(), f.size, f.md5.as_str())),
    );
    println!(
        "server: {} requests; injected {} resets, {} 503s, {} delays; {} stored, {} duplicate uploads acknowledged without storing, {} rejected, {} cut off",
        counters.requests,
        counters.resets,
        counters.unavailable,
        counters.delays,
        counters.stored,
        counters.duplicates,
        counters.rejected,
        counters.incomplete,
    );
    println!(
        "server-side check: {}/{} files arrived intact (size + MD5 re-read from disk), each stored once; {} missing, {} corrupted",
        check.intact,
        check.expected,
        check.missing.len(),
        check.corrupted.len()
    );

    // Summary, comparison and verdict from the records the run logged.
    if !async_upload::log::flush() {
        println!("warning: the JSONL log did not flush in time");
    }
    let mut log = read_file(&log_path)?;
    log.uploads.retain(|r| r.site == SITE && r.ts >= started_at);
    log.events.retain(|e| e.ts() >= started_at);
    let rollout = site_settings().rollout.percent();
    let stage = DEFAULT_STAGES
        .iter()
        .rev()
        .find(|s| s.rollout <= rollout)
        .unwrap_or(&DEFAULT_STAGES[0]);
    println!();
    match Report::build(
        &log,
        &ReportOptions {
            site: Some(SITE.into()),
            stage: Some(stage.number),
            ..ReportOptions::default()
        },
    ) {
        Ok(report) => print!("{}", report.render()),
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
    println!(
        "report again: cargo run -q --features cli --bin async-upload -- report {} --stage {}",
        log_path.display(),
        stage.number
    );

    let ok = failures.is_empty()
        && check.all_intact()
        && aggregated == calls
        && log.uploads.len() as u64 == calls;
    if !ok {
        println!("FAILED: a file was lost or corrupted, or the records do not match the calls");
    }
    Ok(ok)
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
