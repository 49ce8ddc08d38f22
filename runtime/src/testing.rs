//! Testing code that uses the attribute (cargo feature `testing`, meant for
//! `[dev-dependencies]`): a scope that decides the path of every call made
//! in it and keeps their records, undone when its guard drops.
//!
//! ```
//! use async_upload::async_upload;
//! use async_upload::metrics::ExecutionType;
//! use async_upload_runtime::{testing, SyncReason};
//!
//! fn put_blocking(name: String) -> std::io::Result<usize> { Ok(name.len()) }
//!
//! #[async_upload(fallback = put_blocking, timeout = 30)]
//! async fn put(name: String) -> std::io::Result<usize> { Ok(name.len()) }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // The async path, whatever the flag and the rollout say.
//! let scope = testing::scope().force_async().install();
//! assert_eq!(put("a".into()).await.unwrap(), 1);
//! assert_eq!(scope.records()[0].execution_type, ExecutionType::Async);
//! drop(scope);
//!
//! // Every attempt times out at once: the fallback runs, without waiting 30 s.
//! let scope = testing::scope().force_async().async_times_out().install();
//! assert_eq!(put("bb".into()).await.unwrap(), 2);
//! let record = &scope.records()[0];
//! assert_eq!(record.execution_type, ExecutionType::SyncFallback);
//! assert_eq!(record.attempts, 3); // the default 2 retries, each timed out
//! assert_eq!(record.sync_reason, Some(SyncReason::AsyncGaveUp));
//! drop(scope);
//!
//! let scope = testing::scope().force_sync().install();
//! put("ccc".into()).await.unwrap();
//! assert_eq!(scope.records()[0].sync_reason, Some(SyncReason::ForcedSync));
//! # }
//! ```
//!
//! # What a scope covers
//!
//! A scope is installed on the thread that calls
//! [`install`](ScopeBuilder::install) and is seen by the calls made on that
//! thread until its guard drops. A call belongs to the scope in force where
//! it starts (where its future is first polled); its record goes to that
//! scope wherever it ends.
//!
//! - `#[tokio::test]` (the current-thread runtime, the default): the test's
//!   body and every task it spawns with `tokio::spawn` run on the test's
//!   thread, so they all are in the scope.
//! - `#[tokio::test(flavor = "multi_thread")]`: the test's body still runs
//!   on the test's thread (the runtime's `block_on`), so calls it awaits
//!   are in the scope; a task spawned with `tokio::spawn` runs on a worker
//!   thread and is not, unless it is bound to the scope:
//!   `tokio::spawn(scope.bind(upload(req)))`. A call outside every scope
//!   runs as in production, on the global configuration.
//! - `spawn_blocking` and other threads: install a scope there, or run the
//!   calls in a future bound with [`ScopeGuard::bind`].
//!
//! Scopes nest: installing one while another is in force shadows it until
//! the inner guard drops (drop guards in the reverse order of installing).
//!
//! # What a scope isolates
//!
//! Nothing a scope sets reaches the global configuration
//! ([`config::handle`](crate::config::handle)), and the records of its calls
//! go to the scope only: not to the global aggregator, the sinks
//! ([`metrics::add_sink`](crate::metrics::add_sink)), the JSONL log, the
//! `metrics` facade or the fleet. A call in a scope never reads the global
//! configuration either (nor the environment): a scope starts from
//! [`Config::default`] and what its builder sets. The circuit breaker and
//! retry budget, which are process-wide state of each site, are off in a
//! scope; its calls neither read nor move them. So tests running in parallel
//! threads of one binary never see each other's settings or records.
//!
//! # Cost
//!
//! Without the feature, nothing: the check is not compiled. With it, a call
//! reads one thread-local to find that no scope is in force.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use crate::config::{
    AttributeOverrides, Config, ConfigError, Settings, SiteControl, SiteOverrides,
};
use crate::metrics::{SyncReason, UploadRecord};
use crate::rollout::BUCKETS;

