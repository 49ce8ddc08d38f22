//! `async-upload fleet`: the operators' switch board over the shared state
//! in Redis. Exit status 0 on success, 2 for bad input or no Redis.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use async_upload_control::stages::DEFAULT_STAGES;
use async_upload_fleet::{merge_reports, FleetError, FleetState, ReplicaReport, Store, REDIS_URL};
use async_upload_runtime::config::ConfigError;
use async_upload_runtime::config::SiteOverrides;
use async_upload_runtime::metrics::ExecutionType;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Exit status for bad input or an unreachable Redis.
const BAD_INPUT: u8 = 2;

/// `async-upload fleet …`
#[derive(Args)]
pub struct FleetArgs {
    /// Redis URL (default: the `ASYNC_UPLOAD_REDIS_URL` environment variable).
    #[arg(long, global = true, value_name = "URL")]
    redis: Option<String>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Per site: state, leader and fleet health; the live replicas with their
    /// last contact and the state version each applied.
    Status {
        /// Only this site.
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Set a site's overrides, or with no `--site` the fleet-wide defaults
    /// (`--enabled`, `--rollout` only).
    Set {
        /// The site (default: the fleet-wide defaults).
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
        /// The async path may run (true/false).
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        enabled: Option<bool>,
        /// Percent of keys enrolled, 0–100 with up to two decimals.
        #[arg(long, value_name = "PERCENT")]
        rollout: Option<String>,
        /// Fall back to the sync path when the async path gives up (site only).
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        fallback: Option<bool>,
        /// Retries after the first attempt, 0–10 (site only).
        #[arg(long, value_name = "N")]
        max_retries: Option<String>,
        /// Seconds per async attempt (site only).
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<String>,
    },
    /// Latch the site's rollback: every replica runs its sync path.
    RollBack {
        /// The site.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// Why (shown in status and logs; at most 1 KiB).
        #[arg(long, default_value = "operator")]
        reason: String,
    },
    /// Lift the site's rollback.
    ClearRollback {
        /// The site.
        #[arg(long, value_name = "NAME")]
        site: String,
    },
    /// Move the site to its next stage (default stages: 1 → 10 → 50 → 100 %).
    Advance {
        /// The site.
        #[arg(long, value_name = "NAME")]
        site: String,
    },
}

/// Runs the command; prints errors to stderr.
pub fn run(args: FleetArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("async-upload fleet: {message}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn execute(args: FleetArgs) -> Result<(), String> {
    let url = args
        .redis
        .or_else(|| std::env::var(REDIS_URL).ok())
        .ok_or_else(|| format!("no Redis: pass --redis redis://host:port or set {REDIS_URL}"))?;
    let store = Store::open(&url).map_err(text)?.with_actor(actor());
    match args.action {
        Action::Status { site, json } => status(&store, site.as_deref(), json),
        Action::Set {
            site,
            enabled,
            rollout,
            fallback,
            max_retries,
            timeout,
        } => match site {
            None => {
                if fallback.is_some() || max_retries.is_some() || timeout.is_some() {
                    return Err("--fallback, --max-retries and --timeout need --site NAME".into());
                }
                let rollout = overrides_from(rollout, None, None)?.rollout;
                if enabled.is_none() && rollout.is_none() {
                    return Err("nothing to set: give --enabled, --rollout or both".into());
                }
                // Only the fields given are written: the kill switch works
                // whatever the other field holds.
                let version = store.update_defaults(enabled, rollout).map_err(text)?;
                let shown = |v: Option<String>| v.unwrap_or_else(|| "unchanged".to_owned());
                println!(
                    "defaults: enabled {}, rollout {} (version {version})",
                    shown(enabled.map(|e| e.to_string())),
                    shown(rollout.map(|r| format!("{r}%"))),
                );
                Ok(())
            }
            Some(site) => {
                let mut overrides = overrides_from(rollout, max_retries, timeout)?;
                overrides.enabled = enabled;
                overrides.fallback = fallback;
                if overrides == SiteOverrides::default() {
                    return Err("nothing to set: give --enabled, --rollout, --fallback, --max-retries or --timeout".into());
                }
                let version = store.update_site(&site, &overrides).map_err(text)?;
                println!("{site}: set (version {version})");
                Ok(())
            }
        },
        Action::RollBack { site, reason } => {
            if store.roll_back(&site, &reason).map_err(text)? {
                println!("{site}: rolled back ({reason})");
            } else {
                println!("{site}: already rolled back");
            }
            Ok(())
        }
        Action::ClearRollback { site } => {
            let version = store.clear_rollback(&site).map_err(text)?;
            println!("{site}: rollback cleared (version {version})");
            Ok(())
        }
        Action::Advance { site } => {
            let state = store.state().map_err(text)?;
            let shared = state.sites.get(&site);
            if let Some(reason) = shared.and_then(|s| s.rollback.as_deref()) {
                return Err(format!(
                    "{site} is rolled back ({reason}): clear-rollback first"
                ));
            }
            let current = shared.and_then(|s| s.stage).unwrap_or(0);
            let next = DEFAULT_STAGES
                .iter()
                .find(|s| s.number > current)
                .ok_or_else(|| format!("{site} is at its last stage ({current})"))?;
            let version = store
                .enter_stage(&site, next.number, next.rollout)
                .map_err(text)?;
            println!(
                "{site}: stage {} ({}%) (version {version})",
                next.number, next.rollout
            );
            Ok(())
        }
    }
}

/// Parses the text options with the environment's rules (same messages).
fn overrides_from(
    rollout: Option<String>,
    max_retries: Option<String>,
    timeout: Option<String>,
) -> Result<SiteOverrides, String> {
    let lookup = |name: &str| match name {
        "ASYNC_UPLOAD_ROLLOUT" => rollout.clone(),
        "ASYNC_UPLOAD_MAX_RETRIES" => max_retries.clone(),
        "ASYNC_UPLOAD_TIMEOUT" => timeout.clone(),
        _ => None,
    };
    let config = async_upload_runtime::config::Config::from_lookup(lookup).map_err(|e| {
        e.to_string()
            .replace("ASYNC_UPLOAD_ROLLOUT", "--rollout")
            .replace("ASYNC_UPLOAD_MAX_RETRIES", "--max-retries")
            .replace("ASYNC_UPLOAD_TIMEOUT", "--timeout")
    })?;
    Ok(SiteOverrides {
        rollout: rollout.map(|_| config.rollout),
        max_retries: max_retries.map(|_| config.max_retries),
        timeout: timeout.map(|_| config.timeout),
        ..SiteOverrides::default()
    })
}

fn text(error: FleetError) -> String {
    error.to_string()
}

/// Who the command's writes are by: `operator:<user>` (`operator` when
/// the user is unknown).
fn actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|user| !user.trim().is_empty() && !user.contains(char::is_whitespace))
        .map_or_else(|| "operator".to_owned(), |user| format!("operator:{user}"))
}

