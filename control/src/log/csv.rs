//! CSV export of upload records, for spreadsheets and ad-hoc analysis.
//!
//! # Formulas
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (and,
//! in some, a tab or carriage return) as a formula, so a site or error name
//! such as `=HYPERLINK(..)` would become one (OWASP "CSV injection"). The
//! free-text cells (`site`, `error_type`) that start with one of those are
//! written with a `'` in front, which spreadsheets show as text. The other
//! cells are never free text: numbers are written from the record's numbers
//! (a `duration_ms` of `-1.5` stays a number), and `execution_type`,
//! `success`, `call_id` and `sync_reason` are fixed names or hex digits.

use std::io::{self, BufWriter, Write};

use async_upload_runtime::metrics::{rfc3339, UploadRecord};

/// The header row [`write_csv`] writes: the record's fields in log order.
pub const CSV_HEADER: [&str; 11] = [
    "ts",
    "site",
    "execution_type",
    "success",
    "duration_ms",
    "attempts",
    "error_type",
    "bytes",
    "call_id",
    "sync_reason",
    "ambiguous_attempts",
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
/// assert!(text.starts_with(
///     "ts,site,execution_type,success,duration_ms,attempts,error_type,bytes,call_id,sync_reason,ambiguous_attempts\n"
/// ));
/// assert!(text.lines().nth(1).unwrap().ends_with(",upload,sync_fallback,true,40.0,3,timeout,,,,0"));
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
    /// as the log writes it, a missing `error_type`, `bytes`, `call_id` or
    /// `sync_reason` empty; a free-text cell that a spreadsheet would run
    /// as a formula starts with `'` (see the module docs).
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
        row.push(b',');
        if let Some(id) = record.call_id {
            row.extend_from_slice(&id.to_hex());
        }
        row.push(b',');
        if let Some(reason) = record.sync_reason {
            row.extend_from_slice(reason.as_str().as_bytes());
        }
        row.push(b',');
        row.extend_from_slice(
            itoa::Buffer::new()
                .format(record.ambiguous_attempts)
                .as_bytes(),
        );
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
/// its quotes doubled, when it holds a comma, a quote or a line break; with
/// a `'` in front when a spreadsheet would run it as a formula.
fn text_field(row: &mut Vec<u8>, text: &str) {
    let formula = matches!(
        text.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    );
    let quoted = text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !quoted {
        if formula {
            row.push(b'\'');
        }
        row.extend_from_slice(text.as_bytes());
        return;
    }
    row.push(b'"');
    if formula {
        row.push(b'\'');
    }
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
    use async_upload_runtime::metrics::ExecutionType;

    #[test]
    fn names_with_commas_quotes_or_newlines_are_quoted() {
        let mut record = UploadRecord::new("a,b", ExecutionType::Async, false, 1.5, 2);
        record.error_type = Some("say \"no\"\nnow".into());
        let mut writer = CsvWriter::new(Vec::new()).unwrap();
        writer.write(&record).unwrap();
        let text = String::from_utf8(writer.finish().unwrap()).unwrap();
        let row = text.split_once('\n').unwrap().1;
        assert!(
            row.ends_with(",\"a,b\",async,false,1.5,2,\"say \"\"no\"\"\nnow\",,,,0\n"),
            "{row}"
        );
    }

    /// Rows as a spreadsheet program's CSV parser reads them back.
    fn read_back(records: &[UploadRecord]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        write_csv(&mut out, records).unwrap();
        ::csv::Reader::from_reader(out.as_slice())
            .records()
            .map(|row| row.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn text_a_spreadsheet_would_run_as_a_formula_is_written_as_text() {
        let mut rows = Vec::new();
        for (site, error) in [
            ("=HYPERLINK(\"http://x\",\"y\")", "+cmd"),
            ("-2+3", "@SUM(A1)"),
            ("\tsite", "\rerror"),
            ("=a,b", "plain"),
            ("up-load", "a=b"),
        ] {
            let mut record = UploadRecord::new(site, ExecutionType::Async, false, -1.5, 1);
            record.error_type = Some(error.into());
            rows.push(record);
        }
        let read = read_back(&rows);
        let cells: Vec<(&str, &str)> = read
            .iter()
            .map(|r| (r[1].as_str(), r[6].as_str()))
            .collect();
        assert_eq!(
            cells,
            [
                ("'=HYPERLINK(\"http://x\",\"y\")", "'+cmd"),
                ("'-2+3", "'@SUM(A1)"),
                ("'\tsite", "'\rerror"),
                ("'=a,b", "plain"),
                ("up-load", "a=b"),
            ]
        );
        // A number is not free text: a negative duration stays a number.
        assert!(read.iter().all(|r| r[4] == "-1.5"), "{read:?}");
    }

    #[test]
    fn the_new_fields_are_written_and_empty_when_unknown() {
        use async_upload_runtime::metrics::SyncReason;
        use async_upload_runtime::CallId;
        let mut known = UploadRecord::new("s", ExecutionType::SyncFallback, true, 3.0, 2)
            .with_sync_reason(SyncReason::AsyncGaveUp);
        known.call_id = Some(CallId::from_u128(0xabc));
        known.ambiguous_attempts = 2;
        let unknown = UploadRecord::new("s", ExecutionType::Async, true, 3.0, 1);
        let read = read_back(&[known, unknown]);
        assert_eq!(
            read[0][8..],
            ["00000000000000000000000000000abc", "async_gave_up", "2"]
        );
        assert_eq!(read[1][8..], ["", "", "0"]);
    }
}
