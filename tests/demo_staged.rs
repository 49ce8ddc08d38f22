//! The demo's staged rollout, live (`upload_demo --staged`), run quickly:
//! stage durations scaled to seconds, a regression at stage 3. The stages
//! are entered in order, the rollback fires at the regressed stage, every
//! file arrives intact and the demo exits 0.
//!
//! Run: `cargo test -p async-upload --test demo_staged`

use std::path::PathBuf;
use std::process::Command;

/// Builds the demo (the test binary's own build does not build examples
/// when run alone) and returns its path.
fn demo() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "--example", "upload_demo"])
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

/// The line index of the first line containing `text`; fails the test without one.
fn line_of(lines: &[&str], text: &str, output: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{output}"))
}

#[test]
fn staged_mode_advances_in_order_and_rolls_back_at_the_regressed_stage() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(demo())
        .args(["--staged", "--regress-at", "3", "--files", "200"])
        // Stage durations 1.7 s, 3.5 s, 5.2 s; 5, 25, 100 enrolled calls; a
        // debug build's HTTP clients are not what the latency criterion judges.
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
    let timeline = line_of(&lines, "timeline (t = time since", &text);
    let entered: Vec<usize> = (1..=3)
        .map(|n| line_of(&lines, &format!("stage {n} entered"), &text))
        .collect();
    assert!(timeline < entered[0], "{text}");
    assert!(
        entered.windows(2).all(|w| w[0] < w[1]),
        "stages out of order:\n{text}"
    );
    assert!(
        !text.contains("stage 4 entered"),
        "the rollout went past the regressed stage:\n{text}"
    );
    let regression = line_of(&lines, "regression injected at stage 3", &text);
    let rollback = line_of(&lines, "ROLLBACK latched (stage 3:", &text);
    assert!(entered[2] < regression && regression < rollback, "{text}");
    assert!(
        lines[rollback + 1].contains("applied by replica 0"),
        "the rollback's apply time:\n{text}"
    );
    assert!(text.contains("staged: rolled back at stage 3"), "{text}");
    assert!(
        text.contains("server-side check: 200/200 files arrived intact"),
        "{text}"
    );
    assert!(!text.contains("FAILED"), "{text}");
}
