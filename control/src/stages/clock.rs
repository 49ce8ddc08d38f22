//! Injectable time for the controller: [`Clock`], [`SystemClock`],
//! [`TokioClock`] and the hand-driven [`ManualClock`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Where the controller reads time: a monotonic instant for windows and
/// durations, a wall time for the log's timestamps.
pub trait Clock: Send + Sync {
    /// Monotonic now.
    fn now(&self) -> Instant;

    /// Wall-clock now, for timestamps.
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Tokio's clock: follows `tokio::time::pause` and `advance` in tests, so a
/// controller run by [`drive`](super::drive) goes through days in
/// milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use async_upload::stages::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(48 * 3600));
/// assert_eq!(clock.now() - start, Duration::from_secs(48 * 3600));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    start: Instant,
    start_wall: SystemTime,
    offset: Arc<Mutex<Duration>>,
}

impl ManualClock {
    /// A clock at the real now, standing still.
    #[must_use]
    pub fn new() -> Self {
        ManualClock {
            start: Instant::now(),
            start_wall: SystemTime::now(),
            offset: Arc::default(),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// Time since the clock was made.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn wall(&self) -> SystemTime {
        self.start_wall + self.elapsed()
    }
}
