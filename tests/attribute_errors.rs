//! The error types applications return, with no code: `std::io::Error`,
//! `Box<dyn Error + Send + Sync>` (an `io::Error` anywhere in the source
//! chain decides; anything else falls back; a timeout or panic becomes the
//! error), and any type through `classify = path`.
//! `anyhow::Error` has its own target (`attribute_anyhow`, feature `anyhow`).
#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(
    clippy::unnecessary_wraps,
    clippy::needless_pass_by_value,
    clippy::unused_async
)]

mod attribute_support;

use std::error::Error;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use async_upload::{async_upload, ErrorClass, Fault};
use attribute_support::{enroll, summary, Chained};

type BoxError = Box<dyn Error + Send + Sync>;

static BOXED_TRIES: AtomicU32 = AtomicU32::new(0);

fn boxed_blocking(_what: String) -> Result<&'static str, BoxError> {
    Ok("sync")
}

/// `what` says which error the async path returns.
#[async_upload(fallback = boxed_blocking, name = "errors_boxed", retries = 2, backoff = 0)]
async fn boxed(what: String) -> Result<&'static str, BoxError> {
    BOXED_TRIES.fetch_add(1, Ordering::SeqCst);
    match what.as_str() {
        // A reset inside an application error: retried.
        "reset" => Err(Chained::new(io::ErrorKind::ConnectionReset).into()),
        // No io::Error in the chain: straight to the fallback.
        "other" => Err("quota exceeded".into()),
        _ => Ok("async"),
    }
}

#[tokio::test]
async fn a_boxed_error_is_classified_by_the_io_error_in_its_chain() {
    enroll("errors_boxed", None);
    assert_eq!(boxed("reset".into()).await.unwrap(), "sync");
    assert_eq!(BOXED_TRIES.swap(0, Ordering::SeqCst), 3, "retried twice");
    assert_eq!(boxed("other".into()).await.unwrap(), "sync");
    assert_eq!(BOXED_TRIES.swap(0, Ordering::SeqCst), 1, "not retried");
    let s = summary(
        "errors_boxed",
        async_upload::metrics::ExecutionType::SyncFallback,
    );
    assert_eq!((s.count, s.attempts), (2, 4));
}

fn never_blocking() -> Result<(), BoxError> {
    Ok(())
}

#[async_upload(fallback = never_blocking, name = "errors_boxed_fault", retries = 0, timeout = 0.01)]
async fn hangs() -> Result<(), BoxError> {
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test]
async fn with_fallback_off_a_timeout_comes_back_as_the_boxed_error() {
    enroll("errors_boxed_fault", Some(false));
    let error = hangs().await.unwrap_err();
    assert!(
        matches!(error.downcast_ref::<Fault>(), Some(Fault::Timeout(_))),
        "{error}"
    );
}

/// A classifier for a foreign error type: here `io::Error`, where
/// `NotFound` (a file still being written elsewhere) is worth a retry.
fn not_found_is_transient(error: &io::Error) -> ErrorClass {
    match error.kind() {
        io::ErrorKind::NotFound => ErrorClass::Retry,
        io::ErrorKind::PermissionDenied => ErrorClass::Fail,
        _ => ErrorClass::Fallback,
    }
}

static CLASSIFIED_TRIES: AtomicU32 = AtomicU32::new(0);

fn classified_blocking(_kind: io::ErrorKind) -> io::Result<&'static str> {
    Ok("sync")
}

#[async_upload(fallback = classified_blocking, name = "errors_classify_fn", retries = 1, backoff = 0,
               classify = not_found_is_transient)]
async fn classified(kind: io::ErrorKind) -> io::Result<&'static str> {
    CLASSIFIED_TRIES.fetch_add(1, Ordering::SeqCst);
    Err(kind.into())
}

#[tokio::test]
async fn a_classify_function_decides_instead_of_the_trait() {
    enroll("errors_classify_fn", None);
    // `Classify for io::Error` would fall back at once; the function retries.
    assert_eq!(classified(io::ErrorKind::NotFound).await.unwrap(), "sync");
    assert_eq!(CLASSIFIED_TRIES.swap(0, Ordering::SeqCst), 2);
    // `Fail`: the caller gets its own error back, unchanged.
    let error = classified(io::ErrorKind::PermissionDenied)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
    assert_eq!(CLASSIFIED_TRIES.swap(0, Ordering::SeqCst), 1);
    let failed = summary(
        "errors_classify_fn",
        async_upload::metrics::ExecutionType::Async,
    );
    assert_eq!((failed.count, failed.failures), (1, 1));
}
