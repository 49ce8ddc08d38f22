//! The static descriptor of an annotated function ([`Site`]) and the
//! per-call routing decision ([`Call`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::config::{live, AttributeOverrides, Settings};
use crate::metrics::{self, SiteStats};
use crate::rollout::{self, RolloutKey};

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
    cache: Cache,
}

/// What a site resolved from the live configuration, refreshed whenever the
/// configuration's generation moves past the one cached here.
#[derive(Debug)]
struct Cache {
    generation: AtomicU64,
    /// `ROUTE_ASYNC` when enabled and not rolled back, plus the rollout
    /// threshold in the low 16 bits: the whole decision for the sync path in
    /// one load.
    route: AtomicU32,
    settings: ArcSwapOption<Settings>,
    stats: OnceLock<Arc<SiteStats>>,
}

const UNRESOLVED: u64 = u64::MAX;
const ROUTE_ASYNC: u32 = 1 << 16;

impl Site {
    /// A site named `name`, salted with its name, with no attribute overrides.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Site {
            name,
            salt: None,
            attribute: AttributeOverrides {
                retries: None,
                timeout: None,
                backoff: None,
            },
            cache: Cache {
                generation: AtomicU64::new(UNRESOLVED),
                route: AtomicU32::new(0),
                settings: ArcSwapOption::const_empty(),
                stats: OnceLock::new(),
            },
        }
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
        self.cache
            .settings
            .load()
            .as_deref()
            .copied()
            .unwrap_or_else(|| self.resolve_now())
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

    fn decide(&'static self, bucket: impl FnOnce() -> u16) -> Call {
        let started = Instant::now();
        self.refresh_if_stale();
        let route = self.cache.route.load(Ordering::Acquire);
        let path = if route & ROUTE_ASYNC == 0 {
            Path::Sync(self.sync_reason())
        } else {
            // Threshold 0 and 10_000 decide without hashing.
            let threshold = route & 0xFFFF;
            let enrolled = match threshold {
                0 => false,
                t if t >= u32::from(rollout::BUCKETS) => true,
                t => u32::from(bucket()) < t,
            };
            match (enrolled, self.cache.settings.load().as_deref()) {
                (true, Some(settings)) => Path::Async(*settings),
                _ => Path::Sync(SyncReason::NotEnrolled),
            }
        };
        Call {
            site: self,
            path,
            bytes: None,
            started,
        }
    }

    fn sync_reason(&self) -> SyncReason {
        match self.cache.settings.load().as_deref() {
            Some(settings) if settings.rolled_back => SyncReason::RolledBack,
            _ => SyncReason::Disabled,
        }
    }

    fn refresh_if_stale(&self) {
        let live = live();
        if self.cache.generation.load(Ordering::Acquire) != live.generation() {
            self.resolve_now();
        }
    }

    fn resolve_now(&self) -> Settings {
        let (settings, generation) = live().resolve(self.name, self.attribute);
        let route = if settings.enabled && !settings.rolled_back {
            ROUTE_ASYNC | u32::from(settings.rollout.threshold())
        } else {
            0
        };
        self.cache.settings.store(Some(Arc::new(settings)));
        self.cache.route.store(route, Ordering::Release);
        self.cache.generation.store(generation, Ordering::Release);
        settings
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

/// Why a call runs the sync path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncReason {
    /// `enabled = false`, globally or for the site.
    Disabled,
    /// The site is rolled back.
    RolledBack,
    /// The key's bucket is above the rollout threshold.
    NotEnrolled,
}

/// One call of a site, decided and timed from its start.
///
/// Hand it to [`execute`](crate::execute::execute) with the arguments and both paths.
#[derive(Clone, Copy, Debug)]
#[must_use = "a Call does nothing until it is executed"]
pub struct Call {
    pub(crate) site: &'static Site,
    pub(crate) path: Path,
    pub(crate) bytes: Option<u64>,
    pub(crate) started: Instant,
}

impl Call {
    /// Records the size of the upload with the call.
    pub fn with_bytes(mut self, bytes: impl ByteCount) -> Self {
        self.bytes = bytes.byte_count();
        self
    }

    /// The path decided for this call.
    #[must_use]
    pub fn path(&self) -> Path {
        self.path
    }

    /// Whether the call takes the async path.
    #[must_use]
    pub fn runs_async(&self) -> bool {
        matches!(self.path, Path::Async(_))
    }

    /// The site of the call.
    #[must_use]
    pub fn site(&self) -> &'static Site {
        self.site
    }
}

/// A size recorded with a call: any integer (negative counts as unknown),
/// or an `Option` of one.
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
