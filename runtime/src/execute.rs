//! The per-call state machine: decide → async attempts → fallback → record.
//!
//! ```text
//! decide:  disabled | rolled back | not enrolled → run sync              → record sync
//!          enrolled                              → async attempt 1
//! attempt: Ok                                    → record async
//!          Err classified Retry, retries left    → backoff (exp, full jitter, capped) → next attempt
//!          timeout (per attempt)                 → as Retry
//!          panic in the async body               → critical; as Fallback
//!          Retry exhausted, or Fallback          → fallback on ? run sync → record sync_fallback
//!                                                             : return the error → record async failure
//!          Err classified Fail                   → return it, no fallback → record async failure
//! ```
//!
//! Every call leaves exactly one record, also when the caller drops the
//! future mid-call (fault [`RuntimeFault::Cancelled`]; the fallback never
//! starts for a dropped call). A sync path already running on the blocking
//! pool cannot be stopped: when its caller goes away, the record waits for
//! it and carries its real outcome, with fault `cancelled` noting that
//! nobody received it.
//!
//! A runtime fault is recorded by its [`RuntimeFault`], a user error by its
//! [`Classify::error_type`], qualified when it picked a reserved name.
//!
//! # The sync path and the executor
//!
//! The sync path blocks, so it must not run on an executor thread as is:
//!
//! - [`execute`] moves the arguments into [`tokio::task::spawn_blocking`]
//!   (they must be `Send + 'static`): other tasks keep running on every
//!   runtime flavour.
//! - [`execute_in_place`] is for arguments that borrow: on the multi-thread
//!   runtime it uses [`tokio::task::block_in_place`], which hands this
//!   worker's other tasks to another thread. The current-thread runtime has
//!   no other thread, so there the sync path runs inline and blocks that
//!   runtime for its duration, exactly as the sync code did before the
//!   migration (it never panics).
//!
//! # Requirements
//!
//! The async path needs a Tokio runtime with the time driver
//! (`#[tokio::main]` and `#[tokio::test]` enable it). Called outside any
//! Tokio runtime, a call runs the sync path inline, the safe path, and a
//! warning is logged once.

use std::any::Any;
use std::future::{poll_fn, ready, Future};
use std::panic::{catch_unwind as catch, AssertUnwindSafe};
use std::pin::pin;
use std::sync::{Arc, Mutex, Once};
use std::task::Poll;
use std::time::SystemTime;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::Instrument;

pub use crate::lend::{Lend, Lent};

use crate::breaker::Admission;
use crate::call_id::{self, CallId};
use crate::config::{BreakerSettings, Settings};
use crate::metrics::{
    self, user_error_name, ExecutionType, RuntimeFault, SyncReason, UploadRecord,
};
use crate::policy::{Classify, ErrorClass, Fault};
use crate::site::{Call, Path, Site};

/// A panic's payload, as `catch_unwind` returns it.
type Panic = Box<dyn Any + Send + 'static>;

/// Runs one call: the async path through `attempt` (once per attempt, on
/// the same `args`), the sync path through `fallback`, which runs on
/// Tokio's blocking pool.
///
/// Each attempt receives `&mut args` and builds its future from clones of
/// what it needs (the future may not borrow `args`), because a failed
/// attempt may be retried and the fallback receives `args` itself.
///
/// ```
/// use async_upload_runtime::{execute::execute, Site};
///
/// static UPLOAD: Site = Site::new("docs_execute");
///
/// async fn upload_async(name: String) -> std::io::Result<usize> { Ok(name.len()) }
/// fn upload_blocking(name: String) -> std::io::Result<usize> { Ok(name.len()) }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let name = String::from("file-1");
/// let call = UPLOAD.call(&name).with_bytes(name.len());
/// let result = execute(
///     call,
///     (name,),
///     |(name,)| upload_async(name.clone()),
///     |(name,)| upload_blocking(name),
/// )
/// .await;
/// assert_eq!(result.unwrap(), 6);
/// # }
/// ```
///
/// # Errors
///
/// The error of the async path when it is classified [`ErrorClass::Fail`],
/// or when it gives up with fallback off (a timeout or panic becomes `E`
/// through [`Classify::from_fault`]); otherwise the sync path's error.
///
/// # Panics
///
/// A panic of the sync path is resumed on the caller, as the sync code
/// would have panicked before (it is recorded first). A panic of the async
/// path is caught and falls back.
pub async fn execute<A, T, E, F, Fut, S>(
    call: Call,
    args: A,
    attempt: F,
    fallback: S,
) -> Result<T, E>
where
    A: Send + 'static,
    F: FnMut(&mut A) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: FnOnce(A) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Classify + Send + 'static,
{
    run(call, args, attempt, move |args, recorder: &mut Recorder| {
        on_blocking_pool(fallback, args, recorder.id, recorder.hand_off())
    })
    .await
}

