//! A sink that keeps the records of one site, the switches a test turns on,
//! and an error type with every classification.

use std::sync::{Arc, Mutex};

use async_upload_runtime::config::{handle, SiteOverrides};
use async_upload_runtime::metrics::{add_sink, remove_sink, SinkId, UploadRecord};
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

/// Keeps the records of one site while alive.
pub struct Records {
    site: &'static str,
    records: Arc<Mutex<Vec<UploadRecord>>>,
    id: SinkId,
}

impl Records {
    pub fn of(site: &'static str) -> Self {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&records);
        let id = add_sink(move |record: &UploadRecord| {
            if record.site == site {
                sink.lock().unwrap().push(record.clone());
            }
        });
        Records { site, records, id }
    }

    pub fn all(&self) -> Vec<UploadRecord> {
        self.records.lock().unwrap().clone()
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
