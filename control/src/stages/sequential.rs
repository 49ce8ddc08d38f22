//! The rate triggers' sequential test, [`RateTest`]: "the true rate of
//! bad calls is above `limit`" decided by likelihood ratios of Bernoulli
//! outcomes, which stay valid however often they are looked at (Ville's
//! inequality):
//!
//! 1. a *mixture SPRT* from the stage's start (Wald's sequential
//!    probability ratio test against [`ARMS`] alternatives, averaged, with
//!    no acceptance boundary): it fires once the data since the stage
//!    started show the excess at the stated confidence;
//! 2. *Page's CUSUM* of the same ratios, one per alternative: the SPRT
//!    restarted each time its evidence falls back to zero, so a regression
//!    that begins after a long healthy run is caught as fast as one
//!    present from the start.
//!
//! The error budget `α = 1 − confidence` is split evenly between the two,
//! and the CUSUM's half is shared (Bonferroni) among its alternatives and
//! [`LOOKS_PER_STAGE`] possible restarts: under any true rate at or below
//! `limit` the probability of firing during a stage is at most `α`.
//!
//! **Like with like.** Each look may carry an *allowance*: the failure rate
//! of the old path in the same look, when it is failing too (a shared
//! backend). The look's null is then `limit + allowance`, so the test fires
//! on the new path's *excess* over the old one. An allowance that is fixed
//! before the look's new-path outcomes are counted keeps the test valid
//! (each step's likelihood ratio has expectation at most 1 under the null).
//! Allowances are multiples of `1 / ALLOWANCE_STEPS`, and the test keeps
//! its calls per allowance, so the evidence it fired on can be shown
//! exactly: the calls it rests on, and the confidence bound on the excess
//! that the test itself implies (the threshold lies outside it by
//! construction).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::judge::{or_infinity, Confidence};
use super::stage::secs;

/// How many alternatives each rate test weighs: the excess rate it is most
/// sensitive to is `limit × 1.5`, `× 2.5` and `× 5` (capped below 1).
pub(crate) const ARMS: usize = 3;

const ARM_FACTORS: [f64; ARMS] = [1.5, 2.5, 5.0];

/// The restarts the CUSUM's error budget covers: a stage of 24 hours
/// looked at every 30 seconds. A stage longer than that, or looked at more
/// often, spends its budget proportionally faster.
pub(crate) const LOOKS_PER_STAGE: u64 = 2880;

/// A look's allowance is a whole number of these steps of the failure rate
/// (rounded up: never less than the old path's failures warrant).
pub(crate) const ALLOWANCE_STEPS: u32 = 32;

const LEVELS: usize = ALLOWANCE_STEPS as usize + 1;

/// The smallest and largest null a test takes: a limit of 0 (or 1) means
/// "any bad call is too many" (or "none is"), which this approximates
/// without dividing by zero.
const TIGHTEST: f64 = 1e-6;

/// The bad-call rate allowance `level` stands for.
fn allowance(level: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)] // level ≤ 32
    let level = level as f64;
    level / f64::from(ALLOWANCE_STEPS)
}

/// The allowance level of a bad-call rate: rounded up to a step.
pub(crate) fn allowance_level(rate: f64) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..=32
    let level = (rate.clamp(0.0, 1.0) * f64::from(ALLOWANCE_STEPS)).ceil() as usize;
    level
}

/// The null of a look at allowance `level`.
fn null(limit: f64, level: usize) -> f64 {
    (limit + allowance(level)).clamp(TIGHTEST, 1.0 - TIGHTEST)
}

/// Log-likelihood ratios of a bad and of a good call against `null`, for
/// the alternative `null × factor` (capped halfway to 1 so a high null
/// still has an alternative above it).
fn steps(null: f64, factor: f64) -> (f64, f64) {
    let alternative = (null * factor).min(f64::midpoint(1.0, null));
    (
        (alternative / null).ln(),
        ((1.0 - alternative) / (1.0 - null)).ln(),
    )
}

/// Calls and bad calls per allowance level: the sufficient statistics of
/// the test's likelihood ratios over a span of looks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tally([(u64, u64); LEVELS]);

