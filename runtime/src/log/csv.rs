//! CSV export of upload records, for spreadsheets and ad-hoc analysis.

use std::io::{self, Write};

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
    let mut writer = CsvWriter::new(out)?;
    for record in records {
        writer.write(record)?;
    }
    writer.finish().map(drop)
}

/// Writes upload records as CSV one at a time, for a log read as a stream;
/// [`write_csv`] writes a collection.
///
/// ```
/// use async_upload::log::CsvWriter;
/// use async_upload::metrics::{ExecutionType, UploadRecord};
///
/// let mut writer = CsvWriter::new(Vec::new())?;
/// writer.write(&UploadRecord::new("upload", ExecutionType::Sync, true, 12.5, 0))?;
/// let text = String::from_utf8(writer.finish()?).unwrap();
/// assert_eq!(text.lines().count(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct CsvWriter<W: Write> {
    inner: csv::Writer<W>,
    /// Reused for each field that is formatted (time and numbers): a row
    /// allocates nothing.
    field: String,
}

impl<W: Write> CsvWriter<W> {
    /// A writer to `out`, the header row ([`CSV_HEADER`]) written.
    ///
    /// # Errors
    ///
    /// Writing the header failed.
    pub fn new(out: W) -> io::Result<Self> {
        let mut inner = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        inner.write_record(CSV_HEADER)?;
        Ok(CsvWriter {
            inner,
            field: String::with_capacity(32),
        })
    }

    /// Writes one record's row: the fields of [`CSV_HEADER`], the time in
    /// RFC 3339 with microseconds, the duration rounded to the microsecond
    /// as the log writes it, a missing `error_type` or `bytes` empty.
    ///
    /// # Errors
    ///
    /// Writing failed.
    pub fn write(&mut self, record: &UploadRecord) -> io::Result<()> {
        self.formatted(format_args!(
            "{}",
            humantime::format_rfc3339_micros(record.ts)
        ))?;
        self.inner.write_field(record.site.as_bytes())?;
        self.inner.write_field(record.execution_type.as_str())?;
        self.inner
            .write_field(if record.success { "true" } else { "false" })?;
        // `{:?}`: the shortest text that reads back as the same number, with
        // its `.0`, as in the JSON line.
        self.formatted(format_args!(
            "{:?}",
            super::line::round_ms(record.duration_ms)
        ))?;
        self.formatted(format_args!("{}", record.attempts))?;
        self.inner
            .write_field(record.error_type.as_deref().unwrap_or_default())?;
        match record.bytes {
            Some(bytes) => self.formatted(format_args!("{bytes}"))?,
            None => self.inner.write_field("")?,
        }
        self.inner.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn formatted(&mut self, value: core::fmt::Arguments<'_>) -> io::Result<()> {
        use core::fmt::Write as _;
        self.field.clear();
        // Writing into a String cannot fail.
        let _ = self.field.write_fmt(value);
        self.inner.write_field(&self.field)?;
        Ok(())
    }

    /// Flushes every row and gives the output back.
    ///
    /// # Errors
    ///
    /// Flushing failed.
    pub fn finish(self) -> io::Result<W> {
        self.inner
            .into_inner()
            .map_err(|error| io::Error::new(error.error().kind(), error.to_string()))
    }
}
