//! Latency compared like with like: async and sync calls of the same size.
//!
//! Uploads differ in size by orders of magnitude and a small keyed cohort
//! is rarely size-balanced, so comparing the two paths' quantiles over all
//! calls compares their size mixes as much as their speed. Instead:
//!
//! 1. Calls are put in log2 size classes of `bytes` (a factor of two wide;
//!    `metrics::sized`). Adjacent classes are merged, smallest first, until
//!    both paths have [`GROUP_MIN`] calls in the group, so a sparse size
//!    range is compared as a wider group rather than not at all. Calls
//!    without a size are one group of their own.
//! 2. In each group, the ratio async / sync of the p50 (and of the p95), with
//!    its distribution-free interval from both histograms' order statistics.
//! 3. One ratio: the weighted mean of the groups' log-ratios, each group
//!    weighted by its effective number of calls `a·s / (a + s)` (the inverse
//!    of the variance of a log-ratio of two samples of `a` and `s` calls;
//!    with a small cohort, about its async calls). The interval is the same
//!    weighted mean of the groups' interval ends: it holds whenever every
//!    group's does, so pooling never makes it narrower than the data allow,
//!    and a group too small to bound its ratio leaves that end unbounded.
//!
//! Why not a regression on log size? It would estimate one ratio of means
//! and assume latency is a power law of size; the stage criteria are about
//! p50 and p95, and a per-class quantile needs no model. With every call
//! in one group (no sizes recorded, or one size) the result is exactly the
//! comparison of the two paths' quantiles over all calls.
//!
//! At 100 % there is no concurrent sync traffic: the baseline frozen at the
//! end of the previous stage keeps its quantiles per group, and async calls
//! are grouped to match.

use serde::{Deserialize, Serialize};

use super::judge::{quantile_ratio, quantile_ratio_to, Confidence, Interval};
use async_upload_runtime::metrics::sized::class_bytes;
use async_upload_runtime::metrics::{ExecutionType, Histogram, SiteSnapshot};

/// Calls each path needs in a size group before the group is compared on
/// its own (fewer: merged with the next larger class).
pub(crate) const GROUP_MIN: u64 = 10;

/// Sync-path latency to compare the async path with, frozen at the end of
/// a stage for the next one (at 100 % there is no sync traffic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Baseline {
    /// Sync median, milliseconds.
    pub p50_ms: f64,
    /// Sync 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// Sync calls it was measured on.
    pub calls: u64,
    /// The same per size group, so that the next stage compares like with
    /// like (empty when calls declared no size, and in older logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_size: Vec<SizeBaseline>,
}

impl Baseline {
    /// A baseline of `calls` sync calls with these quantiles, kept for no
    /// size group.
    #[must_use]
    pub fn new(p50_ms: f64, p95_ms: f64, calls: u64) -> Self {
        Baseline {
            p50_ms,
            p95_ms,
            calls,
            by_size: Vec::new(),
        }
    }

    /// The sync path's latency in `window`; `None` without sync calls.
    #[must_use]
    pub fn of(window: &SiteSnapshot) -> Option<Self> {
        let sync = window.path(ExecutionType::Sync);
        Some(Baseline {
            p50_ms: sync.latency.quantile(0.50)? / 1000.0,
            p95_ms: sync.latency.quantile(0.95)? / 1000.0,
            calls: sync.latency.len(),
            by_size: frozen_groups(window),
        })
    }
}

/// The sync latency of one size group, frozen with a [`Baseline`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SizeBaseline {
    /// Smallest size of the group, bytes; `None` for calls without a size.
    pub min_bytes: Option<u64>,
    /// One past its largest size, bytes (`None`: unbounded, or no size).
    pub max_bytes: Option<u64>,
    /// Sync median, milliseconds.
    pub p50_ms: f64,
    /// Sync 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// Sync calls it was measured on.
    pub calls: u64,
}

/// The classes `[first, last]` of a group, or no size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span {
    Unsized,
    Classes(usize, usize),
}

impl Span {
    fn bytes(self) -> (Option<u64>, Option<u64>) {
        match self {
            Span::Unsized => (None, None),
            Span::Classes(first, last) => (Some(class_bytes(first).0), class_bytes(last).1),
        }
    }

    fn of(baseline: &SizeBaseline) -> Span {
        match baseline.min_bytes {
            None => Span::Unsized,
            Some(min) => {
                let first = async_upload_runtime::metrics::sized::size_class(min);
                let last = baseline.max_bytes.map_or(
                    async_upload_runtime::metrics::sized::SIZE_CLASSES - 1,
                    |max| async_upload_runtime::metrics::sized::size_class(max.saturating_sub(1)),
                );
                Span::Classes(first, last)
            }
        }
    }
}