impl Tally {
    const EMPTY: Tally = Tally([(0, 0); LEVELS]);

    fn add(&mut self, level: usize, bad: u64, calls: u64) {
        let slot = &mut self.0[level];
        slot.0 += calls;
        slot.1 += bad;
    }

    fn clear(&mut self) {
        *self = Tally::EMPTY;
    }

    /// `(calls, bad)` over every level.
    fn totals(&self) -> (u64, u64) {
        self.0
            .iter()
            .fold((0, 0), |(calls, bad), &(c, b)| (calls + c, bad + b))
    }

    /// The allowance of the calls, averaged over them.
    #[allow(clippy::cast_precision_loss)]
    fn allowance(&self) -> f64 {
        let (calls, _) = self.totals();
        if calls == 0 {
            return 0.0;
        }
        let weighted: f64 = self
            .0
            .iter()
            .enumerate()
            .map(|(level, &(c, _))| c as f64 * allowance(level))
            .sum();
        weighted / calls as f64
    }

    /// The log-likelihood ratio of these calls for one alternative, with
    /// every null moved up by `excess` over its allowance.
    #[allow(clippy::cast_precision_loss)]
    fn log_ratio(&self, excess: f64, factor: f64) -> f64 {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, &(calls, _))| calls > 0)
            .map(|(level, &(calls, bad))| {
                let (on_bad, on_good) = steps(null(excess, level), factor);
                bad as f64 * on_bad + (calls - bad) as f64 * on_good
            })
            .sum()
    }
}

/// `ln(mean(exp(x)))` without overflow: the mixture of the alternatives.
#[allow(clippy::cast_precision_loss)]
fn log_mean_exp(values: [f64; ARMS]) -> f64 {
    let top = values.iter().copied().fold(f64::MIN, f64::max);
    let sum: f64 = values.iter().map(|s| (s - top).exp()).sum();
    top + (sum / ARMS as f64).ln()
}

