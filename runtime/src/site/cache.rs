//! What a site resolved from the live configuration, and the protocol that
//! keeps it from ever claiming a generation newer than what it holds.
//!
//! Resolving runs under the configuration's lock, but storing the result
//! cannot: a call must never wait for it. So two threads that refresh a
//! site across two back-to-back changes store concurrently, and with plain
//! stores (`route`, then `generation`) the older one can land last:
//! `B.route = new; A.route = old; A.generation = g1; B.generation = g2`
//! leaves the site claiming g2 with g1's route — a rollback that never
//! takes effect until some later change.
//!
//! The protocol: one `stamp` word holds the generation the cache holds
//! and a "being written" bit. A writer claims the stamp with a CAS only
//! when its generation is newer than the stamp's (an older writer gives
//! up, a newer one waits for the few stores of the one in progress), stores
//! the words, then releases the stamp with its generation. So the words are
//! written in increasing generation order, never an older over a newer, and
//! a reader that sees a stamp (acquire) sees words of that generation or a
//! newer one. The reader needs no re-check: the routing decision is one
//! word, so it cannot read half of one generation and half of another.
//! The other words (timeout, backoff, breaker settings) are read only on
//! the async path, and a call racing a change may see some of them old and
//! some new; every combination is a valid configuration, and the next call
//! sees the new one whole.
//!
//! Why not the alternatives: one word for route and generation leaves the
//! other words to the same race; an `ArcSwap` of the whole settings costs a
//! reader more than the two loads it makes today (the `decide/*` rows of
//! `runtime/benches/runtime.rs`).
//!
//! The atomics come from [`crate::sync`], so `.ci/loom` model-checks the
//! protocol (`loom_*` below).

use crate::sync::{maybe_const_fn, yield_now, AtomicU64, Ordering};

/// The words a site caches, as [`Cache::publish`] takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Words {
    /// The routing decision's word (see `Site`'s `ROUTE_*` bits).
    pub(super) route: u64,
    pub(super) timeout_ns: u64,
    pub(super) backoff_base_ns: u64,
    pub(super) backoff_cap_ns: u64,
    /// The breaker's settings, packed.
    pub(super) breaker: u64,
}

#[derive(Debug)]
pub(super) struct Cache {
    /// `(generation + 1) << 1` of the words held, bit 0 set while a writer
    /// stores them; 0 before the first store.
    stamp: AtomicU64,
    route: AtomicU64,
    timeout_ns: AtomicU64,
    backoff_base_ns: AtomicU64,
    backoff_cap_ns: AtomicU64,
    breaker: AtomicU64,
}

const WRITING: u64 = 1;

/// The stamp of `generation`'s words, once stored.
const fn stamp_of(generation: u64) -> u64 {
    generation.wrapping_add(1) << 1
}

impl Cache {
    maybe_const_fn! {
        pub(super) fn new() -> Cache {
            Cache {
                stamp: AtomicU64::new(0),
                route: AtomicU64::new(0),
                timeout_ns: AtomicU64::new(0),
                backoff_base_ns: AtomicU64::new(0),
                backoff_cap_ns: AtomicU64::new(0),
                breaker: AtomicU64::new(0),
            }
        }
    }

    /// Whether the cache holds the words of `generation` (and no writer is
    /// storing others): the call path's one check.
    #[inline]
    pub(super) fn holds(&self, generation: u64) -> bool {
        self.stamp.load(Ordering::Acquire) == stamp_of(generation)
    }

    /// The routing word: of the generation [`Cache::holds`] saw, or newer.
    #[inline]
    pub(super) fn route(&self) -> u64 {
        self.route.load(Ordering::Acquire)
    }

    /// Every word, `route` as given (the one a decision already loaded).
    pub(super) fn words(&self, route: u64) -> Words {
        Words {
            route,
            timeout_ns: self.timeout_ns.load(Ordering::Relaxed),
            backoff_base_ns: self.backoff_base_ns.load(Ordering::Relaxed),
            backoff_cap_ns: self.backoff_cap_ns.load(Ordering::Relaxed),
            breaker: self.breaker.load(Ordering::Relaxed),
        }
    }

