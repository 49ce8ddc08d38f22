//! The judge's statistics: pure functions and small state, no clock, no I/O.
//!
//! - **Rate triggers** ([`RateTest`]): "the true rate of bad calls is above
//!   `limit`" is decided by likelihood ratios of Bernoulli outcomes, which
//!   stay valid however often they are looked at (Ville's inequality):
//!   1. a *mixture SPRT* from the stage's start (Wald's sequential
//!      probability ratio test against [`ARMS`] alternatives, averaged, with
//!      no acceptance boundary): it fires once the data since the stage
//!      started show the excess at the stated confidence;
//!   2. *Page's CUSUM* of the same ratios, one per alternative: the SPRT
//!      restarted each time its evidence falls back to zero, so a
//!      regression that begins after a long healthy run is caught as fast
//!      as one present from the start.
//!
//!   The error budget `α = 1 − confidence` is split evenly between the two,
//!   and the CUSUM's half is shared (Bonferroni) among its alternatives and
//!   [`LOOKS_PER_STAGE`] possible restarts: under any true rate at or below
//!   `limit` the probability of firing during a stage is at most `α`.
//! - **Latency** ([`quantile_ratio`]): a distribution-free interval for a
//!   quantile of each histogram (order statistics, read on the bucket
//!   edges so the bucket width only widens it), combined into an interval
//!   for the ratio async / sync of that quantile.
//! - **Intervals for the report** ([`rate_interval`]): the Wilson score
//!   interval of a rate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::metrics::Histogram;

/// How many alternatives each rate test weighs: the excess rate it is most
/// sensitive to is `limit × 1.5`, `× 2.5` and `× 5` (capped below 1).
pub(crate) const ARMS: usize = 3;

const ARM_FACTORS: [f64; ARMS] = [1.5, 2.5, 5.0];

/// The restarts the CUSUM's error budget covers: a stage of 24 hours
/// looked at every 30 seconds. A stage longer than that, or looked at more
/// often, spends its budget proportionally faster.
pub(crate) const LOOKS_PER_STAGE: u64 = 2880;

/// A confidence level, e.g. 99 %: the probability that a rate trigger does
/// *not* fire during a stage when the true rate is within its limit, and
/// the coverage of the intervals the report shows.
///
/// ```
/// use async_upload::stages::Confidence;
///
/// assert_eq!(Confidence::DEFAULT.level(), 0.99);
/// assert!((Confidence::DEFAULT.alpha() - 0.01).abs() < 1e-12);
/// assert!(Confidence::new(0.999).is_ok());
/// assert!(Confidence::new(1.0).is_err()); // certainty needs infinite data
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Confidence {
    level: f64,
    /// Two-sided standard normal quantile at `level`.
    z: f64,
    /// Two-sided standard normal quantile at `1 - α/2` (one of two intervals
    /// combined into a ratio's).
    z_each: f64,
}

impl Confidence {
    /// 99 %: the default of every trigger and interval.
    pub const DEFAULT: Confidence = Confidence {
        level: 0.99,
        z: 2.575_829_303_548_901,
        z_each: 2.807_033_768_343_811,
    };

    /// The confidence `level`, which must be in `[0.5, 1)`.
    ///
    /// # Errors
    ///
    /// `level` is not a number in `[0.5, 1)`.
    pub fn new(level: f64) -> Result<Self, ConfidenceError> {
        if !(0.5..1.0).contains(&level) {
            return Err(ConfidenceError(level));
        }
        let alpha = 1.0 - level;
        Ok(Confidence {
            level,
            z: normal_quantile(1.0 - alpha / 2.0),
            z_each: normal_quantile(1.0 - alpha / 4.0),
        })
    }

    /// The level, e.g. 0.99.
    #[must_use]
    pub const fn level(self) -> f64 {
        self.level
    }

    /// `1 - level`: the error probability.
    #[must_use]
    pub fn alpha(self) -> f64 {
        1.0 - self.level
    }
}

/// Two confidences are equal when their levels are: the quantiles follow
/// from the level (the constants of [`Confidence::DEFAULT`] and those
/// [`Confidence::new`] computes may differ in the last bits).
impl PartialEq for Confidence {
    fn eq(&self, other: &Self) -> bool {
        self.level.to_bits() == other.level.to_bits()
    }
}

impl Default for Confidence {
    fn default() -> Self {
        Confidence::DEFAULT
    }
}

impl Serialize for Confidence {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.level)
    }
}

