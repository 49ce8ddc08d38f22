//! Running the demo (`examples/upload_demo.rs`) from a test: built with the
//! features the test needs (a test binary's own build does not build
//! examples when run alone), and its staged mode run quickly.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the demo with `features` and returns its path.
pub fn build(features: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "-q", "--example", "upload_demo"]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let status = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build the demo");
    // target/debug/deps/<this test> → target/debug/examples/upload_demo
    let deps = std::env::current_exe().unwrap();
    deps.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/upload_demo")
}

/// Runs `demo --staged --regress-at 3` with `extra` arguments, stage
/// durations of seconds (1.7 s, 3.5 s, 5.2 s; 5, 25, 100 enrolled calls)
/// and the latency criterion out of the way (a ratio of 1000: a debug
/// build's HTTP clients on a loaded machine are not what these tests judge;
/// they check the stage order and the rollback the injected 503s cause),
/// its output in `out`; the demo must exit 0. Its standard output.
pub fn run_staged(demo: &Path, extra: &[&str], out: &Path) -> String {
    let output = Command::new(demo)
        .args(["--staged", "--regress-at", "3"])
        .args(extra)
        .args(["--time-scale", "0.00002", "--samples-scale", "0.05"])
        .args(["--latency-ratio", "1000"])
        .arg("--out")
        .arg(out)
        .env_remove("ASYNC_UPLOAD_ENABLED")
        .env_remove("ASYNC_UPLOAD_ROLLOUT")
        .env_remove("ASYNC_UPLOAD_LOG")
        .env_remove("ASYNC_UPLOAD_REDIS_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the demo failed: {:?}",
        output.status
    );
    text
}

/// The index of the first line containing `text`; fails the test without one.
pub fn line_of(lines: &[&str], text: &str, output: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{output}"))
}
