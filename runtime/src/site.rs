//! The static descriptor of an annotated function ([`Site`]) and the
//! per-call routing decision ([`Call`]).

mod cache;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::breaker::background::{Probe, ProbeFn};
use crate::breaker::Breaker;
use crate::config::{
    handle, handle_starting, set_startup, AttributeOverrides, BreakerSettings, BreakerState,
    Origins, Settings, Startup,
};
pub use crate::metrics::SyncReason;
use crate::metrics::{self, SiteStats};
use crate::policy::Backoff;
use crate::rollout::{self, Rollout, RolloutKey};
use crate::sync::maybe_const_fn;

/// One annotated function: its name, salt and the attribute's values, plus
/// the settings it resolved from the live configuration.
///
/// The attribute declares one `static` per function; by hand:
///
/// ```
/// use std::time::Duration;
/// use async_upload_runtime::Site;
///
/// static UPLOAD: Site = Site::new("upload")
///     .with_retries(2)
///     .with_timeout(Duration::from_secs(30));
///
/// let call = UPLOAD.call(&"file-1");
/// assert!(!call.runs_async()); // async is disabled until configured
/// ```
#[derive(Debug)]
pub struct Site {
    name: &'static str,
    salt: Option<&'static str>,
    attribute: AttributeOverrides,
    /// The attribute's `probe`, run in the background while the breaker is open.
    probe: Option<ProbeFn>,
    /// The attribute's `probe_timeout`.
    probe_timeout: Option<Duration>,
    /// The start-up of the layers above, registered by this site's first
    /// use of the configuration (`with_startup`).
    startup: Option<Startup>,
    cache: Cache,
}

/// What a site resolved from the live configuration (`cache.rs`: the
/// words and the protocol that stores them), beside its counters.
#[derive(Debug)]
struct Cache {
    settings: cache::Cache,
    stats: OnceLock<Arc<SiteStats>>,
    /// The circuit breaker and retry budget, beside the counters.
    breaker: Breaker,
    /// Whether the effective settings were logged (once, at first use).
    announced: AtomicBool,
}

const THRESHOLD: u64 = 0xFFFF;
const ROUTE_ASYNC: u64 = 1 << 16;
const ROUTE_ROLLED_BACK: u64 = 1 << 17;
const ROUTE_ENABLED: u64 = 1 << 18;
const ROUTE_FALLBACK: u64 = 1 << 19;
const RETRIES_SHIFT: u32 = 24;

impl Site {
    maybe_const_fn! {
        /// A site named `name`, salted with its name, with no attribute overrides.
        #[must_use]
        pub fn new(name: &'static str) -> Self {
            Site {
                name,
                salt: None,
                attribute: AttributeOverrides {
                    retries: None,
                    timeout: None,
                    backoff: None,
                },
                probe: None,
                probe_timeout: None,
                startup: None,
                cache: Cache {
                    settings: cache::Cache::new(),
                    stats: OnceLock::new(),
                    breaker: Breaker::new(),
                    announced: AtomicBool::new(false),
                },
            }
        }
    }

    /// The attribute's values (a testing scope resolves its own settings).
    #[cfg(feature = "testing")]
    pub(crate) fn attribute(&self) -> AttributeOverrides {
        self.attribute
    }

    /// Hashes keys with `salt` instead of the site name (an empty salt hashes keys alone).
    #[must_use]
    pub const fn with_salt(mut self, salt: &'static str) -> Self {
        self.salt = Some(salt);
        self
    }

    /// Retries after the first async attempt for this site (the attribute's `retries`).
    #[must_use]
    pub const fn with_retries(mut self, retries: u32) -> Self {
        self.attribute.retries = Some(retries);
        self
    }

