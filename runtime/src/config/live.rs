//! The live configuration: the global [`Config`], per-site operator
//! overrides and rollback latches, behind a handle a running service
//! updates without a restart.
//!
//! Writers are rare (an operator, the rollout controller) and take a lock;
//! readers are every call of every site and must not. Each change bumps a
//! generation counter; a site re-resolves its [`Settings`] only when the
//! generation it cached is stale, so the hot path costs one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

use super::changes::{as_controller, global_changes, notify_applied, SiteState};
use super::env::report_once;
use super::error::ConfigError;
use super::global::Config;
use super::knobs::{config_keeping_valid, site_errors_in, site_overrides_from};
use super::overrides::SiteOverrides;
use super::startup::{self, Startup, StartupAlreadySet};
use crate::breaker::BreakerSettings;
use crate::policy::Backoff;
use crate::rollout::Rollout;

/// The settings one site runs with, after precedence and kill switches.
///
/// ```
/// use async_upload_runtime::Site;
///
/// static SITE: Site = Site::new("docs_settings").with_retries(4);
/// let settings = SITE.settings();
/// assert_eq!(settings.max_retries, 4); // the attribute beats the global default
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// The async path may run (global `enabled` and the site's own).
    pub enabled: bool,
    /// The site is rolled back: the sync path runs for every call.
    pub rolled_back: bool,
    /// Share of keys enrolled.
    pub rollout: Rollout,
    /// Run the sync path when the async path gives up.
    pub fallback: bool,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Limit of each async attempt.
    pub timeout: Duration,
    /// Sleep between attempts.
    pub backoff: Backoff,
    /// The circuit breaker and retry budget.
    pub breaker: BreakerSettings,
}

/// The attribute's values for a site (the compile-time overrides).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AttributeOverrides {
    pub(crate) retries: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backoff: Option<Duration>,
}

/// Which level of the precedence a setting came from, for the line a site
/// logs at first use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The global configuration: default, environment or `ConfigHandle::replace`.
    Global,
    /// The attribute on the function.
    Attribute,
    /// `ASYNC_UPLOAD_<VAR>__<SITE>`.
    SiteEnv,
    /// `ConfigHandle::set_site`.
    Operator,
}

impl Origin {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Origin::Global => "global",
            Origin::Attribute => "attribute",
            Origin::SiteEnv => "site_env",
            Origin::Operator => "operator",
        }
    }
}

/// Where each resolved setting of a site came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origins {
    pub(crate) enabled: Origin,
    pub(crate) rollout: Origin,
    pub(crate) fallback: Origin,
    pub(crate) max_retries: Origin,
    pub(crate) timeout: Origin,
    pub(crate) backoff: Origin,
    pub(crate) breaker: Origin,
}

/// The highest level that sets a value, lowest level `global` last.
fn pick<T>(operator: Option<T>, env: Option<T>, attribute: Option<T>, global: T) -> (T, Origin) {
    operator
        .map(|v| (v, Origin::Operator))
        .or_else(|| env.map(|v| (v, Origin::SiteEnv)))
        .or_else(|| attribute.map(|v| (v, Origin::Attribute)))
        .unwrap_or((global, Origin::Global))
}

