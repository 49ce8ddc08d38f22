//! Fleet mode adds no Redis round trip to a call: the same annotated
//! function, enrolled (first attempt succeeds) and not enrolled, with the
//! fleet's shared state applied from a live `redis-server`, and the number
//! of commands Redis processed while the calls ran (only the fleet's own
//! background: about 4 per second, whatever the call count).
//!
//! Then the propagation figure: 30 replica processes (this binary re-run
//! with `FLEET_BENCH_REPLICA`, configured from the environment as a
//! service is), 200 rollout changes, and the time from each write to each
//! replica applying it (p50, p99, max over 6,000 arrivals).
//!
//! `cargo bench --features redis --bench fleet` (starts its own
//! `redis-server` on a free loopback port; says how to install it if missing).

use async_upload_test_support::rank;
use std::hint::black_box;
#[path = "../tests/support/redis.rs"]
#[allow(dead_code)] // shared with the tests, which use all of it
mod redis;
#[path = "../tests/support/replica_lines.rs"]
#[allow(dead_code)] // shared with the tests, which use all of it
mod replica_lines;

use std::io;
use std::time::{Duration, Instant};

use async_upload::async_upload;
use async_upload::config::SiteOverrides;
use async_upload::fleet::{Defaults, Fleet, Store};
use async_upload::rollout::bucket;
use criterion::{criterion_group, Criterion};
use tokio::runtime::Runtime;

use redis::RedisServer;

#[allow(clippy::unnecessary_wraps)] // the fallback's signature is the body's
fn blocking(id: u64) -> io::Result<u64> {
    Ok(id + 1)
}

#[async_upload(name = "bench_fleet", fallback = blocking, key = id)]
async fn fleet_call(id: u64) -> io::Result<u64> {
    Ok(id + 1)
}

/// Keys of `bench_fleet` enrolled (`true`) or not at 50 %.
fn key(enrolled: bool) -> u64 {
    (0u64..)
        .find(|id| (bucket("bench_fleet", id.to_string().as_bytes()) < 5000) == enrolled)
        .unwrap_or(0)
}

fn fleet(c: &mut Criterion) {
    let server = match RedisServer::start() {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "fleet bench skipped: no redis-server ({error}; apt-get install redis-server)"
            );
            return;
        }
    };
    let url = server.url();
    let store = Store::open(&url).expect("redis URL");
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 0.0,
        })
        .expect("defaults");
    store
        .update_site(
            "bench_fleet",
            &SiteOverrides {
                rollout: Some(50.0),
                ..SiteOverrides::default()
            },
        )
        .expect("site rollout");
    let fleet = Fleet::builder(&url)
        .instance("bench")
        .start()
        .expect("fleet");
    while async_upload::config::handle()
        .site_overrides("bench_fleet")
        .rollout
        != Some(50.0)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let runtime = Runtime::new().expect("runtime");
    let (enrolled, not_enrolled) = (key(true), key(false));

    let before = (server.commands_processed().unwrap_or(0), Instant::now());
    let mut group = c.benchmark_group("fleet");
    group.bench_function("enrolled/macro", |b| {
        b.iter(|| runtime.block_on(fleet_call(black_box(enrolled))));
    });
    group.bench_function("not_enrolled/macro", |b| {
        b.iter(|| runtime.block_on(fleet_call(black_box(not_enrolled))));
    });
    group.finish();
    let calls = async_upload::metrics::global()
        .snapshot("bench_fleet")
        .map_or(0, |s| {
            async_upload::metrics::ExecutionType::ALL
                .into_iter()
                .map(|kind| s.path(kind).count)
                .sum::<u64>()
        });
    let commands = server
        .commands_processed()
        .unwrap_or(0)
        .saturating_sub(before.0 + 1);
    println!(
        "fleet/redis: {commands} Redis commands during {calls} calls in {:.1} s \
         (the fleet's background only: no round trip per call)",
        before.1.elapsed().as_secs_f64()
    );
    fleet.stop();
}

/// Replicas of the propagation figure.
const REPLICAS: usize = 30;
/// Rollout changes it makes.
const CHANGES: u32 = 200;

/// One replica of the propagation figure: prints every rollout of
/// `bench_fleet` it applies, until its stdin closes.
fn replica() {
    use std::io::BufRead as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let config = async_upload::config::handle(); // starts the fleet from the environment
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines() {}
        stopping.store(true, Ordering::Release);
    });
    replica_lines::say("ready");
    let mut last = None;
    while !stop.load(Ordering::Acquire) {
        let rollout = config.site_overrides("bench_fleet").rollout;
        if rollout != last {
            replica_lines::say(&format!(
                "state rollout={}",
                rollout.map_or("none".to_owned(), |r| r.to_string())
            ));
            last = rollout;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// 30 replicas, 200 changes: the time each replica takes to apply each.
fn propagation() -> Result<(), Box<dyn std::error::Error>> {
    use std::collections::HashSet;
    use std::process::Command;
    let server = RedisServer::start()?;
    let store = Store::open(&server.url())?;
    store.set_defaults(Defaults {
        enabled: true,
        rollout: 0.0,
    })?;
    let dir = std::env::temp_dir().join(format!("fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (sender, lines) = std::sync::mpsc::channel();
    let mut children = Vec::new();
    for index in 0..REPLICAS {
        let mut command = Command::new(std::env::current_exe()?);
        replica_lines::as_replica(&mut command, index, &server.url(), &dir.join("log.jsonl"))
            .env("FLEET_BENCH_REPLICA", "1")
            .env_remove("ASYNC_UPLOAD_LOG");
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or("piped stdout")?;
        replica_lines::forward(index, stdout, sender.clone());
        children.push(child);
    }
    let wait = |accept: &dyn Fn(&replica_lines::Line) -> bool| -> Result<Vec<u64>, String> {
        let mut seen = HashSet::new();
        let mut at = Vec::new();
        while seen.len() < REPLICAS {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .map_err(|_| "a replica did not apply a change within 20 s".to_owned())?;
            if accept(&line) && seen.insert(line.replica) {
                at.push(line.at_us);
            }
        }
        Ok(at)
    };
    wait(&|l| l.is("ready"))?;
    let mut arrivals = Vec::new();
    for i in 0..CHANGES {
        let percent = 1.0 + f64::from(i) * 0.25;
        let sent = replica_lines::now_us();
        store.update_site(
            "bench_fleet",
            &SiteOverrides {
                rollout: Some(percent),
                ..SiteOverrides::default()
            },
        )?;
        let text = percent.to_string();
        for at in wait(&|l| l.is("state") && l.get("rollout") == Some(text.as_str()))? {
            arrivals.push(at.saturating_sub(sent));
        }
    }
    for mut child in children {
        drop(child.stdin.take());
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    arrivals.sort_unstable();
    let ms = |q| rank::nearest_rank(&arrivals, q) as f64 / 1000.0;
    println!(
        "fleet/propagation: {CHANGES} changes × {REPLICAS} replicas ({} arrivals): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        arrivals.len(),
        ms(0.5),
        ms(0.99),
        arrivals.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    Ok(())
}

criterion_group!(benches, fleet);

fn main() {
    if std::env::var_os("FLEET_BENCH_REPLICA").is_some() {
        return replica();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    if redis::installed() {
        if let Err(error) = propagation() {
            eprintln!("fleet/propagation failed: {error}");
            std::process::exit(1);
        }
    }
}
