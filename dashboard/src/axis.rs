//! Axis ticks and labels that read at any scale and never repeat: time
//! ticks at round clock times, labelled only as precisely as their step
//! needs (and no less), numbers with as many digits as their step needs.

use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

/// Round steps of a time axis, seconds.
const TIME_STEPS: [f64; 26] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    900.0, 1800.0, 3600.0, 7200.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0, 172_800.0, 604_800.0,
];

/// The smallest round step that gives at most `most` ticks over `range`
/// (seconds since the epoch), and the ticks: multiples of the step since
/// the epoch, so they fall on round clock times.
pub(crate) fn time_ticks(range: &Range<f64>, most: usize) -> (f64, Vec<f64>) {
    let span = (range.end - range.start).max(0.0);
    #[allow(clippy::cast_precision_loss)] // a handful of ticks
    let most = most.max(1) as f64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|&step| span / step <= most)
        .unwrap_or_else(|| (span / most / 604_800.0).ceil() * 604_800.0);
    let first = (range.start / step).ceil();
    let last = (range.end / step).floor();
    let ticks = (0..)
        .map(|k| (first + f64::from(k)) * step)
        .take_while(|t| (*t / step).round() <= last)
        .take(64)
        .collect();
    (step, ticks)
}

/// `2026-11-30T01:25:18.123Z` of `secs` since the epoch (milliseconds).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn rfc3339(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The parts of a time label, coarsest to finest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precision {
    Days,
    Minutes,
    Seconds,
    Tenths,
    Hundredths,
}

fn label(secs: f64, precision: Precision, with_date: bool) -> String {
    let text = rfc3339(secs); // 2026-11-30T01:25:18.123Z
    let date = text.get(5..10).unwrap_or(""); // 11-30
    let clock = match precision {
        Precision::Days => return date.to_owned(),
        Precision::Minutes => text.get(11..16),
        Precision::Seconds => text.get(11..19),
        Precision::Tenths => text.get(11..21),
        Precision::Hundredths => text.get(11..22),
    }
    .unwrap_or("");
    if with_date {
        format!("{date} {clock}")
    } else {
        clock.to_owned()
    }
}

/// Labels for `ticks` a `step` apart: the precision the step needs, the
/// date when the ticks span more than one day; finer (and dated) until no
/// two labels are the same.
pub(crate) fn time_labels(ticks: &[f64], step: f64) -> Vec<String> {
    let mut precision = if step >= 86_400.0 {
        Precision::Days
    } else if step >= 60.0 {
        Precision::Minutes
    } else if step >= 1.0 {
        Precision::Seconds
    } else if step >= 0.1 {
        Precision::Tenths
    } else {
        Precision::Hundredths
    };
    let days = |t: f64| (t / 86_400.0).floor();
    let mut with_date = precision > Precision::Days
        && ticks
            .first()
            .zip(ticks.last())
            .is_some_and(|(a, b)| days(*b) - days(*a) >= 1.0);
    loop {
        let labels: Vec<String> = ticks
            .iter()
            .map(|&t| label(t, precision, with_date))
            .collect();
        let mut sorted = labels.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() == labels.len() || precision == Precision::Hundredths {
            return labels;
        }
        if precision == Precision::Days {
            with_date = true;
        }
        precision = match precision {
            Precision::Days => Precision::Minutes,
            Precision::Minutes => Precision::Seconds,
            Precision::Seconds => Precision::Tenths,
            _ => Precision::Hundredths,
        };
    }
}

/// Decimals a linear axis over `range` with about `labels` ticks needs so
/// that no two tick labels are the same (its step is at least
/// `range / labels`).
pub(crate) fn decimals(range: &Range<f64>, labels: usize) -> usize {
    #[allow(clippy::cast_precision_loss)]
    let step = (range.end - range.start).abs() / labels.max(1) as f64;
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let needed = (-step.log10()).ceil().max(0.0) as usize;
    needed.min(6)
}

/// `value` with three significant digits, trailing zeros trimmed: distinct
/// log-axis ticks (1, 1.5, 2, …) stay distinct.
pub(crate) fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let decimals = (2.0 - value.abs().log10().floor()).max(0.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unique(labels: &[String]) -> bool {
        let mut sorted = labels.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted.len() == labels.len()
    }

    #[test]
    fn time_ticks_are_round_and_their_labels_unique_at_any_span() {
        let start = 1_795_000_000.123;
        for span in [
            0.5,
            5.0,
            60.0,
            130.0,
            3600.0,
            86_400.0,
            3.0 * 86_400.0,
            40.0 * 86_400.0,
        ] {
            let (step, ticks) = time_ticks(&(start..start + span), 8);
            assert!(ticks.len() >= 2 && ticks.len() <= 9, "{span}: {ticks:?}");
            for t in &ticks {
                assert!(((t / step).round() * step - t).abs() < 1e-6);
            }
            let labels = time_labels(&ticks, step);
            assert!(unique(&labels), "{span}: {labels:?}");
        }
        // A 60-second run reads in seconds; three days with the date.
        let (step, ticks) = time_ticks(&(start..start + 60.0), 8);
        assert!((step - 10.0).abs() < 1e-9, "{step}");
        assert_eq!(time_labels(&ticks, step)[0].len(), "HH:MM:SS".len());
        let (step, ticks) = time_ticks(&(start..start + 3.0 * 86_400.0), 8);
        assert!(time_labels(&ticks, step)[0].contains(' '));
    }

    #[test]
    fn numbers_carry_the_digits_their_step_needs() {
        assert_eq!(decimals(&(97.0..100.5), 10), 1);
        assert_eq!(decimals(&(0.0..1.15), 10), 1);
        assert_eq!(decimals(&(0.0..1000.0), 10), 0);
        assert_eq!(decimals(&(0.0..0.05), 5), 2);
        assert_eq!(significant(1.5), "1.5");
        assert_eq!(significant(2.0), "2");
        assert_eq!(significant(150.0), "150");
        assert_eq!(significant(0.015), "0.015");
        assert_eq!(significant(1234.0), "1234");
    }
}
