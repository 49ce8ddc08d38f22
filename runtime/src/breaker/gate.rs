//! The breaker's gate: state, the half-open probe and the trip count in
//! one atomic word, so every transition is one CAS.
//!
//! Two words (a gate and a probe counter, a gate and a trip counter) race:
//! two calls that both see the cool-down over both reset the probe counter
//! and both get a probe, and two failed probes both double the cool-down.
//! Here the word a call saw *is* its ticket: the call that moves the gate
//! from open to half-open (or renews a half-open period whose probe never
//! reported) is the probe, and only a report carrying the current ticket
//! moves the gate on, so exactly one probe is out per half-open period and
//! one failure doubles the cool-down once. A report with an old ticket (a
//! probe that outlived its period) changes nothing.
//!
//! ```text
//! bits 62–63  state: 0 closed, 1 open, 2 half-open (a probe is out)
//! bits 59–61  trips since the breaker last closed, saturating at 7
//! bits  0–58  deadline, ns since the breaker's clock base: when an open
//!             gate lets a probe through, when a half-open one replaces a
//!             probe that never reported
//! ```
//!
//! A closed gate is the word 0, so admitting a call while closed is one
//! load and no clock read. Time comes in as an argument: the protocol is
//! pure atomics, which `.ci/loom` model-checks (`loom_*` below).

use std::time::Duration;

use crate::sync::{maybe_const_fn, AtomicU64, Ordering};

const STATE_SHIFT: u32 = 62;
const OPEN: u64 = 1 << STATE_SHIFT;
const HALF_OPEN: u64 = 2 << STATE_SHIFT;
const STATE: u64 = 3 << STATE_SHIFT;
const TRIPS_SHIFT: u32 = 59;
const TRIPS: u64 = 7 << TRIPS_SHIFT;
/// The largest deadline a word holds (about 18 years of nanoseconds).
pub(super) const DEADLINE: u64 = (1 << TRIPS_SHIFT) - 1;

/// The state a gate word is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Closed,
    Open,
    HalfOpen,
}

/// What [`Gate::admit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admit {
    /// Closed: a normal call.
    Closed,
    /// This call is the half-open probe; report with this ticket. `fresh`
    /// when this call moved the gate from open (a transition to announce).
    Probe { ticket: u64, fresh: bool },
    /// Open, or half-open with its probe out.
    Skip,
}

/// The one word (see the module docs).
#[derive(Debug)]
pub(super) struct Gate {
    word: AtomicU64,
}

const fn state(word: u64) -> State {
    match word & STATE {
        0 => State::Closed,
        OPEN => State::Open,
        _ => State::HalfOpen,
    }
}

/// Trips recorded in `word`.
pub(super) const fn trips(word: u64) -> u32 {
    ((word & TRIPS) >> TRIPS_SHIFT) as u32
}

const fn pack(state: u64, trips: u32, deadline: u64) -> u64 {
    let trips = if trips > 7 { 7 } else { trips as u64 };
    state
        | trips << TRIPS_SHIFT
        | if deadline > DEADLINE {
            DEADLINE
        } else {
            deadline
        }
}

/// The cool-down after `trips` trips: `base` doubled per trip, up to
/// `base << cap_log2`.
pub(super) fn cooldown(base: Duration, trips: u32, cap_log2: u32) -> Duration {
    base.saturating_mul(1 << trips.min(cap_log2))
}

