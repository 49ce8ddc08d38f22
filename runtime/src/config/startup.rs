//! The start-up of the layers above the runtime.
//!
//! The runtime reads the environment's configuration on the first use of
//! [`handle`](super::handle); what the environment asks of higher layers
//! (`ASYNC_UPLOAD_LOG` for the JSONL log, `ASYNC_UPLOAD_REDIS_URL` for fleet
//! mode) is theirs to start. They register a [`Startup`] once, before that
//! first use (the `async-upload` facade does at its first entry point), and
//! the runtime calls it back: no arrow runs from the runtime up to them.

use std::sync::OnceLock;

use super::global::Config;

/// What the layers above the runtime do with its configuration: start with
/// the first one, follow every one put in force after it.
///
/// ```
/// use async_upload_runtime::config::{self, Config, Startup};
///
/// fn start(config: Config) -> Config {
///     // Open what the environment names; may adjust the configuration the
///     // process starts with. Must not use `config::handle()`: it is being
///     // initialised.
///     config
/// }
/// fn installed(before: &Config, after: &Config) {
///     if before.log_path != after.log_path {
///         // switch the log to `after.log_path`
///     }
/// }
/// config::set_startup(Startup::new(start, installed)).unwrap();
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Startup {
    start: fn(Config) -> Config,
    installed: fn(&Config, &Config),
}

impl Startup {
    /// `start` receives the configuration read from the environment before
    /// it is put in force and returns the one to put in force (fleet mode
    /// starts on the sync path until it has read the shared state);
    /// `installed` receives the previous and the new configuration each
    /// time one is put in force after that.
    #[must_use]
    pub const fn new(start: fn(Config) -> Config, installed: fn(&Config, &Config)) -> Self {
        Startup { start, installed }
    }
}

/// [`set_startup`](super::set_startup) was already called: the first registration stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartupAlreadySet;

impl std::fmt::Display for StartupAlreadySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the start-up of the layers above the runtime is already registered")
    }
}

impl std::error::Error for StartupAlreadySet {}

static STARTUP: OnceLock<Startup> = OnceLock::new();

/// Keeps `startup` as the one registered start-up; the live handle's
/// [`set_startup`](super::set_startup) applies it.
pub(super) fn register(startup: Startup) -> Result<(), StartupAlreadySet> {
    STARTUP.set(startup).map_err(|_| StartupAlreadySet)
}

/// The configuration the process starts with: `config`, through the
/// registered start-up if there is one.
pub(super) fn start(config: Config) -> Config {
    match STARTUP.get() {
        Some(startup) => (startup.start)(config),
        None => config,
    }
}

/// Tells the registered start-up that `after` replaced `before`.
pub(super) fn installed(before: &Config, after: &Config) {
    if let Some(startup) = STARTUP.get() {
        (startup.installed)(before, after);
    }
}
