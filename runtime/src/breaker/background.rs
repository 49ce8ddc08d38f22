//! The attribute's `probe = path`: a probe the breaker runs in the
//! background while the site is open, so that no caller waits for one.
//!
//! While a site with a probe is open, every enrolled call skips the async
//! path (sync at once, `breaker_open`). One task per site waits out the
//! cool-down, runs the probe under its own timeout (`probe_timeout`,
//! default `min(timeout, 1 s)`) and reports it to the gate like a probe
//! call would: success closes the breaker, failure re-opens it with the
//! doubled cool-down, and the task waits again. It ends when the breaker
//! closes; the next trip starts another (the first call skipped while no
//! task runs starts it, so a trip racing the task's end still gets one).
//!
//! The probe also confirms a failure while the breaker is closed: an
//! attempt that fails starts the task, which runs the probe at once, and a
//! probe that fails too opens the breaker then, without waiting for the
//! window's ten failed attempts. At one call a second those take ten
//! seconds of full timeouts; the probe, which the application wrote to say
//! whether the backend is there, takes one probe timeout. A probe that
//! succeeds leaves the breaker to its window.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::runtime::Handle;

use super::{instant_of, Admission, Breaker, BreakerSettings};

/// A probe as the attribute passes it: an `async fn() -> Result<(), E>`,
/// boxed, answering whether it succeeded.
pub(crate) type ProbeFn = fn() -> Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

/// A site's background probe and its own timeout.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    pub(crate) run: ProbeFn,
    /// `probe_timeout`; `None` for the default, `min(timeout, 1 s)`.
    pub(crate) timeout: Option<Duration>,
}

impl Probe {
    /// The probe's timeout for a site whose attempts time out after `timeout`.
    pub(crate) fn timeout(self, timeout: Duration) -> Duration {
        self.timeout
            .unwrap_or_else(|| timeout.min(Duration::from_secs(1)))
    }
}

/// Starts the probe task of the site `site` unless one runs; called by
/// skipped calls (the open path: one load when the task runs) and by failed
/// attempts. The site passes its name and its breaker: the breaker sits
/// below the site.
pub(crate) fn ensure_probing(
    site: &'static str,
    breaker: &'static Breaker,
    probe: Probe,
    timeout: Duration,
    settings: BreakerSettings,
) {
    if breaker.probing.load(Ordering::Acquire) || breaker.probing.swap(true, Ordering::AcqRel) {
        return;
    }
    match Handle::try_current() {
        Ok(handle) => {
            handle.spawn(probe_until_closed(
                site,
                breaker,
                probe.run,
                probe.timeout(timeout),
                settings,
            ));
        }
        Err(_) => breaker.probing.store(false, Ordering::Release),
    }
}

/// Clears `probing` however the task ends (closed, panicked, its runtime
/// shut down), so a later call can start another.
struct Probing(&'static Breaker);

impl Drop for Probing {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

async fn probe_until_closed(
    site: &'static str,
    breaker: &'static Breaker,
    probe: ProbeFn,
    timeout: Duration,
    settings: BreakerSettings,
) {
    let _probing = Probing(breaker);
    if breaker.gate.is_closed() {
        // An attempt failed while closed: confirm it.
        if healthy(probe, timeout).await {
            return;
        }
        tracing::debug!(site, "async upload probe confirms a failure");
        breaker.trip(site, &settings, super::now_ns());
    }
    while let Some(deadline) = breaker.gate.deadline() {
        tokio::time::sleep_until(instant_of(deadline)).await;
        let Admission::Probe(ticket) = breaker.admit_probe(site, &settings) else {
            continue;
        };
        let admission = Admission::Probe(ticket);
        if healthy(probe, timeout).await {
            breaker.on_success(site, admission);
        } else {
            tracing::debug!(site, "async upload background probe failed");
            breaker.on_failure(site, admission, &settings);
        }
    }
}

/// Runs the probe once under `timeout`: whether it found the backend healthy.
async fn healthy(probe: ProbeFn, timeout: Duration) -> bool {
    matches!(tokio::time::timeout(timeout, probe()).await, Ok(true))
}

/// What a `probe` function returns: `Result<(), E>`, healthy when `Ok`.
#[diagnostic::on_unimplemented(
    message = "the `probe` function must return `Result<(), E>`, not `{Self}`",
    label = "returns `{Self}`",
    note = "`probe = path` names an `async fn() -> Result<(), E>`: `Ok(())` when the async backend is healthy"
)]
pub trait ProbeOutcome {
    /// Whether the probe found the backend healthy.
    fn healthy(self) -> bool;
}

impl<E> ProbeOutcome for Result<(), E> {
    fn healthy(self) -> bool {
        self.is_ok()
    }
}

/// For generated code: a probe's outcome as the breaker takes it.
#[doc(hidden)]
pub fn probe_ok<R: ProbeOutcome>(outcome: R) -> bool {
    outcome.healthy()
}
