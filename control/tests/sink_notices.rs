//! The sinks hear of what is no call's record: a circuit breaker's
//! transitions (`MetricsSink::breaker_changed`) and an operator's change of
//! the live configuration (`MetricsSink::config_changed`). A sink of the
//! user's own gets them; the log installed from `ASYNC_UPLOAD_LOG` writes
//! each as its `breaker` and `operator` lines, once, in a fresh process
//! (the test binary re-runs itself as a child with the variable set).

use async_upload_test_support::records as support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_upload_control::log::JsonlLog;
use async_upload_runtime::config::{handle, BreakerState, SiteOverrides};
use async_upload_runtime::execute::execute_in_place;
use async_upload_runtime::metrics::{
    add_sink, remove_sink, BreakerChange, BreakerEvent, ConfigChange, MetricsSink, SettingChange,
    UploadRecord,
};
use async_upload_runtime::Site;

use support::{enable_async, TestError};

/// Rolls `site` out to every call: the one operator change of each test.
fn roll_out_fully(site: &str) {
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: Some(100.0),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
}

/// One call whose only attempt fails transiently while `fail` says so;
/// the sync path answers 2.
async fn call(site: &'static Site, fail: &AtomicBool) -> u32 {
    execute_in_place(
        site.call_unkeyed(),
        (),
        |()| {
            std::future::ready(if fail.load(Ordering::SeqCst) {
                Err(TestError::Transient)
            } else {
                Ok(1)
            })
        },
        |()| Ok(2),
    )
    .await
    .unwrap()
}

/// Opens `site`'s breaker (10 failed calls), lets its 1 s cool-down pass
/// (on Tokio's paused clock) and closes it with a successful probe: three
/// transitions.
async fn trip_and_recover(site: &'static Site) {
    let fail = AtomicBool::new(true);
    for _ in 0..10 {
        assert_eq!(call(site, &fail).await, 2);
    }
    assert_eq!(site.breaker_state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fail.store(false, Ordering::SeqCst);
    assert_eq!(call(site, &fail).await, 1);
    assert_eq!(site.breaker_state(), BreakerState::Closed);
}

/// A user's sink: keeps the notices of one site.
struct Notices {
    site: &'static str,
    breakers: Mutex<Vec<BreakerEvent>>,
    changes: Mutex<Vec<ConfigChange>>,
}

impl MetricsSink for Notices {
    fn record(&self, _: &UploadRecord) {}

    fn breaker_changed(&self, event: &BreakerEvent) {
        if event.site == self.site {
            self.breakers.lock().unwrap().push(event.clone());
        }
    }

    fn config_changed(&self, change: &ConfigChange) {
        if change.site.as_deref() == Some(self.site) {
            self.changes.lock().unwrap().push(change.clone());
        }
    }
}

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_sink_of_its_own_hears_of_breaker_transitions_and_operator_changes() {
    static SITE: Site = Site::new("notices_sink").with_retries(0);
    enable_async();
    let notices = Arc::new(Notices {
        site: SITE.name(),
        breakers: Mutex::new(Vec::new()),
        changes: Mutex::new(Vec::new()),
    });
    // Through `Arc`, as a user shares a sink to read it.
    let id = add_sink(Arc::clone(&notices));
    // A JSONL log added by hand writes them too.
    let out = Shared::default();
    let log = JsonlLog::builder_for_writer(out.clone()).spawn();
    let log_id = add_sink(log.clone());

    roll_out_fully(SITE.name());
    trip_and_recover(&SITE).await;
    assert!(remove_sink(id));
    assert!(remove_sink(log_id));

    let changes = notices.changes.lock().unwrap().clone();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].site.as_deref(), Some(SITE.name()));
    assert_eq!(changes[0].by, "operator");
    assert_eq!(
        changes[0].settings,
        [SettingChange::new("rollout", None, Some("100".into()))]
    );
    let breakers = notices.breakers.lock().unwrap().clone();
    let seen: Vec<_> = breakers.iter().map(|e| (e.event, e.cooldown_s)).collect();
    assert_eq!(
        seen,
        [
            (BreakerChange::Open, Some(1.0)),
            (BreakerChange::HalfOpen, None),
            (BreakerChange::Closed, None),
        ]
    );

    assert!(log.flush());
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let ours = |kind: &str| {
        text.lines()
            .filter(|line| line.starts_with(&format!(r#"{{"kind":"{kind}""#)))
            .filter(|line| line.contains(r#""site":"notices_sink""#))
            .count()
    };
    assert_eq!(ours("operator"), 1, "{text}");
    assert_eq!(ours("breaker"), 3, "{text}");
    assert_eq!(ours("upload"), 11, "{text}");
}

/// `line` without the value of its `ts` field.
fn without_ts(line: &str) -> String {
    const TS: &str = r#""ts":""#;
    let Some(start) = line.find(TS).map(|at| at + TS.len()) else {
        return line.to_owned();
    };
    let end = start + line[start..].find('"').unwrap();
    format!("{}…{}", &line[..start], &line[end..])
}

/// The log `ASYNC_UPLOAD_LOG` installs writes each transition and each
/// setting an operator changed as one line, exactly as the first release
/// of these lines did.
#[test]
fn the_log_from_the_environment_writes_each_notice_once() {
    if std::env::var_os("NOTICES_CHILD").is_some() {
        static LOGGED: Site = Site::new("notices_log").with_retries(0);
        // A service's first use of the configuration goes through the
        // facade, which starts the log of `ASYNC_UPLOAD_LOG`.
        let _ = async_upload::config::handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        enable_async();
        roll_out_fully(LOGGED.name());
        runtime.block_on(trip_and_recover(&LOGGED));
        assert!(async_upload_control::log::flush());
        return;
    }
    let path = std::env::temp_dir().join(format!("au-notices-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_log_from_the_environment_writes_each_notice_once",
            "--test-threads=1",
        ])
        .env("NOTICES_CHILD", "1")
        .env("ASYNC_UPLOAD_LOG", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let uploads = text
        .lines()
        .filter(|line| line.starts_with(r#"{"kind":"upload","#))
        .count();
    assert_eq!(uploads, 11, "{text}");
    let notices: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with(r#"{"kind":"upload","#))
        .map(without_ts)
        .collect();
    assert_eq!(
        notices,
        [
            r#"{"kind":"operator","ts":"…","setting":"enabled","old":"false","new":"true","by":"operator","v":1}"#,
            r#"{"kind":"operator","ts":"…","site":"notices_log","setting":"rollout","old":null,"new":"100","by":"operator","v":1}"#,
            r#"{"kind":"breaker","ts":"…","site":"notices_log","event":"open","cooldown_s":1.0,"v":1}"#,
            r#"{"kind":"breaker","ts":"…","site":"notices_log","event":"half_open","v":1}"#,
            r#"{"kind":"breaker","ts":"…","site":"notices_log","event":"closed","v":1}"#,
        ],
        "{text}"
    );
}
