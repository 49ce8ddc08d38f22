//! "A rollback, once issued, takes effect on every replica and stays in
//! effect" (issue 17), one test per numbered case, against real
//! `redis-server`s the tests start (features `cli,redis`).
//!
//! Replicas are separate processes (this binary re-run as
//! `replica_process`, see `fleet_support/replica.rs`) configured by
//! environment variables; operators act through the `async-upload fleet`
//! command. Each test asserts what the replicas do (the paths their calls
//! take, the state they apply, the events they log by level and field)
//! and what Redis holds afterwards.
//!
//! Run: `cargo test -p async-upload --features cli,redis --test fleet_promises -- --test-threads=2 --nocapture`

mod fleet_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use async_upload::fleet::{ContactCause, Store, OPERATOR_ACL, REPLICA_ACL};
use async_upload::log::{read_file, Event, StageEvent};

use fleet_support::replica::{OTHER, UP};
use fleet_support::replica_lines::now_us;
use fleet_support::{
    cli, eventually, redis_server, start_replicas, state_of, status_json, Line, Lines, RedisServer,
};

const ALL: [usize; 3] = [0, 1, 2];

/// The replica: not a test of its own (returns at once unless started by
/// the tests).
#[test]
fn replica_process() {
    if std::env::var_os("FLEET_TEST_REPLICA").is_some() {
        fleet_support::replica::run();
    }
}

fn no_extra(_: usize) -> Vec<(String, String)> {
    Vec::new()
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_state(site: &'static str, name: &'static str, value: &'static str) -> impl Fn(&Line) -> bool {
    move |l: &Line| state_of(site)(l) && l.get(name) == Some(value)
}

/// `(sync, async, sync_fallback)` calls of `site` in `replica`'s last `paths` line.
fn paths(lines: &mut Lines, replica: usize, site: &str) -> (u64, u64, u64) {
    let line = lines
        .last(replica, |l| l.is("paths") && l.get("site") == Some(site))
        .unwrap_or_else(|| panic!("replica {replica} printed no paths of {site}"));
    let n = |name| line.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    (n("sync"), n("async"), n("fallback"))
}

/// Each replica's calls of `site` per path over the next `span`.
/// (Each starts from a `paths` line printed after the state in force now.)
fn paths_over(
    lines: &mut Lines,
    replicas: &[usize],
    site: &str,
    span: Duration,
) -> Vec<(u64, u64, u64)> {
    let now = now_us();
    for &replica in replicas {
        lines.wait_each(&[replica], "paths", |l| {
            l.is("paths") && l.get("site") == Some(site) && l.at_us > now + 200_000
        });
    }
    let before: Vec<_> = replicas.iter().map(|&r| paths(lines, r, site)).collect();
    let from = now_us();
    thread::sleep(span);
    // A replica prints `paths` every ~0.1 s, later on a loaded machine: wait
    // for a line from after the span, so each delta covers all of it.
    let span_us = u64::try_from(span.as_micros()).unwrap_or(u64::MAX);
    for &replica in replicas {
        lines.wait_each(&[replica], "paths after the span", |l| {
            l.is("paths") && l.get("site") == Some(site) && l.at_us > from + span_us
        });
    }
    replicas
        .iter()
        .zip(before)
        .map(|(&r, (s0, a0, f0))| {
            let (s1, a1, f1) = paths(lines, r, site);
            (s1 - s0, a1 - a0, f1 - f0)
        })
        .collect()
}

/// The fleet's log events of `replica` at `level` printed after `since_us`.
fn events(lines: &mut Lines, replica: usize, level: &str, since_us: u64) -> Vec<Line> {
    lines.all(|l| {
        l.replica == replica && l.is("log") && l.get("level") == Some(level) && l.at_us >= since_us
    })
}

/// A `redis-server` whose defaults an operator set: async enabled at `rollout` percent.
fn with_defaults(rollout: &str) -> (RedisServer, String) {
    let redis = redis_server();
    let url = redis.url();
    ok(&cli(
        &url,
        &["set", "--enabled", "true", "--rollout", rollout],
        &[],
    ));
    (redis, url)
}

/// One site's entry of `fleet status --json`.
fn site_status<'a>(status: &'a serde_json::Value, site: &str) -> &'a serde_json::Value {
    status["sites"]
        .as_array()
        .and_then(|sites| sites.iter().find(|s| s["site"] == site))
        .unwrap_or_else(|| panic!("no site {site} in {status}"))
}

fn store(url: &str) -> Store {
    Store::open(url).expect("a Redis URL")
}

// ---------------------------------------------------------------- case 1

