//! One id per logical call: [`CallId`], and [`call_id`], which returns the
//! id of the call the current code runs in.
//!
//! A call of an annotated function may send its upload several times: a
//! retry after an attempt that timed out, the fallback after the async path
//! gave up. When the first send landed (the server stored the body, the
//! answer was late or lost), the next one stores it again, unless the
//! backend can tell it is the same upload. The id is what tells it: the
//! same for every attempt and the fallback of one call, a new one for the
//! next call. Pass it as the request's idempotency key.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

/// The id of one logical call of an annotated function: the same for each
/// of its async attempts, its fallback and its sync path, a new one for
/// every call. Written as 32 lowercase hex digits (128 bits).
///
/// ```
/// use async_upload::CallId;
///
/// let id: CallId = "0123456789abcdef0123456789abcdef".parse().unwrap();
/// assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
/// assert!("0123".parse::<CallId>().is_err());
/// ```
///
/// # How it is drawn
///
/// Each thread keeps two 64-bit generators (wyrand, as `fastrand` uses),
/// each seeded from the operating system's randomness (through the keys of
/// std's `RandomState`); an id is one draw of each, so drawing one costs a
/// few nanoseconds and allocates nothing. Within a thread no id repeats;
/// between threads and processes two ids collide with a probability of
/// about 2⁻¹²⁸ per pair. The generator is not cryptographic: an id is
/// unique, not secret, so do not use it as a credential.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(u128);

impl CallId {
    /// A fresh id from this thread's generators.
    pub(crate) fn draw() -> CallId {
        GENERATORS.with(|generators| {
            let mut generators = generators.borrow_mut();
            let high = generators.0.u64(..);
            let low = generators.1.u64(..);
            CallId(u128::from(high) << 64 | u128::from(low))
        })
    }

    /// The id as a number.
    #[must_use]
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The id with this value (for tests and for ids read back from a log).
    #[must_use]
    pub const fn from_u128(value: u128) -> CallId {
        CallId(value)
    }

    /// The 32 lowercase hex digits, without allocating.
    #[must_use]
    pub fn to_hex(self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0; 32];
        for (i, digit) in out.iter_mut().enumerate() {
            let shift = 124 - 4 * i;
            *digit = DIGITS[usize::try_from((self.0 >> shift) & 0xF).unwrap_or(0)];
        }
        out
    }
}

thread_local! {
    static GENERATORS: RefCell<(fastrand::Rng, fastrand::Rng)> = RefCell::new((
        fastrand::Rng::with_seed(os_seed()),
        fastrand::Rng::with_seed(os_seed()),
    ));
    /// The id of the call whose code runs on this thread now.
    static CURRENT: Cell<Option<CallId>> = const { Cell::new(None) };
}

/// 64 bits derived from the OS-random keys of a fresh `RandomState` (each
/// one on a thread has keys of its own).
fn os_seed() -> u64 {
    RandomState::new().hash_one(0_u8)
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        // ASCII digits only: always UTF-8.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallId({self})")
    }
}

/// Why a text is not a [`CallId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseCallIdError {
    text: String,
}

impl fmt::Display for ParseCallIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.text.chars().take(40).collect();
        write!(
            f,
            "{shown:?} is not a call id: expected 32 lowercase hex digits (0-9, a-f)"
        )
    }
}

impl std::error::Error for ParseCallIdError {}

impl FromStr for CallId {
    type Err = ParseCallIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || ParseCallIdError { text: text.into() };
        let bytes: &[u8; 32] = text.as_bytes().try_into().map_err(|_| refuse())?;
        // A report reads one per log line: two 64-bit halves from a table,
        // any byte that is not a lowercase hex digit flagged on the way.
        let half = |digits: &[u8]| {
            digits.iter().fold((0_u64, 0_u8), |(value, bad), &byte| {
                let nibble = HEX[usize::from(byte)];
                (value << 4 | u64::from(nibble & 0xF), bad | nibble)
            })
        };
        let (high, bad_high) = half(&bytes[..16]);
        let (low, bad_low) = half(&bytes[16..]);
        if (bad_high | bad_low) & NOT_HEX != 0 {
            return Err(refuse());
        }
        Ok(CallId(u128::from(high) << 64 | u128::from(low)))
    }
}

