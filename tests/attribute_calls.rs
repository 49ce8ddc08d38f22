//! Calls through `#[async_upload]` functions, checking the path each call
//! takes and the record it leaves.
//!
//! The configuration and the aggregator are process-global and tests run in
//! parallel, so every test uses its own site name and enables the async path
//! for that site only (global `enabled` is turned on, the global rollout
//! stays 0 %, and each site gets its own rollout).
#![deny(warnings)]
#![warn(clippy::pedantic)]
// The stand-in bodies and fallbacks keep the signatures of real uploads
// (owned requests, `Result`s, async bodies) without doing I/O. Lints about
// the generated code are not allowed here: they must not fire.
#![allow(
    clippy::unnecessary_wraps,
    clippy::needless_pass_by_value,
    clippy::unused_async
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_upload::config::{handle, SiteOverrides};
use async_upload::metrics::{self, ExecutionType, Summary};
use async_upload::{async_upload, rollout};

#[path = "attribute_support/upload_error.rs"]
mod upload_error;

use upload_error::UploadError;

#[derive(Clone, Debug)]
struct Req {
    id: String,
    bytes: Vec<u8>,
}

fn req(id: &str, bytes: &[u8]) -> Req {
    Req {
        id: id.to_owned(),
        bytes: bytes.to_vec(),
    }
}

/// Sends every call of `site` down the async path.
fn enroll(site: &str, overrides: SiteOverrides) {
    handle().update(|c| c.enabled = true).unwrap();
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: overrides.rollout.or(Some(100.0)),
                ..overrides
            },
        )
        .unwrap();
}

fn summary(site: &str, execution_type: ExecutionType) -> Summary {
    metrics::global().summary(site, execution_type)
}

fn upload_blocking(req: Req) -> Result<String, UploadError> {
    Ok(format!("sync:{}", req.id))
}

#[async_upload(fallback = upload_blocking, name = "attr_calls_async", key = req.id.as_str(), size = req.bytes.len())]
async fn upload_enrolled(req: Req) -> Result<String, UploadError> {
    tokio::task::yield_now().await;
    Ok(format!("async:{}", req.id))
}

#[tokio::test]
async fn an_enrolled_call_runs_the_function_and_records_async_with_its_size() {
    enroll("attr_calls_async", SiteOverrides::default());
    let out = upload_enrolled(req("f1", b"hello")).await.unwrap();
    assert_eq!(out, "async:f1");
    let s = summary("attr_calls_async", ExecutionType::Async);
    assert_eq!((s.count, s.successes, s.attempts, s.bytes), (1, 1, 1, 5));
}

#[async_upload(fallback = upload_blocking, name = "attr_calls_disabled")]
async fn upload_disabled(req: Req) -> Result<String, UploadError> {
    Ok(format!("async:{}", req.id))
}

#[tokio::test]
async fn a_disabled_site_runs_the_fallback_and_records_sync() {
    enroll(
        "attr_calls_disabled",
        SiteOverrides {
            enabled: Some(false),
            ..SiteOverrides::default()
        },
    );
    assert_eq!(upload_disabled(req("f1", b"")).await.unwrap(), "sync:f1");
    assert_eq!(summary("attr_calls_disabled", ExecutionType::Sync).count, 1);
    assert_eq!(
        summary("attr_calls_disabled", ExecutionType::Async).count,
        0
    );
}

static RETRY_SEEN: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn never_blocking(_req: Req) -> Result<usize, UploadError> {
    Err(UploadError::Invalid)
}

#[async_upload(fallback = never_blocking, name = "attr_calls_retry", retries = 2, backoff = 0)]
async fn flaky(mut req: Req) -> Result<usize, UploadError> {
    // Each attempt records what it was given, then consumes it: the next
    // attempt must still get the caller's value.
    let seen = {
        let mut seen = RETRY_SEEN.lock().unwrap();
        seen.push(req.bytes.len());
        seen.len()
    };
    req.bytes.clear();
    if seen < 3 {
        return Err(UploadError::Transient);
    }
    Ok(req.bytes.len())
}

#[tokio::test]
async fn each_retry_gets_a_fresh_clone_of_the_arguments() {
    enroll("attr_calls_retry", SiteOverrides::default());
    assert_eq!(flaky(req("f1", b"abc")).await, Ok(0));
    assert_eq!(*RETRY_SEEN.lock().unwrap(), [3, 3, 3]);
    let s = summary("attr_calls_retry", ExecutionType::Async);
    assert_eq!((s.count, s.successes, s.attempts), (1, 1, 3));
}

static EXHAUSTED_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

fn exhausted_blocking(req: Req) -> Result<String, UploadError> {
    Ok(format!("sync:{}:{}", req.id, req.bytes.len()))
}