/// Redis restarts empty: the latched rollback is kept by every replica and
/// written back within 5 s; nobody seeds the environment over the state
/// they had seen; one ERROR per replica; the operator hands the fleet the
/// new store by setting the defaults.
#[test]
fn case_1_a_rollback_survives_redis_restarting_empty() {
    let mut redis = redis_server();
    let url = redis.url();
    let env = [
        ("ASYNC_UPLOAD_ENABLED", "true"),
        ("ASYNC_UPLOAD_ROLLOUT", "100"),
    ];
    let (_dir, _replicas, mut lines) = start_replicas(&url, 3, &env, no_extra);
    // A new store: the environment seeds it (after a report TTL).
    lines.wait_each(&ALL, "the seeded defaults", |l| {
        is_state(UP, "enabled", "true")(l) && l.get("default_rollout") == Some("100")
    });
    ok(&cli(
        &url,
        &["roll-back", "--site", UP, "--reason", "drill"],
        &[],
    ));
    lines.wait_each(&ALL, "the rollback", is_state(UP, "rolled_back", "true"));

    let restart_us = now_us();
    redis.restart_empty().expect("redis-server restarts");
    let restarted = Instant::now();
    let store = store(&url);
    eventually("Redis holds the latch again", || {
        store
            .state()
            .ok()
            .and_then(|s| s.sites.get(UP).map(|s| s.rollback.is_some()))
            == Some(true)
    });
    let written_back = restarted.elapsed();
    lines.wait_each(&ALL, "reconnected", |l| {
        is_state(UP, "connected", "true")(l) && l.at_us > restart_us
    });
    let applied = restarted.elapsed();
    println!(
        "case 1: latch back in Redis {:.2} s after the restart; every replica reconnected at {:.2} s",
        written_back.as_secs_f64(),
        applied.as_secs_f64()
    );
    assert!(written_back < Duration::from_secs(5), "{written_back:?}");

    // No replica ever lifted it; its calls stay on the sync path, the
    // other site keeps the last known state (async).
    for replica in ALL {
        assert!(lifts(&mut lines, replica, UP, restart_us).is_empty());
    }
    for (replica, (sync, asynchronous, _)) in
        paths_over(&mut lines, &ALL, UP, Duration::from_secs(3))
            .into_iter()
            .enumerate()
    {
        assert_eq!(
            asynchronous, 0,
            "replica {replica}: async calls while rolled back"
        );
        assert!(sync > 0, "replica {replica}: no calls");
    }
    for (_, asynchronous, _) in paths_over(&mut lines, &ALL, OTHER, Duration::from_secs(1)) {
        assert!(asynchronous > 0, "the other site kept its last known state");
    }

    // What Redis holds: the latch, no defaults (nobody seeded over it).
    let state = store.state().unwrap();
    assert_eq!(
        state.defaults, None,
        "the environment was seeded over a state replicas had seen"
    );
    assert_eq!(state.sites[UP].rollback.as_deref(), Some("drill"));
    assert!(state.epoch.is_some());
    for replica in ALL {
        let errors = events(&mut lines, replica, "ERROR", restart_us);
        assert_eq!(errors.len(), 1, "replica {replica}: {errors:?}");
    }
    let status = status_json(&url, &[]);
    assert!(status["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["remembered"] == true));

    // The operator sets the defaults: the replicas follow this store now.
    ok(&cli(
        &url,
        &["set", "--enabled", "true", "--rollout", "100"],
        &[],
    ));
    lines.wait_each(&ALL, "following the new store", |l| {
        is_state(UP, "remembered", "false")(l) && l.at_us > restart_us
    });
    for replica in ALL {
        assert!(lifts(&mut lines, replica, UP, restart_us).is_empty());
    }
}

// ---------------------------------------------------------------- case 2

/// One bad value makes only its site run the sync path; every operator
/// action keeps working and exits 0; `status` shows the bad field.
#[test]
fn case_2_one_bad_value_is_local_to_its_site() {
    let (redis, url) = with_defaults("100");
    let (_dir, _replicas, mut lines) = start_replicas(
        &url,
        3,
        &[("ASYNC_UPLOAD_REDIS_STALE_AFTER", "3")],
        no_extra,
    );
    lines.wait_each(&ALL, "the defaults", is_state(UP, "enabled", "true"));
    lines.wait_each(&ALL, "paths", |l| l.is("paths"));
    let bad_us = now_us();
    redis.cli(&["HSET", "async-upload:v1:site:other", "max_retries", "99"]);
    redis.cli(&["SADD", "async-upload:v1:sites", OTHER, "third"]);
    redis.cli(&["SET", "async-upload:v1:site:third", "not a hash"]);
    redis.cli(&["INCR", "async-upload:v1:version"]);
    lines.wait_each(
        &ALL,
        "other running sync",
        is_state(OTHER, "site_enabled", "false"),
    );
    for (other, up) in paths_over(&mut lines, &ALL, OTHER, Duration::from_secs(2))
        .into_iter()
        .zip(paths_over(&mut lines, &ALL, UP, Duration::from_millis(500)))
    {
        assert_eq!(other.1, 0, "the site with the bad value runs sync");
        assert!(up.1 > 0, "every other site keeps working");
    }

    // Every operator action works and exits 0.
    ok(&cli(
        &url,
        &["roll-back", "--site", UP, "--reason", "drill"],
        &[],
    ));
    lines.wait_each(&ALL, "the rollback", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > bad_us
    });
    let status = status_json(&url, &[]);
    let other = site_status(&status, OTHER);
    assert_eq!(other["invalid"], true);
    assert_eq!(
        other["problems"][0]["key"],
        "async-upload:v1:site:other.max_retries"
    );
    assert_eq!(other["problems"][0]["value"], "99");
    assert!(other["problems"][0]["accepted"]
        .as_str()
        .unwrap()
        .contains("0 to 10"));
    let third = site_status(&status, "third");
    assert_eq!(
        third["invalid"], true,
        "a key of the wrong type is its site's problem"
    );
    ok(&cli(&url, &["set", "--enabled", "false"], &[]));
    lines.wait_each(&ALL, "the kill switch", |l| {
        is_state(UP, "enabled", "false")(l) && l.at_us > bad_us
    });
    ok(&cli(&url, &["clear-rollback", "--site", UP], &[]));
    lines.wait_each(&ALL, "the clear", |l| {
        is_state(UP, "rolled_back", "false")(l) && l.at_us > bad_us
    });
    ok(&cli(&url, &["set", "--enabled", "true"], &[]));
    lines.wait_each(&ALL, "enabled again", |l| {
        is_state(UP, "enabled", "true")(l) && l.at_us > bad_us
    });
    // Longer than STALE_AFTER with bad data in two sites: still in contact.
    thread::sleep(Duration::from_secs(4));
    for (replica, (_, asynchronous, _)) in paths_over(&mut lines, &ALL, UP, Duration::from_secs(1))
        .into_iter()
        .enumerate()
    {
        assert!(
            asynchronous > 0,
            "replica {replica} fell to sync with Redis in reach"
        );
    }

    for replica in ALL {
        assert!(
            lines
                .all(|l| is_state(UP, "connected", "false")(l)
                    && l.replica == replica
                    && l.at_us > bad_us)
                .is_empty(),
            "replica {replica} lost contact over bad data"
        );
        let warns = events(&mut lines, replica, "WARN", bad_us);
        let on = |key: &str| warns.iter().filter(|l| l.get("key") == Some(key)).count();
        assert_eq!(on("async-upload:v1:site:other.max_retries"), 1, "{warns:?}");
        assert_eq!(on("async-upload:v1:site:third"), 1, "{warns:?}");
        assert!(
            warns.iter().all(|l| l.get("cause").is_none()
                && !l.get("fields").unwrap_or("").contains("stale_after_s")),
            "no lost contact, no staleness: {warns:?}"
        );
    }
}

/// `STALE_AFTER` counts contact with valid state: a replica whose reads
/// fail falls to the sync path though its reports still get through.
#[test]
fn case_2_stale_after_counts_contact_with_valid_state() {
    let redis = redis_server();
    let url = redis.url();
    acl_user(&redis, "async-upload-replica", "replica-pw", REPLICA_ACL);
    ok(&cli(
        &url,
        &["set", "--enabled", "true", "--rollout", "100"],
        &[],
    ));
    let replica_url = format!(
        "redis://async-upload-replica:replica-pw@127.0.0.1:{}",
        redis.port()
    );
    let (_dir, _replicas, mut lines) = start_replicas(
        &replica_url,
        1,
        &[("ASYNC_UPLOAD_REDIS_STALE_AFTER", "2")],
        no_extra,
    );
    lines.wait_each(&[0], "the defaults", is_state(UP, "enabled", "true"));
    // Reads (the script) refused; reports (SET, ZADD) still allowed.
    redis.cli(&["ACL", "SETUSER", "async-upload-replica", "-evalsha"]);
    let cut = now_us();
    // A change it cannot read: its polls no longer confirm what it applied.
    ok(&cli(&url, &["set", "--rollout", "50"], &[]));
    lines.wait_each(&[0], "the sync path after STALE_AFTER", |l| {
        is_state(UP, "enabled", "false")(l) && l.at_us > cut
    });
    assert_eq!(
        store(&url).replicas().unwrap().len(),
        1,
        "its reports still reach Redis"
    );
    redis.cli(&["ACL", "SETUSER", "async-upload-replica", "+evalsha"]);
    lines.wait_each(&[0], "back on the shared state", |l| {
        is_state(UP, "enabled", "true")(l) && l.at_us > cut
    });
}

// ---------------------------------------------------------------- case 3

fn acl_user(redis: &RedisServer, name: &str, password: &str, rules: &str) {
    let mut args = vec![
        "ACL",
        "SETUSER",
        name,
        "on",
        "resetkeys",
        "resetchannels",
        "-@all",
    ];
    let secret = format!(">{password}");
    args.push(&secret);
    args.extend(rules.split_whitespace());
    assert_eq!(redis.cli(&args), "OK", "ACL SETUSER {name}");
}

/// A rule list without the rules that start with `prefix`.
fn without(rules: &str, prefix: &str) -> String {
    rules
        .split_whitespace()
        .filter(|r| !r.starts_with(prefix))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A replica that never connects says so once, with the cause (and never
/// the password), and runs the sync path; one refused SUBSCRIBE is said,
/// the replica follows by polling and `status` shows it.
#[test]
fn case_3_a_replica_that_never_connects_says_why() {
    let certs = Certs::make();
    let secured = RedisServer::start_with(&["--requirepass", "secret"]).unwrap();
    let auth = Some("secret");
    let rules_no_script = without(REPLICA_ACL, "+evalsha");
    for (user, rules) in [
        ("noscript", rules_no_script.as_str()),
        ("nochannel", &without(REPLICA_ACL, "&")),
    ] {
        let mut args = vec![
            "ACL",
            "SETUSER",
            user,
            "on",
            ">pw",
            "resetkeys",
            "resetchannels",
            "-@all",
        ];
        args.extend(rules.split_whitespace());
        assert_eq!(secured.cli_as(auth, &args), "OK");
    }
    let tls = RedisServer::start_tls(&certs.server, &certs.server_key, &certs.ca).unwrap();
    let sentinel_conf = certs.dir.path().join("sentinel.conf");
    let sentinel = RedisServer::start_sentinel(sentinel_conf.to_str().unwrap()).unwrap();
    let nodes = certs.dir.path().join("nodes.conf");
    let cluster = RedisServer::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        nodes.to_str().unwrap(),
    ])
    .unwrap();
    let port = secured.port();
    let cases: Vec<(String, ContactCause)> = vec![
        (
            format!("redis://:wrong@127.0.0.1:{port}"),
            ContactCause::Authentication,
        ),
        (
            format!("redis://127.0.0.1:{port}"),
            ContactCause::Authentication,
        ),
        (
            format!("redis://ghost:wrong@127.0.0.1:{port}"),
            ContactCause::Authentication,
        ),
        (
            format!("redis://noscript:pw@127.0.0.1:{port}"),
            ContactCause::Permission,
        ),
        (
            format!("redis://127.0.0.1:{}", tls.port()),
            ContactCause::Tls,
        ),
        (sentinel.url(), ContactCause::Unsupported),
        (cluster.url(), ContactCause::Unsupported),
    ];
    let nochannel = format!("redis://nochannel:pw@127.0.0.1:{port}");
    let (_dir, _replicas, mut lines) = start_replicas("unused", cases.len() + 1, &[], |i| {
        let url = cases
            .get(i)
            .map_or(nochannel.clone(), |(url, _)| url.clone());
        vec![("ASYNC_UPLOAD_REDIS_URL".into(), url)]
    });
    let all: Vec<usize> = (0..cases.len()).collect();
    let errors = lines.wait_each(&all, "an ERROR", |l| {
        l.is("log") && l.get("level") == Some("ERROR")
    });
    for (error, (url, cause)) in errors.iter().zip(&cases) {
        assert_eq!(error.get("cause"), Some(cause.as_str()), "{url}: {error:?}");
        assert!(
            !error.get("url").unwrap_or("").contains("wrong"),
            "the password is never logged: {error:?}"
        );
    }
    // It lasts: no second ERROR, no WARN within the minute; the sync path.
    thread::sleep(Duration::from_secs(3));
    for (replica, (url, _)) in cases.iter().enumerate() {
        assert_eq!(events(&mut lines, replica, "ERROR", 0).len(), 1, "{url}");
        assert!(events(&mut lines, replica, "WARN", 0).is_empty(), "{url}");
        let state = lines.last(replica, state_of(UP)).unwrap();
        assert_eq!(state.get("enabled"), Some("false"), "{url}");
        assert_eq!(state.get("connected"), Some("false"), "{url}");
        let (_, asynchronous, _) = paths(&mut lines, replica, UP);
        assert_eq!(asynchronous, 0, "{url}");
    }

    // NOPERM on SUBSCRIBE: said once; the replica follows by polling.
    let last = cases.len();
    let operator = format!("redis://:secret@127.0.0.1:{port}");
    ok(&cli(
        &operator,
        &["set", "--enabled", "true", "--rollout", "100"],
        &[],
    ));
    lines.wait_each(
        &[last],
        "the defaults by polling",
        is_state(UP, "enabled", "true"),
    );
    let errors = events(&mut lines, last, "ERROR", 0);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].get("cause"), Some("permission"));
    let status = status_json(&operator, &[]);
    let report = status["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == format!("replica-{last}"))
        .unwrap();
    assert_eq!(
        report["pushes"], false,
        "status shows it receives no pushes"
    );
}

