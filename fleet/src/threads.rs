//! The fleet's two threads: the subscriber (push + poll + resync) that
//! writes the local configuration and writes latches back, and the
//! reporter (report, leases, fleet health, stage writes) that keeps this
//! replica visible. Neither runs on the service's executor.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

use super::connect::{ContactCause, FleetError};
use super::inner::Inner;
use super::keys::{Keys, TEXT_LIMIT};
use super::lock::{lock, unix_ms};
use super::report::ReplicaReport;
use super::stage;
use super::state::bounded;
use super::store::Store;
use super::timing::{LEASE_TTL, POLL_EVERY, REPORT_EVERY, REPORT_TTL};
use async_upload_runtime::config::handle;

/// Longest wait for a message before the subscriber checks the poll and
/// the stop flag.
const SLICE: Duration = Duration::from_millis(100);
/// Reconnection backoff bounds (each wait is drawn from its upper half,
/// so replicas cut off together do not retry in lockstep).
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A problem that lasts is repeated at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

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

fn due(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|at| now.saturating_duration_since(at) < WARN_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

pub(super) fn spawn(inner: &Arc<Inner>) -> Result<(), FleetError> {
    let spawn_error = |error: std::io::Error| FleetError::Redis {
        url: inner.store.url().to_owned(),
        detail: format!("cannot start the fleet thread: {error}"),
        cause: ContactCause::Server,
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

    /// A store of this replica's own (a thread's connection).
    fn open_store(&self) -> Result<Store, FleetError> {
        Ok(Store::open_with_ca(&self.url, self.ca.as_deref())?.with_actor(&self.instance))
    }

    fn contact(&self) {
        *lock(&self.last_contact) = Some(Instant::now());
    }

    fn set_connected(&self) {
        lock(&self.contact_log).ever_connected = true;
        if !self.connected.swap(true, Ordering::AcqRel) {
            tracing::info!(
                instance = %self.instance,
                url = %self.store.url(),
                pushes = self.pushes.load(Ordering::Acquire),
                "async-upload fleet: connected to Redis"
            );
        }
    }

    /// Says why Redis cannot be used: an ERROR the first time (at start),
    /// a WARN on losing contact, then at most once a minute.
    fn failed(&self, error: &FleetError) {
        let was_connected = self.connected.swap(false, Ordering::AcqRel);
        let cause = error.cause().map_or("invalid", ContactCause::as_str);
        let mut log = lock(&self.contact_log);
        let now = Instant::now();
        if was_connected {
            log.last_warn = Some(now);
            tracing::warn!(instance = %self.instance, cause, %error, "async-upload fleet: lost contact with Redis; keeping the last known state");
        } else if !log.ever_connected && !log.said_at_start {
            log.said_at_start = true;
            log.last_warn = Some(now);
            tracing::error!(instance = %self.instance, url = %self.store.url(), cause, %error, "async-upload fleet: cannot use Redis; this replica runs the sync path until it can");
        } else if due(&mut log.last_warn, now) {
            tracing::warn!(instance = %self.instance, url = %self.store.url(), cause, %error, "async-upload fleet: still cannot use Redis");
        }
    }

    /// Reads the whole shared state and applies it; writes back the latches
    /// the store lacks. Returns whether the store is empty (never held state).
    fn resync(&self, store: &Store) -> Result<bool, FleetError> {
        let known = lock(&self.applier).known_sites();
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let state = store.state_with(&known)?;
        if state.problems.is_empty() {
            self.contact();
        }
        *lock(&self.seen) = (state.epoch.clone(), state.raw_version.clone());
        let (outcome, version) = {
            let mut applier = lock(&self.applier);
            let outcome = applier.apply(state, handle());
            (outcome, applier.version())
        };
        self.applied_version.store(version, Ordering::Release);
        stage::settle(self, false);
        self.write_back(store, &outcome.write_backs);
        Ok(outcome.empty)
    }

    /// Whether `(epoch, version)` as stored differs from the last read.
    fn changed(&self, epoch: Option<String>, version: Option<String>) -> bool {
        let epoch = epoch.map(|e| bounded(&e, 64).to_owned());
        let version = version.map(|v| bounded(&v, TEXT_LIMIT + 1).to_owned());
        let seen = lock(&self.seen);
        // A version that is not a number never equals the last read's text.
        seen.0 != epoch || seen.1 != version
    }

    /// Writes back the latches the store lacks (idempotent: the first
    /// replica to write one latches it, the others find it latched), but
    /// not one a call of this replica is latching now: that call writes it,
    /// and must learn that it latched it.
    fn write_back(&self, store: &Store, latches: &[(String, String)]) {
        for (site, reason) in latches {
            if lock(&self.latching).contains_key(site) {
                continue;
            }
            match store.roll_back(site, reason) {
                Ok(true) => {
                    tracing::info!(instance = %self.instance, site, reason = %reason, "async-upload fleet: rollback written back to the shared state");
                }
                Ok(false) => {}
                Err(error) => {
                    if due(
                        &mut lock(&self.contact_log).write_back_warned,
                        Instant::now(),
                    ) {
                        tracing::warn!(instance = %self.instance, site, %error, "async-upload fleet: cannot write the rollback back; it stays latched here and is retried");
                    }
                }
            }
        }
    }

    /// Seeds the environment's defaults into a store that has never held
    /// state: not before a report TTL since this replica first reached it
    /// (replicas that remember a store report it within that time), and
    /// never when a live replica follows a store epoch (this store came
    /// back empty). Returns whether the question is settled.
    fn maybe_seed(&self, store: &Store) -> bool {
        let Some(seed) = self.seed else {
            return true;
        };
        let waited = lock(&self.first_contact).is_some_and(|at| at.elapsed() >= REPORT_TTL);
        if !waited {
            return false;
        }
        let remembered = match store.replicas() {
            Ok(reports) => reports
                .iter()
                .any(|r| r.epoch.is_some() && r.instance != self.instance),
            Err(_) => return false,
        };
        let mut log = lock(&self.contact_log);
        if remembered {
            if !log.said_seed {
                log.said_seed = true;
                tracing::error!(instance = %self.instance, "async-upload fleet: the shared state is empty but live replicas follow a store: it came back empty; not seeding it from the environment (set the defaults with `async-upload fleet set`)");
            }
            return true;
        }
        drop(log);
        match store.seed_defaults(seed) {
            Ok(true) => {
                tracing::info!(
                    instance = %self.instance,
                    enabled = seed.enabled,
                    rollout = seed.rollout,
                    "async-upload fleet: shared defaults seeded from the environment into a new store"
                );
                true
            }
            Ok(false) => true,
            Err(error) if error.cause() == Some(ContactCause::Permission) => {
                tracing::warn!(instance = %self.instance, cause = ContactCause::Permission.as_str(), %error, "async-upload fleet: this replica may not seed the defaults (least-privilege ACL): an operator sets them with `async-upload fleet set`");
                true
            }
            Err(_) => false,
        }
    }

    fn check_stale(&self) {
        let Some(after) = self.stale_after else {
            return;
        };
        let since = *lock(&self.last_contact);
        if since.is_none_or(|at| at.elapsed() > after) {
            lock(&self.applier).fall_to_sync(handle(), after);
        }
    }

    /// Sleeps `total` in slices, so that a stop is honoured within one.
    fn pause(&self, total: Duration) {
        let until = Instant::now() + total;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(SLICE));
        }
    }
}

