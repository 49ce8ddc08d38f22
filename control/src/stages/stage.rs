//! Stages and triggers as data: [`Stage`], [`DEFAULT_STAGES`], [`Triggers`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::judge::Confidence;

const HOUR: u64 = 3600;

/// One rollout stage: a percentage and the criteria its window must meet
/// before the next stage.
///
/// Rates are fractions (0.995 is 99.5 %); the latency ratio bounds both
/// the async p50 / sync p50 and the async p95 / sync p95 ratios.
///
/// ```
/// use std::time::Duration;
/// use async_upload::stages::{Stage, DEFAULT_STAGES};
///
/// assert_eq!(DEFAULT_STAGES[0].rollout, 1.0);
/// let canary = Stage::new(1, 0.5)
///     .with_success_rate(0.999)
///     .with_min_duration(Duration::from_secs(3600))
///     .with_min_samples(50);
/// assert_eq!(canary.max_error_rate, 0.005); // from the defaults of `new`
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// The stage's number, 1-based, as operators and the report name it.
    pub number: u32,
    /// Percent of keys enrolled in the async path.
    pub rollout: f64,
    /// Async-path success rate at least this (fallbacks count as failures).
    pub min_success_rate: f64,
    /// Async latency at most this × the sync baseline, at p50 and at p95.
    pub max_latency_ratio: f64,
    /// User-visible error rate of enrolled calls at most this.
    pub max_error_rate: f64,
    /// The stage lasts at least this long.
    #[serde(rename = "min_duration_s", with = "secs")]
    pub min_duration: Duration,
    /// Enrolled calls in the stage's window at least this many.
    pub min_samples: u64,
}

impl Stage {
    /// Stage `number` at `rollout` percent, with stage 1's criteria
    /// (99.5 %, 1.10×, 0.5 %, 24 h, 100 samples) to adjust with `with_*`.
    #[must_use]
    pub const fn new(number: u32, rollout: f64) -> Self {
        Stage {
            number,
            rollout,
            min_success_rate: 0.995,
            max_latency_ratio: 1.10,
            max_error_rate: 0.005,
            min_duration: Duration::from_secs(24 * HOUR),
            min_samples: 100,
        }
    }

    /// Sets [`Stage::min_success_rate`].
    #[must_use]
    pub const fn with_success_rate(mut self, rate: f64) -> Self {
        self.min_success_rate = rate;
        self
    }

    /// Sets [`Stage::max_latency_ratio`].
    #[must_use]
    pub const fn with_latency_ratio(mut self, ratio: f64) -> Self {
        self.max_latency_ratio = ratio;
        self
    }

    /// Sets [`Stage::max_error_rate`].
    #[must_use]
    pub const fn with_error_rate(mut self, rate: f64) -> Self {
        self.max_error_rate = rate;
        self
    }

    /// Sets [`Stage::min_duration`].
    #[must_use]
    pub const fn with_min_duration(mut self, duration: Duration) -> Self {
        self.min_duration = duration;
        self
    }

    /// Sets [`Stage::min_samples`].
    #[must_use]
    pub const fn with_min_samples(mut self, samples: u64) -> Self {
        self.min_samples = samples;
        self
    }
}

/// The four default stages of DESIGN.md:
///
/// | stage | rollout | success ≥ | latency ≤ sync × | error ≤ | at least | samples ≥ |
/// | --- | --- | --- | --- | --- | --- | --- |
/// | 1 | 1% | 99.5% | 1.10 | 0.5% | 24 h | 100 |
/// | 2 | 10% | 99.0% | 1.05 | 1.0% | 48 h | 500 |
/// | 3 | 50% | 98.5% | 1.02 | 1.5% | 72 h | 2000 |
/// | 4 | 100% | 98.0% | 1.00 | 2.0% | 1 week | 5000 |
pub const DEFAULT_STAGES: [Stage; 4] = [
    Stage::new(1, 1.0),
    Stage::new(2, 10.0)
        .with_success_rate(0.99)
        .with_latency_ratio(1.05)
        .with_error_rate(0.01)
        .with_min_duration(Duration::from_secs(48 * HOUR))
        .with_min_samples(500),
    Stage::new(3, 50.0)
        .with_success_rate(0.985)
        .with_latency_ratio(1.02)
        .with_error_rate(0.015)
        .with_min_duration(Duration::from_secs(72 * HOUR))
        .with_min_samples(2000),
    Stage::new(4, 100.0)
        .with_success_rate(0.98)
        .with_latency_ratio(1.00)
        .with_error_rate(0.02)
        .with_min_duration(Duration::from_secs(7 * 24 * HOUR))
        .with_min_samples(5000),
];

