//! `async-upload report` on a log that real calls of an annotated function
//! wrote: calls per sync reason per site, and the retries and fallbacks
//! that ran after an attempt whose outcome is unknown; a line of an earlier
//! release (no call id, reason or ambiguity) still reads.
//!
//! Run: `cargo test -p async-upload --features cli --test report_sync_paths`

use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use async_upload::config::{handle, SiteOverrides};
use async_upload::log::JsonlLog;
use async_upload::metrics::{add_sink, remove_sink};
use async_upload::{async_upload, rollout};

const SITE: &str = "report_sync_paths";

fn put_blocking(_id: String) -> std::io::Result<()> {
    Ok(())
}

/// Every attempt outlives its 20 ms timeout: an outcome never known.
#[async_upload(name = "report_sync_paths", retries = 1, timeout = 0.02, backoff = 0.001,
               fallback = put_blocking, key = id.as_str())]
async fn put(id: String) -> std::io::Result<()> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn the_report_counts_sync_reasons_and_possible_duplicates_per_site() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uploads.jsonl");
    // One line of an earlier release first.
    writeln!(
        std::fs::File::create(&path).unwrap(),
        "{{\"kind\":\"upload\",\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"{SITE}\",\
         \"execution_type\":\"sync\",\"success\":true,\"duration_ms\":1.5,\"attempts\":0,\
         \"error_type\":null,\"bytes\":null,\"v\":1}}"
    )
    .unwrap();
    let log = JsonlLog::open(&path).unwrap();
    let sink = add_sink(log.clone());

    handle().update(|c| c.enabled = true).unwrap();
    handle()
        .set_site(
            SITE,
            SiteOverrides {
                rollout: Some(50.0),
                breaker: Some(false),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
    let ids: Vec<String> = (0..12).map(|i| format!("file-{i}")).collect();
    let enrolled = ids
        .iter()
        .filter(|id| rollout::bucket(SITE, id.as_bytes()) < 5000)
        .count();
    assert!(enrolled > 0 && enrolled < ids.len(), "the ids must split");
    for id in &ids {
        put(id.clone()).await.unwrap();
    }
    remove_sink(sink);
    assert!(log.flush());

    let run = |json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_async-upload"));
        command.arg("report").arg(&path);
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let text = run(false);
    let not_enrolled = ids.len() - enrolled;
    assert!(
        text.contains(&format!(
            "sync calls by reason: not_enrolled {not_enrolled}, async_gave_up {enrolled}"
        )),
        "{text}"
    );
    // Two timed-out attempts per enrolled call: one retry and the fallback after them.
    assert!(
        text.contains(&format!(
            "{enrolled} calls had an attempt whose outcome is unknown ({} attempts",
            2 * enrolled
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "after them {enrolled} retries and {enrolled} fallbacks ran"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("site {SITE} ({} records)", ids.len() + 1)),
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let site = &json["sync_paths"]["sites"][SITE];
    assert_eq!(site["sync_reasons"]["not_enrolled"], not_enrolled);
    assert_eq!(site["sync_reasons"]["async_gave_up"], enrolled);
    assert_eq!(site["fallbacks_after_ambiguous"], enrolled);
    assert_eq!(site["ambiguous_attempts"], 2 * enrolled);
}
