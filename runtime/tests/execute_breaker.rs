//! The circuit breaker and the retry budget through `execute`, on Tokio's
//! paused clock, at 100 % rollout: a black-holed backend opens the breaker,
//! enrolled calls then skip the async path (only probes reach it), recovery
//! closes it; a backend failing 2 % of calls never opens it; retries stay
//! within the budget. Every call leaves one record.
//!
//! The figures: `cargo test -p async-upload-runtime --test execute_breaker -- --nocapture`.

use async_upload_test_support::rank;
use async_upload_test_support::records as support;

use std::future::{pending, ready};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use async_upload_runtime::config::{handle, BreakerState, SiteOverrides};
use async_upload_runtime::execute::execute_in_place;
use async_upload_runtime::metrics::{ExecutionType, RuntimeFault, UploadRecord};
use async_upload_runtime::Site;
use tokio::time::Instant;

use support::{enable_async, Records, TestError};

fn configure(site: &str, overrides: SiteOverrides) {
    enable_async();
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: Some(100.0),
                ..overrides
            },
        )
        .unwrap();
}

/// A backend the test switches between healthy and black-holed (accepts
/// and never answers), counting the requests that reach it.
#[derive(Default)]
struct Backend {
    down: AtomicBool,
    requests: AtomicU32,
}

impl Backend {
    async fn call(&self) -> Result<u32, TestError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            pending().await
        } else {
            Ok(1)
        }
    }
}

async fn call(site: &'static Site, backend: &Backend) -> Result<u32, TestError> {
    execute_in_place(site.call_unkeyed(), (), |()| backend.call(), |()| Ok(2)).await
}

/// One call whose attempts fail transiently (a reset connection) while
/// `fail` says so; the sync path answers 2.
async fn call_failing(
    site: &'static Site,
    mut fail: impl FnMut() -> bool,
) -> Result<u32, TestError> {
    execute_in_place(
        site.call_unkeyed(),
        (),
        |()| {
            ready(if fail() {
                Err(TestError::Transient)
            } else {
                Ok(1)
            })
        },
        |()| Ok(2),
    )
    .await
}

/// The `q` quantile of `values` (nearest rank).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    rank::nearest_rank(values, q)
}

#[tokio::test(start_paused = true)]
async fn a_black_holed_backend_opens_the_breaker_and_recovery_closes_it() {
    static SITE: Site = Site::new("breaker_black_hole")
        .with_timeout(Duration::from_millis(200))
        .with_retries(2)
        .with_backoff(Duration::from_millis(10));
    configure(SITE.name(), SiteOverrides::default());
    let records = Records::of(SITE.name());
    let backend = Backend::default();
    let every = Duration::from_millis(20); // 50 calls/s
    let mut calls = 0_u32;

    // Healthy: 5 s of async calls.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert_eq!(call(&SITE, &backend).await, Ok(1));
        calls += 1;
        tokio::time::sleep(every).await;
    }
    assert_eq!(SITE.breaker_state(), BreakerState::Closed);

    // A 20 s outage. A call's duration is its own record's.
    backend.down.store(true, Ordering::SeqCst);
    let outage = Instant::now();
    let requests_before = backend.requests.load(Ordering::SeqCst);
    let records_before = records.all().len();
    let mut opened_after = None;
    while outage.elapsed() < Duration::from_secs(20) {
        assert_eq!(
            call(&SITE, &backend).await,
            Ok(2),
            "the fallback carries it"
        );
        calls += 1;
        if opened_after.is_none() && SITE.breaker_state() != BreakerState::Closed {
            opened_after = Some(outage.elapsed());
        }
        tokio::time::sleep(every).await;
    }
    let opened_after = opened_after.expect("the breaker opened");
    let during: Vec<UploadRecord> = records.all()[records_before..].to_vec();
    let requests = backend.requests.load(Ordering::SeqCst) - requests_before;

    // Recovery: the next probe closes it.
    backend.down.store(false, Ordering::SeqCst);
    let recovery = Instant::now();
    let mut recovered_after = None;
    while recovery.elapsed() < Duration::from_secs(30) {
        call(&SITE, &backend).await.unwrap();
        calls += 1;
        if recovered_after.is_none() && SITE.breaker_state() == BreakerState::Closed {
            recovered_after = Some(recovery.elapsed());
        }
        tokio::time::sleep(every).await;
    }
    let recovered_after = recovered_after.expect("the breaker closed");

    let all = records.all();
    assert_eq!(all.len(), calls as usize, "one record per call");
    let skipped: Vec<_> = during
        .iter()
        .filter(|r| r.fault == Some(RuntimeFault::BreakerOpen))
        .collect();
    assert!(skipped.iter().all(|r| {
        r.execution_type == ExecutionType::SyncFallback
            && r.attempts == 0
            && r.success
            && r.error_type.as_deref() == Some("breaker_open")
    }));
    // While open, the only async attempts are probes: one attempt each.
    let first_skip = during
        .iter()
        .position(|r| r.fault == Some(RuntimeFault::BreakerOpen))
        .unwrap();
    let probes: Vec<_> = during[first_skip..]
        .iter()
        .filter(|r| r.attempts > 0)
        .collect();
    assert!(probes.iter().all(|r| r.attempts == 1), "{probes:?}");
    // Cool-downs 1, 2, 4, 8 s, then 8 s: at most 6 probes in 20 s.
    assert!(probes.len() <= 6, "{} probes", probes.len());

    // The figures (simulated time; the sync path itself takes none here).
    #[allow(clippy::cast_precision_loss)]
    let per_call = f64::from(requests) / during.len() as f64;
    let mut late: Vec<f64> = during
        .iter()
        .skip((1000 / every.as_millis()) as usize)
        .map(|r| r.duration_ms)
        .collect();
    let p99 = quantile(&mut late, 0.99);
    println!(
        "black hole (timeout 0.2 s, 2 retries, 50 calls/s, 20 s): opened after {:.2} s; \
         {requests} backend requests for {} calls = {per_call:.3} per call; \
         p99 from 1 s after the start {p99:.1} ms; {} probes; closed {:.2} s after recovery",
        opened_after.as_secs_f64(),
        during.len(),
        probes.len(),
        recovered_after.as_secs_f64(),
    );
    assert!(per_call <= 0.2, "{per_call} requests per call");
    assert!(recovered_after <= Duration::from_secs(15));
    assert!(p99 <= 10.0, "p99 {p99} ms with a sync path of 0 ms");
    let last = all.last().unwrap();
    assert_eq!(last.execution_type, ExecutionType::Async);
}

