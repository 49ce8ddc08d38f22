//! The [`Health`] of the async path over a window: what the stage
//! criteria and the rate triggers are measured on.

use serde::{Deserialize, Serialize};

use crate::metrics::{ExecutionType, PathSnapshot, SiteSnapshot};

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
}

impl Health {
    /// The health of the enrolled calls in `window`.
    #[must_use]
    pub fn of(window: &SiteSnapshot) -> Self {
        let direct = window.path(ExecutionType::Async);
        let fallback = window.path(ExecutionType::SyncFallback);
        let finished = |p: &PathSnapshot| p.successes + p.failures;
        let enrolled = finished(direct) + finished(fallback);
        let user_errors = direct.failures + fallback.failures;
        Health {
            enrolled,
            async_successes: direct.successes,
            user_errors,
            fallbacks: finished(fallback),
            critical: direct.critical + fallback.critical,
            success_rate: rate(direct.successes, enrolled),
            user_success_rate: rate(enrolled - user_errors, enrolled),
            error_rate: rate(user_errors, enrolled),
        }
    }
}