impl Settings {
    /// Applies the precedence of the module docs, lowest level first.
    pub(crate) fn resolve(
        global: &Config,
        attribute: AttributeOverrides,
        control: &SiteControl,
    ) -> (Self, Origins) {
        // A bad per-site environment value turns the site off: never a
        // half-applied override, and the safe path is today's behaviour.
        let env = control.env.as_ref().ok();
        let none = SiteOverrides::default();
        let (op, site_env) = (&control.operator, env.unwrap_or(&none));
        let (site_enabled, enabled) = pick(op.enabled, site_env.enabled, None, true);
        let (rollout, rollout_origin) = pick(op.rollout, site_env.rollout, None, global.rollout);
        let (fallback, fallback_origin) =
            pick(op.fallback, site_env.fallback, None, global.fallback);
        let (max_retries, retries_origin) = pick(
            op.max_retries,
            site_env.max_retries,
            attribute.retries,
            global.max_retries,
        );
        let (timeout, timeout_origin) = pick(
            op.timeout,
            site_env.timeout,
            attribute.timeout,
            global.timeout,
        );
        let (backoff_base, backoff_origin) = pick(
            op.backoff_base,
            site_env.backoff_base,
            attribute.backoff,
            global.backoff_base,
        );
        let (breaker, breaker_origin) = pick(op.breaker, site_env.breaker, None, global.breaker);
        let breaker = BreakerSettings::new(
            breaker,
            pick(
                op.breaker_threshold,
                site_env.breaker_threshold,
                None,
                global.breaker_threshold,
            )
            .0,
            pick(
                op.breaker_cooldown,
                site_env.breaker_cooldown,
                None,
                global.breaker_cooldown,
            )
            .0,
            pick(
                op.retry_budget,
                site_env.retry_budget,
                None,
                global.retry_budget,
            )
            .0,
        );
        let settings = Settings {
            enabled: global.enabled && env.is_some() && site_enabled,
            rolled_back: control.rollback.is_some(),
            rollout: Rollout::from_percent(rollout).unwrap_or(Rollout::NONE),
            fallback,
            max_retries,
            timeout,
            backoff: Backoff::new(backoff_base, global.backoff_cap.max(backoff_base)),
            breaker,
        };
        let origins = Origins {
            enabled,
            rollout: rollout_origin,
            fallback: fallback_origin,
            max_retries: retries_origin,
            timeout: timeout_origin,
            backoff: backoff_origin,
            breaker: breaker_origin,
        };
        (settings, origins)
    }
}

/// What an operator has set for one site name.
#[derive(Debug)]
pub(crate) struct SiteControl {
    /// `ASYNC_UPLOAD_<VAR>__<SITE>`, read once when the site is first seen.
    env: Result<SiteOverrides, ConfigError>,
    /// Set through [`ConfigHandle::set_site`].
    operator: SiteOverrides,
    /// Why the site was rolled back, while it is.
    rollback: Option<String>,
}

impl SiteControl {
    /// A site with only operator overrides: no environment, no rollback
    /// (a testing scope's sites).
    #[cfg(feature = "testing")]
    pub(crate) fn with_operator(operator: SiteOverrides) -> Self {
        SiteControl {
            env: Ok(SiteOverrides::default()),
            operator,
            rollback: None,
        }
    }

    fn from_env(site: &str) -> Self {
        let env = site_overrides_from(site, &|name| std::env::var(name).ok());
        if let Err(error) = &env {
            tracing::error!(site, %error, "invalid per-site configuration; site runs the sync path");
            report_once(error, &format!("site {site} runs the sync path"));
        }
        SiteControl {
            env,
            operator: SiteOverrides::default(),
            rollback: None,
        }
    }
}

/// The live configuration of the process. Get it with [`handle`].
///
/// ```
/// use async_upload::config::{handle, SiteOverrides};
///
/// // Raise one site's rollout without a restart.
/// handle()
///     .set_site("docs_handle", SiteOverrides { rollout: Some(10.0), ..Default::default() })
///     .unwrap();
/// assert_eq!(handle().site_overrides("docs_handle").rollout, Some(10.0));
///
/// // Kill switch for one site.
/// handle().roll_back("docs_handle", "error rate above 5%");
/// assert!(handle().rollback_reason("docs_handle").is_some());
/// handle().clear_rollback("docs_handle");
/// ```
#[derive(Debug)]
pub struct ConfigHandle {
    config: ArcSwap<Config>,
    generation: AtomicU64,
    sites: Mutex<HashMap<String, SiteControl>>,
    init_error: Option<ConfigError>,
    /// Bad `ASYNC_UPLOAD_<VAR>__<SITE>` values found at start-up.
    init_site_errors: Vec<ConfigError>,
}

