//! `async_upload::testing` as a service's test suite uses it: 48 tests
//! running in parallel threads of one binary, each with its own scope, all
//! calling one annotated function. Half force the async path (some make
//! every attempt time out), half force the sync path; each checks that the
//! paths taken and the records it reads are exactly its own calls', and
//! that nothing reached the global configuration, aggregator or sinks.
//!
//! Run: `cargo test -p async-upload --features testing --test attribute_testing`
//! (`.ci/run` runs it again with `-- --test-threads 8`).
#![deny(warnings)]

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use async_upload::config::{handle, Config, SiteOverrides};
use async_upload::metrics::{self, ExecutionType, UploadRecord};
use async_upload::testing::{self, ScopeBuilder, ScopeGuard};
use async_upload::{async_upload, call_id, CallId, SyncReason};

const SITE: &str = "testing_upload";
/// Calls per test.
const CALLS: u64 = 6;

#[derive(Clone, Debug)]
struct Req {
    id: String,
    /// The test's own number, recorded as the call's size: a record of
    /// another test's call would show another number.
    marker: u64,
}

/// Which path answered, and the call id it saw.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    Async(CallId),
    Sync(CallId),
}

fn upload_blocking(req: Req) -> io::Result<Served> {
    let _ = req.id;
    Ok(Served::Sync(
        call_id().expect("the fallback runs inside the call"),
    ))
}

// A timeout of 30 s: a test that waited for it would be seen to hang.
#[async_upload(name = "testing_upload", retries = 2, timeout = 30, backoff = 0.01,
               fallback = upload_blocking, key = req.id.as_str(), size = req.marker)]
async fn upload(req: Req) -> io::Result<Served> {
    // Give the other tests' threads a chance to interleave.
    tokio::task::yield_now().await;
    Ok(Served::Async(
        call_id().expect("the body runs inside the call"),
    ))
}

/// What a test's scope does, and what its calls must then show.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `force_async`: every call served by the body.
    Async,
    /// `force_async().async_times_out()`: every attempt times out, the
    /// fallback answers after 3 attempts.
    TimesOut,
    /// The same with the site's `max_retries` at 0 in the scope: 1 attempt.
    TimesOutOnce,
    /// `force_sync`: every call on the sync path.
    Sync,
    /// No forcing; the scope's configuration enables 100 %: async.
    Enabled,
    /// No forcing; the scope's default configuration: async disabled.
    Default,
}

impl Kind {
    fn scope(self) -> ScopeBuilder {
        let scope = testing::scope();
        match self {
            Kind::Async => scope.force_async(),
            Kind::TimesOut => scope.force_async().async_times_out(),
            Kind::TimesOutOnce => scope.force_async().async_times_out().site(
                SITE,
                SiteOverrides {
                    max_retries: Some(0),
                    ..SiteOverrides::default()
                },
            ),
            Kind::Sync => scope.force_sync(),
            Kind::Enabled => scope.config(|c| {
                c.enabled = true;
                c.rollout = 100.0;
            }),
            Kind::Default => scope,
        }
    }

    /// (execution type, attempts, ambiguous attempts, sync reason, served by the body)
    fn expected(self) -> (ExecutionType, u32, u32, Option<SyncReason>, bool) {
        match self {
            Kind::Async | Kind::Enabled => (ExecutionType::Async, 1, 0, None, true),
            Kind::TimesOut => (
                ExecutionType::SyncFallback,
                3,
                3,
                Some(SyncReason::AsyncGaveUp),
                false,
            ),
            Kind::TimesOutOnce => (
                ExecutionType::SyncFallback,
                1,
                1,
                Some(SyncReason::AsyncGaveUp),
                false,
            ),
            Kind::Sync => (
                ExecutionType::Sync,
                0,
                0,
                Some(SyncReason::ForcedSync),
                false,
            ),
            Kind::Default => (ExecutionType::Sync, 0, 0, Some(SyncReason::Disabled), false),
        }
    }
}

/// Records of the site that reached the global sinks: must stay 0.
static LEAKED: AtomicUsize = AtomicUsize::new(0);

fn watch_the_globals() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::add_sink(|record: &UploadRecord| {
            if record.site == SITE {
                LEAKED.fetch_add(1, Ordering::SeqCst);
            }
        });
    });
}

fn request(marker: u64, call: u64) -> Req {
    Req {
        id: format!("t{marker}-c{call}"),
        marker,
    }
}

/// Checks what a test's calls returned and what its scope recorded.
fn check(kind: Kind, marker: u64, served: &[Served], scope: &ScopeGuard) {
    let (execution_type, attempts, ambiguous, reason, by_body) = kind.expected();
    let records = scope.records();
    assert_eq!(records.len(), served.len(), "{kind:?}: {records:#?}");
    let mut ids = HashSet::new();
    for record in &records {
        assert_eq!(record.site, SITE);
        assert_eq!(
            record.bytes,
            Some(marker),
            "another test's call: {record:?}"
        );
        assert_eq!(
            (
                record.execution_type,
                record.attempts,
                record.ambiguous_attempts,
                record.sync_reason
            ),
            (execution_type, attempts, ambiguous, reason),
            "{kind:?}: {record:?}"
        );
        assert!(record.success);
        assert!(ids.insert(record.call_id.expect("every call has an id")));
    }
    // Each call's answer came from the expected path, with its record's id.
    for answer in served {
        let (id, body) = match answer {
            Served::Async(id) => (*id, true),
            Served::Sync(id) => (*id, false),
        };
        assert_eq!(body, by_body, "{kind:?}: {answer:?}");
        assert!(ids.contains(&id), "{answer:?} has no record of its own");
    }
    assert_eq!(
        LEAKED.load(Ordering::SeqCst),
        0,
        "a scoped record reached a global sink"
    );
    assert!(
        metrics::global().snapshot(SITE).is_none(),
        "a scoped record reached the global aggregator"
    );
    assert_eq!(handle().site_overrides(SITE), SiteOverrides::default());
    let environment = Config::from_env().unwrap_or_default();
    assert_eq!(
        (handle().config().enabled, handle().config().rollout),
        (environment.enabled, environment.rollout),
        "a scope reached the global configuration"
    );
}

