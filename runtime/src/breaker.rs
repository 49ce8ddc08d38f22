//! The per-site circuit breaker and retry budget: fail fast in an outage.
//!
//! ```text
//! closed ──(failures ≥ threshold of the recent attempts)──▶ open
//! open ──(cool-down over: the next call is a probe)──▶ half-open
//! half-open ──(a probe succeeds)──▶ closed          (cool-down back to its base)
//! half-open ──(a probe fails)──▶ open              (cool-down doubled, capped)
//! ```
//!
//! While open, enrolled calls skip the async path: they run the sync path
//! at once and are recorded `sync_fallback` with fault `breaker_open`, so
//! stage health counts them as async failures. A call already under way
//! when the breaker opens makes no further retry: it falls back (or fails)
//! after the attempt in flight. A probe makes one attempt,
//! never retried, under a probe timeout derived from recent successes
//! (`latency.rs`); a site with a `probe` function never probes with a call:
//! the breaker runs it in the background (`background.rs`).
//!
//! The state sits beside the site's counters in lock-free words; the gate
//! (state, probe and trips) is one word (`gate.rs`), model-checked with
//! loom. A closed breaker costs a call one atomic load to admit; a success
//! adds two relaxed increments (the success histogram) and a load of the
//! window while it holds no failure, and its one clock read is the one the
//! record needs anyway: **no clock read of its own**. The clock is read
//! otherwise only when an attempt fails, or while the breaker is not
//! closed.
//!
//! The retry budget (tower's and Envoy's model): each call earns a fifth of
//! a retry (the site's `retry_budget` percent), banked up to
//! [`BUDGET_CAP`] retries; a retry spends one. When the bank is empty, a
//! small floor ([`FLOOR_PER_SECOND`], in bursts of up to [`FLOOR_BURST`])
//! still lets a retry through now and then, so a quiet site can retry at
//! all. The bank starts empty and fills with calls, and it empties again
//! when a spell of failures begins (the first failure after [`SPAN`]
//! without one): the retries of a spell are paid for by the calls made
//! during it, not by a long healthy history, so the first second of an
//! outage costs about `1 + retry_budget %` requests per call, plus the
//! floor. An outage then costs the backend about its normal request rate,
//! not `1 + retries` times it.
//!
//! Every transition is one `tracing` event, one notice to the sinks
//! ([`MetricsSink::breaker_changed`]: the JSONL log writes it as a `breaker`
//! line) and, with the `metrics` feature, a gauge and a counter; never one
//! per call.
//!
//! [`MetricsSink::breaker_changed`]: crate::metrics::MetricsSink::breaker_changed

pub(crate) mod background;
mod gate;
mod latency;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::metrics::{BreakerChange, BreakerEvent};
use crate::sync::maybe_const_fn;

use gate::{Admit, Gate, State, DEADLINE};
use latency::Latency;

/// Attempt outcomes the window remembers.
const WINDOW: u64 = 32;
/// Fewer recent attempts than this never open the breaker.
pub(crate) const MIN_CALLS: u64 = 10;
/// A failure older than this (since the previous one) starts a new window.
const SPAN: Duration = Duration::from_secs(10);
/// The cool-down grows to at most this multiple of its base.
pub(crate) const COOLDOWN_GROWTH_CAP: u32 = 8;
/// Retries banked at most, in whole retries.
pub const BUDGET_CAP: u64 = 20;
/// Retries allowed per second when the bank is empty.
pub const FLOOR_PER_SECOND: u64 = 1;
/// Retries the floor lets through at once (after a quiet spell, and at
/// start-up, when the bank is still empty): one call's default retries,
/// so a fresh site's first call still makes `1 + retries` attempts.
pub const FLOOR_BURST: u64 = 2;

/// Milli-retries: the bank's unit, so a call earns a fraction of a retry.
const MILLI: u64 = 1000;

const COUNT_SHIFT: u32 = 32;
const FAILURES: u64 = (1 << WINDOW) - 1;

