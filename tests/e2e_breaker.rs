//! The circuit breaker and the retry budget end to end: `#[async_upload]`
//! functions at 100 % rollout against the loopback server, whose async
//! backend black-holes (or resets) every request for a while and then
//! recovers; the same with a background probe (`probe = ...`), where no
//! call probes; and a backend failing 2 % of calls at random, which never
//! opens the breaker.
//!
//! Each outage runs in phases that end before the next begins, so every
//! assertion is on records and server counters, never on wall-clock time:
//! healthy → trip (concurrent calls meet the outage and open the breaker) →
//! open (calls one after another: skipped, except the half-open probes) →
//! recovery (the backend is healthy again; the next probe closes the breaker)
//! → healthy. The cool-down is short (0.1 s, through the per-site overrides)
//! so the whole file runs in a few seconds.
//!
//! The figures: `cargo test -p async-upload --test e2e_breaker -- --nocapture`.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_upload::async_upload;
use async_upload::config::SiteOverrides;
use async_upload::metrics::{ExecutionType, RuntimeFault, UploadRecord};
use tokio::task::JoinSet;

use async_upload_test_support::records::{enable_site, Records};
use support::client::{send_async, send_blocking, Receipt, UploadError, UploadRequest};
use support::fixture::Fixture;
use support::server::{no_faults, Client, Fault, Outage, RandomFaults, Target};

fn blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

#[async_upload(name = "e2e_breaker_black_hole", retries = 2, timeout = 0.2, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_black_hole(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[async_upload(name = "e2e_breaker_reset", retries = 2, timeout = 0.2, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_reset(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// Its faults are resets, which fail at once: a 2 s timeout keeps a loaded
/// machine's stalls (which time out every attempt in flight at 0.2 s, and
/// rightly open the breaker) out of a test of what 2 % of failures do.
#[async_upload(name = "e2e_breaker_two_percent", retries = 2, timeout = 2, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_two_percent(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[async_upload(name = "e2e_breaker_probed", retries = 2, timeout = 0.2, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size,
               probe = support::probe::upload_probe, probe_timeout = 0.1)]
async fn upload_probed(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// The outage example's site (`examples/outage.rs`): the breaker's
/// defaults and a background probe under its default timeout.
#[async_upload(name = "e2e_breaker_first_second", retries = 2, timeout = 0.2, backoff = 0.01,
               fallback = blocking, key = req.id.as_str(), size = req.size,
               probe = first_second_probe)]