fn subscribe(inner: &Inner) {
    let store = match inner.open_store() {
        Ok(store) => store,
        Err(error) => return tracing::error!(%error, "async-upload fleet: subscriber not started"),
    };
    let mut backoff = BACKOFF_MIN;
    while !inner.stopped() {
        match session(inner, &store, &mut backoff) {
            Ok(()) => return,
            Err(error) => inner.failed(&error),
        }
        inner.check_stale();
        // Full jitter over the upper half: bounded by the cap, never in lockstep.
        inner.pause(backoff.mul_f64(0.5 + fastrand::f64() / 2.0));
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's life: check the server, subscribe, resync, then apply
/// pushes and polls until an error (returned) or the stop flag (`Ok`).
fn session(inner: &Inner, store: &Store, backoff: &mut Duration) -> Result<(), FleetError> {
    // Never reuse a connection from before: a restart killed it.
    store.reset();
    store.probe()?;
    let mut connection = super::connect::open(store.client(), super::store::DEFAULT_TIMEOUT)
        .map_err(|e| store.error(&e))?;
    let mut pubsub = connection.as_pubsub();
    pubsub
        .subscribe(store.keys().changes())
        .map_err(|e| store.error(&e))?;
    // A refused SUBSCRIBE (NOPERM) is not reported by `subscribe`: in
    // subscribed mode PING answers an array, otherwise a plain PONG.
    let subscribed = matches!(
        pubsub.ping::<redis::Value>().map_err(|e| store.error(&e))?,
        redis::Value::Array(_)
    );
    inner.pushes.store(subscribed, Ordering::Release);
    if !subscribed {
        let mut log = lock(&inner.contact_log);
        if !log.said_no_pushes {
            log.said_no_pushes = true;
            tracing::error!(
                instance = %inner.instance,
                cause = ContactCause::Permission.as_str(),
                channel = %store.keys().changes(),
                "async-upload fleet: SUBSCRIBE was refused (the ACL user lacks the channel right, see docs/fleet.md, ACL users): this replica follows changes by the once-a-second poll only; `fleet status` shows it"
            );
        }
    }
    pubsub
        .set_read_timeout(Some(SLICE))
        .map_err(|e| store.error(&e))?;
    lock(&inner.first_contact).get_or_insert_with(Instant::now);
    let mut awaiting_seed = inner.resync(store)?;
    inner.set_connected();
    *backoff = BACKOFF_MIN;
    let mut next_poll = Instant::now() + POLL_EVERY;
    while !inner.stopped() {
        if subscribed {
            match pubsub.get_message() {
                Ok(message) => {
                    let payload: String = message.get_payload().unwrap_or_default();
                    let mut words = payload.split(' ');
                    let (epoch, version) = (words.next(), words.next());
                    if inner.changed(epoch.map(str::to_owned), version.map(str::to_owned)) {
                        awaiting_seed = inner.resync(store)?;
                    }
                }
                Err(error) if error.is_timeout() => {}
                Err(error) => return Err(store.error(&error)),
            }
        } else {
            thread::sleep(SLICE);
        }
        if Instant::now() >= next_poll {
            let (epoch, version) = store.epoch_and_version()?;
            if inner.changed(epoch, version) {
                tracing::debug!("async-upload fleet: the poll found a change the push missed");
                awaiting_seed = inner.resync(store)?;
            } else if lock(&inner.applier).store_valid() {
                inner.contact();
            }
            let unwritten = lock(&inner.applier).unwritten();
            inner.write_back(store, &unwritten);
            if awaiting_seed {
                awaiting_seed = !inner.maybe_seed(store);
            }
            inner.check_stale();
            next_poll = Instant::now() + POLL_EVERY;
        }
    }
    Ok(())
}

fn report(inner: &Inner) {
    let store = match inner.open_store() {
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
        stage::settle(inner, true);
        inner.pause(REPORT_EVERY.saturating_sub(started.elapsed()));
    }
}

fn report_once(inner: &Inner, store: &Store) -> Result<(), FleetError> {
    let now_ms = unix_ms();
    let aggregator = async_upload_runtime::metrics::global();
    let sites = aggregator
        .sites()
        .into_iter()
        .filter_map(|site| aggregator.snapshot(&site).map(|s| (site, s)))
        .collect();
    let wanted: Vec<String> = lock(&inner.leads).iter().cloned().collect();
    let (epoch, remembered) = {
        let applier = lock(&inner.applier);
        (applier.epoch(), applier.remembered())
    };
    let report = ReplicaReport {
        instance: inner.instance.clone(),
        run: inner.run.clone(),
        at_ms: now_ms,
        applied_version: inner.applied_version.load(Ordering::Acquire),
        epoch,
        pushes: inner.pushes.load(Ordering::Acquire) && inner.connected.load(Ordering::Acquire),
        remembered,
        leads: lock(&inner.holding).iter().cloned().collect(),
        sites,
    };
    store.publish_report(&report, now_ms)?;
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
        let json = report.to_json();
        self.query(|c| {
            redis::pipe()
                .cmd("SET")
                .arg(Keys::replica(&report.instance))
                .arg(&json)
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
