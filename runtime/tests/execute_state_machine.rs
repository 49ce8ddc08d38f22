//! The per-call state machine, path by path: each test drives one
//! transition and checks the caller's result and the call's one record.

use async_upload_test_support::records as support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::execute::{execute, execute_in_place};
use async_upload_runtime::metrics::{global, ExecutionType};
use async_upload_runtime::{Path, Site, SyncReason};
use support::{enable_async, roll_out, Records, TestError};

const FAST: Duration = Duration::from_millis(1);

/// What a scripted call did: its result, the attempts the async path saw,
/// whether the sync path ran, and the call's one record.
#[derive(Debug, PartialEq)]
struct Scripted {
    result: Result<u32, TestError>,
    attempts: u32,
    synced: bool,
    execution_type: ExecutionType,
    success: bool,
    recorded_attempts: u32,
    error_type: Option<String>,
}

/// Runs `site` with an async path that returns `script[n]` on attempt `n`
/// (the last entry from then on) and a sync path returning `sync`.
async fn run_scripted(
    site: &'static Site,
    script: Vec<Result<u32, TestError>>,
    sync: Result<u32, TestError>,
) -> Scripted {
    let records = Records::of(site.name());
    let attempts = Arc::new(AtomicU32::new(0));
    let synced = Arc::new(AtomicBool::new(false));
    let (a, s) = (Arc::clone(&attempts), Arc::clone(&synced));
    let result = execute(
        site.call(&"key"),
        (script,),
        |(script,)| {
            let n = a.fetch_add(1, Ordering::SeqCst) as usize;
            let outcome = script[n.min(script.len() - 1)].clone();
            async move { outcome }
        },
        move |_| {
            s.store(true, Ordering::SeqCst);
            sync
        },
    )
    .await;
    let record = records.only();
    Scripted {
        result,
        attempts: attempts.load(Ordering::SeqCst),
        synced: synced.load(Ordering::SeqCst),
        execution_type: record.execution_type,
        success: record.success,
        recorded_attempts: record.attempts,
        error_type: record.error_type.map(String::from),
    }
}

/// The expected `Scripted`, field by field, in one line per test.
fn expect(
    result: Result<u32, TestError>,
    attempts: u32,
    synced: bool,
    execution_type: ExecutionType,
    error_type: Option<&str>,
) -> Scripted {
    Scripted {
        success: result.is_ok(),
        result,
        attempts,
        synced,
        execution_type,
        recorded_attempts: attempts,
        error_type: error_type.map(String::from),
    }
}