/// The thresholds of the immediate (rollback) and gradual (review)
/// triggers, which apply in every stage.
///
/// Rate triggers fire when a sequential test shows, at
/// [`Triggers::confidence`], that the true rate is past the threshold, and
/// need at least [`Triggers::min_calls`] enrolled calls besides: fewer is
/// too little data, never a trigger by itself. A critical error (a panic in
/// the async path) needs no minimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Triggers {
    /// Enrolled calls a rate trigger needs in its window (default 20).
    pub min_calls: u64,
    /// Roll back when the true async success rate is shown below this (default 0.95).
    pub rollback_success_below: f64,
    /// Roll back when the user-visible error rate is above this (default 0.05).
    pub rollback_error_above: f64,
    /// Roll back when resident memory grew by more than this fraction over
    /// its baseline, taken once the stage has `min_calls` enrolled calls
    /// (after warm-up), and by at least `rollback_memory_floor` bytes
    /// (default 0.20).
    pub rollback_memory_growth: f64,
    /// The absolute growth, in bytes, below which memory never rolls back
    /// (default 32 MiB): a small service's caches are not a leak.
    #[serde(default = "Triggers::default_memory_floor")]
    pub rollback_memory_floor: u64,
    /// Review when the success rate stays below this (and at or above
    /// `rollback_success_below`) for `review_sustained` (default 0.97).
    pub review_success_below: f64,
    /// How long the success rate must stay in that band (default 30 min).
    #[serde(rename = "review_sustained_s", with = "secs")]
    pub review_sustained: Duration,
    /// Review when the interval of the async p50 or p95 ratio to the baseline
    /// lies wholly above this, or above the stage's own ratio when that is
    /// larger (default 1.2).
    pub review_latency_ratio: f64,
    /// Review when the application's complaint rate exceeds its value at the
    /// stage's start × (1 + this) (default 0.5).
    pub review_complaint_growth: f64,
    /// The confidence at which the rate triggers fire and the report's
    /// intervals are drawn (default 99 %).
    #[serde(default)]
    pub confidence: Confidence,
}

impl Triggers {
    /// The floor a log that did not record one is read with: the default.
    const fn default_memory_floor() -> u64 {
        Triggers::DEFAULT.rollback_memory_floor
    }

    /// The defaults of DESIGN.md.
    pub const DEFAULT: Triggers = Triggers {
        min_calls: 20,
        rollback_success_below: 0.95,
        rollback_error_above: 0.05,
        rollback_memory_growth: 0.20,
        rollback_memory_floor: 32 << 20,
        review_success_below: 0.97,
        review_sustained: Duration::from_secs(30 * 60),
        review_latency_ratio: 1.2,
        review_complaint_growth: 0.5,
        confidence: Confidence::DEFAULT,
    };
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::DEFAULT
    }
}

/// Optional durations in the log, as [`secs`] writes them (`None`: the
/// field is absent or `null`).
pub(crate) mod secs_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // serde's signature
    pub(crate) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::secs::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Secs(#[serde(with = "super::secs")] Duration);
        Ok(Option::<Secs>::deserialize(deserializer)?.map(|Secs(d)| d))
    }
}

/// Durations in the log: seconds as a number, rounded to the microsecond
/// both ways, so `0.366679` is written (not `0.36667900000000003`) and
/// reads back as the same duration. Reading rejects a negative,
/// non-finite or out-of-range number.
pub(crate) mod secs {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Whole microseconds as seconds: one division of two integers that f64
    /// holds exactly, so the shortest decimal of the result is the exact one.
    #[allow(clippy::cast_precision_loss)] // micros below 2^53: ~285 years
    pub(crate) fn to_f64(duration: Duration) -> f64 {
        let micros = duration.as_micros() + u128::from(duration.subsec_nanos() % 1000 >= 500);
        micros as f64 / 1e6
    }

    /// Seconds back to a duration, rounded to the microsecond; `None` for a
    /// negative, non-finite or too large value.
    pub(crate) fn from_f64(seconds: f64) -> Option<Duration> {
        // 2^53 µs: beyond it a microsecond count is not exact in f64.
        const MAX_MICROS: f64 = 9_007_199_254_740_992.0;
        let micros = (seconds * 1e6).round();
        if !(0.0..=MAX_MICROS).contains(&micros) {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked above
        Some(Duration::from_micros(micros as u64))
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
    pub(crate) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(to_f64(*duration))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        from_f64(seconds).ok_or_else(|| {
            D::Error::custom(format_args!(
                "{seconds} is not a duration: a finite number of seconds ≥ 0 is accepted"
            ))
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn optional_durations_read_back_and_may_be_absent() {
            #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
            struct Line {
                #[serde(default, with = "super::super::secs_opt")]
                tick_s: Option<Duration>,
            }
            let line = Line {
                tick_s: Some(Duration::from_millis(100)),
            };
            let text = serde_json::to_string(&line).unwrap();
            assert_eq!(text, r#"{"tick_s":0.1}"#);
            assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
            assert_eq!(serde_json::from_str::<Line>("{}").unwrap().tick_s, None);
            assert!(serde_json::from_str::<Line>(r#"{"tick_s":-1}"#).is_err());
        }

        #[test]
        fn durations_are_written_to_the_microsecond_and_read_back_equal() {
            let duration = Duration::from_nanos(366_679_400);
            assert_eq!(
                serde_json::to_string(&to_f64(duration)).unwrap(),
                "0.366679"
            );
            assert_eq!(from_f64(0.366_679), Some(Duration::from_micros(366_679)));
            let long = Duration::from_micros(7 * 24 * 3600 * 1_000_000 + 1);
            assert_eq!(from_f64(to_f64(long)), Some(long));
            assert_eq!(from_f64(-1.0), None);
            assert_eq!(from_f64(f64::NAN), None);
            assert_eq!(from_f64(f64::INFINITY), None);
        }
    }
}
