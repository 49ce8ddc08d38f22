//! The fleet's environment variables.

use std::path::PathBuf;
use std::time::Duration;

use async_upload_runtime::config::env::{parse_bool, ENABLED, ROLLOUT};
use async_upload_runtime::config::ConfigError;

/// `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS):
/// share flags, stage and rollback with every replica using the same URL.
/// Unset: single process.
pub const REDIS_URL: &str = "ASYNC_UPLOAD_REDIS_URL";
/// A PEM file of extra trusted roots for `rediss://` (a managed Redis's
/// private CA), added to the system's.
pub const REDIS_CA: &str = "ASYNC_UPLOAD_REDIS_CA";
/// Seconds without contact after which a replica falls to the sync path;
/// `never` (the default) keeps the last known state.
pub const REDIS_STALE_AFTER: &str = "ASYNC_UPLOAD_REDIS_STALE_AFTER";
/// This replica's id in fleet status and logs (default host name + process id).
pub const INSTANCE: &str = "ASYNC_UPLOAD_INSTANCE";

/// What `ASYNC_UPLOAD_REDIS_STALE_AFTER` accepts.
const STALE_ACCEPTED: &str = "seconds > 0 (decimals allowed) or `never`";

/// Parses `ASYNC_UPLOAD_REDIS_STALE_AFTER`: `None` for `never`.
pub(crate) fn parse_stale_after(raw: &str) -> Result<Option<Duration>, ConfigError> {
    let text = raw.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    text.parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .map(Some)
        .ok_or_else(|| ConfigError::new(REDIS_STALE_AFTER, raw, STALE_ACCEPTED))
}

/// The explicit value of `ASYNC_UPLOAD_ENABLED`, if set and valid: an
/// explicit `false` stays a local kill switch under the shared state.
pub(crate) fn explicit_enabled(lookup: &dyn Fn(&str) -> Option<String>) -> Option<bool> {
    lookup(ENABLED).and_then(|raw| parse_bool(ENABLED, &raw).ok())
}

/// The CA file named by `ASYNC_UPLOAD_REDIS_CA`, if set.
pub(crate) fn ca_from_env() -> Option<PathBuf> {
    std::env::var(REDIS_CA).ok().and_then(|raw| ca_path(&raw))
}

/// Whether `ASYNC_UPLOAD_ENABLED` or `ASYNC_UPLOAD_ROLLOUT` is set: only
/// then does the environment seed a new store's defaults.
pub(crate) fn explicit_routing(lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    lookup(ENABLED).is_some() || lookup(ROLLOUT).is_some()
}

/// Host name + process id: unique per process on one host.
pub(crate) fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}", std::process::id())
}

/// A CA path from the environment or the builder, as given.
fn ca_path(raw: &str) -> Option<PathBuf> {
    let raw = raw.trim();
    (!raw.is_empty()).then(|| PathBuf::from(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_after_accepts_seconds_or_never() {
        assert_eq!(parse_stale_after("never").unwrap(), None);
        assert_eq!(
            parse_stale_after("2.5").unwrap(),
            Some(Duration::from_millis(2500))
        );
        let error = parse_stale_after("-1").unwrap_err();
        assert_eq!(error.variable(), REDIS_STALE_AFTER);
        assert!(error.to_string().contains("never"), "{error}");
    }

    #[test]
    fn only_an_explicit_enabled_is_a_local_kill_switch() {
        assert_eq!(explicit_enabled(&|_| None), None);
        assert_eq!(explicit_enabled(&|_| Some("off".into())), Some(false));
    }

    #[test]
    fn the_default_instance_names_the_process() {
        assert!(default_instance().ends_with(&format!("-{}", std::process::id())));
    }
}
