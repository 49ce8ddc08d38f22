//! The `tracing` side of a call: one span with site, execution type and
//! attempts (recorded once); a debug event on each retry; a warning on the
//! fallback and on failure, at most one per site every 10 s.

use async_upload_test_support::records as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_upload_runtime::execute::execute;
use async_upload_runtime::Site;
use support::TestError;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span's name and its fields as recorded, in order.
type SpanSeen = (String, Vec<(String, String)>);
/// A span's name and level, as created.
type SpanLevel = (String, tracing::Level);
/// An event's level, message and the name of the span it happened in.
type EventSeen = (tracing::Level, String, Option<String>);

#[derive(Default, Clone)]
struct Seen {
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    levels: Arc<Mutex<Vec<SpanLevel>>>,
    events: Arc<Mutex<Vec<EventSeen>>>,
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        ));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        self.levels.lock().unwrap().push((
            attrs.metadata().name().to_owned(),
            *attrs.metadata().level(),
        ));
        self.spans
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_owned(), fields.0));
    }
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        values.record(&mut fields);
        if let Some(last) = self.spans.lock().unwrap().last_mut() {
            last.1.extend(fields.0);
        }
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let message = fields
            .0
            .iter()
            .find(|(k, _)| k == "message")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let span = ctx.event_span(event).map(|s| s.name().to_owned());
        self.events
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message, span));
    }
}

/// A subscriber that keeps what it sees, and what it saw.
fn watched() -> (Seen, impl Subscriber + Send + Sync) {
    let seen = Seen::default();
    (seen.clone(), tracing_subscriber::registry().with(seen))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs one call of `site` (enrolled) whose async path returns `error`
/// and whose sync path returns 7, under a subscriber that keeps what it sees.
fn traced_call(site: &'static Site, error: TestError) -> (Result<u32, TestError>, Seen) {
    let (seen, subscriber) = watched();
    let runtime = current_thread();
    let result = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            support::enable_async();
            support::roll_out(site.name(), 100.0);
            let outcome = Err::<u32, _>(error);
            execute(
                site.call(&"k"),
                (),
                |()| std::future::ready(outcome.clone()),
                |()| Ok(7),
            )
            .await
        })
    });
    (result, seen)
}

#[test]
fn a_call_has_one_span_and_events_for_retries_and_fallback() {
    static SITE: Site = Site::new("tracing_fallback")
        .with_retries(2)
        .with_backoff(Duration::from_micros(1));
    let (result, seen) = traced_call(&SITE, TestError::Transient);
    assert_eq!(result, Ok(7));

    let spans = seen.spans.lock().unwrap().clone();
    let calls: Vec<_> = spans
        .iter()
        .filter(|(name, _)| name == "async_upload")
        .collect();
    assert_eq!(calls.len(), 1, "one span per call: {spans:?}");
    let fields = &calls[0].1;
    let field = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("site"), Some("tracing_fallback"));
    assert_eq!(field("execution_type"), Some("sync_fallback"));
    assert_eq!(field("attempts"), Some("3"));
    let recorded = fields.iter().filter(|(k, _)| k == "attempts").count();
    assert_eq!(recorded, 1, "attempts recorded once: {fields:?}");

    let events = seen.events.lock().unwrap().clone();
    let retries = events
        .iter()
        .filter(|(_, m, _)| m.contains("retrying"))
        .count();
    assert_eq!(retries, 2, "{events:?}");
    assert!(events
        .iter()
        .filter(|(_, m, _)| m.contains("retrying"))
        .all(|(level, _, _)| *level == tracing::Level::DEBUG));
    assert!(events
        .iter()
        .any(|(level, m, span)| *level == tracing::Level::WARN
            && m.contains("falling back")
            && span.as_deref() == Some("async_upload")));
}

#[test]
fn a_failed_call_emits_a_warning() {
    static SITE: Site = Site::new("tracing_failure");
    let (result, seen) = traced_call(&SITE, TestError::Invalid);
    assert_eq!(result, Err(TestError::Invalid));
    let events = seen.events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|(level, m, _)| *level == tracing::Level::WARN && m.contains("failed")),
        "{events:?}"
    );
}

#[test]
fn fallbacks_warn_once_per_site_then_debug() {
    static SITE: Site = Site::new("tracing_throttled")
        .with_retries(0)
        .with_backoff(Duration::from_micros(1));
    let (_, first) = traced_call(&SITE, TestError::Unsupported);
    let (_, second) = traced_call(&SITE, TestError::Unsupported);
    let level_of_fallback = |seen: &Seen| {
        seen.events
            .lock()
            .unwrap()
            .iter()
            .find(|(_, m, _)| m.contains("falling back"))
            .map(|(level, _, _)| *level)
    };
    assert_eq!(level_of_fallback(&first), Some(tracing::Level::WARN));
    assert_eq!(level_of_fallback(&second), Some(tracing::Level::DEBUG));
}

/// Regression (issue 18): the sync path of a disabled or not-enrolled call
/// created an INFO span, which every service logging at INFO paid for on
/// every call. The sync path has no span and no event above DEBUG; the
/// async path's span is at DEBUG.
#[test]
fn the_sync_path_has_no_span_and_the_async_span_is_debug() {
    static OFF: Site = Site::new("tracing_sync_off");
    static NOT_ENROLLED: Site = Site::new("tracing_sync_not_enrolled");
    static ON: Site = Site::new("tracing_async_on");
    support::enable_async();
    handle_disable(OFF.name());
    support::roll_out(NOT_ENROLLED.name(), 0.0);
    let (seen, subscriber) = watched();
    let runtime = current_thread();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            for site in [&OFF, &NOT_ENROLLED] {
                // Twice: the first call of a site announces its settings.
                for _ in 0..2 {
                    let result = execute(
                        site.call(&"k"),
                        (),
                        |()| std::future::ready(Ok::<u32, TestError>(1)),
                        |()| Ok(7),
                    )
                    .await;
                    assert_eq!(result, Ok(7));
                }
            }
        });
    });
    let levels = seen.levels.lock().unwrap().clone();
    assert!(levels.is_empty(), "spans on the sync path: {levels:?}");
    let events = seen.events.lock().unwrap().clone();
    let loud: Vec<_> = events
        .iter()
        .filter(|(level, m, _)| *level <= tracing::Level::INFO && !m.contains("site settings"))
        .collect();
    assert!(loud.is_empty(), "INFO events on the sync path: {loud:?}");

    support::roll_out(ON.name(), 100.0);
    let (seen, subscriber) = watched();
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(execute(
            ON.call(&"k"),
            (),
            |()| std::future::ready(Ok::<u32, TestError>(1)),
            |()| Ok(7),
        ))
    })
    .unwrap();
    let levels = seen.levels.lock().unwrap().clone();
    assert_eq!(
        levels,
        [("async_upload".to_owned(), tracing::Level::DEBUG)],
        "one DEBUG span on the async path"
    );
}

fn handle_disable(site: &str) {
    async_upload_runtime::config::handle()
        .set_site(
            site,
            async_upload_runtime::config::SiteOverrides {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
}
