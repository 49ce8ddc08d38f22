//! Fleet mode adds no Redis round trip to a call: the same annotated
//! function, enrolled (first attempt succeeds) and not enrolled, with the
//! fleet's shared state applied from a live `redis-server`, and the number
//! of commands Redis processed while the calls ran (only the fleet's own
//! background: about 4 per second, whatever the call count).
//!
//! `cargo bench --features redis --bench fleet` (starts its own
//! `redis-server` on a free loopback port; says how to install it if missing).

use std::hint::black_box;
#[path = "../tests/support/redis.rs"]
#[allow(dead_code)] // shared with the tests, which use all of it
mod redis;

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

criterion_group!(benches, fleet);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