/// Flags a byte that is not a lowercase hex digit in a [`HEX`] entry.
const NOT_HEX: u8 = 0x80;

/// Each byte's value as a lowercase hex digit, or [`NOT_HEX`].
const HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        let byte = if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        };
        table[byte as usize] = digit;
        digit += 1;
    }
    table
};

#[cfg(feature = "serde")]
impl serde::Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hex = self.to_hex();
        serializer.serialize_str(std::str::from_utf8(&hex).map_err(serde::ser::Error::custom)?)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The id of the call the calling code runs in: inside an annotated
/// function's body (every attempt), its fallback and its sync path, the
/// same [`CallId`] for the whole call; `None` outside any call.
///
/// Pass it to the backend as the upload's idempotency key, so that a retry
/// or fallback after an attempt that did land stores nothing twice:
///
/// ```
/// use async_upload::async_upload;
///
/// fn put_blocking(name: String) -> std::io::Result<String> {
///     Ok(format!("Idempotency-Key: {}", async_upload::call_id().unwrap()))
/// }
///
/// #[async_upload(fallback = put_blocking)]
/// async fn put(name: String) -> std::io::Result<String> {
///     Ok(format!("Idempotency-Key: {}", async_upload::call_id().unwrap()))
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert!(async_upload::call_id().is_none()); // not in a call
/// let header = put("file-1".into()).await.unwrap();
/// assert_eq!(header.len(), "Idempotency-Key: ".len() + 32);
/// # }
/// ```
///
/// The id is set on the thread while an attempt of the body is polled and
/// while the fallback or sync path runs (also on Tokio's blocking pool). A task the body
/// spawns is not part of the call: read the id in the body and move it in.
#[must_use]
pub fn call_id() -> Option<CallId> {
    CURRENT.with(Cell::get)
}

/// Runs `f` with `id` as the current call's id, restoring the previous one
/// afterwards (also when `f` panics).
pub(crate) fn with<R>(id: CallId, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<CallId>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace(Some(id))));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_32_lowercase_hex_digits_and_read_back() {
        for _ in 0..1000 {
            let id = CallId::draw();
            let text = id.to_string();
            assert_eq!(text.len(), 32);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!(text.parse::<CallId>(), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), id);
        }
        assert_eq!(CallId::from_u128(0).to_string(), "0".repeat(32));
        assert_eq!(CallId::from_u128(u128::MAX).to_string(), "f".repeat(32));
    }

    #[test]
    fn text_that_is_not_an_id_is_refused_with_what_is_accepted() {
        for bad in [
            "",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "+123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
        ] {
            let error = bad.parse::<CallId>().unwrap_err();
            assert!(
                error.to_string().contains("32 lowercase hex digits"),
                "{error}"
            );
        }
    }

    #[test]
    fn ids_do_not_repeat_within_or_across_threads() {
        let per_thread = 50_000;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread).map(|_| CallId::draw()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(seen.insert(id), "{id} drawn twice");
            }
        }
    }

    #[test]
    fn the_current_id_is_set_inside_and_restored_after_also_on_panic() {
        assert_eq!(call_id(), None);
        let (outer, inner) = (CallId::from_u128(1), CallId::from_u128(2));
        with(outer, || {
            assert_eq!(call_id(), Some(outer));
            let caught = std::panic::catch_unwind(|| with(inner, || panic!("in the call")));
            assert!(caught.is_err());
            assert_eq!(call_id(), Some(outer));
        });
        assert_eq!(call_id(), None);
    }
}
