//! The record's `call_id`, `sync_reason` and `ambiguous_attempts`, as the
//! state machine fills them: one id seen by every attempt, the fallback and
//! the record; why each sync path ran; which attempts left their outcome
//! unknown.

use async_upload_test_support::records as support;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::execute::{execute, execute_in_place};
use async_upload_runtime::metrics::{ExecutionType, UploadRecord};
use async_upload_runtime::{call_id, CallId, Site, SyncReason};
use support::{enable_async, Records};

fn overrides(rollout: f64) -> SiteOverrides {
    SiteOverrides {
        rollout: Some(rollout),
        ..SiteOverrides::default()
    }
}

/// Calls `site` once through `execute`: the attempts return `errors` in
/// turn (then `Ok`), the fallback `Ok`; every id the call's code saw.
async fn call(site: &'static Site, errors: Vec<io::ErrorKind>) -> (UploadRecord, Vec<CallId>) {
    let records = Records::of(site.name());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(errors.into_iter()));
    let (in_attempt, in_fallback) = (Arc::clone(&seen), Arc::clone(&seen));
    let result = execute(
        site.call(&"key"),
        (),
        move |()| {
            let (seen, errors) = (Arc::clone(&in_attempt), Arc::clone(&errors));
            async move {
                seen.lock()
                    .unwrap()
                    .push(call_id().expect("inside the call"));
                match errors.lock().unwrap().next() {
                    Some(kind) => Err(io::Error::from(kind)),
                    None => Ok(()),
                }
            }
        },
        move |()| {
            in_fallback
                .lock()
                .unwrap()
                .push(call_id().expect("inside the fallback"));
            Ok(())
        },
    )
    .await;
    assert!(result.is_ok());
    let ids = seen.lock().unwrap().clone();
    (records.only(), ids)
}

static IDS: Site = Site::new("fields_ids").with_backoff(Duration::from_millis(1));

#[tokio::test]
async fn every_attempt_and_the_fallback_see_the_call_id_the_record_carries() {
    enable_async();
    handle().set_site(IDS.name(), overrides(100.0)).unwrap();
    assert_eq!(call_id(), None, "outside any call");
    let reset = io::ErrorKind::ConnectionReset;
    let (record, ids) = call(&IDS, vec![reset, reset, reset]).await;
    assert_eq!(record.execution_type, ExecutionType::SyncFallback);
    assert_eq!(ids.len(), 4, "three attempts and the fallback");
    let id = record.call_id.expect("the record carries the id");
    assert!(ids.iter().all(|seen| *seen == id), "{ids:?} vs {id}");
    assert_eq!(call_id(), None, "restored after the call");

    let (again, _) = call(&IDS, vec![]).await;
    assert_ne!(again.call_id, record.call_id, "a new id for every call");
}

static IN_PLACE: Site = Site::new("fields_in_place");

#[tokio::test]
async fn the_sync_path_in_place_sees_the_call_id() {
    let records = Records::of(IN_PLACE.name());
    let borrowed = String::from("borrowed");
    let seen = execute_in_place(
        IN_PLACE.call(&"key"),
        (&borrowed,),
        |_| async { Ok::<_, io::Error>(None) },
        |(_,)| Ok(call_id()),
    )
    .await
    .unwrap();
    let record = records.only();
    // Disabled or not enrolled, as other tests of this binary left the flag.
    assert_eq!(record.execution_type, ExecutionType::Sync);
    assert_eq!(seen, record.call_id);
    assert!(seen.is_some());
}

static DISABLED: Site = Site::new("fields_disabled");
static ROLLED_BACK: Site = Site::new("fields_rolled_back");
static NOT_ENROLLED: Site = Site::new("fields_not_enrolled");
static GAVE_UP: Site = Site::new("fields_gave_up").with_retries(0);
static SERVED: Site = Site::new("fields_served");

#[tokio::test]
async fn each_sync_path_records_why_and_the_async_path_records_none() {
    enable_async();
    handle()
        .set_site(
            DISABLED.name(),
            SiteOverrides {
                enabled: Some(false),
                ..overrides(100.0)
            },
        )
        .unwrap();
    handle()
        .set_site(ROLLED_BACK.name(), overrides(100.0))
        .unwrap();
    handle().roll_back(ROLLED_BACK.name(), "test");
    handle()
        .set_site(NOT_ENROLLED.name(), overrides(0.0))
        .unwrap();
    handle().set_site(GAVE_UP.name(), overrides(100.0)).unwrap();
    handle().set_site(SERVED.name(), overrides(100.0)).unwrap();

    let unsupported = vec![io::ErrorKind::Unsupported];
    for (site, errors, execution_type, reason) in [
        (
            &DISABLED,
            vec![],
            ExecutionType::Sync,
            Some(SyncReason::Disabled),
        ),
        (
            &ROLLED_BACK,
            vec![],
            ExecutionType::Sync,
            Some(SyncReason::RolledBack),
        ),
        (
            &NOT_ENROLLED,
            vec![],
            ExecutionType::Sync,
            Some(SyncReason::NotEnrolled),
        ),
        (
            &GAVE_UP,
            unsupported,
            ExecutionType::SyncFallback,
            Some(SyncReason::AsyncGaveUp),
        ),
        (&SERVED, vec![], ExecutionType::Async, None),
    ] {
        let (record, _) = call(site, errors).await;
        assert_eq!(
            (record.execution_type, record.sync_reason),
            (execution_type, reason),
            "{}",
            site.name()
        );
    }
}

