//! The demo's staged rollout across processes (`upload_demo --staged
//! --replicas 3`, feature `redis`; needs `redis-server` on the PATH, which
//! `.ci/run` installs when missing): the demo starts its own redis-server
//! and three replicas; the stages are entered in order, the rollback fires
//! at the regressed stage, every replica applies every transition, every
//! file arrives intact and the demo exits 0.
//!
//! Run: `cargo test -p async-upload --features redis --test demo_fleet`

use std::path::PathBuf;
use std::process::Command;

/// Builds the demo with `redis` and returns its path.
fn demo() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-q",
            "--example",
            "upload_demo",
            "--features",
            "redis",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build the demo");
    let deps = std::env::current_exe().unwrap();
    deps.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/upload_demo")
}

fn line_of(lines: &[&str], text: &str, output: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{output}"))
}

/// The `applied by` lines right after line `at`.
fn applied_by(lines: &[&str], at: usize) -> Vec<String> {
    lines[at + 1..]
        .iter()
        .take_while(|l| l.contains("applied by"))
        .map(|l| l.split_whitespace().nth(2).unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn fleet_mode_runs_the_rollout_across_three_replicas() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(demo())
        .args(["--staged", "--replicas", "3", "--regress-at", "3"])
        .args(["--files", "300"])
        .args(["--time-scale", "0.00002", "--samples-scale", "0.05"])
        .args(["--latency-ratio", "3"])
        .arg("--out")
        .arg(out.path())
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

    let lines: Vec<&str> = text.lines().collect();
    let entered: Vec<usize> = (1..=3)
        .map(|n| line_of(&lines, &format!("stage {n} entered"), &text))
        .collect();
    assert!(
        entered.windows(2).all(|w| w[0] < w[1]),
        "stages out of order:\n{text}"
    );
    assert!(!text.contains("stage 4 entered"), "{text}");
    let rollback = line_of(&lines, "ROLLBACK latched at stage 3", &text);
    assert!(entered[2] < rollback, "{text}");
    let all = ["replica-0", "replica-1", "replica-2"];
    for at in entered.iter().copied().chain([rollback]) {
        let mut by = applied_by(&lines, at);
        by.sort();
        assert_eq!(by, all, "line {at}: not applied by every replica:\n{text}");
    }
    assert!(text.contains("max apply lag:"), "{text}");
    assert_eq!(
        text.matches("ROLLBACK latched").count(),
        1,
        "one rollback fleet-wide:\n{text}"
    );
    assert!(
        text.contains("server-side check: 300/300 files arrived intact"),
        "{text}"
    );
    assert!(text.contains("redis-server stopped"), "{text}");
    assert!(!text.contains("FAILED"), "{text}");
}
