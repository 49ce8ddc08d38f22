//! A user error can never pass for a runtime fault, whatever name it picks:
//! reserved names are recorded qualified, never count as critical and never
//! roll a site back through the controller, while a real async panic does.

use async_upload_test_support::records as support;

use std::time::Duration;

use async_upload::stages::{Controller, ManualClock, TriggerKind, Verdict};
use async_upload_runtime::config::handle;
use async_upload_runtime::execute::execute_in_place;
use async_upload_runtime::metrics::{ExecutionType, RuntimeFault};
use async_upload_runtime::policy::{Classify, ErrorClass, Fault};
use async_upload_runtime::Site;

use support::{enable_async, roll_out, Records};

/// A user error that names itself after a reserved name.
#[derive(Debug, PartialEq)]
struct Impostor {
    name: &'static str,
    class: ErrorClass,
}

impl Classify for Impostor {
    fn classify(&self) -> ErrorClass {
        self.class
    }

    fn error_type(&self) -> &'static str {
        self.name
    }

    fn from_fault(_: Fault) -> Self {
        Impostor {
            name: "fault",
            class: ErrorClass::Fail,
        }
    }
}

/// One call whose async path returns `error`, falling back to `Ok(0)`.
async fn call_failing(site: &'static Site, error: Impostor) -> Result<u32, Impostor> {
    let mut error = Some(error);
    execute_in_place(
        site.call(&"key"),
        (),
        |()| std::future::ready(Err(error.take().expect("one attempt"))),
        |()| Ok(0),
    )
    .await
}

#[tokio::test]
async fn every_reserved_name_is_qualified_and_never_a_fault() {
    static SITE: Site = Site::new("reserved_records").with_retries(0);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let records = Records::of(SITE.name());
    for fault in RuntimeFault::ALL {
        for class in [ErrorClass::Fallback, ErrorClass::Fail] {
            let error = Impostor {
                name: fault.as_str(),
                class,
            };
            call_failing(&SITE, error).await.ok();
        }
    }
    let all = records.all();
    assert_eq!(all.len(), RuntimeFault::ALL.len() * 2);
    for (record, fault) in all.chunks(2).zip(RuntimeFault::ALL) {
        let qualified = format!("user:{}", fault.as_str());
        for record in record {
            assert_eq!(record.error_type.as_deref(), Some(qualified.as_str()));
            assert_eq!(record.fault, None, "{record:?}");
            assert!(
                !record.is_critical() && !record.is_cancelled(),
                "{record:?}"
            );
        }
        assert_eq!(record[0].execution_type, ExecutionType::SyncFallback);
        assert_eq!(record[1].execution_type, ExecutionType::Async);
    }
}

#[tokio::test]
async fn a_user_error_named_panic_never_rolls_back_and_a_real_panic_does() {
    static SITE: Site = Site::new("reserved_controller").with_retries(0);
    enable_async();
    roll_out(SITE.name(), 100.0);
    let clock = ManualClock::new();
    let mut controller = Controller::builder(SITE.name())
        .clock(clock.clone())
        .memory(|| None)
        .start();
    // `start` enters stage 1 (1 %): route every key async again.
    roll_out(SITE.name(), 100.0);

    // Fewer calls than any rate trigger needs: only a critical error can
    // roll back, and none of these is one.
    for fault in RuntimeFault::ALL {
        let error = Impostor {
            name: fault.as_str(),
            class: ErrorClass::Fallback,
        };
        assert_eq!(call_failing(&SITE, error).await, Ok(0));
    }
    clock.advance(Duration::from_secs(30));
    let verdict = controller.tick().verdict.clone();
    assert!(
        !matches!(verdict, Verdict::Rollback { .. }),
        "a user error named like a fault rolled the site back: {verdict:?}"
    );
    assert!(handle().rollback_reason(SITE.name()).is_none());

    let result: Result<u32, Impostor> = execute_in_place(
        SITE.call(&"key"),
        (),
        |()| async { panic!("bug in the new path") },
        |()| Ok(0),
    )
    .await;
    assert_eq!(result, Ok(0));
    clock.advance(Duration::from_secs(30));
    let Verdict::Rollback { triggers } = &controller.tick().verdict else {
        panic!("a real async panic must roll the site back")
    };
    assert_eq!(triggers[0].kind, TriggerKind::CriticalError);
    assert!(handle().rollback_reason(SITE.name()).is_some());
    controller.clear_rollback();
}