/// The largest excess at which `statistic` still reaches `threshold`
/// (`statistic` decreases with the excess): the test's own lower
/// confidence bound. At least `limit`, where the test fired.
fn lowest_excess(limit: f64, threshold: f64, statistic: impl Fn(f64) -> f64) -> f64 {
    let (mut low, mut high) = (limit, 1.0);
    for _ in 0..60 {
        let mid = f64::midpoint(low, high);
        if statistic(mid) >= threshold {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// A one-sided sequential test of "the true rate of bad calls is above
/// `limit`" (plus each look's allowance), fed the calls of each look as
/// they come ([`RateTest::observe`]).
///
/// ```
/// use async_upload::stages::{Confidence, RateTest};
///
/// // The async success rate must stay at least 95 %: a failure is "bad".
/// let mut test = RateTest::new(0.05, Confidence::DEFAULT).unwrap();
/// test.observe(3, 40); // 3 failures in 40 calls: 92.5 %, but no evidence
/// assert!(!test.evidence().fired());
/// for _ in 0..10 {
///     test.observe(10, 100); // a sustained 10 % failure rate
/// }
/// let evidence = test.evidence();
/// assert!(evidence.fired());
/// // The bound the test implies on the bad-call rate lies past the limit.
/// assert!(evidence.bound.unwrap() >= 0.05);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RateTest {
    limit: f64,
    /// Per alternative: log-likelihood ratio since the stage started.
    since_start: [f64; ARMS],
    /// Per alternative: Page's CUSUM.
    cusum: [f64; ARMS],
    /// The calls since the stage started, per allowance.
    start: Box<Tally>,
    /// Per alternative: the calls since its CUSUM last restarted.
    segments: Box<[Tally; ARMS]>,
    /// Per alternative: when its segment began (the look before its first).
    segment_from: [Duration; ARMS],
    /// Time of the last look since the stage started.
    last_look: Duration,
    start_threshold: f64,
    cusum_threshold: f64,
    /// The confidence bound of the last look that had calls, while fired
    /// (found by bisection: once per look with data, not per reading).
    bound: Option<f64>,
}

impl RateTest {
    /// A test that the true bad-call rate exceeds `limit` (in `(0, 1)`),
    /// firing at `confidence`.
    ///
    /// # Errors
    ///
    /// `limit` is not in `(0, 1)`.
    #[allow(clippy::cast_precision_loss)]
    pub fn new(limit: f64, confidence: Confidence) -> Result<Self, LimitError> {
        if !(limit > 0.0 && limit < 1.0) {
            return Err(LimitError(limit));
        }
        let half = confidence.alpha() / 2.0;
        Ok(RateTest {
            limit,
            since_start: [0.0; ARMS],
            cusum: [0.0; ARMS],
            start: Box::new(Tally::EMPTY),
            segments: Box::new([Tally::EMPTY, Tally::EMPTY, Tally::EMPTY]),
            segment_from: [Duration::ZERO; ARMS],
            last_look: Duration::ZERO,
            start_threshold: (1.0 / half).ln(),
            cusum_threshold: (ARMS as f64 * LOOKS_PER_STAGE as f64 / half).ln(),
            bound: None,
        })
    }

    /// Adds one look's calls: `bad` of `calls` were bad (`bad` is capped at
    /// `calls`), with no allowance.
    pub fn observe(&mut self, bad: u64, calls: u64) {
        let at = self.last_look;
        self.look(bad, calls, 0, at);
    }

    /// Adds the look at `at` (time since the stage started): `bad` of
    /// `calls` were bad, each allowed `level / ALLOWANCE_STEPS` of bad calls
    /// on top of the limit.
    pub(crate) fn look(&mut self, bad: u64, calls: u64, level: usize, at: Duration) {
        let level = level.min(LEVELS - 1);
        let bad = bad.min(calls);
        let previous = std::mem::replace(&mut self.last_look, at);
        if calls == 0 {
            return;
        }
        let good = calls - bad;
        let null = null(self.limit, level);
        #[allow(clippy::cast_precision_loss)]
        for (arm, factor) in ARM_FACTORS.iter().enumerate() {
            let (on_bad, on_good) = steps(null, *factor);
            let step = bad as f64 * on_bad + good as f64 * on_good;
            self.since_start[arm] += step;
            let before = self.cusum[arm];
            self.cusum[arm] = (before + step).max(0.0);
            if self.cusum[arm] == 0.0 {
                self.segments[arm].clear();
            } else {
                if before == 0.0 {
                    self.segment_from[arm] = previous;
                }
                self.segments[arm].add(level, bad, calls);
            }
        }
        self.start.add(level, bad, calls);
        self.bound = self.find_bound();
    }

    /// The largest CUSUM statistic and its alternative.
    fn recent(&self) -> (usize, f64) {
        let mut best = (0, 0.0);
        for (arm, &value) in self.cusum.iter().enumerate() {
            if value > best.1 {
                best = (arm, value);
            }
        }
        best
    }

    /// The test's own lower confidence bound on the excess, when it fired.
    fn find_bound(&self) -> Option<f64> {
        if log_mean_exp(self.since_start) >= self.start_threshold {
            Some(lowest_excess(self.limit, self.start_threshold, |excess| {
                log_mean_exp(ARM_FACTORS.map(|f| self.start.log_ratio(excess, f)))
            }))
        } else if self.recent().1 >= self.cusum_threshold {
            Some(lowest_excess(self.limit, self.cusum_threshold, |excess| {
                (0..ARMS)
                    .map(|a| self.segments[a].log_ratio(excess, ARM_FACTORS[a]))
                    .fold(f64::MIN, f64::max)
            }))
        } else {
            None
        }
    }

    /// The evidence now.
    #[must_use]
    pub fn evidence(&self) -> Evidence {
        // A mixture of martingales is a martingale.
        let since_start = log_mean_exp(self.since_start);
        let (arm, recent) = self.recent();
        let from_start = since_start >= self.start_threshold;
        let from_restart = recent >= self.cusum_threshold;
        // What decided: the calls since the start when that test fired (or
        // when neither did), else the CUSUM's segment.
        let (window, tally, span) = if from_start || !from_restart {
            (EvidenceWindow::SinceStart, &*self.start, self.last_look)
        } else {
            (
                EvidenceWindow::SinceRestart,
                &self.segments[arm],
                self.last_look.saturating_sub(self.segment_from[arm]),
            )
        };
        let bound = self.bound;
        let (calls, bad) = self.start.totals();
        let (window_calls, window_bad) = tally.totals();
        Evidence {
            method: RateMethod::Sequential,
            limit: self.limit,
            calls,
            bad,
            since_start,
            start_threshold: self.start_threshold,
            recent,
            recent_threshold: self.cusum_threshold,
            window,
            window_calls,
            window_bad,
            window_span: span,
            allowance: tally.allowance(),
            bound,
        }
    }
}

/// A rate limit outside `(0, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitError(pub f64);

impl core::fmt::Display for LimitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "rate limit {} is not accepted: give a fraction strictly between 0 and 1, e.g. 0.05",
            self.0
        )
    }
}

