//! 10,000 concurrent calls on the multi-thread runtime: every counter of
//! the aggregator is exact.

use async_upload_test_support::records as support;

use std::time::Duration;

use async_upload_runtime::execute::execute;
use async_upload_runtime::metrics::{global, ExecutionType};
use async_upload_runtime::rollout::bucket;
use async_upload_runtime::Site;
use support::TestError;

static SITE: Site = Site::new("concurrency_10k")
    .with_retries(1)
    .with_backoff(Duration::from_micros(10));
const CALLS: u64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_calls_count_exactly() {
    support::enable_async();
    // This test counts retries exactly; the retry budget, which by design
    // denies a burst of 1,000 simultaneous retries, is tested on its own
    // (execute_breaker.rs), so it is off for this site.
    async_upload_runtime::config::handle()
        .set_site(
            SITE.name(),
            async_upload_runtime::config::SiteOverrides {
                rollout: Some(50.0),
                breaker: Some(false),
                ..Default::default()
            },
        )
        .unwrap();

    // Expected from the formula: enrolled keys run async; every tenth of
    // those fails once transiently (2 attempts, success), every seventh
    // always fails with a fallback error (sync_fallback).
    let (mut sync, mut async_ok, mut fallback, mut attempts) = (0, 0, 0, 0);
    for i in 0..CALLS {
        if bucket(SITE.name(), format!("k{i}").as_bytes()) < 5000 {
            if i % 7 == 0 {
                fallback += 1;
                attempts += 1;
            } else {
                async_ok += 1;
                attempts += if i % 10 == 0 { 2 } else { 1 };
            }
        } else {
            sync += 1;
        }
    }

    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CALLS as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CALLS {
        let barrier = std::sync::Arc::clone(&barrier);
        tasks.spawn(async move {
            // All 10,000 calls are in flight at once before any finishes.
            barrier.wait().await;
            let key = format!("k{i}");
            let tries = std::sync::atomic::AtomicU32::new(0);
            execute(
                SITE.call(&key).with_bytes(i),
                (i,),
                |(i,)| {
                    let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let i = *i;
                    async move {
                        tokio::task::yield_now().await;
                        match i {
                            i if i % 7 == 0 => Err(TestError::Unsupported),
                            i if i % 10 == 0 && n == 0 => Err(TestError::Transient),
                            i => Ok(i),
                        }
                    }
                },
                |(i,)| Ok(i),
            )
            .await
        });
    }
    let mut returned = 0;
    while let Some(result) = tasks.join_next().await {
        assert!(result.unwrap().is_ok());
        returned += 1;
    }
    assert_eq!(returned, CALLS);

    let snapshot = global().snapshot(SITE.name()).unwrap();
    let s = snapshot.path(ExecutionType::Sync);
    let a = snapshot.path(ExecutionType::Async);
    let f = snapshot.path(ExecutionType::SyncFallback);
    assert_eq!(
        (s.count, s.successes, s.failures, s.attempts),
        (sync, sync, 0, 0)
    );
    assert_eq!((a.count, a.successes, a.failures), (async_ok, async_ok, 0));
    assert_eq!((f.count, f.successes, f.failures), (fallback, fallback, 0));
    assert_eq!(a.attempts + f.attempts, attempts);
    assert_eq!(s.count + a.count + f.count, CALLS);
    assert_eq!(s.bytes + a.bytes + f.bytes, CALLS * (CALLS - 1) / 2);
    assert_eq!(s.latency.len() + a.latency.len() + f.latency.len(), CALLS);
}