/// One test's calls: awaited in the body, and in tasks it spawns. On the
/// current-thread runtime the tasks run on the test's thread, in its scope;
/// on the multi-thread runtime (`bind`) they run on workers, bound to it.
async fn calls(kind: Kind, marker: u64, bind: bool) {
    watch_the_globals();
    let scope = kind.scope().install();
    let mut served = Vec::new();
    let mut spawned = Vec::new();
    for call in 0..CALLS {
        let call_of_this_test = upload(request(marker, call));
        if call % 2 == 0 {
            served.push(call_of_this_test.await.unwrap());
        } else if bind {
            spawned.push(tokio::spawn(scope.bind(call_of_this_test)));
        } else {
            spawned.push(tokio::spawn(call_of_this_test));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for task in spawned {
        served.push(task.await.unwrap().unwrap());
    }
    check(kind, marker, &served, &scope);
}

macro_rules! tests {
    ($($flavor:ident $name:ident: $kind:ident $marker:literal;)*) => {$(
        tests!(@one $flavor $name $kind $marker);
    )*};
    (@one current $name:ident $kind:ident $marker:literal) => {
        #[tokio::test]
        async fn $name() {
            calls(Kind::$kind, $marker, false).await;
        }
    };
    (@one multi $name:ident $kind:ident $marker:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            calls(Kind::$kind, $marker, true).await;
        }
    };
}

tests! {
    // 24 that force the async path: 10 time out.
    current forced_async_01: Async 1;
    current forced_async_02: Async 2;
    current forced_async_03: Async 3;
    current forced_async_04: Async 4;
    current forced_async_05: Async 5;
    current forced_async_06: Async 6;
    current forced_async_07: Async 7;
    current forced_async_08: Async 8;
    current forced_async_times_out_09: TimesOut 9;
    current forced_async_times_out_10: TimesOut 10;
    current forced_async_times_out_11: TimesOut 11;
    current forced_async_times_out_12: TimesOut 12;
    current forced_async_times_out_13: TimesOut 13;
    current forced_async_times_out_once_14: TimesOutOnce 14;
    current forced_async_times_out_once_15: TimesOutOnce 15;
    current forced_async_times_out_once_16: TimesOutOnce 16;
    multi forced_async_multi_thread_17: Async 17;
    multi forced_async_multi_thread_18: Async 18;
    multi forced_async_multi_thread_19: Async 19;
    multi forced_async_multi_thread_20: Async 20;
    multi forced_async_multi_thread_times_out_21: TimesOut 21;
    multi forced_async_multi_thread_times_out_22: TimesOut 22;
    current enabled_by_the_scopes_config_23: Enabled 23;
    current enabled_by_the_scopes_config_24: Enabled 24;
    // 24 that force the sync path (or leave it to the scope's default).
    current forced_sync_25: Sync 25;
    current forced_sync_26: Sync 26;
    current forced_sync_27: Sync 27;
    current forced_sync_28: Sync 28;
    current forced_sync_29: Sync 29;
    current forced_sync_30: Sync 30;
    current forced_sync_31: Sync 31;
    current forced_sync_32: Sync 32;
    current forced_sync_33: Sync 33;
    current forced_sync_34: Sync 34;
    current forced_sync_35: Sync 35;
    current forced_sync_36: Sync 36;
    current forced_sync_37: Sync 37;
    current forced_sync_38: Sync 38;
    current forced_sync_39: Sync 39;
    current forced_sync_40: Sync 40;
    multi forced_sync_multi_thread_41: Sync 41;
    multi forced_sync_multi_thread_42: Sync 42;
    multi forced_sync_multi_thread_43: Sync 43;
    multi forced_sync_multi_thread_44: Sync 44;
    current disabled_by_the_scopes_default_45: Default 45;
    current disabled_by_the_scopes_default_46: Default 46;
    current disabled_by_the_scopes_default_47: Default 47;
    current disabled_by_the_scopes_default_48: Default 48;
}

#[tokio::test]
async fn an_inner_scope_shadows_the_outer_one_until_it_drops() {
    watch_the_globals();
    let outer = testing::scope().force_sync().install();
    upload(request(100, 0)).await.unwrap();
    {
        let inner = testing::scope().force_async().install();
        assert!(matches!(
            upload(request(100, 1)).await.unwrap(),
            Served::Async(_)
        ));
        assert_eq!(inner.records().len(), 1);
    }
    assert!(matches!(
        upload(request(100, 2)).await.unwrap(),
        Served::Sync(_)
    ));
    let reasons: Vec<_> = outer.records().iter().map(|r| r.sync_reason).collect();
    assert_eq!(reasons, [Some(SyncReason::ForcedSync); 2]);
}

#[test]
fn an_invalid_scope_is_refused_with_what_is_accepted() {
    let error = testing::scope()
        .config(|c| c.rollout = 0.001)
        .try_install()
        .unwrap_err();
    assert!(error.to_string().contains("0.001"), "{error}");
    let error = testing::scope()
        .site(
            SITE,
            SiteOverrides {
                max_retries: Some(11),
                ..SiteOverrides::default()
            },
        )
        .try_install()
        .unwrap_err();
    assert!(error.to_string().contains("11"), "{error}");
}