static LIVE: OnceLock<ConfigHandle> = OnceLock::new();

/// The process-wide configuration handle.
///
/// The first use reads the environment. A bad value never panics: the error
/// is logged through `tracing` (and kept in [`ConfigHandle::init_error`]),
/// routing takes the safe default (async disabled) and every valid setting
/// that is not routing (the log path, retries, timeout) is kept.
#[must_use]
pub fn handle() -> &'static ConfigHandle {
    handle_starting(None)
}

/// The process-wide handle; when this is its first use, `startup` is
/// registered before the environment is read (a site's start-up: the check
/// is the handle's own, so a call pays nothing for it).
pub(crate) fn handle_starting(startup: Option<Startup>) -> &'static ConfigHandle {
    LIVE.get_or_init(|| {
        if let Some(startup) = startup {
            let _ = startup::register(startup);
        }
        ConfigHandle::from_process_env()
    })
}

/// Registers the start-up of the layers above the runtime.
///
/// Registered before the first use of [`handle`], `start`
/// runs inside that first use. Registered after it, `start` runs now on the
/// configuration in force, and what it returns is put in force as the
/// runtime's own change (no operator notice).
///
/// # Errors
///
/// A start-up is already registered; it stays, and `startup` is not run.
pub fn set_startup(startup: Startup) -> Result<(), StartupAlreadySet> {
    startup::register(startup)?;
    if let Some(handle) = LIVE.get() {
        let config = startup::start(Config::clone(&handle.config()));
        if let Err(error) = as_controller(|| handle.replace(config)) {
            tracing::error!(%error, "the start-up's configuration is invalid; keeping the one in force");
        }
    }
    Ok(())
}

impl ConfigHandle {
    fn from_process_env() -> Self {
        let (config, errors) = config_keeping_valid(&|name| std::env::var(name).ok());
        for error in &errors {
            tracing::error!(
                %error,
                "invalid async-upload configuration; running with async disabled, valid settings kept"
            );
        }
        for error in &errors {
            report_once(error, "async disabled, valid settings kept");
        }
        let init_error = errors.into_iter().next();
        // Per-site values are parsed when their site is first called; a bad
        // one is said now, as loudly as a bad global one.
        let init_site_errors = site_errors_in(std::env::vars());
        for error in &init_site_errors {
            tracing::error!(%error, "invalid per-site async-upload configuration; that site runs the sync path");
            report_once(error, "that site runs the sync path");
        }
        // The layers above start what the environment asks of them
        // (ASYNC_UPLOAD_LOG, ASYNC_UPLOAD_REDIS_URL) with no code.
        let config = startup::start(config);
        ConfigHandle {
            config: ArcSwap::from_pointee(config),
            generation: AtomicU64::new(0),
            sites: Mutex::new(HashMap::new()),
            init_error,
            init_site_errors,
        }
    }

    /// A handle of its own holding `config`, not the process's: for tests
    /// of code that applies changes to a handle (the fleet's applier).
    ///
    /// ```
    /// use async_upload_runtime::config::{Config, ConfigHandle};
    ///
    /// let handle = ConfigHandle::detached(Config::default());
    /// handle.roll_back("avatars", "drill");
    /// assert_eq!(handle.rollback_reason("avatars").as_deref(), Some("drill"));
    /// ```
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    #[must_use]
    pub fn detached(config: Config) -> Self {
        ConfigHandle {
            config: ArcSwap::from_pointee(config),
            generation: AtomicU64::new(0),
            sites: Mutex::new(HashMap::new()),
            init_error: None,
            init_site_errors: Vec::new(),
        }
    }

    /// The global configuration now in force.
    #[must_use]
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The first bad environment value that made the implicit
    /// initialisation turn async off, if any (every one is logged).
    #[must_use]
    pub fn init_error(&self) -> Option<&ConfigError> {
        self.init_error.as_ref()
    }

