//! [`Classify`] for the error types applications return without defining
//! their own: `Box<dyn Error + Send + Sync>` and (feature `anyhow`)
//! `anyhow::Error`.
//!
//! Neither says by its type what went wrong, so the classification looks
//! inside: the first [`io::Error`] in the error's source chain (the error
//! itself, then each `source()`) is classified as `io::Error` is (timeouts
//! and dropped connections are retried, other I/O errors fall back); an
//! error with no `io::Error` in its chain falls back. A timeout or panic
//! becomes the error through `From<Fault>`, as `?` would convert it.
//!
//! To decide otherwise (say, retry a `reqwest` timeout found inside an
//! `anyhow::Error`), give the attribute `classify = path` with a
//! `fn(&E) -> ErrorClass`.

use std::error::Error;
use std::io;

use crate::policy::{Classify, ErrorClass, Fault};

/// The first `io::Error` in `error`'s source chain, `error` included.
fn find_io_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a io::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return Some(io);
        }
        next = error.source();
    }
    None
}

/// The class of an error that carries no classification of its own.
fn by_chain(error: &(dyn Error + 'static)) -> ErrorClass {
    find_io_error(error).map_or(ErrorClass::Fallback, Classify::classify)
}

/// Whether the chain's `io::Error` says the request may have reached the
/// backend.
fn chain_outcome_unknown(error: &(dyn Error + 'static)) -> bool {
    find_io_error(error).is_some_and(Classify::outcome_unknown)
}

/// The record's `error_type`: the chain's `io::Error` name, a fault's own
/// name, or `"error"`.
fn chain_type(error: &(dyn Error + 'static)) -> &'static str {
    if let Some(fault) = error.downcast_ref::<Fault>() {
        return fault.error_type();
    }
    find_io_error(error).map_or("error", Classify::error_type)
}

/// An [`io::Error`] anywhere in the source chain decides; anything else
/// falls back.
///
/// ```
/// use std::error::Error;
/// use std::io;
/// use async_upload::{Classify, ErrorClass};
///
/// let reset: Box<dyn Error + Send + Sync> = io::Error::from(io::ErrorKind::ConnectionReset).into();
/// assert_eq!(reset.classify(), ErrorClass::Retry);
/// let parse: Box<dyn Error + Send + Sync> = "x".parse::<u8>().unwrap_err().into();
/// assert_eq!(parse.classify(), ErrorClass::Fallback);
/// ```
impl Classify for Box<dyn Error + Send + Sync> {
    fn classify(&self) -> ErrorClass {
        by_chain(&**self)
    }

    fn error_type(&self) -> &'static str {
        chain_type(&**self)
    }

    fn from_fault(fault: Fault) -> Self {
        Box::new(fault)
    }

    fn outcome_unknown(&self) -> bool {
        chain_outcome_unknown(&**self)
    }
}

/// An [`io::Error`] anywhere in the chain (also under `.context(..)`)
/// decides; anything else falls back.
///
/// ```
/// use std::io;
/// use anyhow::Context;
/// use async_upload::{Classify, ErrorClass};
///
/// let reset = Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionReset))
///     .context("uploading part 3")
///     .unwrap_err();
/// assert_eq!(reset.classify(), ErrorClass::Retry);
/// assert_eq!(anyhow::anyhow!("quota exceeded").classify(), ErrorClass::Fallback);
/// ```
#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
impl Classify for anyhow::Error {
    fn classify(&self) -> ErrorClass {
        by_chain(self.as_ref())
    }

    fn error_type(&self) -> &'static str {
        chain_type(self.as_ref())
    }

    fn from_fault(fault: Fault) -> Self {
        anyhow::Error::new(fault)
    }

    fn outcome_unknown(&self) -> bool {
        chain_outcome_unknown(self.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;
    use std::time::Duration;

    /// An application error wrapping an `io::Error` as its source.
    #[derive(Debug)]
    struct Upload(io::Error);

    impl fmt::Display for Upload {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("upload failed")
        }
    }

    impl Error for Upload {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn boxed(error: impl Error + Send + Sync + 'static) -> Box<dyn Error + Send + Sync> {
        Box::new(error)
    }

    #[test]
    fn an_io_error_anywhere_in_the_chain_decides() {
        let nested = boxed(Upload(io::ErrorKind::TimedOut.into()));
        assert_eq!(nested.classify(), ErrorClass::Retry);
        assert_eq!(nested.error_type(), "timed_out");
        let nested = boxed(Upload(io::ErrorKind::NotFound.into()));
        assert_eq!(nested.classify(), ErrorClass::Fallback);
        assert_eq!(nested.error_type(), "not_found");
        let plain = boxed(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(plain.classify(), ErrorClass::Retry);
    }

    #[test]
    fn an_io_error_in_the_chain_says_whether_the_request_may_have_landed() {
        assert!(boxed(Upload(io::ErrorKind::ConnectionReset.into())).outcome_unknown());
        assert!(!boxed(Upload(io::ErrorKind::ConnectionRefused.into())).outcome_unknown());
        assert!(!boxed(Upload(io::ErrorKind::NotFound.into())).outcome_unknown());
        let parse: Box<dyn Error + Send + Sync> = "x".parse::<u8>().unwrap_err().into();
        assert!(!parse.outcome_unknown());
    }

    #[test]
    fn anything_else_falls_back() {
        let other: Box<dyn Error + Send + Sync> = "quota exceeded".into();
        assert_eq!(other.classify(), ErrorClass::Fallback);
        assert_eq!(other.error_type(), "error");
    }

    #[test]
    fn a_fault_becomes_the_error_and_keeps_its_name() {
        let timeout =
            <Box<dyn Error + Send + Sync>>::from_fault(Fault::Timeout(Duration::from_secs(1)));
        assert_eq!(timeout.error_type(), "timeout");
        assert!(timeout.downcast_ref::<Fault>().is_some());
    }

    #[cfg(feature = "anyhow")]
    #[test]
    fn anyhow_errors_are_classified_through_their_context() {
        use anyhow::Context;
        let reset = Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionReset))
            .context("part 3")
            .context("upload")
            .unwrap_err();
        assert_eq!(reset.classify(), ErrorClass::Retry);
        assert_eq!(reset.error_type(), "connection_reset");
        let panic = anyhow::Error::from_fault(Fault::Panic("boom".into()));
        assert_eq!(
            (panic.classify(), panic.error_type()),
            (ErrorClass::Fallback, "panic")
        );
    }
}
