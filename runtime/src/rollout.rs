//! Consistent-hash bucketing and the enrolment decision.
//!
//! A key is enrolled in the async path when its bucket is below the rollout
//! threshold:
//!
//! ```text
//! bytes    = salt ++ ":" ++ key      (an empty salt hashes the key alone)
//! bucket   = u128::from_be_bytes(md5(bytes)) % 10_000          → 0..=9999
//! enrolled = bucket < round(rollout_percent * 100)
//! ```
//!
//! Any service in any language reproduces the decision; in Python:
//!
//! ```text
//! int(hashlib.md5(b"upload:file-1").hexdigest(), 16) % 10000   # 1804
//! ```
//!
//! Because the bucket of a key never changes and the threshold only moves
//! up as a rollout advances, raising the percentage never drops a key that
//! was already enrolled.

use core::fmt::{self, Write as _};

use md5::{Digest, Md5};

/// Number of buckets keys are spread over: one bucket is 0.01 % of traffic.
pub const BUCKETS: u16 = 10_000;

/// The bucket (`0..=9999`) of `key` under `salt`.
///
/// The salt is joined to the key with `:`; an empty salt hashes the key
/// alone. Sites use their name as the default salt, so two sites roll out
/// to independent sets of keys.
///
/// ```
/// use async_upload::rollout::bucket;
///
/// // int(hashlib.md5(b"upload:file-1").hexdigest(), 16) % 10000 == 1804
/// assert_eq!(bucket("upload", b"file-1"), 1804);
/// // An empty salt hashes the key alone.
/// assert_eq!(bucket("", b"42"), 5174);
/// ```
#[must_use]
pub fn bucket(salt: &str, key: &[u8]) -> u16 {
    let mut md5 = Md5::new();
    if !salt.is_empty() {
        md5.update(salt.as_bytes());
        md5.update(b":");
    }
    md5.update(key);
    let digest: [u8; 16] = md5.finalize().into();
    // The remainder is below 10_000, so the narrowing cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let bucket = (u128::from_be_bytes(digest) % u128::from(BUCKETS)) as u16;
    bucket
}

/// A fresh, uniformly random bucket, for calls that carry no key.
///
/// Such calls are not sticky: the same request may take a different path
/// next time.
#[must_use]
pub fn random_bucket() -> u16 {
    fastrand::u16(0..BUCKETS)
}

/// A rollout percentage, stored as the bucket threshold `round(percent * 100)`.
///
/// Percentages carry at most two decimals: `0.5` (50 buckets) is valid,
/// `0.001` is not, because it would silently round to a different share of
/// traffic than the operator asked for.
///
/// ```
/// use async_upload::rollout::Rollout;
///
/// let half = Rollout::from_percent(0.5)?;
/// assert_eq!(half.threshold(), 50);
/// assert!(half.enrolls(49));
/// assert!(!half.enrolls(50));
/// assert!(Rollout::from_percent(150.0).is_err());
/// # Ok::<(), async_upload::rollout::RolloutError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rollout(u16);

impl Rollout {
    /// Nobody is enrolled.
    pub const NONE: Rollout = Rollout(0);
    /// Everybody is enrolled.
    pub const ALL: Rollout = Rollout(BUCKETS);

    /// The rollout covering `percent` of keys (`0..=100`, at most two decimals).
    ///
    /// # Errors
    ///
    /// A value that is not finite, outside `0..=100`, or finer than 0.01 %.
    pub fn from_percent(percent: f64) -> Result<Self, RolloutError> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return Err(RolloutError { percent });
        }
        let scaled = percent * 100.0;
        let rounded = scaled.round();
        // Two decimals survive the float round trip within 1e-6 of a whole
        // bucket; anything further away asked for a finer share.
        if (scaled - rounded).abs() > 1e-6 {
            return Err(RolloutError { percent });
        }
        // `rounded` is in 0.0..=10_000.0 after the range check above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let threshold = rounded as u16;
        Ok(Rollout(threshold))
    }

    /// The rollout whose threshold is `buckets` (`0..=10_000`), clamped.
    #[must_use]
    pub const fn from_buckets(buckets: u16) -> Self {
        if buckets > BUCKETS {
            Rollout(BUCKETS)
        } else {
            Rollout(buckets)
        }
    }

    /// The percentage of keys enrolled.
    #[must_use]
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// The bucket threshold: buckets strictly below it are enrolled.
    #[must_use]
    pub const fn threshold(self) -> u16 {
        self.0
    }

    /// Whether a key in `bucket` is enrolled.
    #[must_use]
    pub const fn enrolls(self, bucket: u16) -> bool {
        bucket < self.0
    }
}

impl fmt::Display for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

/// A percentage that is not a valid rollout.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RolloutError {
    /// The rejected value.
    pub percent: f64,
}

impl fmt::Display for RolloutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rollout {} is not accepted: expected a percentage from 0 to 100 with at most two decimals (e.g. 0.5, 10, 100)",
            self.percent
        )
    }
}

