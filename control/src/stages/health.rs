//! The [`Health`] of the async path over a window: what the stage
//! criteria and the rate triggers are measured on.

use serde::{Deserialize, Serialize};

#[cfg(feature = "report")]
use async_upload_runtime::metrics::UploadRecord;
use async_upload_runtime::metrics::{ExecutionType, PathSnapshot, SiteSnapshot};

/// An `Option` field that every writer writes (`null` when `None`): reading
/// requires it, so a renamed field is an error, not a silent `None`.
pub(super) fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::deserialize(deserializer)
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn rate(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// The async path's health over a window.
///
/// Enrolled calls are those that took the async path: `async` and
/// `sync_fallback` records. Cancelled calls are neither successes nor
/// failures. A `sync_fallback` call counts as an async **failure** (the new
/// path did not do the job) in [`Health::success_rate`]; the user-visible
/// rates, where the fallback saved the call, are beside it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Finished enrolled calls (successes + failures of `async` and `sync_fallback`).
    pub enrolled: u64,
    /// Calls the async path served successfully.
    pub async_successes: u64,
    /// Enrolled calls whose caller got an error.
    pub user_errors: u64,
    /// Enrolled calls the sync fallback took over.
    pub fallbacks: u64,
    /// Critical errors (a panic in the async path).
    pub critical: u64,
    /// `async_successes / enrolled`: the async path's success rate.
    #[serde(deserialize_with = "present")]
    pub success_rate: Option<f64>,
    /// `1 - user_errors / enrolled`: what callers saw.
    #[serde(deserialize_with = "present")]
    pub user_success_rate: Option<f64>,
    /// `user_errors / enrolled`: the error rate callers saw.
    #[serde(deserialize_with = "present")]
    pub error_rate: Option<f64>,
    /// Finished calls of the sync path (not enrolled): the old path's
    /// share of the same window, the baseline of the rate triggers (absent
    /// in logs written before it was recorded).
    #[serde(default)]
    pub sync_calls: u64,
    /// Sync-path calls whose caller got an error.
    #[serde(default)]
    pub sync_failures: u64,
}

impl Health {
    /// The health of the enrolled calls in `window`.
    #[must_use]
    pub fn of(window: &SiteSnapshot) -> Self {
        Counts::of(window).health()
    }
}

/// The counters a [`Health`] is made of, kept record by record by a
/// replay and taken from a snapshot by the controller: one definition, so
/// both judge the same numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) enrolled: u64,
    pub(crate) async_successes: u64,
    pub(crate) user_errors: u64,
    pub(crate) fallbacks: u64,
    pub(crate) critical: u64,
    pub(crate) sync_calls: u64,
    pub(crate) sync_failures: u64,
}

impl Counts {
    pub(crate) fn of(window: &SiteSnapshot) -> Self {
        let direct = window.path(ExecutionType::Async);
        let fallback = window.path(ExecutionType::SyncFallback);
        let sync = window.path(ExecutionType::Sync);
        let finished = |p: &PathSnapshot| p.successes + p.failures;
        Counts {
            enrolled: finished(direct) + finished(fallback),
            async_successes: direct.successes,
            user_errors: direct.failures + fallback.failures,
            fallbacks: finished(fallback),
            critical: direct.critical + fallback.critical,
            sync_calls: finished(sync),
            sync_failures: sync.failures,
        }
    }

    /// Counts one record as a snapshot's counters would.
    #[cfg(feature = "report")]
    pub(crate) fn record(&mut self, record: &UploadRecord) {
        // A cancelled call is neither a success nor a failure.
        let finished = u64::from(record.success || !record.is_cancelled());
        let failed = finished - u64::from(record.success);
        match record.execution_type {
            ExecutionType::Sync => {
                self.sync_calls += finished;
                self.sync_failures += failed;
                return;
            }
            ExecutionType::Async => self.async_successes += u64::from(record.success),
            ExecutionType::SyncFallback => self.fallbacks += finished,
        }
        self.enrolled += finished;
        self.user_errors += failed;
        self.critical += u64::from(record.is_critical());
    }

    /// The calls counted after `earlier`.
    pub(crate) fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            enrolled: self.enrolled.saturating_sub(earlier.enrolled),
            async_successes: self.async_successes.saturating_sub(earlier.async_successes),
            user_errors: self.user_errors.saturating_sub(earlier.user_errors),
            fallbacks: self.fallbacks.saturating_sub(earlier.fallbacks),
            critical: self.critical.saturating_sub(earlier.critical),
            sync_calls: self.sync_calls.saturating_sub(earlier.sync_calls),
            sync_failures: self.sync_failures.saturating_sub(earlier.sync_failures),
        }
    }

    /// Async-path failures: enrolled calls the async path did not serve.
    pub(crate) fn async_failures(&self) -> u64 {
        self.enrolled.saturating_sub(self.async_successes)
    }

    pub(crate) fn health(&self) -> Health {
        let Counts {
            enrolled,
            async_successes,
            user_errors,
            fallbacks,
            critical,
            sync_calls,
            sync_failures,
        } = *self;
        Health {
            enrolled,
            async_successes,
            user_errors,
            fallbacks,
            critical,
            success_rate: rate(async_successes, enrolled),
            user_success_rate: rate(enrolled.saturating_sub(user_errors), enrolled),
            error_rate: rate(user_errors, enrolled),
            sync_calls,
            sync_failures,
        }
    }
}

impl From<&Health> for Counts {
    fn from(health: &Health) -> Self {
        Counts {
            enrolled: health.enrolled,
            async_successes: health.async_successes,
            user_errors: health.user_errors,
            fallbacks: health.fallbacks,
            critical: health.critical,
            sync_calls: health.sync_calls,
            sync_failures: health.sync_failures,
        }
    }
}
