//! The in-process actuator against an operator changing the same site at
//! the same time: entering a stage never loses the operator's change, and
//! of several deciders latching one rollback exactly one latches it.

use std::sync::{Arc, Barrier};

use async_upload_control::stages::{Actuator, LocalActuator};
use async_upload_runtime::config::{handle, SiteOverrides};

const CHANGES: u32 = 2_000;

/// Issue 18: `enter_stage` read the site's overrides and wrote them back
/// with its rollout, outside the lock, so an operator's change between the
/// read and the write was lost.
#[test]
fn entering_stages_keeps_every_concurrent_operator_change() {
    let site = "local_actuator_race";
    handle().set_site(site, SiteOverrides::default()).unwrap();
    let start = Arc::new(Barrier::new(2));
    let controller = {
        let start = Arc::clone(&start);
        std::thread::spawn(move || {
            start.wait();
            for n in 0..CHANGES {
                LocalActuator.enter_stage(site, n, f64::from(n % 100));
            }
        })
    };
    start.wait();
    for n in 0..CHANGES {
        // The operator's own change: one field, in place.
        handle()
            .update_site(site, |o| {
                o.breaker_threshold = Some(u8::try_from(n % 100 + 1).unwrap())
            })
            .unwrap();
        let seen = handle().site_overrides(site).breaker_threshold;
        assert_eq!(
            seen,
            Some(u8::try_from(n % 100 + 1).unwrap()),
            "change {n}: the operator's threshold was overwritten by a stage's rollout"
        );
    }
    controller.join().unwrap();
    let last = handle().site_overrides(site);
    assert_eq!(last.rollout, Some(f64::from((CHANGES - 1) % 100)));
    assert_eq!(
        last.breaker_threshold,
        Some(u8::try_from((CHANGES - 1) % 100 + 1).unwrap())
    );
}

#[test]
fn an_invalid_update_keeps_the_overrides_in_force() {
    let site = "local_actuator_invalid";
    handle()
        .set_site(
            site,
            SiteOverrides {
                rollout: Some(5.0),
                ..SiteOverrides::default()
            },
        )
        .unwrap();
    let error = handle()
        .update_site(site, |o| o.rollout = Some(250.0))
        .unwrap_err();
    assert!(error.to_string().contains("250"), "{error}");
    assert_eq!(handle().site_overrides(site).rollout, Some(5.0));
}

#[test]
fn of_many_deciders_latching_one_rollback_exactly_one_latches() {
    for round in 0..50 {
        let site: &'static str =
            Box::leak(format!("local_actuator_latch_{round}").into_boxed_str());
        let start = Arc::new(Barrier::new(4));
        let deciders: Vec<_> = (0..4)
            .map(|n| {
                let start = Arc::clone(&start);
                std::thread::spawn(move || {
                    start.wait();
                    LocalActuator.roll_back(site, &format!("decider {n}"))
                })
            })
            .collect();
        let latched: Vec<bool> = deciders.into_iter().map(|d| d.join().unwrap()).collect();
        assert_eq!(
            latched.iter().filter(|l| **l).count(),
            1,
            "round {round}: {latched:?}"
        );
        let winner = latched.iter().position(|l| *l).unwrap();
        // The first reason stays: a second latch does not rewrite it.
        assert_eq!(
            handle().rollback_reason(site),
            Some(format!("decider {winner}"))
        );
        assert!(!handle().roll_back(site, "late"));
        handle().clear_rollback(site);
        assert!(handle().roll_back(site, "after clearing"));
    }
}