/// Like [`execute`], for arguments that borrow (not `'static`) or are not
/// `Send`: the sync path runs in place (see the module docs).
///
/// # Errors
///
/// As [`execute`].
///
/// # Panics
///
/// As [`execute`].
pub async fn execute_in_place<A, T, E, F, Fut, S>(
    call: Call,
    args: A,
    attempt: F,
    fallback: S,
) -> Result<T, E>
where
    F: FnMut(&mut A) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: FnOnce(A) -> Result<T, E>,
    E: Classify,
{
    run(call, args, attempt, move |args, recorder: &mut Recorder| {
        let id = recorder.id;
        ready(call_id::with(id, || in_place(fallback, args)))
    })
    .await
}

// The paths are plain closures and the state machine one async fn with
// direct `Fn` bounds, on purpose: a trait between them (or async closures)
// makes futures over borrowed arguments fail the `Send` check of
// `tokio::spawn` ("implementation of `FnOnce` is not general enough",
// rust-lang/rust#64552), and `&self` methods called from a spawned task
// are the common case.
async fn run<A, T, E, F, Fut, R, RFut>(
    call: Call,
    mut args: A,
    mut attempt: F,
    sync: R,
) -> Result<T, E>
where
    F: FnMut(&mut A) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    // The sync path gets the call's recorder, for the id to run under
    // (`call_id()`) and, on the blocking pool, to hand the record over
    // should the caller go away while it runs.
    R: FnOnce(A, &mut Recorder) -> RFut,
    RFut: Future<Output = Result<Result<T, E>, Panic>>,
    E: Classify,
{
    let mut recorder = Recorder::new(call);
    let settings = match call.path() {
        Path::Async(settings) if tokio_available() => settings,
        path => {
            // The sync path, as the code ran before the migration: no span
            // and no event above DEBUG, so a service whose subscriber logs
            // at INFO pays nothing for the calls it has not moved yet.
            let reason = match path {
                Path::Sync(reason) => reason,
                Path::Async(_) => SyncReason::NoRuntime,
            };
            recorder.enter_sync(ExecutionType::Sync, reason);
            let outcome = sync(args, &mut recorder).await;
            return recorder.finish_sync(outcome);
        }
    };
    // The async path's span is at DEBUG: an INFO span per call would cost
    // every service that logs at INFO (nearly all) a span allocation and
    // its formatting on each call, the bulk of a call's cost; the records
    // and the WARN events (in this span when DEBUG is on) say what
    // happened. Built outside the async block, as tracing-attributes
    // does, so the call's whole future runs inside it.
    let span = tracing::debug_span!(
        "async_upload",
        site = call.site.name(),
        execution_type = Empty,
        attempts = Empty,
    );
    recorder.span = span.clone();
    let state_machine = async move {
        let guard = Guard::of(&call, &settings);
        if guard.skips() {
            recorder.cause = Some(RuntimeFault::BreakerOpen.as_str());
            recorder.note(RuntimeFault::BreakerOpen);
            if !settings.fallback {
                // No sync path can take it: the caller hears at once, not
                // after a timeout per attempt against a backend that is down.
                recorder.enter(ExecutionType::Async);
                tracing::debug!("circuit breaker open and fallback off; the call fails at once");
                return recorder.finish(Err(E::from_fault(Fault::BreakerOpen)));
            }
            recorder.enter_sync(ExecutionType::SyncFallback, SyncReason::BreakerOpen);
            tracing::debug!("circuit breaker open; the sync path takes the call");
            let outcome = sync(args, &mut recorder).await;
            return recorder.finish_sync(outcome);
        }

        recorder.enter(ExecutionType::Async);
        let outcome = attempts(&settings, guard, &mut args, &mut attempt, &mut recorder).await;
        let give_up = match outcome {
            Ok(done) => return done,
            Err(give_up) => give_up,
        };

        recorder.cause = Some(give_up.error_type());
        if let Some(fault) = give_up.fault() {
            recorder.note(fault);
        }
        if !settings.fallback {
            warn_throttled(
                call.site,
                give_up.error_type(),
                "async upload failed; fallback is off",
            );
            return recorder.finish(Err(give_up.into_error()));
        }
        warn_throttled(
            call.site,
            give_up.error_type(),
            "async upload gave up; falling back to the sync path",
        );
        recorder.enter_sync(ExecutionType::SyncFallback, SyncReason::AsyncGaveUp);
        let outcome = sync(args, &mut recorder).await;
        recorder.finish_sync(outcome)
    };
    state_machine.instrument(span).await
}

