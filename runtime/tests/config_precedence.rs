//! Precedence of the configuration levels and the kill switches, through
//! the live handle. One test function walks the levels in order because the
//! global configuration is shared by the whole test binary.

use std::time::Duration;

use async_upload_runtime::config::{handle, Config, SiteOverrides};
use async_upload_runtime::{Path, Site, SyncReason};

static PLAIN: Site = Site::new("prec_plain");
static ANNOTATED: Site = Site::new("prec_annotated")
    .with_retries(1)
    .with_timeout(Duration::from_secs(3))
    .with_backoff(Duration::from_millis(7));
static ENV_SITE: Site = Site::new("prec-env.site").with_retries(1);
static BAD_ENV_SITE: Site = Site::new("prec_bad_env");

#[test]
fn levels_apply_in_order_and_kill_switches_win() {
    // The environment of a per-site override is read when the site is first
    // seen, so set it before touching ENV_SITE. Nothing else in this binary
    // reads these variables concurrently.
    std::env::set_var("ASYNC_UPLOAD_MAX_RETRIES__PREC_ENV_SITE", "7");
    std::env::set_var("ASYNC_UPLOAD_TIMEOUT__PREC_BAD_ENV", "0");

    // 1. Built-in defaults (CI runs without ASYNC_UPLOAD_* variables).
    assert_eq!(*handle().config(), Config::default());
    let defaults = PLAIN.settings();
    assert!(!defaults.enabled, "async is off by default");
    assert_eq!(defaults.max_retries, 2);
    assert_eq!(defaults.timeout, Duration::from_secs(30));
    assert!(defaults.fallback);
    assert_eq!(PLAIN.call(&"k").path(), Path::Sync(SyncReason::Disabled));

    // 2. The global configuration, replaced live: no restart needed.
    handle()
        .replace(
            Config::default()
                .with_enabled(true)
                .with_rollout(100.0)
                .with_max_retries(5)
                .with_timeout(Duration::from_secs(10)),
        )
        .unwrap();
    let global = PLAIN.settings();
    assert!(global.enabled);
    assert_eq!(
        (global.max_retries, global.timeout),
        (5, Duration::from_secs(10))
    );
    assert!(PLAIN.call(&"k").runs_async());

    // 3. The attribute's values beat the global configuration.
    let annotated = ANNOTATED.settings();
    assert_eq!(annotated.max_retries, 1);
    assert_eq!(annotated.timeout, Duration::from_secs(3));
    assert_eq!(annotated.backoff.ceiling(0), Duration::from_millis(7));

    // 4a. Per-site environment overrides beat the attribute.
    assert_eq!(ENV_SITE.settings().max_retries, 7);

    // 4b. Per-site programmatic overrides beat the environment.
    handle()
        .set_site(
            ENV_SITE.name(),
            SiteOverrides {
                max_retries: Some(9),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
    assert_eq!(ENV_SITE.settings().max_retries, 9);
    handle().clear_site(ENV_SITE.name());
    assert_eq!(
        ENV_SITE.settings().max_retries,
        7,
        "clearing returns to the environment's value"
    );

    // A per-site rollout narrows one site only.
    handle()
        .set_site(
            PLAIN.name(),
            SiteOverrides {
                rollout: Some(0.0),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
    assert_eq!(PLAIN.call(&"k").path(), Path::Sync(SyncReason::NotEnrolled));
    assert!(ANNOTATED.call(&"k").runs_async());

    // Invalid overrides are refused whole; what was in force stays.
    let err = handle()
        .set_site(
            PLAIN.name(),
            SiteOverrides {
                rollout: Some(150.0),
                max_retries: Some(1),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.variable(), "rollout");
    assert_eq!(handle().site_overrides(PLAIN.name()).rollout, Some(0.0));
    let err = handle().update(|c| c.max_retries = 11).unwrap_err();
    assert_eq!(err.variable(), "ASYNC_UPLOAD_MAX_RETRIES");
    assert_eq!(handle().config().max_retries, 5);

    // A bad per-site environment value turns that site off (safe path).
    let bad = BAD_ENV_SITE.settings();
    assert!(!bad.enabled);
    assert_eq!(
        BAD_ENV_SITE.call(&"k").path(),
        Path::Sync(SyncReason::Disabled)
    );

    // Kill switch 1: a rollback beats everything, and is latched.
    handle()
        .set_site(
            ANNOTATED.name(),
            SiteOverrides {
                enabled: Some(true),
                rollout: Some(100.0),
                ..Default::default()
            },
        )
        .unwrap();
    handle().roll_back(ANNOTATED.name(), "test breach");
    assert_eq!(
        ANNOTATED.call(&"k").path(),
        Path::Sync(SyncReason::RolledBack)
    );
    handle()
        .replace(Config::default().with_enabled(true).with_rollout(100.0))
        .unwrap();
    assert_eq!(
        ANNOTATED.call(&"k").path(),
        Path::Sync(SyncReason::RolledBack),
        "config changes do not lift a rollback"
    );
    assert_eq!(
        handle().rollback_reason(ANNOTATED.name()).as_deref(),
        Some("test breach")
    );
    handle().clear_rollback(ANNOTATED.name());
    assert!(ANNOTATED.call(&"k").runs_async());

    // Kill switch 2: the global `enabled = false` beats a site's `enabled = true`.
    handle().update(|c| c.enabled = false).unwrap();
    assert_eq!(
        ANNOTATED.call(&"k").path(),
        Path::Sync(SyncReason::Disabled)
    );
    assert!(!ANNOTATED.settings().enabled);

    // Reloading the environment applies it live; a bad value is refused
    // whole and what was in force stays.
    std::env::set_var("ASYNC_UPLOAD_ENABLED", "on");
    std::env::set_var("ASYNC_UPLOAD_MAX_RETRIES", "4");
    handle().reload_from_env().unwrap();
    assert!(PLAIN.settings().enabled);
    assert_eq!(PLAIN.settings().max_retries, 4);
    std::env::set_var("ASYNC_UPLOAD_TIMEOUT", "-3");
    let err = handle().reload_from_env().unwrap_err();
    assert_eq!(
        (err.variable(), err.value()),
        ("ASYNC_UPLOAD_TIMEOUT", "-3")
    );
    assert_eq!(PLAIN.settings().max_retries, 4);
    assert_eq!(handle().config().timeout, Duration::from_secs(30));
}
