//! `--staged`: the seed's plan, live. A [`Controller`] drives the demo's
//! site through [`DEFAULT_STAGES`] (1 → 10 → 50 → 100 %) with its minimum
//! durations scaled by `--time-scale`, auto-advancing on an `advance`
//! verdict, while uploads loop over the files; `--regress-at N` makes the
//! server fail every async request once stage N is entered, so the
//! controller's rollback trigger fires and every call goes back to sync.
//! Every transition goes on a [`Timeline`] with the time each replica
//! applied it (here one replica: this process, which applies it at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_upload::metrics::{self, ExecutionType};
use async_upload::stages::{Controller, Stage, Verdict, DEFAULT_STAGES};

use crate::support::client::Endpoint;
use crate::support::files::TestFile;
use crate::support::server::Outage;
use crate::{site_settings, upload, SITE};

/// The demo's stages: [`DEFAULT_STAGES`] with their minimum durations ×
/// `time_scale` and their minimum samples × `samples_scale` (rounded up);
/// `latency_ratio`, when given, replaces every stage's latency criterion.
pub fn stages(time_scale: f64, samples_scale: f64, latency_ratio: Option<f64>) -> Vec<Stage> {
    DEFAULT_STAGES
        .iter()
        .map(|stage| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let samples = ((stage.min_samples as f64 * samples_scale).ceil() as u64).max(1);
            let ratio = latency_ratio.unwrap_or(stage.max_latency_ratio);
            stage
                .clone()
                .with_latency_ratio(ratio)
                .with_min_duration(stage.min_duration.mul_f64(time_scale))
                .with_min_samples(samples)
        })
        .collect()
}

/// One transition, and when each replica applied it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Since the controller started.
    pub at: Duration,
    /// What happened.
    pub what: String,
    /// (replica, since the controller started) for each replica that applied it.
    pub applied: Vec<(String, Duration)>,
}

/// Every transition of the run, in order.
#[derive(Clone, Debug)]
pub struct Timeline {
    start: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Timeline {
    pub fn new(start: Instant) -> Self {
        Timeline {
            start,
            entries: Arc::default(),
        }
    }

    /// A timeline of transitions gathered elsewhere (the fleet's replicas).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn of(entries: Vec<Entry>) -> Self {
        Timeline {
            start: Instant::now(),
            entries: Arc::new(Mutex::new(entries)),
        }
    }

    pub fn since_start(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn push(&self, what: impl Into<String>, applied: Vec<(String, Duration)>) {
        let at = self.since_start();
        let what = what.into();
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Entry { at, what, applied });
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The timeline as printed: one line per transition, then one per replica that applied it.
    pub fn print(&self, zero: &str) {
        println!("timeline (t = time since {zero}):");
        let mut max_lag = Duration::ZERO;
        for entry in self.entries() {
            println!("  t={:>8.3}s  {}", entry.at.as_secs_f64(), entry.what);
            for (replica, applied) in &entry.applied {
                let lag = applied.saturating_sub(entry.at);
                max_lag = max_lag.max(lag);
                println!(
                    "  {:>11}  applied by {replica} at t={:.3}s (lag {:.1} ms)",
                    "",
                    applied.as_secs_f64(),
                    lag.as_secs_f64() * 1000.0
                );
            }
        }
        println!("  max apply lag: {:.1} ms", max_lag.as_secs_f64() * 1000.0);
    }
}

/// What the staged run did.
pub struct Outcome {
    pub calls: u64,
    pub failures: Vec<String>,
    /// The stage the site ended in.
    pub stage: u32,
    /// The stage the rollback fired in, if it did.
    pub rolled_back_at: Option<u32>,
    /// The rollout ran to its last stage and passed it.
    pub completed: bool,
    /// Calls that took the async path after the rollback latched.
    pub async_after_rollback: u64,
    pub calls_after_rollback: u64,
}

/// The settings of the staged run.
pub struct Plan {
    pub stages: Vec<Stage>,
    pub regress_at: Option<u32>,
    pub tick: Duration,
    pub recent_window: Duration,
    /// How long uploads go on after the rollback (to show them all on sync).
    pub after_rollback: Duration,
    /// Give up when a stage lasts this many times its minimum duration (plus 10 s).
    pub patience: f64,
}

/// Uploads pass after pass over `files`, `concurrency` at a time, until
/// `stop` (checked between passes, so every file is uploaded at least
/// once); the calls made and the failures.
pub fn traffic(
    files: &[TestFile],
    endpoint: &Endpoint,
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, Vec<String>)> {
    let files = files.to_vec();
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let (mut calls, mut failures) = (0_u64, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            let mut tasks = tokio::task::JoinSet::new();
            for file in &files {
                let request = file.request(&endpoint);
                let limit = Arc::clone(&limit);
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await.expect("never closed");
                    let id = request.id.clone();
                    (id, upload(request).await)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                calls += 1;
                match joined {
                    Ok((_, Ok(_))) => {}
                    Ok((id, Err(error))) => failures.push(format!("{id}: {error}")),
                    Err(error) => failures.push(format!("task: {error}")),
                }
            }
        }
        (calls, failures)
    })
}