/// The async attempts: `Ok` with the call's final result when the async
/// path decided it (success, or an error classified `Fail`), `Err` with the
/// reason when it gives up and the fallback (if on) should take over.
async fn attempts<A, T, E, F, Fut>(
    settings: &Settings,
    guard: Guard,
    args: &mut A,
    attempt: &mut F,
    recorder: &mut Recorder,
) -> Result<Result<T, E>, GiveUp<E>>
where
    F: FnMut(&mut A) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify,
{
    let mut retries = 0;
    // The first attempt starts with the call: its deadline needs no clock read.
    let mut started = recorder.started;
    // A testing scope's `async_times_out` (never without the feature).
    let times_out = recorder.times_out();
    // A probe (a real call testing a half-open breaker) gets a short
    // timeout derived from recent successes, so it costs its caller little
    // more than a healthy attempt.
    let timeout = guard.attempt_timeout(settings.timeout);
    loop {
        recorder.attempts += 1;
        let deadline = started + timeout;
        let outcome = if times_out {
            // A deadline already past and a body that never starts.
            tokio::time::timeout_at(started, std::future::pending()).await
        } else {
            // Building the attempt runs user code too (clones): inside the catch.
            tokio::time::timeout_at(
                deadline,
                catch_unwind(recorder.id, async { attempt(args).await }),
            )
            .await
        };
        recorder.ambiguous += u32::from(outcome_unknown(&outcome));
        let retryable = match outcome {
            Ok(Ok(Ok(value))) => {
                // One clock read for the breaker's latency and the record.
                let now = Instant::now();
                guard.success_after(now.saturating_duration_since(started));
                recorder.ended = Some(now);
                return Ok(recorder.finish(Ok(value)));
            }
            Ok(Ok(Err(error))) => match error.classify() {
                // The backend answered: the request itself was refused.
                ErrorClass::Fail => {
                    guard.success();
                    warn_throttled(
                        recorder.call.site,
                        error_name(&error),
                        "async upload failed; not retried",
                    );
                    return Ok(recorder.finish(Err(error)));
                }
                ErrorClass::Fallback => {
                    guard.failure();
                    return Err(GiveUp::Error(error));
                }
                ErrorClass::Retry => GiveUp::Error(error),
            },
            Ok(Err(panic)) => {
                guard.failure();
                let message = panic_message(&*panic);
                tracing::error!(panic = %message, "async upload panicked (critical)");
                return Err(GiveUp::Fault(Fault::Panic(message)));
            }
            Err(_elapsed) => GiveUp::Fault(Fault::Timeout(timeout)),
        };
        guard.failure();
        if retries >= settings.max_retries {
            return Err(retryable);
        }
        if !guard.may_retry() {
            tracing::debug!(
                error_type = retryable.error_type(),
                "async upload not retried: a probe, the breaker open, or the retry budget spent"
            );
            return Err(retryable);
        }
        let delay = if times_out {
            std::time::Duration::ZERO
        } else {
            settings.backoff.delay(retries)
        };
        tracing::debug!(
            attempt = recorder.attempts,
            error_type = retryable.error_type(),
            delay_ms = delay.as_secs_f64() * 1000.0,
            "async upload attempt failed; retrying",
        );
        tokio::time::sleep(delay).await;
        retries += 1;
        started = Instant::now();
    }
}

