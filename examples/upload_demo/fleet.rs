//! `--staged --replicas N` (feature `redis`): the staged rollout across
//! processes. The parent starts `redis-server` on a free loopback port (no
//! persistence), seeds the shared defaults (async enabled, 0 %), runs the
//! upload server and spawns N replicas: this example again with the hidden
//! `--replica-of URL`, each with `ASYNC_UPLOAD_REDIS_URL` set, uploading its
//! share of the files through the same site. Every replica runs
//! [`Fleet::drive`](async_upload::fleet::Fleet::drive): the one holding the
//! site's lease runs the controller on the fleet's merged health (the
//! [`Fleet`](async_upload::fleet::Fleet) as actuator and health source),
//! the others a local guard. Each replica prints, with its wall clock,
//! every change of the state it applied; the parent reads those lines and
//! the replicas' logs and prints one timeline with every replica's apply
//! time.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_upload::fleet::{Defaults, Store};
use async_upload::log::{read_file, Event, StageEvent};
use async_upload::stages::{Controller, TriggerKind, Verdict};

use crate::staged::{self, Entry, Timeline};
use crate::support::client::Endpoint;
use crate::support::files::TestFile;
use crate::support::redis::RedisServer;
use crate::support::replica_lines::{as_replica, forward, instance, now_us, say, Line};
use crate::support::server::{file_digest, Outage};
use crate::{site_settings, Args, SITE};

fn us_of(ts: SystemTime) -> u64 {
    ts.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The replica's files: every `replicas`-th file of the directory, from `index`.
fn share(dir: &Path, index: usize, replicas: usize) -> std::io::Result<Vec<TestFile>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    paths
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % replicas == index)
        .map(|(_, path)| {
            let (size, md5) = file_digest(&path)?;
            let id = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(TestFile {
                id,
                path,
                size,
                md5,
            })
        })
        .collect()
}