/// A short text of a verdict.
pub fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Advance => "advance".into(),
        Verdict::Hold { missing } => format!(
            "hold ({})",
            missing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Verdict::Review { triggers } | Verdict::Rollback { triggers } => format!(
            "{} ({})",
            verdict.name(),
            triggers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The async-path and total call counts of the site so far.
fn counts() -> (u64, u64) {
    metrics::global().snapshot(SITE).map_or((0, 0), |s| {
        let n = |et| s.path(et).count;
        (
            n(ExecutionType::Async) + n(ExecutionType::SyncFallback),
            ExecutionType::ALL.iter().map(|&et| n(et)).sum(),
        )
    })
}

/// This process applied `stage`/the rollback when its live settings say so: the time it saw it.
fn applied_locally(timeline: &Timeline, rollout: Option<f64>) -> Vec<(String, Duration)> {
    let settings = site_settings();
    let ok = match rollout {
        Some(percent) => (settings.rollout.percent() - percent).abs() < 1e-9,
        None => settings.rolled_back,
    };
    if ok {
        vec![("replica 0 (this process)".into(), timeline.since_start())]
    } else {
        Vec::new()
    }
}

/// Runs the staged rollout: the controller on its tick, uploads looping
/// over `files` until the rollout completes, rolls back (and
/// `after_rollback` passes) or stalls.
#[allow(clippy::too_many_lines)] // the controller's loop and the timeline, step by step
pub async fn run(
    plan: Plan,
    files: &[TestFile],
    endpoint: &Endpoint,
    concurrency: usize,
    outage: Outage,
) -> Outcome {
    let start = Instant::now();
    let timeline = Timeline::new(start);
    let controller = Controller::builder(SITE)
        .stages(plan.stages.clone())
        .auto_advance(true)
        .recent_window(plan.recent_window)
        .tick_interval(plan.tick)
        .start();
    let first = controller.stage().clone();
    let controller = Arc::new(Mutex::new(controller));
    let stop = Arc::new(AtomicBool::new(false));

    let enter = |stage: &Stage| {
        timeline.push(
            format!(
                "stage {} entered ({}% rollout, at least {:.1}s and {} enrolled calls)",
                stage.number,
                stage.rollout,
                stage.min_duration.as_secs_f64(),
                stage.min_samples
            ),
            applied_locally(&timeline, Some(stage.rollout)),
        );
        if plan.regress_at == Some(stage.number) {
            outage.start();
            timeline.push(
                format!(
                    "regression injected at stage {}: the server answers 503 to every async request",
                    stage.number
                ),
                Vec::new(),
            );
        }
    };
    enter(&first);

    let traffic = traffic(files, endpoint, concurrency, Arc::clone(&stop));

    let mut stage = first;
    let mut stage_since = Instant::now();
    let mut last_verdict = String::new();
    let mut rolled_back_at = None;
    let mut rollback_counts = (0, 0);
    let mut rollback_since: Option<Instant> = None;
    let mut completed = false;
    let mut interval = tokio::time::interval(plan.tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let (now_stage, evaluation, latched) = {
            let mut c = controller.lock().unwrap_or_else(PoisonError::into_inner);
            let evaluation = c.tick().clone();
            (c.stage().clone(), evaluation, c.rollback().is_some())
        };
        let verdict = describe(&evaluation.verdict);
        let key = format!("{} {}", evaluation.stage, evaluation.verdict.name());
        if key != last_verdict {
            last_verdict = key;
            timeline.push(
                format!("stage {} verdict: {verdict}", evaluation.stage),
                Vec::new(),
            );
        }
        if now_stage.number != stage.number {
            stage = now_stage;
            stage_since = Instant::now();
            enter(&stage);
        }
        if latched && rolled_back_at.is_none() {
            rolled_back_at = Some(stage.number);
            rollback_counts = counts();
            rollback_since = Some(Instant::now());
            let reason = async_upload::config::handle()
                .rollback_reason(SITE)
                .unwrap_or_default();
            timeline.push(
                format!("ROLLBACK latched ({reason}): every call now takes the sync path"),
                applied_locally(&timeline, None),
            );
        }
        let last = plan.stages.last().is_some_and(|s| s.number == stage.number);
        if rollback_since.is_some_and(|since| since.elapsed() >= plan.after_rollback) {
            break;
        }
        let passed =
            evaluation.stage == stage.number && matches!(evaluation.verdict, Verdict::Advance);
        if rolled_back_at.is_none() && last && passed {
            completed = true;
            timeline.push(
                format!(
                    "stage {}: every criterion met, rollout complete",
                    stage.number
                ),
                Vec::new(),
            );
            break;
        }
        let patience = stage.min_duration.mul_f64(plan.patience) + Duration::from_secs(10);
        if rolled_back_at.is_none() && stage_since.elapsed() > patience {
            timeline.push(
                format!(
                    "stage {} did not pass in {:.1}s: stopping (last verdict: {verdict})",
                    stage.number,
                    patience.as_secs_f64()
                ),
                Vec::new(),
            );
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (calls, failures) = traffic
        .await
        .unwrap_or_else(|e| (0, vec![format!("traffic: {e}")]));
    let (async_now, total_now) = counts();
    timeline.push("uploads stopped", Vec::new());
    println!();
    timeline.print("the controller started");
    Outcome {
        calls,
        failures,
        stage: stage.number,
        rolled_back_at,
        completed,
        async_after_rollback: if rolled_back_at.is_some() {
            async_now - rollback_counts.0
        } else {
            0
        },
        calls_after_rollback: if rolled_back_at.is_some() {
            total_now - rollback_counts.1
        } else {
            0
        },
    }
}