/// Whether an attempt ended without telling whether the upload landed: a
/// timeout or a panic (the request may be in flight or stored), or an
/// error that says the request may have reached the backend.
fn outcome_unknown<T, E: Classify>(
    outcome: &Result<Result<Result<T, E>, Panic>, tokio::time::error::Elapsed>,
) -> bool {
    match outcome {
        Ok(Ok(Ok(_))) => false,
        Ok(Ok(Err(error))) => error.outcome_unknown(),
        Ok(Err(_)) | Err(_) => true,
    }
}

// Errors are named for records in one place: `GiveUp::error_type` and
// `error_name` below.

/// The breaker's part in one call: it applies when the site's breaker is
/// on, with fallback on or off (off, a skipped call fails at once with
/// [`Fault::BreakerOpen`], and the retry budget bounds an outage's cost
/// exactly where no fallback would absorb it).
#[derive(Clone, Copy)]
struct Guard {
    site: &'static Site,
    admission: Admission,
    settings: BreakerSettings,
    applies: bool,
    /// The site's background probe, if it has one and the breaker applies.
    probe: Option<crate::breaker::background::Probe>,
    /// The site's per-attempt timeout (the probe's default bounds it).
    timeout: std::time::Duration,
}

impl Guard {
    fn of(call: &Call, settings: &Settings) -> Self {
        let site = call.site;
        let applies = settings.breaker.enabled;
        let probe = site.probe();
        let admission = if applies {
            site.breaker()
                .admit(site.name(), &settings.breaker, probe.is_some())
        } else {
            Admission::Closed
        };
        if let (Admission::Skip, Some(probe)) = (admission, probe) {
            crate::breaker::background::ensure_probing(
                site.name(),
                site.breaker(),
                probe,
                settings.timeout,
                settings.breaker,
            );
        }
        let probe = probe.filter(|_| applies);
        if applies && admission == Admission::Closed {
            site.breaker().deposit(&settings.breaker);
        }
        Guard {
            site,
            admission,
            settings: settings.breaker,
            applies,
            probe,
            timeout: settings.timeout,
        }
    }

    fn skips(self) -> bool {
        self.admission == Admission::Skip
    }

    /// The per-attempt timeout: a probe's is shorter (see
    /// [`Breaker::probe_timeout`](crate::breaker::Breaker::probe_timeout)).
    fn attempt_timeout(self, timeout: std::time::Duration) -> std::time::Duration {
        if matches!(self.admission, Admission::Probe(_)) {
            self.site.breaker().probe_timeout(timeout)
        } else {
            timeout
        }
    }

    fn success_after(self, took: std::time::Duration) {
        if self.applies {
            self.site
                .breaker()
                .on_success_after(self.site.name(), self.admission, took);
        }
    }

    fn success(self) {
        if self.applies {
            self.site
                .breaker()
                .on_success(self.site.name(), self.admission);
        }
    }

    fn failure(self) {
        if self.applies {
            self.site
                .breaker()
                .on_failure(self.site.name(), self.admission, &self.settings);
        }
        // The background probe confirms a failure (see `breaker/background.rs`).
        if let (Admission::Closed, Some(probe)) = (self.admission, self.probe) {
            crate::breaker::background::ensure_probing(
                self.site.name(),
                self.site.breaker(),
                probe,
                self.timeout,
                self.settings,
            );
        }
    }

    /// Whether a failed attempt may be retried: never a probe, not once
    /// the breaker has opened (a retry would go where calls no longer go),
    /// and only within the site's retry budget.
    fn may_retry(self) -> bool {
        let breaker = self.site.breaker();
        !self.applies
            || (!matches!(self.admission, Admission::Probe(_))
                && breaker.state() == crate::breaker::BreakerState::Closed
                && breaker.withdraw(self.site.name()))
    }
}

/// A call's failure as a `debug` event, and at most once per 10 s per site
/// as a `warn` with the number of such calls since the previous warning:
/// an outage is a few lines, not one per call.
fn warn_throttled(site: &Site, error_type: &'static str, message: &'static str) {
    if let Some(calls) = site.breaker().fallback_warning() {
        tracing::warn!(error_type, calls, "{message}");
    } else {
        tracing::debug!(error_type, "{message}");
    }
}

