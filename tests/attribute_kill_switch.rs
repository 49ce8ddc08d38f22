//! The kill switches beat the attribute and per-site overrides. A file of
//! its own: it turns the process-global `enabled` off and on.
#![deny(warnings)]
#![warn(clippy::pedantic)]
// A stand-in fallback without I/O.
#![allow(clippy::unnecessary_wraps)]

use async_upload::async_upload;
use async_upload::config::{handle, SiteOverrides};
use async_upload::metrics::{self, ExecutionType};

fn upload_blocking(id: u64) -> std::io::Result<&'static str> {
    let _ = id;
    Ok("sync")
}

#[async_upload(fallback = upload_blocking, name = "attr_kill_switch", key = id, retries = 3)]
async fn upload(id: u64) -> std::io::Result<&'static str> {
    tokio::task::yield_now().await;
    let _ = id;
    Ok("async")
}

#[tokio::test]
async fn global_disable_and_rollback_send_every_call_to_the_sync_path() {
    let site = "attr_kill_switch";
    handle()
        .set_site(
            site,
            SiteOverrides {
                enabled: Some(true),
                rollout: Some(100.0),
                ..SiteOverrides::default()
            },
        )
        .unwrap();

    // Global `enabled = false` (the default): the site's own `enabled` cannot override it.
    handle().update(|c| c.enabled = false).unwrap();
    assert_eq!(upload(1).await.unwrap(), "sync");

    handle().update(|c| c.enabled = true).unwrap();
    assert_eq!(upload(1).await.unwrap(), "async");

    handle().roll_back(site, "error rate above 5%");
    assert_eq!(upload(1).await.unwrap(), "sync");
    handle().clear_rollback(site);
    assert_eq!(upload(1).await.unwrap(), "async");

    let global = metrics::global();
    assert_eq!(global.summary(site, ExecutionType::Sync).count, 2);
    assert_eq!(global.summary(site, ExecutionType::Async).count, 2);
}
