//! A synthetic JSONL log of one site's rollout, written in the sink's line
//! format: traffic at a steady rate over days, stage events, a degradation
//! of the async path that the controller rolls back, and its clearing.
//! Seeded, so every run writes the same log. Used by the HTML report tests,
//! the screenshot in docs/dashboard.md and the report benchmark
//! (`examples/synthetic_log.rs`).

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use async_upload_control::log::{
    Event, OperatorEvent, RollbackEvent, StageEntered, StageEvent, VerdictEvent,
};
use async_upload_control::stages::{
    evaluate, Health, Observation, Triggers, Verdict, DEFAULT_STAGES,
};
use async_upload_runtime::metrics::{ExecutionType, SiteSnapshot, SyncReason, UploadRecord};
use async_upload_runtime::CallId;
use serde_json::{json, Value};

/// What to write.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The site's name.
    pub site: String,
    /// When the log starts.
    pub start: SystemTime,
    /// How long it lasts.
    pub span: Duration,
    /// Calls per minute, every path together.
    pub calls_per_minute: u32,
    /// Seed of every draw.
    pub seed: u64,
}

impl Scenario {
    /// A week at 100 calls per minute (about a million records).
    pub fn week(site: &str) -> Self {
        Scenario {
            site: site.to_owned(),
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            span: Duration::from_secs(7 * 24 * 3600),
            calls_per_minute: 100,
            seed: 7,
        }
    }

    /// Fraction of the span at which each phase starts.
    fn at(&self, fraction: f64) -> SystemTime {
        self.start + self.span.mul_f64(fraction)
    }

    /// The stage-3 entry, the rollback, its clearing, as times.
    pub fn timeline(&self) -> Timeline {
        Timeline {
            stage2: self.start,
            stage3: self.at(0.25),
            degraded: self.at(0.62),
            rollback: self.at(0.62) + Duration::from_secs(6 * 60),
            cleared: self.at(0.80),
            end: self.start + self.span,
        }
    }
}

/// When things happen in a [`Scenario`].
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    pub stage2: SystemTime,
    pub stage3: SystemTime,
    pub degraded: SystemTime,
    pub rollback: SystemTime,
    pub cleared: SystemTime,
    pub end: SystemTime,
}

/// What [`write()`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Upload lines.
    pub records: u64,
    /// Event lines.
    pub events: u64,
}

