//! The fleet's two threads: the subscriber (push + poll + resync) that
//! writes the local configuration, and the reporter (report, leases,
//! fleet health) that keeps this replica visible.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::keys::Keys;
use super::report::ReplicaReport;
use super::{lock, FleetError, Inner, Store, LEASE_TTL, POLL_EVERY, REPORT_EVERY, REPORT_TTL};
use crate::config::handle;

/// Longest wait for a message before the subscriber checks the poll and
/// the stop flag.
const SLICE: Duration = Duration::from_millis(100);
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// `SET NX PX` or, when we already hold it, `PEXPIRE`: 1 when we hold the lease.
static LEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
});

pub(super) fn spawn(inner: &Arc<Inner>) -> Result<(), FleetError> {
    let spawn_error = |error: std::io::Error| FleetError::Redis {
        url: super::store::redacted(&inner.url),
        detail: format!("cannot start the fleet thread: {error}"),
    };
    let subscriber = Arc::clone(inner);
    thread::Builder::new()
        .name("async-upload-fleet-sub".into())
        .spawn(move || subscribe(&subscriber))
        .map_err(spawn_error)?;
    let reporter = Arc::clone(inner);
    thread::Builder::new()
        .name("async-upload-fleet-report".into())
        .spawn(move || report(&reporter))
        .map_err(spawn_error)?;
    Ok(())
}

impl Inner {
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn contact(&self) {
        *lock(&self.last_contact) = Some(Instant::now());
    }

    /// Logs the connection's transitions once each.
    fn set_connected(&self, connected: bool, detail: &str) {
        if self.connected.swap(connected, Ordering::AcqRel) != connected {
            if connected {
                tracing::info!(instance = %self.instance, "async-upload fleet: connected to Redis");
            } else {
                tracing::warn!(instance = %self.instance, detail, "async-upload fleet: lost contact with Redis; keeping the last known state");
            }
        }
    }

    /// Reads the whole shared state and applies it.
    fn resync(&self, store: &Store) -> Result<(), FleetError> {
        let state = store.state()?;
        self.contact();
        let mut applier = lock(&self.applier);
        applier.apply(state, handle());
        self.applied_version
            .store(applier.version(), Ordering::Release);
        Ok(())
    }

    /// Seeds empty defaults, then latches what was latched locally while cut off.
    fn on_connect(&self, store: &Store) -> Result<(), FleetError> {
        if let Some(seed) = self.seed {
            if store.seed_defaults(seed)? {
                tracing::info!(
                    enabled = seed.enabled,
                    rollout = seed.rollout,
                    "async-upload fleet: shared defaults seeded from the environment"
                );
            }
        }
        let pending = std::mem::take(&mut *lock(&self.pending));
        for (site, reason) in pending {
            store.roll_back(&site, &reason)?;
        }
        Ok(())
    }

    fn check_stale(&self) {
        let Some(after) = self.stale_after else {
            return;
        };
        let since = *lock(&self.last_contact);
        if since.is_none_or(|at| at.elapsed() > after) {
            lock(&self.applier).fall_to_sync(handle());
        }
    }
}

