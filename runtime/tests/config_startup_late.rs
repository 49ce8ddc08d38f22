//! A start-up registered after the configuration's first use (a service
//! that touched the runtime before the facade): it runs at once on the
//! configuration in force, as the runtime's own change.

use std::sync::{Arc, Mutex};

use async_upload_runtime::config::{handle, set_startup, Config, Startup};
use async_upload_runtime::metrics::{add_sink, ConfigChange, MetricsSink, UploadRecord};

#[derive(Default)]
struct Notices(Mutex<Vec<ConfigChange>>);

impl MetricsSink for Notices {
    fn record(&self, _: &UploadRecord) {}
    fn config_changed(&self, change: &ConfigChange) {
        self.0.lock().unwrap().push(change.clone());
    }
}

fn start(mut config: Config) -> Config {
    config.max_retries = 9;
    config
}

#[test]
fn a_late_start_up_runs_at_once_without_an_operator_notice() {
    assert_eq!(handle().config().max_retries, 2, "the default, read first");
    let notices = Arc::new(Notices::default());
    add_sink(notices.clone());
    set_startup(Startup::new(start, |_, _| {})).unwrap();
    assert_eq!(handle().config().max_retries, 9);
    assert!(
        notices.0.lock().unwrap().is_empty(),
        "the start-up is not an operator's change"
    );
}
