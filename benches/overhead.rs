//! What `#[async_upload]` costs, in one run on one runtime:
//!
//! - `overhead/*`: a body that returns at once, called three ways — the
//!   annotated function (`macro`), `execute` by hand with the same closures
//!   and an equivalent `Site` (`hand`), and the body itself (`direct`: the
//!   async body when the call is enrolled, the sync fallback otherwise) —
//!   with the flag off, enrolled (first attempt succeeds) and not enrolled;
//! - `subscriber/*`: the flag-off (sync path in place) and enrolled calls
//!   of the annotated function on a current-thread runtime, without a
//!   `tracing` subscriber (`none`) and with a `tracing_subscriber::fmt`
//!   subscriber at INFO writing to `io::sink` (`fmt_info`), as nearly every
//!   service has one: what the call's tracing costs such a service;
//! - `jsonl_sink`: batches of records through `log::JsonlLog`, flushed, so
//!   the rate is what reaches the file (drops are counted and must be 0);
//! - `loopback/*`: 1 KiB and 1 MiB uploads to the loopback test server,
//!   async (`reqwest`) vs sync (`ureq`), each direct and through the wrapper.
//!
//! `cargo bench --bench overhead`; the numbers are in docs/performance.md.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use async_upload::async_upload;
use async_upload::config::{handle, SiteOverrides};
use async_upload::log::JsonlLog;
use async_upload::metrics::{ExecutionType, MetricsSink, UploadRecord};
use async_upload::rollout::bucket;
use async_upload_runtime::execute::{execute, execute_in_place};
use async_upload_runtime::Site;
use criterion::{criterion_group, Criterion, Throughput};
use tokio::runtime::Runtime;

use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::files::write_files;
use support::server::{no_faults, Server};

/// The body under test: returns at once.
async fn body(id: u64) -> io::Result<u64> {
    Ok(id + 1)
}

/// Today's code: returns at once too.
#[allow(clippy::unnecessary_wraps)] // the fallback's signature is the body's
fn blocking(id: u64) -> io::Result<u64> {
    Ok(id + 1)
}

#[async_upload(name = "bench_macro_off", fallback = blocking, key = id)]
async fn macro_off(id: u64) -> io::Result<u64> {
    body(id).await
}

#[async_upload(name = "bench_macro", fallback = blocking, key = id)]
async fn macro_on(id: u64) -> io::Result<u64> {
    body(id).await
}

/// A borrowed argument: the attribute runs the sync path in place
/// (`execute_in_place`), which on the bench thread (not a worker) is a plain
/// call, so the macro and the hand-written call compare without the
/// blocking pool's scheduling noise.
#[async_upload(name = "bench_macro_in_place", fallback = blocking_ref, key = *id)]
async fn macro_in_place(id: &u64) -> io::Result<u64> {
    body(*id).await
}

#[allow(clippy::unnecessary_wraps, clippy::trivially_copy_pass_by_ref)] // the body's signature
fn blocking_ref(id: &u64) -> io::Result<u64> {
    Ok(id + 1)
}

// What the attribute declares, written by hand.
static HAND_OFF: Site = Site::new("bench_hand_off");
static HAND_IN_PLACE: Site = Site::new("bench_hand_in_place");

async fn hand_in_place(id: &u64) -> io::Result<u64> {
    execute_in_place(
        HAND_IN_PLACE.call(id),
        (id,),
        |(id,)| body(**id),
        |(id,)| blocking_ref(id),
    )
    .await
}
static HAND: Site = Site::new("bench_hand");

async fn hand(site: &'static Site, id: u64) -> io::Result<u64> {
    execute(
        site.call(&id),
        (id,),
        |(id,)| body(*id),
        |(id,)| blocking(id),
    )
    .await
}

/// A key of `site` enrolled (or not) at 50 %.
fn key(site: &str, enrolled: bool) -> u64 {
    (0..)
        .find(|k: &u64| (bucket(site, k.to_string().as_bytes()) < 5_000) == enrolled)
        .unwrap()
}

/// Times `iters` awaited calls inside one `block_on`.
fn time_calls<F, Fut>(rt: &Runtime, iters: u64, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(call().await);
        }
        start.elapsed()
    })
}

