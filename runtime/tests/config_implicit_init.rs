//! The implicit initialisation from the environment, in fresh processes
//! (the test binary re-runs itself as a child with the variables set): a
//! file of its own, so no other test changes the environment meanwhile.
//! `ASYNC_UPLOAD_LOG` is started by the `async-upload` facade, so its
//! children call annotated functions, as a service does.

use async_upload_runtime::config::handle;
use async_upload_runtime::metrics::ExecutionType;
use async_upload_runtime::{Path, Site, SyncReason};

/// Whether this process is the child a test started.
fn is_child() -> bool {
    std::env::var_os("PREC_CHILD").is_some()
}

/// Runs the test `name` of this binary in a child process with `env` set;
/// returns its stderr after checking it passed.
fn run_child(name: &str, env: &[(&str, &str)]) -> String {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("PREC_CHILD", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}"
    );
    stderr
}

/// Bad environment values: never a panic, the error logged through
/// `tracing`, async disabled.
#[test]
fn implicit_init_with_bad_env_logs_and_runs_the_safe_path() {
    if is_child() {
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
    let stderr = run_child(
        "implicit_init_with_bad_env_logs_and_runs_the_safe_path",
        &[
            ("ASYNC_UPLOAD_ENABLED", "true"),
            ("ASYNC_UPLOAD_ROLLOUT", "abc"),
        ],
    );
    assert!(
        stderr.contains("ASYNC_UPLOAD_ROLLOUT=\"abc\" is not accepted"),
        "the error is logged through tracing:\n{stderr}"
    );
}

fn echo_blocking(i: u32) -> std::io::Result<u32> {
    Ok(i)
}

#[async_upload::async_upload(fallback = echo_blocking, key = i)]
async fn env_logged(i: u32) -> std::io::Result<u32> {
    Ok(i)
}

#[async_upload::async_upload(fallback = echo_blocking, key = i)]
async fn env_typo(i: u32) -> std::io::Result<u32> {
    Ok(i)
}

/// `ASYNC_UPLOAD_LOG` alone, with no code, sends every record to the file.
#[test]
fn async_upload_log_writes_every_record_with_no_code() {
    if is_child() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for i in 0..3_u32 {
            assert_eq!(runtime.block_on(env_logged(i)).unwrap(), i);
        }
        assert!(async_upload::log::flush());
        return;
    }
    let path = std::env::temp_dir().join(format!("au-env-log-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    run_child(
        "async_upload_log_writes_every_record_with_no_code",
        &[
            ("ASYNC_UPLOAD_LOG", path.to_str().unwrap()),
            ("ASYNC_UPLOAD_ENABLED", "true"),
            ("ASYNC_UPLOAD_ROLLOUT", "100"),
        ],
    );
    let log = async_upload::log::read_file(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    let ours: Vec<_> = log
        .uploads
        .iter()
        .filter(|r| r.site == "env_logged")
        .collect();
    assert_eq!(ours.len(), 3, "{:?}", log.uploads);
    assert!(ours
        .iter()
        .all(|r| r.success && r.execution_type == ExecutionType::Async));
}

/// A typo in `ASYNC_UPLOAD_ENABLED` sends routing to the safe default but
/// keeps the valid `ASYNC_UPLOAD_LOG`: the misconfigured run still leaves a
/// log. The error is logged once, and the site's settings once.
#[test]
fn a_routing_typo_keeps_the_valid_log_path() {
    if is_child() {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for i in 0..3_u32 {
            assert_eq!(runtime.block_on(env_typo(i)).unwrap(), i);
        }
        assert_eq!(
            handle().init_error().map(|e| e.variable()),
            Some("ASYNC_UPLOAD_ENABLED")
        );
        assert_eq!(handle().config().max_retries, 4, "valid settings are kept");
        assert!(async_upload::log::flush());
        return;
    }
    let path = std::env::temp_dir().join(format!("au-env-typo-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let stderr = run_child(
        "a_routing_typo_keeps_the_valid_log_path",
        &[
            ("ASYNC_UPLOAD_LOG", path.to_str().unwrap()),
            ("ASYNC_UPLOAD_ENABLED", "ture"),
            ("ASYNC_UPLOAD_ROLLOUT", "100"),
            ("ASYNC_UPLOAD_MAX_RETRIES", "4"),
        ],
    );
    let log = async_upload::log::read_file(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        stderr
            .matches("ASYNC_UPLOAD_ENABLED=\"ture\" is not accepted")
            .count(),
        1,
        "the error is logged once:\n{stderr}"
    );
    let settings_lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("async-upload site settings") && l.contains("env_typo"))
        .collect();
    assert_eq!(settings_lines.len(), 1, "logged once:\n{stderr}");
    assert!(
        settings_lines[0].contains("enabled=false") && settings_lines[0].contains("max_retries=4"),
        "{}",
        settings_lines[0]
    );
    let ours: Vec<_> = log
        .uploads
        .iter()
        .filter(|r| r.site == "env_typo")
        .collect();
    assert_eq!(ours.len(), 3, "{:?}", log.uploads);
    assert!(ours
        .iter()
        .all(|r| r.success && r.execution_type == ExecutionType::Sync));
}