/// Why the async path gave up.
enum GiveUp<E> {
    /// An error the async body returned.
    Error(E),
    /// A timeout or panic the runtime observed.
    Fault(Fault),
}

impl<E: Classify> GiveUp<E> {
    fn error_type(&self) -> &'static str {
        match self {
            GiveUp::Error(error) => error_name(error),
            GiveUp::Fault(fault) => fault.runtime_fault().as_str(),
        }
    }

    /// The runtime's own fault, decided by type, never by a name.
    fn fault(&self) -> Option<RuntimeFault> {
        match self {
            GiveUp::Error(_) => None,
            GiveUp::Fault(fault) => Some(fault.runtime_fault()),
        }
    }

    fn into_error(self) -> E {
        match self {
            GiveUp::Error(error) => error,
            GiveUp::Fault(fault) => E::from_fault(fault),
        }
    }
}

/// The `error_type` of a user error: its own name, qualified when it is
/// one of the runtime's reserved names, so it never reads as a fault.
fn error_name<E: Classify>(error: &E) -> &'static str {
    user_error_name(error.error_type())
}

/// Runs the sync path on Tokio's blocking pool (inline without a runtime),
/// as call `id`; when it ends it tells `handoff`, which records the call
/// if its caller has gone.
async fn on_blocking_pool<A, T, E, S>(
    fallback: S,
    args: A,
    id: CallId,
    handoff: Arc<Handoff>,
) -> Result<Result<T, E>, Panic>
where
    A: Send + 'static,
    S: FnOnce(A) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Classify + Send + 'static,
{
    let Ok(handle) = Handle::try_current() else {
        return catch(AssertUnwindSafe(move || {
            call_id::with(id, move || fallback(args))
        }));
    };
    let fallback = move || {
        let result = catch(AssertUnwindSafe(move || {
            call_id::with(id, move || fallback(args))
        }));
        handoff.finished(match &result {
            Ok(Ok(_)) => SyncOutcome::Success,
            Ok(Err(error)) => SyncOutcome::Error(error_name(error)),
            Err(_) => SyncOutcome::Panic,
        });
        match result {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    };
    match handle.spawn_blocking(fallback).await {
        Ok(result) => Ok(result),
        Err(join) if join.is_panic() => Err(join.into_panic()),
        // Only a runtime shutting down cancels a blocking task before it starts.
        Err(_) => Err(Box::new(
            "the sync path was cancelled: the Tokio runtime is shutting down",
        )),
    }
}

/// Runs the sync path on this thread, handing the worker's other tasks away
/// where the runtime can.
fn in_place<A, T, E, S>(fallback: S, args: A) -> Result<Result<T, E>, Panic>
where
    S: FnOnce(A) -> Result<T, E>,
{
    let blocking = move || catch(AssertUnwindSafe(move || fallback(args)));
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(blocking),
        // Current-thread (or no) runtime: no other thread to hand tasks
        // to, and block_in_place would panic; block like the old code did.
        _ => blocking(),
    }
}

