//! What to do with an error of the async path, and how long to wait before
//! trying again.
//!
//! The user's error type implements [`Classify`]: each error is either worth
//! another attempt ([`ErrorClass::Retry`]), a reason to hand the call to the
//! old sync path ([`ErrorClass::Fallback`]), or final ([`ErrorClass::Fail`]).
//! Between attempts the runtime sleeps for an exponential [`Backoff`] with
//! full jitter.

use core::fmt;
use std::io;
use std::time::Duration;

use crate::metrics::RuntimeFault;

/// What the runtime does with an error of the async path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Transient: try the async path again while retries are left, then fall back.
    Retry,
    /// The async path cannot do this call: run the sync path (if fallback is on).
    Fallback,
    /// Final: return the error to the caller, without retry or fallback
    /// (e.g. the request itself is invalid, so the sync path would fail too).
    Fail,
}

/// A failure the runtime observed itself rather than an error the async
/// body returned: an attempt that timed out, an async body that panicked,
/// or a call the open circuit breaker did not attempt.
///
/// When such a failure ends a call (fallback is off), the runtime turns it
/// into the user's error type with [`Classify::from_fault`]. New faults may
/// be added: match with a `_` arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Every attempt ran into the per-attempt timeout; this is the last one.
    Timeout(Duration),
    /// The async body panicked, with the panic's message when it had one.
    Panic(String),
    /// The site's circuit breaker is open (its recent async attempts failed)
    /// and fallback is off, so no sync path can take the call: it fails at
    /// once, without an attempt, rather than after a timeout per attempt.
    BreakerOpen,
}

impl Fault {
    /// The `error_type` this fault is recorded with: `"timeout"`, `"panic"`
    /// or `"breaker_open"`.
    #[must_use]
    pub const fn error_type(&self) -> &'static str {
        self.runtime_fault().as_str()
    }

    /// The fault as the record carries it.
    pub(crate) const fn runtime_fault(&self) -> RuntimeFault {
        match self {
            Fault::Timeout(_) => RuntimeFault::Timeout,
            Fault::Panic(_) => RuntimeFault::Panic,
            Fault::BreakerOpen => RuntimeFault::BreakerOpen,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Timeout(limit) => write!(f, "async upload attempt timed out after {limit:?}"),
            Fault::Panic(message) => write!(f, "async upload panicked: {message}"),
            Fault::BreakerOpen => f.write_str(
                "async upload not attempted: the circuit breaker is open (recent attempts failed) and fallback is off",
            ),
        }
    }
}

impl std::error::Error for Fault {}

