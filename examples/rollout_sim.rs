//! Monte-Carlo rollout simulator: how often does a rule roll back a healthy
//! site during a stage, and how fast does it roll back a broken one?
//!
//! ```text
//! cargo run --release --example rollout_sim -- --seed 2026
//! ```
//!
//! Each run is one stage (24 hours, stage 1's minimum) of one site with a
//! true async success rate and an async/sync latency ratio. Enrolled calls
//! arrive at λ per minute (Poisson), sync calls at the same rate (the
//! comparison is bounded by its smaller side, so more sync traffic would
//! change little). An async failure falls back to the sync path, which
//! succeeds 99.9 % of the time. Every 30 seconds of simulated time:
//!
//! - **ours**: the real [`Controller`] ticks on a [`ManualClock`], reading
//!   the simulated counters as its health source;
//! - **naive**: the point-estimate rule the evaluator had before the judge:
//!   success below 95 % or errors above 5 % over the last 4 minutes, with
//!   at least 20 calls in them;
//! - **flagger**: a Flagger-style analysis: every minute a check over that
//!   minute's calls fails when success is below 95 % or errors above 5 % (a
//!   minute without calls is skipped, not failed); the 5th failed check
//!   rolls back.
//!
//! All three see the same calls. A run ends when all three have rolled back
//! or the stage is over.
//!
//! The *shared outage* scenario is a healthy site whose backend, shared by
//! both paths, fails 90 % of all calls (sync, async and fallbacks alike) for
//! ten minutes from the sixth hour: any rollback of it is a false one, the
//! new path being as good as the old. The table (and `--json`) gives, per scenario and
//! traffic, the fraction of runs each rule rolled back and the median and
//! 95th percentile time to roll back ("-" when fewer runs than that
//! quantile rolled back). Every run's randomness comes from `--seed`, the
//! scenario and the run's index, so the table is the same on every machine
//! and with any number of threads.

use async_upload_test_support::rank;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_upload::metrics::{ExecutionType, SiteSnapshot, UploadRecord};
use async_upload::stages::{
    rate_interval, Actuator, Confidence, Controller, HealthSource, ManualClock, Verdict,
};
use clap::Parser;

/// The site's name in records (each run has counters and a latch of its own).
const SITE: &str = "upload";
const TICK: Duration = Duration::from_secs(30);
const STAGE: Duration = Duration::from_secs(24 * 3600);
const TICKS: u32 = (STAGE.as_secs() / TICK.as_secs()) as u32;
/// Median latency of the sync path, milliseconds; log-normal spread.
const SYNC_MEDIAN_MS: f64 = 20.0;
const LATENCY_SIGMA: f64 = 0.5;
const SYNC_SUCCESS: f64 = 0.999;
/// The naive rule's window: 8 ticks of 30 s, the controller's default 4 minutes.
const NAIVE_TICKS: usize = 8;
const NAIVE_MIN_CALLS: u64 = 20;
const FLAGGER_FAILED_CHECKS: u32 = 5;
const SUCCESS_FLOOR: f64 = 0.95;
const ERROR_CEILING: f64 = 0.05;

#[derive(Parser, Debug)]
#[command(about = "Monte-Carlo comparison of rollback rules on simulated traffic")]
struct Args {
    /// Seed of every run's randomness.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Runs per healthy scenario and traffic level.
    #[arg(long, default_value_t = 400)]
    healthy_runs: u32,
    /// Runs per degraded scenario and traffic level.
    #[arg(long, default_value_t = 100)]
    degraded_runs: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/rollout_sim.json")]
    json: String,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    success: f64,
    latency_ratio: f64,
    /// Ticks `[from, to)` during which the shared backend fails every path.
    outage: Option<(u32, u32)>,
}

/// Success of any call, on any path, while the shared backend is down.
const OUTAGE_SUCCESS: f64 = 0.10;

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "healthy",
        success: 0.999,
        latency_ratio: 1.0,
        outage: None,
    },
    Scenario {
        name: "97% (above the 95% floor)",
        success: 0.97,
        latency_ratio: 1.5,
        outage: None,
    },
    Scenario {
        name: "degraded 93%",
        success: 0.93,
        latency_ratio: 1.5,
        outage: None,
    },
    Scenario {
        name: "broken 80%",
        success: 0.80,
        latency_ratio: 1.5,
        outage: None,
    },
    // Last, so the scenarios before keep the seeds of their runs.
    Scenario {
        name: "shared outage (both paths 10% for 10 min)",
        success: 0.999,
        latency_ratio: 1.0,
        // From 6 h, for 10 minutes of 30 s ticks.
        outage: Some((720, 740)),
    },
];

