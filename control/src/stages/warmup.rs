//! When the memory trigger may look: its baseline is taken after warm-up,
//! and it judges only with enough calls since.
//!
//! A service that starts with its controller grows while it loads caches,
//! opens pools and serves its first calls; measured from the stage's first
//! instant, that growth looked like a leak (a site was rolled back after 2
//! calls, at +31 % of a few megabytes). So the baseline is the resident
//! memory at the first tick where the stage has `min_calls` enrolled calls,
//! and the trigger sees memory only once `min_calls` more have been made:
//! the same too-little-data rule as the rate triggers. The absolute floor
//! is the evaluator's ([`Triggers::rollback_memory_floor`](super::Triggers)).

use super::verdict::Memory;

/// The memory baseline of one stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemoryBaseline {
    /// Resident bytes and enrolled calls when the baseline was taken.
    taken: Option<(u64, u64)>,
}

impl MemoryBaseline {
    /// Takes the stage's enrolled calls and the resident bytes now; returns
    /// the measurement to judge, once there is one worth judging.
    pub(crate) fn observe(
        &mut self,
        enrolled: u64,
        resident: Option<u64>,
        min_calls: u64,
    ) -> Option<Memory> {
        let now_bytes = resident?;
        let min_calls = min_calls.max(1);
        let (start_bytes, at) = match self.taken {
            Some(taken) => taken,
            None if enrolled >= min_calls => *self.taken.insert((now_bytes, enrolled)),
            None => return None,
        };
        (enrolled.saturating_sub(at) >= min_calls).then_some(Memory {
            start_bytes,
            now_bytes,
        })
    }

    /// Resident bytes of the baseline, once taken.
    #[cfg(test)]
    fn bytes(&self) -> Option<u64> {
        self.taken.map(|(bytes, _)| bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn no_baseline_before_warm_up_and_no_judgement_right_after() {
        let mut baseline = MemoryBaseline::default();
        // Start-up: 0 then 2 calls while caches load.
        assert_eq!(baseline.observe(0, Some(7 * MB), 20), None);
        assert_eq!(baseline.observe(2, Some(48 * MB), 20), None);
        assert_eq!(baseline.bytes(), None);
        // Warm: the baseline is taken here ...
        assert_eq!(baseline.observe(25, Some(50 * MB), 20), None);
        assert_eq!(baseline.bytes(), Some(50 * MB));
        // ... and judged only after 20 more calls.
        assert_eq!(baseline.observe(30, Some(90 * MB), 20), None);
        assert_eq!(
            baseline.observe(45, Some(90 * MB), 20),
            Some(Memory {
                start_bytes: 50 * MB,
                now_bytes: 90 * MB
            })
        );
    }

    #[test]
    fn nothing_without_a_probe() {
        let mut baseline = MemoryBaseline::default();
        assert_eq!(baseline.observe(1000, None, 20), None);
        assert_eq!(baseline.bytes(), None);
    }
}
