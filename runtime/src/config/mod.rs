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
//! | variable | meaning | default | accepted |
//! | --- | --- | --- | --- |
//! | `ASYNC_UPLOAD_ENABLED` | the async path may run at all | `false` | true/false/1/0/yes/no/on/off, any case |
//! | `ASYNC_UPLOAD_ROLLOUT` | percent of keys enrolled | `0` | 0–100, up to two decimals |
//! | `ASYNC_UPLOAD_FALLBACK` | fall back to sync when async gives up | `true` | as ENABLED |
//! | `ASYNC_UPLOAD_MAX_RETRIES` | retries after the first async attempt | `2` | 0–10 |
//! | `ASYNC_UPLOAD_TIMEOUT` | seconds per async attempt | `30` | > 0, decimals allowed |
//! | `ASYNC_UPLOAD_LOG` | JSONL file receiving every record and event | unset | a writable path |
//! | `ASYNC_UPLOAD_BREAKER` | per-site circuit breaker and retry budget | `true` | as ENABLED |
//! | `ASYNC_UPLOAD_BREAKER_THRESHOLD` | percent of recent async attempts (at least 10 in 10 s) that must fail to open the breaker | `50` | 1–100 |
//! | `ASYNC_UPLOAD_BREAKER_COOLDOWN` | seconds an open breaker waits before a probe; doubles while probes fail, up to 8 × | `1` | 0.001–3600 |
//! | `ASYNC_UPLOAD_RETRY_BUDGET` | retries allowed, in percent of the calls since failures began (banked up to 20, plus 1 per second) | `20` | 0–100 |

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
