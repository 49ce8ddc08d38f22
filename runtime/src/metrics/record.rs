//! One record per call: [`UploadRecord`] and its [`ExecutionType`].

use std::borrow::Cow;
use std::time::SystemTime;

use crate::call_id::CallId;

/// Which path served a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
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

    /// The position of this path in `[sync, async, sync_fallback]`: the
    /// index of per-path arrays, in the order of [`ExecutionType::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for ExecutionType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault the runtime observed itself, as opposed to an error the user's
/// code returned: what decides whether a call was critical, cancelled or
/// timed out. Its name is reserved: a user error named like one is recorded
/// qualified (see [`Classify::error_type`](crate::Classify::error_type)).
///
/// ```
/// use async_upload::metrics::{ExecutionType, RuntimeFault, UploadRecord};
///
/// let record = UploadRecord::new("upload", ExecutionType::SyncFallback, true, 8.0, 1)
///     .with_fault(RuntimeFault::Panic);
/// assert!(record.is_critical());
/// assert_eq!(record.error_type.as_deref(), Some("panic"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum RuntimeFault {
    /// The async body panicked: a critical error, the site rolls back.
    Panic,
    /// The last async attempt ran into the per-attempt timeout.
    Timeout,
    /// The caller dropped the call's future before it finished.
    Cancelled,
    /// The sync path panicked (the panic is then resumed on the caller).
    /// Not critical: the old code panicked too.
    SyncPanic,
    /// The site's circuit breaker was open: the call skipped the async path
    /// and the sync path took it (`sync_fallback`, an async failure for
    /// stage health).
    BreakerOpen,
}

impl RuntimeFault {
    /// Every fault, i.e. every reserved name.
    pub const ALL: [RuntimeFault; 5] = [
        RuntimeFault::Panic,
        RuntimeFault::Timeout,
        RuntimeFault::Cancelled,
        RuntimeFault::SyncPanic,
        RuntimeFault::BreakerOpen,
    ];

    /// The reserved `error_type` this fault is recorded with: `panic`,
    /// `timeout`, `cancelled`, `sync_panic` or `breaker_open`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RuntimeFault::Panic => "panic",
            RuntimeFault::Timeout => "timeout",
            RuntimeFault::Cancelled => "cancelled",
            RuntimeFault::SyncPanic => "sync_panic",
            RuntimeFault::BreakerOpen => "breaker_open",
        }
    }

    /// The name a user error that picked this fault's name is recorded
    /// with: `user:` and the name, so it can never read as the fault.
    const fn qualified(self) -> &'static str {
        match self {
            RuntimeFault::Panic => "user:panic",
            RuntimeFault::Timeout => "user:timeout",
            RuntimeFault::Cancelled => "user:cancelled",
            RuntimeFault::SyncPanic => "user:sync_panic",
            RuntimeFault::BreakerOpen => "user:breaker_open",
        }
    }

    /// Whether a call with this fault counts as critical.
    #[must_use]
    pub const fn is_critical(self) -> bool {
        matches!(self, RuntimeFault::Panic)
    }

    /// The fault with this reserved name.
    pub(crate) fn named(name: &str) -> Option<RuntimeFault> {
        RuntimeFault::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl core::fmt::Display for RuntimeFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call ran the sync path: on every record whose call ran it
/// (`sync` and `sync_fallback`), absent on the others.
///
/// ```
/// use async_upload::SyncReason;
///
/// assert_eq!(SyncReason::NotEnrolled.as_str(), "not_enrolled");
/// assert_eq!("breaker_open".parse::<SyncReason>(), Ok(SyncReason::BreakerOpen));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum SyncReason {
    /// `enabled = false`, globally or for the site (the kill switch).
    Disabled,
    /// The site is rolled back.
    RolledBack,
    /// The key's bucket is above the rollout threshold.
    NotEnrolled,
    /// The site's circuit breaker was open: the call skipped the async path.
    BreakerOpen,
    /// The async path gave up (retries spent, an error classified
    /// `Fallback`, a timeout or a panic) and the fallback took the call.
    AsyncGaveUp,
    /// No Tokio runtime drove the call, so there was no timer for the
    /// async path's timeout.
    NoRuntime,
    /// A testing scope forced the sync path
    /// ([`ScopeBuilder::force_sync`](crate::testing::ScopeBuilder::force_sync),
    /// cargo feature `testing`).
    ForcedSync,
}