/// The breaker's settings for one site, after precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerSettings {
    /// Whether the breaker and the retry budget apply (`ASYNC_UPLOAD_BREAKER`).
    pub enabled: bool,
    /// Percent of recent attempts that must fail to open it, 1–100.
    pub threshold: u8,
    /// First cool-down; it doubles while probes fail, up to 8 times this.
    pub cooldown: Duration,
    /// Percent of calls the site may add as retries, 0–100.
    pub retry_budget: u8,
}

impl BreakerSettings {
    pub(crate) const fn new(
        enabled: bool,
        threshold: u8,
        cooldown: Duration,
        retry_budget: u8,
    ) -> Self {
        BreakerSettings {
            enabled,
            threshold,
            cooldown,
            retry_budget,
        }
    }
}

/// The breaker's state, as events and gauges show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls take the async path.
    Closed,
    /// Calls skip the async path until the cool-down is over.
    Open,
    /// A probe call tests the async path.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The log's name for a transition into this state.
    const fn change(self) -> BreakerChange {
        match self {
            BreakerState::Closed => BreakerChange::Closed,
            BreakerState::Open => BreakerChange::Open,
            BreakerState::HalfOpen => BreakerChange::HalfOpen,
        }
    }

    #[cfg(feature = "metrics")]
    const fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::Open => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

/// How a call may use the async path now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Breaker closed (or off): attempts and retries as configured.
    Closed,
    /// The half-open probe: one attempt, never retried; it reports with
    /// the gate word it was admitted on (its ticket).
    Probe(u64),
    /// Open: skip the async path.
    Skip,
}

/// One site's breaker and retry budget.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// State, probe and trips in one word (`gate.rs`).
    gate: Gate,
    /// The last [`WINDOW`] attempt outcomes (a set bit per failure, newest
    /// lowest) and, from bit 32, how many are recorded.
    window: AtomicU64,
    /// When the newest failure happened (ns since [`base`]).
    last_failure: AtomicU64,
    /// How long recent successful attempts took (the probe timeout).
    latency: Latency,
    /// Banked milli-retries; empty at first and at the start of each spell
    /// of failures, so the first moments of an outage cost no more retries
    /// than the calls made since it began have earned.
    bank: AtomicU64,
    /// The floor's theoretical arrival time (GCRA, ns since [`base`]): a
    /// retry may pass while it is at most `FLOOR_BURST - 1` intervals ahead
    /// of now.
    floor_at: AtomicU64,
    /// Whether the budget has run dry (for one event per transition).
    exhausted: AtomicBool,
    /// Whether a background probe task runs for this site.
    probing: AtomicBool,
    /// When a fallback warning may be logged next (ns since [`base`]), and
    /// the fallbacks not warned about since.
    warn_at: AtomicU64,
    unwarned: AtomicU64,
}

impl Breaker {
    maybe_const_fn! {
        pub(crate) fn new() -> Self {
            Breaker {
                gate: Gate::new(),
                window: AtomicU64::new(0),
                last_failure: AtomicU64::new(0),
                latency: Latency::new(),
                bank: AtomicU64::new(0),
                floor_at: AtomicU64::new(0),
                exhausted: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                warn_at: AtomicU64::new(0),
                unwarned: AtomicU64::new(0),
            }
        }
    }

