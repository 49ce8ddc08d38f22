//! The replica process of the fleet tests: the test binary re-run as its
//! `replica_process` test, configured by environment variables only (as
//! a service is), uploading through two sites (`up`, `other`) in a loop
//! and printing, as `FLEET` lines with its wall clock, every change of
//! what it applied, the paths its calls take, its leader's view of the
//! fleet's health, and every fleet event it logs (level and fields, so a
//! test counts events instead of reading their text).
//!
//! Environment (besides the library's `ASYNC_UPLOAD_*`):
//! - `FLEET_TEST_BUILDER=URL`: start with `Fleet::builder(URL).start()`
//!   (no seed) instead of from `ASYNC_UPLOAD_REDIS_URL`;
//! - `FLEET_TEST_LEAD=1`: ask for the lease of `up`;
//! - `FLEET_TEST_DRIVE=SECONDS`: run `Fleet::drive` on `up` with stages
//!   of SECONDS each and small sample counts, advancing by themselves
//!   (`FLEET_TEST_ROLLOUT=PERCENT`: every stage at that rollout);
//! - `FLEET_TEST_PANIC=1`: the async path of `up` panics from the start;
//! - `FLEET_TEST_TRACE=1`: the fleet's logs on stderr too.
//!
//! Commands on stdin, one a line: `fail on` / `fail off` (the async path of
//! `up` fails: every call falls back; said back once applied), `panic on` / `panic off`,
//! `roll-back REASON` (`Fleet::roll_back` of `up`), `stop`.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_upload::async_upload;
use async_upload::fleet::Fleet;
use async_upload::metrics::ExecutionType;
use async_upload::stages::{Controller, Stage, DEFAULT_STAGES};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use super::replica_lines::say;

/// The site the tests act on.
pub const UP: &str = "up";
/// The site beside it (bad data, kill switches elsewhere).
pub const OTHER: &str = "other";

static FAIL: AtomicBool = AtomicBool::new(false);
static PANIC: AtomicBool = AtomicBool::new(false);

fn blocking(key: String) -> Result<usize, std::io::Error> {
    Ok(key.len())
}

#[async_upload(name = "up", retries = 0, fallback = blocking, key = key.as_str())]
async fn upload_up(key: String) -> Result<usize, std::io::Error> {
    assert!(
        !PANIC.load(Ordering::Relaxed),
        "injected panic in the async path"
    );
    if FAIL.load(Ordering::Relaxed) {
        return Err(std::io::ErrorKind::ConnectionRefused.into());
    }
    tokio::task::yield_now().await;
    Ok(key.len())
}

#[async_upload(name = "other", retries = 0, fallback = blocking, key = key.as_str())]
async fn upload_other(key: String) -> Result<usize, std::io::Error> {
    tokio::task::yield_now().await;
    Ok(key.len())
}

/// Prints every event of the fleet's modules: `log level=… n=…`, the
/// values of the fields `cause`, `key`, `setting`, `url` and `site` when
/// it has them, and `fields=` the names of all (`n` counts that level).
struct EventLines {
    counts: Mutex<[u64; 5]>,
}

#[derive(Default)]
struct Fields {
    names: Vec<&'static str>,
    values: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.names.push(field.name());
        if matches!(field.name(), "cause" | "key" | "setting" | "url" | "site") {
            let text = format!("{value:?}").trim_matches('"').replace(' ', "_");
            self.values.push((field.name(), text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }
}

impl<S: tracing::Subscriber> Layer<S> for EventLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("async_upload_fleet") {
            return;
        }
        let level = *meta.level();
        let index = match level {
            tracing::Level::ERROR => 0,
            tracing::Level::WARN => 1,
            tracing::Level::INFO => 2,
            tracing::Level::DEBUG => 3,
            tracing::Level::TRACE => 4,
        };
        if index > 2 {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let n = {
            let mut counts = self.counts.lock().unwrap();
            counts[index] += 1;
            counts[index]
        };
        let mut line = format!("log level={level} n={n}");
        for (name, value) in &fields.values {
            line.push_str(&format!(" {name}={value}"));
        }
        line.push_str(&format!(" fields={}", fields.names.join(",")));
        say(&line);
    }
}

fn install_logging() {
    let lines = EventLines {
        counts: Mutex::new([0; 5]),
    };
    let trace = std::env::var_os("FLEET_TEST_TRACE").is_some().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
    });
    let subscriber = tracing_subscriber::registry().with(lines).with(trace);
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
}

/// Stages of `secs` seconds each, a few samples, no latency criterion
/// (both paths of this replica do the same nothing).
fn stages(secs: f64) -> Vec<Stage> {
    let rollout: Option<f64> = std::env::var("FLEET_TEST_ROLLOUT")
        .ok()
        .map(|r| r.parse().expect("FLEET_TEST_ROLLOUT=PERCENT"));
    DEFAULT_STAGES
        .iter()
        .map(|stage| {
            let mut stage = stage.clone();
            if let Some(rollout) = rollout {
                stage.rollout = rollout;
            }
            stage
                .with_min_duration(Duration::from_secs_f64(secs))
                .with_min_samples(3)
                .with_latency_ratio(1000.0)
        })
        .collect()
}

fn start_fleet() -> Fleet {
    if let Ok(url) = std::env::var("FLEET_TEST_BUILDER") {
        let instance = std::env::var("ASYNC_UPLOAD_INSTANCE").expect("an instance id");
        return Fleet::builder(url)
            .instance(instance)
            .start()
            .expect("the builder starts");
    }
    let _ = async_upload::config::handle(); // starts the fleet from the environment
    async_upload::fleet::global()
        .expect("ASYNC_UPLOAD_REDIS_URL starts the fleet")
        .clone()
}

