//! Fleet mode against a real Redis (feature `redis`; needs `redis-server`
//! and `redis-cli` on the PATH, which `.ci/run` installs when missing).
//!
//! Each test starts its own `redis-server` on a free loopback port with no
//! persistence and runs replicas as separate processes: this test binary
//! re-run as `replica_process` (`fleet_support/replica.rs`), configured by
//! environment variables only (`ASYNC_UPLOAD_REDIS_URL`, no code),
//! uploading in a loop and printing every change of its local state with a
//! wall-clock timestamp.
//!
//! Run: `cargo test -p async-upload --features redis --test fleet_redis -- --nocapture`
//! (the figures are printed).

mod fleet_support;

use std::sync::mpsc::channel;
use std::time::Duration;

use async_upload::config::SiteOverrides;
use async_upload::fleet::{Defaults, Store};

use async_upload_test_support::rank::nearest_rank;
use fleet_support::replica::UP;
use fleet_support::replica_lines::now_us;
use fleet_support::{eventually, redis_server, state_of, wait_for, Line, RedisServer, Replica};

const SITE: &str = UP;

/// The replica: not a test of its own (returns at once unless started by
/// [`Replica::start`]).
#[test]
fn replica_process() {
    if std::env::var_os("FLEET_TEST_REPLICA").is_some() {
        fleet_support::replica::run();
    }
}

/// Waits until every replica in `of` printed a line `accept` accepts;
/// returns each replica's first such line.
fn wait_all(
    lines: &std::sync::mpsc::Receiver<Line>,
    of: usize,
    what: &str,
    accept: impl Fn(&Line) -> bool,
) -> Vec<Line> {
    let mut seen: Vec<Option<Line>> = vec![None; of];
    while seen.iter().any(Option::is_none) {
        let line = wait_for(lines, what, |l| accept(l) && seen[l.replica].is_none());
        let index = line.replica;
        seen[index] = Some(line);
    }
    seen.into_iter().flatten().collect()
}

fn state_line(line: &Line) -> bool {
    state_of(SITE)(line)
}

fn summary(name: &str, mut micros: Vec<u64>) -> String {
    micros.sort_unstable();
    format!(
        "{name}: {} arrivals, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        micros.len(),
        nearest_rank(&micros, 0.50) as f64 / 1000.0,
        nearest_rank(&micros, 0.99) as f64 / 1000.0,
        micros.last().copied().unwrap_or(0) as f64 / 1000.0,
    )
}

fn start_fleet(
    redis: &RedisServer,
    count: usize,
    env: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    Vec<Replica>,
    std::sync::mpsc::Receiver<Line>,
) {
    let dir = tempfile::tempdir().unwrap();
    let (sender, lines) = channel();
    let replicas = (0..count)
        .map(|i| Replica::start(i, &redis.url(), dir.path(), env, &sender))
        .collect();
    (dir, replicas, lines)
}

#[test]
fn rollout_and_rollback_changes_reach_three_replicas() {
    let redis = redis_server();
    let store = Store::open(&redis.url()).unwrap();
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 0.0,
        })
        .unwrap();
    let (_dir, replicas, lines) = start_fleet(&redis, 3, &[]);
    wait_all(&lines, 3, "the shared defaults", |l| {
        state_line(l) && l.get("enabled") == Some("true")
    });

    let mut rollout_us = Vec::new();
    for i in 0..100u32 {
        let percent = 1.0 + f64::from(i) * 0.5;
        let sent = now_us();
        store
            .update_site(
                SITE,
                &SiteOverrides {
                    rollout: Some(percent),
                    ..Default::default()
                },
            )
            .unwrap();
        let text = percent.to_string();
        for line in wait_all(&lines, 3, &format!("rollout={text}"), |l| {
            state_line(l) && l.get("rollout") == Some(text.as_str())
        }) {
            rollout_us.push(line.at_us.saturating_sub(sent));
        }
    }
    let mut rollback_us = Vec::new();
    for i in 0..50 {
        for latched in [true, false] {
            let sent = now_us();
            if latched {
                assert!(store.roll_back(SITE, &format!("drill {i}")).unwrap());
            } else {
                store.clear_rollback(SITE).unwrap();
            }
            let want = latched.to_string();
            for line in wait_all(&lines, 3, &format!("rolled_back={want}"), |l| {
                state_line(l) && l.get("rolled_back") == Some(want.as_str())
            }) {
                rollback_us.push(line.at_us.saturating_sub(sent));
            }
        }
    }
    assert_eq!(rollout_us.len(), 300);
    assert_eq!(rollback_us.len(), 300);
    println!(
        "{}",
        summary("rollout changes (100 × 3 replicas)", rollout_us)
    );
    println!(
        "{}",
        summary("rollback latch/clear (100 × 3 replicas)", rollback_us)
    );

    // Cost of an idle fleet: commands per second per replica.
    let before = redis.commands_processed().expect("redis-cli INFO stats");
    std::thread::sleep(Duration::from_secs(5));
    let after = redis.commands_processed().expect("redis-cli INFO stats");
    #[allow(clippy::cast_precision_loss)]
    let per_replica = (after - before - 1) as f64 / 5.0 / 3.0;
    println!("Redis commands per second per replica (idle, not leading): {per_replica:.1}");
    let size = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port().to_string(),
            "strlen",
            "async-upload:v1:replica:replica-0",
        ])
        .output()
        .unwrap();
    println!(
        "report size of one replica with one busy site: {} bytes",
        String::from_utf8_lossy(&size.stdout).trim()
    );
    drop(replicas);
}