impl<'de> Deserialize<'de> for Confidence {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Confidence::new(f64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A bound JSON writes as `null` when it is infinite: read back as `+∞`.
fn or_infinity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::INFINITY))
}

/// A lower bound JSON writes as `null` when it is infinite: read back as `-∞`.
fn or_neg_infinity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NEG_INFINITY))
}

/// A confidence level outside `[0.5, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfidenceError(pub f64);

impl core::fmt::Display for ConfidenceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "confidence {} is not accepted: give a probability in [0.5, 1), e.g. 0.99",
            self.0
        )
    }
}

impl std::error::Error for ConfidenceError {}

/// A confidence interval `[low, high]` beside a point estimate; an
/// unbounded side is infinite (written `null` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    #[serde(deserialize_with = "or_neg_infinity")]
    pub low: f64,
    /// Upper bound.
    #[serde(deserialize_with = "or_infinity")]
    pub high: f64,
}

impl Interval {
    /// `[0, ∞]`: what is known of a ratio without data (also what a log
    /// written before intervals were recorded reads as).
    #[must_use]
    pub const fn unknown() -> Self {
        Interval {
            low: 0.0,
            high: f64::INFINITY,
        }
    }

    /// Whether `value` lies inside (bounds included).
    #[must_use]
    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The Wilson score interval of the rate `k / n` at `confidence`; `None`
/// when `n` is 0 or `k > n`.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn rate_interval(k: u64, n: u64, confidence: Confidence) -> Option<Interval> {
    if n == 0 || k > n {
        return None;
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, confidence.z);
    let z2 = z * z;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Interval {
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    })
}

