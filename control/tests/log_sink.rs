//! The JSONL sink: overflow and disk failures never fail an upload and are
//! counted exactly, lines are whole, the file recovers, the reader skips
//! bad lines, CSV export, and `ASYNC_UPLOAD_LOG` with no code.

use async_upload_test_support::records as support;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_upload_control::log::{
    read_file, BreakerChange, BreakerEvent, Event, JsonlLog, Log, Reader, RollbackEvent,
    StageEntered, StageEvent, VerdictEvent,
};
#[cfg(feature = "report")]
use async_upload_control::log::{write_csv, CSV_HEADER};
use async_upload_control::stages::{
    evaluate, Baseline, Complaints, Health, Memory, Observation, Stage, TriggerKind, Triggers,
    Verdict, DEFAULT_STAGES,
};
use async_upload_runtime::execute::execute;
use async_upload_runtime::metrics::{
    add_sink, remove_sink, ExecutionType, MetricsSink, SiteSnapshot, UploadRecord,
};
use async_upload_runtime::Site;

use support::{enable_async, roll_out};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("au-log-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One call of `site` through the async path.
async fn upload(site: &'static Site, key: u32) -> io::Result<u32> {
    let call = site.call(&key);
    assert!(
        call.runs_async(),
        "{} must take the async path",
        site.name()
    );
    execute(
        call,
        key,
        |key| {
            let key = *key;
            async move { Ok(key) }
        },
        Ok,
    )
    .await
}

/// Sends one site's records to `log`; removes itself when dropped.
struct Tap(async_upload_runtime::metrics::SinkId);

impl Tap {
    fn new(site: &'static str, log: &JsonlLog) -> Self {
        let log = log.clone();
        Tap(add_sink(move |record: &UploadRecord| {
            if record.site == site {
                log.record(record);
            }
        }))
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        remove_sink(self.0);
    }
}

/// A writer whose first write blocks until released, so the queue fills
/// deterministically behind it.
struct Gate {
    entered: Option<Sender<()>>,
    release: Receiver<()>,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Write for Gate {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Some(entered) = self.entered.take() {
            entered.send(()).unwrap();
            self.release.recv().unwrap();
        }
        self.out.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

static OVERFLOW: Site = Site::new("log_overflow");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_exactly_the_overflow_and_uploads_succeed() {
    enable_async();
    roll_out(OVERFLOW.name(), 100.0);
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let out = Arc::new(Mutex::new(Vec::new()));
    let log = JsonlLog::builder_for_writer(Gate {
        entered: Some(entered_tx),
        release: release_rx,
        out: Arc::clone(&out),
    })
    .capacity(8)
    .spawn();
    let tap = Tap::new(OVERFLOW.name(), &log);

    // The writer takes the first record and blocks in its write.
    assert_eq!(upload(&OVERFLOW, 0).await.unwrap(), 0);
    entered.recv_timeout(Duration::from_secs(5)).unwrap();
    // 8 fit in the queue, 12 are dropped; every upload succeeds.
    for key in 1..=20 {
        assert_eq!(upload(&OVERFLOW, key).await.unwrap(), key);
    }
    assert_eq!(log.stats().dropped_full, 12);
    release.send(()).unwrap();
    assert!(log.flush());
    drop(tap);

    let stats = log.stats();
    assert_eq!(
        (stats.written, stats.dropped_full, stats.dropped_io),
        (9, 12, 0)
    );
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let parsed = Log::read(text.as_bytes()).unwrap();
    assert_eq!(parsed.errors, []);
    assert_eq!(parsed.uploads.len(), 9);
    assert!(parsed
        .uploads
        .iter()
        .all(|r| r.success && r.execution_type == ExecutionType::Async));
}

static UNWRITABLE: Site = Site::new("log_unwritable");

#[tokio::test]
async fn a_removed_directory_drops_exactly_then_the_log_recovers() {
    enable_async();
    roll_out(UNWRITABLE.name(), 100.0);
    let dir = temp_dir("unwritable");
    let path = dir.join("uploads.jsonl");
    let log = JsonlLog::open(&path).unwrap();
    let _tap = Tap::new(UNWRITABLE.name(), &log);

    for key in 0..5 {
        upload(&UNWRITABLE, key).await.unwrap();
    }
    assert!(log.flush());
    assert_eq!(read_file(&path).unwrap().uploads.len(), 5);

    std::fs::remove_dir_all(&dir).unwrap();
    for key in 0..7 {
        assert_eq!(upload(&UNWRITABLE, key).await.unwrap(), key);
    }
    assert!(log.flush());
    let stats = log.stats();
    assert_eq!(
        (stats.written, stats.dropped_io, stats.dropped_full),
        (5, 7, 0)
    );

    std::fs::create_dir_all(&dir).unwrap();
    for key in 0..3 {
        upload(&UNWRITABLE, key).await.unwrap();
    }
    assert!(log.flush());
    assert_eq!(log.stats().written, 8);
    let recovered = read_file(&path).unwrap();
    assert_eq!(recovered.errors, []);
    assert_eq!(recovered.uploads.len(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The writer thread writes a record as it arrives, with no flush or drop
/// (normally within a few milliseconds; the bound leaves room for a loaded
/// machine, and a writer that waited for a flush would never get there).
#[test]
fn a_record_reaches_the_file_without_a_flush() {
    let dir = temp_dir("latency");
    let path = dir.join("uploads.jsonl");
    let log = JsonlLog::open(&path).unwrap();
    let started = Instant::now();
    log.record(&UploadRecord::new(
        "log_latency",
        ExecutionType::Sync,
        true,
        1.0,
        0,
    ));
    loop {
        if std::fs::read_to_string(&path).unwrap().ends_with('\n') {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not written within 2 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn many_threads_never_tear_or_interleave_lines() {
    let dir = temp_dir("threads");
    let path = dir.join("uploads.jsonl");
    let log = JsonlLog::builder(&path).capacity(100_000).open().unwrap();
    std::thread::scope(|scope| {
        for thread in 0..8u32 {
            let log = log.clone();
            scope.spawn(move || {
                for i in 0..1000u32 {
                    let mut record = UploadRecord::new(
                        "log_threads",
                        ExecutionType::Async,
                        true,
                        f64::from(i),
                        thread,
                    );
                    record.bytes = Some(u64::from(thread * 1000 + i));
                    log.record(&record);
                }
            });
        }
    });
    assert!(log.flush());
    let read = read_file(&path).unwrap();
    assert_eq!(read.errors, []);
    assert_eq!(read.uploads.len(), 8000);
    let mut bytes: Vec<u64> = read.uploads.iter().map(|r| r.bytes.unwrap()).collect();
    bytes.sort_unstable();
    assert_eq!(bytes, (0..8000).collect::<Vec<u64>>());
    assert_eq!(log.stats().dropped(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dropping_the_last_handle_writes_everything_queued() {
    let dir = temp_dir("drop");
    let path = dir.join("uploads.jsonl");
    let log = JsonlLog::open(&path).unwrap();
    for i in 0..500 {
        log.record(&UploadRecord::new(
            "log_drop",
            ExecutionType::Sync,
            true,
            f64::from(i),
            0,
        ));
    }
    let entered = StageEntered::new(
        SystemTime::now(),
        "log_drop",
        Stage::new(1, 1.0),
        Triggers::DEFAULT,
    );
    log.event(Event::Stage(StageEvent::Entered(entered)));
    drop(log);
    let read = read_file(&path).unwrap();
    assert_eq!(read.uploads.len(), 500);
    assert_eq!(read.events.len(), 1);
    assert!(matches!(
        &read.events[0],
        Event::Stage(StageEvent::Entered(e)) if e.site == "log_drop" && e.stage == 1
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn upload_lines_carry_kind_and_version() {
    let out = Arc::new(Mutex::new(Vec::new()));
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let log = JsonlLog::builder_for_writer(Shared(Arc::clone(&out))).spawn();
    let mut record = UploadRecord::new("log_schema", ExecutionType::SyncFallback, true, 12.5, 3);
    record.error_type = Some("timeout".into());
    record.bytes = Some(2048);
    log.record(&record);
    assert!(log.flush());
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(value["kind"], "upload");
    assert_eq!(value["v"], 1);
    assert_eq!(value["site"], "log_schema");
    assert_eq!(value["execution_type"], "sync_fallback");
    assert_eq!(value["success"], true);
    assert_eq!(value["duration_ms"], 12.5);
    assert_eq!(value["attempts"], 3);
    assert_eq!(value["error_type"], "timeout");
    assert_eq!(value["bytes"], 2048);
    assert!(value["ts"].as_str().unwrap().ends_with('Z'));
    let back = Log::read(text.as_bytes()).unwrap();
    assert_eq!(back.uploads[0].site, record.site);
    assert_eq!(back.uploads[0].error_type, record.error_type);
}

#[test]
fn the_reader_reports_bad_lines_by_number_and_reads_the_rest() {
    let good = r#"{"kind":"upload","v":1,"ts":"2026-11-30T01:25:18Z","site":"s","execution_type":"async","success":true,"duration_ms":1.0,"attempts":1,"error_type":null,"bytes":null}"#;
    let mut text = Vec::new();
    writeln!(text, "{good}").unwrap();
    writeln!(text, "{{\"kind\":\"upload\",\"v\":1,\"ts\":").unwrap(); // torn
    writeln!(text).unwrap(); // blank: skipped silently
    writeln!(text, "[1,2]").unwrap();
    writeln!(text, "{}", good.replace("\"v\":1", "\"v\":2")).unwrap();
    writeln!(text, "{}", good.replace("\"async\"", "\"warp\"")).unwrap();
    text.extend_from_slice(b"\xff\xfe\n");
    writeln!(
        text,
        r#"{{"kind":"rollback","v":1,"ts":"2026-11-30T01:25:18Z","site":"s","stage":2,"rollout":10.0,"trigger":"error_rate","measured":0.1,"threshold":0.05,"reason":"error rate","triggers":[]}}"#
    )
    .unwrap();
    // An event with fields missing is malformed like any other line.
    writeln!(
        text,
        r#"{{"kind":"rollback","v":1,"site":"s","trigger":"error_rate"}}"#
    )
    .unwrap();
    write!(text, "{good}").unwrap(); // no final newline

    let log = Log::read(text.as_slice()).unwrap();
    assert_eq!(log.uploads.len(), 2);
    assert_eq!(log.events.len(), 1);
    assert!(matches!(
        &log.events[0],
        Event::Rollback(r) if r.trigger == TriggerKind::ErrorRate && r.site == "s"
    ));
    let lines: Vec<usize> = log.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7, 9]);
    assert!(
        log.errors[2].message.contains("version"),
        "{}",
        log.errors[2]
    );

    let entries: Vec<_> = Reader::new(text.as_slice()).collect();
    assert_eq!(entries.len(), 9);
    assert!(matches!(entries[0], Ok(Event::Upload(_))));
}

#[cfg(feature = "report")]
#[test]
fn csv_export_has_a_header_and_one_row_per_record() {
    let mut a = UploadRecord::new("csv", ExecutionType::Async, true, 10.0, 1);
    a.bytes = Some(100);
    let mut b = UploadRecord::new(
        "csv, \"quoted\"",
        ExecutionType::SyncFallback,
        false,
        20.0,
        3,
    );
    b.error_type = Some("timeout".into());
    let mut out = Vec::new();
    write_csv(&mut out, [&a, &b]).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(CSV_HEADER.to_vec())
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][1], "csv");
    assert_eq!(&rows[0][7], "100");
    assert_eq!(&rows[1][1], "csv, \"quoted\"");
    assert_eq!(&rows[1][2], "sync_fallback");
    assert_eq!(&rows[1][6], "timeout");
    assert_eq!(&rows[1][7], "");
}

static CONFIGURED: Site = Site::new("log_configured");

#[tokio::test]
async fn the_configured_log_path_installs_the_sink_with_no_code() {
    enable_async();
    roll_out(CONFIGURED.name(), 100.0);
    let dir = temp_dir("configured");
    let path = dir.join("uploads.jsonl");
    // The facade's handle: the log follows the configuration once the
    // facade has started the layers above the runtime.
    let handle = async_upload::config::handle();
    handle.update(|c| c.log_path = Some(path.clone())).unwrap();
    handle.update(|c| c.log_path = Some(path.clone())).unwrap(); // idempotent
    upload(&CONFIGURED, 1).await.unwrap();
    assert!(async_upload_control::log::flush());
    let ours = |log: Log| {
        log.uploads
            .iter()
            .filter(|r| r.site == "log_configured")
            .count()
    };
    assert_eq!(ours(read_file(&path).unwrap()), 1);

    // An unwritable path: logged, never a panic, uploads go on.
    let missing = dir.join("no-such-dir").join("uploads.jsonl");
    handle
        .update(|c| c.log_path = Some(missing.clone()))
        .unwrap();
    upload(&CONFIGURED, 2).await.unwrap();
    assert!(async_upload_control::log::global().unwrap().flush());
    assert!(
        async_upload_control::log::global()
            .unwrap()
            .stats()
            .dropped_io
            >= 1
    );

    handle.update(|c| c.log_path = None).unwrap();
    assert!(async_upload_control::log::global().is_none());
    upload(&CONFIGURED, 3).await.unwrap();
    assert_eq!(ours(read_file(&path).unwrap()), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A time the log writes exactly (it keeps microseconds).
fn micros(ts: SystemTime) -> SystemTime {
    let since = ts.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_micros(u64::try_from(since.as_micros()).unwrap())
}

#[test]
fn every_event_kind_is_written_and_read_back_equal() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("all.jsonl");
    let site = "log_roundtrip";
    let ts = micros(SystemTime::now());
    let mut record = UploadRecord::new(site, ExecutionType::SyncFallback, true, 0.367, 3);
    record.ts = ts;
    record.error_type = Some("timeout".into());
    record.bytes = Some(2048);

    // Evaluations of every verdict, decided the way the controller does.
    let mut healthy = SiteSnapshot::empty(site);
    let mut failing = SiteSnapshot::empty(site);
    for i in 0..600u32 {
        let mut ok =
            UploadRecord::new(site, ExecutionType::Async, true, 10.0 + f64::from(i % 7), 1);
        ok.ts = ts;
        healthy.record(&ok);
        let mut sync = ok.clone();
        sync.execution_type = ExecutionType::Sync;
        healthy.record(&sync);
        failing.record(&if i % 5 == 0 { record.clone() } else { ok });
    }
    let stage = DEFAULT_STAGES[1].clone();
    let frozen = Baseline::new(10.5, 16.25, 600);
    let observe = |window: &SiteSnapshot, elapsed_s: u64| {
        evaluate(
            &stage,
            &Triggers::DEFAULT,
            &Observation {
                stage_window: window,
                recent: Health::of(window),
                recent_span: Duration::from_micros(240_000_001),
                elapsed: Duration::from_secs(elapsed_s),
                baseline: Some(&frozen),
                memory: Some(Memory {
                    start_bytes: 100,
                    now_bytes: 101,
                }),
                success_band_for: Duration::ZERO,
                complaints: Some(Complaints {
                    reference: 1.0,
                    current: 1.25,
                }),
                rates: None,
            },
        )
    };
    let evaluations = [
        observe(&healthy, 3600),
        observe(&healthy, 49 * 3600),
        observe(&failing, 3600),
    ];
    assert_eq!(
        evaluations
            .iter()
            .map(|e| e.verdict.name())
            .collect::<Vec<_>>(),
        ["hold", "advance", "rollback"]
    );
    let entered = StageEntered::new(ts, site, stage.clone(), Triggers::DEFAULT)
        .with_baseline(Some(Baseline::new(11.1, 13.7, 2700)))
        .with_memory_bytes(Some(123_456_789));
    let Verdict::Rollback { triggers } = evaluations[2].verdict.clone() else {
        unreachable!()
    };
    let mut events = vec![Event::Stage(StageEvent::Entered(entered.clone()))];
    events.extend(
        evaluations
            .iter()
            .map(|e| Event::Stage(StageEvent::Verdict(VerdictEvent::new(ts, site, e.clone())))),
    );
    events.push(Event::Rollback(
        RollbackEvent::new(ts, site, (2, 10.0), triggers).unwrap(),
    ));
    events.push(Event::Stage(StageEvent::RollbackCleared(entered)));
    events.push(Event::Breaker(BreakerEvent::new(
        ts,
        site,
        BreakerChange::Open,
        Some(Duration::from_secs(2)),
    )));
    events.push(Event::Breaker(BreakerEvent::new(
        ts,
        site,
        BreakerChange::RetryBudgetExhausted,
        None,
    )));

    let log = JsonlLog::open(&path).unwrap();
    log.event(Event::Upload(record.clone()));
    for event in &events {
        log.event(event.clone());
    }
    assert!(log.flush());
    let read = read_file(&path).unwrap();
    assert_eq!(read.errors, []);
    assert_eq!(read.uploads, [record]);
    assert_eq!(read.events, events);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn durations_are_written_to_the_microsecond() {
    let dir = temp_dir("micros");
    let path = dir.join("micros.jsonl");
    let log = JsonlLog::open(&path).unwrap();
    log.record(&UploadRecord::new(
        "log_micros",
        ExecutionType::Async,
        true,
        366_679.0 / 1e6, // 366 679 ns
        1,
    ));
    log.record(&UploadRecord::new(
        "log_micros",
        ExecutionType::Async,
        true,
        12.345_678_9,
        1,
    ));
    assert!(log.flush());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"duration_ms\":0.367,"), "{text}");
    assert!(text.contains("\"duration_ms\":12.346,"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn impossible_values_are_line_errors() {
    let good = r#"{"kind":"upload","v":1,"ts":"2026-11-30T01:25:18Z","site":"s","execution_type":"async","success":true,"duration_ms":12.5,"attempts":1,"error_type":null,"bytes":null}"#;
    let cases = [
        (good.replace("12.5", "-0.5"), "duration_ms"),
        (good.replace("12.5", "1e999"), "out of range"),
        (good.replace("2026-11-30", "2026-02-30"), "ts"),
        (good.replace("2026-11-30T01", "2026-11-30T25"), "ts"),
        (good.replace("\"v\":1", "\"v\":2"), "version 2"),
        (good.replace("\"v\":1,", ""), "`v`"),
        (good.replace("upload", "stage"), "event"),
        (good.replace("\"kind\":\"upload\"", "\"kind\":\"launch\""), "launch"),
        // (An `entered` line without `criteria` is the first release's: read.)
        (
            r#"{"kind":"stage","v":1,"event":"entered","ts":"2026-11-30T01:25:18Z","site":"s","stage":2,"rollout":10.0,"criteria":{"number":3,"rollout":10.0,"min_success_rate":0.99,"max_latency_ratio":1.05,"max_error_rate":0.01,"min_duration_s":60.0,"min_samples":5}}"#.to_owned(),
            "disagree",
        ),
        (
            r#"{"kind":"rollback","v":1,"ts":"2026-11-30T01:25:18Z","site":"s","stage":2,"rollout":10.0,"trigger":"success_rate","measured":0.9,"threshold_":0.95,"reason":"r","triggers":[]}"#.to_owned(),
            "threshold",
        ),
    ];
    let text: String = cases.iter().map(|(line, _)| format!("{line}\n")).collect();
    let results: Vec<_> = Reader::new(format!("{good}\n{text}").as_bytes()).collect();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    for (result, (line, expected)) in results[1..].iter().zip(&cases) {
        let error = result.as_ref().expect_err(line);
        assert!(
            error.message.contains(expected),
            "{line}: {}",
            error.message
        );
    }
}

/// Lines written by the version before the `Event` enum (a controller's
/// run: three records, entered, two verdicts, rollback, cleared, entered).
const OLD_LOG: &str = include_str!("data/log-before-event-enum.jsonl");
const OLD_KINDS: [&str; 6] = [
    "entered",
    "verdict",
    "verdict",
    "rollback",
    "rollback_cleared",
    "entered",
];

/// Lines written by the version before the `Event` enum still read.
#[test]
fn logs_of_the_previous_version_still_read() {
    let read = Log::read(OLD_LOG.as_bytes()).unwrap();
    assert_eq!(read.errors, []);
    assert_eq!(read.uploads.len(), 3);
    let kinds: Vec<&str> = read
        .events
        .iter()
        .map(|e| match e {
            Event::Stage(StageEvent::Entered(e)) => {
                assert_eq!(e.triggers, None, "not recorded then");
                "entered"
            }
            Event::Stage(StageEvent::Verdict(_)) => "verdict",
            Event::Stage(StageEvent::RollbackCleared(_)) => "rollback_cleared",
            Event::Rollback(_) => "rollback",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, OLD_KINDS);
}

/// A writer that takes `accept` bytes of the first write, then fails the
/// next call once (a full disk), then works.
struct FailsPartWay {
    out: Arc<Mutex<Vec<u8>>>,
    accept: usize,
    calls: u32,
}

impl Write for FailsPartWay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        match self.calls {
            1 => {
                let n = self.accept.min(buf.len());
                self.out.lock().unwrap().extend_from_slice(&buf[..n]);
                Ok(n)
            }
            2 => Err(io::ErrorKind::StorageFull.into()),
            _ => {
                self.out.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_failing_part_way_never_leaves_a_torn_line_before_the_next() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let log = JsonlLog::builder_for_writer(FailsPartWay {
        out: Arc::clone(&out),
        accept: 25,
        calls: 0,
    })
    .open()
    .unwrap();
    let record = |n: u32| UploadRecord::new("log_torn", ExecutionType::Async, true, 1.0, n);
    log.record(&record(1));
    assert!(log.flush());
    assert_eq!(log.stats().dropped_io, 1);
    log.record(&record(2));
    log.record(&record(3));
    assert!(log.flush());
    assert_eq!(log.stats().written, 2);
    let bytes = out.lock().unwrap().clone();
    let read = Log::read(bytes.as_slice()).unwrap();
    assert_eq!(read.errors.len(), 1, "the cut line, alone on line 1");
    assert_eq!(read.errors[0].line, 1);
    let attempts: Vec<u32> = read.uploads.iter().map(|r| r.attempts).collect();
    assert_eq!(attempts, [2, 3]);
}

/// A real full device: every write fails with "no space left"; the lines
/// are dropped and counted, nothing blocks or panics.
#[cfg(target_os = "linux")]
#[test]
fn a_full_device_drops_and_counts_every_line() {
    let log = JsonlLog::open("/dev/full").unwrap();
    for n in 0..3 {
        log.record(&UploadRecord::new(
            "log_full",
            ExecutionType::Async,
            true,
            1.0,
            n,
        ));
    }
    assert!(log.flush());
    let stats = log.stats();
    assert_eq!((stats.written, stats.dropped_io), (0, 3));
}
