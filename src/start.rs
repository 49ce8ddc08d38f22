//! The environment-driven start-up of the layers above the runtime: the
//! JSONL log of `ASYNC_UPLOAD_LOG` and the fleet of `ASYNC_UPLOAD_REDIS_URL`,
//! started with no code, before the first annotated call or the first use of
//! [`config::handle`](crate::config::handle).

use async_upload_runtime::config::{set_startup, Config, Startup};

/// The facade's start-up. Every annotated function's site carries it
/// (`Site::with_startup`), which registers it at the site's first read of
/// the configuration, at no cost per call.
pub const STARTUP: Startup = Startup::new(start_layers, follow);

/// Registers the start-up with the runtime, for the facade's own entry
/// points that may be the process's first use of the configuration
/// ([`config::handle`](crate::config::handle)). The runtime keeps the first
/// registration, whoever made it; once made, this is one load.
pub fn start() {
    let _ = set_startup(STARTUP);
}

fn start_layers(config: Config) -> Config {
    async_upload_control::log::install_global(config.log_path.as_deref());
    // The sync path until the shared state is read.
    #[cfg(feature = "redis")]
    let config = async_upload_fleet::start_from_env(config);
    config
}

fn follow(before: &Config, after: &Config) {
    if before.log_path != after.log_path {
        async_upload_control::log::install_global(after.log_path.as_deref());
    }
}
