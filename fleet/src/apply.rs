//! Writes the shared state into the process's live configuration, the only
//! thing the call path reads. Each transition is applied and reported once
//! (a [`Change`]): the applier compares with what is in force, never per call.
//!
//! The rules, which never move a replica towards "more async" on
//! information it cannot trust:
//!
//! - A replica follows one store, named by its epoch. A store with another
//!   epoch, or none (Redis came back empty, or is another Redis), is
//!   *replaced*: the replica keeps the state it last followed, and takes
//!   from the new store only what makes it safer (latches, kill switches,
//!   sites with bad data), until an operator sets the defaults there.
//! - A latch is lifted only by an explicit clear in the store where this
//!   replica saw it latched. A latch the store lacks (empty store, hash
//!   deleted, written while cut off) is written back.
//! - A site with a value that is not accepted runs the sync path; every
//!   other site is applied as usual.

use std::collections::{BTreeMap, BTreeSet};

use async_upload_runtime::config::{ConfigHandle, SiteOverrides};

use super::change::{Change, What};
use super::health::Clear;
use super::state::{Defaults, FleetState, SiteState};

/// A latch this replica holds.
#[derive(Clone, Debug, PartialEq)]
struct Latch {
    reason: String,
    by: Option<String>,
    /// The epoch of the store in which it was last seen latched (`""` for
    /// a store without one); `None`: never seen in a store (latched here).
    confirmed: Option<String>,
}

/// Which store this replica follows.
#[derive(Clone, Debug, PartialEq)]
enum Following {
    /// None yet: no store had state when this replica read it.
    Nothing,
    /// The store with this epoch (`None`: a store written by hand, without one).
    Epoch(Option<String>),
}

/// A store that is not the one followed, since this replica first saw it.
#[derive(Clone, Debug)]
struct Replaced {
    epoch: Option<String>,
    /// Its version when first seen: defaults an operator writes after it
    /// make this store the followed one.
    since_version: u64,
}

/// What the replica must do after an apply.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Outcome {
    /// Latches the store lacks: `(site, reason)`, to write back.
    pub(crate) write_backs: Vec<(String, String)>,
    /// The store has never held state (as far as this replica knows): the
    /// environment may seed it.
    pub(crate) empty: bool,
}

/// What is in force, from the shared state and the local rules.
#[derive(Clone, Debug, PartialEq)]
struct Desired {
    enabled: bool,
    rollout: Option<f64>,
    defaults_by: Option<String>,
    sites: BTreeMap<String, Want>,
}

#[derive(Clone, Debug, PartialEq)]
struct Want {
    overrides: SiteOverrides,
    stage: Option<u32>,
    by: Option<String>,
}

/// What this replica has applied, and the local rules on top of it.
#[derive(Debug)]
pub(crate) struct Applier {
    instance: String,
    /// An explicit `ASYNC_UPLOAD_ENABLED`: `Some(false)` is a local kill
    /// switch the shared state cannot lift.
    local_enabled: Option<bool>,
    following: Following,
    /// The followed store's state as last applied (kept in force while the
    /// store is replaced).
    followed: Option<FleetState>,
    /// The store as last read.
    store: Option<FleetState>,
    replaced: Option<Replaced>,
    latches: BTreeMap<String, Latch>,
    /// Sites whose shared overrides are in the configuration.
    applied_sites: BTreeSet<String>,
    /// What was in force after the last apply (for the changes).
    in_force: Option<Desired>,
    /// Problems already reported, so each is reported once.
    reported: BTreeSet<String>,
    /// The replica fell to the sync path after `stale_after` without contact.
    stale: bool,
}

/// The five settings the shared state holds for a site; the other
/// overrides (breaker, backoff) stay local to each replica.
fn shared(overrides: &SiteOverrides) -> SiteOverrides {
    SiteOverrides {
        enabled: overrides.enabled,
        rollout: overrides.rollout,
        fallback: overrides.fallback,
        max_retries: overrides.max_retries,
        timeout: overrides.timeout,
        ..SiteOverrides::default()
    }
}