impl std::error::Error for LimitError {}

/// Which test an [`Evidence`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateMethod {
    /// The controller's [`RateTest`], valid under a look every tick.
    Sequential,
    /// One look at a finished window ([`Evidence::one_look`]): the exact
    /// binomial test, `since_start` holding `ln(1 / p-value)`.
    Binomial,
}

/// Which calls an [`Evidence`]'s decision rests on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EvidenceWindow {
    /// Every call since the stage started (the mixture SPRT; also when
    /// nothing fired).
    #[default]
    SinceStart,
    /// The calls since the CUSUM last restarted: the recent run of bad
    /// luck or of a regression.
    SinceRestart,
}

/// What a rate test shows at one look: log-likelihood ratios against
/// their thresholds, and the calls the decision rests on, so a verdict can
/// be replayed from the log and its reason shows what decided it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Evidence {
    /// The test.
    pub method: RateMethod,
    /// The bad-call rate tested against (before any allowance).
    pub limit: f64,
    /// Calls seen since the stage started.
    pub calls: u64,
    /// Bad calls among them.
    pub bad: u64,
    /// Log-likelihood ratio (mixture SPRT) since the stage started.
    #[serde(deserialize_with = "or_infinity")]
    pub since_start: f64,
    /// Its threshold: `ln(2 / α)`.
    #[serde(deserialize_with = "or_infinity")]
    pub start_threshold: f64,
    /// The largest CUSUM statistic (evidence since its last restart).
    #[serde(deserialize_with = "or_infinity")]
    pub recent: f64,
    /// Its threshold: `ln(2 × ARMS × LOOKS_PER_STAGE / α)`.
    #[serde(deserialize_with = "or_infinity")]
    pub recent_threshold: f64,
    /// The calls the decision rests on (absent in older logs: since start).
    #[serde(default)]
    pub window: EvidenceWindow,
    /// How many calls that is (the count a minimum of calls applies to).
    #[serde(default)]
    pub window_calls: u64,
    /// Bad calls among them.
    #[serde(default)]
    pub window_bad: u64,
    /// The time they span.
    #[serde(default, rename = "window_s", with = "secs")]
    pub window_span: Duration,
    /// The bad-call rate allowed on top of `limit` for those calls,
    /// averaged: the old path's own failure rate in the same looks while it
    /// was failing too, else 0.
    #[serde(default)]
    pub allowance: f64,
    /// When the test fired: the lowest excess of the bad-call rate over
    /// `allowance` that the data still show at the test's confidence (at
    /// least `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
}