#[tokio::test(start_paused = true)]
async fn two_percent_random_failures_never_open_it_in_ten_minutes() {
    static SITE: Site = Site::new("breaker_two_percent")
        .with_timeout(Duration::from_millis(200))
        .with_retries(2)
        .with_backoff(Duration::from_millis(10));
    configure(SITE.name(), SiteOverrides::default());
    let records = Records::of(SITE.name());
    let mut rng = fastrand::Rng::with_seed(13);
    let failures = AtomicU32::new(0);
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_secs(600) {
        let fail = rng.f64() < 0.02;
        // Each attempt of a failing call fails.
        let result = call_failing(&SITE, || {
            if fail {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            fail
        })
        .await;
        assert!(result.is_ok());
        calls += 1;
        assert_eq!(
            SITE.breaker_state(),
            BreakerState::Closed,
            "after {calls} calls"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = records.all();
    assert_eq!(all.len(), calls);
    assert!(all
        .iter()
        .all(|r| r.fault != Some(RuntimeFault::BreakerOpen)));
    println!(
        "2 % failing calls: {calls} calls over 600 s, {} failed attempts, breaker never opened",
        failures.load(Ordering::Relaxed)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stay_within_the_budget() {
    static SITE: Site = Site::new("breaker_budget")
        .with_timeout(Duration::from_millis(200))
        .with_retries(2)
        .with_backoff(Duration::from_millis(1));
    configure(SITE.name(), SiteOverrides::default());
    let records = Records::of(SITE.name());
    let attempts = AtomicU32::new(0);
    let calls = 1000_u32;
    for i in 0..calls {
        // Three calls in ten fail their first attempt: below the breaker's
        // threshold, but 30 % retries without a budget.
        let first = AtomicBool::new(true);
        let result = call_failing(&SITE, || {
            attempts.fetch_add(1, Ordering::Relaxed);
            first.swap(false, Ordering::Relaxed) && i % 10 < 3
        })
        .await;
        assert!(result.is_ok());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(SITE.breaker_state(), BreakerState::Closed);
    let retries = attempts.load(Ordering::Relaxed) - calls;
    // 20 % of 1000 calls (the bank starts empty), 1 per second over 10 s.
    println!("retry budget: {retries} retries for {calls} calls wanting 300");
    assert!((200..=230).contains(&retries), "{retries} retries");
    let all = records.all();
    assert_eq!(all.len(), calls as usize);
    let fell_back = all
        .iter()
        .filter(|r| r.execution_type == ExecutionType::SyncFallback)
        .count();
    assert_eq!(fell_back as u32 + retries, 300);
}

#[tokio::test(start_paused = true)]
async fn turned_off_the_breaker_never_skips() {
    static SITE: Site = Site::new("breaker_off")
        .with_timeout(Duration::from_millis(200))
        .with_retries(0);
    configure(
        SITE.name(),
        SiteOverrides {
            breaker: Some(false),
            ..SiteOverrides::default()
        },
    );
    assert!(!SITE.settings().breaker.enabled);
    let backend = Backend::default();
    backend.down.store(true, Ordering::SeqCst);
    for _ in 0..50 {
        assert_eq!(call(&SITE, &backend).await, Ok(2));
    }
    assert_eq!(SITE.breaker_state(), BreakerState::Closed);
    assert_eq!(backend.requests.load(Ordering::SeqCst), 50);
}

/// Issue 19: without a `probe` function the half-open probe is a real call,
/// under a timeout derived from recent successes (`max(4 × p99, 50 ms)`,
/// capped by `timeout`), so in a black-hole outage the probe's caller waits
/// about 50 ms, not the site's 200 ms timeout.
#[tokio::test(start_paused = true)]
async fn a_probe_that_is_a_real_call_times_out_early() {
    static SITE: Site = Site::new("breaker_probe_timeout")
        .with_retries(2)
        .with_timeout(Duration::from_millis(200))
        .with_backoff(Duration::from_millis(1));
    configure(SITE.name(), SiteOverrides::default());
    let backend = Backend::default();
    // Healthy calls that answer in 1 ms: p99 ~1 ms, so 4 × p99 is under the floor.
    for _ in 0..200 {
        let started = Instant::now();
        let result = execute_in_place(
            SITE.call_unkeyed(),
            (),
            |()| async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                backend.call().await
            },
            |()| Ok(2),
        )
        .await;
        assert_eq!(result, Ok(1));
        assert!(started.elapsed() < Duration::from_millis(5));
    }
    backend.down.store(true, Ordering::SeqCst);
    let records = Records::of(SITE.name());
    while SITE.breaker_state() != BreakerState::Open {
        assert_eq!(call(&SITE, &backend).await, Ok(2));
    }
    // Calls while open skip; after the cool-down one is the probe.
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        assert_eq!(call(&SITE, &backend).await, Ok(2));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let probes: Vec<UploadRecord> = records
        .all()
        .into_iter()
        .skip_while(|r| r.fault != Some(RuntimeFault::BreakerOpen))
        .filter(|r| r.attempts > 0)
        .collect();
    assert!(!probes.is_empty(), "no probe in 5 s");
    for probe in &probes {
        assert_eq!(probe.attempts, 1, "a probe is never retried");
        assert!(
            (50.0..60.0).contains(&probe.duration_ms),
            "a probe took {} ms",
            probe.duration_ms
        );
    }
}

/// Whether the background probe's backend is down (the probe of `PROBED`).
static PROBE_DOWN: AtomicBool = AtomicBool::new(false);
/// Probes run.
static PROBES: AtomicU32 = AtomicU32::new(0);

/// Issue 19: with a `probe` function the breaker probes in the background
/// while the site is open: no user call waits for a probe (every call
/// while open is `breaker_open` with 0 attempts and takes no time on the
/// paused clock), a failed attempt confirmed by a failed probe opens it at
/// once, and a successful probe closes it.
#[tokio::test(start_paused = true)]
async fn a_background_probe_keeps_probes_off_the_callers_path() {
    static PROBED: Site = Site::new("breaker_background_probe")
        .with_retries(2)
        .with_timeout(Duration::from_millis(200))
        .with_backoff(Duration::from_millis(1))
        .with_probe(|| {
            Box::pin(async {
                PROBES.fetch_add(1, Ordering::SeqCst);
                if PROBE_DOWN.load(Ordering::SeqCst) {
                    pending::<()>().await;
                }
                true
            })
        });
    configure(PROBED.name(), SiteOverrides::default());
    let backend = Backend::default();
    backend.down.store(true, Ordering::SeqCst);
    PROBE_DOWN.store(true, Ordering::SeqCst);
    let records = Records::of(PROBED.name());
    // The first failed attempt starts the probe, whose failure opens the
    // breaker at once: the first call's retries, not ten failures, later.
    let mut calls = 0;
    while PROBED.breaker_state() != BreakerState::Open {
        assert_eq!(call(&PROBED, &backend).await, Ok(2));
        calls += 1;
    }
    assert_eq!(calls, 1, "the probe confirmed the first call's failure");
    let opened = records.all().len();
    let requests = backend.requests.load(Ordering::SeqCst);
    // The probe failed (at 0.4 s) while the first retry was out: that call
    // made no second retry into a backend the breaker had shut off.
    assert_eq!(
        records.all()[0].attempts,
        2,
        "a retry after the breaker opened"
    );
    assert_eq!(requests, 2);
    // 20 s of outage at 10 calls/s.
    for _ in 0..200 {
        let started = Instant::now();
        assert_eq!(call(&PROBED, &backend).await, Ok(2));
        assert_eq!(started.elapsed(), Duration::ZERO, "a call waited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during = records.all();
    assert!(during[opened..]
        .iter()
        .all(|r| r.fault == Some(RuntimeFault::BreakerOpen) && r.attempts == 0));
    assert_eq!(
        backend.requests.load(Ordering::SeqCst),
        requests,
        "a call probed"
    );
    // Cool-downs 1, 2, 4, 8 s and the probe timeout (min(0.2 s, 1 s)) in 20 s.
    let probes = PROBES.load(Ordering::SeqCst);
    assert!((3..=5).contains(&probes), "{probes} background probes");

    // Recovery: the next background probe closes it, within the longest
    // cool-down (8 s) and a probe timeout.
    backend.down.store(false, Ordering::SeqCst);
    PROBE_DOWN.store(false, Ordering::SeqCst);
    let recovered = Instant::now();
    while PROBED.breaker_state() != BreakerState::Closed {
        assert_eq!(call(&PROBED, &backend).await, Ok(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            recovered.elapsed() <= Duration::from_millis(8300),
            "still open"
        );
    }
    assert_eq!(call(&PROBED, &backend).await, Ok(1));
}

/// Issue 17: with fallback off the retry budget applied no more, so an
/// outage cost `1 + retries` requests per call exactly where no sync path
/// absorbs it; and an open breaker had nothing to do. Now the budget holds
/// and an open breaker fails the call at once with `Fault::BreakerOpen`.
#[tokio::test(start_paused = true)]
async fn with_fallback_off_the_budget_holds_and_an_open_breaker_fails_fast() {
    static SITE: Site = Site::new("breaker_no_fallback")
        .with_timeout(Duration::from_millis(200))
        .with_retries(2)
        .with_backoff(Duration::from_millis(10));
    configure(
        SITE.name(),
        SiteOverrides {
            fallback: Some(false),
            ..SiteOverrides::default()
        },
    );
    let records = Records::of(SITE.name());
    let backend = Backend::default();
    let every = Duration::from_millis(20);
    // Healthy, so the bank holds what calls earn.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert_eq!(call(&SITE, &backend).await, Ok(1));
        tokio::time::sleep(every).await;
    }
    backend.down.store(true, Ordering::SeqCst);
    let before = backend.requests.load(Ordering::SeqCst);
    let seen = records.all().len();
    let outage = Instant::now();
    let mut calls = 0_u32;
    let mut fast = Vec::new();
    while outage.elapsed() < Duration::from_secs(10) {
        let started = Instant::now();
        let result = call(&SITE, &backend).await;
        let error = result.expect_err("no sync path: the caller gets the error");
        if error == support::TestError::Fault(async_upload_runtime::Fault::BreakerOpen.to_string())
        {
            fast.push(started.elapsed());
        }
        calls += 1;
        tokio::time::sleep(every).await;
    }
    let requests = backend.requests.load(Ordering::SeqCst) - before;
    #[allow(clippy::cast_precision_loss)]
    let per_call = f64::from(requests) / f64::from(calls);
    println!("fallback off, 10 s black hole: {requests} requests for {calls} calls ({per_call:.3} per call), {} failed fast", fast.len());
    assert_eq!(SITE.breaker_state(), BreakerState::Open);
    assert!(
        per_call <= 0.2,
        "{per_call} requests per call (3 without the breaker)"
    );
    assert!(
        fast.len() * 10 >= calls as usize * 9,
        "{} of {calls} failed fast",
        fast.len()
    );
    assert!(
        fast.iter().all(|d| d.is_zero()),
        "a skipped call waits for nothing"
    );
    let outage_records = &records.all()[seen..];
    assert_eq!(outage_records.len(), calls as usize);
    let skipped: Vec<&UploadRecord> = outage_records
        .iter()
        .filter(|r| r.fault == Some(RuntimeFault::BreakerOpen))
        .collect();
    assert_eq!(skipped.len(), fast.len());
    assert!(skipped
        .iter()
        .all(|r| r.execution_type == ExecutionType::Async
            && !r.success
            && r.attempts == 0
            && r.sync_reason.is_none()));
}