fn configure() {
    handle().update(|c| c.enabled = true).unwrap();
    let off = SiteOverrides {
        enabled: Some(false),
        ..SiteOverrides::default()
    };
    let half = SiteOverrides {
        rollout: Some(50.0),
        ..SiteOverrides::default()
    };
    for site in [
        "bench_macro_off",
        "bench_hand_off",
        "bench_macro_in_place",
        "bench_hand_in_place",
    ] {
        handle().set_site(site, off.clone()).unwrap();
    }
    for site in ["bench_macro", "bench_hand", "bench_loopback"] {
        handle().set_site(site, half.clone()).unwrap();
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn overhead(c: &mut Criterion) {
    configure();
    let rt = runtime();
    let mut group = c.benchmark_group("overhead");

    // Flag off: every call takes the sync path (on the blocking pool).
    let k = 7;
    group.bench_function("flag_off/macro", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || macro_off(black_box(k))));
    });
    group.bench_function("flag_off/hand", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || hand(&HAND_OFF, black_box(k))));
    });
    group.bench_function("flag_off/direct", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || async { blocking(black_box(k)) }));
    });

    // Enrolled: the async body succeeds on the first attempt.
    let (km, kh) = (key("bench_macro", true), key("bench_hand", true));
    group.bench_function("enrolled/macro", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || macro_on(black_box(km))));
    });
    group.bench_function("enrolled/hand", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || hand(&HAND, black_box(kh))));
    });
    group.bench_function("enrolled/direct", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || body(black_box(km))));
    });

    // Not enrolled: the key is hashed, the bucket is above 50 %, sync path.
    let (km, kh) = (key("bench_macro", false), key("bench_hand", false));
    group.bench_function("not_enrolled/macro", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || macro_on(black_box(km))));
    });
    group.bench_function("not_enrolled/hand", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || hand(&HAND, black_box(kh))));
    });
    group.bench_function("not_enrolled/direct", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || async { blocking(black_box(km)) }));
    });

    // Flag off, sync path in place: no thread hop, so nanoseconds show.
    group.bench_function("flag_off_in_place/macro", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || macro_in_place(black_box(&k))));
    });
    group.bench_function("flag_off_in_place/hand", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || hand_in_place(black_box(&k))));
    });
    group.bench_function("flag_off_in_place/direct", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || async { blocking_ref(black_box(&k)) }));
    });
    group.finish();
    assert!(HAND.call(&key("bench_hand", true)).runs_async());
}

/// The fmt subscriber a service runs: INFO and above, formatted, written
/// (here to `io::sink`, so only the formatting is paid).
fn fmt_info() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(io::sink)
        .finish()
}

fn subscriber(c: &mut Criterion) {
    configure();
    // The peers' shape: a current-thread runtime and a ready body, so the
    // call's own nanoseconds show.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("subscriber");
    let (k, km) = (7, key("bench_macro", true));
    // The subscriber is this thread's default for the row only (and
    // `block_on` polls the calls on this thread), so the `none` rows and
    // the other benches run without one.
    let with_fmt =
        |f: &mut dyn FnMut() -> Duration| tracing::subscriber::with_default(fmt_info(), f);
    group.bench_function("disabled/none", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || macro_in_place(black_box(&k))));
    });
    group.bench_function("disabled/fmt_info", |b| {
        b.iter_custom(|n| with_fmt(&mut || time_calls(&rt, n, || macro_in_place(black_box(&k)))));
    });
    group.bench_function("enrolled/none", |b| {
        b.iter_custom(|n| time_calls(&rt, n, || macro_on(black_box(km))));
    });
    group.bench_function("enrolled/fmt_info", |b| {
        b.iter_custom(|n| with_fmt(&mut || time_calls(&rt, n, || macro_on(black_box(km)))));
    });
    group.finish();
}

fn jsonl_sink(c: &mut Criterion) {
    const BATCH: u64 = 4_096; // half the queue: a flushed batch never overflows it
    let dir = tempfile::tempdir().unwrap();
    let log = JsonlLog::open(dir.path().join("bench.jsonl")).unwrap();
    let mut record = UploadRecord::new("bench_sink", ExecutionType::Async, true, 12.345, 1);
    record.bytes = Some(2_048);
    let mut group = c.benchmark_group("jsonl_sink");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("records", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                log.record(black_box(&record));
            }
            assert!(log.flush());
        });
    });
    group.finish();
    let stats = log.stats();
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    println!(
        "jsonl_sink: {} records written, {} dropped",
        stats.written,
        stats.dropped()
    );
}

