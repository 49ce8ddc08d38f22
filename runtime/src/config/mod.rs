//! Configuration: the global [`Config`], per-site [`SiteOverrides`], their
//! environment variables, and the live [`ConfigHandle`] a running service
//! updates without a restart.
//!
//! # Precedence
//!
//! From lowest to highest, for each site:
//!
//! 1. built-in defaults ([`Config::default`]);
//! 2. the global environment (`ASYNC_UPLOAD_*`, read by [`Config::from_env`]),
//!    or a `Config` installed with [`ConfigHandle::replace`];
//! 3. the attribute's values for its site (`retries`, `timeout`, `backoff`);
//! 4. per-site operator overrides: the environment
//!    (`ASYNC_UPLOAD_<VAR>__<SITE>`, e.g. `ASYNC_UPLOAD_ROLLOUT__UPLOAD=10`),
//!    then [`ConfigHandle::set_site`].
//!
//! Two kill switches beat all of these: `enabled = false` in the global
//! config, and a rollback ([`ConfigHandle::roll_back`]). Either sends every
//! call of the site(s) concerned down the sync path.
//!
//! # Environment
//!
//! `ASYNC_UPLOAD_ENABLED`, `ASYNC_UPLOAD_ROLLOUT`, `ASYNC_UPLOAD_FALLBACK`,
//! `ASYNC_UPLOAD_MAX_RETRIES`, `ASYNC_UPLOAD_TIMEOUT`, `ASYNC_UPLOAD_LOG`,
//! `ASYNC_UPLOAD_BREAKER`, `ASYNC_UPLOAD_BREAKER_THRESHOLD`,
//! `ASYNC_UPLOAD_BREAKER_COOLDOWN` and `ASYNC_UPLOAD_RETRY_BUDGET`, read in
//! that order ([`env`](mod@env) names each and holds its value rules). What each
//! means, its default and what it accepts is the [configuration table of
//! the README](https://github.com/async-upload/async-upload#configuration),
//! written once there and tested against this code.
//!
mod changes;
pub mod env;
mod error;
mod global;
mod knobs;
mod live;
mod overrides;
mod startup;

pub use crate::breaker::{BreakerSettings, BreakerState};
pub use changes::{applied_by, as_controller};
pub use env::MAX_RETRIES_LIMIT;
pub use error::ConfigError;
pub use global::Config;
#[cfg(feature = "testing")]
pub(crate) use live::SiteControl;
pub use live::{handle, set_startup, ConfigHandle, Settings};
pub(crate) use live::{handle_starting, AttributeOverrides, Origins};
pub use overrides::SiteOverrides;
pub use startup::{Startup, StartupAlreadySet};