#[test]
fn redis_killed_mid_load_and_restarted() {
    let mut redis = redis_server();
    let port = redis.port();
    let store = Store::open(&redis.url()).unwrap();
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 50.0,
        })
        .unwrap();
    let (_dir, replicas, lines) = start_fleet(&redis, 3, &[]);
    wait_all(&lines, 3, "the shared defaults", |l| {
        state_line(l) && l.get("default_rollout") == Some("50")
    });
    let before: Vec<u64> = wait_all(&lines, 3, "load", |l| l.words[0] == "load")
        .iter()
        .map(|l| l.get("calls").unwrap().parse().unwrap())
        .collect();

    redis.kill();
    wait_all(&lines, 3, "connected=false", |l| {
        // The last known state is kept while Redis is away.
        state_line(l) && l.get("connected") == Some("false") && l.get("enabled") == Some("true")
    });
    let during = wait_all(&lines, 3, "uploads going on without Redis", |l| {
        l.words[0] == "load"
            && l.get("calls").unwrap().parse::<u64>().unwrap() > before[l.replica] + 100
    });
    assert_eq!(during.len(), 3);

    let redis = RedisServer::start_on(port).expect("redis-server restarts on its port");
    // An empty Redis (no persistence): the operator sets the state again;
    // every replica resyncs after its reconnection.
    let store = Store::open(&redis.url()).unwrap();
    wait_all(&lines, 3, "connected=true", |l| {
        state_line(l) && l.get("connected") == Some("true")
    });
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 25.0,
        })
        .unwrap();
    wait_all(&lines, 3, "the new defaults after the restart", |l| {
        state_line(l) && l.get("default_rollout") == Some("25")
    });

    for replica in replicas {
        let log = replica.log.clone();
        let index: usize = replica
            .instance
            .trim_start_matches("replica-")
            .parse()
            .unwrap();
        assert!(
            replica.finish().success(),
            "replica {index} exited with an error (a panic?)"
        );
        let done = wait_for(&lines, "done", |l| {
            l.replica == index && l.words[0] == "done"
        });
        assert_eq!(done.get("errors"), Some("0"), "{done:?}");
        assert_eq!(done.get("dropped"), Some("0"), "{done:?}");
        assert_eq!(done.get("flushed"), Some("true"), "{done:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        let records = text
            .lines()
            .filter(|l| l.contains(r#""kind":"upload""#))
            .count();
        assert_eq!(
            records.to_string(),
            done.get("calls").unwrap(),
            "every call of replica {index} left one record"
        );
    }
}

#[test]
fn the_lease_fails_over_after_kill_9_of_the_leader() {
    let redis = redis_server();
    let store = Store::open(&redis.url()).unwrap();
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 10.0,
        })
        .unwrap();
    let (_dir, replicas, lines) = start_fleet(&redis, 3, &[("FLEET_TEST_LEAD", "1")]);
    let first = wait_for(&lines, "a leader", |l| l.words[0] == "leader=true");
    let leader = &replicas[first.replica];
    assert_eq!(
        store.leader(SITE).unwrap().as_deref(),
        Some(leader.instance.as_str())
    );

    let killed = now_us();
    leader.signal("-9");
    let next = wait_for(&lines, "a new leader", |l| {
        l.words[0] == "leader=true" && l.replica != first.replica
    });
    println!(
        "failover after kill -9 of the leader: {:.2} s",
        next.at_us.saturating_sub(killed) as f64 / 1e6
    );
    assert_eq!(
        store.leader(SITE).unwrap().as_deref(),
        Some(replicas[next.replica].instance.as_str())
    );
}