fn subscribe(inner: &Inner) {
    let store = match Store::open(&inner.url) {
        Ok(store) => store,
        Err(error) => return tracing::error!(%error, "async-upload fleet: subscriber not started"),
    };
    let mut backoff = BACKOFF_MIN;
    while !inner.stopped() {
        match session(inner, &store, &mut backoff) {
            Ok(()) => return,
            Err(error) => inner.set_connected(false, &error.to_string()),
        }
        inner.check_stale();
        thread::sleep(backoff);
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life: subscribe, resync, then apply pushes and polls
/// until an error (returned) or the stop flag (`Ok`).
fn session(inner: &Inner, store: &Store, backoff: &mut Duration) -> Result<(), FleetError> {
    let redis_error = |error: redis::RedisError| FleetError::Redis {
        url: super::store::redacted(&inner.url),
        detail: error.to_string(),
    };
    let client = super::store::client(&inner.url)?;
    let mut connection = client
        .get_connection_with_timeout(super::DEFAULT_TIMEOUT)
        .map_err(redis_error)?;
    let mut pubsub = connection.as_pubsub();
    pubsub.subscribe(Keys::changes()).map_err(redis_error)?;
    pubsub.set_read_timeout(Some(SLICE)).map_err(redis_error)?;
    // Subscribed first, so no change between the resync and the first push is lost.
    inner.on_connect(store)?;
    inner.resync(store)?;
    inner.set_connected(true, "");
    *backoff = BACKOFF_MIN;
    let mut next_poll = Instant::now() + POLL_EVERY;
    while !inner.stopped() {
        match pubsub.get_message() {
            Ok(message) => {
                let payload: String = message.get_payload().unwrap_or_default();
                let version = payload
                    .split(' ')
                    .next()
                    .and_then(|v| v.parse::<u64>().ok());
                if version.is_none_or(|v| v > inner.applied_version.load(Ordering::Acquire)) {
                    inner.resync(store)?;
                }
            }
            Err(error) if error.is_timeout() => {}
            Err(error) => return Err(redis_error(error)),
        }
        if Instant::now() >= next_poll {
            let version = store.version()?;
            inner.contact();
            if version != inner.applied_version.load(Ordering::Acquire) {
                tracing::debug!(
                    version,
                    "async-upload fleet: the poll found a change the push missed"
                );
                inner.resync(store)?;
            }
            next_poll = Instant::now() + POLL_EVERY;
        }
    }
    Ok(())
}

fn report(inner: &Inner) {
    let store = match Store::open(&inner.url) {
        Ok(store) => store,
        Err(error) => return tracing::error!(%error, "async-upload fleet: reporter not started"),
    };
    while !inner.stopped() {
        let started = Instant::now();
        if let Err(error) = report_once(inner, &store) {
            tracing::debug!(%error, "async-upload fleet: report not published");
            // A lease we cannot renew will expire: stop acting on it now.
            let dropped = std::mem::take(&mut *lock(&inner.holding));
            for site in dropped {
                tracing::warn!(site, instance = %inner.instance, "async-upload fleet: lease given up (Redis unreachable)");
            }
        }
        thread::sleep(REPORT_EVERY.saturating_sub(started.elapsed()));
    }
}

fn report_once(inner: &Inner, store: &Store) -> Result<(), FleetError> {
    let now_ms = unix_ms();
    let aggregator = crate::metrics::global();
    let sites = aggregator
        .sites()
        .into_iter()
        .filter_map(|site| aggregator.snapshot(&site).map(|s| (site, s)))
        .collect();
    let wanted: Vec<String> = lock(&inner.leads).iter().cloned().collect();
    let report = ReplicaReport {
        instance: inner.instance.clone(),
        at_ms: now_ms,
        applied_version: inner.applied_version.load(Ordering::Acquire),
        leads: lock(&inner.holding).iter().cloned().collect(),
        sites,
    };
    store.publish_report(&report, now_ms)?;
    inner.contact();
    for site in wanted {
        let held = store.lease(&site, &inner.instance)?;
        let mut holding = lock(&inner.holding);
        let changed = if held {
            holding.insert(site.clone())
        } else {
            holding.remove(&site)
        };
        drop(holding);
        if changed {
            tracing::info!(site, instance = %inner.instance, leader = held, "async-upload fleet: lease changed hands");
        }
    }
    if !lock(&inner.holding).is_empty() {
        let replicas = store.replicas()?;
        lock(&inner.health).update(replicas, Instant::now());
    }
    Ok(())
}

impl Store {
    /// Publishes `report` with its TTL and indexes it; drops index entries
    /// of replicas that stopped reporting.
    pub(crate) fn publish_report(
        &self,
        report: &ReplicaReport,
        now_ms: u64,
    ) -> Result<(), FleetError> {
        let ttl_ms = u64::try_from(REPORT_TTL.as_millis()).unwrap_or(u64::MAX);
        self.query(|c| {
            redis::pipe()
                .cmd("SET")
                .arg(Keys::replica(&report.instance))
                .arg(report.to_json())
                .arg("PX")
                .arg(ttl_ms)
                .ignore()
                .zadd(Keys::replicas(), &report.instance, now_ms)
                .ignore()
                .zrembyscore(Keys::replicas(), "-inf", now_ms.saturating_sub(ttl_ms))
                .ignore()
                .query(c)
        })
    }

    /// Takes or renews the lease of `site` for `instance`: `true` when held.
    pub(crate) fn lease(&self, site: &str, instance: &str) -> Result<bool, FleetError> {
        let ttl_ms = u64::try_from(LEASE_TTL.as_millis()).unwrap_or(u64::MAX);
        let held: i64 = self.query(|c| {
            LEASE
                .key(Keys::lease(site))
                .arg(instance)
                .arg(ttl_ms)
                .invoke(c)
        })?;
        Ok(held == 1)
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
