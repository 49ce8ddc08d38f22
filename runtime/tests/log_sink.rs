//! The JSONL sink: overflow and disk failures never fail an upload and are
//! counted exactly, lines are whole, the file recovers, the reader skips
//! bad lines, CSV export, and `ASYNC_UPLOAD_LOG` with no code.

mod support;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_upload_runtime::execute::execute;
use async_upload_runtime::log::{read_file, write_csv, Entry, JsonlLog, Log, Reader, CSV_HEADER};
use async_upload_runtime::metrics::{
    add_sink, remove_sink, ExecutionType, MetricsSink, UploadRecord,
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

#[test]
fn a_record_reaches_the_file_within_100_ms() {
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
            started.elapsed() < Duration::from_millis(100),
            "not written within 100 ms"
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
    log.event(
        "stage",
        &serde_json::json!({"site": "log_drop", "event": "entered", "stage": 1}),
    )
    .unwrap();
    drop(log);
    let read = read_file(&path).unwrap();
    assert_eq!(read.uploads.len(), 500);
    assert_eq!(read.events.len(), 1);
    assert_eq!(read.events[0].kind, "stage");
    assert_eq!(read.events[0].site.as_deref(), Some("log_drop"));
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
        r#"{{"kind":"rollback","v":1,"site":"s","trigger":"error_rate"}}"#
    )
    .unwrap();
    write!(text, "{good}").unwrap(); // no final newline

    let log = Log::read(text.as_slice()).unwrap();
    assert_eq!(log.uploads.len(), 2);
    assert_eq!(log.events.len(), 1);
    assert_eq!(log.events[0].str("trigger"), Some("error_rate"));
    let lines: Vec<usize> = log.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 4, 5, 6, 7]);
    assert!(
        log.errors[2].message.contains("version"),
        "{}",
        log.errors[2]
    );

    let entries: Vec<_> = Reader::new(text.as_slice()).collect();
    assert_eq!(entries.len(), 8);
    assert!(matches!(entries[0], Ok(Entry::Upload(_))));
}

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
    let handle = async_upload_runtime::config::handle();
    handle.update(|c| c.log_path = Some(path.clone())).unwrap();
    handle.update(|c| c.log_path = Some(path.clone())).unwrap(); // idempotent
    upload(&CONFIGURED, 1).await.unwrap();
    assert!(async_upload_runtime::log::flush());
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
    assert!(async_upload_runtime::log::global().unwrap().flush());
    assert!(
        async_upload_runtime::log::global()
            .unwrap()
            .stats()
            .dropped_io
            >= 1
    );

    handle.update(|c| c.log_path = None).unwrap();
    assert!(async_upload_runtime::log::global().is_none());
    upload(&CONFIGURED, 3).await.unwrap();
    assert_eq!(ours(read_file(&path).unwrap()), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