impl Evidence {
    /// The evidence of one look at a finished window of `calls` calls,
    /// `bad` of them bad (a log judged once, where the sequential test would
    /// pay for looks that never happened): the exact one-sided binomial
    /// test of "the true rate is at most `limit`" at `confidence`. A `limit`
    /// outside `(0, 1)` never fires.
    ///
    /// ```
    /// use async_upload::stages::{Confidence, Evidence};
    ///
    /// // 30 failures in 300 calls: P(≥ 30 | 5 %) ≈ 0.0003.
    /// assert!(Evidence::one_look(30, 300, 0.05, Confidence::DEFAULT).fired());
    /// assert!(!Evidence::one_look(3, 40, 0.05, Confidence::DEFAULT).fired());
    /// ```
    #[must_use]
    pub fn one_look(bad: u64, calls: u64, limit: f64, confidence: Confidence) -> Self {
        let bad = bad.min(calls);
        let valid = limit > 0.0 && limit < 1.0;
        let p_value = if valid {
            binomial_upper_tail(bad, calls, limit)
        } else {
            1.0
        };
        let threshold = -confidence.alpha().ln();
        let since_start = -p_value.ln();
        let bound = (valid && since_start >= threshold).then(|| {
            lowest_excess(limit, threshold, |rate| {
                -binomial_upper_tail(bad, calls, rate.min(1.0 - TIGHTEST)).ln()
            })
        });
        Evidence {
            method: RateMethod::Binomial,
            limit,
            calls,
            bad,
            since_start,
            start_threshold: threshold,
            recent: 0.0,
            recent_threshold: f64::INFINITY,
            window: EvidenceWindow::SinceStart,
            window_calls: calls,
            window_bad: bad,
            window_span: Duration::ZERO,
            allowance: 0.0,
            bound,
        }
    }

    /// Whether the data show, at the test's confidence, that the true rate
    /// is above the limit.
    #[must_use]
    pub fn fired(&self) -> bool {
        self.since_start >= self.start_threshold || self.recent >= self.recent_threshold
    }

    /// The bad-call rate of the calls the decision rests on.
    #[must_use]
    pub fn window_rate(&self) -> Option<f64> {
        super::health::rate(self.window_bad, self.window_calls)
    }
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, `0 < p < 1`, summed in log space
/// from term `k` upward (each term from the previous by their ratio).
#[allow(clippy::cast_precision_loss)]
fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let (nf, kf) = (n as f64, k as f64);
    let ln_choose: f64 = (1..=k)
        .map(|i| ((nf - kf + i as f64) / i as f64).ln())
        .sum();
    let mut ln_term = ln_choose + kf * p.ln() + (nf - kf) * (1.0 - p).ln();
    let odds = p / (1.0 - p);
    let mut total = 0.0;
    for j in k..=n {
        let term = ln_term.exp();
        total += term;
        if term < total * 1e-17 && (j as f64) > nf * p {
            break;
        }
        let jf = j as f64;
        ln_term += ((nf - jf) / (jf + 1.0) * odds).ln();
    }
    total.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(limit: f64, looks: &[(u64, u64)]) -> Evidence {
        let mut test = RateTest::new(limit, Confidence::DEFAULT).unwrap();
        for &(bad, calls) in looks {
            test.observe(bad, calls);
        }
        test.evidence()
    }

    #[test]
    fn bad_limits_are_refused_with_what_is_accepted() {
        for limit in [0.0, 1.0, -0.1, f64::NAN] {
            let error = RateTest::new(limit, Confidence::DEFAULT).unwrap_err();
            assert!(error.to_string().contains("between 0 and 1"), "{error}");
        }
    }

    #[test]
    fn a_handful_of_failures_in_a_few_dozen_calls_is_not_evidence() {
        for (bad, calls) in [(2, 20), (3, 40), (4, 40), (5, 60)] {
            let evidence = fed(0.05, &[(bad, calls)]);
            assert!(!evidence.fired(), "{bad}/{calls}: {evidence:?}");
        }
        // Nor when the same calls arrive one look at a time.
        let evidence = fed(0.05, &[(1, 10), (1, 10), (1, 10), (0, 10)]);
        assert!(!evidence.fired(), "{evidence:?}");
    }

    #[test]
    fn a_sustained_ten_percent_failure_rate_over_hundreds_of_calls_is() {
        let looks = vec![(5, 50); 10]; // 500 calls, 10 % bad, 50 per look
        let evidence = fed(0.05, &looks);
        assert!(evidence.fired(), "{evidence:?}");
        // ... and a gross breach needs few calls.
        assert!(fed(0.05, &[(20, 50)]).fired());
    }

