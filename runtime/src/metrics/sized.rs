//! Latency per size class: what lets the judge compare async and sync
//! calls of the same size (uploads differ in size by orders of magnitude,
//! and a small keyed cohort is rarely size-balanced).
//!
//! Class `k` holds the calls that declared `bytes` with `2^(k-1) ≤ bytes <
//! 2^k` (class 0: zero bytes): log2 buckets, so a class spans a factor of
//! two. Calls without a size are in no class; their latency is the path's
//! histogram less every class's. A class's histogram is made on the first
//! call of that size, so a site whose calls declare no size pays nothing.

use std::sync::OnceLock;

use super::histogram::{AtomicHistogram, Histogram};

/// Classes of a `u64` byte count: 0 and one per power of two.
pub const SIZE_CLASSES: usize = 65;

/// The class of a call of `bytes` bytes.
#[must_use]
pub fn size_class(bytes: u64) -> usize {
    (u64::BITS - bytes.leading_zeros()) as usize
}

/// `[low, high)` bytes of class `class` (`high` is `None` past `u64::MAX`).
#[must_use]
pub fn class_bytes(class: usize) -> (u64, Option<u64>) {
    match class {
        0 => (0, Some(1)),
        _ => (
            1 << (class - 1),
            u32::try_from(class).ok().and_then(|c| 1u64.checked_shl(c)),
        ),
    }
}

/// The live per-class histograms of one path.
pub(crate) struct AtomicSized {
    classes: [OnceLock<AtomicHistogram>; SIZE_CLASSES],
}

impl AtomicSized {
    pub(crate) fn new() -> Self {
        AtomicSized {
            classes: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Counts one call of `bytes` (if it declared a size) taking `micros`.
    pub(crate) fn record(&self, bytes: Option<u64>, micros: u64) {
        if let Some(bytes) = bytes {
            self.classes[size_class(bytes)]
                .get_or_init(AtomicHistogram::new)
                .record(micros);
        }
    }

    pub(crate) fn snapshot(&self) -> SizeClasses {
        let mut sized = SizeClasses::default();
        for (class, histogram) in self.classes.iter().enumerate() {
            if let Some(histogram) = histogram.get() {
                *sized.slot(class) = Some(histogram.snapshot());
            }
        }
        sized
    }
}

/// A copy of one path's per-class histograms: index = class, `None` for a
/// class no call of the path has had.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SizeClasses {
    classes: Vec<Option<Histogram>>,
}

impl SizeClasses {
    fn slot(&mut self, class: usize) -> &mut Option<Histogram> {
        if self.classes.len() <= class {
            self.classes.resize_with(class + 1, || None);
        }
        &mut self.classes[class]
    }

    pub(crate) fn record(&mut self, bytes: Option<u64>, micros: u64) {
        if let Some(bytes) = bytes {
            self.slot(size_class(bytes))
                .get_or_insert_with(Histogram::default)
                .record(micros);
        }
    }

    /// The calls made after `earlier`, a copy of the same counters.
    #[must_use]
    pub fn since(&self, earlier: &SizeClasses) -> SizeClasses {
        SizeClasses {
            classes: self
                .classes
                .iter()
                .enumerate()
                .map(|(class, now)| {
                    let now = now.as_ref()?;
                    Some(match earlier.classes.get(class).and_then(Option::as_ref) {
                        Some(then) => now.since(then),
                        None => now.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Adds `other`'s calls.
    pub fn merge(&mut self, other: &SizeClasses) {
        for (class, theirs) in other.classes.iter().enumerate() {
            if let Some(theirs) = theirs {
                self.slot(class)
                    .get_or_insert_with(Histogram::default)
                    .merge(theirs);
            }
        }
    }

    /// The classes with calls, smallest first.
    pub fn classes(&self) -> impl Iterator<Item = (usize, &Histogram)> {
        self.classes
            .iter()
            .enumerate()
            .filter_map(|(class, h)| h.as_ref().filter(|h| !h.is_empty()).map(|h| (class, h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_powers_of_two() {
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(1), 1);
        assert_eq!(size_class(1023), 10);
        assert_eq!(size_class(1024), 11);
        assert_eq!(size_class(2047), 11);
        assert_eq!(size_class(u64::MAX), 64);
        for class in 0..SIZE_CLASSES {
            let (low, high) = class_bytes(class);
            assert_eq!(size_class(low), class);
            if let Some(high) = high {
                assert_eq!(size_class(high - 1), class);
                assert_eq!(size_class(high), class + 1);
            }
        }
    }

    #[test]
    fn live_and_copied_classes_agree_and_subtract() {
        let live = AtomicSized::new();
        let mut copy = SizeClasses::default();
        for (bytes, micros) in [(Some(1500), 10), (Some(1600), 20), (None, 5), (Some(9), 7)] {
            live.record(bytes, micros);
            copy.record(bytes, micros);
        }
        let snapshot = live.snapshot();
        assert_eq!(snapshot.classes().count(), 2);
        let counts: Vec<(usize, u64)> = snapshot.classes().map(|(c, h)| (c, h.len())).collect();
        assert_eq!(counts, [(4, 1), (11, 2)]);
        let copied: Vec<(usize, u64)> = copy.classes().map(|(c, h)| (c, h.len())).collect();
        assert_eq!(copied, counts);
        let before = snapshot.clone();
        live.record(Some(1 << 20), 100);
        let window = live.snapshot().since(&before);
        let counts: Vec<(usize, u64)> = window.classes().map(|(c, h)| (c, h.len())).collect();
        assert_eq!(counts, [(21, 1)]);
    }
}
