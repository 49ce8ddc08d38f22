//! A sink that keeps the records of one site, the switches a test turns on,
//! and an error type with every classification.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::metrics::{add_sink, remove_sink, ExecutionType, SinkId, UploadRecord};
use async_upload_runtime::policy::{Classify, ErrorClass, Fault};

/// Turns the global switch on. Every test binary that needs the async path
/// calls it; none turns it off again, so tests in one binary can run in
/// parallel without racing on it.
pub fn enable_async() {
    handle().update(|config| config.enabled = true).unwrap();
}

/// Rolls `site` out to `percent` of keys.
pub fn roll_out(site: &str, percent: f64) {
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: Some(percent),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
}

/// Lifts the global kill switch and sets `site`'s operator overrides.
pub fn enable_site(site: &str, overrides: SiteOverrides) {
    enable_async();
    handle().set_site(site, overrides).unwrap();
}

/// `enable_site` at 100 % with the breaker and retry budget off, for
/// tests of the retry semantics themselves: the budget's bank starts
/// empty, so a fresh site's calls in a row that all fail retry only on its
/// floor (`e2e_breaker` tests the budget).
pub fn enable_site_unbudgeted(site: &str) {
    enable_site(
        site,
        SiteOverrides {
            rollout: Some(100.0),
            breaker: Some(false),
            ..SiteOverrides::default()
        },
    );
}

/// `enable_site` with a rollout percentage and nothing else.
pub fn enable_site_at(site: &str, rollout: f64) {
    enable_site(
        site,
        SiteOverrides {
            rollout: Some(rollout),
            ..SiteOverrides::default()
        },
    );
}

/// Keeps the records of one site while alive.
pub struct Records {
    site: &'static str,
    records: Arc<Mutex<Vec<UploadRecord>>>,
    id: SinkId,
}

impl Records {
    /// Starts keeping the records of `site`.
    pub fn of(site: &'static str) -> Self {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&records);
        let id = add_sink(move |record: &UploadRecord| {
            if record.site == site {
                locked(&sink).push(record.clone());
            }
        });
        Records { site, records, id }
    }

    /// The site.
    pub fn name(&self) -> &'static str {
        self.site
    }

    /// The records so far.
    pub fn all(&self) -> Vec<UploadRecord> {
        locked(&self.records).clone()
    }

    /// The one record the site has; fails unless there is exactly one.
    pub fn only(&self) -> UploadRecord {
        let all = self.all();
        assert_eq!(
            all.len(),
            1,
            "{}: expected exactly one record, got {all:#?}",
            self.site
        );
        all.into_iter().next().unwrap()
    }

    /// Checks there are `count` records so far, each of `execution_type`,
    /// with that outcome, attempts and error type.
    pub fn assert_every(
        &self,
        count: usize,
        execution_type: ExecutionType,
        success: bool,
        attempts: u32,
        error_type: Option<&str>,
    ) {
        let records = self.all();
        assert_eq!(records.len(), count, "{records:#?}");
        for r in &records {
            let seen = (
                r.execution_type,
                r.success,
                r.attempts,
                r.error_type.as_deref(),
            );
            assert_eq!(
                seen,
                (execution_type, success, attempts, error_type),
                "{r:?}"
            );
        }
    }
}

/// The records, also after a test thread panicked holding them (the
/// sink runs on every call's task).
fn locked(records: &Mutex<Vec<UploadRecord>>) -> MutexGuard<'_, Vec<UploadRecord>> {
    records.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for Records {
    fn drop(&mut self) {
        remove_sink(self.id);
    }
}

/// An error of every class.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    Transient,
    Unsupported,
    Invalid,
    Sync,
    Fault(String),
}

impl Classify for TestError {
    fn classify(&self) -> ErrorClass {
        match self {
            TestError::Transient => ErrorClass::Retry,
            TestError::Unsupported | TestError::Fault(_) => ErrorClass::Fallback,
            TestError::Invalid | TestError::Sync => ErrorClass::Fail,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            TestError::Transient => "transient",
            TestError::Unsupported => "unsupported",
            TestError::Invalid => "invalid",
            TestError::Sync => "sync",
            TestError::Fault(_) => "fault",
        }
    }

    fn from_fault(fault: Fault) -> Self {
        TestError::Fault(fault.to_string())
    }
}
