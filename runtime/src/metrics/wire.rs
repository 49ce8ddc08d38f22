//! The JSON shape of a record, both ways: [`UploadRecord`]'s `Serialize`
//! and `Deserialize`, and the log reader's one-pass parse of an `upload`
//! line.

use std::borrow::Cow;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::record::{ExecutionType, RuntimeFault, SyncReason, UploadRecord};
use crate::call_id::CallId;
use crate::metrics::flat_json::{self, Scalar};
use crate::metrics::rfc3339;

/// A record as its line holds it: read with owned strings, written with
/// the record's borrowed (`S = &str`), so writing copies nothing.
#[derive(Serialize, Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Upload<S = Cow<'static, str>> {
    #[serde(with = "crate::metrics::rfc3339")]
    ts: SystemTime,
    site: S,
    execution_type: ExecutionType,
    success: bool,
    duration_ms: f64,
    attempts: u32,
    error_type: Option<S>,
    bytes: Option<u64>,
    #[serde(default)]
    critical: Option<bool>,
    #[serde(default)]
    fault: Option<RuntimeFault>,
    // Added to v1 later: optional on reading, so older lines still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call_id: Option<CallId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sync_reason: Option<SyncReason>,
    #[serde(default)]
    ambiguous_attempts: u32,
    /// The log line's framing (`"kind":"upload"`, `"v"`): read only
    /// when a line is parsed straight into a record, never written here
    /// (the log's event enum writes both).
    #[serde(default, skip_serializing)]
    kind: Option<Kind>,
    #[serde(default, skip_serializing, rename = "v")]
    version: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Upload,
}

/// The record of an `upload` line of format `version`, parsed in one
/// pass with no intermediate buffering (the log reader's fast path);
/// `None` when the line is anything else or wrong in any way, for the
/// strict reader to name what.
#[must_use]
pub fn from_line(line: &[u8], version: u32) -> Option<UploadRecord> {
    // One UTF-8 check of the whole line is cheaper than serde_json's
    // check of each string in it.
    let text = std::str::from_utf8(line).ok()?;
    let wire = scanned(text).or_else(|| serde_json::from_str::<Upload>(text).ok())?;
    let framed = wire.kind == Some(Kind::Upload) && wire.version == Some(u64::from(version));
    framed.then(|| UploadRecord::try_from(wire).ok()).flatten()
}

/// `text` read by the flat scanner exactly as `serde_json` reads it into an
/// [`Upload`]; `None` when the scanner declines, a key is unknown or
/// repeated, a value is not of the key's type, or a required key is
/// missing: `serde_json` then reads the line and decides.
fn scanned(text: &str) -> Option<Upload> {
    let mut line = Scanned::default();
    flat_json::scan(text, |key, value| line.field(key, value))?;
    line.upload()
}

/// The fields of a scanned line; a nullable field is `Some(None)` once
/// read as `null`.
#[derive(Default)]
// The outer option says the key was seen (a repeat is `serde_json`'s to
// reject), the inner one its value or `null`.
#[allow(clippy::option_option)]
struct Scanned<'a> {
    ts: Option<SystemTime>,
    site: Option<&'a str>,
    execution_type: Option<ExecutionType>,
    success: Option<bool>,
    duration_ms: Option<f64>,
    attempts: Option<u32>,
    error_type: Option<Option<&'a str>>,
    bytes: Option<Option<u64>>,
    critical: Option<Option<bool>>,
    fault: Option<Option<RuntimeFault>>,
    call_id: Option<Option<CallId>>,
    sync_reason: Option<Option<SyncReason>>,
    ambiguous_attempts: Option<u32>,
    kind: Option<Option<Kind>>,
    version: Option<Option<u64>>,
}

