//! The attribute's `classify = path` key: a function decides the class of
//! each error instead of the error type's [`Classify`] implementation, so
//! any error type works, including foreign ones the orphan rule keeps from
//! implementing the trait (`reqwest::Error`, or an `anyhow::Error` whose
//! contents only the application knows how to judge).
//!
//! The generated code wraps each error of both paths in a [`Classified`]
//! for the runtime and unwraps it for the caller. A timeout or panic that
//! ends a call (fallback off) reaches the caller through `From<Fault>`:
//! `anyhow::Error`, `Box<dyn Error + Send + Sync>` and `std::io::Error`
//! have it; for a type of your own write `impl From<Fault> for MyError`; a
//! foreign type without it needs a newtype (the compiler asks for
//! `From<Fault>` at the `classify` path). With fallback on, as by default,
//! a fault never needs it: the sync path answers.

use std::future::Future;

use crate::policy::{short_type_name, Classify, ErrorClass, Fault};

/// An error of the async path with the function that classifies it, or a
/// fault the runtime observed. Generated code only.
#[doc(hidden)]
#[derive(Debug)]
pub enum Classified<E> {
    /// An error of either path, with the `classify` function.
    Error(E, fn(&E) -> ErrorClass),
    /// A timeout or panic that ended the call.
    Fault(Fault),
}

impl<E> Classified<E> {
    /// The error for the caller.
    pub fn into_error(self) -> E
    where
        E: From<Fault>,
    {
        match self {
            Classified::Error(error, _) => error,
            Classified::Fault(fault) => E::from(fault),
        }
    }
}

impl<E> Classify for Classified<E> {
    fn classify(&self) -> ErrorClass {
        match self {
            Classified::Error(error, classify) => classify(error),
            Classified::Fault(_) => ErrorClass::Fallback,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            Classified::Error(..) => short_type_name::<E>(),
            Classified::Fault(fault) => fault.error_type(),
        }
    }

    fn from_fault(fault: Fault) -> Self {
        Classified::Fault(fault)
    }
}

/// One async attempt, its error classified by `classify`.
#[doc(hidden)]
pub async fn attempt<T, E, F>(
    attempt: F,
    classify: fn(&E) -> ErrorClass,
) -> Result<T, Classified<E>>
where
    F: Future<Output = Result<T, E>>,
{
    attempt
        .await
        .map_err(|error| Classified::Error(error, classify))
}

/// The sync path's result, its error classified by `classify`.
#[doc(hidden)]
pub fn sync<T, E>(
    result: Result<T, E>,
    classify: fn(&E) -> ErrorClass,
) -> Result<T, Classified<E>> {
    result.map_err(|error| Classified::Error(error, classify))
}

/// Timeouts and panics as `io::Error`s, for `classify = path` on functions
/// returning `io::Result` (the same conversion as [`Classify::from_fault`]).
impl From<Fault> for std::io::Error {
    fn from(fault: Fault) -> Self {
        <std::io::Error as Classify>::from_fault(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A foreign error type, as far as the runtime knows.
    #[derive(Debug)]
    struct Status(u16);

    fn by_status(error: &Status) -> ErrorClass {
        if error.0 >= 500 {
            ErrorClass::Retry
        } else {
            ErrorClass::Fail
        }
    }

    #[tokio::test]
    async fn the_function_decides_and_the_error_comes_back_unchanged() {
        let unavailable = attempt(async { Err::<(), _>(Status(503)) }, by_status)
            .await
            .unwrap_err();
        assert_eq!(unavailable.classify(), ErrorClass::Retry);
        assert_eq!(unavailable.error_type(), "Status");
        let bad = sync(Err::<(), _>(Status(400)), by_status).unwrap_err();
        assert_eq!(bad.classify(), ErrorClass::Fail);
        let io = sync(Err::<(), _>(std::io::Error::other("x")), |_| {
            ErrorClass::Fail
        })
        .unwrap_err();
        assert_eq!(io.into_error().to_string(), "x");
    }

    #[test]
    fn a_fault_reaches_the_caller_through_from() {
        let fault =
            Classified::<std::io::Error>::from_fault(Fault::Timeout(Duration::from_secs(2)));
        assert_eq!(fault.error_type(), "timeout");
        assert_eq!(fault.into_error().kind(), std::io::ErrorKind::TimedOut);
    }
}