    /// Every bad per-site environment value (`ASYNC_UPLOAD_<VAR>__<SITE>`):
    /// those found at start-up and those of the sites read since (after
    /// [`ConfigHandle::reload_from_env`], as read then). Each such site runs
    /// the sync path; each error is also logged through `tracing`, and on
    /// stderr once when no subscriber is installed, as a bad global value is.
    #[must_use]
    pub fn site_errors(&self) -> Vec<ConfigError> {
        let mut errors = self.init_site_errors.clone();
        for control in self.lock_sites().values() {
            if let Err(error) = &control.env {
                if !errors.iter().any(|e| e.variable() == error.variable()) {
                    errors.push(error.clone());
                }
            }
        }
        errors.sort_by(|a, b| a.variable().cmp(b.variable()));
        errors
    }

    /// Replaces the global configuration. Calls that start afterwards use it.
    ///
    /// # Errors
    ///
    /// An invalid `config`; the configuration in force is kept.
    pub fn replace(&self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        let _sites = self.lock_sites();
        self.install(config);
        Ok(())
    }

    /// Changes the global configuration in place.
    ///
    /// ```
    /// async_upload::config::handle()
    ///     .update(|c| c.max_retries = 3)
    ///     .unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// The result is invalid; the configuration in force is kept.
    pub fn update(&self, change: impl FnOnce(&mut Config)) -> Result<(), ConfigError> {
        let mut config = Config::clone(&self.config.load());
        change(&mut config);
        self.replace(config)
    }

    /// Reads the environment again, globally and for every known site.
    ///
    /// # Errors
    ///
    /// A bad global value; the configuration in force is kept. Bad per-site
    /// values turn that site off and are logged.
    pub fn reload_from_env(&self) -> Result<(), ConfigError> {
        let config = Config::from_env()?;
        let mut sites = self.lock_sites();
        for (name, control) in sites.iter_mut() {
            let before = control
                .env
                .as_ref()
                .ok()
                .map(|env| SiteState::new(env, None));
            control.env = SiteControl::from_env(name).env;
            let after = control
                .env
                .as_ref()
                .ok()
                .map(|env| SiteState::new(env, None));
            if let (Some(before), Some(after)) = (before, after) {
                notify_applied(Some(name), before.changes(&after));
            }
        }
        self.install(config);
        Ok(())
    }

    /// Puts a validated configuration in force; the caller holds the sites
    /// lock, so no resolution interleaves. The layers above follow it (a
    /// new log path switches the JSONL log) before anyone reads it.
    fn install(&self, config: Config) {
        let before = self.config.load_full();
        startup::installed(&before, &config);
        let changes = global_changes(&before, &config);
        self.config.store(Arc::new(config));
        notify_applied(None, changes);
        self.bump();
    }

    /// Sets the operator overrides of one site, replacing earlier ones.
    ///
    /// # Errors
    ///
    /// An invalid override; the ones in force are kept.
    pub fn set_site(&self, site: &str, overrides: SiteOverrides) -> Result<(), ConfigError> {
        overrides.validate()?;
        self.with_control(site, |control| control.operator = overrides);
        Ok(())
    }

    /// Changes the operator overrides of one site in place, under the lock
    /// every change takes: a concurrent [`set_site`](Self::set_site) or
    /// update is never lost (a read, then a `set_site`, could lose it).
    ///
    /// ```
    /// use async_upload::config::{handle, SiteOverrides};
    ///
    /// handle()
    ///     .set_site("docs_update_site", SiteOverrides { max_retries: Some(4), ..Default::default() })
    ///     .unwrap();
    /// handle().update_site("docs_update_site", |o| o.rollout = Some(10.0)).unwrap();
    /// let overrides = handle().site_overrides("docs_update_site");
    /// assert_eq!((overrides.rollout, overrides.max_retries), (Some(10.0), Some(4)));
    /// ```
    ///
    /// # Errors
    ///
    /// The changed overrides are invalid; the ones in force are kept.
    pub fn update_site(
        &self,
        site: &str,
        change: impl FnOnce(&mut SiteOverrides),
    ) -> Result<(), ConfigError> {
        self.with_control(site, |control| {
            let mut overrides = control.operator.clone();
            change(&mut overrides);
            overrides.validate()?;
            control.operator = overrides;
            Ok(())
        })
    }

