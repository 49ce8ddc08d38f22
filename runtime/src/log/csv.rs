//! CSV export of upload records, for spreadsheets and ad-hoc analysis.

use std::io::{self, Write};

use serde::Serialize;

use crate::metrics::UploadRecord;

/// The header row [`write_csv`] writes: the record's fields in log order.
pub const CSV_HEADER: [&str; 8] = [
    "ts",
    "site",
    "execution_type",
    "success",
    "duration_ms",
    "attempts",
    "error_type",
    "bytes",
];

/// One CSV row; a missing `error_type` or `bytes` is an empty field.
#[derive(Serialize)]
struct Row<'a> {
    ts: String,
    site: &'a str,
    execution_type: &'static str,
    success: bool,
    duration_ms: f64,
    attempts: u32,
    error_type: Option<&'a str>,
    bytes: Option<u64>,
}

/// Writes `records` as CSV with a header row ([`CSV_HEADER`]); the header
/// is written also when there is no record.
///
/// ```
/// use async_upload::log::write_csv;
/// use async_upload::metrics::{ExecutionType, UploadRecord};
///
/// let mut record = UploadRecord::new("upload", ExecutionType::SyncFallback, true, 40.0, 3);
/// record.error_type = Some("timeout".into());
/// let mut out = Vec::new();
/// write_csv(&mut out, [&record])?;
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("ts,site,execution_type,success,duration_ms,attempts,error_type,bytes\n"));
/// assert!(text.lines().nth(1).unwrap().ends_with(",upload,sync_fallback,true,40.0,3,timeout,"));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// Writing to `out` failed.
pub fn write_csv<'a>(
    out: impl Write,
    records: impl IntoIterator<Item = &'a UploadRecord>,
) -> io::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record(CSV_HEADER)?;
    for record in records {
        writer.serialize(Row {
            ts: humantime::format_rfc3339_micros(record.ts).to_string(),
            site: &record.site,
            execution_type: record.execution_type.as_str(),
            success: record.success,
            duration_ms: super::line::round_ms(record.duration_ms),
            attempts: record.attempts,
            error_type: record.error_type.as_deref(),
            bytes: record.bytes,
        })?;
    }
    writer.flush()?;
    Ok(())
}