impl<'a> Scanned<'a> {
    fn field(&mut self, key: &str, value: Scalar<'a>) -> Option<()> {
        match key {
            "ts" => once(&mut self.ts, rfc3339::parse(text(value)?)?),
            "site" => once(&mut self.site, text(value)?),
            "execution_type" => {
                let name = text(value)?;
                let execution_type = ExecutionType::ALL.into_iter().find(|t| t.as_str() == name);
                once(&mut self.execution_type, execution_type?)
            }
            "success" => once(&mut self.success, flag(value)?),
            // Rust's parse rounds correctly, as serde_json's
            // `float_roundtrip` does; an overflow is serde_json's to name.
            "duration_ms" => {
                let duration = number(value)?.parse::<f64>().ok()?;
                once(
                    &mut self.duration_ms,
                    Some(duration).filter(|d| d.is_finite())?,
                )
            }
            "attempts" => once(&mut self.attempts, number(value)?.parse().ok()?),
            "error_type" => once(&mut self.error_type, nullable(value, text)?),
            "bytes" => once(
                &mut self.bytes,
                nullable(value, |v| number(v)?.parse().ok())?,
            ),
            "critical" => once(&mut self.critical, nullable(value, flag)?),
            "fault" => once(
                &mut self.fault,
                nullable(value, |v| RuntimeFault::named(text(v)?))?,
            ),
            "call_id" => once(
                &mut self.call_id,
                nullable(value, |v| text(v)?.parse().ok())?,
            ),
            "sync_reason" => once(
                &mut self.sync_reason,
                nullable(value, |v| text(v)?.parse().ok())?,
            ),
            "ambiguous_attempts" => {
                once(&mut self.ambiguous_attempts, number(value)?.parse().ok()?)
            }
            "kind" => once(
                &mut self.kind,
                nullable(value, |v| (text(v)? == "upload").then_some(Kind::Upload))?,
            ),
            "v" => once(
                &mut self.version,
                nullable(value, |v| number(v)?.parse().ok())?,
            ),
            _ => None,
        }
    }

    fn upload(self) -> Option<Upload> {
        let owned = |text: &str| Cow::Owned(text.to_owned());
        Some(Upload {
            ts: self.ts?,
            site: owned(self.site?),
            execution_type: self.execution_type?,
            success: self.success?,
            duration_ms: self.duration_ms?,
            attempts: self.attempts?,
            error_type: self.error_type.flatten().map(owned),
            bytes: self.bytes.flatten(),
            critical: self.critical.flatten(),
            fault: self.fault.flatten(),
            call_id: self.call_id.flatten(),
            sync_reason: self.sync_reason.flatten(),
            ambiguous_attempts: self.ambiguous_attempts.unwrap_or(0),
            kind: self.kind.flatten(),
            version: self.version.flatten(),
        })
    }
}

/// Sets `slot` to `value`; `None` when it was set already (`serde_json`
/// rejects a repeated key).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(value))
}

fn text(value: Scalar<'_>) -> Option<&str> {
    match value {
        Scalar::Str(text) => Some(text),
        _ => None,
    }
}

fn number(value: Scalar<'_>) -> Option<&str> {
    match value {
        Scalar::Number(text) => Some(text),
        _ => None,
    }
}

fn flag(value: Scalar<'_>) -> Option<bool> {
    match value {
        Scalar::Bool(flag) => Some(flag),
        _ => None,
    }
}

/// `null` as `Some(None)`, else the value read by `read`.
#[allow(clippy::option_option)] // as in `Scanned`
fn nullable<'a, T>(
    value: Scalar<'a>,
    read: impl FnOnce(Scalar<'a>) -> Option<T>,
) -> Option<Option<T>> {
    match value {
        Scalar::Null => Some(None),
        value => read(value).map(Some),
    }
}

impl<'a> From<&'a UploadRecord> for Upload<&'a str> {
    fn from(r: &'a UploadRecord) -> Self {
        Upload {
            critical: Some(r.is_critical()),
            ts: r.ts,
            site: &r.site,
            execution_type: r.execution_type,
            success: r.success,
            duration_ms: r.duration_ms,
            attempts: r.attempts,
            error_type: r.error_type.as_deref(),
            bytes: r.bytes,
            fault: r.fault,
            call_id: r.call_id,
            sync_reason: r.sync_reason,
            ambiguous_attempts: r.ambiguous_attempts,
            kind: None,
            version: None,
        }
    }
}

impl serde::Serialize for UploadRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Upload::from(self).serialize(serializer)
    }
}