    /// Per-attempt timeout for this site (the attribute's `timeout`).
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.attribute.timeout = Some(timeout);
        self
    }

    /// Backoff base for this site (the attribute's `backoff`).
    #[must_use]
    pub const fn with_backoff(mut self, base: Duration) -> Self {
        self.attribute.backoff = Some(base);
        self
    }

    /// A probe the circuit breaker runs in the background while it is
    /// open (the attribute's `probe`): it resolves to whether the async
    /// backend is healthy (a HEAD on the bucket, a health endpoint). With
    /// one, no call ever probes: every enrolled call takes the sync path
    /// at once until a probe succeeds and the breaker closes.
    ///
    /// ```
    /// use async_upload_runtime::Site;
    ///
    /// async fn bucket_reachable() -> std::io::Result<()> { Ok(()) }
    ///
    /// static UPLOAD: Site = Site::new("docs_probe")
    ///     .with_probe(|| Box::pin(async { bucket_reachable().await.is_ok() }));
    /// # let _ = &UPLOAD;
    /// ```
    #[must_use]
    pub const fn with_probe(
        mut self,
        probe: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>,
    ) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The start-up of the layers above the runtime (the facade's log and
    /// fleet), registered when this site first reads the configuration: at
    /// no cost per call, and before the configuration's first use when this
    /// site is the first to read it ([`set_startup`] then applies it late).
    #[must_use]
    pub const fn with_startup(mut self, startup: Startup) -> Self {
        self.startup = Some(startup);
        self
    }

    /// The background probe's own timeout (the attribute's
    /// `probe_timeout`); default `min(timeout, 1 s)`.
    #[must_use]
    pub const fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = Some(timeout);
        self
    }

    /// The background probe, if the site has one.
    pub(crate) fn probe(&self) -> Option<Probe> {
        self.probe.map(|run| Probe {
            run,
            timeout: self.probe_timeout,
        })
    }

    /// The site's name, used in records, logs and per-site overrides.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The salt keys are hashed with.
    #[must_use]
    pub const fn salt(&self) -> &'static str {
        match self.salt {
            Some(salt) => salt,
            None => self.name,
        }
    }

    /// The bucket of `key` at this site.
    ///
    /// ```
    /// use async_upload_runtime::Site;
    ///
    /// static UPLOAD: Site = Site::new("upload");
    /// assert_eq!(UPLOAD.bucket(&"file-1"), 1804);
    /// ```
    #[must_use]
    pub fn bucket<K: RolloutKey + ?Sized>(&self, key: &K) -> u16 {
        key.with_key_bytes(|bytes| rollout::bucket(self.salt(), bytes))
    }

    /// The settings this site runs with now.
    #[must_use]
    pub fn settings(&self) -> Settings {
        self.refresh_if_stale();
        self.load_settings(self.cache.settings.route())
    }

    /// Decides the path of a call keyed by `key`; the key is hashed only if
    /// the site is enabled and partially rolled out.
    pub fn call<K: RolloutKey + ?Sized>(&'static self, key: &K) -> Call {
        self.decide(|| self.bucket(key))
    }

    /// Decides the path of a call with no key: a fresh random bucket, so
    /// the same request may take another path next time.
    pub fn call_unkeyed(&'static self) -> Call {
        self.decide(rollout::random_bucket)
    }

    fn decide(&'static self, bucket: impl Fn() -> u16) -> Call {
        #[cfg(feature = "testing")]
        if let Some(decided) = crate::testing::decide(self.name(), self.attribute(), &bucket) {
            return Call {
                site: self,
                decision: Decision::Scoped(decided.err()),
                bytes: None,
            };
        }
        self.refresh_if_stale();
        let route = self.cache.settings.route();
        let decision = if route & ROUTE_ROLLED_BACK != 0 {
            Decision::Sync(SyncReason::RolledBack)
        } else if route & ROUTE_ASYNC == 0 {
            Decision::Sync(SyncReason::Disabled)
        } else {
            // Threshold 0 and 10_000 decide without hashing.
            let enrolled = match route & THRESHOLD {
                0 => false,
                t if t >= u64::from(rollout::BUCKETS) => true,
                t => u64::from(bucket()) < t,
            };
            if enrolled {
                Decision::Async { route }
            } else {
                Decision::Sync(SyncReason::NotEnrolled)
            }
        };
        Call {
            site: self,
            decision,
            bytes: None,
        }
    }

    fn refresh_if_stale(&self) {
        if !self
            .cache
            .settings
            .holds(handle_starting(self.startup).generation())
        {
            self.resolve_now();
        }
    }

    fn resolve_now(&self) {
        if let Some(startup) = self
            .startup
            .filter(|_| !self.cache.announced.load(Ordering::Relaxed))
        {
            // This site's first resolution: the configuration was first used
            // elsewhere, so the start-up may not be registered yet.
            let _ = set_startup(startup);
        }
        let (settings, origins, generation) = handle().resolve(self.name, self.attribute);
        if !self.cache.announced.swap(true, Ordering::Relaxed) {
            self.announce(&settings, origins);
        }
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let flag = |on: bool, bit: u64| if on { bit } else { 0 };
        let route = u64::from(settings.rollout.threshold())
            | flag(settings.enabled && !settings.rolled_back, ROUTE_ASYNC)
            | flag(settings.rolled_back, ROUTE_ROLLED_BACK)
            | flag(settings.enabled, ROUTE_ENABLED)
            | flag(settings.fallback, ROUTE_FALLBACK)
            | u64::from(settings.max_retries.min(255)) << RETRIES_SHIFT;
        let breaker = settings.breaker;
        let cooldown_ms = u64::try_from(breaker.cooldown.as_millis()).unwrap_or(u64::MAX);
        let words = cache::Words {
            route,
            timeout_ns: nanos(settings.timeout),
            backoff_base_ns: nanos(settings.backoff.base()),
            backoff_cap_ns: nanos(settings.backoff.cap()),
            breaker: u64::from(breaker.enabled)
                | u64::from(breaker.threshold) << 8
                | u64::from(breaker.retry_budget) << 16
                | cooldown_ms.min(u64::from(u32::MAX)) << 32,
        };
        self.cache.settings.publish(generation, &words);
    }

    /// The one line a site logs at first use: what it runs with, and which
    /// level of the precedence each setting came from.
    fn announce(&self, settings: &Settings, origins: Origins) {
        tracing::info!(
            site = self.name,
            enabled = settings.enabled,
            enabled_from = origins.enabled.as_str(),
            rolled_back = settings.rolled_back,
            rollout = settings.rollout.percent(),
            rollout_from = origins.rollout.as_str(),
            fallback = settings.fallback,
            fallback_from = origins.fallback.as_str(),
            max_retries = settings.max_retries,
            max_retries_from = origins.max_retries.as_str(),
            timeout_ms = settings.timeout.as_secs_f64() * 1000.0,
            timeout_from = origins.timeout.as_str(),
            backoff_base_ms = settings.backoff.base().as_secs_f64() * 1000.0,
            backoff_from = origins.backoff.as_str(),
            breaker = settings.breaker.enabled,
            breaker_from = origins.breaker.as_str(),
            breaker_threshold_pct = settings.breaker.threshold,
            breaker_cooldown_ms = settings.breaker.cooldown.as_secs_f64() * 1000.0,
            retry_budget_pct = settings.breaker.retry_budget,
            "async-upload site settings",
        );
    }

    /// The settings packed by `resolve_now`, around the `route` word already loaded.
    fn load_settings(&self, route: u64) -> Settings {
        let words = self.cache.settings.words(route);
        let duration = Duration::from_nanos;
        #[allow(clippy::cast_possible_truncation)] // masked to 16 and 8 bits
        Settings {
            enabled: route & ROUTE_ENABLED != 0,
            rolled_back: route & ROUTE_ROLLED_BACK != 0,
            rollout: Rollout::from_buckets((route & THRESHOLD) as u16),
            fallback: route & ROUTE_FALLBACK != 0,
            max_retries: ((route >> RETRIES_SHIFT) & 0xFF) as u32,
            timeout: duration(words.timeout_ns),
            backoff: Backoff::new(
                duration(words.backoff_base_ns),
                duration(words.backoff_cap_ns),
            ),
            breaker: {
                let word = words.breaker;
                BreakerSettings::new(
                    word & 1 != 0,
                    (word >> 8) as u8,
                    Duration::from_millis(word >> 32),
                    (word >> 16) as u8,
                )
            },
        }
    }

    /// The state of this site's circuit breaker.
    ///
    /// ```
    /// use async_upload_runtime::config::BreakerState;
    /// use async_upload_runtime::Site;
    ///
    /// static UPLOAD: Site = Site::new("docs_breaker");
    /// assert_eq!(UPLOAD.breaker_state(), BreakerState::Closed);
    /// ```
    #[must_use]
    pub fn breaker_state(&self) -> BreakerState {
        self.cache.breaker.state()
    }

    pub(crate) fn breaker(&self) -> &Breaker {
        &self.cache.breaker
    }

    /// This site's counters in the global aggregator.
    pub(crate) fn stats(&self) -> &SiteStats {
        self.cache
            .stats
            .get_or_init(|| metrics::global().site(self.name))
    }
}