/// A scope to configure and [`install`](ScopeBuilder::install); see the
/// [module docs](self).
///
/// ```
/// use async_upload::config::SiteOverrides;
/// use async_upload_runtime::testing;
///
/// let scope = testing::scope()
///     .config(|c| {
///         c.enabled = true;
///         c.rollout = 100.0;
///     })
///     .site("upload", SiteOverrides { max_retries: Some(0), ..Default::default() })
///     .install();
/// assert!(scope.records().is_empty());
/// ```
pub fn scope() -> ScopeBuilder {
    ScopeBuilder {
        path: Forced::No,
        times_out: false,
        config: Config::default(),
        sites: HashMap::new(),
    }
}

/// Whether a scope decides every call's path itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forced {
    /// The scope's configuration decides, as the global one does.
    No,
    Async,
    Sync,
}

/// What a scope will do, before it is installed. Built by [`scope`].
#[derive(Clone, Debug)]
#[must_use = "a scope does nothing until it is installed"]
pub struct ScopeBuilder {
    path: Forced,
    times_out: bool,
    config: Config,
    sites: HashMap<String, SiteOverrides>,
}

impl ScopeBuilder {
    /// Every call takes the async path, whatever the flag and the rollout
    /// say (the scope's other settings apply: retries, timeout, fallback).
    pub fn force_async(mut self) -> Self {
        self.path = Forced::Async;
        self
    }

    /// Every call takes the sync path (recorded with
    /// [`SyncReason::ForcedSync`]).
    pub fn force_sync(mut self) -> Self {
        self.path = Forced::Sync;
        self
    }

    /// Every async attempt times out at once, without running the body:
    /// the call retries (without backoff) and then falls back, or fails
    /// with the timeout when fallback is off, so the fallback is tested
    /// without waiting. Each such attempt counts as ambiguous.
    pub fn async_times_out(mut self) -> Self {
        self.times_out = true;
        self
    }

    /// Changes the scope's configuration, which starts as
    /// [`Config::default`] (not the environment, not the global handle).
    /// Its `log_path` is ignored: a scope's records go to the scope only.
    pub fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Operator overrides for the site named `name`, in the scope only.
    pub fn site(mut self, name: &str, overrides: SiteOverrides) -> Self {
        self.sites.insert(name.to_owned(), overrides);
        self
    }

    /// Installs the scope on this thread until the guard drops.
    ///
    /// # Panics
    ///
    /// When the scope's configuration or a site's overrides are invalid,
    /// with the error naming the field, the value and what is accepted
    /// (in a test, that is the failure to report); see
    /// [`try_install`](Self::try_install) for the error as a value.
    pub fn install(self) -> ScopeGuard {
        match self.try_install() {
            Ok(guard) => guard,
            Err(error) => panic!("invalid async-upload testing scope: {error}"),
        }
    }

    /// Installs the scope on this thread until the guard drops.
    ///
    /// # Errors
    ///
    /// The scope's configuration or a site's overrides are invalid; nothing
    /// is installed then.
    pub fn try_install(self) -> Result<ScopeGuard, ConfigError> {
        self.config.validate()?;
        for overrides in self.sites.values() {
            overrides.validate()?;
        }
        let scope = Arc::new(Scope {
            path: self.path,
            times_out: self.times_out,
            config: self.config,
            sites: self.sites,
            records: Mutex::new(Vec::new()),
        });
        let previous = replace_current(Some(Arc::clone(&scope)));
        Ok(ScopeGuard {
            scope,
            previous,
            _this_thread: PhantomData,
        })
    }
}

/// An installed scope: its calls' records, and the scope itself until it
/// drops (then the scope in force before it, if any, is back).
#[must_use = "the scope is undone when the guard is dropped"]
pub struct ScopeGuard {
    scope: Arc<Scope>,
    previous: Option<Arc<Scope>>,
    /// Undone on the thread it was installed on.
    _this_thread: PhantomData<*const ()>,
}

impl ScopeGuard {
    /// The records of the calls made in the scope so far, in the order the
    /// calls ended.
    #[must_use]
    pub fn records(&self) -> Vec<UploadRecord> {
        self.scope.records().clone()
    }