fn status(store: &Store, only: Option<&str>, json: bool) -> Result<(), String> {
    let state = store.state().map_err(text)?;
    let replicas = store.replicas().map_err(text)?;
    let mut names: BTreeSet<String> = state.sites.keys().cloned().collect();
    names.extend(replicas.iter().flat_map(|r| r.sites.keys().cloned()));
    if let Some(only) = only {
        names.retain(|n| n == only);
    }
    let mut sites = Vec::new();
    for name in &names {
        let leader = store.leader(name).map_err(text)?;
        sites.push(site_json(&state, &replicas, name, leader));
    }
    let now = unix_ms();
    let replicas_json: Vec<Value> = replicas
        .iter()
        .map(|r| {
            json!({
                "instance": r.instance,
                "last_contact_ms": r.at_ms,
                "age_ms": now.saturating_sub(r.at_ms),
                "applied_version": r.applied_version,
                "epoch": r.epoch,
                "pushes": r.pushes,
                "remembered": r.remembered,
                "leads": r.leads,
            })
        })
        .collect();
    let out = json!({
        "epoch": state.epoch,
        "version": state.version,
        "defaults": state.defaults.map(|d| json!({"enabled": d.enabled, "rollout": d.rollout})),
        "defaults_by": state.defaults_by,
        "problems": state.problems.iter().map(problem_json).collect::<Vec<_>>(),
        "sites": sites,
        "replicas": replicas_json,
    });
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&out));
    }
    Ok(())
}

