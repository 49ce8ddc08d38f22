//! Fleet mode of async-upload: every replica shares each site's enabled
//! flag, rollout, stage, overrides and rollback latch through Redis. Users
//! reach it as `async_upload_fleet` (the facade's `redis` feature).
//!
//! The data flow is a flag SDK's: a data source (pub/sub push, plus a
//! version poll every second as a safety net, plus a full resync after
//! every reconnect) writes into the process's live configuration, and the
//! call path reads only that local memory, never Redis. The fleet runs on
//! two threads of its own, never on the service's executor, so an
//! unreachable Redis can neither stall nor fail an upload.
//!
//! With `ASYNC_UPLOAD_REDIS_URL` set, the first use of the configuration
//! starts the fleet with no code ([`global`]); [`Fleet::builder`] is for
//! code that wants its own settings.
//!
//! Its variables are [`REDIS_URL`], [`REDIS_STALE_AFTER`], [`INSTANCE`] and
//! [`REDIS_CA`]; what each means and its default is the table at the top of
//! the [fleet guide](https://github.com/async-upload/async-upload/blob/main/docs/fleet.md),
//! written once there and tested against these names.
//!
//! The key layout is documented in docs/fleet.md (layout version 1, every key
//! under `async-upload:v1:`), with the failure modes and the ACLs.
//!
//! The public names: [`Fleet`] and [`FleetBuilder`]; the fleet started from
//! the environment ([`global`], [`start_from_env`]) and its variables
//! ([`REDIS_URL`], [`REDIS_CA`], [`REDIS_STALE_AFTER`], [`INSTANCE`]); the
//! shared state ([`Store`], [`FleetState`], [`SiteState`], [`Defaults`],
//! [`FleetError`], [`DEFAULT_TIMEOUT`]); replicas' reports
//! ([`ReplicaReport`], [`merge_reports`]); the stage controller's seams
//! ([`LocalGuard`]); contact causes ([`ContactCause`]); the ACLs
//! ([`OPERATOR_ACL`], [`REPLICA_ACL`]); the timings ([`REPORT_EVERY`],
//! [`REPORT_TTL`], [`LEASE_TTL`], [`POLL_EVERY`]).
#![deny(missing_docs)]
#![warn(clippy::pedantic)]
#![allow(clippy::module_name_repetitions)]

mod acl;
mod apply;
mod change;
mod connect;
mod contact;
mod env;
mod health;
mod inner;
mod keys;
mod lock;
mod member;
mod pending;
mod read;
mod report;
mod script;
mod seams;
mod stage;
mod state;
mod store;
mod threads;
mod timing;

pub use acl::{OPERATOR_ACL, REPLICA_ACL};
pub use connect::{ContactCause, FleetError};
pub use env::{INSTANCE, REDIS_CA, REDIS_STALE_AFTER, REDIS_URL};
pub use member::{global, start_from_env, Fleet, FleetBuilder};
pub use report::{merge_reports, ReplicaReport};
pub use seams::LocalGuard;
pub use state::{Defaults, FleetState, SiteState};
pub use store::{Store, DEFAULT_TIMEOUT};
pub use timing::{LEASE_TTL, POLL_EVERY, REPORT_EVERY, REPORT_TTL};