fn upload_blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

#[async_upload(name = "bench_loopback", fallback = upload_blocking, key = req.id.as_str(), size = req.size)]
async fn upload(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

fn loopback(c: &mut Criterion) {
    configure();
    let rt = runtime();
    // The server gets a runtime of its own: sharing the async client's
    // workers would tax the async path only, while `ureq` runs on the bench
    // thread; this way both clients meet the same server on equal terms.
    let server_rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let server = server_rt
        .block_on(Server::start(dir.path().join("store"), no_faults()))
        .unwrap();
    let endpoint = Endpoint::new(server.base_url());
    // Files of exactly 1 KiB and 1 MiB, with an id enrolled at 50 %.
    let mut files = write_files(&dir.path().join("files"), "x", 2, 1024, 1024 * 1024, 1).unwrap();
    for file in &mut files {
        file.id = (0..)
            .map(|i| format!("bench-{}-{i}", file.size))
            .find(|id| bucket("bench_loopback", id.as_bytes()) < 5_000)
            .unwrap();
    }
    let mut group = c.benchmark_group("loopback");
    for file in &files {
        let req = file.request(&endpoint);
        let label = if file.size == 1024 { "1KiB" } else { "1MiB" };
        group.throughput(Throughput::Bytes(file.size));
        group.bench_function(format!("{label}/async_direct"), |b| {
            b.iter_custom(|n| time_calls(&rt, n, || async { send_async(&req).await.unwrap() }));
        });
        group.bench_function(format!("{label}/async_macro"), |b| {
            b.iter_custom(|n| {
                time_calls(&rt, n, || async {
                    let receipt = upload(req.clone()).await.unwrap();
                    assert_eq!(receipt.via, support::server::Client::Async);
                })
            });
        });
        group.bench_function(format!("{label}/sync_direct"), |b| {
            b.iter(|| send_blocking(&req).unwrap());
        });
        // The sync path as a service runs it: through the wrapper, for a key
        // that is not enrolled, so `ureq` runs on the blocking pool.
        let sync_req = UploadRequest {
            id: (0..)
                .map(|i| format!("bench-sync-{}-{i}", file.size))
                .find(|id| bucket("bench_loopback", id.as_bytes()) >= 5_000)
                .unwrap(),
            ..req.clone()
        };
        group.bench_function(format!("{label}/sync_macro"), |b| {
            b.iter_custom(|n| {
                time_calls(&rt, n, || async {
                    let receipt = upload(sync_req.clone()).await.unwrap();
                    assert_eq!(receipt.via, support::server::Client::Sync);
                })
            });
        });
    }

    // Throughput with uploads in flight at once, as a service has them:
    // 8 concurrent 1 MiB uploads through the wrapper, all enrolled (async)
    // or none (sync, on the blocking pool).
    const IN_FLIGHT: usize = 8;
    let big = files
        .iter()
        .find(|f| f.size > 1024)
        .unwrap()
        .request(&endpoint);
    let requests = |prefix: &str, enrolled: bool| -> Vec<UploadRequest> {
        (0..)
            .map(|i| format!("bench-{prefix}-{i}"))
            .filter(|id| (bucket("bench_loopback", id.as_bytes()) < 5_000) == enrolled)
            .take(IN_FLIGHT)
            .map(|id| UploadRequest { id, ..big.clone() })
            .collect()
    };
    group.throughput(Throughput::Bytes(big.size * IN_FLIGHT as u64));
    for (label, enrolled, via) in [
        ("async", true, support::server::Client::Async),
        ("sync", false, support::server::Client::Sync),
    ] {
        let batch = requests(label, enrolled);
        group.bench_function(format!("1MiB_x{IN_FLIGHT}/{label}_macro"), |b| {
            b.iter_custom(|n| {
                time_calls(&rt, n, || async {
                    let mut tasks = tokio::task::JoinSet::new();
                    for req in &batch {
                        tasks.spawn(upload(req.clone()));
                    }
                    while let Some(receipt) = tasks.join_next().await {
                        assert_eq!(receipt.unwrap().unwrap().via, via);
                    }
                })
            });
        });
    }
    group.finish();
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = overhead, subscriber, jsonl_sink, loopback
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