/// The replica's life: start, upload until `stop`, flush, say `done`.
pub fn run() {
    install_logging();
    // Injected panics (hundreds a second) stay quiet; any other is said.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("injected panic") {
            default(info);
        }
    }));
    PANIC.store(
        std::env::var_os("FLEET_TEST_PANIC").is_some(),
        Ordering::Relaxed,
    );
    let fleet = start_fleet();
    if std::env::var_os("FLEET_TEST_LEAD").is_some() {
        fleet.lead(UP).unwrap();
    }
    if let Ok(secs) = std::env::var("FLEET_TEST_DRIVE") {
        let stages = stages(secs.parse().expect("FLEET_TEST_DRIVE=SECONDS"));
        fleet
            .drive(UP, Duration::from_millis(100), move || {
                Controller::builder(UP)
                    .stages(stages.clone())
                    .auto_advance(true)
                    .recent_window(Duration::from_secs(2))
            })
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    commands(&fleet, &stop);
    let calls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let load = {
        let (stop, calls, errors) = (Arc::clone(&stop), Arc::clone(&calls), Arc::clone(&errors));
        runtime.spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                i += 1;
                let up = upload_up(format!("key-{i}")).await;
                let other = upload_other(format!("key-{i}")).await;
                let failed = u64::from(up.is_err()) + u64::from(other.is_err());
                errors.fetch_add(failed, Ordering::Relaxed);
                calls.fetch_add(2, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    say("ready");
    monitor(&fleet, &stop, &calls, &errors);
    runtime.block_on(load).unwrap();
    let flushed = async_upload::log::flush();
    let dropped = async_upload::log::global().map_or(0, |log| log.stats().dropped());
    say(&format!(
        "done calls={} errors={} flushed={flushed} dropped={dropped}",
        calls.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    ));
}

fn commands(fleet: &Fleet, stop: &Arc<AtomicBool>) {
    let (fleet, stop) = (fleet.clone(), Arc::clone(stop));
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            let line = line.trim();
            match line {
                "stop" => break,
                "fail on" | "fail off" => {
                    FAIL.store(line == "fail on", Ordering::Relaxed);
                    // The parent may wait for this before its next step.
                    say(line);
                }
                "panic on" | "panic off" => PANIC.store(line == "panic on", Ordering::Relaxed),
                _ => {
                    if let Some(reason) = line.strip_prefix("roll-back ") {
                        let latched = fleet.roll_back(UP, reason);
                        say(&format!("rolled-back latched={latched}"));
                    }
                }
            }
        }
        stop.store(true, Ordering::Release);
    });
}

/// Prints what changed, every millisecond; the paths and the leader's
/// fleet health every 100 ms.
fn monitor(fleet: &Fleet, stop: &AtomicBool, calls: &AtomicU64, errors: &AtomicU64) {
    let config = async_upload::config::handle();
    let mut last = [String::new(), String::new(), String::new()];
    let mut leader = None;
    let mut ticks = 0u64;
    while !stop.load(Ordering::Acquire) {
        let global = config.config();
        for (slot, site) in [UP, OTHER].into_iter().enumerate() {
            let overrides = config.site_overrides(site);
            let reason = config.rollback_reason(site);
            let state = format!(
                "state site={site} enabled={} default_rollout={} rollout={} site_enabled={} rolled_back={} reason_len={} connected={} pushes={} remembered={}",
                global.enabled,
                global.rollout,
                overrides.rollout.map_or("none".to_owned(), |r| r.to_string()),
                overrides.enabled.map_or("none".to_owned(), |e| e.to_string()),
                reason.is_some(),
                reason.map_or(0, |r| r.len()),
                fleet.connected(),
                fleet.receives_pushes(),
                fleet.remembered(),
            );
            if state != last[slot] {
                say(&format!("{state} version={}", fleet.applied_version()));
                last[slot].clone_from(&state);
            }
        }
        let stage = format!(
            "stage={} entered_ms={}",
            fleet
                .shared_stage(UP)
                .map_or("none".into(), |s| s.to_string()),
            fleet.stage_entered(UP).map_or("none".into(), |t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
                    .to_string()
            }),
        );
        if stage != last[2] {
            say(&stage);
            last[2].clone_from(&stage);
        }
        let leading = fleet.is_leader(UP);
        if leader != Some(leading) {
            say(&format!("leader={leading}"));
            leader = Some(leading);
        }
        ticks += 1;
        if ticks % 100 == 0 {
            say(&format!(
                "load calls={} errors={}",
                calls.load(Ordering::Relaxed),
                errors.load(Ordering::Relaxed)
            ));
            for site in [UP, OTHER] {
                let snapshot = async_upload::metrics::global().snapshot(site);
                let count = |kind| snapshot.as_ref().map_or(0, |s| s.path(kind).count);
                say(&format!(
                    "paths site={site} sync={} async={} fallback={}",
                    count(ExecutionType::Sync),
                    count(ExecutionType::Async),
                    count(ExecutionType::SyncFallback),
                ));
            }
            if let Some(health) = fleet.health(UP) {
                let enrolled = health.path(ExecutionType::Async).count
                    + health.path(ExecutionType::SyncFallback).count;
                say(&format!("health enrolled={enrolled}"));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