    /// `future`, each of whose polls runs in this scope, wherever it is
    /// polled: for a task spawned onto another thread
    /// (`tokio::spawn(scope.bind(upload(req)))` on a multi-thread runtime).
    pub fn bind<F: Future>(&self, future: F) -> Bound<F> {
        Bound {
            future: Box::pin(future),
            scope: Arc::clone(&self.scope),
        }
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        replace_current(self.previous.take());
    }
}

impl core::fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ScopeGuard")
            .field("records", &self.scope.records().len())
            .finish_non_exhaustive()
    }
}

/// A future bound to a scope by [`ScopeGuard::bind`].
#[must_use = "futures do nothing unless polled"]
pub struct Bound<F> {
    future: Pin<Box<F>>,
    scope: Arc<Scope>,
}

impl<F: Future> Future for Bound<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Restore(Option<Arc<Scope>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                replace_current(self.0.take());
            }
        }
        let scope = Arc::clone(&self.scope);
        let _restore = Restore(replace_current(Some(scope)));
        self.future.as_mut().poll(cx)
    }
}

impl<F> core::fmt::Debug for Bound<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Bound").finish_non_exhaustive()
    }
}

/// An installed scope's settings and records.
#[derive(Debug)]
pub(crate) struct Scope {
    path: Forced,
    times_out: bool,
    config: Config,
    sites: HashMap<String, SiteOverrides>,
    records: Mutex<Vec<UploadRecord>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
    /// Whether `CURRENT` holds a scope: a plain word with no destructor,
    /// the one read a call makes when no scope is in force.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// Puts `scope` in force on this thread; the one it replaces. A thread
/// that is ending (its thread-locals gone) keeps none.
fn replace_current(scope: Option<Arc<Scope>>) -> Option<Arc<Scope>> {
    let active = scope.is_some();
    let previous = CURRENT
        .try_with(|current| current.replace(scope))
        .ok()
        .flatten();
    let _ = ACTIVE.try_with(|flag| flag.set(active));
    previous
}

/// The scope in force on this thread, if any.
pub(crate) fn current() -> Option<Arc<Scope>> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// The path the scope in force decides for a call of the site `name`, whose
/// attribute gives `attribute` (the site passes them in: this module sits
/// below the site and does not know its type): `None` when
/// no scope is in force (the one thread-local read a call makes),
/// `Some(Ok(()))` for the async path, `Some(Err(reason))` for the sync one.
pub(crate) fn decide(
    name: &str,
    attribute: AttributeOverrides,
    bucket: impl FnOnce() -> u16,
) -> Option<Result<(), SyncReason>> {
    if !ACTIVE.with(Cell::get) {
        return None;
    }
    CURRENT
        .try_with(|current| {
            let current = current.borrow();
            let scope = current.as_ref()?;
            Some(match scope.path {
                Forced::Async => Ok(()),
                Forced::Sync => Err(SyncReason::ForcedSync),
                Forced::No => {
                    let settings = scope.settings(name, attribute);
                    let threshold = settings.rollout.threshold();
                    if !settings.enabled {
                        Err(SyncReason::Disabled)
                    } else if threshold >= BUCKETS || (threshold > 0 && bucket() < threshold) {
                        Ok(())
                    } else {
                        Err(SyncReason::NotEnrolled)
                    }
                }
            })
        })
        .ok()
        .flatten()
}

impl Scope {
    /// The settings of the site `name` in the scope: its configuration, the site's
    /// overrides and the attribute's values, by the usual precedence; the
    /// breaker off; enabled when the scope forces the async path.
    pub(crate) fn settings(&self, name: &str, attribute: AttributeOverrides) -> Settings {
        let control = SiteControl::with_operator(self.sites.get(name).cloned().unwrap_or_default());
        let (mut settings, _) = Settings::resolve(&self.config, attribute, &control);
        settings.breaker.enabled = false;
        if self.path == Forced::Async {
            settings.enabled = true;
        }
        settings
    }

    /// Every async attempt times out at once.
    pub(crate) fn times_out(&self) -> bool {
        self.times_out
    }

    /// Keeps a record of a call made in the scope.
    pub(crate) fn push(&self, record: UploadRecord) {
        self.records().push(record);
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Vec<UploadRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
