//! End to end against a loopback server that injects faults: connection
//! resets, a server slower than the timeout, 503 for the async client only
//! (with fallback on and off), and a panic in the async path.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_upload::async_upload;
use async_upload::config::SiteOverrides;
use async_upload::metrics::ExecutionType;

use async_upload_test_support::records::{
    enable_site, enable_site_at, enable_site_unbudgeted, Records,
};
use support::client::{send_async, send_blocking, Receipt, UploadError, UploadRequest};
use support::fixture::Fixture;
use support::server::{Client, Fault, FaultFn};

fn blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

/// 1 KiB – 2 MiB files.
const SIZES: (u64, u64) = (1024, 2 * 1024 * 1024);
const SEED: u64 = 3;

/// Faults for the async client's first `n` attempts of every request.
fn async_first(n: u32, fault: Fault) -> FaultFn {
    Arc::new(move |a| (a.client == Client::Async && a.attempt <= n).then_some(fault))
}

/// `fault` for every async attempt.
fn async_always(fault: Fault) -> FaultFn {
    async_first(u32::MAX, fault)
}

#[async_upload(name = "e2e_reset", retries = 2, timeout = 10, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_reset(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_twice_then_success_on_the_third_attempt() {
    let site = "e2e_reset";
    enable_site_unbudgeted(site);
    let capture = Records::of(site);
    // The first file is 1 KiB (reset while waiting for the answer), the second 2 MiB
    // (reset while the body is still being sent).
    let fx = Fixture::new(site, 3, SIZES, SEED, async_first(2, Fault::Reset)).await;
    for file in &fx.files {
        let receipt = upload_reset(file.request(&fx.endpoint)).await.unwrap();
        assert_eq!(receipt.via, Client::Async, "{}", file.id);
        assert!(receipt.stored);
        assert_eq!(fx.server.attempts(&file.id, Client::Async), 3);
        assert_eq!(fx.server.attempts(&file.id, Client::Sync), 0);
    }
    capture.assert_every(fx.files.len(), ExecutionType::Async, true, 3, None);
    assert_eq!(fx.server.counters().resets, 2 * fx.files.len() as u64);
    fx.assert_stored(&fx.files);
}

#[async_upload(name = "e2e_slow", retries = 2, timeout = 0.3, backoff = 0.05,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_slow(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_slower_than_the_timeout_retries_then_falls_back() {
    let site = "e2e_slow";
    enable_site_unbudgeted(site);
    let capture = Records::of(site);
    let fx = Fixture::new(
        site,
        2,
        SIZES,
        SEED,
        async_always(Fault::Delay(Duration::from_secs(3))),
    )
    .await;
    for file in &fx.files {
        let started = Instant::now();
        let receipt = upload_slow(file.request(&fx.endpoint)).await.unwrap();
        let elapsed = started.elapsed();
        assert_eq!(receipt.via, Client::Sync);
        assert!(receipt.stored);
        // 3 attempts × 0.3 s, plus backoff (at most 0.05 + 0.1 s), plus one
        // loopback upload of at most 2 MiB on the sync path, which a loaded
        // machine may stretch to a second or more. One attempt the timeout
        // did not end would wait out the server's 3 s delay: with the other
        // two, at least 3.6 s.
        let timeouts = Duration::from_millis(900);
        assert!(elapsed >= timeouts, "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(3600), "{elapsed:?}");
        assert_eq!(fx.server.attempts(&file.id, Client::Async), 3);
        assert_eq!(fx.server.attempts(&file.id, Client::Sync), 1);
    }
    capture.assert_every(
        fx.files.len(),
        ExecutionType::SyncFallback,
        true,
        3,
        Some("timeout"),
    );
    fx.assert_stored(&fx.files);
}

#[async_upload(name = "e2e_503", retries = 2, timeout = 10, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_503(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_for_the_async_client_falls_back_to_sync() {
    let site = "e2e_503";
    enable_site_unbudgeted(site);
    let capture = Records::of(site);
    let fx = Fixture::new(site, 3, SIZES, SEED, async_always(Fault::Unavailable)).await;
    for file in &fx.files {
        let receipt = upload_503(file.request(&fx.endpoint)).await.unwrap();
        assert_eq!(receipt.via, Client::Sync);
        assert!(receipt.stored);
        assert_eq!(
            fx.server.attempts(&file.id, Client::Async),
            3,
            "503 is retried"
        );
        assert_eq!(fx.server.attempts(&file.id, Client::Sync), 1);
    }
    capture.assert_every(
        fx.files.len(),
        ExecutionType::SyncFallback,
        true,
        3,
        Some("unavailable"),
    );
    fx.assert_stored(&fx.files);
}

#[async_upload(name = "e2e_503_no_fallback", retries = 2, timeout = 10, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_503_no_fallback(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_with_fallback_off_reaches_the_caller() {
    let site = "e2e_503_no_fallback";
    enable_site(
        site,
        SiteOverrides {
            rollout: Some(100.0),
            fallback: Some(false),
            // Retry semantics, not the budget (which applies with fallback
            // off too, and starts empty).
            breaker: Some(false),
            ..SiteOverrides::default()
        },
    );
    let capture = Records::of(site);
    let fx = Fixture::new(site, 2, SIZES, SEED, async_always(Fault::Unavailable)).await;
    for file in &fx.files {
        let error = upload_503_no_fallback(file.request(&fx.endpoint))
            .await
            .unwrap_err();
        assert!(matches!(error, UploadError::Unavailable), "{error:?}");
        assert_eq!(fx.server.attempts(&file.id, Client::Async), 3);
        assert_eq!(fx.server.attempts(&file.id, Client::Sync), 0, "no fallback");
    }
    capture.assert_every(
        fx.files.len(),
        ExecutionType::Async,
        false,
        3,
        Some("unavailable"),
    );
    assert!(fx.server.stored().is_empty());
}

#[async_upload(name = "e2e_panic", retries = 2, timeout = 10, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_panic(req: UploadRequest) -> Result<Receipt, UploadError> {
    let receipt = send_async(&req).await?;
    // A bug in the new code after the file arrived: the fallback uploads it
    // again, and the server (idempotent by request id) keeps one copy.
    assert!(receipt.id.is_empty(), "bug in the new upload path");
    Ok(receipt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_the_async_path_falls_back_and_is_critical() {
    let site = "e2e_panic";
    enable_site_at(site, 100.0);
    let capture = Records::of(site);
    let fx = Fixture::new(site, 2, SIZES, SEED, support::server::no_faults()).await;
    for file in &fx.files {
        let receipt = upload_panic(file.request(&fx.endpoint)).await.unwrap();
        assert_eq!(receipt.via, Client::Sync);
        assert!(!receipt.stored, "the async attempt had stored it already");
        assert_eq!(
            fx.server.attempts(&file.id, Client::Async),
            1,
            "a panic is not retried"
        );
        assert_eq!(fx.server.attempts(&file.id, Client::Sync), 1);
    }
    let records = capture.all();
    assert_eq!(records.len(), fx.files.len());
    for r in &records {
        assert_eq!(r.execution_type, ExecutionType::SyncFallback);
        assert!(r.success, "the caller got the file uploaded");
        assert!(r.is_critical(), "{r:?}");
    }
    let counters = fx.server.counters();
    assert_eq!((counters.stored, counters.duplicates), (2, 2));
    let snapshot = async_upload::metrics::global().snapshot(site).unwrap();
    assert_eq!(snapshot.path(ExecutionType::SyncFallback).critical, 2);
    fx.assert_stored(&fx.files);
}