/// Classifies an error of the async path and names it in records.
///
/// Implement it for the error type of an annotated function. The runtime
/// implements it for [`std::io::Error`].
///
/// ```
/// use async_upload_runtime::policy::{Classify, ErrorClass, Fault};
///
/// #[derive(Debug)]
/// enum UploadError {
///     Unavailable,
///     TooLarge,
///     Io(std::io::Error),
///     Fault(Fault),
/// }
///
/// impl Classify for UploadError {
///     fn classify(&self) -> ErrorClass {
///         match self {
///             UploadError::Unavailable => ErrorClass::Retry,
///             UploadError::TooLarge => ErrorClass::Fail,
///             UploadError::Io(e) => e.classify(),
///             UploadError::Fault(_) => ErrorClass::Fallback,
///         }
///     }
///
///     fn error_type(&self) -> &'static str {
///         match self {
///             UploadError::Unavailable => "unavailable",
///             UploadError::TooLarge => "too_large",
///             UploadError::Io(e) => e.error_type(),
///             UploadError::Fault(f) => f.error_type(),
///         }
///     }
///
///     fn from_fault(fault: Fault) -> Self {
///         UploadError::Fault(fault)
///     }
/// }
///
/// assert_eq!(UploadError::Unavailable.classify(), ErrorClass::Retry);
/// ```
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` does not say which failures to retry, fall back on, or return",
    label = "needs `async_upload::Classify`",
    note = "`std::io::Error`, `Box<dyn std::error::Error + Send + Sync>` and `anyhow::Error` (cargo feature `anyhow`) work as they are",
    note = "for any other error type, name a `fn(&{Self}) -> async_upload::ErrorClass` in the attribute: `classify = my_classify` (a timeout or panic then reaches the caller through `From<async_upload::Fault>`)",
    note = "or, for a type of your own, implement `async_upload::Classify` for it: `classify` (Retry / Fallback / Fail) and `from_fault` (a timeout or panic as `{Self}`); a type from another crate can be wrapped in a newtype of yours"
)]
pub trait Classify {
    /// Whether to retry, fall back or fail on this error.
    fn classify(&self) -> ErrorClass;

    /// A short, stable name for the `error_type` field of records
    /// (`"connection_reset"`, `"unavailable"`). Defaults to the type's name.
    ///
    /// The names of [`RuntimeFault`]s (`"panic"`, `"timeout"`, `"cancelled"`,
    /// `"sync_panic"`, `"breaker_open"`) are the runtime's own: a user error returning one is
    /// recorded as `"user:"` and the name (`"user:timeout"`), and it never
    /// counts as the runtime's fault (a user error named `"panic"` is not
    /// critical and never rolls a site back). Whether a call was critical is
    /// decided by the record's typed [`fault`](crate::metrics::UploadRecord::fault),
    /// not by this name.
    fn error_type(&self) -> &'static str {
        short_type_name::<Self>()
    }

    /// Builds the error returned to the caller when a [`Fault`] ends the call
    /// (the async path timed out or panicked and fallback is off).
    fn from_fault(fault: Fault) -> Self
    where
        Self: Sized;

    /// Whether the request may have reached the backend before this error,
    /// so the attempt's outcome is unknown: the upload may be stored (a
    /// connection reset or closed after the body was sent, a read timeout).
    /// Such attempts are counted in the record's `ambiguous_attempts`, with
    /// timeouts and panics; a retry or fallback after one is a duplicate
    /// unless the backend deduplicates by [`call_id`](crate::call_id()).
    ///
    /// Default `false`: the error was an answer (the backend refused the
    /// request) or came before anything was sent. `std::io::Error` answers
    /// `true` for `TimedOut`, `ConnectionReset`, `ConnectionAborted`,
    /// `BrokenPipe` and `UnexpectedEof`.
    fn outcome_unknown(&self) -> bool {
        false
    }
}

/// `core::any::type_name` without the module path: `my_crate::UploadError` → `UploadError`.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = core::any::type_name::<T>();
    let before_generics = full.split('<').next().unwrap_or(full);
    before_generics
        .rsplit("::")
        .next()
        .unwrap_or(before_generics)
}

/// Transport failures that a second attempt may well get past are retried;
/// everything else goes to the sync path.
impl Classify for io::Error {
    fn classify(&self) -> ErrorClass {
        use io::ErrorKind::{
            BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted,
            TimedOut,
        };
        match self.kind() {
            TimedOut | ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe
            | Interrupted => ErrorClass::Retry,
            _ => ErrorClass::Fallback,
        }
    }

    fn error_type(&self) -> &'static str {
        use io::ErrorKind as K;
        match self.kind() {
            K::TimedOut => "timed_out",
            K::ConnectionRefused => "connection_refused",
            K::ConnectionReset => "connection_reset",
            K::ConnectionAborted => "connection_aborted",
            K::BrokenPipe => "broken_pipe",
            K::Interrupted => "interrupted",
            K::NotFound => "not_found",
            K::PermissionDenied => "permission_denied",
            K::UnexpectedEof => "unexpected_eof",
            K::InvalidInput => "invalid_input",
            K::InvalidData => "invalid_data",
            K::WriteZero => "write_zero",
            K::OutOfMemory => "out_of_memory",
            K::AlreadyExists => "already_exists",
            K::WouldBlock => "would_block",
            K::AddrInUse => "addr_in_use",
            K::AddrNotAvailable => "addr_not_available",
            K::NotConnected => "not_connected",
            K::Unsupported => "unsupported",
            _ => "io",
        }
    }

    fn from_fault(fault: Fault) -> Self {
        let kind = match fault {
            Fault::Timeout(_) => io::ErrorKind::TimedOut,
            Fault::Panic(_) | Fault::BreakerOpen => io::ErrorKind::Other,
        };
        io::Error::new(kind, fault)
    }

    /// The connection broke or went silent once it was up: what was sent
    /// may have arrived. A refused connection sent nothing.
    fn outcome_unknown(&self) -> bool {
        use io::ErrorKind::{
            BrokenPipe, ConnectionAborted, ConnectionReset, TimedOut, UnexpectedEof,
        };
        matches!(
            self.kind(),
            TimedOut | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
        )
    }
}

/// Exponential backoff with full jitter and a cap.
///
/// Before retry `n` (counting from 0) the runtime sleeps for a uniformly
/// random duration in `0..=min(cap, base * 2^n)`. Full jitter spreads
/// retries of many callers that failed together, so a recovering server is
/// not hit by synchronized waves.
///
/// ```
/// use std::time::Duration;
/// use async_upload_runtime::policy::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
/// assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
/// assert_eq!(backoff.ceiling(10), Duration::from_secs(2));
/// assert!(backoff.delay(3) <= Duration::from_millis(800));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Backoff starting at `base` and never above `cap`.
    #[must_use]
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The ceiling of the first sleep.
    #[must_use]
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// The ceiling no sleep exceeds.
    #[must_use]
    pub const fn cap(&self) -> Duration {
        self.cap
    }

    /// The longest possible sleep before retry `retry` (0-based).
    #[must_use]
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1_u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random sleep in `0..=ceiling(retry)`.
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_classify_as_design_says() {
        use io::ErrorKind as K;
        for kind in [
            K::TimedOut,
            K::ConnectionRefused,
            K::ConnectionReset,
            K::ConnectionAborted,
            K::BrokenPipe,
            K::Interrupted,
        ] {
            assert_eq!(
                io::Error::from(kind).classify(),
                ErrorClass::Retry,
                "{kind:?}"
            );
        }
        for kind in [K::NotFound, K::PermissionDenied, K::InvalidData, K::Other] {
            assert_eq!(
                io::Error::from(kind).classify(),
                ErrorClass::Fallback,
                "{kind:?}"
            );
        }
        assert_eq!(
            io::Error::from(K::ConnectionReset).error_type(),
            "connection_reset"
        );
    }

    #[test]
    fn faults_become_io_errors_of_the_matching_kind() {
        let e = io::Error::from_fault(Fault::Timeout(Duration::from_secs(1)));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let e = io::Error::from_fault(Fault::Panic("boom".into()));
        assert!(e.to_string().contains("boom"));
    }

    #[test]
    fn default_error_type_is_the_short_type_name() {
        struct MyError;
        impl Classify for MyError {
            fn classify(&self) -> ErrorClass {
                ErrorClass::Fail
            }
            fn from_fault(_: Fault) -> Self {
                MyError
            }
        }
        assert_eq!(MyError.error_type(), "MyError");
    }

    #[test]
    fn backoff_grows_exponentially_under_the_cap_with_jitter() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        assert_eq!(b.ceiling(0), Duration::from_millis(10));
        assert_eq!(b.ceiling(1), Duration::from_millis(20));
        assert_eq!(b.ceiling(2), Duration::from_millis(40));
        assert_eq!(b.ceiling(3), Duration::from_millis(50));
        assert_eq!(b.ceiling(200), Duration::from_millis(50));
        let delays: Vec<_> = (0..1000).map(|_| b.delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(40)));
        // Full jitter: draws spread over the whole range, not clustered at the ceiling.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(10)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(30)));
    }
}