fn epoch_key(epoch: Option<&String>) -> String {
    epoch.cloned().unwrap_or_default()
}

impl Applier {
    pub(crate) fn new(instance: &str, local_enabled: Option<bool>) -> Self {
        Applier {
            instance: instance.to_owned(),
            local_enabled,
            following: Following::Nothing,
            followed: None,
            store: None,
            replaced: None,
            latches: BTreeMap::new(),
            applied_sites: BTreeSet::new(),
            in_force: None,
            reported: BTreeSet::new(),
            stale: false,
        }
    }

    /// The version of the store as last read (0: none).
    pub(crate) fn version(&self) -> u64 {
        self.store.as_ref().map_or(0, |s| s.version)
    }

    /// The epoch of the store as last read.
    pub(crate) fn epoch(&self) -> Option<String> {
        self.store.as_ref().and_then(|s| s.epoch.clone())
    }

    /// Whether this replica runs on state remembered from a replaced store.
    pub(crate) fn remembered(&self) -> bool {
        self.replaced.is_some()
    }

    /// The state in force: the followed store's, or the store's while none is followed.
    fn base(&self) -> Option<&FleetState> {
        if self.replaced.is_some() {
            self.followed.as_ref()
        } else {
            self.store.as_ref()
        }
    }

    /// The stage clock of `site` in force: stage and when it was entered.
    pub(crate) fn stage(&self, site: &str) -> Option<(u32, Option<u64>)> {
        let site = self.base()?.sites.get(site)?;
        site.stage.map(|stage| (stage, site.stage_entered_ms))
    }

    /// The stage clock of `site` as the store holds it now.
    pub(crate) fn stored_stage(&self, site: &str) -> Option<(u32, Option<u64>)> {
        let site = self.store.as_ref()?.sites.get(site)?;
        site.stage.map(|stage| (stage, site.stage_entered_ms))
    }

    /// The last explicit clear of `site`'s latch in the store, if any.
    pub(crate) fn clear(&self, site: &str) -> Option<Clear> {
        let store = self.store.as_ref()?;
        let version = store.sites.get(site)?.cleared_version?;
        Some(Clear {
            epoch: store.epoch.clone(),
            version,
        })
    }

    /// The sites this replica knows (read even if the sites set lost them).
    pub(crate) fn known_sites(&self) -> Vec<String> {
        let mut known: BTreeSet<String> = self.latches.keys().cloned().collect();
        known.extend(self.applied_sites.iter().cloned());
        known.into_iter().collect()
    }

