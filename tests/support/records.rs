//! Capturing the records of one site, and enabling the async path in tests.

use std::sync::{Arc, Mutex, PoisonError};

use async_upload::config::{handle, SiteOverrides};
use async_upload::metrics::{add_sink, remove_sink, ExecutionType, SinkId, UploadRecord};

/// Every record of one site from the moment it is created until dropped.
pub struct Capture {
    site: &'static str,
    records: Arc<Mutex<Vec<UploadRecord>>>,
    sink: SinkId,
}

impl Capture {
    /// Starts capturing the records of `site`.
    pub fn site(site: &'static str) -> Capture {
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let records = Arc::clone(&records);
            add_sink(move |record: &UploadRecord| {
                if record.site == site {
                    records
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(record.clone());
                }
            })
        };
        Capture {
            site,
            records,
            sink,
        }
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
        let records = self.records();
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

    /// The records so far.
    pub fn records(&self) -> Vec<UploadRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The site.
    pub fn name(&self) -> &'static str {
        self.site
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        remove_sink(self.sink);
    }
}

/// Lifts the global kill switch (never lowered again in a test binary) and
/// sets `site`'s operator overrides.
pub fn enable_site(site: &str, overrides: SiteOverrides) {
    handle().update(|c| c.enabled = true).unwrap();
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