// ---------------------------------------------------------------- case 4

/// A rollback latched while cut off, with `Fleet::builder(url).start()`
/// (no seed): written to Redis on reconnection, whether Redis came back
/// empty or was only frozen, and never lifted.
#[test]
fn case_4_a_latch_made_while_cut_off_is_never_lost() {
    let (mut redis, url) = with_defaults("100");
    let env = [
        ("FLEET_TEST_BUILDER", url.as_str()),
        ("ASYNC_UPLOAD_REDIS_URL", ""),
    ];
    let (_dir, mut replicas, mut lines) = start_replicas(&url, 3, &env, no_extra);
    lines.wait_each(&ALL, "the defaults", is_state(UP, "enabled", "true"));
    let store = store(&url);
    let latched_in_redis = || {
        store
            .state()
            .ok()
            .and_then(|s| s.sites.get(UP).and_then(|s| s.rollback.clone()))
    };

    // Redis gone; replica 0 latches; Redis comes back empty.
    let cut = now_us();
    redis.kill();
    lines.wait_each(&[0], "cut off", |l| {
        is_state(UP, "connected", "false")(l) && l.at_us > cut
    });
    replicas[0].send("roll-back cut off");
    lines.wait_each(&[0], "latched locally", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > cut
    });
    redis.restart_empty().unwrap();
    let back = Instant::now();
    eventually("the latch in Redis", || {
        latched_in_redis().as_deref() == Some("cut off")
    });
    lines.wait_each(&ALL, "every replica rolled back", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > cut
    });
    println!(
        "case 4: latch in Redis and on every replica {:.2} s after Redis came back",
        back.elapsed().as_secs_f64()
    );
    assert!(back.elapsed() < Duration::from_secs(5));
    assert_eq!(
        store.state().unwrap().sites[UP].by.as_deref(),
        Some("replica-0")
    );

    // Frozen instead: the latch made meanwhile reaches Redis on thaw.
    ok(&cli(
        &url,
        &["set", "--enabled", "true", "--rollout", "100"],
        &[],
    ));
    let cleared = now_us();
    ok(&cli(&url, &["clear-rollback", "--site", UP], &[]));
    lines.wait_each(&ALL, "cleared", |l| {
        is_state(UP, "rolled_back", "false")(l) && l.at_us > cleared
    });
    redis.signal("-STOP");
    replicas[1].send("roll-back while frozen");
    lines.wait_each(&[1], "latched locally", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > cleared
    });
    thread::sleep(Duration::from_secs(2));
    redis.signal("-CONT");
    eventually("the latch in Redis after the thaw", || {
        latched_in_redis().as_deref() == Some("while frozen")
    });
    lines.wait_each(&ALL, "every replica rolled back", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > cleared
    });

    // Nobody ever lifted a latch but the operator's clear.
    for replica in ALL {
        let lifts = lifts(&mut lines, replica, UP, cut);
        assert_eq!(lifts.len(), 1, "replica {replica}: lifted at {lifts:?}");
        assert!(
            lifts[0] > cleared,
            "replica {replica} lifted a latch before the clear"
        );
    }
}

