//! Why calls went sync, and what may have been written twice: per site,
//! the calls of each [`SyncReason`], and the retries and fallbacks that ran
//! after an attempt whose outcome is unknown (`async-upload report` prints
//! it under the stage report; cargo feature `report`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::record::{ExecutionType, SyncReason, UploadRecord};

/// Counts records per site as they stream by.
///
/// ```
/// use async_upload_runtime::metrics::{CallAudit, ExecutionType, UploadRecord};
/// use async_upload::SyncReason;
///
/// let mut audit = CallAudit::default();
/// audit.record(&UploadRecord::new("upload", ExecutionType::Sync, true, 1.0, 0)
///     .with_sync_reason(SyncReason::NotEnrolled));
/// let mut fell_back = UploadRecord::new("upload", ExecutionType::SyncFallback, true, 9.0, 3)
///     .with_sync_reason(SyncReason::AsyncGaveUp);
/// fell_back.ambiguous_attempts = 3; // three timeouts
/// audit.record(&fell_back);
///
/// let site = &audit.sites()["upload"];
/// assert_eq!(site.sync_calls(SyncReason::NotEnrolled), 1);
/// assert_eq!(site.retries_after_ambiguous, 2);
/// assert_eq!(site.fallbacks_after_ambiguous, 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CallAudit {
    sites: BTreeMap<String, SiteAudit>,
}

/// One site's counts in a [`CallAudit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SiteAudit {
    /// Calls that ran the sync path, per reason (records without a reason,
    /// written before it was recorded, are not counted).
    #[cfg_attr(feature = "serde", serde(serialize_with = "by_name"))]
    pub sync_reasons: BTreeMap<SyncReason, u64>,
    /// Calls with at least one attempt whose outcome is unknown.
    pub calls_with_ambiguous_attempts: u64,
    /// Attempts whose outcome is unknown (timeout, panic, an error that may
    /// have reached the backend).
    pub ambiguous_attempts: u64,
    /// Retries made after an ambiguous attempt of the same call. Per call
    /// this is `min(ambiguous attempts, attempts - 1)`: every attempt but
    /// the last is followed by a retry. A record does not say which of its
    /// attempts were the ambiguous ones, so a call whose last attempt was
    /// ambiguous and an earlier one was not counts one retry too many: the
    /// number errs towards warning.
    pub retries_after_ambiguous: u64,
    /// Fallbacks that ran after at least one ambiguous attempt of their call
    /// (exact: the fallback follows every attempt of its call).
    pub fallbacks_after_ambiguous: u64,
}

#[cfg(feature = "serde")]
fn by_name<S: serde::Serializer>(
    reasons: &BTreeMap<SyncReason, u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(reasons.iter().map(|(reason, n)| (reason.as_str(), n)))
}

impl SiteAudit {
    /// Calls that ran the sync path for `reason`.
    #[must_use]
    pub fn sync_calls(&self, reason: SyncReason) -> u64 {
        self.sync_reasons.get(&reason).copied().unwrap_or(0)
    }
}

impl CallAudit {
    /// Counts one record.
    pub fn record(&mut self, record: &UploadRecord) {
        if record.sync_reason.is_none() && record.ambiguous_attempts == 0 {
            return;
        }
        let site = match self.sites.get_mut(&*record.site) {
            Some(site) => site,
            None => self.sites.entry(record.site.to_string()).or_default(),
        };
        if let Some(reason) = record.sync_reason {
            *site.sync_reasons.entry(reason).or_default() += 1;
        }
        let ambiguous = record.ambiguous_attempts.min(record.attempts);
        if ambiguous > 0 {
            site.calls_with_ambiguous_attempts += 1;
            site.ambiguous_attempts += u64::from(ambiguous);
            site.retries_after_ambiguous += u64::from(ambiguous.min(record.attempts - 1));
            if record.execution_type == ExecutionType::SyncFallback {
                site.fallbacks_after_ambiguous += 1;
            }
        }
    }

