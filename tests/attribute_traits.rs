//! Behaviour of `#[async_upload]` on trait methods: native `async fn` in
//! `impl Trait for Type`, `#[async_trait]` impls and trait default methods,
//! each called as services call them (a generic caller that spawns, and
//! `Arc<dyn Trait>`): routed by the rollout formula, retried, falling back,
//! and recorded exactly once per call.
//!
//! Each shape has its own site (the configuration and the aggregator are
//! process-global and tests run in parallel).
#![deny(warnings)]
#![warn(clippy::pedantic)]
// Stand-in bodies and fallbacks without I/O; lints on the generated code stay on.
#![allow(
    clippy::unnecessary_wraps,
    clippy::needless_pass_by_value,
    clippy::unused_async
)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use async_upload::config::{handle, SiteOverrides};
use async_upload::metrics::{self, ExecutionType};
use async_upload::{async_upload, rollout};

#[path = "attribute_support/upload_error.rs"]
mod upload_error;

use upload_error::UploadError;

/// What the async body does: fail its first `fail_first` attempts with
/// `error`, then succeed. Cloned into each attempt; the count is shared.
#[derive(Clone)]
struct Plan {
    fail_first: u32,
    error: UploadError,
    tries: Arc<AtomicU32>,
}

impl Plan {
    fn ok() -> Plan {
        Plan::failing(0, UploadError::Transient)
    }

    fn failing(fail_first: u32, error: UploadError) -> Plan {
        Plan {
            fail_first,
            error,
            tries: Arc::new(AtomicU32::new(0)),
        }
    }

    /// One attempt of the async body.
    async fn attempt(&self, origin: &str) -> Result<String, UploadError> {
        tokio::task::yield_now().await;
        if self.tries.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(self.error.clone());
        }
        Ok(format!("async:{origin}"))
    }

    fn tries(&self) -> u32 {
        self.tries.load(Ordering::SeqCst)
    }
}

// --- The three shapes --------------------------------------------------------

/// Native `async fn` in the impl; the trait promises `Send` futures.
trait NativeStore: Send + Sync + 'static {
    fn put(
        &self,
        key: String,
        plan: Plan,
    ) -> impl Future<Output = Result<String, UploadError>> + Send;
}

/// `#[async_trait]`: callable through `dyn`.
#[async_trait]
trait BoxedStore: Send + Sync {
    async fn put(&self, key: String, plan: Plan) -> Result<String, UploadError>;
}

/// The attribute on the trait's default method.
trait DefaultStore: Send + Sync + 'static {
    fn origin(&self) -> &'static str;

    fn put_blocking(&self, _key: String, _plan: Plan) -> Result<String, UploadError> {
        Ok(format!("sync:{}", self.origin()))
    }

    #[async_upload(fallback = Self::put_blocking, name = "traits_default", key = key.as_str(), retries = 2, backoff = 0)]
    async fn put(&self, key: String, plan: Plan) -> Result<String, UploadError> {
        plan.attempt(self.origin()).await
    }
}

struct Disk {
    origin: &'static str,
}

impl Disk {
    fn put_blocking(&self, _key: String, _plan: Plan) -> Result<String, UploadError> {
        Ok(format!("sync:{}", self.origin))
    }
}

impl NativeStore for Disk {
    #[async_upload(fallback = Self::put_blocking, name = "traits_native", key = key.as_str(), retries = 2, backoff = 0)]
    async fn put(&self, key: String, plan: Plan) -> Result<String, UploadError> {
        plan.attempt(self.origin).await
    }
}

/// A free function as the fallback of a trait method.
fn boxed_blocking(disk: &Disk, _key: String, _plan: Plan) -> Result<String, UploadError> {
    Ok(format!("sync:{}", disk.origin))
}

#[async_trait]
impl BoxedStore for Disk {
    #[async_upload(fallback = boxed_blocking, name = "traits_async_trait", key = key.as_str(), retries = 2, backoff = 0)]
    async fn put(&self, key: String, plan: Plan) -> Result<String, UploadError> {
        plan.attempt(self.origin).await
    }
}

impl DefaultStore for Disk {
    fn origin(&self) -> &'static str {
        self.origin
    }
}

// --- The callers ----------------------------------------------------------------

/// A generic service function: each call runs in a spawned task, so the
/// future must be `Send + 'static`.
async fn via_generic<S: NativeStore>(
    store: &Arc<S>,
    key: &str,
    plan: &Plan,
) -> Result<String, UploadError> {
    let (store, key, plan) = (Arc::clone(store), key.to_owned(), plan.clone());
    tokio::spawn(async move { store.put(key, plan).await })
        .await
        .unwrap()
}