/// When `replica` lifted a latch of `site` (rolled back → not) after `since_us`.
fn lifts(lines: &mut Lines, replica: usize, site: &'static str, since_us: u64) -> Vec<u64> {
    let states = lines.all(|l| state_of(site)(l) && l.replica == replica && l.at_us > since_us);
    states
        .windows(2)
        .filter(|w| {
            w[0].get("rolled_back") == Some("true") && w[1].get("rolled_back") == Some("false")
        })
        .map(|w| w[1].at_us)
        .collect()
}

// ---------------------------------------------------------------- case 5

/// What the test saw of the shared stage clock, in order: `(stage, entered_ms, by)`.
fn watch_stages(
    url: &str,
    seen: &mut Vec<(u32, u64, String)>,
    until: impl Fn(&[(u32, u64, String)]) -> bool,
) {
    let store = store(url);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !until(seen) {
        assert!(Instant::now() < deadline, "stages: {seen:?}");
        if let Ok(state) = store.state() {
            if let Some(site) = state.sites.get(UP) {
                if let (Some(stage), Some(entered)) = (site.stage, site.stage_entered_ms) {
                    let now = (stage, entered, site.by.clone().unwrap_or_default());
                    if seen
                        .last()
                        .is_none_or(|last| (last.0, last.1) != (now.0, now.1))
                    {
                        seen.push(now);
                    }
                }
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn reached(stage: u32) -> impl Fn(&[(u32, u64, String)]) -> bool {
    move |seen: &[(u32, u64, String)]| seen.last().is_some_and(|s| s.0 >= stage)
}

/// Stages in order, each entered once with one clock.
fn assert_one_clock_per_stage(seen: &[(u32, u64, String)], upto: u32) {
    let stages: Vec<u32> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        stages,
        (1..=upto).collect::<Vec<_>>(),
        "never restarted, repeated or skipped: {seen:?}"
    );
}

/// A new leader resumes the stage and its clock: a leader's `kill -9`
/// and a frozen Redis never restart, repeat or skip a stage, and no
/// replica's log shows a stage entered out of order.
#[test]
fn case_5_one_stage_clock_for_the_fleet() {
    let (redis, url) = with_defaults("0");
    let (_dir, replicas, _lines) = start_replicas(
        &url,
        3,
        // Half the calls sync: the latency criterion has its baseline.
        &[("FLEET_TEST_DRIVE", "6"), ("FLEET_TEST_ROLLOUT", "50")],
        no_extra,
    );
    let store = store(&url);
    let mut seen = Vec::new();
    watch_stages(&url, &mut seen, reached(2));
    thread::sleep(Duration::from_secs(1));
    let leader = store.leader(UP).unwrap().expect("a leader");
    let killed: usize = leader.trim_start_matches("replica-").parse().unwrap();
    replicas[killed].signal("-9");
    watch_stages(&url, &mut seen, reached(3));
    let entered = |n: u32| seen.iter().find(|s| s.0 == n).unwrap().1;
    let lasted = entered(3) - entered(2);
    println!(
        "case 5: stage 2 (6 s) lasted {:.2} s with its leader killed 1 s in",
        lasted as f64 / 1000.0
    );
    // A clock started over by the new leader: at least 1 s + the lease's 3 s + 6 s.
    assert!(lasted < 9000, "stage 2 restarted: {seen:?}");

    // Redis frozen for 3.5 s during stage 3: the lease moves, the clock stays.
    redis.signal("-STOP");
    thread::sleep(Duration::from_millis(3500));
    redis.signal("-CONT");
    watch_stages(&url, &mut seen, reached(4));
    assert_one_clock_per_stage(&seen, 4);

    for (index, replica) in replicas.into_iter().enumerate() {
        if index == killed {
            continue;
        }
        let entered = entered_stages(replica);
        assert!(
            entered.windows(2).all(|w| w[0] <= w[1]),
            "replica-{index} logged stages entered out of order: {entered:?}"
        );
    }
}

// ---------------------------------------------------------------- case 6

/// A replica paused past its report TTL is counted once in the leader's
/// fleet health: the merged count never exceeds what the replicas counted.
#[test]
fn case_6_a_replica_back_from_a_pause_counts_once() {
    let (_redis, url) = with_defaults("100");
    let (_dir, replicas, mut lines) = start_replicas(&url, 3, &[], |i| {
        if i == 0 {
            vec![("FLEET_TEST_LEAD".into(), "1".into())]
        } else {
            Vec::new()
        }
    });
    lines.wait("the leader's fleet health", |l: &Line| {
        l.replica == 0 && l.is("health")
    });
    thread::sleep(Duration::from_secs(1));
    replicas[2].signal("-STOP");
    thread::sleep(Duration::from_millis(4500));
    replicas[2].signal("-CONT");
    let back = now_us();
    thread::sleep(Duration::from_secs(4));
    let health = lines.all(|l| l.replica == 0 && l.is("health") && l.at_us > back + 1_000_000);
    assert!(!health.is_empty());
    let enrolled = |l: &Line| {
        let n = |name| l.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        n("async") + n("fallback")
    };
    let own = lines.all(|l| l.is("paths") && l.get("site") == Some(UP));
    for sample in &health {
        let merged: u64 = sample.get("enrolled").unwrap().parse().unwrap();
        // What every replica had counted by then, at most (its next line).
        let bound: u64 = ALL
            .iter()
            .map(|&r| {
                own.iter()
                    .find(|l| l.replica == r && l.at_us >= sample.at_us)
                    .map_or(u64::MAX / 4, enrolled)
            })
            .sum();
        assert!(
            merged <= bound,
            "counted twice: fleet health {merged} > {bound} counted by the replicas"
        );
    }
}

// ---------------------------------------------------------------- case 7

/// A clear within a second of a breach is never re-latched on health
/// older than the clear, and the leader writes no second clear.
#[test]
fn case_7_a_clear_is_never_re_latched_on_stale_health() {
    let (_redis, url) = with_defaults("100");
    let (_dir, mut replicas, mut lines) = start_replicas(
        &url,
        3,
        &[
            ("FLEET_TEST_DRIVE", "600"),
            ("FLEET_TEST_ROLLOUT", "100"),
            // An open breaker's calls count as failures after the clear too.
            ("ASYNC_UPLOAD_BREAKER", "false"),
        ],
        no_extra,
    );
    let store = store(&url);
    eventually("a leader", || store.leader(UP).ok().flatten().is_some());
    thread::sleep(Duration::from_secs(2));
    for attempt in 0..3 {
        for replica in &mut replicas {
            replica.send("fail on");
        }
        eventually("the breach latched", || {
            store
                .state()
                .ok()
                .is_some_and(|s| s.sites.get(UP).is_some_and(|s| s.rollback.is_some()))
        });
        let healed = now_us();
        for replica in &mut replicas {
            replica.send("fail off");
        }
        // Cleared before a replica read its `fail off`, its new calls would
        // fail after the clear and rightly latch again (a loaded machine
        // made that happen).
        lines.wait_each(&ALL, "fail off applied", |l| {
            l.is("fail") && l.words.get(1).map(String::as_str) == Some("off") && l.at_us > healed
        });
        let out = ok(&cli(&url, &["clear-rollback", "--site", UP], &[]));
        let cleared: u64 = out
            .rsplit("(version ")
            .next()
            .and_then(|v| v.trim().trim_end_matches(')').parse().ok())
            .unwrap_or_else(|| panic!("the clear's version: {out}"));
        thread::sleep(Duration::from_secs(4));
        let after = store.state().unwrap().sites[UP].clone();
        assert!(
            after.rollback.is_none(),
            "attempt {attempt}: re-latched: {:?}",
            after.rollback
        );
        assert_eq!(
            after.version, cleared,
            "attempt {attempt}: another write after the clear, by {:?}",
            after.by
        );
        assert!(after.by.as_deref().unwrap_or("").starts_with("operator"));
    }
}

// ---------------------------------------------------------------- case 8

/// A loopback TCP proxy that can hold every reply (server → client) while
/// `hold` is set: commands land, their replies come too late.
fn proxy(to: u16, hold: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            let pump = |mut from: TcpStream, mut into: TcpStream, hold: Option<Arc<AtomicBool>>| {
                thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        while hold.as_ref().is_some_and(|h| h.load(Ordering::Acquire)) {
                            thread::sleep(Duration::from_millis(5));
                        }
                        if into.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = into.shutdown(std::net::Shutdown::Both);
                });
            };
            pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                None,
            );
            pump(server, client, Some(Arc::clone(&hold)));
        }
    });
    port
}