fn site_json(
    state: &FleetState,
    replicas: &[ReplicaReport],
    name: &str,
    leader: Option<String>,
) -> Value {
    let shared = state.sites.get(name);
    let overrides = shared.map(|s| s.overrides.clone()).unwrap_or_default();
    let defaults = state.defaults;
    let merged = merge_reports(replicas, name);
    let reporting = replicas
        .iter()
        .filter(|r| r.sites.contains_key(name))
        .count();
    let paths: serde_json::Map<String, Value> = ExecutionType::ALL
        .into_iter()
        .map(|kind| {
            let p = merged.path(kind);
            (
                kind.as_str().to_owned(),
                json!({"calls": p.count, "successes": p.successes, "failures": p.failures,
                       "p50_ms": p.latency.quantile(0.5).map(|us| us / 1000.0)}),
            )
        })
        .collect();
    let problems: Vec<Value> = shared
        .map(|s| {
            s.problems
                .iter()
                .chain(&s.ignored)
                .map(problem_json)
                .collect()
        })
        .unwrap_or_default();
    json!({
        "site": name,
        "enabled": overrides.enabled.or(defaults.map(|d| d.enabled)),
        "rollout": overrides.rollout.or(defaults.map(|d| d.rollout)),
        "stage": shared.and_then(|s| s.stage),
        "stage_entered_ms": shared.and_then(|s| s.stage_entered_ms),
        "rolled_back": shared.is_some_and(|s| s.rollback.is_some()),
        "reason": shared.and_then(|s| s.rollback.clone()),
        "by": shared.and_then(|s| s.by.clone()),
        "version": shared.map_or(0, |s| s.version),
        "invalid": shared.is_some_and(|s| s.invalid()),
        "problems": problems,
        "leader": leader,
        "health": {"replicas": reporting, "paths": paths},
    })
}

/// A stored value that is not accepted, as `status` shows it.
fn problem_json(problem: &ConfigError) -> Value {
    json!({"key": problem.variable(), "value": problem.value(), "accepted": problem.expected()})
}

fn render(status: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "state version {} · store epoch {}",
        status["version"],
        status["epoch"]
            .as_str()
            .unwrap_or("none (never held state, or came back empty)")
    );
    for problem in status["problems"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "BAD VALUE {}", problem_text(problem));
    }
    match status["defaults"].as_object() {
        Some(d) => {
            let _ = writeln!(
                out,
                "defaults: enabled {}, rollout {}%",
                d["enabled"], d["rollout"]
            );
        }
        None => {
            let _ = writeln!(out, "defaults: none yet (replicas run the sync path)");
        }
    }
    for site in status["sites"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "\nsite {}: stage {} · enabled {} · rollout {}% · {} · leader {} · version {}",
            site["site"].as_str().unwrap_or_default(),
            site["stage"],
            site["enabled"],
            site["rollout"],
            if site["rolled_back"] == true {
                format!(
                    "ROLLED BACK ({})",
                    site["reason"].as_str().unwrap_or_default()
                )
            } else {
                "not rolled back".to_owned()
            },
            site["leader"].as_str().unwrap_or("none"),
            site["version"],
        );
        for problem in site["problems"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  BAD VALUE {}", problem_text(problem));
        }
        if site["invalid"] == true {
            let _ = writeln!(
                out,
                "  (a value is not accepted: every replica runs this site's sync path)"
            );
        }
        let health = &site["health"];
        let _ = writeln!(
            out,
            "  fleet health ({} replicas reporting):",
            health["replicas"]
        );
        for kind in ExecutionType::ALL {
            let p = &health["paths"][kind.as_str()];
            let _ = writeln!(
                out,
                "    {:<13} {:>8} calls {:>8} ok {:>6} failed  p50 {} ms",
                kind.as_str(),
                p["calls"],
                p["successes"],
                p["failures"],
                p["p50_ms"]
                    .as_f64()
                    .map_or("-".to_owned(), |ms| format!("{ms:.1}")),
            );
        }
    }
    let _ = writeln!(out, "\nlive replicas:");
    for r in status["replicas"].as_array().into_iter().flatten() {
        let mut notes = String::new();
        if r["pushes"] == false {
            notes.push_str(" · NO PUSHES (follows changes by the 1 s poll only: check its ACL's channel right)");
        }
        if r["remembered"] == true {
            notes.push_str(" · REMEMBERED STATE (its store came back empty or changed: set the defaults to hand it this one)");
        }
        let _ = writeln!(
            out,
            "  {:<24} last contact {:.1} s ago · applied version {} · leads {}{notes}",
            r["instance"].as_str().unwrap_or_default(),
            r["age_ms"].as_f64().unwrap_or_default() / 1000.0,
            r["applied_version"],
            r["leads"],
        );
    }
    out
}

fn problem_text(problem: &Value) -> String {
    format!(
        "{} = {:?}: expected {}",
        problem["key"].as_str().unwrap_or_default(),
        problem["value"].as_str().unwrap_or_default(),
        problem["accepted"].as_str().unwrap_or_default()
    )
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
