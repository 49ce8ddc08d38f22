//! Move a critical upload path from blocking code to async code without
//! betting the service on it.
//!
//! One attribute turns the new `async fn` into a guarded rollout: a feature
//! flag and a consistent-hash percentage decide per call which path runs,
//! transient failures are retried under a per-attempt timeout, the old sync
//! path takes over when the new one gives up, and every call is recorded.
//!
//! ```
//! use std::io;
//! use async_upload::async_upload;
//!
//! #[derive(Clone)]
//! struct UploadRequest {
//!     id: String,
//!     bytes: Vec<u8>,
//! }
//!
//! // Today's code: blocking, proven.
//! fn upload_blocking(req: UploadRequest) -> io::Result<usize> {
//!     Ok(req.bytes.len())
//! }
//!
//! // The new code. Callers keep calling `upload(req).await`.
//! #[async_upload(retries = 2, timeout = 30, fallback = upload_blocking,
//!                key = req.id.as_str(), size = req.bytes.len())]
//! async fn upload(req: UploadRequest) -> io::Result<usize> {
//!     Ok(req.bytes.len())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Async is off until an operator turns it on (`ASYNC_UPLOAD_ENABLED=true`
//! // and `ASYNC_UPLOAD_ROLLOUT=1`, or the live handle): the first calls take
//! // the sync path, exactly as before the migration.
//! let req = UploadRequest { id: "file-1".into(), bytes: vec![0; 1024] };
//! assert_eq!(upload(req).await.unwrap(), 1024);
//!
//! // Enrol every key at run time; the same call now takes the async path.
//! async_upload::config::handle()
//!     .update(|config| {
//!         config.enabled = true;
//!         config.rollout = 100.0;
//!     })
//!     .unwrap();
//! let req = UploadRequest { id: "file-2".into(), bytes: vec![0; 2048] };
//! assert_eq!(upload(req).await.unwrap(), 2048);
//! # }
//! ```
//!
//! The error type says which failures are worth a retry, a fallback, or
//! neither, by implementing [`Classify`] (`std::io::Error` does already).
//! The [`config`] module holds the environment variables and the live handle
//! (kill switch, rollout percentage, per-site overrides); [`metrics`] the
//! record of each call and the sink trait; [`log`] the JSONL log; [`stages`]
//! the rollout controller that moves a site through 1 % → 10 % → 50 % → 100 %
//! and rolls it back when its health breaks. The README has the configuration
//! table, the bucketing formula and the record schema.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

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
    pub use async_upload_runtime::classify_fn::{
        attempt as classify_attempt, sync as classify_sync, Classified,
    };
    pub use async_upload_runtime::execute::{execute, execute_in_place, Lend};
    pub use async_upload_runtime::{ByteCount, Site};
}