/// The leader's stage write lands but its reply is lost: it is read back
/// and settled, never reverted, and the next stage follows once.
#[test]
fn case_8_a_write_whose_reply_timed_out_is_read_back_not_reverted() {
    let (redis, url) = with_defaults("0");
    let hold = Arc::new(AtomicBool::new(false));
    let via_proxy = format!(
        "redis://127.0.0.1:{}",
        proxy(redis.port(), Arc::clone(&hold))
    );
    let env = [("FLEET_TEST_DRIVE", "3"), ("FLEET_TEST_ROLLOUT", "50")];
    // Replica 0 alone first, through the proxy: it takes the lease.
    let (_dir, leader, _lines) = start_replicas(&via_proxy, 1, &env, no_extra);
    let mut seen = Vec::new();
    watch_stages(&url, &mut seen, reached(1));
    let entered = seen[0].1;
    let (_dir2, _guard, _lines2) = start_replicas(&url, 1, &env, |_| {
        vec![("ASYNC_UPLOAD_INSTANCE".into(), "replica-guard".into())]
    });
    // Hold replies from just before the stage passes (3 s) until well after.
    let since = Duration::from_millis((now_us() / 1000).saturating_sub(entered));
    thread::sleep(Duration::from_millis(2600).saturating_sub(since));
    hold.store(true, Ordering::Release);
    thread::sleep(Duration::from_millis(2500));
    hold.store(false, Ordering::Release);
    watch_stages(&url, &mut seen, reached(3));
    println!("case 8: stages seen {seen:?}");
    assert_one_clock_per_stage(&seen, 3);
    assert_eq!(
        seen[1].2, "replica-0",
        "the leader's held write landed: {seen:?}"
    );
    // Nor did its controller go back a stage while its write was unsettled.
    let entered = entered_stages(leader.into_iter().next().unwrap());
    assert!(
        entered.windows(2).all(|w| w[0] <= w[1]),
        "the leader went back a stage: {entered:?}"
    );
}