    #[test]
    fn exact_values_for_a_small_case() {
        // One bad call of one: each arm's log ratio is ln(alternative / limit).
        let evidence = fed(0.05, &[(1, 1)]);
        let arms = [0.075_f64, 0.125, 0.25].map(|a| a / 0.05);
        let mixture = (arms.iter().sum::<f64>() / 3.0).ln();
        assert!(
            (evidence.since_start - mixture).abs() < 1e-12,
            "{evidence:?}"
        );
        assert!((evidence.recent - 5.0_f64.ln()).abs() < 1e-12);
        assert!((evidence.start_threshold - 200.0_f64.ln()).abs() < 1e-12);
        assert!((evidence.recent_threshold - (3.0 * 2880.0 * 200.0_f64).ln()).abs() < 1e-9);
        assert_eq!((evidence.calls, evidence.bad), (1, 1));
    }

    #[test]
    fn more_bad_calls_never_weaken_the_evidence() {
        let mut last = fed(0.05, &[(0, 200)]);
        for bad in 1..=200 {
            let now = fed(0.05, &[(bad, 200)]);
            assert!(now.since_start > last.since_start, "{bad}");
            assert!(now.recent >= last.recent, "{bad}");
            last = now;
        }
        // More calls at the same excess rate strengthen it.
        let mut last = fed(0.05, &[(2, 10)]);
        for n in 2..50 {
            let now = fed(0.05, &[(2 * n, 10 * n)]);
            assert!(now.since_start > last.since_start, "{n}");
            last = now;
        }
    }

    #[test]
    fn good_calls_reset_the_cusum_but_a_new_regression_is_still_caught() {
        // A day of healthy traffic buries the since-start ratio ...
        let mut looks = vec![(0, 100); 2880];
        let healthy = fed(0.05, &looks);
        assert!(healthy.since_start < -1000.0 && healthy.recent == 0.0);
        // ... and the CUSUM still catches 20 % failures within a few looks.
        looks.extend([(20, 100); 3]);
        assert!(fed(0.05, &looks).fired());
    }

    #[test]
    fn a_rate_at_the_limit_fires_rarely() {
        // Deterministic worst case of the null: exactly 5 % bad, forever.
        let looks = vec![(5, 100); 2880];
        let evidence = fed(0.05, &looks);
        assert!(!evidence.fired(), "{evidence:?}");
        assert!(evidence.since_start < 0.0);
    }

    #[test]
    fn binomial_tail_known_values() {
        assert!((binomial_upper_tail(1, 1, 0.05) - 0.05).abs() < 1e-15);
        assert!((binomial_upper_tail(2, 3, 0.5) - 0.5).abs() < 1e-15);
        // 1 - P(X <= 2) for n = 40, p = 0.05.
        let le2 = 0.95_f64.powi(40)
            + 40.0 * 0.05 * 0.95_f64.powi(39)
            + 780.0 * 0.0025 * 0.95_f64.powi(38);
        assert!((binomial_upper_tail(3, 40, 0.05) - (1.0 - le2)).abs() < 1e-12);
        assert!((binomial_upper_tail(0, 10, 0.3) - 1.0).abs() < f64::EPSILON);
        assert!(binomial_upper_tail(11, 10, 0.3).abs() < f64::EPSILON);
        // Monotone in k.
        let tails: Vec<f64> = (0..=300)
            .map(|k| binomial_upper_tail(k, 300, 0.05))
            .collect();
        assert!(tails.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn one_look_is_the_exact_test() {
        let c = Confidence::DEFAULT;
        // 10 % over a few hundred calls is clear at 99 %; 6 in 100 is not.
        assert!(Evidence::one_look(20, 200, 0.05, c).fired());
        assert!(!Evidence::one_look(6, 100, 0.05, c).fired());
        assert!(!Evidence::one_look(3, 40, 0.05, c).fired());
        assert!(!Evidence::one_look(5, 5, 0.0, c).fired());
        let evidence = Evidence::one_look(1, 1, 0.05, c);
        assert!((evidence.since_start - 20.0_f64.ln()).abs() < 1e-12);
        assert_eq!(evidence.method, RateMethod::Binomial);
    }
}