/// A one-sided sequential test of "the true rate of bad calls is above
/// `limit`", fed the calls of each look as they come ([`RateTest::observe`]).
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
/// assert!(test.evidence().fired());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RateTest {
    limit: f64,
    /// Per alternative: log-likelihood ratio of a bad and of a good call.
    steps: [(f64, f64); ARMS],
    /// Per alternative: log-likelihood ratio since the stage started.
    since_start: [f64; ARMS],
    /// Per alternative: Page's CUSUM.
    cusum: [f64; ARMS],
    calls: u64,
    bad: u64,
    start_threshold: f64,
    cusum_threshold: f64,
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
        let steps = ARM_FACTORS.map(|factor| {
            // Capped halfway to 1 so a high limit still has an alternative above it.
            let alternative = (limit * factor).min(f64::midpoint(1.0, limit));
            (
                (alternative / limit).ln(),
                ((1.0 - alternative) / (1.0 - limit)).ln(),
            )
        });
        let half = confidence.alpha() / 2.0;
        Ok(RateTest {
            limit,
            steps,
            since_start: [0.0; ARMS],
            cusum: [0.0; ARMS],
            calls: 0,
            bad: 0,
            start_threshold: (1.0 / half).ln(),
            cusum_threshold: (ARMS as f64 * LOOKS_PER_STAGE as f64 / half).ln(),
        })
    }

    /// Adds one look's calls: `bad` of `calls` were bad (`bad` is capped at
    /// `calls`).
    #[allow(clippy::cast_precision_loss)]
    pub fn observe(&mut self, bad: u64, calls: u64) {
        let bad = bad.min(calls);
        let good = calls - bad;
        for (arm, (on_bad, on_good)) in self.steps.iter().enumerate() {
            let step = bad as f64 * on_bad + good as f64 * on_good;
            self.since_start[arm] += step;
            self.cusum[arm] = (self.cusum[arm] + step).max(0.0);
        }
        self.calls += calls;
        self.bad += bad;
    }

    /// The evidence now.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn evidence(&self) -> Evidence {
        // log of the average likelihood ratio over the alternatives (a
        // mixture of martingales is a martingale), computed without overflow.
        let top = self.since_start.iter().copied().fold(f64::MIN, f64::max);
        let sum: f64 = self.since_start.iter().map(|s| (s - top).exp()).sum();
        Evidence {
            method: RateMethod::Sequential,
            limit: self.limit,
            calls: self.calls,
            bad: self.bad,
            since_start: top + (sum / ARMS as f64).ln(),
            start_threshold: self.start_threshold,
            recent: self.cusum.iter().copied().fold(0.0, f64::max),
            recent_threshold: self.cusum_threshold,
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

/// What a rate test shows at one look: log-likelihood ratios against
/// their thresholds, so a verdict can be replayed from the log.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The test.
    pub method: RateMethod,
    /// The bad-call rate tested against.
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
        let p_value = if limit > 0.0 && limit < 1.0 {
            binomial_upper_tail(bad, calls, limit)
        } else {
            1.0
        };
        Evidence {
            method: RateMethod::Binomial,
            limit,
            calls,
            bad,
            since_start: -p_value.ln(),
            start_threshold: -confidence.alpha().ln(),
            recent: 0.0,
            recent_threshold: f64::INFINITY,
        }
    }

    /// Whether the data show, at the test's confidence, that the true rate
    /// is above the limit.
    #[must_use]
    pub fn fired(&self) -> bool {
        self.since_start >= self.start_threshold || self.recent >= self.recent_threshold
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

/// The interval of the `q` quantile (`0 < q < 1`) of the values in `h`, in
/// microseconds, at the two-sided normal quantile `z`: order statistics
/// chosen by the normal approximation of the binomial, read on the bucket
/// edges. An unknowable side is 0 or infinite.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
fn quantile_interval(h: &Histogram, q: f64, z: f64) -> Option<Interval> {
    let n = h.len();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let spread = z * (nf * q * (1.0 - q)).sqrt();
    let low_rank = (nf * q - spread).floor();
    let high_rank = (nf * q + spread).ceil() + 1.0;
    let low = if low_rank < 1.0 {
        0.0
    } else {
        h.rank_range(low_rank as u64)
            .map_or(0.0, |(low, _)| low as f64)
    };
    let high = if high_rank > nf {
        f64::INFINITY
    } else {
        // Values are whole microseconds: the largest a bucket holds is `high - 1`.
        h.rank_range(high_rank as u64)
            .map_or(f64::INFINITY, |(_, high)| (high - 1) as f64)
    };
    Some(Interval { low, high })
}

/// The interval of async / sync at quantile `q`, from the two histograms of
/// the same window, at `confidence` (each side's interval at `1 − α/2`);
/// `None` when a side is empty.
///
/// ```
/// use async_upload::metrics::Histogram;
/// use async_upload::stages::{quantile_ratio, Confidence};
///
/// let (mut fast, mut slow) = (Histogram::default(), Histogram::default());
/// for i in 0..2000 {
///     fast.record(10_000 + i);
///     slow.record(20_000 + 2 * i);
/// }
/// let ratio = quantile_ratio(&slow, &fast, 0.95, Confidence::DEFAULT).unwrap();
/// assert!(ratio.low > 1.8 && ratio.high < 2.2, "{ratio:?}");
/// ```
#[must_use]
pub fn quantile_ratio(
    async_latency: &Histogram,
    sync_latency: &Histogram,
    q: f64,
    confidence: Confidence,
) -> Option<Interval> {
    let a = quantile_interval(async_latency, q, confidence.z_each)?;
    let s = quantile_interval(sync_latency, q, confidence.z_each)?;
    Some(ratio_of(a, s))
}

/// The interval of async / a fixed baseline value at quantile `q`: only
/// the async side is uncertain (the baseline was frozen at the end of the
/// previous stage).
#[must_use]
pub(crate) fn quantile_ratio_to(
    async_latency: &Histogram,
    baseline_micros: f64,
    q: f64,
    confidence: Confidence,
) -> Option<Interval> {
    if baseline_micros.is_nan() || baseline_micros <= 0.0 {
        return None;
    }
    let a = quantile_interval(async_latency, q, confidence.z)?;
    Some(ratio_of(
        a,
        Interval {
            low: baseline_micros,
            high: baseline_micros,
        },
    ))
}

fn ratio_of(numerator: Interval, denominator: Interval) -> Interval {
    let high = if denominator.low > 0.0 {
        numerator.high / denominator.low
    } else {
        f64::INFINITY
    };
    let low = if denominator.high.is_finite() {
        numerator.low / denominator.high
    } else {
        0.0
    };
    Interval { low, high }
}

/// The standard normal distribution function.
fn normal_cdf(x: f64) -> f64 {
    if x < 0.0 {
        return 1.0 - normal_cdf(-x);
    }
    let density = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    if x < 3.0 {
        // Taylor series of the integral of the density from 0 to x: every
        // term is positive, so no cancellation.
        let (mut term, mut sum, mut k) = (x, x, 1.0);
        while term > 1e-17 * sum {
            term *= x * x / (2.0 * k + 1.0);
            sum += term;
            k += 1.0;
        }
        0.5 + density * sum
    } else {
        // Upper tail by Laplace's continued fraction, evaluated from the bottom.
        let mut fraction = x;
        for k in (1..=60).rev() {
            fraction = x + f64::from(k) / fraction;
        }
        1.0 - density / fraction
    }
}

/// The standard normal quantile at `p` (`0.5 ≤ p < 1`), by bisection.
fn normal_quantile(p: f64) -> f64 {
    let (mut low, mut high) = (0.0, 40.0);
    for _ in 0..200 {
        let mid = f64::midpoint(low, high);
        if normal_cdf(mid) < p {
            low = mid;
        } else {
            high = mid;
        }
    }
    f64::midpoint(low, high)
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
    fn default_confidence_has_the_exact_normal_quantiles() {
        let computed = Confidence::new(0.99).unwrap();
        assert!(
            (computed.z - Confidence::DEFAULT.z).abs() < 1e-9,
            "{computed:?}"
        );
        assert!((computed.z_each - Confidence::DEFAULT.z_each).abs() < 1e-9);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
        assert!((normal_cdf(-4.0) - 3.167_124_183_311_992e-5).abs() < 1e-15);
        assert!((normal_cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-12);
    }

    #[test]
    fn bad_levels_and_limits_are_refused_with_what_is_accepted() {
        for level in [0.0, 0.4, 1.0, 1.5, f64::NAN] {
            let error = Confidence::new(level).unwrap_err();
            assert!(error.to_string().contains("[0.5, 1)"), "{error}");
        }
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

    #[test]
    fn wilson_interval_known_values() {
        let ci = rate_interval(0, 10, Confidence::new(0.95).unwrap()).unwrap();
        assert!(
            ci.low == 0.0 && (ci.high - 0.277_532_799_316_2).abs() < 1e-6,
            "{ci:?}"
        );
        let ci = rate_interval(50, 100, Confidence::new(0.95).unwrap()).unwrap();
        assert!((ci.low - 0.403_831_7).abs() < 1e-6 && (ci.high - 0.596_168_3).abs() < 1e-6);
        assert!(rate_interval(1, 0, Confidence::DEFAULT).is_none());
        assert!(rate_interval(3, 2, Confidence::DEFAULT).is_none());
        // Narrower with more data, always containing the estimate.
        let wide = rate_interval(9, 10, Confidence::DEFAULT).unwrap();
        let narrow = rate_interval(900, 1000, Confidence::DEFAULT).unwrap();
        assert!(wide.contains(0.9) && narrow.contains(0.9));
        assert!(narrow.high - narrow.low < wide.high - wide.low);
    }

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram {
        let mut h = Histogram::default();
        for v in values {
            h.record(v);
        }
        h
    }

    #[test]
    fn quantile_ratio_of_equal_distributions_contains_one() {
        let a = histogram((0..1000).map(|i| 5_000 + i * 7));
        let s = histogram((0..1000).map(|i| 5_003 + i * 7));
        for q in [0.5, 0.95] {
            let ci = quantile_ratio(&a, &s, q, Confidence::DEFAULT).unwrap();
            assert!(ci.contains(1.0) && ci.high < 1.2, "q{q}: {ci:?}");
        }
    }

    #[test]
    fn few_calls_give_an_unbounded_p95_ratio_not_a_verdict() {
        let a = histogram([10_000, 30_000, 12_000]);
        let s = histogram([9_000, 11_000, 10_000]);
        let ci = quantile_ratio(&a, &s, 0.95, Confidence::DEFAULT).unwrap();
        assert!(ci.high.is_infinite() && ci.low <= 0.0, "{ci:?}");
        assert!(quantile_ratio(&Histogram::default(), &s, 0.5, Confidence::DEFAULT).is_none());
    }

    #[test]
    fn a_slower_path_is_bounded_away_from_one() {
        let a = histogram((0..500).map(|i| 15_000 + i * 30));
        let s = histogram((0..500).map(|i| 10_000 + i * 20));
        let ci = quantile_ratio(&a, &s, 0.5, Confidence::DEFAULT).unwrap();
        assert!(ci.low > 1.3 && ci.high < 1.7, "{ci:?}");
        let frozen = quantile_ratio_to(&a, 15_000.0, 0.5, Confidence::DEFAULT).unwrap();
        assert!(frozen.contains(1.5), "{frozen:?}");
        assert!(quantile_ratio_to(&a, 0.0, 0.5, Confidence::DEFAULT).is_none());
    }
}