/// The stages `replica` logged as entered, in order (it is stopped first).
fn entered_stages(replica: fleet_support::Replica) -> Vec<u32> {
    let log = replica.log.clone();
    assert!(replica.finish().success());
    read_file(&log)
        .unwrap()
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stage(StageEvent::Entered(e)) if e.site == UP => Some(e.stage),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- case 9

fn hset_big(redis: &RedisServer, key: &str, field: &str, bytes: usize) {
    let mut child = Command::new("redis-cli")
        .args(["-p", &redis.port().to_string(), "-x", "HSET", key, field])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&vec![b'x'; bytes])
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The smaller points: a version at `u64::MAX`, `rolled_back=1`, a 20 MB
/// reason, reconnection within the backoff cap, one change channel per
/// database.
#[test]
fn case_9_the_smaller_points() {
    let (mut redis, url) = with_defaults("100");
    let db1 = format!("{url}/1");
    ok(&cli(
        &db1,
        &["set", "--enabled", "true", "--rollout", "5"],
        &[],
    ));
    let (_dir, _replicas, mut lines) = start_replicas(&url, 3, &[], |i| {
        if i == 2 {
            vec![("ASYNC_UPLOAD_REDIS_URL".into(), db1.clone())]
        } else {
            Vec::new()
        }
    });
    lines.wait_each(&ALL, "the defaults", is_state(UP, "enabled", "true"));

    // Version u64::MAX: each replica says it once; writes still work.
    let at = now_us();
    redis.cli(&["SET", "async-upload:v1:version", "18446744073709551615"]);
    lines.wait_each(&[0, 1], "the bad version said", |l| {
        l.is("log") && l.get("key") == Some("async-upload:v1:version") && l.at_us > at
    });
    ok(&cli(
        &url,
        &["roll-back", "--site", UP, "--reason", "max"],
        &[],
    ));
    lines.wait_each(&[0, 1], "the rollback", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > at
    });
    let version: u64 = redis
        .cli(&["GET", "async-upload:v1:version"])
        .parse()
        .unwrap();
    assert!(
        version < 1 << 53,
        "the version starts again below 2^53: {version}"
    );
    for replica in [0, 1] {
        let said = events(&mut lines, replica, "WARN", at)
            .into_iter()
            .filter(|l| l.get("key") == Some("async-upload:v1:version"))
            .count();
        assert_eq!(said, 1, "replica {replica}");
    }
    ok(&cli(&url, &["clear-rollback", "--site", UP], &[]));

    // rolled_back=1 is a latch for the replicas and for `fleet roll-back`.
    let at = now_us();
    redis.cli(&["HSET", "async-upload:v1:site:up", "rolled_back", "1"]);
    redis.cli(&["INCR", "async-upload:v1:version"]);
    lines.wait_each(&[0, 1], "rolled_back=1 latched", |l| {
        is_state(UP, "rolled_back", "true")(l) && l.at_us > at
    });
    let again = ok(&cli(&url, &["roll-back", "--site", UP], &[]));
    assert!(again.contains("already rolled back"), "{again}");

    // A 20 MB reason: at most 1 KiB anywhere; the CLI refuses to write one.
    let at = now_us();
    hset_big(&redis, "async-upload:v1:site:other", "reason", 20 << 20);
    redis.cli(&["HSET", "async-upload:v1:site:other", "rolled_back", "true"]);
    redis.cli(&["SADD", "async-upload:v1:sites", OTHER]);
    redis.cli(&["INCR", "async-upload:v1:version"]);
    let latched = lines.wait_each(&[0, 1], "the long latch", |l| {
        is_state(OTHER, "rolled_back", "true")(l) && l.at_us > at
    });
    for line in latched {
        assert_eq!(line.get("reason_len"), Some("1024"));
    }
    let status = status_json(&url, &[]);
    let other = site_status(&status, OTHER);
    assert_eq!(other["reason"].as_str().unwrap().len(), 1024);
    let long = "r".repeat(2000);
    let refused = cli(&url, &["roll-back", "--site", UP, "--reason", &long], &[]);
    assert_eq!(refused.status.code(), Some(2));

    // One change channel per database.
    let numsub = redis.cli(&[
        "PUBSUB",
        "NUMSUB",
        "async-upload:v1:changes:0",
        "async-upload:v1:changes:1",
    ]);
    assert_eq!(
        numsub.split_whitespace().collect::<Vec<_>>(),
        [
            "async-upload:v1:changes:0",
            "2",
            "async-upload:v1:changes:1",
            "1"
        ]
    );
    let before = lines
        .last(0, state_of(UP))
        .unwrap()
        .get("version")
        .map(str::to_owned);
    ok(&cli(&db1, &["set", "--rollout", "7"], &[]));
    lines.wait_each(&[2], "db 1's change", |l| {
        is_state(UP, "default_rollout", "7")(l)
    });
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lines
            .last(0, state_of(UP))
            .unwrap()
            .get("version")
            .map(str::to_owned),
        before
    );

    // Reconnection within the backoff cap after a restart (Redis down 3 s).
    let at = now_us();
    redis.kill();
    lines.wait_each(&ALL, "cut off", |l| {
        is_state(UP, "connected", "false")(l) && l.at_us > at
    });
    thread::sleep(Duration::from_secs(3));
    // Stamped before the restart: a replica may reconnect while
    // `restart_empty` still waits for the server to answer, and any
    // `connected=true` after the kill is a reconnection to the new server.
    let restart = now_us();
    redis.restart_empty().unwrap();
    let back = lines.wait_each(&ALL, "reconnected", |l| {
        is_state(UP, "connected", "true")(l) && l.at_us > at
    });
    let times: Vec<f64> = back
        .iter()
        .map(|l| l.at_us.saturating_sub(restart) as f64 / 1e6)
        .collect();
    println!("case 9: reconnected {times:.2?} s after the restart (backoff cap 2 s, jittered)");
    assert!(times.iter().all(|t| *t < 3.0), "{times:?}");
}