/// One path's latency by size: the calls without a size, and per class.
struct BySize {
    no_size: Histogram,
    classes: Vec<(usize, Histogram)>,
}

impl BySize {
    fn of(window: &SiteSnapshot, execution_type: ExecutionType) -> Self {
        let path = &window.path(execution_type).latency;
        let classes: Vec<(usize, Histogram)> = window
            .sized(execution_type)
            .map(|sized| sized.classes().map(|(c, h)| (c, h.clone())).collect())
            .unwrap_or_default();
        let no_size = classes
            .iter()
            .fold(path.clone(), |rest, (_, class)| rest.since(class));
        BySize { no_size, classes }
    }

    fn class(&self, class: usize) -> Option<&Histogram> {
        self.classes
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, h)| h)
    }

    /// The calls of `span`, merged.
    fn within(&self, span: Span) -> Histogram {
        match span {
            Span::Unsized => self.no_size.clone(),
            Span::Classes(first, last) => {
                let mut merged = Histogram::default();
                for (_, h) in self
                    .classes
                    .iter()
                    .filter(|(c, _)| (first..=last).contains(c))
                {
                    merged.merge(h);
                }
                merged
            }
        }
    }
}

/// Adjacent classes merged, smallest first, until every side in `sides`
/// has [`GROUP_MIN`] calls; a short remainder joins the last group. Calls
/// without a size are a group of their own when there are any.
fn spans(sides: &[&BySize]) -> Vec<Span> {
    let mut spans = Vec::new();
    if sides.iter().any(|side| !side.no_size.is_empty()) {
        spans.push(Span::Unsized);
    }
    let mut classes: Vec<usize> = sides
        .iter()
        .flat_map(|side| side.classes.iter().map(|(c, _)| *c))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let mut first = None;
    let mut counts = vec![0u64; sides.len()];
    let mut sized = Vec::new();
    for class in classes {
        first.get_or_insert(class);
        for (count, side) in counts.iter_mut().zip(sides) {
            *count += side.class(class).map_or(0, Histogram::len);
        }
        if counts.iter().all(|&n| n >= GROUP_MIN) {
            sized.push(Span::Classes(first.take().unwrap_or(class), class));
            counts.fill(0);
        }
    }
    if let Some(start) = first {
        // The remainder up to the largest class.
        let last = sides
            .iter()
            .filter_map(|side| side.classes.last().map(|(c, _)| *c))
            .max()
            .unwrap_or(start);
        match sized.last_mut() {
            Some(Span::Classes(_, end)) => *end = last,
            _ => sized.push(Span::Classes(start, last)),
        }
    }
    spans.extend(sized);
    spans
}

/// The frozen sync latency per size group of `window` (empty when the
/// window's calls declared no size).
pub(crate) fn frozen_groups(window: &SiteSnapshot) -> Vec<SizeBaseline> {
    let sync = BySize::of(window, ExecutionType::Sync);
    if sync.classes.is_empty() {
        return Vec::new();
    }
    spans(&[&sync])
        .into_iter()
        .filter_map(|span| {
            let h = sync.within(span);
            let (min_bytes, max_bytes) = span.bytes();
            Some(SizeBaseline {
                min_bytes,
                max_bytes,
                p50_ms: h.quantile(0.50)? / 1000.0,
                p95_ms: h.quantile(0.95)? / 1000.0,
                calls: h.len(),
            })
        })
        .collect()
}

/// Both quantiles' ratio and interval.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ratios {
    pub(crate) p50: (f64, Interval),
    pub(crate) p95: (f64, Interval),
}

/// The size-matched comparison of a window's async calls with a baseline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Matched {
    pub(crate) ratios: Ratios,
    /// Size groups compared.
    pub(crate) groups: u32,
    /// Async calls in the compared groups.
    pub(crate) async_calls: u64,
}

/// One compared group: its weight and ratios.
struct Part {
    weight: f64,
    ratios: Ratios,
}