async fn upload_first_second(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// Its probe uploads to its own test's server, not `upload_probed`'s.
static FIRST_SECOND_PROBE: support::probe::ProbeTarget = support::probe::ProbeTarget::new();

async fn first_second_probe() -> Result<(), UploadError> {
    FIRST_SECOND_PROBE.upload().await
}

/// The breaker's first cool-down in the outage tests (it doubles while
/// probes fail, up to 8 ×: 0.8 s).
const COOLDOWN: Duration = Duration::from_millis(100);
/// Healthy calls before the outage.
const HEALTHY: usize = 10;
/// Calls started together when the outage begins.
const TRIP: usize = 20;
/// Calls one after another while the breaker is open.
const OPEN: usize = 150;
/// Pause between two calls of the open and recovery phases.
const PACE: Duration = Duration::from_millis(5);
/// At most this many calls for a probe to close the breaker (≥ 2.5 s of
/// pauses alone, three times the longest cool-down).
const RECOVERY_MAX: usize = 500;
/// Healthy calls after recovery.
const AFTER: usize = 10;

/// 256 B – 8 KiB files: the sync path is quick, and the phases are short.
const SIZES: (u64, u64) = (256, 8192);
const SEED: u64 = 13;

/// Time a probe's caller may spend on the sync path after its attempt timed
/// out: a file of at most 8 KiB to the loopback server.
const FALLBACK_MS: f64 = 150.0;

/// The timeout of a half-open probe after the `healthy` calls: the breaker
/// times a probe out after `max(4 × p99 of recent successful attempts,
/// 50 ms)`, capped by the site's 0.2 s timeout. Its histogram may read a p99
/// up to 1.5 × high, and a whole call (what a record times) lasts at least as
/// long as its attempt, so this is an upper bound. With ten healthy calls the
/// p99 is the slowest one: on a loaded machine one slow call takes the
/// probe timeout to the cap, which is the breaker working as documented.
fn probe_timeout_ms_after(healthy: &[UploadRecord]) -> f64 {
    let slowest = healthy.iter().map(|r| r.duration_ms).fold(0.0, f64::max);
    (4.0 * 1.5 * slowest).clamp(50.0, 200.0)
}

/// A call the breaker skipped: the sync path carried it at once.
fn skipped(r: &UploadRecord) -> bool {
    r.execution_type == ExecutionType::SyncFallback
        && r.success
        && r.attempts == 0
        && r.fault == Some(RuntimeFault::BreakerOpen)
        && r.error_type.as_deref() == Some("breaker_open")
}

/// What the records and counters of one outage showed.
#[derive(Debug)]
struct Figures {
    trip_calls: usize,
    trip_requests: u64,
    open_calls: usize,
    open_requests: u64,
    probes: usize,
    /// The median probe's wait, the longest, and what the healthy calls
    /// allowed the median (ms).
    probe_wait_median_ms: f64,
    probe_wait_max_ms: f64,
    probe_wait_allowed_ms: f64,
    /// Connections the server reset.
    resets: u64,
    recovery_calls: usize,
}

/// Enrols every key of `site` with the breaker's defaults and captures
/// its records.
fn enable_with_defaults(site: &'static str) -> Records {
    enable_site(
        site,
        SiteOverrides {
            rollout: Some(100.0),
            ..SiteOverrides::default()
        },
    );
    Records::of(site)
}

/// Enrols every key of `site` with the outage tests' short cool-down and
/// captures its records.
fn enable_outage_site(site: &'static str) -> Records {
    enable_site(
        site,
        SiteOverrides {
            rollout: Some(100.0),
            breaker_cooldown: Some(COOLDOWN),
            ..SiteOverrides::default()
        },
    );
    Records::of(site)
}

/// Runs healthy → outage (trip, open) → recovery → healthy through `upload`
/// at `site`, the outage giving `fault` to every async request; `failed`
/// says whether a record's async attempts met that fault.
async fn outage_and_recovery<F, Fut>(
    site: &'static str,
    fault: Fault,
    upload: F,
    failed: fn(&UploadRecord) -> bool,
) -> Figures
where
    F: Fn(UploadRequest) -> Fut,
    Fut: Future<Output = Result<Receipt, UploadError>> + Send + 'static,
{
    let capture = enable_outage_site(site);
    let outage = Outage::new(fault, Target::AsyncOnly);
    let files = HEALTHY + TRIP + OPEN + RECOVERY_MAX + AFTER;
    let mut fx = Fixture::new(site, files, SIZES, SEED, outage.over(no_faults())).await;
    let records_from = |from: usize| capture.all()[from..].to_vec();

    // Healthy: the async path serves.
    for _ in 0..HEALTHY {
        let receipt = upload(fx.next()).await.unwrap();
        assert_eq!(receipt.via, Client::Async);
    }
    let healthy = capture.all();
    assert!(healthy
        .iter()
        .all(|r| r.execution_type == ExecutionType::Async && r.success));
    let probe_wait_ms = probe_timeout_ms_after(&healthy) + FALLBACK_MS;

    // Trip: the outage begins under concurrent calls. Each one's failed
    // attempts count towards opening the breaker; calls admitted after it
    // opened are skipped. The sync path carries every call.
    outage.start();
    let start = fx.server.counters();
    let trip_from = capture.all().len();
    let mut calls = JoinSet::new();
    for _ in 0..TRIP {
        calls.spawn(upload(fx.next()));
    }
    while let Some(joined) = calls.join_next().await {
        assert_eq!(joined.unwrap().unwrap().via, Client::Sync);
    }
    let trip = records_from(trip_from);
    assert_eq!(trip.len(), TRIP);
    for r in &trip {
        assert!(
            skipped(r)
                || (r.execution_type == ExecutionType::SyncFallback
                    && r.success
                    && r.attempts >= 1
                    && failed(r)),
            "{r:?}"
        );
    }
    let tripped = fx.server.counters();
    // The outage's first failure empties the retry bank: the retries are
    // the floor's burst (2, and 1 more a second should a loaded machine
    // stretch the trip), and what calls earned after the outage began (a
    // fifth each, at most every trip call), not what the healthy calls
    // banked before it (28 requests here when they did).
    let trip_requests = tripped.async_requests - start.async_requests;
    let most = TRIP + 2 + 1 + TRIP / 5;
    assert!(
        trip_requests <= most as u64,
        "{trip_requests} requests for {TRIP} trip calls, at most {most}"
    );

    // Open: enrolled calls skip the async path; only the half-open probes
    // (one attempt each, never retried) reach the backend.
    let open_from = capture.all().len();
    for _ in 0..OPEN {
        assert_eq!(upload(fx.next()).await.unwrap().via, Client::Sync);
        tokio::time::sleep(PACE).await;
    }
    let open = records_from(open_from);
    let opened = fx.server.counters();
    let probes: Vec<&UploadRecord> = open.iter().filter(|r| !skipped(r)).collect();
    for r in &probes {
        assert!(
            r.execution_type == ExecutionType::SyncFallback
                && r.success
                && r.attempts == 1
                && failed(r),
            "a probe: one failed attempt, then the sync path: {r:?}"
        );
    }
    assert!(!probes.is_empty(), "a 0.1 s cool-down: probes ran");
    // A probe's timeout follows the healthy calls (the 50 ms floor on a
    // quiet machine), not the site's 0.2 s: its caller waits far less than
    // a timeout unless the healthy calls themselves were slow. The median
    // probe is judged, so one stalled timer or fallback does not decide;
    // probes under the full timeout would all wait at least 0.2 s.
    let mut waits: Vec<f64> = probes.iter().map(|r| r.duration_ms).collect();
    waits.sort_by(f64::total_cmp);
    let median_wait = waits[waits.len() / 2];
    assert!(
        median_wait < probe_wait_ms,
        "probes waited longer than the healthy calls allow ({probe_wait_ms:.1} ms): {waits:?}"
    );
    assert!(
        open.len() - probes.len() >= OPEN / 2,
        "most calls skipped: {} probes in {} calls",
        probes.len(),
        open.len()
    );
    let open_requests = opened.async_requests - tripped.async_requests;
    #[allow(clippy::cast_precision_loss)]
    let per_call = open_requests as f64 / open.len() as f64;
    assert!(
        per_call <= 0.2,
        "{open_requests} requests for {} calls while open",
        open.len()
    );

    // Recovery: the backend is healthy again; the next probe closes the
    // breaker (the calls before it are still skipped).
    outage.end();
    let recovery_from = capture.all().len();
    let mut closed = false;
    for _ in 0..RECOVERY_MAX {
        if upload(fx.next()).await.unwrap().via == Client::Async {
            closed = true;
            break;
        }
        tokio::time::sleep(PACE).await;
    }
    let recovery = records_from(recovery_from);
    assert!(
        closed,
        "no probe closed the breaker in {RECOVERY_MAX} calls"
    );
    let (probe, before) = recovery.split_last().unwrap();
    // Before it: skipped calls (and, on a very loaded machine, maybe a probe
    // that timed out against the healthy backend and re-opened the breaker).
    assert!(
        before.iter().all(|r| skipped(r)
            || (r.execution_type == ExecutionType::SyncFallback && r.success && r.attempts == 1)),
        "{before:?}"
    );
    assert_eq!(
        (probe.execution_type, probe.success, probe.attempts),
        (ExecutionType::Async, true, 1),
        "the probe that closed it: {probe:?}"
    );

    // Healthy again: calls are async successes.
    for _ in 0..AFTER {
        assert_eq!(upload(fx.next()).await.unwrap().via, Client::Async);
    }
    let after = records_from(recovery_from + recovery.len());
    assert!(
        after
            .iter()
            .all(|r| r.execution_type == ExecutionType::Async && r.success),
        "{after:?}"
    );

    // No call lost its record; every file arrived once, intact.
    assert_eq!(capture.all().len(), fx.used, "one record per call");
    fx.assert_stored(&fx.files[..fx.used]);

    Figures {
        trip_calls: trip.len(),
        trip_requests,
        open_calls: open.len(),
        open_requests,
        probes: probes.len(),
        probe_wait_median_ms: median_wait,
        probe_wait_max_ms: *waits.last().unwrap(),
        probe_wait_allowed_ms: probe_wait_ms,
        resets: fx.server.counters().resets,
        recovery_calls: recovery.len(),
    }
}

fn report(name: &str, f: &Figures) {
    #[allow(clippy::cast_precision_loss)]
    let per_call = |requests: u64, calls: usize| requests as f64 / calls as f64;
    println!(
        "{name}: trip {} requests for {} calls ({:.2} per call); open {} requests for {} calls \
         ({:.3} per call, {} probes waiting {:.1} ms at the median, {:.1} at most, {:.1} \
         allowed); closed by the probe of recovery call {}",
        f.trip_requests,
        f.trip_calls,
        per_call(f.trip_requests, f.trip_calls),
        f.open_requests,
        f.open_calls,
        per_call(f.open_requests, f.open_calls),
        f.probes,
        f.probe_wait_median_ms,
        f.probe_wait_max_ms,
        f.probe_wait_allowed_ms,
        f.recovery_calls,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_backend_opens_the_breaker_and_recovery_closes_it() {
    let figures = outage_and_recovery(
        "e2e_breaker_black_hole",
        Fault::BlackHole,
        upload_black_hole,
        // The per-attempt timeout fired.
        |r| r.fault == Some(RuntimeFault::Timeout) && r.error_type.as_deref() == Some("timeout"),
    )
    .await;
    assert_eq!(figures.resets, 0, "a black hole resets nothing");
    report("black hole", &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resetting_backend_opens_the_breaker_and_recovery_closes_it() {
    let figures = outage_and_recovery(
        "e2e_breaker_reset",
        Fault::Reset,
        upload_reset,
        // A transport error (reset, aborted or broken pipe, by when it hit),
        // not a runtime fault; or, for a probe under the 50 ms probe timeout
        // on a loaded machine, a timeout before the reset arrived.
        |r| (r.fault.is_none() && r.error_type.is_some()) || r.fault == Some(RuntimeFault::Timeout),
    )
    .await;
    assert!(figures.trip_requests > 0);
    assert!(figures.resets > 0, "the outage reset connections");
    report("reset", &figures);
}

/// Issue 19: with `probe = ...` no call probes. A black-holed backend: the
/// first call's failed attempt starts the probe, whose failure opens the
/// breaker; from then on every call is skipped at once (0 attempts, no
/// request), the background probes are the only requests; once the backend
/// recovers a background probe closes the breaker and calls are async again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_background_probe_no_call_probes() {
    let site = "e2e_breaker_probed";
    let capture = enable_outage_site(site);
    let outage = Outage::new(Fault::BlackHole, Target::AsyncOnly);
    let files = HEALTHY + OPEN + RECOVERY_MAX + AFTER + 10;
    let mut fx = Fixture::new(site, files, SIZES, SEED, outage.over(no_faults())).await;
    let probe_dir = tempfile::tempdir().unwrap();
    support::probe::aim(probe_dir.path(), &fx.endpoint).unwrap();
    for _ in 0..HEALTHY {
        assert_eq!(upload_probed(fx.next()).await.unwrap().via, Client::Async);
    }

    outage.start();
    let start = fx.server.counters();
    let from = capture.all().len();
    // Until a call is skipped: the breaker is open.
    let mut tripped = 0;
    while !capture.all().last().is_some_and(skipped) {
        assert_eq!(upload_probed(fx.next()).await.unwrap().via, Client::Sync);
        tripped += 1;
        assert!(tripped <= 10, "the probe did not confirm the failures");
    }
    let open_from = capture.all().len();
    for _ in 0..OPEN {
        assert_eq!(upload_probed(fx.next()).await.unwrap().via, Client::Sync);
        tokio::time::sleep(PACE).await;
    }
    let open = capture.all()[open_from..].to_vec();
    assert!(open.iter().all(skipped), "a call probed: {open:?}");
    let during = fx.server.counters();
    let requests = during.async_requests - start.async_requests;
    let calls = capture.all().len() - from;
    #[allow(clippy::cast_precision_loss)]
    let per_call = requests as f64 / calls as f64;
    assert!(per_call <= 0.2, "{requests} requests for {calls} calls");

    outage.end();
    let recovery_from = capture.all().len();
    let mut closed = false;
    for _ in 0..RECOVERY_MAX {
        if upload_probed(fx.next()).await.unwrap().via == Client::Async {
            closed = true;
            break;
        }
        tokio::time::sleep(PACE).await;
    }
    assert!(closed, "no background probe closed the breaker");
    let recovery = capture.all()[recovery_from..].to_vec();
    let (first, before) = recovery.split_last().unwrap();
    assert!(before.iter().all(skipped), "a call probed: {before:?}");
    assert_eq!(
        (first.execution_type, first.attempts),
        (ExecutionType::Async, 1)
    );
    for _ in 0..AFTER {
        assert_eq!(upload_probed(fx.next()).await.unwrap().via, Client::Async);
    }
    assert_eq!(capture.all().len(), fx.used, "one record per call");
    // Every file once, intact; plus the probe's empty file.
    let check = fx.server.verify_files(&fx.files[..fx.used]);
    assert_eq!(check.intact, check.expected, "{check:?}");
    assert!(check.stored_again.is_empty(), "{check:?}");
    assert_eq!(check.stored, check.expected + 1, "{check:?}");
    println!(
        "background probe: opened after {tripped} calls; {requests} requests for {calls} calls \
         ({per_call:.3} per call); closed after {} recovery calls",
        recovery.len()
    );
}

/// Issue 19: the first second of a black-hole outage at 10 calls/s costs
/// the backend at most 1.2 requests per call, whatever the healthy calls
/// before it banked: the outage's first failure empties the retry bank, the
/// probe confirms it and opens the breaker, and no call retries once it is
/// open. With the bank kept, 30 healthy calls paid for 6 more retries
/// (about 1.5 per call, `docs/breaker.md`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_second_of_an_outage_costs_at_most_1_2_requests_per_call() {
    const RATE: u32 = 10;
    let site = "e2e_breaker_first_second";
    let capture = enable_with_defaults(site);
    let outage = Outage::new(Fault::BlackHole, Target::AsyncOnly);
    let healthy = 30;
    let calls = RATE as usize;
    let mut fx = Fixture::new(site, healthy + calls, SIZES, SEED, outage.over(no_faults())).await;
    let probe_dir = tempfile::tempdir().unwrap();
    FIRST_SECOND_PROBE
        .aim(probe_dir.path(), &fx.endpoint)
        .unwrap();
    for _ in 0..healthy {
        assert_eq!(
            upload_first_second(fx.next()).await.unwrap().via,
            Client::Async
        );
    }

    outage.start();
    let t0 = tokio::time::Instant::now();
    let start = fx.server.counters();
    let from = capture.all().len();
    // Open loop: one call every 100 ms, as the outage example runs them.
    let mut every = tokio::time::interval(Duration::from_secs(1) / RATE);
    let mut running = JoinSet::new();
    for _ in 0..calls {
        every.tick().await;
        running.spawn(upload_first_second(fx.next()));
    }
    tokio::time::sleep_until(t0 + Duration::from_secs(1)).await;
    let requests = fx.server.counters().async_requests - start.async_requests;
    while let Some(joined) = running.join_next().await {
        assert_eq!(joined.unwrap().unwrap().via, Client::Sync);
    }
    let records = capture.all()[from..].to_vec();
    assert_eq!(records.len(), calls, "one record per call");
    assert!(
        records.iter().any(skipped),
        "the breaker opened: {records:?}"
    );
    #[allow(clippy::cast_precision_loss)]
    let per_call = requests as f64 / calls as f64;
    println!(
        "first second: {requests} requests for {calls} calls ({per_call:.2} per call), \
         attempts {:?}",
        records.iter().map(|r| r.attempts).collect::<Vec<_>>()
    );
    assert!(
        requests * 10 <= 12 * calls as u64,
        "{requests} requests for {calls} calls in the outage's first second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_percent_failing_calls_never_open_the_breaker() {
    let site = "e2e_breaker_two_percent";
    // The default threshold and cool-down.
    let capture = enable_with_defaults(site);
    // 2 % of request ids, drawn by hash, have every async attempt reset.
    let draw = RandomFaults {
        reset: 0.02,
        unavailable: 0.0,
        delay_rate: 0.0,
        delay: Duration::ZERO,
        max_streak: 1,
        target: Target::AsyncOnly,
        seed: 2,
    };
    let faults: support::server::FaultFn = Arc::new(move |a| {
        (a.client == Client::Async)
            .then(|| draw.plan(a.id).map(|(fault, _)| fault))
            .flatten()
    });
    const CALLS: usize = 600;
    const WORKERS: usize = 8;
    let mut fx = Fixture::new(site, CALLS, SIZES, SEED, faults).await;
    let failing = fx
        .files
        .iter()
        .filter(|f| draw.plan(&f.id).is_some())
        .count();
    assert!(
        (6..=24).contains(&failing),
        "{failing} of {CALLS} ids fail: about 2 %"
    );

    let mut workers = JoinSet::new();
    for w in 0..WORKERS {
        let requests: Vec<UploadRequest> = (w..CALLS)
            .step_by(WORKERS)
            .map(|i| fx.files[i].request(&fx.endpoint))
            .collect();
        workers.spawn(async move {
            for request in requests {
                upload_two_percent(request).await.unwrap();
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.unwrap();
    }
    fx.used = CALLS;

    let records = capture.all();
    assert_eq!(records.len(), CALLS, "one record per call");
    let odd: Vec<&UploadRecord> = records
        .iter()
        .filter(|r| !r.success || r.fault == Some(RuntimeFault::BreakerOpen))
        .collect();
    assert!(
        odd.is_empty(),
        "the breaker opened or a call failed: {} of {CALLS}, the first {:?}",
        odd.len(),
        &odd[..odd.len().min(3)]
    );
    let fell_back = records
        .iter()
        .filter(|r| r.execution_type == ExecutionType::SyncFallback)
        .count();
    // Every failing id fell back (its every attempt failed), maybe with a
    // few more calls whose attempts timed out on a very loaded machine.
    assert!(
        fell_back >= failing,
        "{fell_back} fallbacks, {failing} failing ids"
    );
    fx.assert_stored(&fx.files[..fx.used]);
    println!(
        "2 % failing: {CALLS} calls, {failing} failing every attempt, {} resets, \
         {fell_back} fallbacks, breaker never opened",
        fx.server.counters().resets
    );
}