// ---------------------------------------------------------------- case 10

/// A CA and a server certificate for 127.0.0.1, made with `openssl`.
struct Certs {
    dir: tempfile::TempDir,
    ca: String,
    server: String,
    server_key: String,
}

impl Certs {
    fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        let (ca, ca_key, server, server_key, csr, ext) = (
            path("ca.pem"),
            path("ca.key"),
            path("server.pem"),
            path("server.key"),
            path("server.csr"),
            path("server.ext"),
        );
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "1",
            "-subj",
            "/CN=async-upload test CA",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &server_key,
            "-out",
            &csr,
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &server,
            "-days",
            "1",
            "-extfile",
            &ext,
        ]);
        Certs {
            dir,
            ca,
            server,
            server_key,
        }
    }
}

/// `rediss://` with a CA the test makes: replicas and operators connect
/// with `ASYNC_UPLOAD_REDIS_CA`, a replica without it says why.
#[test]
fn case_10_tls_with_a_private_ca() {
    let certs = Certs::make();
    let redis = RedisServer::start_tls(&certs.server, &certs.server_key, &certs.ca).unwrap();
    let url = redis.url();
    let ca = [("ASYNC_UPLOAD_REDIS_CA", certs.ca.as_str())];
    ok(&cli(
        &url,
        &["set", "--enabled", "true", "--rollout", "100"],
        &ca,
    ));
    let (_dir, _replicas, mut lines) = start_replicas(&url, 2, &[], |i| {
        if i == 0 {
            vec![("ASYNC_UPLOAD_REDIS_CA".into(), certs.ca.clone())]
        } else {
            Vec::new()
        }
    });
    lines.wait_each(
        &[0],
        "the shared state over TLS",
        is_state(UP, "enabled", "true"),
    );
    let error = lines.wait_each(&[1], "an ERROR", |l: &Line| {
        l.is("log") && l.get("level") == Some("ERROR")
    })[0]
        .clone();
    assert_eq!(error.get("cause"), Some("tls"), "{error:?}");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lines.last(1, state_of(UP)).unwrap().get("enabled"),
        Some("false")
    );
    let status = status_json(&url, &ca);
    assert_eq!(status["replicas"].as_array().unwrap().len(), 1);
    assert!(
        !cli(&url, &["status"], &[]).status.success(),
        "no CA: the operator is refused too"
    );
}