/// The path a call takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Path {
    /// The new async path, with the settings in force when the call started.
    Async(Settings),
    /// The old sync path, and why.
    Sync(SyncReason),
}

/// One call of a site and the path decided for it.
///
/// Hand it to [`execute`](crate::execute::execute) with the arguments and both paths.
#[derive(Clone, Copy, Debug)]
#[must_use = "a Call does nothing until it is executed"]
pub struct Call {
    pub(crate) site: &'static Site,
    decision: Decision,
    pub(crate) bytes: Option<u64>,
}

/// The decision as `decide` took it: for the async path only the site's
/// route word, unpacked into [`Settings`] when the call runs, so a call
/// stays four words and the sync paths never touch the settings.
#[derive(Clone, Copy, Debug)]
enum Decision {
    Async {
        route: u64,
    },
    Sync(SyncReason),
    /// Decided by the testing scope in force: the sync path and why, or
    /// (`None`) the async path with the scope's settings.
    #[cfg(feature = "testing")]
    Scoped(Option<SyncReason>),
}

impl Call {
    /// Records the size of the upload with the call.
    pub fn with_bytes(mut self, bytes: impl ByteCount) -> Self {
        self.bytes = bytes.byte_count();
        self
    }

    /// The path decided for this call, with the settings in force when it
    /// was decided.
    #[must_use]
    pub fn path(&self) -> Path {
        match self.decision {
            Decision::Async { route } => Path::Async(self.site.load_settings(route)),
            Decision::Sync(reason) => Path::Sync(reason),
            // A scoped call run outside its scope takes the safe path.
            #[cfg(feature = "testing")]
            Decision::Scoped(Some(reason)) => Path::Sync(reason),
            #[cfg(feature = "testing")]
            Decision::Scoped(None) => crate::testing::current()
                .map_or(Path::Sync(SyncReason::ForcedSync), |scope| {
                    Path::Async(scope.settings(self.site.name(), self.site.attribute()))
                }),
        }
    }