#[test]
fn a_replica_that_stops_publishing_drops_out_of_fleet_health() {
    let redis = redis_server();
    let store = Store::open(&redis.url()).unwrap();
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 100.0,
        })
        .unwrap();
    let (_dir, replicas, _lines) = start_fleet(&redis, 3, &[]);
    eventually("3 live replicas", || store.replicas().unwrap().len() == 3);

    replicas[1].signal("-STOP");
    eventually("replica-1 out of the live replicas", || {
        let live = store.replicas().unwrap();
        live.len() == 2 && live.iter().all(|r| r.instance != "replica-1")
    });
    let live = store.replicas().unwrap();
    let health = async_upload::fleet::merge_reports(&live, SITE);
    let counted: u64 = live
        .iter()
        .map(|r| {
            r.sites[SITE]
                .path(async_upload::metrics::ExecutionType::Async)
                .count
        })
        .sum();
    assert_eq!(
        health
            .path(async_upload::metrics::ExecutionType::Async)
            .count,
        counted
    );

    replicas[1].signal("-CONT");
    eventually("replica-1 back", || store.replicas().unwrap().len() == 3);
}

#[test]
fn one_breach_seen_by_three_replicas_is_one_rollback_event() {
    let redis = redis_server();
    let store = Store::open(&redis.url()).unwrap();
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 100.0,
        })
        .unwrap();
    // Every enrolled call panics in the async path: a critical error, seen
    // by every replica's controller at once.
    let (_dir, replicas, lines) = start_fleet(
        &redis,
        3,
        &[("FLEET_TEST_PANIC", "1"), ("FLEET_TEST_DRIVE", "86400")],
    );
    wait_all(&lines, 3, "rolled_back=true", |l| {
        state_line(l) && l.get("rolled_back") == Some("true")
    });
    let state = store.state().unwrap();
    let reason = state.sites[SITE].rollback.clone().unwrap();
    // The triggers the first decider saw (critical errors, and the success
    // rate once 20 calls are in): any of them, latched once.
    assert!(reason.starts_with("stage 1: "), "{reason}");
    println!("latched once: {reason}");

    let mut events = 0;
    for replica in replicas {
        let log = replica.log.clone();
        assert!(replica.finish().success());
        let text = std::fs::read_to_string(&log).unwrap();
        events += text
            .lines()
            .filter(|l| l.contains(r#""kind":"rollback""#))
            .count();
    }
    assert_eq!(events, 1, "one rollback event across the fleet's logs");
}

/// The `operator` lines in a replica's log, once it has exited.
fn operator_lines(replica: Replica) -> Vec<async_upload::log::OperatorEvent> {
    let log = replica.log.clone();
    assert!(replica.finish().success(), "the replica exits cleanly");
    let log = async_upload::log::read_file(&log).unwrap();
    log.events
        .into_iter()
        .filter_map(|event| match event {
            async_upload::log::Event::Operator(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// An operator's change through the shared state (`fleet roll-back`,
/// `fleet set`) is an `operator` line in every replica's log, naming who
/// made it there, so the merged report shows who changed what.
#[test]
fn an_operators_fleet_changes_are_operator_lines_on_every_replica() {
    let redis = redis_server();
    let store = Store::open(&redis.url())
        .unwrap()
        .with_actor("operator:alice");
    store
        .set_defaults(Defaults {
            enabled: true,
            rollout: 100.0,
        })
        .unwrap();
    let (_dir, replicas, lines) = start_fleet(&redis, 2, &[]);
    wait_all(&lines, 2, "the shared defaults", |l| {
        state_line(l) && l.get("enabled") == Some("true")
    });
    store
        .update_site(
            SITE,
            &SiteOverrides {
                rollout: Some(10.0),
                ..Default::default()
            },
        )
        .unwrap();
    wait_all(&lines, 2, "rollout=10", |l| {
        state_line(l) && l.get("rollout") == Some("10")
    });
    assert!(store.roll_back(SITE, "drill").unwrap());
    wait_all(&lines, 2, "rolled_back=true", |l| {
        state_line(l) && l.get("rolled_back") == Some("true")
    });
    store.clear_rollback(SITE).unwrap();
    wait_all(&lines, 2, "rolled_back=false", |l| {
        state_line(l) && l.get("rolled_back") == Some("false")
    });

    let site = Some(SITE.to_owned());
    for replica in replicas {
        let lines = operator_lines(replica);
        let of = |setting: &str| -> Vec<_> {
            lines
                .iter()
                .filter(|e| e.site == site && e.setting == setting)
                .map(|e| (e.old.clone(), e.new.clone(), e.by.clone()))
                .collect()
        };
        let rollout = of("rollout");
        assert_eq!(rollout.len(), 1, "one rollout line: {lines:?}");
        assert_eq!(rollout[0].1.as_deref(), Some("10"));
        let rollback = of("rollback");
        assert_eq!(
            rollback
                .iter()
                .map(|(old, new, _)| (old.as_deref(), new.as_deref()))
                .collect::<Vec<_>>(),
            [(None, Some("drill")), (Some("drill"), None)],
            "the latch and the clear: {lines:?}"
        );
        for (_, _, by) in rollout.iter().chain(&rollback) {
            assert_eq!(by, "operator:alice", "named as the shared state names them");
        }
    }
}