impl SyncReason {
    /// Every reason, in the order reports list them.
    pub const ALL: [SyncReason; 7] = [
        SyncReason::Disabled,
        SyncReason::RolledBack,
        SyncReason::NotEnrolled,
        SyncReason::BreakerOpen,
        SyncReason::AsyncGaveUp,
        SyncReason::NoRuntime,
        SyncReason::ForcedSync,
    ];

    /// The name in records: `disabled`, `rolled_back`, `not_enrolled`,
    /// `breaker_open`, `async_gave_up`, `no_runtime` or `forced_sync`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncReason::Disabled => "disabled",
            SyncReason::RolledBack => "rolled_back",
            SyncReason::NotEnrolled => "not_enrolled",
            SyncReason::BreakerOpen => "breaker_open",
            SyncReason::AsyncGaveUp => "async_gave_up",
            SyncReason::NoRuntime => "no_runtime",
            SyncReason::ForcedSync => "forced_sync",
        }
    }
}

impl core::fmt::Display for SyncReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no [`SyncReason`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSyncReasonError(String);

impl core::fmt::Display for ParseSyncReasonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = SyncReason::ALL.iter().map(|r| r.as_str()).collect();
        write!(
            f,
            "{:?} is not a sync reason: expected one of {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for ParseSyncReasonError {}

impl core::str::FromStr for SyncReason {
    type Err = ParseSyncReasonError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SyncReason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == name)
            .ok_or_else(|| ParseSyncReasonError(name.chars().take(40).collect()))
    }
}

/// The `error_type` recorded for a user error named `name`: the name
/// itself, or, when it is reserved for a [`RuntimeFault`], its `user:`
/// qualified form (a static string: no allocation).
#[must_use]
pub(crate) fn user_error_name(name: &'static str) -> &'static str {
    RuntimeFault::named(name).map_or(name, RuntimeFault::qualified)
}

/// What happened in one call of an annotated function.
///
/// Every call produces exactly one record, also when its future is dropped
/// (fault [`RuntimeFault::Cancelled`]). Its JSON form is the `upload` line
/// of the JSONL log, which states `"critical"` and `"fault"` explicitly;
/// lines written before those fields existed still read, their fault
/// inferred from the reserved `error_type` names.
///
/// `error_type` names the error that ended a failed call; on a successful
/// `sync_fallback` call it names the async error that caused the fallback.
/// Whether the call was critical, cancelled or timed out is decided by
/// [`UploadRecord::fault`], never by the name.
///
/// ```
/// use async_upload::metrics::{ExecutionType, UploadRecord};
///
/// let record = UploadRecord::new("upload", ExecutionType::Async, true, 12.5, 1);
/// assert_eq!(record.execution_type.as_str(), "async");
/// assert!(!record.is_critical());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UploadRecord {
    /// When the call ended (RFC 3339, UTC, in JSON).
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
    /// The runtime's own fault in this call, if any. An async panic is kept
    /// over any later fault (a fallback that then fails or is cancelled),
    /// because it is what makes the call critical.
    pub fault: Option<RuntimeFault>,
    /// The call's id, the same one [`call_id`](crate::call_id()) returned
    /// inside it; `None` in lines written before it was recorded.
    pub call_id: Option<CallId>,
    /// Why the call ran the sync path, if it did (`sync` and
    /// `sync_fallback` records); `None` on calls that did not, and in lines
    /// written before it was recorded.
    pub sync_reason: Option<SyncReason>,
    /// Async attempts whose outcome is unknown: ended by the timeout, by a
    /// panic, or by an error that says the request may have reached the
    /// backend ([`Classify::outcome_unknown`](crate::Classify::outcome_unknown)).
    /// Such an attempt may have stored the upload: a retry or fallback after
    /// it is a duplicate unless the backend deduplicates by call id.
    pub ambiguous_attempts: u32,
}