    /// Whether the store as last read had no problem outside its sites
    /// (what `stale_after` counts as contact with valid state).
    pub(crate) fn store_valid(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.problems.is_empty())
    }

    /// Whether this replica holds a latch for `site`.
    pub(crate) fn latched(&self, site: &str) -> bool {
        self.latches.contains_key(site)
    }

    /// Takes a latch thrown on this replica (by its controller): it stays
    /// until the store clears it, and is written back until the store holds it.
    pub(crate) fn latch(&mut self, site: &str, reason: &str) {
        self.latches
            .entry(site.to_owned())
            .or_insert_with(|| Latch {
                reason: super::state::bounded(reason, super::keys::TEXT_LIMIT).to_owned(),
                by: None,
                confirmed: None,
            });
    }

    /// Forgets the latch of `site` (an operator action through this
    /// replica's code: the clear is written to the store).
    pub(crate) fn unlatch(&mut self, site: &str) {
        self.latches.remove(site);
    }

    /// Applies a state read from the store: returns the latches to write
    /// back and whether the store is empty (the environment may seed it).
    pub(crate) fn apply(&mut self, read: FleetState, handle: &ConfigHandle) -> Outcome {
        if self.stale {
            tracing::info!(
                instance = %self.instance,
                version = read.version,
                "async-upload fleet: Redis reached again; shared state applied"
            );
            self.stale = false;
        }
        self.report_problems(&read);
        let empty = read.epoch.is_none() && read.defaults.is_none() && read.sites.is_empty();
        self.follow(&read, empty);
        if self.replaced.is_none() && self.following != Following::Nothing {
            self.followed = Some(read.clone());
        }
        let mut changes = Vec::new();
        let write_backs = self.latch_rules(&read, handle, &mut changes);
        self.store = Some(read);
        self.push(handle, &mut changes);
        for change in &changes {
            change.emit(&self.instance);
        }
        Outcome {
            write_backs,
            empty: empty && self.following == Following::Nothing,
        }
    }

    /// Which store to follow after reading `read`.
    fn follow(&mut self, read: &FleetState, empty: bool) {
        let Following::Epoch(followed) = &self.following else {
            if !empty {
                self.following = Following::Epoch(read.epoch.clone());
            }
            return;
        };
        if *followed == read.epoch {
            self.replaced = None;
            return;
        }
        // An empty store that gets its epoch (a latch written back, an
        // operator's first write) is the same replacement, not another one.
        let same_replacement = self
            .replaced
            .as_ref()
            .is_some_and(|r| r.epoch == read.epoch || r.epoch.is_none());
        if let (true, Some(replaced)) = (same_replacement, self.replaced.as_mut()) {
            replaced.epoch.clone_from(&read.epoch);
        } else {
            tracing::error!(
                instance = %self.instance,
                followed = followed.as_deref().unwrap_or("none"),
                found = read.epoch.as_deref().unwrap_or("none"),
                latches = self.latches.len(),
                "async-upload fleet: the shared state's store came back empty or is another Redis \
                 (its store epoch changed): keeping the last known state and every latch, writing \
                 the latches back; set the defaults (`async-upload fleet set`) to make this store \
                 the switch board again"
            );
            self.replaced = Some(Replaced {
                epoch: read.epoch.clone(),
                since_version: read.version,
            });
        }
        let adopt = self.replaced.as_ref().is_some_and(|r| {
            read.defaults.is_some()
                && read.defaults_version > r.since_version
                && read
                    .defaults_by
                    .as_deref()
                    .is_some_and(|by| by.starts_with("operator"))
        });
        if adopt {
            tracing::info!(
                instance = %self.instance,
                epoch = read.epoch.as_deref().unwrap_or("none"),
                by = read.defaults_by.as_deref().unwrap_or(""),
                "async-upload fleet: an operator set the defaults in the new store: following it"
            );
            self.following = Following::Epoch(read.epoch.clone());
            self.replaced = None;
        }
    }

    /// The latch rules of the module docs; returns the latches to write back.
    fn latch_rules(
        &mut self,
        read: &FleetState,
        handle: &ConfigHandle,
        changes: &mut Vec<Change>,
    ) -> Vec<(String, String)> {
        let here = epoch_key(read.epoch.as_ref());
        // A latch thrown on this configuration by hand is the fleet's too.
        let known: BTreeSet<String> = read
            .sites
            .keys()
            .chain(self.latches.keys())
            .cloned()
            .collect();
        for site in &known {
            if !self.latches.contains_key(site)
                && read.sites.get(site).is_none_or(|s| s.rollback.is_none())
            {
                if let Some(reason) = handle.rollback_reason(site) {
                    self.latch(site, &reason);
                }
            }
        }
        for (site, state) in &read.sites {
            if let Some(reason) = &state.rollback {
                self.latches.insert(
                    site.clone(),
                    Latch {
                        reason: reason.clone(),
                        by: state.by.clone(),
                        confirmed: Some(here.clone()),
                    },
                );
            }
        }
        let (write_backs, lifted) = self.sort_latches(read);
        for (site, by) in lifted {
            if let Some(latch) = self.latches.remove(&site) {
                made_by(by.as_deref(), || handle.clear_rollback(&site));
                changes.push(Change {
                    site: Some(site),
                    what: What::Rollback {
                        old: Some(latch.reason),
                        new: None,
                    },
                    by,
                });
            }
        }
        for (site, latch) in &self.latches {
            if handle.rollback_reason(site).is_none() {
                made_by(latch.by.as_deref(), || {
                    handle.roll_back(site, latch.reason.clone())
                });
                changes.push(Change {
                    site: Some(site.clone()),
                    what: What::Rollback {
                        old: None,
                        new: Some(latch.reason.clone()),
                    },
                    by: latch.by.clone(),
                });
            }
        }
        write_backs
    }

    /// The latches `read` lacks: those to write back, and those it cleared
    /// since this replica saw them latched there (to lift, with who cleared).
    #[allow(clippy::type_complexity)]
    fn sort_latches(
        &self,
        read: &FleetState,
    ) -> (Vec<(String, String)>, Vec<(String, Option<String>)>) {
        let here = epoch_key(read.epoch.as_ref());
        let mut write_backs = Vec::new();
        let mut lifted = Vec::new();
        for (site, latch) in &self.latches {
            let stored = read.sites.get(site);
            if stored.is_some_and(|s| s.rollback.is_some()) {
                continue;
            }
            let cleared_here = stored.is_some_and(|s| s.cleared_version.is_some())
                && latch.confirmed.as_deref() == Some(here.as_str());
            if cleared_here {
                lifted.push((site.clone(), stored.and_then(|s| s.by.clone())));
            } else {
                write_backs.push((site.clone(), latch.reason.clone()));
            }
        }
        (write_backs, lifted)
    }

    /// The latches the store as last read lacks (a latch thrown here since:
    /// written back at the next poll even when nothing else changed).
    pub(crate) fn unwritten(&self) -> Vec<(String, String)> {
        self.store
            .as_ref()
            .map(|store| self.sort_latches(store).0)
            .unwrap_or_default()
    }

    /// What is in force: the base state, what the store says that is safer,
    /// and the local rules.
    fn desired(&self) -> Desired {
        let empty = FleetState::default();
        let base = self.base().unwrap_or(&empty);
        let mut enabled = base.defaults.is_some_and(|d| d.enabled);
        let mut sites: BTreeMap<String, Want> = base
            .sites
            .iter()
            .map(|(name, site)| (name.clone(), want(site)))
            .collect();
        if self.replaced.is_some() {
            // From a store not followed: only what makes this replica safer.
            if let Some(store) = &self.store {
                if store.defaults.is_some_and(|d: Defaults| !d.enabled) {
                    enabled = false;
                }
                for (name, site) in &store.sites {
                    if site.invalid() || site.overrides.enabled == Some(false) {
                        let entry = sites.entry(name.clone()).or_insert_with(|| Want {
                            overrides: SiteOverrides::default(),
                            stage: None,
                            by: site.by.clone(),
                        });
                        entry.overrides.enabled = Some(false);
                    }
                }
            }
        }
        Desired {
            enabled: enabled && !self.stale && self.local_enabled != Some(false),
            rollout: base.defaults.map(|d| d.rollout),
            defaults_by: base.defaults_by.clone(),
            sites,
        }
    }

    /// Puts the desired state in force where the configuration differs.
    fn push(&mut self, handle: &ConfigHandle, changes: &mut Vec<Change>) {
        let desired = self.desired();
        self.push_defaults(&desired, handle, changes);
        self.push_sites(&desired, handle, changes);
        self.in_force = Some(desired);
    }

    fn push_defaults(&self, desired: &Desired, handle: &ConfigHandle, changes: &mut Vec<Change>) {
        let config = handle.config();
        let rollout = desired.rollout.unwrap_or(config.rollout);
        if config.enabled != desired.enabled || config.rollout.to_bits() != rollout.to_bits() {
            let by = if self.stale || self.local_enabled == Some(false) {
                None
            } else {
                desired.defaults_by.clone()
            };
            if config.enabled != desired.enabled {
                changes.push(Change {
                    site: None,
                    what: What::Enabled {
                        old: Some(config.enabled),
                        new: Some(desired.enabled),
                    },
                    by: by.clone(),
                });
            }
            if config.rollout.to_bits() != rollout.to_bits() {
                changes.push(Change {
                    site: None,
                    what: What::Rollout {
                        old: Some(config.rollout),
                        new: Some(rollout),
                    },
                    by: by.clone(),
                });
            }
            let applied = made_by(by.as_deref(), || {
                handle.update(|c| {
                    c.enabled = desired.enabled;
                    c.rollout = rollout;
                })
            });
            if let Err(error) = applied {
                tracing::error!(%error, "async-upload fleet: shared defaults not applied");
            }
        }
    }

    fn push_sites(&mut self, desired: &Desired, handle: &ConfigHandle, changes: &mut Vec<Change>) {
        let old_stages: BTreeMap<&String, Option<u32>> = self
            .in_force
            .iter()
            .flat_map(|d| d.sites.iter().map(|(name, want)| (name, want.stage)))
            .collect();
        for (site, want) in &desired.sites {
            let current = handle.site_overrides(site);
            if shared(&current) != want.overrides {
                site_changes(
                    site,
                    &shared(&current),
                    &want.overrides,
                    want.by.as_ref(),
                    changes,
                );
                let merged = SiteOverrides {
                    enabled: want.overrides.enabled,
                    rollout: want.overrides.rollout,
                    fallback: want.overrides.fallback,
                    max_retries: want.overrides.max_retries,
                    timeout: want.overrides.timeout,
                    ..current
                };
                let applied = made_by(want.by.as_deref(), || handle.set_site(site, merged));
                if let Err(error) = applied {
                    tracing::error!(site, %error, "async-upload fleet: shared overrides not applied");
                }
            }
            let old = old_stages.get(site).copied().flatten();
            if old != want.stage {
                changes.push(Change {
                    site: Some(site.clone()),
                    what: What::Stage {
                        old,
                        new: want.stage,
                    },
                    by: want.by.clone(),
                });
            }
            self.applied_sites.insert(site.clone());
        }
        let gone: Vec<String> = self
            .applied_sites
            .iter()
            .filter(|s| !desired.sites.contains_key(*s))
            .cloned()
            .collect();
        for site in gone {
            // The site left the shared state: it follows the defaults again.
            let current = handle.site_overrides(&site);
            site_changes(
                &site,
                &shared(&current),
                &SiteOverrides::default(),
                None,
                changes,
            );
            let local = SiteOverrides {
                enabled: None,
                rollout: None,
                fallback: None,
                max_retries: None,
                timeout: None,
                ..current
            };
            let applied = made_by(None, || handle.set_site(&site, local));
            if let Err(error) = applied {
                tracing::error!(site, %error, "async-upload fleet: shared overrides not removed");
            }
            self.applied_sites.remove(&site);
        }
    }

    /// Each stored value that is not accepted is reported once (WARN,
    /// naming key, field, value and what is accepted), and once when it is
    /// gone; never as a lost contact.
    fn report_problems(&mut self, read: &FleetState) {
        let now: BTreeSet<String> = read.all_problems().map(ToString::to_string).collect();
        for problem in read.all_problems() {
            if !self.reported.contains(&problem.to_string()) {
                let site = problem
                    .variable()
                    .strip_prefix(super::keys::PREFIX)
                    .and_then(|k| k.strip_prefix("site:"))
                    .map(|k| k.split('.').next().unwrap_or(k));
                let invalid =
                    site.is_some_and(|s| read.sites.get(s).is_some_and(SiteState::invalid));
                tracing::warn!(
                    instance = %self.instance,
                    key = %problem.variable(),
                    value = %problem.value(),
                    accepted = problem.expected(),
                    site_runs_sync = invalid,
                    "async-upload fleet: a value in the shared state is not accepted{}",
                    if invalid { "; that site runs the sync path until it is fixed" } else { "" }
                );
            }
        }
        for gone in self.reported.difference(&now) {
            tracing::info!(instance = %self.instance, problem = %gone, "async-upload fleet: a value in the shared state is accepted again");
        }
        self.reported = now;
    }

    /// No contact for longer than `stale_after`: the replica runs the sync
    /// path until Redis is reached again. Logged once.
    pub(crate) fn fall_to_sync(&mut self, handle: &ConfigHandle, after: std::time::Duration) {
        if self.stale {
            return;
        }
        self.stale = true;
        tracing::warn!(
            instance = %self.instance,
            stale_after_s = after.as_secs_f64(),
            "async-upload fleet: no contact with valid shared state for ASYNC_UPLOAD_REDIS_STALE_AFTER; running the sync path"
        );
        let mut changes = Vec::new();
        self.push(handle, &mut changes);
        for change in &changes {
            change.emit(&self.instance);
        }
    }
}