#[async_upload(fallback = exhausted_blocking, name = "attr_calls_exhausted", retries = 1, backoff = 0)]
async fn always_transient(mut req: Req) -> Result<String, UploadError> {
    EXHAUSTED_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    req.bytes.clear();
    Err(UploadError::Transient)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_fall_back_with_the_callers_arguments() {
    enroll("attr_calls_exhausted", SiteOverrides::default());
    let out = always_transient(req("f1", b"abcd")).await.unwrap();
    assert_eq!(out, "sync:f1:4");
    assert_eq!(EXHAUSTED_ATTEMPTS.load(Ordering::SeqCst), 2);
    let s = summary("attr_calls_exhausted", ExecutionType::SyncFallback);
    assert_eq!((s.count, s.successes, s.attempts), (1, 1, 2));
}

static FAIL_FALLBACKS: AtomicU32 = AtomicU32::new(0);

fn counting_blocking(req: Req) -> Result<u64, UploadError> {
    FAIL_FALLBACKS.fetch_add(1, Ordering::SeqCst);
    Ok(req.bytes.len() as u64)
}

#[async_upload(fallback = counting_blocking, name = "attr_calls_question_mark")]
async fn parse_id(req: Req) -> Result<u64, UploadError> {
    // `?` converts and returns from the function, as it would unannotated.
    let id: u64 = req.id.parse().map_err(|_| UploadError::Invalid)?;
    if id == 0 {
        return Ok(0);
    }
    Ok(id * 2)
}

#[tokio::test]
async fn question_mark_and_early_return_behave_as_written() {
    enroll("attr_calls_question_mark", SiteOverrides::default());
    assert_eq!(parse_id(req("21", b"")).await, Ok(42));
    assert_eq!(parse_id(req("0", b"")).await, Ok(0));
    // A `Fail` error leaves through `?` and is returned without fallback.
    assert_eq!(parse_id(req("nope", b"")).await, Err(UploadError::Invalid));
    assert_eq!(FAIL_FALLBACKS.load(Ordering::SeqCst), 0);
    let s = summary("attr_calls_question_mark", ExecutionType::Async);
    assert_eq!((s.count, s.successes, s.failures), (3, 2, 1));
}

fn keyed_blocking(_id: String) -> Result<&'static str, UploadError> {
    Ok("sync")
}

#[async_upload(fallback = keyed_blocking, name = "attr_calls_key", key = id)]
async fn keyed(id: String) -> Result<&'static str, UploadError> {
    drop(id);
    Ok("async")
}

#[async_upload(fallback = keyed_blocking, name = "attr_calls_salted", salt = "", key = id)]
async fn salted(id: String) -> Result<&'static str, UploadError> {
    drop(id);
    Ok("async")
}

#[tokio::test]
async fn the_key_and_salt_decide_the_path_as_the_bucket_says() {
    enroll(
        "attr_calls_key",
        SiteOverrides {
            rollout: Some(50.0),
            ..SiteOverrides::default()
        },
    );
    enroll(
        "attr_calls_salted",
        SiteOverrides {
            rollout: Some(50.0),
            ..SiteOverrides::default()
        },
    );
    let (mut enrolled, mut salted_differs) = (0, 0);
    for i in 0..60 {
        let key = format!("file-{i}");
        let by_name = rollout::bucket("attr_calls_key", key.as_bytes()) < 5000;
        let by_empty_salt = rollout::bucket("", key.as_bytes()) < 5000;
        for _ in 0..2 {
            assert_eq!(
                keyed(key.clone()).await.unwrap() == "async",
                by_name,
                "{key}"
            );
            assert_eq!(
                salted(key.clone()).await.unwrap() == "async",
                by_empty_salt,
                "{key}"
            );
        }
        enrolled += usize::from(by_name);
        salted_differs += usize::from(by_name != by_empty_salt);
    }
    // Not vacuous: both paths and both salts were exercised.
    assert!((10..50).contains(&enrolled), "{enrolled}");
    assert!(salted_differs > 0);
}

fn precedence_blocking(_n: u32) -> Result<(), UploadError> {
    Ok(())
}

#[async_upload(fallback = precedence_blocking, name = "attr_calls_attribute_wins", retries = 0)]
async fn attribute_retries(_n: u32) -> Result<(), UploadError> {
    Err(UploadError::Transient)
}

#[async_upload(fallback = precedence_blocking, name = "attr_calls_operator_wins", retries = 3, backoff = 0)]
async fn operator_retries(_n: u32) -> Result<(), UploadError> {
    Err(UploadError::Transient)
}