fn ts(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// A lognormal draw with median `median`.
fn lognormal(rng: &mut fastrand::Rng, median: f64, sigma: f64) -> f64 {
    let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
    let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    median * (sigma * normal).exp()
}

/// One controller line: the typed event the controller writes, with the
/// log format's `"v"`.
fn line(out: &mut (impl Write + ?Sized), event: &Event) -> io::Result<()> {
    let mut fields = serde_json::to_value(event)?;
    if let Value::Object(fields) = &mut fields {
        fields.insert("v".into(), json!(1));
    }
    serde_json::to_writer(&mut *out, &fields)?;
    out.write_all(b"\n")
}

/// Writes the scenario's log.
///
/// Phases: stage 2 (10 %) from the start; stage 3 (50 %) at a quarter;
/// at 62 % the async path degrades (30 % failures, 4x slower) and the
/// controller rolls back six minutes later: every call takes the sync path;
/// at 80 % an operator clears the rollback (its `operator` line, then the
/// controller's `rollback_cleared`) and the async path, fixed, takes its 50 %
/// again.
pub fn write(out: &mut impl Write, scenario: &Scenario) -> io::Result<Written> {
    let mut rng = fastrand::Rng::with_seed(scenario.seed);
    // Call ids from a stream of their own: the scenario's draws stay as they were.
    let mut ids = fastrand::Rng::with_seed(!scenario.seed);
    let t = scenario.timeline();
    let site = scenario.site.as_str();
    let mut written = Written::default();
    let mut window = SiteSnapshot::empty(site);
    let step = Duration::from_secs(60) / scenario.calls_per_minute.max(1);
    let mut pending: Vec<(SystemTime, &str)> = vec![
        (t.stage2, "stage2"),
        (t.stage3, "stage3"),
        (t.rollback, "rollback"),
        (t.cleared, "cleared"),
    ];
    pending.reverse();
    let mut now = scenario.start;
    let mut recent = SiteSnapshot::empty(site);
    let mut buffer = String::with_capacity(256);
    while now < t.end {
        while pending.last().is_some_and(|(at, _)| *at <= now) {
            let (at, what) = pending.pop().unwrap_or_else(|| unreachable!());
            written.events += event(out, site, at, what, &mut window, &recent)?;
        }
        let rollout = if now < t.stage3 { 0.10 } else { 0.50 };
        let rolled_back = now >= t.rollback && now < t.cleared;
        let degraded = now >= t.degraded && now < t.cleared;
        let enrolled = !rolled_back && rng.f64() < rollout;
        let size = (1024.0 * 8192_f64.powf(rng.f64())) as u64;
        let mut record = if enrolled {
            let failing = rng.f64() < if degraded { 0.30 } else { 0.004 };
            if failing {
                let mut r = UploadRecord::new(
                    site.to_owned(),
                    ExecutionType::SyncFallback,
                    true,
                    lognormal(&mut rng, 2600.0, 0.3),
                    3,
                );
                r.error_type = Some(
                    if rng.bool() {
                        "connection_reset"
                    } else {
                        "timeout"
                    }
                    .into(),
                );
                // Resets after sending and timeouts: every attempt ambiguous.
                r.ambiguous_attempts = 3;
                r.with_sync_reason(SyncReason::AsyncGaveUp)
            } else {
                let median = if degraded { 360.0 } else { 85.0 };
                UploadRecord::new(
                    site.to_owned(),
                    ExecutionType::Async,
                    true,
                    lognormal(&mut rng, median, 0.45),
                    1,
                )
            }
        } else {
            let mut r = UploadRecord::new(
                site.to_owned(),
                ExecutionType::Sync,
                true,
                lognormal(&mut rng, 130.0, 0.4),
                0,
            );
            if rng.f64() < 0.002 {
                r.success = false;
                r.error_type = Some("http_503".into());
            }
            r.with_sync_reason(if rolled_back {
                SyncReason::RolledBack
            } else {
                SyncReason::NotEnrolled
            })
        };
        record.ts = now;
        record.call_id = Some(CallId::from_u128(ids.u128(..)));
        record.bytes = Some(size);
        window.record(&record);
        if degraded {
            recent.record(&record);
        }
        upload_line(out, &record, &mut buffer)?;
        written.records += 1;
        now += step;
    }
    Ok(written)
}

/// The sink's `upload` line, written by hand for speed (tens of millions
/// of lines for the benchmark); the report reads it like any other.
fn upload_line(out: &mut impl Write, r: &UploadRecord, buffer: &mut String) -> io::Result<()> {
    use std::fmt::Write as _;
    buffer.clear();
    let _ = writeln!(
        buffer,
        "{{\"kind\":\"upload\",\"v\":1,\"ts\":\"{}\",\"site\":\"{}\",\"execution_type\":\"{}\",\"success\":{},\"duration_ms\":{:.3},\"attempts\":{},\"error_type\":{},\"bytes\":{},\"call_id\":{},{}\"ambiguous_attempts\":{}}}",
        humantime::format_rfc3339_micros(r.ts),
        r.site,
        r.execution_type,
        r.success,
        r.duration_ms,
        r.attempts,
        r.error_type.as_deref().map_or_else(|| "null".to_owned(), |e| format!("\"{e}\"")),
        r.bytes.map_or_else(|| "null".to_owned(), |b| b.to_string()),
        r.call_id.map_or_else(|| "null".to_owned(), |id| format!("\"{id}\"")),
        r.sync_reason.map_or_else(String::new, |reason| format!("\"sync_reason\":\"{reason}\",")),
        r.ambiguous_attempts,
    );
    out.write_all(buffer.as_bytes())
}

/// The controller's lines for one step of the scenario; how many.
fn event(
    out: &mut impl Write,
    site: &str,
    at: SystemTime,
    what: &str,
    window: &mut SiteSnapshot,
    recent: &SiteSnapshot,
) -> io::Result<u64> {
    let number = if what == "stage2" { 2 } else { 3 };
    let stage = &DEFAULT_STAGES[number - 1];
    let entered = StageEntered::new(at, site, stage.clone(), Triggers::DEFAULT);
    let verdict =
        |out: &mut dyn Write, window: &SiteSnapshot, recent: &SiteSnapshot, elapsed: Duration| {
            let evaluation = evaluate(
                stage,
                &Triggers::DEFAULT,
                &Observation {
                    recent: Health::of(recent),
                    recent_span: Duration::from_secs(300),
                    ..crate::seams::once(window, elapsed)
                },
            );
            let event = Event::Stage(StageEvent::Verdict(VerdictEvent::new(
                at,
                site,
                evaluation.clone(),
            )));
            line(out, &event).map(|()| evaluation)
        };
    match what {
        "stage2" | "stage3" => {
            *window = SiteSnapshot::empty(site);
            line(out, &Event::Stage(StageEvent::Entered(entered)))?;
            verdict(out, window, window, Duration::ZERO)?;
            Ok(2)
        }
        "rollback" => {
            // The recent window: what the degradation looks like to the controller.
            let evaluation = verdict(out, window, recent, Duration::from_secs(3600))?;
            // The controller latched the rollback on its own per-tick
            // evidence; the recent window's evaluation carries the triggers
            // when it shows them too.
            let triggers = match evaluation.verdict {
                Verdict::Rollback { triggers } => triggers,
                _ => Vec::new(),
            };
            let rollback: RollbackEvent = serde_json::from_value(json!({
                "ts": ts(at), "site": site, "stage": 3, "rollout": 50.0,
                "trigger": "success_rate", "measured": 0.7, "threshold": 0.95,
                "reason": "success rate below 95%", "triggers": triggers,
            }))?;
            line(out, &Event::Rollback(rollback))?;
            Ok(2)
        }
        _ => {
            // The operator's clearing, as the configuration handle logs it.
            let cleared = OperatorEvent::new(
                at,
                Some(site),
                "rollback",
                (Some("success rate below 95%".to_owned()), None),
                "operator",
            );
            line(out, &Event::Operator(cleared))?;
            line(out, &Event::Stage(StageEvent::RollbackCleared(entered)))?;
            Ok(2)
        }
    }
}