/// Everything enrolled, fallback off.
fn without_fallback(site: &Site) {
    handle()
        .set_site(
            site.name(),
            SiteOverrides {
                rollout: Some(100.0),
                fallback: Some(false),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
}

#[tokio::test]
async fn disabled_site_runs_sync_and_records_sync() {
    static SITE: Site = Site::new("sm_disabled");
    enable_async();
    handle()
        .set_site(
            SITE.name(),
            SiteOverrides {
                enabled: Some(false),
                rollout: Some(100.0),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
    assert_eq!(SITE.call(&"key").path(), Path::Sync(SyncReason::Disabled));
    let outcome = run_scripted(&SITE, vec![Ok(1)], Ok(7)).await;
    assert_eq!(outcome, expect(Ok(7), 0, true, ExecutionType::Sync, None));
}

#[tokio::test]
async fn not_enrolled_key_runs_sync() {
    static SITE: Site = Site::new("sm_not_enrolled");
    enable_async();
    roll_out(SITE.name(), 0.0);
    assert_eq!(
        SITE.call(&"key").path(),
        Path::Sync(SyncReason::NotEnrolled)
    );
    let outcome = run_scripted(&SITE, vec![Ok(1)], Ok(7)).await;
    assert_eq!(outcome, expect(Ok(7), 0, true, ExecutionType::Sync, None));
}

#[tokio::test]
async fn rolled_back_site_runs_sync_until_cleared() {
    static SITE: Site = Site::new("sm_rolled_back");
    enable_async();
    roll_out(SITE.name(), 100.0);
    handle().roll_back(SITE.name(), "test");
    assert_eq!(SITE.call(&"key").path(), Path::Sync(SyncReason::RolledBack));
    let outcome = run_scripted(&SITE, vec![Ok(1)], Ok(7)).await;
    assert_eq!(outcome, expect(Ok(7), 0, true, ExecutionType::Sync, None));
    handle().clear_rollback(SITE.name());
    assert!(SITE.call(&"key").runs_async());
}

#[tokio::test]
async fn first_try_success_records_async_with_one_attempt() {
    static SITE: Site = Site::new("sm_first_try");
    enable_async();
    roll_out(SITE.name(), 100.0);
    let outcome = run_scripted(&SITE, vec![Ok(1)], Ok(7)).await;
    assert_eq!(outcome, expect(Ok(1), 1, false, ExecutionType::Async, None));
    let summary = global().summary(SITE.name(), ExecutionType::Async);
    assert_eq!((summary.count, summary.successes), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn retries_two_means_three_attempts_then_success() {
    static SITE: Site = Site::new("sm_retry_success")
        .with_retries(2)
        .with_backoff(FAST);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let script = vec![Err(TestError::Transient), Err(TestError::Transient), Ok(3)];
    let outcome = run_scripted(&SITE, script, Ok(7)).await;
    assert_eq!(outcome, expect(Ok(3), 3, false, ExecutionType::Async, None));
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_fall_back_to_sync() {
    static SITE: Site = Site::new("sm_retry_exhausted")
        .with_retries(2)
        .with_backoff(FAST);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let outcome = run_scripted(&SITE, vec![Err(TestError::Transient)], Ok(7)).await;
    let fallback = ExecutionType::SyncFallback;
    assert_eq!(outcome, expect(Ok(7), 3, true, fallback, Some("transient")));
}

#[tokio::test(start_paused = true)]
async fn fallback_class_skips_remaining_retries() {
    static SITE: Site = Site::new("sm_fallback_class")
        .with_retries(5)
        .with_backoff(FAST);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let outcome = run_scripted(&SITE, vec![Err(TestError::Unsupported)], Ok(7)).await;
    let fallback = ExecutionType::SyncFallback;
    assert_eq!(
        outcome,
        expect(Ok(7), 1, true, fallback, Some("unsupported"))
    );
}

#[tokio::test(start_paused = true)]
async fn fail_class_returns_the_error_without_fallback() {
    static SITE: Site = Site::new("sm_fail_class")
        .with_retries(5)
        .with_backoff(FAST);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let outcome = run_scripted(&SITE, vec![Err(TestError::Invalid)], Ok(7)).await;
    let failed = Err(TestError::Invalid);
    assert_eq!(
        outcome,
        expect(failed, 1, false, ExecutionType::Async, Some("invalid"))
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_off_returns_the_async_error() {
    static SITE: Site = Site::new("sm_fallback_off")
        .with_retries(1)
        .with_backoff(FAST);
    enable_async();
    without_fallback(&SITE);
    let outcome = run_scripted(&SITE, vec![Err(TestError::Transient)], Ok(7)).await;
    let failed = Err(TestError::Transient);
    assert_eq!(
        outcome,
        expect(failed, 2, false, ExecutionType::Async, Some("transient"))
    );
}

#[tokio::test(start_paused = true)]
async fn each_attempt_times_out_then_falls_back_within_the_budget() {
    static SITE: Site = Site::new("sm_timeout")
        .with_retries(2)
        .with_timeout(Duration::from_secs(2))
        .with_backoff(Duration::from_millis(100));
    enable_async();
    roll_out(SITE.name(), 100.0);
    let records = Records::of(SITE.name());
    let attempts = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let result: Result<u32, TestError> = execute_in_place(
        SITE.call(&"key"),
        (),
        |()| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(1)
            }
        },
        |()| Ok(7),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(result, Ok(7));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    // Three 2 s attempts plus at most 100 ms + 200 ms of backoff.
    assert!(elapsed >= Duration::from_secs(6), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(6300), "{elapsed:?}");
    let record = records.only();
    assert_eq!(record.execution_type, ExecutionType::SyncFallback);
    assert_eq!(record.error_type.as_deref(), Some("timeout"));
    assert_eq!(record.attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn timeout_with_fallback_off_becomes_the_users_error_type() {
    static SITE: Site = Site::new("sm_timeout_no_fallback")
        .with_retries(0)
        .with_timeout(Duration::from_millis(50));
    enable_async();
    without_fallback(&SITE);
    let result: Result<u32, TestError> = execute_in_place(
        SITE.call(&"key"),
        (),
        |()| std::future::pending(),
        |()| Ok(7),
    )
    .await;
    match result {
        Err(TestError::Fault(message)) => assert!(message.contains("timed out"), "{message}"),
        other => panic!("expected a timeout fault, got {other:?}"),
    }
}

#[tokio::test]
async fn panic_in_async_body_is_critical_and_falls_back() {
    static SITE: Site = Site::new("sm_panic").with_retries(2);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let records = Records::of(SITE.name());
    let attempts = AtomicU32::new(0);
    let result: Result<u32, TestError> = execute_in_place(
        SITE.call(&"key"),
        (),
        |()| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::task::yield_now().await;
                panic!("bug in the new path");
            }
        },
        |()| Ok(7),
    )
    .await;
    assert_eq!(result, Ok(7));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "a panic is not retried");
    let record = records.only();
    assert_eq!(record.execution_type, ExecutionType::SyncFallback);
    assert!(record.is_critical());
    assert_eq!(
        global()
            .summary(SITE.name(), ExecutionType::SyncFallback)
            .critical,
        1
    );
}

#[tokio::test]
async fn panic_in_sync_path_is_recorded_then_resumed() {
    static SITE: Site = Site::new("sm_sync_panic");
    let records = Records::of(SITE.name());
    let call = tokio::spawn(execute(
        SITE.call(&"key"),
        (),
        |()| async { Ok::<u32, TestError>(1) },
        |()| panic!("old code panics"),
    ));
    let join = call.await.unwrap_err();
    assert!(join.is_panic());
    let record = records.only();
    assert_eq!(record.execution_type, ExecutionType::Sync);
    assert!(!record.success);
    assert_eq!(record.error_type.as_deref(), Some("sync_panic"));
}

/// Enters `runtime` (calls polled by hand find it) and enrols every key of `site`.
fn enrolled_in<'r>(
    runtime: &'r tokio::runtime::Runtime,
    site: &Site,
) -> tokio::runtime::EnterGuard<'r> {
    let guard = runtime.enter();
    enable_async();
    roll_out(site.name(), 100.0);
    guard
}

#[test]
fn dropped_future_leaves_one_cancelled_record_and_never_falls_back() {
    static SITE: Site = Site::new("sm_cancelled");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = enrolled_in(&runtime, &SITE);
    let records = Records::of(SITE.name());
    let synced = AtomicBool::new(false);
    {
        let future = execute_in_place(
            SITE.call(&"key"),
            (),
            |()| std::future::pending::<Result<u32, TestError>>(),
            |()| {
                synced.store(true, Ordering::SeqCst);
                Ok(7)
            },
        );
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        assert!(records.all().is_empty(), "no record before the call ends");
    }
    let record = records.only();
    assert!(record.is_cancelled());
    assert_eq!(record.execution_type, ExecutionType::Async);
    assert_eq!(record.attempts, 1);
    assert!(!synced.load(Ordering::SeqCst));
    assert_eq!(
        global()
            .summary(SITE.name(), ExecutionType::Async)
            .cancelled,
        1
    );
}

/// Regression (issue 18): a caller that dropped the future while the
/// fallback ran on the blocking pool got a record `success=false,
/// fault=cancelled` at once, although the blocking upload carried on. The
/// record now waits for the fallback and carries its real outcome, with
/// the cancellation noted.
#[test]
fn a_dropped_call_whose_fallback_runs_on_is_recorded_when_it_ends() {
    static SITE: Site = Site::new("sm_cancelled_in_fallback").with_retries(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = enrolled_in(&runtime, &SITE);
    for (sync, success, error_type) in [
        (Ok(7), true, Some("transient")),
        (Err(TestError::Invalid), false, Some("invalid")),
    ] {
        let records = Records::of(SITE.name());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        {
            let future = execute(
                SITE.call(&"key"),
                (),
                |()| async { Err::<u32, _>(TestError::Transient) },
                move |()| {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    done_tx.send(()).unwrap();
                    sync
                },
            );
            let mut future = Box::pin(future);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(future.as_mut().poll(&mut cx).is_pending());
            started_rx.recv().unwrap();
            // The caller goes away while the fallback runs.
        }
        assert!(
            records.all().is_empty(),
            "recorded before the fallback ended"
        );
        release_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while records.all().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let all = records.all();
        assert_eq!(all.len(), 1, "{all:#?}");
        let record = &all[0];
        assert_eq!(record.execution_type, ExecutionType::SyncFallback);
        assert_eq!(record.success, success, "{record:?}");
        assert_eq!(
            record.fault,
            Some(async_upload_runtime::metrics::RuntimeFault::Cancelled)
        );
        assert_eq!(record.error_type.as_deref(), error_type);
    }
}

#[test]
fn outside_a_tokio_runtime_the_call_runs_sync_inline() {
    static SITE: Site = Site::new("sm_no_runtime");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        enable_async();
        roll_out(SITE.name(), 100.0);
    });
    let records = Records::of(SITE.name());
    // A foreign executor: poll by hand with no Tokio context.
    let future = execute(
        SITE.call(&"key"),
        (),
        |()| async { Ok::<u32, TestError>(1) },
        |()| Ok(7),
    );
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(7)));
    assert_eq!(records.only().execution_type, ExecutionType::Sync);
}

#[tokio::test]
async fn bytes_are_recorded_with_the_call() {
    static SITE: Site = Site::new("sm_bytes");
    let records = Records::of(SITE.name());
    let data = vec![0_u8; 1234];
    let result = execute(
        SITE.call(&"key").with_bytes(data.len()),
        (data,),
        |(d,)| std::future::ready(Ok::<usize, TestError>(d.len())),
        |(d,)| Ok(d.len()),
    )
    .await;
    assert_eq!(result, Ok(1234));
    assert_eq!(records.only().bytes, Some(1234));
    assert_eq!(
        global().summary(SITE.name(), ExecutionType::Sync).bytes,
        1234
    );
}

#[tokio::test(start_paused = true)]
async fn a_lent_mut_borrow_comes_back_for_the_fallback_after_a_timeout() {
    use async_upload_runtime::execute::Lend;
    static SITE: Site = Site::new("sm_lend")
        .with_retries(0)
        .with_timeout(Duration::from_millis(10));
    enable_async();
    roll_out(SITE.name(), 100.0);
    // Spawned: the future over the borrow is `Send`.
    let handle = tokio::spawn(async {
        let mut out = Vec::new();
        let lend = Lend::new(&mut out);
        let result: Result<usize, TestError> = execute_in_place(
            SITE.call(&"k"),
            (&lend,),
            |(lend,)| {
                let lend: &Lend<'_, Vec<u8>> = lend;
                async move {
                    let mut out = lend.lend();
                    out.push(1);
                    std::future::pending::<()>().await;
                    Ok(0)
                }
            },
            |(lend,)| {
                let out = lend.take();
                out.push(2);
                Ok(out.len())
            },
        )
        .await;
        // `lend` is not used past here, so `out` is free again.
        (result, out)
    });
    let (result, out) = handle.await.unwrap();
    assert_eq!(result, Ok(2));
    assert_eq!(
        out,
        [1, 2],
        "the attempt's write stays, then the fallback's"
    );
}