/// The documented least-privilege ACLs: replicas read, report, lease,
/// latch and (as the leader) write the stage, but never the defaults;
/// the operators' user does everything the command does.
#[test]
fn case_10_replicas_run_with_the_least_privilege_acl() {
    let redis = redis_server();
    acl_user(&redis, "async-upload-replica", "replica-pw", REPLICA_ACL);
    acl_user(&redis, "async-upload-operator", "operator-pw", OPERATOR_ACL);
    let port = redis.port();
    let replica_url = format!("redis://async-upload-replica:replica-pw@127.0.0.1:{port}");
    let operator_url = format!("redis://async-upload-operator:operator-pw@127.0.0.1:{port}");
    redis.cli(&["ACL", "SETUSER", "default", "off"]);
    let env = [
        ("ASYNC_UPLOAD_ENABLED", "true"),
        ("ASYNC_UPLOAD_ROLLOUT", "100"),
    ];
    let (_dir, mut replicas, mut lines) = start_replicas(&replica_url, 2, &env, no_extra);
    let operator = store(&operator_url);
    // They may not seed the defaults, and say so.
    lines.wait_each(&[0, 1], "the refused seed", |l: &Line| {
        l.is("log") && l.get("level") == Some("WARN") && l.get("cause") == Some("permission")
    });
    assert_eq!(operator.state().unwrap().defaults, None);
    match store(&replica_url).set_defaults(async_upload::fleet::Defaults {
        enabled: true,
        rollout: 100.0,
    }) {
        Err(error) => assert_eq!(error.cause(), Some(ContactCause::Permission), "{error}"),
        Ok(_) => panic!("a replica's user wrote the defaults"),
    }
    // The operator sets them; the replicas follow; a leader writes the stage.
    ok(&cli(
        &operator_url,
        &["set", "--enabled", "true", "--rollout", "100"],
        &[],
    ));
    lines.wait_each(&[0, 1], "the defaults", is_state(UP, "enabled", "true"));
    let (_dir2, _leader, _lines2) =
        start_replicas(&replica_url, 1, &[("FLEET_TEST_DRIVE", "600")], |_| {
            vec![("ASYNC_UPLOAD_INSTANCE".into(), "replica-leader".into())]
        });
    eventually("the leader's stage", || {
        operator.state().ok().is_some_and(|s| {
            s.sites
                .get(UP)
                .is_some_and(|s| s.stage == Some(1) && s.by.as_deref() == Some("replica-leader"))
        })
    });
    // A replica latches a rollback.
    replicas[1].send("roll-back acl drill");
    eventually("the replica's latch", || {
        operator.state().ok().is_some_and(|s| {
            s.sites
                .get(UP)
                .is_some_and(|s| s.rollback.as_deref() == Some("acl drill"))
        })
    });
    lines.wait_each(&[0, 1], "rolled back", is_state(UP, "rolled_back", "true"));
    eventually("three replicas reporting, each receiving pushes", || {
        let status = status_json(&operator_url, &[]);
        let replicas = status["replicas"].as_array().unwrap().clone();
        replicas.len() == 3 && replicas.iter().all(|r| r["pushes"] == true)
    });
}