    /// Removes the operator overrides of one site.
    pub fn clear_site(&self, site: &str) {
        self.with_control(site, |control| control.operator = SiteOverrides::default());
    }

    /// The operator overrides of one site (not the environment's).
    #[must_use]
    pub fn site_overrides(&self, site: &str) -> SiteOverrides {
        self.lock_sites()
            .get(site)
            .map(|control| control.operator.clone())
            .unwrap_or_default()
    }

    /// Kill switch for one site: every call runs the sync path until
    /// [`ConfigHandle::clear_rollback`]. The rollback is latched; nothing
    /// clears it but an operator.
    ///
    /// Returns `true` when this call latched it and `false` when it was
    /// latched already (the first reason is kept), decided under the lock
    /// every change takes: of several deciders that see one breach, exactly
    /// one latches.
    ///
    /// ```
    /// use async_upload::config::handle;
    ///
    /// assert!(handle().roll_back("docs_roll_back", "error rate above 5%"));
    /// assert!(!handle().roll_back("docs_roll_back", "again"));
    /// assert_eq!(handle().rollback_reason("docs_roll_back").as_deref(), Some("error rate above 5%"));
    /// handle().clear_rollback("docs_roll_back");
    /// ```
    #[allow(clippy::must_use_candidate)] // latching for its effect is the usual use
    pub fn roll_back(&self, site: &str, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        self.with_control(site, |control| {
            if control.rollback.is_some() {
                return false;
            }
            tracing::warn!(site, %reason, "async-upload site rolled back to the sync path");
            control.rollback = Some(reason);
            true
        })
    }

    /// Lifts a rollback.
    pub fn clear_rollback(&self, site: &str) {
        self.with_control(site, |control| control.rollback = None);
    }

    /// Why the site is rolled back, while it is.
    #[must_use]
    pub fn rollback_reason(&self, site: &str) -> Option<String> {
        self.lock_sites()
            .get(site)
            .and_then(|control| control.rollback.clone())
    }

    /// Counter bumped by every change; sites re-resolve when it moves.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Resolves a site's settings under the lock, so a concurrent change
    /// cannot interleave with it.
    pub(crate) fn resolve(
        &self,
        site: &str,
        attribute: AttributeOverrides,
    ) -> (Settings, Origins, u64) {
        let mut sites = self.lock_sites();
        let generation = self.generation();
        let control = sites
            .entry(site.to_owned())
            .or_insert_with(|| SiteControl::from_env(site));
        let (settings, origins) = Settings::resolve(&self.config.load(), attribute, control);
        (settings, origins, generation)
    }

    /// Changes one site's control under the lock every change takes, so a
    /// check and the change it decides are one step; every setting it moved
    /// is one `operator` line, and only a real change moves the generation.
    fn with_control<R>(&self, site: &str, change: impl FnOnce(&mut SiteControl) -> R) -> R {
        let mut sites = self.lock_sites();
        let control = sites
            .entry(site.to_owned())
            .or_insert_with(|| SiteControl::from_env(site));
        let before = SiteState::new(&control.operator, control.rollback.as_ref());
        let result = change(control);
        let after = SiteState::new(&control.operator, control.rollback.as_ref());
        let changes = before.changes(&after);
        if !changes.is_empty() {
            self.bump();
        }
        notify_applied(Some(site), changes);
        result
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A panic while holding the lock leaves the map consistent (every
    /// change is a single assignment), so a poisoned lock is still usable.
    fn lock_sites(&self) -> MutexGuard<'_, HashMap<String, SiteControl>> {
        self.sites.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
