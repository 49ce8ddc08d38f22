//! Properties of the bucketing that users rely on: stable, exact at 0 % and
//! 100 %, monotone as the rollout rises, uniform, and the same through a
//! site as by the formula.

use async_upload_test_support::records as support;

use async_upload_runtime::rollout::{bucket, Rollout, RolloutKey, BUCKETS};
use async_upload_runtime::Site;

fn keys(n: usize) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("file-{i}"))
}

#[test]
fn the_same_key_always_gets_the_same_bucket() {
    for key in keys(1000) {
        let first = bucket("upload", key.as_bytes());
        assert_eq!(first, bucket("upload", key.as_bytes()));
        assert!(first < BUCKETS);
    }
}

#[test]
fn zero_percent_enrols_nobody_and_hundred_everybody() {
    for key in keys(20_000) {
        let b = bucket("upload", key.as_bytes());
        assert!(!Rollout::NONE.enrolls(b));
        assert!(Rollout::ALL.enrolls(b));
    }
}

#[test]
fn raising_the_percentage_never_drops_an_enrolled_key() {
    let steps: Vec<Rollout> = [0.0, 0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 99.99, 100.0]
        .iter()
        .map(|p| Rollout::from_percent(*p).unwrap())
        .collect();
    for key in keys(20_000) {
        let b = bucket("upload", key.as_bytes());
        for (i, lower) in steps.iter().enumerate() {
            for higher in &steps[i..] {
                assert!(
                    !lower.enrolls(b) || higher.enrolls(b),
                    "{key} dropped going {lower} → {higher}"
                );
            }
        }
    }
}

#[test]
fn buckets_are_uniform_chi_square_over_200k_keys() {
    const N: usize = 200_000;
    let mut counts = vec![0_u64; usize::from(BUCKETS)];
    for key in keys(N) {
        counts[usize::from(bucket("upload", key.as_bytes()))] += 1;
    }
    let expected = N as f64 / f64::from(BUCKETS);
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // 9,999 degrees of freedom: mean 9,999, sd ≈ 141.4; the 99.9th
    // percentile is ≈ 10,442. The hash is deterministic, so this cannot flake.
    assert!(
        chi2 < 10_442.0,
        "chi-square {chi2:.1} says the buckets are not uniform"
    );
    // And on coarse bins, where a skew of a few percent would show clearly.
    let mut coarse = [0_u64; 100];
    for (i, c) in counts.iter().enumerate() {
        coarse[i / 100] += c;
    }
    let chi2_coarse: f64 = coarse
        .iter()
        .map(|&c| (c as f64 - 2000.0).powi(2) / 2000.0)
        .sum();
    assert!(
        chi2_coarse < 148.2,
        "coarse chi-square {chi2_coarse:.1} (99 dof, p = 0.001 at 148.2)"
    );
}

#[test]
fn a_site_routes_keys_exactly_as_the_formula_predicts() {
    static SITE: Site = Site::new("props_routing");
    support::enable_async();
    support::roll_out(SITE.name(), 37.5);
    let mut enrolled = 0;
    for key in keys(10_000) {
        let predicted = bucket("props_routing", key.as_bytes()) < 3750;
        assert_eq!(SITE.call(&key).runs_async(), predicted, "{key}");
        enrolled += usize::from(predicted);
    }
    assert!(
        (3_500..4_000).contains(&enrolled),
        "{enrolled} of 10,000 enrolled at 37.5 %"
    );
}

#[test]
fn salts_give_independent_rollouts_and_empty_salt_hashes_the_key_alone() {
    static SALTED: Site = Site::new("props_salted").with_salt("shared");
    static UNSALTED: Site = Site::new("props_unsalted").with_salt("");
    assert_eq!(SALTED.bucket(&"file-1"), bucket("shared", b"file-1"));
    assert_eq!(UNSALTED.bucket(&"42"), 5174);
    assert_eq!(UNSALTED.bucket(&42_u64), 5174);
    let same = keys(1000)
        .filter(|k| bucket("a", k.as_bytes()) < 5000 && bucket("b", k.as_bytes()) < 5000)
        .count();
    assert!(
        (150..350).contains(&same),
        "two salts at 50 % share {same} of 1000 keys, not ~250"
    );
    assert_eq!(
        "x".to_string().with_key_bytes(<[u8]>::to_vec),
        b"x".to_vec()
    );
}
