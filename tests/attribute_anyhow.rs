//! `anyhow::Error` as the error type (feature `anyhow`): with no code an
//! `io::Error` under any `.context(..)` decides, anything else falls back,
//! a timeout comes back as the error; and `classify = path` says "retry
//! what my own client error calls transient", found inside the `anyhow::Error`.
#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(
    clippy::unnecessary_wraps,
    clippy::needless_pass_by_value,
    clippy::unused_async
)]

mod attribute_support;

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use async_upload::metrics::ExecutionType;
use async_upload::{async_upload, ErrorClass, Fault};
use attribute_support::{enroll, summary, Chained};

static TRIES: AtomicU32 = AtomicU32::new(0);

fn put_blocking(_what: String) -> anyhow::Result<&'static str> {
    Ok("sync")
}

#[async_upload(fallback = put_blocking, name = "anyhow_default", retries = 2, backoff = 0)]
async fn put(what: String) -> anyhow::Result<&'static str> {
    TRIES.fetch_add(1, Ordering::SeqCst);
    match what.as_str() {
        "reset" => Err(Chained::new(io::ErrorKind::ConnectionReset)).context("uploading part 3"),
        "other" => Err(anyhow::anyhow!("quota exceeded")),
        _ => Ok("async"),
    }
}

#[tokio::test]
async fn an_io_error_under_context_is_retried_and_anything_else_falls_back() {
    enroll("anyhow_default", None);
    assert_eq!(put("ok".into()).await.unwrap(), "async");
    assert_eq!(TRIES.swap(0, Ordering::SeqCst), 1);
    assert_eq!(put("reset".into()).await.unwrap(), "sync");
    assert_eq!(TRIES.swap(0, Ordering::SeqCst), 3, "retried twice");
    assert_eq!(put("other".into()).await.unwrap(), "sync");
    assert_eq!(TRIES.swap(0, Ordering::SeqCst), 1, "not retried");
    let s = summary("anyhow_default", ExecutionType::SyncFallback);
    assert_eq!((s.count, s.attempts), (2, 4));
}

fn never_blocking() -> anyhow::Result<()> {
    Ok(())
}

#[async_upload(fallback = never_blocking, name = "anyhow_fault", retries = 0, timeout = 0.01)]
async fn hangs() -> anyhow::Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn with_fallback_off_a_timeout_comes_back_as_an_anyhow_error() {
    enroll("anyhow_fault", Some(false));
    let error = hangs().await.unwrap_err();
    assert!(
        matches!(error.downcast_ref::<Fault>(), Some(Fault::Timeout(_))),
        "{error:#}"
    );
}

/// The application's own judgement of what is inside its `anyhow::Error`:
/// its client's "not found yet" is transient, anything else is final.
fn transient_client_errors(error: &anyhow::Error) -> ErrorClass {
    let not_found = error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::NotFound);
    if not_found {
        ErrorClass::Retry
    } else {
        ErrorClass::Fail
    }
}

static CLASSIFIED_TRIES: AtomicU32 = AtomicU32::new(0);

#[async_upload(fallback = put_blocking, name = "anyhow_classify_fn", retries = 1, backoff = 0,
               classify = transient_client_errors)]
async fn classified(what: String) -> anyhow::Result<&'static str> {
    CLASSIFIED_TRIES.fetch_add(1, Ordering::SeqCst);
    match what.as_str() {
        "not_found" => Err(Chained::new(io::ErrorKind::NotFound)).context("part 1"),
        _ => Err(anyhow::anyhow!("invalid request")),
    }
}

#[tokio::test]
async fn a_classify_function_judges_what_is_inside_the_anyhow_error() {
    enroll("anyhow_classify_fn", None);
    assert_eq!(classified("not_found".into()).await.unwrap(), "sync");
    assert_eq!(
        CLASSIFIED_TRIES.swap(0, Ordering::SeqCst),
        2,
        "retried once"
    );
    let error = classified("bad".into()).await.unwrap_err();
    assert_eq!(error.to_string(), "invalid request");
    assert_eq!(CLASSIFIED_TRIES.swap(0, Ordering::SeqCst), 1);
}
