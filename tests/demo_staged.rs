//! The demo's staged rollout, live (`upload_demo --staged`), run quickly:
//! stage durations scaled to seconds, a regression at stage 3. The stages
//! are entered in order, the rollback fires at the regressed stage, every
//! file arrives intact and the demo exits 0.
//!
//! Run: `cargo test -p async-upload --test demo_staged`

#[path = "support/demo.rs"]
mod demo;

use demo::line_of;

#[test]
fn staged_mode_advances_in_order_and_rolls_back_at_the_regressed_stage() {
    let out = tempfile::tempdir().unwrap();
    let text = demo::run_staged(&demo::build(&[]), &["--files", "200"], out.path());

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