    /// The state now (no clock read: an open breaker whose cool-down is
    /// over still reads open until a call arrives).
    pub(crate) fn state(&self) -> BreakerState {
        match self.gate.state() {
            State::Closed => BreakerState::Closed,
            State::Open => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Admits a call: closed costs one load and no clock read. With a
    /// `background` probe, a call never probes: it skips until the
    /// background probe closes the gate.
    pub(crate) fn admit(
        &self,
        site: &'static str,
        settings: &BreakerSettings,
        background: bool,
    ) -> Admission {
        if self.gate.is_closed() {
            return Admission::Closed;
        }
        if background {
            return Admission::Skip;
        }
        self.admit_probe(site, settings)
    }

    /// The probe if the cool-down is over (and no other probe is out).
    fn admit_probe(&self, site: &'static str, settings: &BreakerSettings) -> Admission {
        // A probe's window is as long as the cool-down, in case its caller
        // drops it.
        match self.gate.admit(now_ns(), |trips| cooldown(settings, trips)) {
            Admit::Closed => Admission::Closed,
            Admit::Probe { ticket, fresh } => {
                if fresh {
                    transition(site, BreakerState::HalfOpen, None);
                }
                Admission::Probe(ticket)
            }
            Admit::Skip => Admission::Skip,
        }
    }

    /// The timeout of a half-open probe that is a real call (no `probe`
    /// function): `max(4 × p99 of recent async successes, 50 ms)`, capped
    /// by `timeout`; `min(timeout, 1 s)` before any success.
    pub(crate) fn probe_timeout(&self, timeout: Duration) -> Duration {
        self.latency.probe_timeout(timeout)
    }

    /// An attempt succeeded after `took`.
    pub(crate) fn on_success_after(
        &self,
        site: &'static str,
        admission: Admission,
        took: Duration,
    ) {
        self.latency.record(took);
        self.on_success(site, admission);
    }

    /// An attempt succeeded (or failed for a reason that says nothing about
    /// the backend's health, an error classified `Fail`).
    pub(crate) fn on_success(&self, site: &'static str, admission: Admission) {
        if let Admission::Probe(ticket) = admission {
            if self.gate.probe_succeeded(ticket) {
                self.window.store(0, Ordering::Release);
                transition(site, BreakerState::Closed, None);
            }
            return;
        }
        // A full window without failures stays as it is: a load, no write.
        let window = self.window.load(Ordering::Relaxed);
        if window == WINDOW << COUNT_SHIFT {
            return;
        }
        let _ = self
            .window
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| {
                Some(shift(w, false))
            });
    }

    /// An attempt failed: an error classified `Retry` or `Fallback`, a
    /// timeout or a panic.
    pub(crate) fn on_failure(
        &self,
        site: &'static str,
        admission: Admission,
        settings: &BreakerSettings,
    ) {
        let now = now_ns();
        if let Admission::Probe(ticket) = admission {
            let cooldown_of = |trips| cooldown(settings, trips);
            if let Some(trips) = self.gate.probe_failed(ticket, now, cooldown_of) {
                transition(site, BreakerState::Open, Some(cooldown_of(trips)));
            }
            return;
        }
        let stale =
            now.saturating_sub(self.last_failure.swap(now, Ordering::AcqRel)) > duration_ns(SPAN);
        if stale {
            // A new spell: retries are paid for by the calls made during it.
            self.bank.store(0, Ordering::Release);
        }
        let add = |w: u64| shift(if stale { 0 } else { w }, true);
        // The closure always returns `Some`: `Ok` holds the previous window.
        let previous = self
            .window
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| Some(add(w)))
            .unwrap_or_else(|w| w);
        let window = add(previous);
        let count = window >> COUNT_SHIFT;
        let failures = u64::from((window & FAILURES).count_ones());
        if count < MIN_CALLS || failures * 100 < u64::from(settings.threshold) * count {
            return;
        }
        self.trip(site, settings, now);
    }

    /// Opens a closed breaker at `now` for the base cool-down.
    fn trip(&self, site: &'static str, settings: &BreakerSettings, now: u64) {
        let cooldown = settings.cooldown;
        if self.gate.trip(now, cooldown) {
            self.window.store(0, Ordering::Release);
            transition(site, BreakerState::Open, Some(cooldown));
        }
    }

