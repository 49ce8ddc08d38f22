//! One logical upload, one idempotency key, end to end: the server stores
//! each upload and then answers only after the client's attempt timeout,
//! so every first attempt fails although its file landed (the breaker is
//! off for these sites: every first attempt failing would open it). The retry (or,
//! with no retries, the fallback) sends the file again. With the clients'
//! `Idempotency-Key: <call_id>` the server recognises it and every file is
//! stored exactly once; the same run with a client that omits the header
//! stores a second copy of every file, and the test counts them.
//!
//! Run: `cargo test -p async-upload --test e2e_idempotency -- --nocapture`

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_upload::async_upload;
use async_upload::metrics::ExecutionType;

use async_upload_test_support::records::{enable_site_unbudgeted, Records};
use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::fixture::Fixture;
use support::server::{Client, Fault, FaultFn};

const FILES: usize = 8;
const SIZES: (u64, u64) = (1024, 256 * 1024);
const SEED: u64 = 19;

fn blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

#[async_upload(name = "e2e_key_retry", retries = 1, timeout = 1, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_retried(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[async_upload(name = "e2e_key_fallback", retries = 0, timeout = 1,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_fallback(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// The async client's first attempt of every file is stored, then answered
/// two seconds after the 1 s attempt timeout.
fn stored_then_late() -> FaultFn {
    Arc::new(|a| {
        (a.client == Client::Async && a.attempt == 1)
            .then_some(Fault::LateAnswer(Duration::from_secs(3)))
    })
}

/// What one run left on its own server.
#[derive(Debug)]
struct Run {
    /// Files stored twice.
    stored_twice: usize,
    /// Uploads the server recognised by their key and did not store.
    recognised: u64,
    receipts: Vec<Receipt>,
}

/// Uploads `FILES` files concurrently through `upload`, against a server
/// that stores and answers late, with or without the idempotency key.
async fn run<F, Fut>(site: &'static str, keyed: bool, upload: F) -> Run
where
    F: Fn(UploadRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Receipt, UploadError>> + Send + 'static,
{
    let fx = Fixture::new(site, FILES, SIZES, SEED, stored_then_late()).await;
    let endpoint: Endpoint = if keyed {
        fx.endpoint.clone()
    } else {
        fx.endpoint.without_idempotency_key()
    };
    let calls: Vec<_> = fx
        .files
        .iter()
        .map(|file| tokio::spawn(upload(file.request(&endpoint))))
        .collect();
    let mut receipts = Vec::new();
    for call in calls {
        receipts.push(call.await.unwrap().unwrap());
    }
    let check = fx.server.verify_files(&fx.files);
    assert!(check.all_intact(), "{check:?}");
    let counters = fx.server.counters();
    assert_eq!(counters.late_answers, FILES as u64, "{counters:?}");
    assert_eq!(check.stored_again.len() as u64, counters.rewrites);
    Run {
        stored_twice: check.stored_again.len(),
        recognised: counters.duplicates,
        receipts,
    }
}

/// The same run with and without the key; what each stored twice is
/// printed, and the records of both checked: every call had one ambiguous
/// attempt and was served as `execution_type` after `attempts` attempts.
async fn with_and_without_the_key<F, Fut>(
    site: &'static str,
    upload: F,
    execution_type: ExecutionType,
    attempts: u32,
) -> (Run, Run)
where
    F: Fn(UploadRequest) -> Fut + Copy,
    Fut: std::future::Future<Output = Result<Receipt, UploadError>> + Send + 'static,
{
    // Every first attempt fails: the breaker, which would send the second
    // run's calls straight to the sync path, is not what this measures.
    enable_site_unbudgeted(site);
    let capture = Records::of(site);
    let keyed = run(site, true, upload).await;
    let unkeyed = run(site, false, upload).await;
    println!(
        "{site}, {FILES} files answered after the attempt timeout: with Idempotency-Key {} \
         stored twice ({} recognised), without it {} stored twice",
        keyed.stored_twice, keyed.recognised, unkeyed.stored_twice
    );
    assert_eq!((keyed.stored_twice, keyed.recognised), (0, FILES as u64));
    assert_eq!((unkeyed.stored_twice, unkeyed.recognised), (FILES, 0));
    assert!(unkeyed.receipts.iter().all(|r| r.stored));
    let records = capture.all();
    assert_eq!(records.len(), 2 * FILES);
    for record in &records {
        let seen = (
            record.execution_type,
            record.attempts,
            record.ambiguous_attempts,
            record.success,
        );
        assert_eq!(seen, (execution_type, attempts, 1, true), "{record:?}");
    }
    (keyed, unkeyed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_landed_attempt_stores_nothing_twice_with_the_key() {
    let (keyed, _) =
        with_and_without_the_key("e2e_key_retry", upload_retried, ExecutionType::Async, 2).await;
    // The retry was recognised as the landed upload.
    assert!(keyed
        .receipts
        .iter()
        .all(|r| r.via == Client::Async && !r.stored));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_after_a_landed_attempt_stores_nothing_twice_with_the_key() {
    let (keyed, _) = with_and_without_the_key(
        "e2e_key_fallback",
        upload_fallback,
        ExecutionType::SyncFallback,
        1,
    )
    .await;
    // The blocking client sends the same key as the async attempt.
    assert!(keyed
        .receipts
        .iter()
        .all(|r| r.via == Client::Sync && !r.stored));
}