    /// The counts of every site that had a sync call or an ambiguous
    /// attempt, by name.
    #[must_use]
    pub fn sites(&self) -> &BTreeMap<String, SiteAudit> {
        &self.sites
    }

    /// The counts as text, one block per site; empty when there is nothing
    /// to say.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, site) in &self.sites {
            let _ = writeln!(out, "site {name}: sync paths and possible duplicates");
            if !site.sync_reasons.is_empty() {
                let reasons: Vec<String> = site
                    .sync_reasons
                    .iter()
                    .map(|(reason, n)| format!("{reason} {n}"))
                    .collect();
                let _ = writeln!(out, "  sync calls by reason: {}", reasons.join(", "));
            }
            if site.ambiguous_attempts > 0 {
                let _ = writeln!(
                    out,
                    "  {} calls had an attempt whose outcome is unknown ({} attempts: timeouts, \
                     panics, connections lost after sending); after them {} retries and {} \
                     fallbacks ran: may be duplicates unless the backend deduplicates by call id",
                    site.calls_with_ambiguous_attempts,
                    site.ambiguous_attempts,
                    site.retries_after_ambiguous,
                    site.fallbacks_after_ambiguous,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        execution_type: ExecutionType,
        attempts: u32,
        ambiguous: u32,
        reason: Option<SyncReason>,
    ) -> UploadRecord {
        let mut record = UploadRecord::new("s", execution_type, true, 1.0, attempts);
        record.ambiguous_attempts = ambiguous;
        record.sync_reason = reason;
        record
    }

    #[test]
    fn counts_reasons_and_what_followed_an_ambiguous_attempt() {
        let mut audit = CallAudit::default();
        let gave_up = Some(SyncReason::AsyncGaveUp);
        for r in [
            record(ExecutionType::Sync, 0, 0, Some(SyncReason::NotEnrolled)),
            record(ExecutionType::Sync, 0, 0, Some(SyncReason::NotEnrolled)),
            record(
                ExecutionType::SyncFallback,
                0,
                0,
                Some(SyncReason::BreakerOpen),
            ),
            // Two timeouts, then a success: two retries after them.
            record(ExecutionType::Async, 3, 2, None),
            // Three resets, then the fallback: two retries and the fallback.
            record(ExecutionType::SyncFallback, 3, 3, gave_up),
            // A 503 (an answer) then a timeout, then the fallback: the
            // record cannot tell which attempt timed out, so it counts the
            // one retry as following it too (the documented over-count).
            record(ExecutionType::SyncFallback, 2, 1, gave_up),
            // Nothing ambiguous: nothing may be duplicated.
            record(ExecutionType::SyncFallback, 3, 0, gave_up),
            record(ExecutionType::Async, 1, 0, None),
        ] {
            audit.record(&r);
        }
        let site = &audit.sites()["s"];
        assert_eq!(site.sync_calls(SyncReason::NotEnrolled), 2);
        assert_eq!(site.sync_calls(SyncReason::BreakerOpen), 1);
        assert_eq!(site.sync_calls(SyncReason::AsyncGaveUp), 3);
        assert_eq!(site.sync_calls(SyncReason::Disabled), 0);
        assert_eq!(site.calls_with_ambiguous_attempts, 3);
        assert_eq!(site.ambiguous_attempts, 6);
        assert_eq!(site.retries_after_ambiguous, 2 + 2 + 1);
        assert_eq!(site.fallbacks_after_ambiguous, 2);
        let text = audit.render();
        assert!(
            text.contains("not_enrolled 2, breaker_open 1, async_gave_up 3"),
            "{text}"
        );
        let json = serde_json::to_value(&audit).unwrap();
        assert_eq!(json["sites"]["s"]["sync_reasons"]["not_enrolled"], 2);
        assert_eq!(json["sites"]["s"]["fallbacks_after_ambiguous"], 2);
    }

    #[test]
    fn records_of_earlier_releases_add_nothing() {
        let mut audit = CallAudit::default();
        audit.record(&record(ExecutionType::Sync, 0, 0, None));
        assert!(audit.sites().is_empty());
        assert_eq!(audit.render(), "");
    }
}