/// A default method's future is `Send` where the implementor is known (a
/// generic caller cannot name it `Send`, as for any `async fn` in a trait),
/// so the test spawns around this caller.
async fn via_generic_default<S: DefaultStore>(
    store: &S,
    key: &str,
    plan: &Plan,
) -> Result<String, UploadError> {
    store.put(key.to_owned(), plan.clone()).await
}

async fn via_dyn(
    store: &Arc<dyn BoxedStore>,
    key: &str,
    plan: &Plan,
) -> Result<String, UploadError> {
    let (store, key, plan) = (Arc::clone(store), key.to_owned(), plan.clone());
    tokio::spawn(async move { store.put(key, plan).await })
        .await
        .unwrap()
}

async fn via_generic_boxed<S: BoxedStore + ?Sized>(
    store: &S,
    key: &str,
    plan: &Plan,
) -> Result<String, UploadError> {
    store.put(key.to_owned(), plan.clone()).await
}

// --- One scenario for every shape and caller -------------------------------------

fn calls(site: &str) -> u64 {
    [
        ExecutionType::Sync,
        ExecutionType::Async,
        ExecutionType::SyncFallback,
    ]
    .into_iter()
    .map(|execution_type| metrics::global().summary(site, execution_type).count)
    .sum()
}

fn set_rollout(site: &str, rollout: f64) {
    handle().update(|c| c.enabled = true).unwrap();
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: Some(rollout),
                // The retry semantics, not the budget: its bank starts
                // empty, so calls in a row that all fail would retry less.
                breaker: Some(false),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
}

/// Retried, falling back, routed by the bucket, recorded once per call.
/// `call` runs one call of `site`'s method (retries = 2) as a caller does.
async fn scenario<F, Fut>(site: &str, origin: &str, call: F)
where
    F: Fn(String, Plan) -> Fut,
    Fut: Future<Output = Result<String, UploadError>>,
{
    let (sync, async_) = (format!("sync:{origin}"), format!("async:{origin}"));
    set_rollout(site, 100.0);
    let async_path = |site: &str| metrics::global().summary(site, ExecutionType::Async);
    let fallback_path = |site: &str| metrics::global().summary(site, ExecutionType::SyncFallback);

    // Two transient failures, then success on the third (last) attempt.
    let plan = Plan::failing(2, UploadError::Transient);
    assert_eq!(call("k".into(), plan.clone()).await.unwrap(), async_);
    assert_eq!(plan.tries(), 3);
    let s = async_path(site);
    assert_eq!((s.count, s.successes, s.attempts), (1, 1, 3));

    // Retries exhausted: the fallback answers.
    let plan = Plan::failing(10, UploadError::Transient);
    assert_eq!(call("k".into(), plan.clone()).await.unwrap(), sync);
    assert_eq!(plan.tries(), 3);
    // An error classified `Fallback`: no retry.
    let plan = Plan::failing(1, UploadError::Unsupported);
    assert_eq!(call("k".into(), plan.clone()).await.unwrap(), sync);
    assert_eq!(plan.tries(), 1);
    let s = fallback_path(site);
    assert_eq!((s.count, s.successes, s.attempts), (2, 2, 3 + 1));
    assert_eq!(calls(site), 3);

    // Half the keys: each goes where `bucket(site, key) < 5000` says.
    set_rollout(site, 50.0);
    let mut enrolled = 0;
    for i in 0..40 {
        let key = format!("file-{i}");
        let expected = rollout::bucket(site, key.as_bytes()) < 5000;
        let out = call(key.clone(), Plan::ok()).await.unwrap();
        assert_eq!(out == async_, expected, "{key}: {out}");
        enrolled += u32::from(expected);
    }
    assert!((5..35).contains(&enrolled), "{enrolled}");
    assert_eq!(calls(site), 3 + 40, "one record per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_trait_impl_method_through_a_generic_spawning_caller() {
    let store = Arc::new(Disk { origin: "native" });
    scenario("traits_native", "native", |key, plan| {
        let store = Arc::clone(&store);
        async move { via_generic(&store, &key, &plan).await }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_trait_impl_method_through_dyn_and_a_generic_caller() {
    let store: Arc<dyn BoxedStore> = Arc::new(Disk { origin: "boxed" });
    scenario("traits_async_trait", "boxed", |key, plan| {
        let store = Arc::clone(&store);
        async move {
            // Alternate the two callers; both reach the same site.
            if key.len() % 2 == 0 {
                via_dyn(&store, &key, &plan).await
            } else {
                via_generic_boxed(&*store, &key, &plan).await
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trait_default_method_through_a_generic_spawning_caller() {
    let store = Arc::new(Disk { origin: "default" });
    scenario("traits_default", "default", |key, plan| {
        let store = Arc::clone(&store);
        let spawned = tokio::spawn(async move { via_generic_default(&*store, &key, &plan).await });
        async move { spawned.await.unwrap() }
    })
    .await;
}