impl Scenario {
    /// Whether the site's every false rollback is one (the new path is
    /// within its limits).
    const fn healthy(&self) -> bool {
        self.success > 0.99
    }
}

const TRAFFIC: [f64; 3] = [10.0, 100.0, 1000.0];

const RULES: [&str; 3] = ["ours", "naive", "flagger"];

/// When each rule rolled back in one run (tick index), if it did; and when
/// ours first asked for a review.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    rollback: [Option<u32>; 3],
    review: Option<u32>,
}

/// Calls of one tick.
#[derive(Clone, Copy, Debug, Default)]
struct TickCounts {
    enrolled: u64,
    async_ok: u64,
    user_errors: u64,
}

/// The naive and Flagger-style rules over the per-tick counts.
#[derive(Default)]
struct Baselines {
    ticks: Vec<TickCounts>,
    failed_checks: u32,
}

fn breached(window: &[TickCounts], min_calls: u64) -> bool {
    let enrolled: u64 = window.iter().map(|t| t.enrolled).sum();
    if enrolled == 0 || enrolled < min_calls {
        return false;
    }
    let ok: u64 = window.iter().map(|t| t.async_ok).sum();
    let errors: u64 = window.iter().map(|t| t.user_errors).sum();
    #[allow(clippy::cast_precision_loss)]
    let (success, error) = (ok as f64 / enrolled as f64, errors as f64 / enrolled as f64);
    success < SUCCESS_FLOOR || error > ERROR_CEILING
}

impl Baselines {
    /// Adds a tick; returns whether (naive, flagger) call for a rollback now.
    fn tick(&mut self, counts: TickCounts) -> (bool, bool) {
        self.ticks.push(counts);
        let n = self.ticks.len();
        let naive = breached(
            &self.ticks[n.saturating_sub(NAIVE_TICKS)..],
            NAIVE_MIN_CALLS,
        );
        // Flagger checks once a minute, over that minute.
        if n % 2 == 0 && breached(&self.ticks[n - 2..], 1) {
            self.failed_checks += 1;
        }
        (naive, self.failed_checks >= FLAGGER_FAILED_CHECKS)
    }
}

/// The simulated site's counters, read by the controller.
struct Counters(Arc<Mutex<SiteSnapshot>>);