    /// Stores `words`, resolved at `generation`, unless the cache holds (or
    /// is being given) that generation or a newer one already; whether it
    /// stored them.
    pub(super) fn publish(&self, generation: u64, words: &Words) -> bool {
        let mine = stamp_of(generation);
        let mut seen = self.stamp.load(Ordering::Acquire);
        loop {
            if seen & !WRITING >= mine {
                return false;
            }
            if seen & WRITING != 0 {
                // An older writer is between its few stores: let it finish.
                yield_now();
                seen = self.stamp.load(Ordering::Acquire);
                continue;
            }
            match self.stamp.compare_exchange_weak(
                seen,
                mine | WRITING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        self.timeout_ns.store(words.timeout_ns, Ordering::Relaxed);
        self.backoff_base_ns
            .store(words.backoff_base_ns, Ordering::Relaxed);
        self.backoff_cap_ns
            .store(words.backoff_cap_ns, Ordering::Relaxed);
        self.breaker.store(words.breaker, Ordering::Relaxed);
        self.route.store(words.route, Ordering::Release);
        // Only the claimer changes a stamp whose writing bit is set.
        self.stamp.store(mine, Ordering::Release);
        true
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::{Arc, Mutex};

    /// The words of a configuration whose every word is `n`: a reader can
    /// tell each word's generation.
    fn words(n: u64) -> Words {
        Words {
            route: n,
            timeout_ns: n,
            backoff_base_ns: n,
            backoff_cap_ns: n,
            breaker: n,
        }
    }

    /// The configuration as the site sees it: a generation and the route
    /// of that generation, changed and resolved under one lock (as
    /// `ConfigHandle` does); route `n` belongs to generation `n`.
    struct Config {
        generation: AtomicU64,
        state: Mutex<u64>,
    }

    impl Config {
        fn bump(&self) {
            let mut state = self.state.lock().unwrap();
            *state += 1;
            self.generation.store(*state, Ordering::Release);
        }

        /// `Site::refresh_if_stale`: resolve under the lock, store after it.
        fn refresh(&self, cache: &Cache) {
            if cache.holds(self.generation.load(Ordering::Acquire)) {
                return;
            }
            let resolved = *self.state.lock().unwrap();
            cache.publish(resolved, &words(resolved));
        }
    }

    /// Two changes back to back while two threads refresh: however they
    /// interleave, a cache that claims the current generation holds its
    /// route, and a reader never sees a route older than the stamp it read.
    #[test]
    fn loom_refresh_across_back_to_back_changes_never_keeps_an_older_route() {
        loom::model(|| {
            let config = Arc::new(Config {
                generation: AtomicU64::new(0),
                state: Mutex::new(0),
            });
            let cache = Arc::new(Cache::new());
            cache.publish(0, &words(0));

            let refreshers: Vec<_> = (0..2)
                .map(|_| {
                    let (config, cache) = (Arc::clone(&config), Arc::clone(&cache));
                    loom::thread::spawn(move || {
                        config.refresh(&cache);
                        // A reader: the route is of the stamp's generation or newer.
                        let stamp = cache.stamp.load(Ordering::Acquire);
                        if stamp & WRITING == 0 {
                            assert!(
                                cache.route() >= (stamp >> 1) - 1,
                                "older route than its stamp"
                            );
                        }
                    })
                })
                .collect();
            config.bump();
            config.bump();
            for refresher in refreshers {
                refresher.join().unwrap();
            }
            // Quiescent: whoever stored last, the cache never claims a
            // generation it does not hold the words of.
            let generation = config.generation.load(Ordering::Acquire);
            let stamp = cache.stamp.load(Ordering::Acquire);
            let held = (stamp >> 1) - 1;
            assert_eq!(stamp & WRITING, 0);
            assert_eq!(
                cache.words(cache.route()),
                words(held),
                "words of another generation"
            );
            // And the next call refreshes to the current one if it is behind.
            config.refresh(&cache);
            assert!(cache.holds(generation));
            assert_eq!(cache.route(), generation);
        });
    }

    /// Two writers of different generations at once: the newer one's words
    /// stay, whichever finishes first.
    #[test]
    fn loom_an_older_writer_never_overwrites_a_newer_one() {
        loom::model(|| {
            let cache = Arc::new(Cache::new());
            let writers: Vec<_> = [1_u64, 2]
                .into_iter()
                .map(|generation| {
                    let cache = Arc::clone(&cache);
                    loom::thread::spawn(move || {
                        cache.publish(generation, &words(generation));
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            assert!(cache.holds(2));
            assert_eq!(cache.words(cache.route()), words(2));
        });
    }
}
