//! Load, end to end: 2,000 uploads with 200 in flight on the multi-thread
//! runtime, 10 % of the requests faulted on the async client (resets, 503s,
//! delays past the timeout, for 1–3 attempts). Every file must arrive
//! intact exactly once as the server sees it, and the records must match
//! the calls made.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_upload::async_upload;
use async_upload::metrics::ExecutionType;

use async_upload_test_support::records::{enable_site_at, Records};
use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::files::write_files;
use support::server::{Client, RandomFaults, Server, Target};

const SITE: &str = "e2e_load";
const UPLOADS: usize = 2_000;
const IN_FLIGHT: usize = 200;

fn blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

#[async_upload(name = "e2e_load", retries = 2, timeout = 1, backoff = 0.02,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_uploads_two_hundred_in_flight_with_faults() {
    enable_site_at(SITE, 50.0);
    let capture = Records::of(SITE);
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(
        &dir.path().join("files"),
        "load",
        UPLOADS,
        1024,
        64 * 1024,
        11,
    )
    .unwrap();
    let faults = RandomFaults {
        reset: 0.04,
        unavailable: 0.03,
        delay_rate: 0.03,
        delay: Duration::from_millis(1500),
        max_streak: 3,
        target: Target::AsyncOnly,
        seed: 5,
    };
    let server = Server::start(dir.path().join("store"), faults.into_fn())
        .await
        .unwrap();
    let endpoint = Endpoint::new(server.base_url());

    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for file in &files {
        let request = file.request(&endpoint);
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let id = request.id.clone();
            (id, upload(request).await)
        });
    }
    let mut calls = 0;
    let mut via = [0_usize; 2];
    while let Some(joined) = tasks.join_next().await {
        let (id, result) = joined.unwrap();
        calls += 1;
        let receipt = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        via[usize::from(receipt.via == Client::Sync)] += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(calls, UPLOADS);
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");

    // The server: every file once, intact, re-read from disk.
    let check = server.verify_files(&files);
    assert!(check.each_stored_once(), "{check:?}");
    let counters = server.counters();
    assert_eq!(counters.stored, UPLOADS as u64, "{counters:?}");
    assert_eq!(counters.rejected, 0);
    assert!(
        counters.resets + counters.unavailable + counters.delays > 0,
        "{counters:?}"
    );
    // Faults were drawn for about 10 % of the requests.
    let faulted = files
        .iter()
        .filter(|f| faults.plan(&f.id).is_some())
        .count();
    assert!((120..=280).contains(&faulted), "{faulted} faulted requests");

    // The records: one per call, and the same counts in the aggregator.
    let records = capture.all();
    assert_eq!(records.len(), UPLOADS);
    assert!(records.iter().all(|r| r.success));
    let count = |et| records.iter().filter(|r| r.execution_type == et).count();
    let (sync, asynchronous, fallback) = (
        count(ExecutionType::Sync),
        count(ExecutionType::Async),
        count(ExecutionType::SyncFallback),
    );
    assert_eq!(sync + asynchronous + fallback, UPLOADS);
    assert!(
        asynchronous > 0 && sync > 0 && fallback > 0,
        "{sync}/{asynchronous}/{fallback}"
    );
    assert!(
        records
            .iter()
            .filter(|r| r.execution_type != ExecutionType::Sync)
            .any(|r| r.attempts > 1),
        "some calls were retried"
    );
    assert_eq!(via, [asynchronous, sync + fallback]);
    let snapshot = async_upload::metrics::global().snapshot(SITE).unwrap();
    let aggregated: u64 = ExecutionType::ALL
        .iter()
        .map(|&et| snapshot.path(et).count)
        .sum();
    assert_eq!(aggregated, UPLOADS as u64);
    assert_eq!(
        snapshot.path(ExecutionType::SyncFallback).count,
        fallback as u64
    );
}