/// What a baseline quantile is: the histogram of the same window's sync
/// calls, or a frozen value.
enum Side<'a> {
    Window(&'a Histogram),
    Frozen { p50_ms: f64, p95_ms: f64 },
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn part(
    async_h: &Histogram,
    baseline: &Side<'_>,
    calls: u64,
    confidence: Confidence,
) -> Option<Part> {
    let ms = |h: &Histogram, q: f64| h.quantile(q).map_or(0.0, |us| us / 1000.0);
    let one = |q: f64, base_ms: f64| {
        let interval = match baseline {
            Side::Window(sync) => quantile_ratio(async_h, sync, q, confidence),
            Side::Frozen { .. } => quantile_ratio_to(async_h, base_ms * 1000.0, q, confidence),
        };
        // Both sides have calls here; an empty side would know nothing.
        (
            ms(async_h, q) / base_ms,
            interval.unwrap_or(Interval::unknown()),
        )
    };
    let (p50_ms, p95_ms) = match baseline {
        Side::Window(sync) => (ms(sync, 0.50), ms(sync, 0.95)),
        Side::Frozen { p50_ms, p95_ms } => (*p50_ms, *p95_ms),
    };
    if p50_ms <= 0.0 || p95_ms <= 0.0 {
        return None;
    }
    let (a, s) = (async_h.len() as f64, calls as f64);
    Some(Part {
        weight: a * s / (a + s),
        ratios: Ratios {
            p50: one(0.50, p50_ms),
            p95: one(0.95, p95_ms),
        },
    })
}

/// The weighted mean of the parts' log-ratios and of their interval ends;
/// one part is itself, unrounded.
fn combine(parts: &[Part], pick: fn(&Ratios) -> (f64, Interval)) -> (f64, Interval) {
    if let [only] = parts {
        return pick(&only.ratios);
    }
    let total: f64 = parts.iter().map(|p| p.weight).sum();
    let mean = |value: fn((f64, Interval)) -> f64| {
        let sum: f64 = parts
            .iter()
            .map(|p| p.weight * value(pick(&p.ratios)).ln())
            .sum();
        (sum / total).exp()
    };
    (
        mean(|(ratio, _)| ratio),
        Interval {
            low: mean(|(_, i)| i.low),
            high: mean(|(_, i)| i.high),
        },
    )
}

fn matched(parts: &[Part], async_calls: u64) -> Option<Matched> {
    if parts.is_empty() {
        return None;
    }
    Some(Matched {
        ratios: Ratios {
            p50: combine(parts, |r| r.p50),
            p95: combine(parts, |r| r.p95),
        },
        groups: u32::try_from(parts.len()).unwrap_or(u32::MAX),
        async_calls,
    })
}

/// Calls counted by [`compare_window`] and [`compare_frozen`]: compared
/// ones (`None` when no group could be compared).
pub(crate) type Comparison = (Option<Matched>, u64, u64);

/// The window's async calls against its own sync calls, size by size.
/// Returns the comparison and the async and sync calls it used.
pub(crate) fn compare_window(window: &SiteSnapshot, confidence: Confidence) -> Comparison {
    let direct = BySize::of(window, ExecutionType::Async);
    let sync = BySize::of(window, ExecutionType::Sync);
    let spans = spans(&[&direct, &sync]);
    let only = spans.len() == 1;
    let (mut parts, mut a_calls, mut s_calls) = (Vec::new(), 0, 0);
    for span in spans {
        let (a, s) = (direct.within(span), sync.within(span));
        let enough = a.len() >= GROUP_MIN && s.len() >= GROUP_MIN;
        if a.is_empty() || s.is_empty() || !(enough || only) {
            continue;
        }
        if let Some(part) = part(&a, &Side::Window(&s), s.len(), confidence) {
            a_calls += a.len();
            s_calls += s.len();
            parts.push(part);
        }
    }
    (matched(&parts, a_calls), a_calls, s_calls)
}

/// The window's async calls against a frozen baseline, size group by size
/// group when it kept them (else against its overall quantiles).
pub(crate) fn compare_frozen(
    window: &SiteSnapshot,
    baseline: &Baseline,
    confidence: Confidence,
) -> Comparison {
    let direct = BySize::of(window, ExecutionType::Async);
    let overall = [SizeBaseline {
        min_bytes: None,
        max_bytes: None,
        p50_ms: baseline.p50_ms,
        p95_ms: baseline.p95_ms,
        calls: baseline.calls,
    }];
    let sized = !baseline.by_size.is_empty() && !direct.classes.is_empty();
    let groups: &[SizeBaseline] = if sized { &baseline.by_size } else { &overall };
    let (mut parts, mut a_calls, mut s_calls) = (Vec::new(), 0, 0);
    for group in groups {
        let a = if sized {
            direct.within(Span::of(group))
        } else {
            window.path(ExecutionType::Async).latency.clone()
        };
        if a.is_empty() || (sized && a.len() < GROUP_MIN) {
            continue;
        }
        let side = Side::Frozen {
            p50_ms: group.p50_ms,
            p95_ms: group.p95_ms,
        };
        if let Some(part) = part(&a, &side, group.calls, confidence) {
            a_calls += a.len();
            s_calls += group.calls;
            parts.push(part);
        }
    }
    (matched(&parts, a_calls), a_calls, s_calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_upload_runtime::metrics::UploadRecord;

    fn call(et: ExecutionType, bytes: Option<u64>, ms: f64) -> UploadRecord {
        let mut record = UploadRecord::new("sized", et, true, ms, 1);
        record.bytes = bytes;
        record
    }

    #[test]
    fn sparse_classes_merge_into_groups_with_enough_calls_on_both_sides() {
        let mut window = SiteSnapshot::empty("sized");
        // Sync: 30 calls in each of classes 11..=14; async: 4 per class.
        for class in 11..=14u32 {
            for i in 0..30 {
                window.record(&call(
                    ExecutionType::Sync,
                    Some((1 << (class - 1)) + i),
                    5.0,
                ));
            }
            for i in 0..4 {
                window.record(&call(
                    ExecutionType::Async,
                    Some((1 << (class - 1)) + i),
                    5.0,
                ));
            }
        }
        let direct = BySize::of(&window, ExecutionType::Async);
        let sync = BySize::of(&window, ExecutionType::Sync);
        assert!(direct.no_size.is_empty() && sync.no_size.is_empty());
        // 4 + 4 + 4 = 12 ≥ 10 closes a group; the last class joins it.
        assert_eq!(spans(&[&direct, &sync]), [Span::Classes(11, 14)]);
        let (matched, a, s) = compare_window(&window, Confidence::DEFAULT);
        assert_eq!((a, s), (16, 120));
        let matched = matched.unwrap();
        assert_eq!(matched.groups, 1);
        assert!((matched.ratios.p50.0 - 1.0).abs() < 1e-9);
    }

    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn a_skewed_cohort_of_equal_speed_per_byte_compares_as_equal() {
        let mut window = SiteSnapshot::empty("sized");
        // 1 ms per KiB on both paths; async calls are 4x larger on average.
        for class in 10..=20u32 {
            let bytes = 1u64 << class;
            let ms = bytes as f64 / 1024.0;
            let (sync_n, async_n) = if class < 15 { (400, 10) } else { (100, 40) };
            for _ in 0..sync_n {
                window.record(&call(ExecutionType::Sync, Some(bytes), ms));
            }
            for _ in 0..async_n {
                window.record(&call(ExecutionType::Async, Some(bytes), ms));
            }
        }
        let naive = window
            .path(ExecutionType::Async)
            .latency
            .quantile(0.5)
            .unwrap()
            / window
                .path(ExecutionType::Sync)
                .latency
                .quantile(0.5)
                .unwrap();
        assert!(naive > 4.0, "unmatched, the cohort looks {naive}x slower");
        let matched = compare_window(&window, Confidence::DEFAULT).0.unwrap();
        assert!((matched.ratios.p50.0 - 1.0).abs() < 0.01, "{matched:?}");
        assert!((matched.ratios.p95.0 - 1.0).abs() < 0.01, "{matched:?}");
        assert!(matched.ratios.p50.1.contains(1.0));
        // Frozen by size, then compared at 100 %.
        let groups = frozen_groups(&window);
        assert!(groups.len() > 5, "{groups:?}");
        let baseline = Baseline::of(&window).unwrap();
        let frozen = compare_frozen(&window, &baseline, Confidence::DEFAULT)
            .0
            .unwrap();
        assert!((frozen.ratios.p50.0 - 1.0).abs() < 0.01, "{frozen:?}");
    }

    #[test]
    fn without_sizes_it_is_the_plain_quantile_ratio() {
        let mut window = SiteSnapshot::empty("sized");
        for i in 0..200 {
            window.record(&call(ExecutionType::Sync, None, 10.0 + f64::from(i % 7)));
            window.record(&call(ExecutionType::Async, None, 15.0 + f64::from(i % 5)));
        }
        let matched = compare_window(&window, Confidence::DEFAULT).0.unwrap();
        let q = |et, q| window.path(et).latency.quantile(q).unwrap() / 1000.0;
        let plain = q(ExecutionType::Async, 0.5) / q(ExecutionType::Sync, 0.5);
        assert_eq!(matched.ratios.p50.0.to_bits(), plain.to_bits());
        assert_eq!(matched.groups, 1);
        assert!(frozen_groups(&window).is_empty());
    }
}