    /// Whether the call takes the async path.
    #[must_use]
    pub fn runs_async(&self) -> bool {
        match self.decision {
            Decision::Async { .. } => true,
            Decision::Sync(_) => false,
            #[cfg(feature = "testing")]
            Decision::Scoped(reason) => reason.is_none(),
        }
    }

    /// The site of the call.
    #[must_use]
    pub fn site(&self) -> &'static Site {
        self.site
    }

    /// The testing scope the call was decided in, if any.
    #[cfg(feature = "testing")]
    pub(crate) fn scope(&self) -> Option<Arc<crate::testing::Scope>> {
        match self.decision {
            Decision::Scoped(_) => crate::testing::current(),
            _ => None,
        }
    }
}

/// A size recorded with a call: any integer (negative counts as unknown),
/// or an `Option` of one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as the size of an upload",
    label = "not a byte count",
    note = "`size` takes an integer number of bytes (e.g. `data.len()`), or an `Option` of one"
)]
pub trait ByteCount {
    /// The size in bytes, if known.
    fn byte_count(self) -> Option<u64>;
}

macro_rules! byte_counts {
    ($($ty:ty),*) => {$(
        impl ByteCount for $ty {
            fn byte_count(self) -> Option<u64> {
                u64::try_from(self).ok()
            }
        }
    )*};
}

byte_counts!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl<T: ByteCount> ByteCount for Option<T> {
    fn byte_count(self) -> Option<u64> {
        self.and_then(ByteCount::byte_count)
    }
}

impl<T: ByteCount + Copy> ByteCount for &T {
    fn byte_count(self) -> Option<u64> {
        (*self).byte_count()
    }
}