// What `#[serde(try_from = "Upload")]` on the record would generate, kept
// here so that the record's file knows nothing of its wire form.
impl<'de> serde::Deserialize<'de> for UploadRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Upload::deserialize(deserializer)?;
        UploadRecord::try_from(wire).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<Upload> for UploadRecord {
    type Error = String;

    fn try_from(w: Upload) -> Result<Self, String> {
        let fault = match (w.critical, w.fault) {
            // A line of a version before `critical`: only there is the
            // fault read from the reserved names.
            (None, None) => w.error_type.as_deref().and_then(RuntimeFault::named),
            (_, fault) => fault,
        };
        let critical = fault.is_some_and(RuntimeFault::is_critical);
        if w.critical.is_some_and(|said| said != critical) {
            return Err(format!(
                "`critical` is {} but `fault` is {}: only fault \"panic\" is critical",
                !critical,
                fault.map_or("null", RuntimeFault::as_str),
            ));
        }
        Ok(UploadRecord {
            ts: w.ts,
            site: w.site,
            execution_type: w.execution_type,
            success: w.success,
            duration_ms: w.duration_ms,
            attempts: w.attempts,
            error_type: w.error_type,
            bytes: w.bytes,
            fault,
            call_id: w.call_id,
            sync_reason: w.sync_reason,
            ambiguous_attempts: w.ambiguous_attempts,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// A line as the log's writer frames a record.
    fn line(record: &UploadRecord) -> String {
        let fields = serde_json::to_string(record).unwrap();
        format!(
            "{{\"kind\":\"upload\",{},\"v\":1}}\n",
            &fields[1..fields.len() - 1]
        )
    }

    fn record(rng: &mut fastrand::Rng) -> UploadRecord {
        let sites = ["upload", "a,b", "é ü", "quo\"te", "back\\slash"];
        let errors = [
            None,
            Some("timeout"),
            Some("connection_reset"),
            Some("panic"),
            Some("tab\t"),
        ];
        let mut record = UploadRecord::new(
            sites[rng.usize(0..sites.len())],
            ExecutionType::ALL[rng.usize(0..3)],
            rng.bool(),
            match rng.u8(0..4) {
                0 => f64::from(rng.u32(0..100_000)),
                1 => rng.f64() * 1e-3,
                2 => rng.f64() * 1e12,
                _ => (rng.f64() * 1e6).round() / 1000.0,
            },
            rng.u32(0..4),
        );
        record.ts = UNIX_EPOCH + Duration::from_micros(rng.u64(0..4_000_000_000_000_000));
        record.error_type = errors[rng.usize(0..errors.len())].map(Cow::Borrowed);
        record.bytes = rng.bool().then(|| rng.u64(..));
        if rng.u8(0..4) == 0 {
            record = record.with_fault(RuntimeFault::ALL[rng.usize(0..RuntimeFault::ALL.len())]);
        }
        record.call_id = rng.bool().then(|| CallId::from_u128(rng.u128(..)));
        if rng.bool() {
            record = record.with_sync_reason(SyncReason::ALL[rng.usize(0..SyncReason::ALL.len())]);
        }
        record.ambiguous_attempts = rng.u32(0..4);
        record
    }

    /// What `serde_json` reads of `text`, when the scanner reads it too.
    fn agree(text: &str) -> bool {
        let Some(fast) = scanned(text) else {
            return false;
        };
        let derived = serde_json::from_str::<Upload>(text);
        assert_eq!(derived.as_ref().ok(), Some(&fast), "{text}");
        true
    }

    #[test]
    fn the_scanner_reads_written_lines_as_serde_json_does() {
        let mut rng = fastrand::Rng::with_seed(12);
        for _ in 0..20_000 {
            let record = record(&mut rng);
            let text = line(&record);
            // Every line the writer writes is in the scanner's subset but
            // those with escapes.
            assert_eq!(agree(&text), !text.contains('\\'), "{text}");
            assert_eq!(from_line(text.as_bytes(), 1), Some(record), "{text}");
        }
    }

    #[test]
    fn a_damaged_line_is_read_as_serde_json_reads_it_or_left_to_it() {
        let mut rng = fastrand::Rng::with_seed(13);
        let bytes = b"{}[]\",:0123456789.eE+- tnulfa\\\n";
        let mut read = 0;
        for _ in 0..100_000 {
            let mut text = line(&record(&mut rng)).into_bytes();
            for _ in 0..rng.usize(1..3) {
                let at = rng.usize(0..text.len());
                match rng.u8(0..3) {
                    0 => {
                        text.remove(at);
                    }
                    1 => text.insert(at, bytes[rng.usize(0..bytes.len())]),
                    _ => text[at] = bytes[rng.usize(0..bytes.len())],
                }
            }
            if let Ok(text) = String::from_utf8(text) {
                read += usize::from(agree(&text));
            }
        }
        assert!(
            read > 1000,
            "only {read} damaged lines were still in the subset"
        );
    }

    #[test]
    fn the_fields_added_to_v1_are_written_when_known_and_optional_on_reading() {
        let id = CallId::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let mut record = UploadRecord::new("s", ExecutionType::Sync, true, 1.5, 0)
            .with_sync_reason(SyncReason::NotEnrolled);
        record.ts = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        record.call_id = Some(id);
        let text = line(&record);
        assert!(
            text.contains("\"call_id\":\"0123456789abcdef0123456789abcdef\""),
            "{text}"
        );
        assert!(text.contains("\"sync_reason\":\"not_enrolled\""), "{text}");
        assert!(text.contains("\"ambiguous_attempts\":0"), "{text}");
        assert!(agree(&text));
        assert_eq!(from_line(text.as_bytes(), 1), Some(record.clone()));

        // A call that did not run the sync path has no reason on its line.
        let mut served = record.clone();
        served.execution_type = ExecutionType::Async;
        served.sync_reason = None;
        served.ambiguous_attempts = 2;
        let text = line(&served);
        assert!(!text.contains("sync_reason"), "{text}");
        assert_eq!(from_line(text.as_bytes(), 1), Some(served));

        // A line of an earlier release, without any of them, reads on both paths.
        let old = "{\"kind\":\"upload\",\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"s\",\
                   \"execution_type\":\"sync\",\"success\":true,\"duration_ms\":1.5,\
                   \"attempts\":0,\"error_type\":null,\"bytes\":null,\"v\":1}";
        assert!(agree(old));
        let read = from_line(old.as_bytes(), 1).unwrap();
        assert_eq!(
            (read.call_id, read.sync_reason, read.ambiguous_attempts),
            (None, None, 0)
        );
        let spaced = old.replace(",\"v\"", ", \"v\"");
        assert_eq!(from_line(spaced.as_bytes(), 1), Some(read));

        // A value no writer produces is serde_json's to reject, by name.
        for bad in [
            old.replace("\"v\":1", "\"v\":1,\"sync_reason\":\"tired\""),
            old.replace("\"v\":1", "\"v\":1,\"call_id\":\"XYZ\""),
        ] {
            assert!(scanned(&bad).is_none(), "{bad}");
            let error = serde_json::from_str::<Upload>(&bad)
                .unwrap_err()
                .to_string();
            assert!(error.contains("expected"), "{error}");
        }
    }

    #[test]
    fn keys_in_any_order_old_lines_and_integers_read_alike() {
        for text in [
            "{\"v\":1,\"bytes\":null,\"kind\":\"upload\",\"site\":\"s\",\"ts\":\"2026-11-30T01:25:18Z\",\
             \"execution_type\":\"async\",\"success\":false,\"duration_ms\":5,\"attempts\":2,\"error_type\":\"panic\"}",
            "{\"ts\":\"2026-11-30T01:25:18.5+01:00\",\"site\":\"s\",\"execution_type\":\"sync\",\
             \"success\":true,\"duration_ms\":-0,\"attempts\":0}",
            "{\"ts\":\"2026-11-30T01:25:18.000001Z\",\"site\":\"s\",\"execution_type\":\"sync\",\
             \"success\":true,\"duration_ms\":18446744073709551616,\"attempts\":0,\"kind\":null}",
        ] {
            assert!(agree(text), "{text}");
        }
        for declined in [
            // Repeated key, unknown key, missing key, out of range.
            "{\"ts\":\"2026-11-30T01:25:18Z\",\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"s\",\
             \"execution_type\":\"sync\",\"success\":true,\"duration_ms\":1,\"attempts\":0}",
            "{\"extra\":1,\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"s\",\"execution_type\":\"sync\",\
             \"success\":true,\"duration_ms\":1,\"attempts\":0}",
            "{\"ts\":\"2026-11-30T01:25:18Z\",\"execution_type\":\"sync\",\"success\":true,\
             \"duration_ms\":1,\"attempts\":0}",
            "{\"ts\":\"2026-11-30T01:25:18Z\",\"site\":\"s\",\"execution_type\":\"sync\",\
             \"success\":true,\"duration_ms\":1e400,\"attempts\":4294967296}",
        ] {
            assert!(scanned(declined).is_none(), "{declined}");
        }
    }
}
