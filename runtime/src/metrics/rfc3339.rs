//! RFC 3339 timestamps in UTC with microseconds, e.g.
//! `2026-11-30T01:25:18.123456Z`: the `ts` of every log line and CSV row.
//!
//! Written by hand rather than through `humantime`'s `Display`: the log's
//! sink and the CSV export write one per record, and the formatting
//! machinery cost more than the rest of a CSV row. Read by hand when in
//! exactly the written form, else with `humantime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de::Error as _, ser::Error as _, Deserialize, Deserializer, Serializer};

/// Bytes of a timestamp: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const LEN: usize = 27;

/// The first second of the year 10000, which RFC 3339 cannot write.
const YEAR_10000: u64 = 253_402_300_800;

/// `ts` written, or `None` before 1970 or from the year 10000 on: the
/// range RFC 3339 in UTC can write.
#[must_use]
pub fn micros(ts: SystemTime) -> Option<[u8; LEN]> {
    let since = ts.duration_since(UNIX_EPOCH).ok()?;
    let secs = since.as_secs();
    if secs >= YEAR_10000 {
        return None;
    }
    let (year, month, day) = civil(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    digits(&mut text[0..4], year);
    digits(&mut text[5..7], month);
    digits(&mut text[8..10], day);
    digits(&mut text[11..13], of_day / 3600);
    digits(&mut text[14..16], of_day / 60 % 60);
    digits(&mut text[17..19], of_day % 60);
    digits(&mut text[20..26], u64::from(since.subsec_micros()));
    Some(text)
}

/// The date of day `days` since 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for days after the epoch).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, so February's leap day comes last.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `value`'s last `out.len()` decimal digits, zero-padded.
fn digits(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        // A remainder of 10 is a single decimal digit.
        #[allow(clippy::cast_possible_truncation)]
        let last = (value % 10) as u8;
        *digit = b'0' + last;
        value /= 10;
    }
}

/// What is wrong with a time RFC 3339 cannot write, for a person.
#[must_use]
pub fn out_of_range(ts: SystemTime) -> String {
    format!("`ts` {ts:?} is outside the years 1970 to 9999, which an RFC 3339 UTC time can write")
}

/// Writes `ts` (for serde's `with`).
///
/// # Errors
///
/// A time RFC 3339 cannot write (before 1970, from the year 10000).
pub fn serialize<S: Serializer>(ts: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = micros(*ts).ok_or_else(|| S::Error::custom(out_of_range(*ts)))?;
    // Only ASCII digits and punctuation are written.
    serializer.serialize_str(std::str::from_utf8(&text).map_err(S::Error::custom)?)
}

/// Reads a time (for serde's `with`).
///
/// # Errors
///
/// Text that is not an RFC 3339 time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    if let Some(ts) = canonical(&text) {
        return Ok(ts);
    }
    humantime::parse_rfc3339_weak(&text).map_err(|e| {
        D::Error::custom(format_args!(
            "`ts` {text:?} is not an RFC 3339 UTC time: {e}"
        ))
    })
}

