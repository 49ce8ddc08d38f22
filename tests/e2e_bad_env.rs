//! Bad environment values at start-up: the service still uploads, on the
//! sync path, and the error is logged through `tracing`. The configuration
//! is read once per process, so the test re-runs this binary as a child
//! with the bad variables set.

mod support;

use async_upload::async_upload;
use async_upload::config::handle;
use async_upload::metrics::ExecutionType;

use async_upload_test_support::records::Records;
use support::client::{send_async, send_blocking, Endpoint, Receipt, UploadError, UploadRequest};
use support::files::write_files;
use support::server::{no_faults, Client, Server};

const CHILD: &str = "E2E_BAD_ENV_CHILD";
const TEST: &str = "bad_environment_still_uploads_on_the_sync_path";

fn blocking(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_blocking(&req)
}

#[async_upload(name = "e2e_bad_env", fallback = blocking, key = req.id.as_str(), size = req.size)]
async fn upload(req: UploadRequest) -> Result<Receipt, UploadError> {
    send_async(&req).await
}

/// In the child: the uploads, with the bad configuration in force.
async fn child() {
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let capture = Records::of("e2e_bad_env");
    let error = handle().init_error().expect("the bad value is kept");
    assert_eq!(error.variable(), "ASYNC_UPLOAD_ROLLOUT");
    assert!(!handle().config().enabled, "safe default: async disabled");

    let dir = tempfile::tempdir().unwrap();
    let files = write_files(&dir.path().join("files"), "env", 20, 1024, 256 * 1024, 1).unwrap();
    let server = Server::start(dir.path().join("store"), no_faults())
        .await
        .unwrap();
    let endpoint = Endpoint::new(server.base_url());
    for file in &files {
        let receipt = upload(file.request(&endpoint)).await.unwrap();
        assert_eq!(receipt.via, Client::Sync);
        assert!(receipt.stored);
    }
    let check = server.verify_files(&files);
    assert!(check.each_stored_once(), "{check:?}");
    let records = capture.all();
    assert_eq!(records.len(), files.len());
    assert!(records
        .iter()
        .all(|r| r.execution_type == ExecutionType::Sync && r.success));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_environment_still_uploads_on_the_sync_path() {
    if std::env::var_os(CHILD).is_some() {
        child().await;
        return;
    }
    // Nothing else runs on this runtime: waiting for the child in place is fine.
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("ASYNC_UPLOAD_ENABLED", "true")
        .env("ASYNC_UPLOAD_ROLLOUT", "150")
        .env_remove("ASYNC_UPLOAD_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}"
    );
    assert!(
        stderr.contains("ASYNC_UPLOAD_ROLLOUT") && stderr.contains("150"),
        "the error is logged through tracing:\n{stderr}"
    );
    assert!(
        stderr.contains("running with async disabled"),
        "and says what happens:\n{stderr}"
    );
}