static BREAKER: Site = Site::new("fields_breaker").with_retries(0);

#[tokio::test]
async fn a_call_the_open_breaker_sends_to_sync_says_so() {
    enable_async();
    handle().set_site(BREAKER.name(), overrides(100.0)).unwrap();
    // Every attempt falls back: 10 failed attempts in a row open the breaker.
    let mut reasons = Vec::new();
    for _ in 0..20 {
        let (record, _) = call(&BREAKER, vec![io::ErrorKind::Unsupported]).await;
        reasons.push((record.attempts, record.sync_reason));
    }
    assert!(
        reasons.contains(&(0, Some(SyncReason::BreakerOpen))),
        "the breaker never skipped a call: {reasons:?}"
    );
    assert!(reasons.contains(&(1, Some(SyncReason::AsyncGaveUp))));
}

static NO_RUNTIME: Site = Site::new("fields_no_runtime");

#[test]
fn an_enrolled_call_without_a_tokio_runtime_records_no_runtime() {
    enable_async();
    handle()
        .set_site(NO_RUNTIME.name(), overrides(100.0))
        .unwrap();
    let records = Records::of(NO_RUNTIME.name());
    let future = execute(
        NO_RUNTIME.call(&"key"),
        (),
        |()| async { Ok::<_, io::Error>(()) },
        |()| Ok(()),
    );
    // Polled by hand: no runtime, so the sync path runs inline and is ready.
    let mut future = pin!(future);
    let polled = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    assert!(matches!(polled, Poll::Ready(Ok(()))));
    let record = records.only();
    assert_eq!(record.execution_type, ExecutionType::Sync);
    assert_eq!(record.sync_reason, Some(SyncReason::NoRuntime));
}

static AMBIGUOUS: Site = Site::new("fields_ambiguous")
    .with_retries(3)
    .with_backoff(Duration::from_millis(1));

#[tokio::test]
async fn attempts_that_may_have_landed_are_counted_as_ambiguous() {
    enable_async();
    // Every attempt counted: the breaker and retry budget (whose bank
    // starts empty) off, so each call makes all its attempts.
    let unbudgeted = SiteOverrides {
        breaker: Some(false),
        ..overrides(100.0)
    };
    handle().set_site(AMBIGUOUS.name(), unbudgeted).unwrap();
    use io::ErrorKind::{BrokenPipe, ConnectionRefused, ConnectionReset, TimedOut};
    for (errors, ambiguous) in [
        (vec![], 0),
        // Refused: nothing was sent.
        (vec![ConnectionRefused, ConnectionRefused], 0),
        (vec![ConnectionReset, ConnectionRefused, BrokenPipe], 2),
        (vec![TimedOut, TimedOut, TimedOut, TimedOut], 4),
    ] {
        let (record, _) = call(&AMBIGUOUS, errors.clone()).await;
        assert_eq!(
            record.ambiguous_attempts, ambiguous,
            "{errors:?}: {record:?}"
        );
    }
}

static TIMES_OUT: Site = Site::new("fields_times_out")
    .with_retries(1)
    .with_timeout(Duration::from_millis(50))
    .with_backoff(Duration::from_millis(1));
static PANICS: Site = Site::new("fields_panics");

#[tokio::test(start_paused = true)]
async fn timeouts_and_panics_are_ambiguous() {
    enable_async();
    handle()
        .set_site(TIMES_OUT.name(), overrides(100.0))
        .unwrap();
    handle().set_site(PANICS.name(), overrides(100.0)).unwrap();
    let records = Records::of(TIMES_OUT.name());
    execute(
        TIMES_OUT.call(&"key"),
        (),
        |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, io::Error>(())
        },
        |()| Ok(()),
    )
    .await
    .unwrap();
    let record = records.only();
    assert_eq!((record.attempts, record.ambiguous_attempts), (2, 2));
    assert_eq!(record.sync_reason, Some(SyncReason::AsyncGaveUp));

    let records = Records::of(PANICS.name());
    execute(
        PANICS.call(&"key"),
        (),
        |()| async { panic!("after the upload landed") },
        |()| Ok::<_, io::Error>(()),
    )
    .await
    .unwrap();
    let record = records.only();
    assert!(record.is_critical());
    assert_eq!((record.attempts, record.ambiguous_attempts), (1, 1));
}