/// An optional time, for serde's `with`: `None` is no field (with
/// `skip_serializing_if`) or `null`.
pub mod option {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // serde's signature
    /// Writes `ts`, `None` as `null`.
    ///
    /// # Errors
    ///
    /// A time RFC 3339 cannot write.
    pub fn serialize<S: Serializer>(
        ts: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => super::serialize(ts, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a time or `null`.
    ///
    /// # Errors
    ///
    /// Text that is not an RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super")] SystemTime);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(ts)| ts))
    }
}

/// `text` read as an RFC 3339 UTC time, as `humantime` reads it; `None`
/// when it is not one.
#[must_use]
pub fn parse(text: &str) -> Option<SystemTime> {
    canonical(text).or_else(|| humantime::parse_rfc3339_weak(text).ok())
}

/// `text` read when it is exactly what [`micros`] writes, a valid date and
/// time; `None` for anything else, which `humantime` then reads (or
/// rejects) as it always has.
fn canonical(text: &str) -> Option<SystemTime> {
    let b: &[u8; LEN] = text.as_bytes().try_into().ok()?;
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ];
    if separators.iter().any(|&(at, byte)| b[at] != byte) {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0_u64, |n, &digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + u64::from(digit - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let valid = year >= 1970
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let secs = days(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    // Six digits: below a million.
    #[allow(clippy::cast_possible_truncation)]
    let nanos = number(20, 26)? as u32 * 1000;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date from 1970 on: the inverse of [`civil`]
/// (Howard Hinnant's `days_from_civil`).
fn days(year: u64, month: u64, day: u64) -> u64 {
    let year = year - u64::from(month <= 2);
    let era = year / 400;
    let year_of_era = year % 400;
    let march_month = (month + 9) % 12;
    let day_of_year = (153 * march_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(ts: SystemTime) -> String {
        String::from_utf8(micros(ts).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn writes_what_humantime_writes_across_the_whole_range() {
        let mut rng = fastrand::Rng::with_seed(3339);
        let edges = [
            0,
            86_399,
            951_782_400,   // 2000-02-29, a leap day of a century divisible by 400
            4_107_542_400, // 2100-03-01, after the non-leap 2100-02-28
            YEAR_10000 - 1,
        ];
        let random: Vec<u64> = (0..100_000).map(|_| rng.u64(0..YEAR_10000)).collect();
        for secs in edges.into_iter().chain(random) {
            let ts = UNIX_EPOCH + Duration::new(secs, rng.u32(0..1_000_000_000));
            assert_eq!(
                written(ts),
                humantime::format_rfc3339_micros(ts).to_string(),
                "{secs} s"
            );
        }
    }

    #[test]
    fn reads_back_what_it_writes_as_humantime_reads_it() {
        let mut rng = fastrand::Rng::with_seed(3340);
        for _ in 0..100_000 {
            let ts = UNIX_EPOCH + Duration::from_micros(rng.u64(0..YEAR_10000 * 1_000_000));
            let text = written(ts);
            assert_eq!(canonical(&text), Some(ts), "{text}");
            assert_eq!(
                humantime::parse_rfc3339_weak(&text).ok(),
                Some(ts),
                "{text}"
            );
        }
    }

    #[test]
    fn reads_nothing_humantime_would_read_otherwise() {
        // Every digit of a valid time changed, and every separator: the
        // canonical reader either agrees with humantime or leaves the text
        // to it (month 13, February 30, hour 24, a letter for a digit...).
        let mut rng = fastrand::Rng::with_seed(3341);
        let mut read = 0;
        for _ in 0..20_000 {
            let ts = UNIX_EPOCH + Duration::from_micros(rng.u64(0..YEAR_10000 * 1_000_000));
            let mut text = written(ts).into_bytes();
            let at = rng.usize(0..LEN);
            text[at] = *b"0123456789-T:.Z ".get(rng.usize(0..16)).unwrap();
            let text = String::from_utf8(text).unwrap();
            if let Some(parsed) = canonical(&text) {
                read += 1;
                assert_eq!(
                    humantime::parse_rfc3339_weak(&text).ok(),
                    Some(parsed),
                    "{text}"
                );
            }
        }
        assert!(read > 1000, "the mutations left only {read} valid times");
        for text in [
            "2023-02-29T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-04-31T00:00:00.000000Z",
        ] {
            assert_eq!(canonical(text), None, "{text}");
            assert!(humantime::parse_rfc3339_weak(text).is_err(), "{text}");
        }
        assert!(canonical("2024-02-29T23:59:59.999999Z").is_some());
    }

    #[test]
    fn times_rfc3339_cannot_write_are_none_not_a_panic() {
        assert!(micros(UNIX_EPOCH - Duration::from_secs(1)).is_none());
        assert!(micros(UNIX_EPOCH + Duration::from_secs(YEAR_10000)).is_none());
        let error = serde_json::to_string(&Stamp(UNIX_EPOCH - Duration::from_secs(1)))
            .unwrap_err()
            .to_string();
        assert!(error.contains("outside the years 1970 to 9999"), "{error}");
    }

    #[derive(serde::Serialize)]
    struct Stamp(#[serde(with = "super")] SystemTime);
}
