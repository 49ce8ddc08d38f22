//! End to end: rollout 0 %, 100 % and 50 % route each request as the
//! bucketing formula predicts (`md5(site:key) % 10000 < percent * 100`),
//! checked by which client the loopback server saw.

mod support;

use std::collections::BTreeSet;

use async_upload::async_upload;
use async_upload::metrics::ExecutionType;
use async_upload::rollout::bucket;

use async_upload_test_support::records::{enable_site_at, Records};
use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::files::{write_files, TestFile};
use support::server::{no_faults, Client, Server};

fn blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

#[async_upload(name = "e2e_route_0", fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_0(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[async_upload(name = "e2e_route_100", fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_100(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

#[async_upload(name = "e2e_route_50", fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload_50(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// The ids the formula enrols at `percent` for `site`.
fn predicted(site: &str, files: &[TestFile], percent: f64) -> BTreeSet<String> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let threshold = (percent * 100.0).round() as u16;
    files
        .iter()
        .filter(|f| bucket(site, f.id.as_bytes()) < threshold)
        .map(|f| f.id.clone())
        .collect()
}

async fn route(site: &'static str, percent: f64) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(&dir.path().join("files"), site, 120, 1024, 16 * 1024, 7).unwrap();
    let server = Server::start(dir.path().join("store"), no_faults())
        .await
        .unwrap();
    let endpoint = Endpoint::new(server.base_url());
    enable_site_at(site, percent);
    let capture = Records::of(site);

    let mut via_async = BTreeSet::new();
    for file in &files {
        let request = file.request(&endpoint);
        let receipt = match site {
            "e2e_route_0" => upload_0(request).await,
            "e2e_route_100" => upload_100(request).await,
            _ => upload_50(request).await,
        }
        .unwrap();
        assert!(receipt.stored, "{} stored on its only upload", file.id);
        if receipt.via == Client::Async {
            via_async.insert(file.id.clone());
        }
        // The server saw exactly one request, from the client the formula picks.
        let (a, s) = (
            server.attempts(&file.id, Client::Async),
            server.attempts(&file.id, Client::Sync),
        );
        assert_eq!(a + s, 1, "{}: {a} async + {s} sync requests", file.id);
    }

    let expected = predicted(site, &files, percent);
    assert_eq!(via_async, expected, "{site}: async set = formula's set");
    let records = capture.all();
    assert_eq!(records.len(), files.len());
    let async_records = records
        .iter()
        .filter(|r| r.execution_type == ExecutionType::Async)
        .count();
    assert_eq!(async_records, expected.len());
    assert!(records.iter().all(|r| r.success && r.attempts <= 1));
    let check = server.verify_files(&files);
    assert!(check.each_stored_once(), "{check:?}");
    (expected.len(), files.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_0_routes_everything_to_sync() {
    let (enrolled, _) = route("e2e_route_0", 0.0).await;
    assert_eq!(enrolled, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_100_routes_everything_to_async() {
    let (enrolled, total) = route("e2e_route_100", 100.0).await;
    assert_eq!(enrolled, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_50_routes_by_bucket() {
    let (enrolled, total) = route("e2e_route_50", 50.0).await;
    // 120 keys: a fair split, neither empty nor everything.
    assert!(
        enrolled > total / 4 && enrolled < total * 3 / 4,
        "{enrolled}/{total}"
    );
}
