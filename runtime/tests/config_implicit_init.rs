//! The implicit initialisation with bad environment values, in a fresh
//! process: a file of its own, so no other test changes the environment
//! while this one spawns the child.

use async_upload_runtime::config::handle;
use async_upload_runtime::{Path, Site, SyncReason};

/// The implicit initialisation with bad environment values: never a panic,
/// the error logged through `tracing`, async disabled. It needs a fresh
/// process, so the test re-runs this binary with the variables set.
#[test]
fn implicit_init_with_bad_env_logs_and_runs_the_safe_path() {
    if std::env::var_os("PREC_CHILD").is_some() {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        static CHILD: Site = Site::new("prec_child");
        let call = CHILD.call(&"k");
        assert_eq!(call.path(), Path::Sync(SyncReason::Disabled));
        let err = handle().init_error().expect("the bad value is kept");
        assert_eq!(err.variable(), "ASYNC_UPLOAD_ROLLOUT");
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "implicit_init_with_bad_env_logs_and_runs_the_safe_path",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PREC_CHILD", "1")
        .env("ASYNC_UPLOAD_ENABLED", "true")
        .env("ASYNC_UPLOAD_ROLLOUT", "abc")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}"
    );
    assert!(
        stderr.contains("ASYNC_UPLOAD_ROLLOUT=\"abc\" is not accepted"),
        "the error is logged through tracing:\n{stderr}"
    );
}
