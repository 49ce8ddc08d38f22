//! The judge's statistics: pure functions and small state, no clock, no I/O.
//!
//! - **Rate triggers**: the sequential test is in `sequential.rs`
//!   ([`RateTest`](super::RateTest)); this file holds the confidence it
//!   works at and the intervals shown beside it.
//! - **Latency** ([`quantile_ratio`]): a distribution-free interval for a
//!   quantile of each histogram (order statistics, read on the bucket
//!   edges so the bucket width only widens it), combined into an interval
//!   for the ratio async / sync of that quantile.
//! - **Intervals for the report** ([`rate_interval`]): the Wilson score
//!   interval of a rate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use async_upload_runtime::metrics::Histogram;

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
pub(super) fn or_infinity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
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
#[non_exhaustive]
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
