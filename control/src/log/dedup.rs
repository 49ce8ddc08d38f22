//! One event, one line, across instances' files: every replica of a fleet
//! writes the stage it enters (its guard runs a controller too) and every
//! replica applying an operator's change logs it, so a merged fleet report
//! would list "stage 1 entered" once per replica. A line that repeats one
//! seen within [`DUPLICATE_WITHIN`] (same kind, site and content; any
//! time, any file) is a copy.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use super::event::{Event, StageEvent};
use super::operator::OperatorEvent;

/// How far apart two copies of one event may be written: replicas apply a
/// shared change within about a second of each other.
pub(crate) const DUPLICATE_WITHIN: Duration = Duration::from_secs(10);

/// What makes two lines the same event.
#[derive(Clone, Debug, PartialEq)]
enum Key {
    Entered(String, u32),
    Cleared(String, u32),
    Rollback(String, u32),
    Operator(OperatorEvent),
}

fn key(event: &Event) -> Option<Key> {
    Some(match event {
        Event::Stage(StageEvent::Entered(e)) => Key::Entered(e.site.clone(), e.stage),
        Event::Stage(StageEvent::RollbackCleared(e)) => Key::Cleared(e.site.clone(), e.stage),
        Event::Rollback(e) => Key::Rollback(e.site.clone(), e.stage),
        Event::Operator(e) => Key::Operator(OperatorEvent {
            ts: SystemTime::UNIX_EPOCH,
            ..e.clone()
        }),
        _ => return None,
    })
}

fn apart(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}

/// The events seen lately, to tell copies from new events: the report and
/// the HTML report count each event of a merged fleet log once.
///
/// Two lines are one event when they have the same kind, site and content
/// and were written at most 10 s apart (replicas apply a shared change
/// within about a second of each other). Stage entries, rollbacks, their
/// clearing and operator changes are deduplicated; other events never are.
#[derive(Clone, Debug, Default)]
pub struct Dedup {
    recent: VecDeque<(SystemTime, Key)>,
}

impl Dedup {
    /// Whether `event` is new: `false` for a copy of one seen within
    /// 10 s of it. Events other than stage entries,
    /// rollbacks, their clearing and operator changes are always new.
    pub fn first(&mut self, event: &Event) -> bool {
        let Some(key) = key(event) else {
            return true;
        };
        let ts = event.ts();
        self.recent
            .retain(|(at, _)| apart(*at, ts) <= DUPLICATE_WITHIN);
        if self.recent.iter().any(|(_, seen)| *seen == key) {
            return false;
        }
        self.recent.push_back((ts, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::{Stage, Triggers};

    fn entered(stage: u32, secs: u64) -> Event {
        Event::Stage(StageEvent::Entered(super::super::StageEntered::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            "up",
            Stage::new(stage, 1.0),
            Triggers::DEFAULT,
        )))
    }

    #[test]
    fn copies_close_in_time_are_dropped_and_later_repeats_kept() {
        let mut dedup = Dedup::default();
        assert!(dedup.first(&entered(1, 100)));
        assert!(!dedup.first(&entered(1, 101)), "another replica's copy");
        assert!(!dedup.first(&entered(1, 99)), "written a little earlier");
        assert!(dedup.first(&entered(2, 101)), "another stage");
        assert!(dedup.first(&entered(1, 200)), "entered again, later");
    }
}