fn after(now: u64, d: Duration) -> u64 {
    now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Gate {
    maybe_const_fn! {
        pub(super) fn new() -> Gate {
            Gate { word: AtomicU64::new(0) }
        }
    }

    pub(super) fn state(&self) -> State {
        state(self.word.load(Ordering::Acquire))
    }

    /// When the gate next lets a probe through (ns), or `None` when closed.
    pub(super) fn deadline(&self) -> Option<u64> {
        let word = self.word.load(Ordering::Acquire);
        (word != 0).then_some(word & DEADLINE)
    }

    /// One load: whether the gate is closed (no clock needed).
    pub(super) fn is_closed(&self) -> bool {
        self.word.load(Ordering::Acquire) == 0
    }

    /// Admits a call at `now`; `window` is how long a probe has before
    /// another call may replace it, given the trips so far.
    pub(super) fn admit(&self, now: u64, window: impl Fn(u32) -> Duration) -> Admit {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            let fresh = match state(word) {
                State::Closed => return Admit::Closed,
                _ if now < word & DEADLINE => return Admit::Skip,
                State::Open => true,
                // The probe never reported (its caller dropped it): replace it.
                State::HalfOpen => false,
            };
            let trips = trips(word);
            let ticket = pack(HALF_OPEN, trips, after(now, window(trips)));
            match self
                .word
                .compare_exchange(word, ticket, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Admit::Probe { ticket, fresh },
                Err(actual) => word = actual,
            }
        }
    }

    /// The probe of `ticket` succeeded: closes the gate (trips back to 0).
    /// `true` when this call closed it.
    pub(super) fn probe_succeeded(&self, ticket: u64) -> bool {
        self.word
            .compare_exchange(ticket, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The probe of `ticket` failed at `now`: re-opens the gate with one
    /// more trip. `Some(trips)` when this call opened it.
    pub(super) fn probe_failed(
        &self,
        ticket: u64,
        now: u64,
        cooldown: impl Fn(u32) -> Duration,
    ) -> Option<u32> {
        let trips = trips(ticket).saturating_add(1).min(7);
        let open = pack(OPEN, trips, after(now, cooldown(trips)));
        self.word
            .compare_exchange(ticket, open, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| trips)
    }

    /// Opens a closed gate at `now` for `cooldown`; `true` when this call
    /// opened it.
    pub(super) fn trip(&self, now: u64, cooldown: Duration) -> bool {
        self.word
            .compare_exchange(
                0,
                pack(OPEN, 0, after(now, cooldown)),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Trips since the gate last closed.
    #[cfg(test)]
    pub(super) fn trips(&self) -> u32 {
        trips(self.word.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn second(_: u32) -> Duration {
        Duration::from_secs(1)
    }

    #[test]
    fn a_report_with_an_old_ticket_changes_nothing() {
        let gate = Gate::new();
        assert!(gate.trip(0, Duration::from_secs(1)));
        let Admit::Probe {
            ticket: lost,
            fresh,
        } = gate.admit(1000 * MS, second)
        else {
            panic!("a probe after the cool-down")
        };
        assert!(fresh);
        assert_eq!(gate.admit(1500 * MS, second), Admit::Skip);
        // The first probe's window is over: another call replaces it.
        let Admit::Probe { ticket, fresh } = gate.admit(2000 * MS, second) else {
            panic!("a replacement probe")
        };
        assert!(!fresh);
        assert_eq!(gate.probe_failed(lost, 2100 * MS, second), None);
        assert!(!gate.probe_succeeded(lost));
        assert_eq!(gate.state(), State::HalfOpen);
        assert_eq!(gate.probe_failed(ticket, 2100 * MS, second), Some(1));
        assert_eq!(gate.state(), State::Open);
        assert_eq!(gate.trips(), 1);
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    fn window(_: u32) -> Duration {
        Duration::from_nanos(100)
    }

    /// Two calls race the gate once the cool-down is over: exactly one is
    /// the probe, whichever order their loads and CASes interleave in.
    #[test]
    fn loom_half_open_admits_exactly_one_probe() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            assert!(gate.trip(0, Duration::from_nanos(10)));
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    let gate = Arc::clone(&gate);
                    loom::thread::spawn(move || gate.admit(10, window))
                })
                .collect();
            let admitted: Vec<Admit> = calls.into_iter().map(|c| c.join().unwrap()).collect();
            let probes = admitted
                .iter()
                .filter(|a| matches!(a, Admit::Probe { .. }))
                .count();
            assert_eq!(probes, 1, "{admitted:?}");
            assert!(admitted.contains(&Admit::Skip));
            assert_eq!(gate.state(), State::HalfOpen);
        });
    }

    /// A lost probe is replaced, and both fail at once: the gate re-opens
    /// once with one more trip (the cool-down doubles once), and a third
    /// call racing them never gets a second probe of the period.
    #[test]
    fn loom_two_failed_probes_double_the_cooldown_once() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            assert!(gate.trip(0, Duration::from_nanos(10)));
            let Admit::Probe { ticket: lost, .. } = gate.admit(10, window) else {
                panic!("the first probe")
            };
            let Admit::Probe { ticket, .. } = gate.admit(200, window) else {
                panic!("the replacement probe")
            };
            let reports: Vec<_> = [lost, ticket]
                .into_iter()
                .map(|t| {
                    let gate = Arc::clone(&gate);
                    loom::thread::spawn(move || gate.probe_failed(t, 250, window).is_some())
                })
                .collect();
            let racer = {
                let gate = Arc::clone(&gate);
                loom::thread::spawn(move || gate.admit(250, window))
            };
            let opened = reports
                .into_iter()
                .map(|r| r.join().unwrap())
                .filter(|&opened| opened)
                .count();
            assert_eq!(opened, 1);
            assert_eq!(racer.join().unwrap(), Admit::Skip);
            assert_eq!(gate.state(), State::Open);
            assert_eq!(gate.trips(), 1);
        });
    }

    /// A probe's success races its own period's replacement: the gate ends
    /// closed, or half-open with exactly one new probe, never both probes.
    #[test]
    fn loom_a_late_success_and_a_replacement_never_both_act() {
        loom::model(|| {
            let gate = Arc::new(Gate::new());
            assert!(gate.trip(0, Duration::from_nanos(10)));
            let Admit::Probe { ticket, .. } = gate.admit(10, window) else {
                panic!("the probe")
            };
            let success = {
                let gate = Arc::clone(&gate);
                loom::thread::spawn(move || gate.probe_succeeded(ticket))
            };
            let replacement = {
                let gate = Arc::clone(&gate);
                loom::thread::spawn(move || gate.admit(200, window))
            };
            let closed = success.join().unwrap();
            let admitted = replacement.join().unwrap();
            match (closed, admitted) {
                (true, Admit::Closed) => assert_eq!(gate.state(), State::Closed),
                (false, Admit::Probe { .. }) => assert_eq!(gate.state(), State::HalfOpen),
                other => panic!("{other:?} in state {:?}", gate.state()),
            }
        });
    }
}
