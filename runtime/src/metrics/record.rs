//! One record per call: [`UploadRecord`] and its [`ExecutionType`].

use std::borrow::Cow;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Which path served a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionType {
    /// The sync path ran by decision (disabled, rolled back or not enrolled).
    Sync,
    /// The async path served the call (successfully or not).
    Async,
    /// The async path gave up and the sync path took over.
    SyncFallback,
}

impl ExecutionType {
    /// Every execution type, in the order summaries list them.
    pub const ALL: [ExecutionType; 3] = [
        ExecutionType::Sync,
        ExecutionType::Async,
        ExecutionType::SyncFallback,
    ];

    /// The name used in records: `sync`, `async` or `sync_fallback`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionType::Sync => "sync",
            ExecutionType::Async => "async",
            ExecutionType::SyncFallback => "sync_fallback",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for ExecutionType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `error_type` of a call whose caller dropped its future before it finished.
pub const CANCELLED: &str = "cancelled";
/// `error_type` of a call whose async body panicked: a critical error.
pub const PANIC: &str = "panic";
/// `error_type` of a call whose last async attempt timed out.
pub const TIMEOUT: &str = "timeout";
/// `error_type` of a call whose sync path panicked (the panic is then
/// resumed on the caller). Not critical: the old code panicked too.
pub const SYNC_PANIC: &str = "sync_panic";

/// What happened in one call of an annotated function.
///
/// Every call produces exactly one record, also when its future is dropped
/// (`error_type = "cancelled"`). Its JSON form is the `upload` line of the
/// JSONL log.
///
/// `error_type` names the error that ended a failed call; on a successful
/// `sync_fallback` call it names the async error that caused the fallback.
///
/// ```
/// use async_upload_runtime::metrics::{ExecutionType, UploadRecord};
///
/// let record = UploadRecord::new("upload", ExecutionType::Async, true, 12.5, 1);
/// assert_eq!(record.execution_type.as_str(), "async");
/// assert!(!record.is_critical());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// When the call ended (RFC 3339, UTC, in JSON).
    #[serde(with = "rfc3339")]
    pub ts: SystemTime,
    /// The site's name.
    pub site: Cow<'static, str>,
    /// The path that served the call.
    pub execution_type: ExecutionType,
    /// Whether the caller got `Ok`.
    pub success: bool,
    /// Duration of the whole call, decision to result, in milliseconds.
    pub duration_ms: f64,
    /// Async attempts made (0 when the sync path ran by decision).
    pub attempts: u32,
    /// The error that ended the call, or caused its fallback.
    pub error_type: Option<Cow<'static, str>>,
    /// Size of the upload, when the site declares one.
    pub bytes: Option<u64>,
}

impl UploadRecord {
    /// A record stamped now, with no error and no size.
    #[must_use]
    pub fn new(
        site: impl Into<Cow<'static, str>>,
        execution_type: ExecutionType,
        success: bool,
        duration_ms: f64,
        attempts: u32,
    ) -> Self {
        UploadRecord {
            ts: SystemTime::now(),
            site: site.into(),
            execution_type,
            success,
            duration_ms,
            attempts,
            error_type: None,
            bytes: None,
        }
    }

    /// A critical error: the async body panicked.
    #[must_use]
    pub fn is_critical(&self) -> bool {
        self.error_type.as_deref() == Some(PANIC)
    }

    /// The caller dropped the call's future before it finished.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.error_type.as_deref() == Some(CANCELLED)
    }

    /// The duration in whole microseconds, as the aggregator counts it.
    #[must_use]
    pub fn duration_micros(&self) -> u64 {
        // Saturating float-to-int cast: negative or NaN durations count as 0.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (self.duration_ms * 1000.0).round() as u64;
        micros
    }
}

/// RFC 3339 timestamps in UTC with microseconds, e.g. `2026-11-30T01:25:18.123456Z`.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        ts: &SystemTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_micros(*ts))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text).map_err(|e| {
            D::Error::custom(format_args!(
                "`ts` {text:?} is not an RFC 3339 UTC time: {e}"
            ))
        })
    }
}
