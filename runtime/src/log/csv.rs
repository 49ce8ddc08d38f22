//! CSV export of upload records, for spreadsheets and ad-hoc analysis.

use std::io::{self, BufWriter, Write};

use crate::metrics::{rfc3339, UploadRecord};

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
    out: BufWriter<W>,
    /// The row being written, reused: a row allocates nothing.
    row: Vec<u8>,
}

impl<W: Write> CsvWriter<W> {
    /// A writer to `out` (buffered here), the header row ([`CSV_HEADER`])
    /// written.
    ///
    /// # Errors
    ///
    /// Writing the header failed.
    pub fn new(out: W) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 16, out);
        out.write_all(CSV_HEADER.join(",").as_bytes())?;
        out.write_all(b"\n")?;
        Ok(CsvWriter {
            out,
            row: Vec::with_capacity(128),
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
        let row = &mut self.row;
        row.clear();
        let ts = rfc3339::micros(record.ts).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                rfc3339::out_of_range(record.ts),
            )
        })?;
        row.extend_from_slice(&ts);
        row.push(b',');
        text_field(row, &record.site);
        row.push(b',');
        row.extend_from_slice(record.execution_type.as_str().as_bytes());
        row.extend_from_slice(if record.success {
            b",true,"
        } else {
            b",false,"
        });
        // ryu, as serde_json writes the JSON line: the shortest text that
        // reads back as the same number, with its `.0`.
        row.extend_from_slice(
            ryu::Buffer::new()
                .format(super::line::round_ms(record.duration_ms))
                .as_bytes(),
        );
        row.push(b',');
        row.extend_from_slice(itoa::Buffer::new().format(record.attempts).as_bytes());
        row.push(b',');
        if let Some(error) = record.error_type.as_deref() {
            text_field(row, error);
        }
        row.push(b',');
        if let Some(bytes) = record.bytes {
            row.extend_from_slice(itoa::Buffer::new().format(bytes).as_bytes());
        }
        row.push(b'\n');
        self.out.write_all(row)
    }

    /// Flushes every row and gives the output back.
    ///
    /// # Errors
    ///
    /// Flushing failed.
    pub fn finish(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

/// A free-text field (a site or error name) as RFC 4180 writes it: quoted,
/// its quotes doubled, when it holds a comma, a quote or a line break.
fn text_field(row: &mut Vec<u8>, text: &str) {
    if !text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        row.extend_from_slice(text.as_bytes());
        return;
    }
    row.push(b'"');
    for b in text.bytes() {
        if b == b'"' {
            row.push(b'"');
        }
        row.push(b);
    }
    row.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ExecutionType;

    #[test]
    fn names_with_commas_quotes_or_newlines_are_quoted() {
        let mut record = UploadRecord::new("a,b", ExecutionType::Async, false, 1.5, 2);
        record.error_type = Some("say \"no\"\nnow".into());
        let mut writer = CsvWriter::new(Vec::new()).unwrap();
        writer.write(&record).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        let row = text.split_once('\n').unwrap().1;
        assert!(
            row.ends_with(",\"a,b\",async,false,1.5,2,\"say \"\"no\"\"\nnow\",\n"),
            "{row}"
        );
    }
}
