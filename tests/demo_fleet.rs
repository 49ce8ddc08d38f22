//! The demo's staged rollout across processes (`upload_demo --staged
//! --replicas 3`, feature `redis`; needs `redis-server` on the PATH, which
//! `.ci/run` installs when missing): the demo starts its own redis-server
//! and three replicas; the stages are entered in order, the rollback fires
//! at the regressed stage, every replica applies every transition, every
//! file arrives intact and the demo exits 0.
//!
//! Run: `cargo test -p async-upload --features redis --test demo_fleet`

#[path = "support/demo.rs"]
mod demo;

use demo::line_of;

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
    let text = demo::run_staged(
        &demo::build(&["redis"]),
        &["--replicas", "3", "--files", "300"],
        out.path(),
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