impl std::error::Error for RolloutError {}

/// A value that can serve as a rollout key.
///
/// Keys hash as UTF-8 text so other languages reproduce the bucket: strings
/// as they are, integers in decimal, UUIDs (feature `uuid`) as lowercase
/// hyphenated text, bytes as they are. Implementations hand the bytes to
/// `f` without allocating.
///
/// ```
/// use async_upload::rollout::{bucket, RolloutKey};
///
/// let by_int = 42_u64.with_key_bytes(|b| bucket("", b));
/// let by_text = "42".with_key_bytes(|b| bucket("", b));
/// assert_eq!(by_int, by_text);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a rollout key",
    label = "not a rollout key",
    note = "a key hashes as text: use a `&str`, `String`, bytes, an integer or a UUID (feature `uuid`) taken from the arguments, or implement `async_upload::rollout::RolloutKey`"
)]
pub trait RolloutKey {
    /// Calls `f` with the bytes this key hashes as.
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
}

impl RolloutKey for str {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }
}

impl RolloutKey for String {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }
}

impl RolloutKey for [u8] {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl<const N: usize> RolloutKey for [u8; N] {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl RolloutKey for Vec<u8> {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

impl<T: RolloutKey + ?Sized> RolloutKey for &T {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_key_bytes(f)
    }
}

impl<T: RolloutKey + ?Sized> RolloutKey for Box<T> {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_key_bytes(f)
    }
}

impl<T: RolloutKey + ?Sized> RolloutKey for std::sync::Arc<T> {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_key_bytes(f)
    }
}

impl RolloutKey for std::borrow::Cow<'_, str> {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.as_bytes())
    }
}

/// Formats a value into a stack buffer, so integer keys hash without a heap
/// allocation. 40 bytes hold any `i128` in decimal and a hyphenated UUID.
struct StackText {
    buf: [u8; 40],
    len: usize,
}

impl StackText {
    fn format(value: impl fmt::Display) -> Self {
        let mut text = StackText {
            buf: [0; 40],
            len: 0,
        };
        // Only fails if the buffer is too small, which the sizes above rule out.
        let _ = write!(text, "{value}");
        text
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

macro_rules! integer_keys {
    ($($ty:ty),*) => {$(
        impl RolloutKey for $ty {
            fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(StackText::format(self).bytes())
            }
        }
    )*};
}

integer_keys!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

#[cfg(feature = "uuid")]
impl RolloutKey for uuid::Uuid {
    fn with_key_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut buf = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        f(self.hyphenated().encode_lower(&mut buf).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python's hashlib:
    //   python3 -c "import hashlib; print(int(hashlib.md5(b'upload:file-1').hexdigest(), 16) % 10000)"
    // with b = (salt + ':' + key).encode() when the salt is non-empty, key.encode() otherwise.
    const VECTORS: &[(&str, &str, u16)] = &[
        ("upload", "file-1", 1804),
        ("upload", "file-2", 3544),
        ("", "42", 5174),
        ("site", "key", 9996),
        ("tenant-a", "9f1c2e1a-0b5e-4c9a-8d0e-3b8f5e1d2c4a", 2609),
        ("upload", "ünïcödé", 1722),
        ("s", "", 3944),
        ("upload", "18446744073709551615", 6422),
        ("upload", "-17", 7542),
    ];

    #[test]
    fn matches_python_hashlib_vectors() {
        for &(salt, key, expected) in VECTORS {
            assert_eq!(bucket(salt, key.as_bytes()), expected, "{salt:?}:{key:?}");
        }
    }

    #[test]
    fn integers_hash_as_decimal_text() {
        assert_eq!(
            u64::MAX.with_key_bytes(|b| bucket("upload", b)),
            bucket("upload", b"18446744073709551615")
        );
        assert_eq!((-17_i32).with_key_bytes(|b| bucket("upload", b)), 7542);
        assert_eq!(i128::MIN.with_key_bytes(<[u8]>::len), 40);
    }

    #[cfg(feature = "uuid")]
    #[test]
    fn uuids_hash_as_lowercase_hyphenated_text() {
        let id = uuid::Uuid::parse_str("9F1C2E1A-0B5E-4C9A-8D0E-3B8F5E1D2C4A").unwrap();
        assert_eq!(id.with_key_bytes(|b| bucket("tenant-a", b)), 2609);
    }

    #[test]
    fn percent_parsing_keeps_two_decimals() {
        assert_eq!(Rollout::from_percent(0.5).unwrap().threshold(), 50);
        assert_eq!(Rollout::from_percent(12.34).unwrap().threshold(), 1234);
        assert_eq!(Rollout::from_percent(100.0).unwrap(), Rollout::ALL);
        assert_eq!(Rollout::from_percent(0.0).unwrap(), Rollout::NONE);
        for bad in [0.001, -1.0, 100.01, 150.0, f64::NAN, f64::INFINITY] {
            assert!(Rollout::from_percent(bad).is_err(), "{bad}");
        }
    }
}
