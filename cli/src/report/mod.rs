//! `async-upload report`: one streaming pass over the logs, feeding the
//! report, the HTML dashboard and the CSV export at once.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::{self, JoinHandle};

use async_upload_control::log::{CsvWriter, Event, Merged};
use async_upload_control::stages::{ReportBuilder, ReportOptions};
use async_upload_dashboard::Dashboard;
use async_upload_runtime::metrics::{CallAudit, UploadRecord};

/// Exit status for bad input: missing or unreadable file, nothing parseable.
pub const BAD_INPUT: u8 = 2;

/// Records handed to the CSV thread at a time.
const CSV_BATCH: usize = 1024;

/// Reads `files` once and prints the report; the exit status (0, 3 or 4)
/// or what made the input unusable.
pub fn run(
    files: &[PathBuf],
    site: Option<String>,
    stage: Option<u32>,
    csv: Option<PathBuf>,
    json: bool,
    html: Option<PathBuf>,
) -> Result<u8, String> {
    let mut merged =
        Merged::open(files).map_err(|e| format!("{}: {}", files[e.source].display(), e.error))?;
    let mut csv = csv.map(CsvThread::spawn).transpose()?;
    let wanted = |name: &str| site.as_deref().is_none_or(|only| only == name);
    let mut builder = ReportBuilder::new(ReportOptions {
        site: site.clone(),
        stage,
        ..ReportOptions::default()
    });
    let mut dashboard = html.as_ref().map(|_| Dashboard::new(stage));
    let mut audit = CallAudit::default();
    // One pass over every file, in time order: nothing but aggregates is
    // kept, so memory does not grow with the logs.
    let mut parsed = false;
    while let Some((source, line)) = merged
        .next_event()
        .map_err(|e| format!("{}: {}", files[e.source].display(), e.error))?
    {
        let event = match line {
            Ok(event) => event,
            Err(error) => {
                eprintln!("warning: {}: {error} (skipped)", files[source].display());
                continue;
            }
        };
        parsed = true;
        match event {
            Event::Upload(record) => {
                builder.record(&record);
                if wanted(&record.site) {
                    audit.record(&record);
                }
                if let Some(dashboard) = dashboard.as_mut() {
                    dashboard.record(&record);
                }
                let stopped = csv
                    .as_mut()
                    .filter(|_| wanted(&record.site))
                    .is_some_and(|csv| !csv.push(record));
                if stopped {
                    let why = csv.take().map(CsvThread::finish);
                    return Err(why.and_then(Result::err).unwrap_or_default());
                }
            }
            event => {
                builder.event(&event);
                if let Some(dashboard) = dashboard.as_mut() {
                    dashboard.event(&event);
                }
            }
        }
    }
    if !parsed {
        return Err("nothing parseable in the given files".into());
    }
    if let Some(csv) = csv {
        csv.finish()?;
    }
    let report = builder.finish().map_err(|error| error.to_string())?;
    if let (Some(path), Some(dashboard)) = (html, dashboard) {
        let page = dashboard.render(&report).map_err(|e| e.to_string())?;
        std::fs::write(&path, page).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("HTML report: {}", path.display());
    }
    if json {
        let mut value = serde_json::to_value(&report).map_err(|e| e.to_string())?;
        if let Some(fields) = value.as_object_mut() {
            let audit = serde_json::to_value(&audit).map_err(|e| e.to_string())?;
            fields.insert("sync_paths".into(), audit);
        }
        let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report.render());
        print!("{}", audit.render());
        println!("exit status {}", report.exit_code);
    }
    Ok(u8::try_from(report.exit_code).unwrap_or(BAD_INPUT))
}

/// The CSV export on a thread of its own: formatting a row costs about as
/// much as counting it, so the pass does not wait for it.
struct CsvThread {
    path: PathBuf,
    batch: Vec<UploadRecord>,
    sender: SyncSender<Vec<UploadRecord>>,
    writer: JoinHandle<std::io::Result<()>>,
}

impl CsvThread {
    fn spawn(path: PathBuf) -> Result<Self, String> {
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut out = File::create(&path)
            .and_then(CsvWriter::new)
            .map_err(failed)?;
        let (sender, batches) = sync_channel::<Vec<UploadRecord>>(4);
        let writer = thread::Builder::new()
            .name("async-upload-csv".into())
            .spawn(move || {
                for batch in batches {
                    for record in &batch {
                        out.write(record)?;
                    }
                }
                out.finish().map(drop)
            })
            .map_err(failed)?;
        Ok(CsvThread {
            path,
            batch: Vec::with_capacity(CSV_BATCH),
            sender,
            writer,
        })
    }

    /// Queues `record`; `false` when the writer has stopped on an error,
    /// which [`CsvThread::finish`] then names.
    fn push(&mut self, record: UploadRecord) -> bool {
        self.batch.push(record);
        if self.batch.len() < CSV_BATCH {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(CSV_BATCH));
        self.sender.send(batch).is_ok()
    }

    /// Writes what is queued and waits for the file to be complete.
    fn finish(self) -> Result<(), String> {
        let CsvThread {
            path,
            batch,
            sender,
            writer,
        } = self;
        // A writer that stopped is joined below and says why.
        let _ = sender.send(batch);
        drop(sender);
        match writer.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("{}: {error}", path.display())),
            Err(_) => Err(format!("{}: the CSV writer panicked", path.display())),
        }
    }
}
