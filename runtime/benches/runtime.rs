//! The costs the runtime adds to a call, in one run so their ratios compare
//! like with like (`cargo bench -p async-upload-runtime --bench runtime`):
//!
//! - `bucket/md5`: the MD5 bucket of a typical key, the unit of the targets;
//! - `decide/disabled` and `decide/enrolled`: the routing decision;
//! - `record/one_thread` and `record/two_threads`: one record into the aggregator;
//! - `execute/ready_body` against `execute/direct_await`: a first-try async
//!   success through the state machine, against awaiting the body itself;
//! - `sync_path/execute` against `sync_path/spawn_blocking`: the sync path
//!   through the state machine, against `spawn_blocking` on the same closure.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::execute::execute;
use async_upload_runtime::metrics::{Aggregator, ExecutionType, UploadRecord};
use async_upload_runtime::rollout::bucket;
use async_upload_runtime::Site;
use criterion::{criterion_group, criterion_main, Criterion};

static DISABLED: Site = Site::new("bench_disabled");
static HALF: Site = Site::new("bench_half");
static ALL: Site = Site::new("bench_all");
static SYNC: Site = Site::new("bench_sync");

const KEY: &str = "file-000042";

fn configure() {
    handle().update(|c| c.enabled = true).unwrap();
    let site = |name, enabled, rollout| {
        handle()
            .set_site(
                name,
                SiteOverrides {
                    enabled: Some(enabled),
                    rollout: Some(rollout),
                    ..SiteOverrides::default()
                },
            )
            .unwrap();
    };
    site(DISABLED.name(), false, 100.0);
    site(HALF.name(), true, 50.0);
    site(ALL.name(), true, 100.0);
    site(SYNC.name(), true, 0.0);
    assert!(
        HALF.call(&KEY).runs_async(),
        "the bench key must be enrolled at 50 %"
    );
}

/// The body both sides of the overhead comparison run.
async fn body(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x))
}

fn benches(c: &mut Criterion) {
    configure();

    c.bench_function("bucket/md5", |b| {
        b.iter(|| bucket(black_box("bench_half"), black_box(KEY.as_bytes())))
    });
    c.bench_function("decide/disabled", |b| {
        b.iter(|| DISABLED.call(black_box(&KEY)))
    });
    c.bench_function("decide/enrolled", |b| b.iter(|| HALF.call(black_box(&KEY))));

    let aggregator = Aggregator::new();
    let stats = aggregator.site("bench");
    let mut record = UploadRecord::new("bench", ExecutionType::Async, true, 12.5, 1);
    record.bytes = Some(4096);
    c.bench_function("record/one_thread", |b| {
        b.iter(|| stats.record(black_box(&record)))
    });
    // Both threads record `iters` records at once; the time per record is
    // the wall time over `iters`, what each thread sees under contention.
    c.bench_function("record/two_threads", |b| {
        b.iter_custom(|iters| {
            let barrier = Barrier::new(2);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    barrier.wait();
                    for _ in 0..iters {
                        stats.record(black_box(&record));
                    }
                });
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    stats.record(black_box(&record));
                }
                start.elapsed()
            })
        });
    });

    // Whole loops inside one block_on, so block_on's own cost is not measured.
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function("execute/direct_await", |b| {
        b.iter_custom(|iters| {
            current.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(body(i).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    c.bench_function("execute/ready_body", |b| {
        b.iter_custom(|iters| {
            current.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let call = ALL.call(&KEY);
                    black_box(
                        execute(call, (i,), |(x,)| body(*x), |(x,)| Ok(x))
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        });
    });

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sync_body = |x: u64| -> Result<u64, std::io::Error> { Ok(black_box(x)) };
    c.bench_function("sync_path/spawn_blocking", |b| {
        b.iter_custom(|iters| {
            multi.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(
                        tokio::task::spawn_blocking(move || sync_body(i))
                            .await
                            .unwrap()
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        });
    });
    c.bench_function("sync_path/execute", |b| {
        b.iter_custom(|iters| {
            multi.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    let call = SYNC.call(&KEY);
                    black_box(
                        execute(call, (i,), |(x,)| body(*x), move |(x,)| sync_body(x))
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        });
    });
}

criterion_group! {
    name = runtime;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(runtime);