/// Runs `f`, which applies a change from the shared state: the log's
/// `operator` lines name who made it there. A change the replica decided
/// itself (bad data, no contact, a latch of its own controller) is no
/// operator's, and has its own warning or stage event.
fn made_by<R>(by: Option<&str>, f: impl FnOnce() -> R) -> R {
    match by {
        Some(by) => async_upload_runtime::config::applied_by(by, f),
        None => async_upload_runtime::config::as_controller(f),
    }
}

fn want(site: &SiteState) -> Want {
    let overrides = if site.invalid() {
        // Bad data is local: this site runs the sync path, no other.
        SiteOverrides {
            enabled: Some(false),
            ..SiteOverrides::default()
        }
    } else {
        shared(&site.overrides)
    };
    Want {
        overrides,
        stage: site.stage,
        by: if site.invalid() {
            None
        } else {
            site.by.clone()
        },
    }
}

/// One change per shared setting that differs.
fn site_changes(
    site: &str,
    old: &SiteOverrides,
    new: &SiteOverrides,
    by: Option<&String>,
    changes: &mut Vec<Change>,
) {
    let whats = [
        (old.enabled != new.enabled).then_some(What::Enabled {
            old: old.enabled,
            new: new.enabled,
        }),
        (old.rollout.map(f64::to_bits) != new.rollout.map(f64::to_bits)).then_some(What::Rollout {
            old: old.rollout,
            new: new.rollout,
        }),
        (old.fallback != new.fallback).then_some(What::Fallback {
            old: old.fallback,
            new: new.fallback,
        }),
        (old.max_retries != new.max_retries).then_some(What::MaxRetries {
            old: old.max_retries,
            new: new.max_retries,
        }),
        (old.timeout != new.timeout).then_some(What::Timeout {
            old: old.timeout,
            new: new.timeout,
        }),
    ];
    for what in whats.into_iter().flatten() {
        changes.push(Change {
            site: Some(site.to_owned()),
            what,
            by: by.cloned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_upload_runtime::config::Config;

    fn store(epoch: Option<&str>, version: u64) -> FleetState {
        FleetState {
            epoch: epoch.map(str::to_owned),
            version,
            ..FleetState::default()
        }
    }

    fn with_defaults(mut state: FleetState, rollout: f64, by: &str, version: u64) -> FleetState {
        state.defaults = Some(Defaults {
            enabled: true,
            rollout,
        });
        state.defaults_by = Some(by.to_owned());
        state.defaults_version = version;
        state
    }

    fn site(state: &mut FleetState, name: &str, edit: impl FnOnce(&mut SiteState)) {
        let mut site = SiteState::default();
        edit(&mut site);
        state.sites.insert(name.to_owned(), site);
    }

    fn latched(state: &mut FleetState, name: &str) {
        site(state, name, |s| s.rollback = Some("drill".into()));
    }

    fn setup() -> (Applier, ConfigHandle) {
        (
            Applier::new("r1", None),
            ConfigHandle::detached(Config::default()),
        )
    }

    #[test]
    fn a_store_that_comes_back_empty_keeps_the_state_and_every_latch() {
        let (mut applier, handle) = setup();
        let mut first = with_defaults(store(Some("e1"), 3), 100.0, "operator", 1);
        latched(&mut first, "up");
        assert_eq!(applier.apply(first, &handle).write_backs, Vec::new());
        assert!(handle.config().enabled);

        let outcome = applier.apply(store(None, 0), &handle);
        assert!(applier.remembered());
        assert!(!outcome.empty, "a replica that has seen state never seeds");
        assert_eq!(outcome.write_backs, vec![("up".into(), "drill".into())]);
        assert!(handle.config().enabled, "the last known defaults stay");
        assert!((handle.config().rollout - 100.0).abs() < f64::EPSILON);
        assert_eq!(handle.rollback_reason("up").as_deref(), Some("drill"));
    }

    #[test]
    fn a_replaced_store_is_followed_once_an_operator_sets_its_defaults() {
        let (mut applier, handle) = setup();
        applier.apply(
            with_defaults(store(Some("e1"), 3), 100.0, "operator", 1),
            &handle,
        );
        applier.apply(store(None, 0), &handle);
        // The seed of a fresh replica is not an operator's word.
        applier.apply(
            with_defaults(store(Some("e2"), 1), 5.0, "seed:r9", 1),
            &handle,
        );
        assert!(applier.remembered());
        assert!((handle.config().rollout - 100.0).abs() < f64::EPSILON);
        applier.apply(
            with_defaults(store(Some("e2"), 2), 5.0, "operator:ann", 2),
            &handle,
        );
        assert!(!applier.remembered());
        assert!((handle.config().rollout - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn only_an_explicit_clear_where_the_latch_was_seen_lifts_it() {
        let (mut applier, handle) = setup();
        let mut first = with_defaults(store(Some("e1"), 3), 100.0, "operator", 1);
        latched(&mut first, "up");
        applier.apply(first, &handle);
        // The hash lost its latch without a clear: kept, written back.
        let mut lost = with_defaults(store(Some("e1"), 4), 100.0, "operator", 1);
        site(&mut lost, "up", |_| {});
        assert_eq!(applier.apply(lost, &handle).write_backs.len(), 1);
        assert!(handle.rollback_reason("up").is_some());
        // An explicit clear in the same store lifts it.
        let mut cleared = with_defaults(store(Some("e1"), 5), 100.0, "operator", 1);
        site(&mut cleared, "up", |s| s.cleared_version = Some(5));
        assert!(applier.apply(cleared, &handle).write_backs.is_empty());
        assert!(handle.rollback_reason("up").is_none());
    }

    #[test]
    fn a_clear_in_another_store_does_not_lift_a_latch_seen_elsewhere() {
        let (mut applier, handle) = setup();
        let mut first = with_defaults(store(Some("e1"), 3), 100.0, "operator", 1);
        latched(&mut first, "up");
        applier.apply(first, &handle);
        let mut other = with_defaults(store(Some("e2"), 9), 100.0, "operator", 1);
        site(&mut other, "up", |s| s.cleared_version = Some(2));
        let outcome = applier.apply(other, &handle);
        assert_eq!(outcome.write_backs.len(), 1);
        assert!(handle.rollback_reason("up").is_some());
    }

    #[test]
    fn a_site_with_a_bad_value_runs_sync_and_no_other() {
        let (mut applier, handle) = setup();
        let mut state = with_defaults(store(Some("e1"), 3), 100.0, "operator", 1);
        site(&mut state, "bad", |s| {
            s.problems
                .push(async_upload_runtime::config::ConfigError::new(
                    "k.max_retries",
                    "99",
                    "0 to 10",
                ));
        });
        site(&mut state, "good", |s| s.overrides.rollout = Some(10.0));
        applier.apply(state, &handle);
        assert_eq!(handle.site_overrides("bad").enabled, Some(false));
        assert_eq!(handle.site_overrides("good").rollout, Some(10.0));
        assert_eq!(handle.site_overrides("good").enabled, None);
        assert!(handle.config().enabled);
    }

    #[test]
    fn only_a_store_that_never_held_state_may_be_seeded() {
        let (mut applier, handle) = setup();
        assert!(applier.apply(store(None, 0), &handle).empty);
        applier.apply(
            with_defaults(store(Some("e1"), 1), 1.0, "seed:r1", 1),
            &handle,
        );
        assert!(!applier.apply(store(None, 0), &handle).empty);
    }
}
