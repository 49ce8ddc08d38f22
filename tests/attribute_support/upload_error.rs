//! The error type of the attribute tests' stand-in uploads: one variant per
//! classification.

use async_upload::{Classify, ErrorClass, Fault};

#[derive(Clone, Debug, PartialEq)]
#[allow(dead_code)] // each test binary constructs its own subset
pub enum UploadError {
    /// Retried.
    Transient,
    /// Falls back at once.
    Unsupported,
    /// Fails the call, no fallback.
    Invalid,
    /// A runtime fault (timeout, panic), as the runtime builds it.
    Fault(String),
}

impl Classify for UploadError {
    fn classify(&self) -> ErrorClass {
        match self {
            UploadError::Transient => ErrorClass::Retry,
            UploadError::Unsupported | UploadError::Fault(_) => ErrorClass::Fallback,
            UploadError::Invalid => ErrorClass::Fail,
        }
    }

    fn from_fault(fault: Fault) -> Self {
        UploadError::Fault(fault.to_string())
    }
}