impl HealthSource for Counters {
    fn snapshot(&self, _site: &str) -> Option<SiteSnapshot> {
        Some(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Where the simulated controller's decisions go: a latch of its own, so
/// runs share nothing (not even the process's configuration).
#[derive(Default)]
struct Latch(Mutex<Option<String>>);

impl Actuator for Latch {
    fn enter_stage(&self, _site: &str, _stage: u32, _rollout: f64) {}

    fn roll_back(&self, _site: &str, reason: &str) -> bool {
        let mut latch = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let first = latch.is_none();
        latch.get_or_insert_with(|| reason.to_owned());
        first
    }

    fn clear_rollback(&self, _site: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn rollback_reason(&self, _site: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The simulated service: draws calls and counts them where the controller
/// reads them.
struct Traffic {
    rng: fastrand::Rng,
    scenario: Scenario,
    per_tick: f64,
    counters: Arc<Mutex<SiteSnapshot>>,
}

impl Traffic {
    fn poisson(&mut self) -> u64 {
        let mean = self.per_tick;
        if mean > 50.0 {
            // Normal approximation: within a fraction of a percent at this mean.
            let draw = mean + mean.sqrt() * self.normal();
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return draw.round().max(0.0) as u64;
        }
        // Knuth's product of uniforms.
        let limit = (-mean).exp();
        let (mut k, mut product) = (0, self.rng.f64());
        while product > limit {
            k += 1;
            product *= self.rng.f64();
        }
        k
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller; 1 - u keeps the logarithm finite.
        let (u, v) = (1.0 - self.rng.f64(), self.rng.f64());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn latency_ms(&mut self, ratio: f64) -> f64 {
        SYNC_MEDIAN_MS * ratio * (LATENCY_SIGMA * self.normal()).exp()
    }

    /// Tick `tick`'s calls: recorded for the controller, counted for the rules.
    fn tick(&mut self, tick: u32) -> TickCounts {
        let down = self
            .scenario
            .outage
            .is_some_and(|(from, to)| (from..to).contains(&tick));
        let (async_success, sync_success) = if down {
            (OUTAGE_SUCCESS, OUTAGE_SUCCESS)
        } else {
            (self.scenario.success, SYNC_SUCCESS)
        };
        let mut counts = TickCounts::default();
        let mut records = Vec::new();
        for _ in 0..self.poisson() {
            let took = self.latency_ms(self.scenario.latency_ratio);
            counts.enrolled += 1;
            if self.rng.f64() < async_success {
                counts.async_ok += 1;
                records.push(UploadRecord::new(SITE, ExecutionType::Async, true, took, 1));
            } else {
                let saved = self.rng.f64() < sync_success;
                counts.user_errors += u64::from(!saved);
                let total = took + self.latency_ms(1.0);
                records.push(UploadRecord::new(
                    SITE,
                    ExecutionType::SyncFallback,
                    saved,
                    total,
                    1,
                ));
            }
        }
        for _ in 0..self.poisson() {
            let ok = self.rng.f64() < sync_success;
            let took = self.latency_ms(1.0);
            records.push(UploadRecord::new(SITE, ExecutionType::Sync, ok, took, 0));
        }
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for record in &records {
            counters.record(record);
        }
        counts
    }
}

/// One stage of the simulated site.
fn run(seed: u64, scenario: Scenario, per_minute: f64) -> Outcome {
    let counters = Arc::new(Mutex::new(SiteSnapshot::empty(SITE)));
    let mut traffic = Traffic {
        rng: fastrand::Rng::with_seed(seed),
        scenario,
        per_tick: per_minute * TICK.as_secs_f64() / 60.0,
        counters: Arc::clone(&counters),
    };
    let clock = ManualClock::new();
    let mut controller = Controller::builder(SITE)
        .clock(clock.clone())
        .memory(|| Some(64 << 20))
        .health(Counters(Arc::clone(&counters)))
        .actuator(Latch::default())
        .start();
    let mut baselines = Baselines::default();
    let mut outcome = Outcome::default();
    for tick in 1..=TICKS {
        let counts = traffic.tick(tick);
        clock.advance(TICK);
        let (naive, flagger) = baselines.tick(counts);
        let ours = match &controller.tick().verdict {
            Verdict::Rollback { .. } => true,
            Verdict::Review { .. } => {
                outcome.review.get_or_insert(tick);
                false
            }
            _ => false,
        };
        for (slot, fired) in outcome.rollback.iter_mut().zip([ours, naive, flagger]) {
            if fired && slot.is_none() {
                *slot = Some(tick);
            }
        }
        if outcome.rollback.iter().all(Option::is_some) {
            break;
        }
    }
    outcome
}

/// A seed for run `index` of one scenario and traffic level.
fn run_seed(seed: u64, scenario: usize, traffic: usize, index: u32) -> u64 {
    let mut rng =
        fastrand::Rng::with_seed(seed ^ ((scenario as u64) << 40) ^ ((traffic as u64) << 32));
    rng.u64(..) ^ u64::from(index)
}

/// The runs of one cell, split over `threads`.
fn cell(args: &Args, scenario: usize, traffic: usize, runs: u32) -> Vec<Outcome> {
    let threads = args.threads.clamp(1, 64);
    let mut outcomes = vec![Outcome::default(); runs as usize];
    std::thread::scope(|scope| {
        for (worker, chunk) in outcomes
            .chunks_mut((runs as usize).div_ceil(threads as usize).max(1))
            .enumerate()
        {
            let first = worker * (runs as usize).div_ceil(threads as usize);
            scope.spawn(move || {
                for (offset, slot) in chunk.iter_mut().enumerate() {
                    #[allow(clippy::cast_possible_truncation)]
                    let index = (first + offset) as u32;
                    let seed = run_seed(args.seed, scenario, traffic, index);
                    *slot = run(seed, SCENARIOS[scenario], TRAFFIC[traffic]);
                }
            });
        }
    });
    outcomes
}

/// The `q` quantile of times in minutes, runs that never fired counting as
/// infinitely late: `None` when too few fired.
fn quantile_minutes(ticks: &[Option<u32>], q: f64) -> Option<f64> {
    let mut sorted: Vec<u32> = ticks.iter().map(|t| t.unwrap_or(u32::MAX)).collect();
    sorted.sort_unstable();
    let tick = rank::nearest_rank(&sorted, q);
    (tick != u32::MAX).then(|| f64::from(tick) * TICK.as_secs_f64() / 60.0)
}

fn show_minutes(minutes: Option<f64>) -> String {
    match minutes {
        None => "-".into(),
        Some(m) if m < 60.0 => format!("{m:.1} min"),
        Some(m) => format!("{:.1} h", m / 60.0),
    }
}

fn main() {
    let args = Args::parse();
    let started = std::time::Instant::now();
    let mut cells = Vec::new();
    println!(
        "rollout_sim --seed {}: {} h stage, ticks of {} s, {} healthy / {} degraded runs per cell",
        args.seed,
        STAGE.as_secs() / 3600,
        TICK.as_secs(),
        args.healthy_runs,
        args.degraded_runs
    );
    println!(
        "\n| scenario | calls/min | rule | rolled back | 95 % CI | median time | p95 time | first review (median) |"
    );
    println!("| --- | ---: | --- | ---: | --- | ---: | ---: | ---: |");
    for (s, scenario) in SCENARIOS.iter().enumerate() {
        for (t, per_minute) in TRAFFIC.iter().enumerate() {
            let runs = if scenario.healthy() {
                args.healthy_runs
            } else {
                args.degraded_runs
            };
            let outcomes = cell(&args, s, t, runs);
            let reviews: Vec<Option<u32>> = outcomes.iter().map(|o| o.review).collect();
            let review = quantile_minutes(&reviews, 0.5);
            let mut rules = Vec::new();
            for (r, rule) in RULES.iter().enumerate() {
                let ticks: Vec<Option<u32>> = outcomes.iter().map(|o| o.rollback[r]).collect();
                let fired = ticks.iter().filter(|t| t.is_some()).count() as u64;
                let ci = rate_interval(
                    fired,
                    u64::from(runs),
                    Confidence::new(0.95).expect("valid"),
                )
                .expect("runs > 0");
                #[allow(clippy::cast_precision_loss)]
                let fraction = fired as f64 / f64::from(runs);
                let (median, p95) = (
                    quantile_minutes(&ticks, 0.5),
                    quantile_minutes(&ticks, 0.95),
                );
                println!(
                    "| {} | {per_minute} | {rule} | {:.1} % | {:.1}–{:.1} % | {} | {} | {} |",
                    scenario.name,
                    fraction * 100.0,
                    ci.low * 100.0,
                    ci.high * 100.0,
                    show_minutes(median),
                    show_minutes(p95),
                    // Only ours asks for reviews.
                    if r == 0 {
                        show_minutes(review)
                    } else {
                        String::new()
                    }
                );
                rules.push(serde_json::json!({
                    "rule": rule,
                    "rolled_back": fraction,
                    "rolled_back_ci95": [ci.low, ci.high],
                    "median_minutes": median,
                    "p95_minutes": p95,
                }));
            }
            cells.push(serde_json::json!({
                "scenario": scenario.name,
                "true_success": scenario.success,
                "shared_outage": scenario.outage.is_some(),
                "any_rollback_is_false": scenario.healthy(),
                "latency_ratio": scenario.latency_ratio,
                "calls_per_minute": per_minute,
                "runs": runs,
                "rules": rules,
                "ours_review_median_minutes": review,
            }));
        }
    }
    let json = serde_json::json!({
        "seed": args.seed,
        "stage_hours": STAGE.as_secs() / 3600,
        "tick_seconds": TICK.as_secs(),
        "cells": cells,
    });
    match std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&json).expect("serializable"),
    ) {
        Ok(()) => println!(
            "\nwrote {} in {:.0} s",
            args.json,
            started.elapsed().as_secs_f64()
        ),
        Err(error) => eprintln!("cannot write {}: {error}", args.json),
    }
}