impl UploadRecord {
    /// A record stamped now, with no error, no fault and no size.
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
            fault: None,
            call_id: None,
            sync_reason: None,
            ambiguous_attempts: 0,
        }
    }

    /// Sets [`UploadRecord::fault`] and names it in `error_type`.
    #[must_use]
    pub fn with_fault(mut self, fault: RuntimeFault) -> Self {
        self.fault = Some(fault);
        self.error_type = Some(Cow::Borrowed(fault.as_str()));
        self
    }

    /// Sets [`UploadRecord::sync_reason`].
    #[must_use]
    pub fn with_sync_reason(mut self, reason: SyncReason) -> Self {
        self.sync_reason = Some(reason);
        self
    }

    /// A critical error: the async body panicked.
    #[must_use]
    pub fn is_critical(&self) -> bool {
        self.fault.is_some_and(RuntimeFault::is_critical)
    }

    /// The caller dropped the call's future before it finished.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.fault == Some(RuntimeFault::Cancelled)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(record: &UploadRecord) -> serde_json::Value {
        serde_json::to_value(record).unwrap()
    }

    #[test]
    fn the_json_line_says_critical_and_fault_explicitly() {
        let mut plain = UploadRecord::new("s", ExecutionType::Async, true, 1.0, 1);
        // Whole microseconds, as the line keeps them.
        plain.ts = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_796_019_205_420_726);
        assert_eq!(line(&plain)["critical"], false);
        assert!(line(&plain)["fault"].is_null());
        let panicked = plain.clone().with_fault(RuntimeFault::Panic);
        assert_eq!(line(&panicked)["critical"], true);
        assert_eq!(line(&panicked)["fault"], "panic");
        assert_eq!(line(&panicked)["error_type"], "panic");
        for record in [plain, panicked] {
            let back: UploadRecord = serde_json::from_value(line(&record)).unwrap();
            assert_eq!(back, record);
        }
    }

    #[test]
    fn old_lines_infer_the_fault_from_reserved_names_only() {
        let old = |error_type: &str| {
            serde_json::from_value::<UploadRecord>(serde_json::json!({
                "ts": "2026-11-30T01:25:18Z", "site": "s", "execution_type": "sync_fallback",
                "success": true, "duration_ms": 1.0, "attempts": 1,
                "error_type": error_type, "bytes": null,
            }))
            .unwrap()
        };
        assert!(old("panic").is_critical());
        assert!(old("cancelled").is_cancelled());
        assert_eq!(old("timeout").fault, Some(RuntimeFault::Timeout));
        assert_eq!(old("connection_reset").fault, None);
        // A new line says it: a user's "panic" there is only a name.
        let new: UploadRecord = serde_json::from_value(serde_json::json!({
            "ts": "2026-11-30T01:25:18Z", "site": "s", "execution_type": "sync_fallback",
            "success": true, "duration_ms": 1.0, "attempts": 1,
            "error_type": "panic", "bytes": null, "critical": false, "fault": null,
        }))
        .unwrap();
        assert!(!new.is_critical());
    }

    #[test]
    fn a_line_whose_critical_contradicts_its_fault_is_rejected() {
        let error = serde_json::from_value::<UploadRecord>(serde_json::json!({
            "ts": "2026-11-30T01:25:18Z", "site": "s", "execution_type": "async",
            "success": false, "duration_ms": 1.0, "attempts": 1,
            "error_type": "io", "bytes": null, "critical": true, "fault": null,
        }))
        .unwrap_err();
        assert!(error.to_string().contains("critical"), "{error}");
    }

    #[test]
    fn reserved_user_names_are_qualified_statically() {
        for fault in RuntimeFault::ALL {
            let qualified = user_error_name(fault.as_str());
            assert_eq!(qualified, format!("user:{}", fault.as_str()));
            assert_eq!(RuntimeFault::named(qualified), None);
        }
        assert_eq!(user_error_name("connection_reset"), "connection_reset");
    }
}
