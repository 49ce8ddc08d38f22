//! Real threads refresh one site's cached settings while an operator makes
//! two changes back to back (a rollout change, then a rollback): once the
//! changes are done, the site never claims to be current while holding the
//! older route, so the rollback always takes effect (issue 17: two refreshes
//! racing could leave the site marked current with the route from before).
//! The loom models in `runtime/src/site/cache.rs` check every interleaving
//! of the protocol (and fail on the old one); this checks the real site and
//! configuration handle under real threads. It is not a reproducer of the
//! old race: that needs a thread preempted between two adjacent stores,
//! which 6 × 2,000 rounds on two cores never hit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::{Path, Site, SyncReason};

static SITE: Site = Site::new("site_refresh_race");

/// More threads than cores: a reader preempted between resolving and
/// storing is the window the race needs.
const READERS: usize = 6;
const ROUNDS: usize = 500;
/// Changes in a row in each round, the last one the rollback.
const CHANGES: u32 = 8;
/// An upper bound for slow machines; the rounds usually end well before.
const AT_MOST: Duration = Duration::from_secs(20);

#[test]
fn back_to_back_changes_under_concurrent_refreshes_always_take_effect() {
    handle().update(|c| c.enabled = true).unwrap();
    let rollout = |percent| SiteOverrides {
        rollout: Some(percent),
        ..SiteOverrides::default()
    };
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < ROUNDS && started.elapsed() < AT_MOST {
        rounds += 1;
        handle().clear_rollback(SITE.name());
        handle().set_site(SITE.name(), rollout(100.0)).unwrap();
        assert!(SITE.call(&"k").runs_async(), "round {rounds}: not enrolled");

        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(Barrier::new(READERS + 1));
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (stop, ready) = (Arc::clone(&stop), Arc::clone(&ready));
                std::thread::spawn(move || {
                    ready.wait();
                    while !stop.load(Ordering::Relaxed) {
                        let _ = std::hint::black_box(SITE.call(&"k"));
                    }
                })
            })
            .collect();
        ready.wait();
        // Changes back to back, each a new generation the readers race to
        // resolve and store; the last one a rollback.
        for change in 1..CHANGES {
            handle()
                .set_site(SITE.name(), rollout(f64::from(change) * 10.0))
                .unwrap();
        }
        assert!(handle().roll_back(SITE.name(), "back to back"));
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.join().unwrap();
        }

        assert_eq!(
            SITE.call(&"k").path(),
            Path::Sync(SyncReason::RolledBack),
            "round {rounds}: the site kept the route from before the rollback"
        );
        assert!(SITE.settings().rolled_back, "round {rounds}");
    }
    assert!(rounds >= 100, "only {rounds} rounds in {AT_MOST:?}");
}