    /// A call starts: it earns its share of a retry, unless the bank is full
    /// (then only a load).
    pub(crate) fn deposit(&self, settings: &BreakerSettings) {
        let cap = BUDGET_CAP * MILLI;
        if self.bank.load(Ordering::Relaxed) < cap {
            let earned = u64::from(settings.retry_budget) * MILLI / 100;
            let _ = self
                .bank
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |b| {
                    Some((b + earned).min(cap))
                });
        }
    }

    /// Whether a retry may go out now; spends it if so.
    pub(crate) fn withdraw(&self, site: &'static str) -> bool {
        let spent = self
            .bank
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |b| {
                b.checked_sub(MILLI)
            })
            .is_ok();
        if spent {
            if self.exhausted.swap(false, Ordering::AcqRel) {
                tracing::info!(site, "async upload retry budget available again");
            }
            return true;
        }
        let now = now_ns();
        let interval = duration_ns(Duration::from_secs(1)) / FLOOR_PER_SECOND;
        let tolerance = interval * (FLOOR_BURST - 1);
        let floor = self
            .floor_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |due| {
                (due <= now + tolerance).then(|| due.max(now) + interval)
            })
            .is_ok();
        if !floor && !self.exhausted.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                site,
                "async upload retry budget exhausted: failed attempts fall back without retrying"
            );
            #[cfg(feature = "metrics")]
            metrics::counter!("async_upload_retry_budget_exhausted_total", "site" => site)
                .increment(1);
            event(site, BreakerChange::RetryBudgetExhausted, None);
        }
        floor
    }

    /// Counts a fallback; `Some(n)` when a warning may be logged now, with
    /// `n` fallbacks since the last one (at most one warning per
    /// [`SPAN`] per site).
    pub(crate) fn fallback_warning(&self) -> Option<u64> {
        let now = now_ns();
        let next = self.warn_at.load(Ordering::Acquire);
        if now >= next
            && self
                .warn_at
                .compare_exchange(
                    next,
                    deadline(now, SPAN),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            return Some(self.unwarned.swap(0, Ordering::AcqRel) + 1);
        }
        self.unwarned.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// The cool-down after `trips` trips: doubling, capped.
fn cooldown(settings: &BreakerSettings, trips: u32) -> Duration {
    gate::cooldown(settings.cooldown, trips, COOLDOWN_GROWTH_CAP.ilog2())
}

/// `window` with one more outcome shifted in.
const fn shift(window: u64, failed: bool) -> u64 {
    let count = window >> COUNT_SHIFT;
    let outcomes = ((window & FAILURES) << 1 | failed as u64) & FAILURES;
    let count = if count < WINDOW { count + 1 } else { WINDOW };
    count << COUNT_SHIFT | outcomes
}

/// Nanoseconds since a base an hour before any breaker first read the
/// clock, on Tokio's clock (so a paused test clock drives it). The margin
/// keeps the instants of runtimes made a little earlier (each paused test
/// runtime has its own clock) after the base.
fn now_ns() -> u64 {
    let now = Instant::now();
    duration_ns(now.saturating_duration_since(base(now)))
}

fn base(now: Instant) -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| now.checked_sub(Duration::from_secs(3600)).unwrap_or(now))
}

/// The instant of `ns` on [`now_ns`]'s scale.
fn instant_of(ns: u64) -> Instant {
    base(Instant::now()) + Duration::from_nanos(ns)
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn deadline(now: u64, after: Duration) -> u64 {
    now.saturating_add(duration_ns(after)).min(DEADLINE)
}

/// One transition: a `tracing` event, a notice to the sinks, metrics.
fn transition(site: &'static str, to: BreakerState, cooldown: Option<Duration>) {
    match to {
        BreakerState::Open => tracing::warn!(
            site,
            cooldown_s = cooldown.map(|c| c.as_secs_f64()),
            "async upload circuit breaker open: enrolled calls take the sync path"
        ),
        BreakerState::HalfOpen => {
            tracing::info!(site, "async upload circuit breaker half-open: probing");
        }
        BreakerState::Closed => {
            tracing::info!(
                site,
                "async upload circuit breaker closed: async path serves again"
            );
        }
    }
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("async_upload_breaker_state", "site" => site).set(to.gauge());
        metrics::counter!(
            "async_upload_breaker_transitions_total",
            "site" => site,
            "state" => to.as_str(),
        )
        .increment(1);
    }
    event(site, to.change(), cooldown);
}