/// The hidden `--replica-of URL` side: one replica of the fleet.
pub async fn replica(args: &Args, base_url: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let _log_guard = async_upload::log::guard();
    let (index, replicas) = (args.replica_index, args.replicas.unwrap_or(1));
    let dir = args
        .files_dir
        .clone()
        .ok_or("--replica-of needs --files-dir")?;
    // The first use of the configuration starts the fleet from ASYNC_UPLOAD_REDIS_URL.
    let _ = async_upload::config::handle();
    let fleet = async_upload::fleet::global()
        .ok_or("ASYNC_UPLOAD_REDIS_URL must be set for a replica")?
        .clone();

    // Every change of the state this replica applied, with its wall clock.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (fleet, done) = (fleet.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let (mut last, mut leader) = (String::new(), None);
            while !done.load(Ordering::Acquire) {
                let settings = site_settings();
                let state = format!(
                    "state stage={} rollout={} rolled_back={}",
                    fleet
                        .shared_stage(SITE)
                        .map_or("none".into(), |s| s.to_string()),
                    settings.rollout.percent(),
                    settings.rolled_back,
                );
                if state != last {
                    say(&format!("{state} version={}", fleet.applied_version()));
                    last = state;
                }
                let leading = fleet.is_leader(SITE);
                if leader != Some(leading) {
                    say(&format!("leader={leading}"));
                    leader = Some(leading);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // The controller starts once the monitor watches, so no change goes unseen.
    let stages = staged::stages(args.time_scale, args.samples_scale, args.latency_ratio);
    let recent_window = recent_window(args.time_scale);
    fleet.drive(SITE, Duration::from_millis(args.tick_ms), move || {
        Controller::builder(SITE)
            .stages(stages.clone())
            .auto_advance(true)
            .recent_window(recent_window)
    })?;
    let files = share(&dir, index, replicas)?;
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if line.trim() == "stop" {
                    break;
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    say(&format!("ready files={}", files.len()));
    let endpoint = Endpoint::new(base_url);
    let (calls, failures) = staged::traffic(&files, &endpoint, args.concurrency, stop).await?;
    done.store(true, Ordering::Release);
    let _ = monitor.join();
    fleet.stop();
    let flushed = async_upload::log::flush();
    for failure in failures.iter().take(5) {
        eprintln!("replica {index}: failed: {failure}");
    }
    say(&format!(
        "done calls={calls} failures={} flushed={flushed}",
        failures.len()
    ));
    Ok(failures.is_empty() && flushed)
}

/// The recent window of the rate triggers: 4 minutes scaled, at least 1 s.
pub fn recent_window(time_scale: f64) -> Duration {
    async_upload::stages::DEFAULT_RECENT_WINDOW
        .mul_f64(time_scale)
        .max(Duration::from_secs(1))
}

struct Child_ {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

/// What the fleet run did.
pub struct Outcome {
    pub calls: u64,
    pub failures: u64,
    pub stage: u32,
    pub rolled_back_at: Option<u32>,
    pub completed: bool,
    /// Records in the replicas' logs, per execution type.
    pub records: BTreeMap<&'static str, u64>,
}

/// The parent: spawns the replicas, injects the regression when the shared
/// stage reaches it, stops everything, and prints the timeline.
#[allow(clippy::too_many_lines)] // the parent's script, step by step
pub async fn run(
    args: &Args,
    redis: &RedisServer,
    files_dir: &Path,
    out: &Path,
    base_url: &str,
    outage: Outage,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let replicas = args.replicas.unwrap_or(1);
    let stages = staged::stages(args.time_scale, args.samples_scale, args.latency_ratio);
    let store = Store::open(&redis.url())?;
    store.set_defaults(Defaults {
        enabled: true,
        rollout: 0.0,
    })?;
    println!(
        "fleet: redis-server at {} (no persistence); shared defaults: async enabled, 0 %; {replicas} replicas, each running Fleet::drive (the lease holder runs the controller on the fleet's merged health)",
        redis.url()
    );

    let (sender, lines) = mpsc::channel::<Line>();
    let exe = std::env::current_exe()?;
    let t0 = now_us();
    let mut children = Vec::new();
    for index in 0..replicas {
        let log = out.join(format!("{}.jsonl", instance(index)));
        let _ = std::fs::remove_file(&log);
        let mut command = Command::new(&exe);
        as_replica(&mut command, index, &redis.url(), &log)
            .args(["--staged", "--replica-of", base_url])
            .args(["--replica-index", &index.to_string()])
            .args(["--replicas", &replicas.to_string()])
            .arg("--files-dir")
            .arg(files_dir)
            .args(["--time-scale", &args.time_scale.to_string()])
            .args(["--samples-scale", &args.samples_scale.to_string()])
            .args(["--tick-ms", &args.tick_ms.to_string()])
            .args([
                "--concurrency",
                &args.concurrency.div_ceil(replicas).to_string(),
            ]);
        if let Some(ratio) = args.latency_ratio {
            command.args(["--latency-ratio", &ratio.to_string()]);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or("piped stdout")?;
        let stdin = child.stdin.take();
        forward(index, stdout, sender.clone());
        children.push(Child_ { child, stdin, log });
    }
    drop(sender);

    // Watch the shared state; inject the regression when its stage is entered.
    let mut stage = None;
    let mut stage_since = Instant::now();
    let mut rollback_since: Option<Instant> = None;
    let mut regression_us = None;
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let state = match store.state() {
            Ok(state) => state,
            Err(error) => {
                eprintln!("fleet: cannot read the shared state: {error}");
                continue;
            }
        };
        let site = state.sites.get(SITE);
        let now_stage = site.and_then(|s| s.stage);
        if now_stage != stage {
            stage = now_stage;
            stage_since = Instant::now();
            if stage.is_some() && stage == args.regress_at && !outage.is_on() {
                outage.start();
                regression_us = Some(now_us());
            }
        }
        if rollback_since.is_none() && site.is_some_and(|s| s.rollback.is_some()) {
            rollback_since = Some(Instant::now());
        }
        if rollback_since.is_some_and(|since| since.elapsed() >= Duration::from_secs(2)) {
            break;
        }
        let current = stage.and_then(|n| stages.iter().find(|s| s.number == n));
        let last = stages.last().map(|s| s.number);
        if rollback_since.is_none() {
            if let Some(current) = current {
                let waited = stage_since.elapsed();
                // The leader judges fleet numbers published about once a
                // second: give it a few to see the last stage pass.
                if Some(current.number) == last
                    && waited >= current.min_duration + Duration::from_secs(3)
                {
                    break;
                }
                if waited > current.min_duration.mul_f64(3.0) + Duration::from_secs(10) {
                    println!(
                        "fleet: stage {} did not pass in time: stopping",
                        current.number
                    );
                    break;
                }
            } else if started.elapsed() > Duration::from_secs(30) {
                println!("fleet: no replica took the lead within 30 s: stopping");
                break;
            }
        }
    }

    // Stop the replicas: they finish their pass, flush their logs and exit.
    for child in &mut children {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "stop");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (index, child) in children.iter_mut().enumerate() {
        loop {
            if let Some(status) = child.child.try_wait()? {
                if !status.success() {
                    println!("fleet: replica {index} exited with {status}");
                }
                break;
            }
            if Instant::now() > deadline {
                println!("fleet: replica {index} did not exit: killed");
                let _ = child.child.kill();
                let _ = child.child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let lines: Vec<Line> = lines.try_iter().collect();

    // The controller's decisions: the leader's log (from when it led) and
    // the one rollback event, whoever latched it.
    let leader = lines
        .iter()
        .find(|l| l.is("leader=true"))
        .map(|l| (l.replica, l.at_us));
    let mut records: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut decisions: Vec<(u64, Decision)> = Vec::new();
    // The leader's monitor saw the lease within a millisecond or so of its
    // controller (up to a second later on a loaded machine); a guard it ran
    // before entered its stage earlier still, and for each stage the last
    // `entered` is the leading controller's.
    let tolerance = 1_000_000;
    for (index, child) in children.iter().enumerate() {
        let log = match read_file(&child.log) {
            Ok(log) => log,
            Err(error) => {
                println!("fleet: cannot read {}: {error}", child.log.display());
                continue;
            }
        };
        for record in log.uploads.iter().filter(|r| r.site == SITE) {
            *records.entry(record.execution_type.as_str()).or_default() += 1;
        }
        let leading_since = leader.filter(|(i, _)| *i == index).map(|(_, since)| since);
        let mut last_verdict = None;
        for event in &log.events {
            let at = us_of(event.ts());
            match event {
                Event::Stage(StageEvent::Entered(e))
                    if e.site == SITE
                        && leading_since.is_some_and(|since| at + tolerance >= since) =>
                {
                    decisions
                        .retain(|(_, d)| !matches!(d, Decision::Entered(n, _) if *n == e.stage));
                    decisions.push((at, Decision::Entered(e.stage, e.rollout)));
                }
                Event::Stage(StageEvent::Verdict(e))
                    if e.site == SITE && leading_since.is_some_and(|since| at >= since) =>
                {
                    let key = (e.evaluation.stage, e.evaluation.verdict.name());
                    if last_verdict != Some(key) {
                        last_verdict = Some(key);
                        decisions.push((
                            at,
                            Decision::Verdict(e.evaluation.stage, e.evaluation.verdict.clone()),
                        ));
                    }
                }
                Event::Rollback(e) if e.site == SITE => {
                    decisions.push((at, Decision::Rollback(e.stage, index)));
                }
                _ => {}
            }
        }
    }
    decisions.sort_by_key(|(at, _)| *at);

    // Each transition with the time every replica applied it.
    let since = |us: u64| Duration::from_micros(us.saturating_sub(t0));
    let applied_when = |accept: &dyn Fn(&Line) -> bool, from: u64| -> Vec<(String, Duration)> {
        (0..replicas)
            .filter_map(|r| {
                lines
                    .iter()
                    .find(|l| {
                        l.replica == r && l.is("state") && l.at_us + 1_000_000 >= from && accept(l)
                    })
                    .map(|l| {
                        let version = l.get("version").unwrap_or("?");
                        (format!("replica-{r} (state v{version})"), since(l.at_us))
                    })
            })
            .collect()
    };
    let mut entries = Vec::new();
    if let Some((index, at)) = leader {
        entries.push(Entry {
            at: since(at),
            what: format!("replica-{index} holds the site's lease: it runs the controller"),
            applied: Vec::new(),
        });
    }
    let mut final_stage = 0;
    let mut rolled_back_at = None;
    let mut completed = false;
    for (at, decision) in &decisions {
        let (what, applied) = match decision {
            Decision::Entered(n, rollout) => {
                final_stage = *n;
                let text = rollout.to_string();
                let stage_text = n.to_string();
                (
                    format!("stage {n} entered ({rollout}% rollout) by the leader"),
                    applied_when(
                        &|l: &Line| {
                            l.get("stage") == Some(stage_text.as_str())
                                && l.get("rollout") == Some(text.as_str())
                        },
                        *at,
                    ),
                )
            }
            Decision::Verdict(n, verdict) => {
                if matches!(verdict, Verdict::Advance)
                    && stages.last().is_some_and(|s| s.number == *n)
                {
                    completed = true;
                }
                let manual = matches!(verdict, Verdict::Rollback { triggers }
                    if triggers.iter().all(|t| t.kind == TriggerKind::Manual));
                let text = if manual {
                    "rollback (the latch another replica's local trigger set, found in the shared state)"
                        .to_owned()
                } else {
                    staged::describe(verdict)
                };
                (format!("stage {n} verdict: {text}"), Vec::new())
            }
            Decision::Rollback(n, by) => {
                rolled_back_at = Some(*n);
                (
                    format!(
                        "ROLLBACK latched at stage {n} by replica-{by} (one event fleet-wide): every call on the sync path"
                    ),
                    applied_when(&|l: &Line| l.get("rolled_back") == Some("true"), *at),
                )
            }
        };
        // The decider writes Redis before its log line: a replica may apply it first.
        let decided = applied
            .iter()
            .map(|(_, t)| *t)
            .fold(since(*at), Duration::min);
        entries.push(Entry {
            at: decided,
            what,
            applied,
        });
    }
    if let Some(us) = regression_us {
        entries.push(Entry {
            at: since(us),
            what: format!(
                "regression injected at stage {}: the server answers 503 to every async request",
                args.regress_at.unwrap_or_default()
            ),
            applied: Vec::new(),
        });
    }
    entries.sort_by_key(|e| e.at);
    println!();
    Timeline::of(entries).print("the replicas started");

    let (mut calls, mut failures) = (0, 0);
    for index in 0..replicas {
        match lines.iter().find(|l| l.replica == index && l.is("done")) {
            Some(done) => {
                let n = |name| done.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
                let (c, f): (u64, u64) = (n("calls"), n("failures"));
                println!("fleet: replica-{index}: {c} calls, {f} failed");
                calls += c;
                failures += f;
            }
            None => {
                println!("fleet: replica-{index} did not report its calls");
                failures += 1;
            }
        }
    }
    Ok(Outcome {
        calls,
        failures,
        stage: final_stage,
        rolled_back_at,
        completed,
        records,
    })
}

/// A decision of the controller, from the replicas' logs.
enum Decision {
    Entered(u32, f64),
    Verdict(u32, Verdict),
    /// The stage, and the replica that latched it.
    Rollback(u32, usize),
}
