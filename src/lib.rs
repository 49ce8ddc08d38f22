//! Move a critical upload path from blocking code to async code without
//! betting the service on it.
//!
//! One attribute turns an async function into a guarded rollout: a feature
//! flag and a consistent-hash percentage decide per call which path runs,
//! transient failures are retried under a per-attempt timeout, the old sync
//! path takes over when the new one gives up, and every call is recorded.
//!
//! See the README for the attribute, the configuration table and the
//! rollout stages.
#![deny(missing_docs)]

pub use async_upload_macros::async_upload;
/// Fleet mode (cargo feature `redis`): shared flags, stage and rollback in Redis.
#[cfg(feature = "redis")]
pub use async_upload_runtime::fleet;
pub use async_upload_runtime::{config, execute, log, metrics, policy, rollout, stages};
pub use async_upload_runtime::{
    ByteCount, Call, Classify, ErrorClass, Fault, Path, Site, SyncReason,
};

/// Generated code reaches the runtime through here; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use async_upload_runtime::execute::{execute, execute_in_place, Lend};
    pub use async_upload_runtime::{ByteCount, Site};
}