/// Tells the sinks (the JSONL log writes a `breaker` line), if there is one.
fn event(site: &'static str, change: BreakerChange, cooldown: Option<Duration>) {
    crate::metrics::notify(|sinks| {
        sinks.breaker_changed(&BreakerEvent::new(
            SystemTime::now(),
            site,
            change,
            cooldown,
        ));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "breaker_unit";

    fn settings() -> BreakerSettings {
        BreakerSettings::new(true, 50, Duration::from_secs(1), 20)
    }

    fn is_probe(admission: Admission) -> bool {
        matches!(admission, Admission::Probe(_))
    }

    /// Opens `breaker` and lets its cool-down pass (on the real clock).
    fn open_and_cool_down(breaker: &Breaker, s: &BreakerSettings) {
        for _ in 0..MIN_CALLS {
            breaker.on_failure(SITE, Admission::Closed, s);
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        std::thread::sleep(s.cooldown);
    }

    /// Regression (issue 18): many threads race the gate as the cool-down
    /// ends; exactly one gets the probe, and when every admitted call
    /// fails (also a probe replaced after its window) the cool-down
    /// doubles once. Two words (gate, probe count) admitted two probes and
    /// doubled twice.
    #[test]
    fn racing_calls_get_one_probe_and_one_doubling() {
        const THREADS: usize = 8;
        // A probe window (the cool-down) far longer than the race, so no
        // thread arrives late enough to replace the probe legitimately,
        // also when a loaded machine wakes one of them late (30 ms was
        // within reach of that).
        let s = BreakerSettings::new(true, 50, Duration::from_millis(250), 20);
        for _ in 0..16 {
            let breaker = Breaker::new();
            open_and_cool_down(&breaker, &s);
            let barrier = std::sync::Barrier::new(THREADS);
            let admitted: Vec<Admission> = std::thread::scope(|scope| {
                let calls: Vec<_> = (0..THREADS)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            breaker.admit(SITE, &s, false)
                        })
                    })
                    .collect();
                calls.into_iter().map(|c| c.join().unwrap()).collect()
            });
            let probes: Vec<_> = admitted.iter().copied().filter(|a| is_probe(*a)).collect();
            assert_eq!(probes.len(), 1, "{admitted:?}");
            std::thread::scope(|scope| {
                for _ in 0..THREADS {
                    scope.spawn(|| {
                        barrier.wait();
                        breaker.on_failure(SITE, probes[0], &s);
                    });
                }
            });
            assert_eq!(
                breaker.gate.trips(),
                1,
                "the cool-down doubled more than once"
            );
            assert_eq!(breaker.state(), BreakerState::Open);
        }
    }

    #[test]
    fn the_window_counts_up_to_its_size() {
        let mut w = 0;
        for i in 0..40 {
            w = shift(w, i % 4 == 0);
        }
        assert_eq!(w >> COUNT_SHIFT, WINDOW);
        assert_eq!((w & FAILURES).count_ones(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_failures_probes_after_the_cooldown_and_closes() {
        let breaker = Breaker::new();
        let s = settings();
        for _ in 0..MIN_CALLS {
            assert_eq!(breaker.admit(SITE, &s, false), Admission::Closed);
            breaker.on_failure(SITE, Admission::Closed, &s);
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.admit(SITE, &s, false), Admission::Skip);
        tokio::time::advance(Duration::from_millis(1001)).await;
        let probe = breaker.admit(SITE, &s, false);
        assert!(is_probe(probe));
        assert_eq!(
            breaker.admit(SITE, &s, false),
            Admission::Skip,
            "one probe at a time"
        );
        // The probe fails: open again, twice as long.
        breaker.on_failure(SITE, probe, &s);
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(breaker.admit(SITE, &s, false), Admission::Skip);
        tokio::time::advance(Duration::from_millis(600)).await;
        let probe = breaker.admit(SITE, &s, false);
        assert!(is_probe(probe));
        breaker.on_success(SITE, probe);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit(SITE, &s, false), Admission::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cooldown_is_capped() {
        let breaker = Breaker::new();
        let s = settings();
        for _ in 0..MIN_CALLS {
            breaker.on_failure(SITE, Admission::Closed, &s);
        }
        let mut waited = Vec::new();
        for _ in 0..6 {
            let mut ms = 0;
            let probe = loop {
                let admission = breaker.admit(SITE, &s, false);
                if is_probe(admission) {
                    break admission;
                }
                tokio::time::advance(Duration::from_millis(100)).await;
                ms += 100;
            };
            waited.push(ms);
            breaker.on_failure(SITE, probe, &s);
        }
        assert_eq!(waited, [1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_probe_is_replaced_after_the_probe_window() {
        let breaker = Breaker::new();
        let s = settings();
        for _ in 0..MIN_CALLS {
            breaker.on_failure(SITE, Admission::Closed, &s);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(is_probe(breaker.admit(SITE, &s, false)));
        // Its caller drops it: nothing reports.
        assert_eq!(breaker.admit(SITE, &s, false), Admission::Skip);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(is_probe(breaker.admit(SITE, &s, false)));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_below_the_threshold_or_spread_out_never_open_it() {
        let breaker = Breaker::new();
        let s = settings();
        // One failure in three: below the 50 % threshold in every window.
        for i in 0..1000 {
            if i % 3 == 0 {
                breaker.on_failure(SITE, Admission::Closed, &s);
            } else {
                breaker.on_success(SITE, Admission::Closed);
            }
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Failures 11 s apart each start a new window.
        let breaker = Breaker::new();
        for _ in 0..100 {
            breaker.on_failure(SITE, Admission::Closed, &s);
            tokio::time::advance(Duration::from_secs(11)).await;
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_allows_a_fifth_of_calls_as_retries_plus_the_floor() {
        let breaker = Breaker::new();
        let s = settings();
        assert_eq!(
            breaker.bank.load(Ordering::Relaxed),
            0,
            "the bank starts empty"
        );
        let mut retries = 0;
        for _ in 0..1000 {
            breaker.deposit(&s);
            // Every call wants two retries, over 10 s of calls.
            for _ in 0..2 {
                retries += u32::from(breaker.withdraw(SITE));
            }
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        // 20 % of 1000 calls, plus the floor: a burst of 2, then one per
        // second over 10 s.
        assert!((200..=213).contains(&retries), "{retries}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spell_of_failures_spends_only_what_its_own_calls_earn() {
        let breaker = Breaker::new();
        let s = settings();
        // A long healthy history fills the bank.
        for _ in 0..1000 {
            breaker.deposit(&s);
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(breaker.bank.load(Ordering::Relaxed), BUDGET_CAP * MILLI);
        // The outage begins: its first failure empties the bank, so the
        // retries at once are the floor's burst alone.
        breaker.on_failure(SITE, Admission::Closed, &s);
        let at_once: u64 = (0..50).map(|_| u64::from(breaker.withdraw(SITE))).sum();
        assert_eq!(at_once, FLOOR_BURST, "the history paid for none");
        // Calls during the spell earn again; a failure within it keeps the bank.
        for _ in 0..10 {
            breaker.deposit(&s);
        }
        breaker.on_failure(SITE, Admission::Closed, &s);
        assert_eq!(breaker.bank.load(Ordering::Relaxed), 2 * MILLI);
        // A failure after a quiet spell starts a new one.
        tokio::time::advance(SPAN + Duration::from_secs(1)).await;
        breaker.on_failure(SITE, Admission::Closed, &s);
        assert_eq!(breaker.bank.load(Ordering::Relaxed), 0);
    }
}
