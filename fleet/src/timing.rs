//! The fleet's timings: reports, leases and the safety-net poll.

use std::time::Duration;

/// How often a replica publishes its report and renews its leases.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How long a report lives: a replica that misses three reports drops out
/// of the fleet's health and status.
pub const REPORT_TTL: Duration = Duration::from_secs(3);
/// How long a lease lives unrenewed: a dead leader's site is taken over
/// within this time plus one report interval.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// The safety-net poll of the state version (pub/sub loses what is sent
/// while a connection is down).
pub const POLL_EVERY: Duration = Duration::from_secs(1);