/// Polls `future` as call `id` (`call_id()` answers inside every poll),
/// turning a panic in any poll into `Err`.
async fn catch_unwind<F: Future>(id: CallId, future: F) -> Result<F::Output, Panic> {
    let mut future = pin!(future);
    poll_fn(move |cx| {
        match catch(AssertUnwindSafe(|| {
            call_id::with(id, || future.as_mut().poll(cx))
        })) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    })
    .await
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Whether a Tokio runtime drives this call; without one there is no timer
/// for the per-attempt timeout, so the call takes the safe sync path.
fn tokio_available() -> bool {
    static WARNED: Once = Once::new();
    // Inside a task (the common case) a thread-local read answers; only a
    // future driven by `block_on` directly needs the handle lookup.
    if tokio::task::try_id().is_some() || Handle::try_current().is_ok() {
        return true;
    }
    WARNED.call_once(|| {
        tracing::warn!("async-upload called outside a Tokio runtime: running the sync path");
    });
    false
}

/// How a sync path on the blocking pool ended, for a record written
/// after its caller went away.
#[derive(Clone, Copy, Debug)]
enum SyncOutcome {
    Success,
    Error(&'static str),
    Panic,
}

/// The handshake between a sync path on the blocking pool and its caller:
/// whichever of "the sync path finished" and "the caller went away" comes
/// second writes the record of a caller that went away, so it is written
/// once, with the real outcome. A lock, not atomics: it is taken twice per
/// call on a path that already costs a thread hop.
#[derive(Default)]
struct Handoff(Mutex<HandoffState>);

#[derive(Default)]
enum HandoffState {
    /// Both are still there.
    #[default]
    Running,
    /// The caller went away first; the sync path's end records this.
    CallerGone(Box<Recorder>),
    /// The sync path ended first.
    Finished(SyncOutcome),
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandoffState> {
        // Nothing panics under this lock; a poisoned one still holds a state.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn finished(&self, outcome: SyncOutcome) {
        let state = std::mem::replace(&mut *self.lock(), HandoffState::Finished(outcome));
        if let HandoffState::CallerGone(mut recorder) = state {
            recorder.finish_after_cancel(outcome);
        }
    }

    fn caller_gone(&self, mut recorder: Recorder) {
        let mut state = self.lock();
        if let HandoffState::Finished(outcome) = *state {
            drop(state);
            recorder.finish_after_cancel(outcome);
        } else {
            *state = HandoffState::CallerGone(Box::new(recorder));
        }
    }
}

/// Builds the call's one record: on `finish`, or, if the future is dropped
/// first, on drop as cancelled (or, with a sync path running on the
/// blocking pool, when that ends: [`Handoff`]).
struct Recorder {
    call: Call,
    /// The call's id: `call_id()` inside it, and its record's.
    id: CallId,
    /// The call's span (the async path's, at DEBUG; none on the sync
    /// path), kept here so recording fields needs no lookup of the
    /// current span.
    span: tracing::Span,
    /// The whole call is timed from here: the decision before it takes
    /// nanoseconds, and the sync path's decision needs no clock. Tokio's
    /// instant, so attempt deadlines and durations follow a paused clock.
    started: Instant,
    /// When the call ended, if the path already read the clock.
    ended: Option<Instant>,
    execution_type: ExecutionType,
    attempts: u32,
    /// The async error that sent the call to the fallback.
    cause: Option<&'static str>,
    /// The runtime's own fault in this call (see [`Recorder::note`]).
    fault: Option<RuntimeFault>,
    /// Why the call ran the sync path, once it does.
    sync_reason: Option<SyncReason>,
    /// Attempts whose outcome is unknown (timeout, panic, an error that
    /// may have reached the backend).
    ambiguous: u32,
    /// The testing scope the call was decided in: its record goes there.
    #[cfg(feature = "testing")]
    scope: Option<std::sync::Arc<crate::testing::Scope>>,
    /// Set while the sync path runs on the blocking pool.
    handoff: Option<Arc<Handoff>>,
    recorded: bool,
}

impl Recorder {
    fn new(call: Call) -> Self {
        Recorder {
            call,
            id: CallId::draw(),
            span: tracing::Span::none(),
            started: Instant::now(),
            ended: None,
            execution_type: ExecutionType::Sync,
            attempts: 0,
            cause: None,
            fault: None,
            sync_reason: None,
            ambiguous: 0,
            #[cfg(feature = "testing")]
            scope: call.scope(),
            handoff: None,
            recorded: false,
        }
    }

    /// The handshake for a sync path about to run on the blocking pool.
    fn hand_off(&mut self) -> Arc<Handoff> {
        Arc::clone(self.handoff.get_or_insert_with(Arc::default))
    }

    /// Moves the unrecorded call out of `self` (which is then done), for
    /// the sync path to record.
    fn take(&mut self) -> Recorder {
        self.recorded = true;
        Recorder {
            call: self.call,
            id: self.id,
            span: self.span.clone(),
            started: self.started,
            ended: self.ended,
            execution_type: self.execution_type,
            attempts: self.attempts,
            cause: self.cause,
            fault: self.fault,
            sync_reason: self.sync_reason,
            ambiguous: self.ambiguous,
            #[cfg(feature = "testing")]
            scope: self.scope.take(),
            handoff: None,
            recorded: false,
        }
    }

    /// Records a call whose caller went away while its sync path ran on:
    /// the sync path's real outcome, and fault `cancelled` (nobody received
    /// it).
    fn finish_after_cancel(&mut self, outcome: SyncOutcome) {
        match outcome {
            SyncOutcome::Success => {}
            SyncOutcome::Error(_) => self.cause = None,
            SyncOutcome::Panic => self.cause = Some(RuntimeFault::SyncPanic.as_str()),
        }
        self.note(RuntimeFault::Cancelled);
        let error_type = match outcome {
            SyncOutcome::Error(name) => Some(name),
            SyncOutcome::Success | SyncOutcome::Panic => self.cause,
        };
        self.emit(matches!(outcome, SyncOutcome::Success), error_type);
    }

    fn enter(&mut self, execution_type: ExecutionType) {
        self.execution_type = execution_type;
        self.span.record("execution_type", execution_type.as_str());
    }

    /// Enters a path that runs the sync code, for `reason`.
    fn enter_sync(&mut self, execution_type: ExecutionType, reason: SyncReason) {
        self.sync_reason = Some(reason);
        self.enter(execution_type);
    }

    /// Whether every async attempt times out at once (a testing scope's).
    #[cfg_attr(not(feature = "testing"), allow(clippy::unused_self))]
    fn times_out(&self) -> bool {
        #[cfg(feature = "testing")]
        if let Some(scope) = &self.scope {
            return scope.times_out();
        }
        false
    }

    fn finish<T, E: Classify>(&mut self, result: Result<T, E>) -> Result<T, E> {
        let error_type = match &result {
            Ok(_) => self.cause,
            Err(error) => Some(self.cause.unwrap_or_else(|| error_name(error))),
        };
        self.emit(result.is_ok(), error_type);
        result
    }

    /// Records the sync path's outcome; a panic there is recorded, then
    /// resumed on the caller as the old code would have panicked.
    fn finish_sync<T, E: Classify>(
        &mut self,
        outcome: Result<Result<T, E>, Panic>,
    ) -> Result<T, E> {
        match outcome {
            Ok(Ok(value)) => self.finish(Ok(value)),
            Ok(Err(error)) => {
                self.cause = None;
                self.finish(Err(error))
            }
            Err(panic) => {
                self.note(RuntimeFault::SyncPanic);
                self.emit(false, Some(RuntimeFault::SyncPanic.as_str()));
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Notes a runtime fault; an async panic is kept over any later one,
    /// because it is what makes the call critical.
    fn note(&mut self, fault: RuntimeFault) {
        if !self.fault.is_some_and(RuntimeFault::is_critical) {
            self.fault = Some(fault);
        }
    }

    fn emit(&mut self, success: bool, error_type: Option<&'static str>) {
        self.recorded = true;
        // Once per call, not per attempt.
        if self.attempts > 0 {
            self.span.record("attempts", self.attempts);
        }
        let site = self.call.site;
        let record = UploadRecord {
            ts: SystemTime::now(),
            site: site.name().into(),
            execution_type: self.execution_type,
            success,
            duration_ms: self
                .ended
                .unwrap_or_else(Instant::now)
                .saturating_duration_since(self.started)
                .as_secs_f64()
                * 1000.0,
            attempts: self.attempts,
            error_type: error_type.map(Into::into),
            bytes: self.call.bytes,
            fault: self.fault,
            call_id: Some(self.id),
            sync_reason: self.sync_reason,
            ambiguous_attempts: self.ambiguous,
        };
        self.deliver(&record);
        tracing::debug!(
            success,
            duration_ms = record.duration_ms,
            attempts = record.attempts,
            error_type,
            fault = self.fault.map(RuntimeFault::as_str),
            "async upload call recorded",
        );
    }
}

impl Recorder {
    /// Hands the record to the aggregator and the sinks, or only to the
    /// testing scope the call was made in.
    fn deliver(&self, record: &UploadRecord) {
        #[cfg(feature = "testing")]
        if let Some(scope) = &self.scope {
            scope.push(record.clone());
            return;
        }
        self.call.site.stats().record(record);
        metrics::dispatch(record);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.recorded {
            if let Some(handoff) = self.handoff.take() {
                tracing::debug!("async upload call cancelled by its caller; its sync path runs on");
                handoff.caller_gone(self.take());
                return;
            }
            tracing::debug!("async upload call cancelled by its caller");
            self.note(RuntimeFault::Cancelled);
            self.emit(false, Some(RuntimeFault::Cancelled.as_str()));
        }
    }
}