#[tokio::test]
async fn attribute_values_beat_the_global_config_and_operators_beat_both() {
    // Global max_retries is 2 (the default); the attribute says 0.
    enroll("attr_calls_attribute_wins", SiteOverrides::default());
    attribute_retries(1).await.unwrap();
    let s = summary("attr_calls_attribute_wins", ExecutionType::SyncFallback);
    assert_eq!((s.count, s.attempts), (1, 1));

    // The attribute says 3; the operator's per-site override says 1.
    enroll(
        "attr_calls_operator_wins",
        SiteOverrides {
            max_retries: Some(1),
            ..SiteOverrides::default()
        },
    );
    operator_retries(1).await.unwrap();
    let s = summary("attr_calls_operator_wins", ExecutionType::SyncFallback);
    assert_eq!((s.count, s.attempts), (1, 2));
}

fn slow_blocking(_req: Req) -> Result<&'static str, UploadError> {
    Ok("sync")
}

#[async_upload(fallback = slow_blocking, name = "attr_calls_timeout", timeout = 0.05, retries = 1, backoff = 0)]
async fn slow(_req: Req) -> Result<&'static str, UploadError> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok("async")
}

// Tokio's paused clock: the two 50 ms attempts end at 100 ms of virtual
// time whatever the machine's load, and the 30 s body never completes.
#[tokio::test(start_paused = true)]
async fn the_attribute_timeout_limits_each_attempt() {
    enroll("attr_calls_timeout", SiteOverrides::default());
    let started = tokio::time::Instant::now();
    assert_eq!(slow(req("f1", b"")).await, Ok("sync"));
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(100)..Duration::from_secs(1)).contains(&elapsed),
        "{elapsed:?}"
    );
    let s = summary("attr_calls_timeout", ExecutionType::SyncFallback);
    assert_eq!((s.count, s.attempts), (1, 2));
}

struct Store {
    prefix: String,
}

impl Store {
    fn put_blocking(&self, name: String) -> Result<String, UploadError> {
        Ok(format!("sync:{}{name}", self.prefix))
    }

    fn put_shared_blocking(self: Arc<Self>, name: String) -> Result<String, UploadError> {
        Ok(format!("sync:{}{name}", self.prefix))
    }

    #[async_upload(fallback = Self::put_blocking, name = "attr_calls_method", key = self.prefix.as_str())]
    async fn put(&self, name: String) -> Result<String, UploadError> {
        if name.is_empty() {
            return Err(UploadError::Unsupported);
        }
        Ok(format!("async:{}{name}", self.prefix))
    }

    #[async_upload(fallback = Self::put_shared_blocking, name = "attr_calls_arc_method")]
    async fn put_shared(self: Arc<Self>, name: String) -> Result<String, UploadError> {
        Ok(format!("async:{}{name}", self.prefix))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_call_their_body_and_their_fallback_on_self() {
    enroll("attr_calls_method", SiteOverrides::default());
    enroll("attr_calls_arc_method", SiteOverrides::default());
    let store = Arc::new(Store {
        prefix: "bucket/".into(),
    });
    assert_eq!(store.put("a".into()).await.unwrap(), "async:bucket/a");
    // `Unsupported` falls back to `Self::put_blocking` with the same `self`.
    assert_eq!(store.put(String::new()).await.unwrap(), "sync:bucket/");
    let shared = tokio::spawn(Arc::clone(&store).put_shared("b".into()));
    assert_eq!(shared.await.unwrap().unwrap(), "async:bucket/b");
    assert_eq!(
        summary("attr_calls_method", ExecutionType::SyncFallback).count,
        1
    );
    assert_eq!(
        summary("attr_calls_arc_method", ExecutionType::Async).count,
        1
    );
}

fn checksum_blocking<T: AsRef<[u8]>>(
    data: &T,
    label: impl AsRef<str>,
) -> Result<String, UploadError> {
    Ok(format!("sync:{}:{}", label.as_ref(), data.as_ref().len()))
}

#[async_upload(fallback = checksum_blocking, name = "attr_calls_generic")]
async fn checksum<T>(data: &T, label: impl AsRef<str> + Clone) -> Result<String, UploadError>
where
    T: AsRef<[u8]> + Sync,
{
    Ok(format!("async:{}:{}", label.as_ref(), data.as_ref().len()))
}

#[tokio::test]
async fn borrowed_generic_and_impl_trait_arguments_reach_both_paths() {
    enroll("attr_calls_generic", SiteOverrides::default());
    let data = vec![1_u8, 2, 3];
    assert_eq!(checksum(&data, "v").await.unwrap(), "async:v:3");
    handle()
        .set_site(
            "attr_calls_generic",
            SiteOverrides {
                enabled: Some(false),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
    assert_eq!(
        checksum(&data, String::from("w")).await.unwrap(),
        "sync:w:3"
    );
}
