//! Parses the attribute's arguments (`retries = 2, fallback = upload_blocking, ...`)
//! into [`Args`], keeping each value's syntax so later errors point at it.
//!
//! Only the syntax is checked here (a known key, given once, with a value of
//! the right kind); ranges and the fit with the function are `valid`'s job.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, ExprPath, Ident, Lit, LitStr, Path, Result, Token};

/// Every key the attribute accepts, in the order the README lists them.
pub(crate) const KEYS: &[&str] = &[
    "fallback",
    "retries",
    "timeout",
    "backoff",
    "key",
    "size",
    "name",
    "salt",
    "classify",
    "probe",
    "probe_timeout",
    "crate",
];

/// The parsed arguments; `None` for a key that was not written.
#[derive(Default)]
pub(crate) struct Args {
    pub fallback: Option<ExprPath>,
    pub retries: Option<Retries>,
    pub timeout: Option<Seconds>,
    pub backoff: Option<Seconds>,
    pub key: Option<Expr>,
    pub size: Option<Expr>,
    pub name: Option<LitStr>,
    pub salt: Option<LitStr>,
    pub classify: Option<ExprPath>,
    pub probe: Option<ExprPath>,
    pub probe_timeout: Option<Seconds>,
    pub krate: Option<Path>,
}

/// `retries = N`, not yet range-checked.
pub(crate) struct Retries {
    pub value: u64,
    pub span: Span,
}

/// A duration written in seconds (`30`, `0.25`), not yet range-checked.
pub(crate) struct Seconds {
    /// Whole nanoseconds, rounded; `u128` so that overflow is reported by
    /// `valid` with the literal instead of wrapping here.
    pub nanos: u128,
    pub span: Span,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            // `parse_any` also takes `crate`, which is a keyword.
            let key = input.call(Ident::parse_any).map_err(|e| {
                Error::new(
                    e.span(),
                    format!("expected `key = value`, one of {}", expected_keys()),
                )
            })?;
            let name = key.unraw().to_string();
            if !KEYS.contains(&name.as_str()) {
                return Err(unknown_key(&key, &name));
            }
            if !input.peek(Token![=]) {
                return Err(Error::new(
                    key.span(),
                    format!(
                        "expected `=` after `{name}`: write `{name} = {}`",
                        example(&name)
                    ),
                ));
            }
            input.parse::<Token![=]>()?;
            match name.as_str() {
                "fallback" => set(&mut args.fallback, &key, parse_fallback(input)?)?,
                "retries" => set(&mut args.retries, &key, parse_retries(input)?)?,
                "timeout" => set(&mut args.timeout, &key, parse_seconds(input, "timeout")?)?,
                "backoff" => set(&mut args.backoff, &key, parse_seconds(input, "backoff")?)?,
                "key" => set(&mut args.key, &key, input.parse()?)?,
                "size" => set(&mut args.size, &key, input.parse()?)?,
                "name" => set(&mut args.name, &key, parse_str(input, "name")?)?,
                "salt" => set(&mut args.salt, &key, parse_str(input, "salt")?)?,
                "classify" => set(&mut args.classify, &key, parse_classify(input)?)?,
                "probe" => set(&mut args.probe, &key, parse_probe(input)?)?,
                "probe_timeout" => set(
                    &mut args.probe_timeout,
                    &key,
                    parse_seconds(input, "probe_timeout")?,
                )?,
                "crate" => set(&mut args.krate, &key, parse_crate(input)?)?,
                _ => unreachable!("every entry of KEYS has an arm"),
            }
            if input.is_empty() {
                break;
            }
            if !input.peek(Token![,]) {
                return Err(input.error(format!(
                    "expected `,` after the value of `{name}`; the value ends here"
                )));
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// Stores a value, refusing a key that was already given (the error points
/// at the second occurrence, the one to delete).
fn set<T>(slot: &mut Option<T>, key: &Ident, value: T) -> Result<()> {
    if slot.is_some() {
        return Err(Error::new(
            key.span(),
            format!("`{}` is given twice; keep one of them", key.unraw()),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_fallback(input: ParseStream) -> Result<ExprPath> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(Error::new(
            lit.span(),
            format!(
                "`fallback` takes a path to the sync function, not a string: write `fallback = {}`",
                lit.value()
            ),
        ));
    }
    input.parse().map_err(|e| {
        Error::new(
            e.span(),
            "expected a path to the sync function, e.g. `fallback = upload_blocking` or `fallback = Self::upload_blocking`",
        )
    })
}

fn parse_probe(input: ParseStream) -> Result<ExprPath> {
    const WANT: &str = "a path to an `async fn() -> Result<(), E>` the circuit breaker runs \
        in the background while the site is open, e.g. `probe = bucket_reachable`";
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(Error::new(
            lit.span(),
            format!(
                "`probe` takes a path, not a string: write `probe = {}`",
                lit.value()
            ),
        ));
    }
    input
        .parse()
        .map_err(|e| Error::new(e.span(), format!("expected {WANT}")))
}

fn parse_classify(input: ParseStream) -> Result<ExprPath> {
    input.parse().map_err(|e| {
        Error::new(
            e.span(),
            "expected a path to a `fn(&E) -> async_upload::ErrorClass`, e.g. `classify = classify_upload_error`",
        )
    })
}

fn parse_retries(input: ParseStream) -> Result<Retries> {
    const WANT: &str = "an integer from 0 to 10";
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let lit: Lit = input.parse()?;
        return Err(Error::new_spanned(
            quote::quote!(#minus #lit),
            format!("`retries` cannot be negative: write {WANT}, e.g. `retries = 0` for a single attempt"),
        ));
    }
    let lit: Lit = input
        .parse()
        .map_err(|e| Error::new(e.span(), format!("expected {WANT}, e.g. `retries = 2`")))?;
    match &lit {
        Lit::Int(int) => Ok(Retries {
            value: int
                .base10_parse()
                .map_err(|_| Error::new(int.span(), format!("`retries` takes {WANT}")))?,
            span: int.span(),
        }),
        Lit::Str(s) => Err(Error::new(
            s.span(),
            format!(
                "`retries` takes {WANT}, not a string: write `retries = {}`",
                s.value().trim()
            ),
        )),
        other => Err(Error::new(
            other.span(),
            format!("`retries` takes {WANT}, e.g. `retries = 2`"),
        )),
    }
}

fn parse_seconds(input: ParseStream, key: &str) -> Result<Seconds> {
    let want = format!("seconds as a number, e.g. `{key} = 30` or `{key} = 0.25`");
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let lit: Lit = input.parse()?;
        return Err(Error::new_spanned(
            quote::quote!(#minus #lit),
            format!("`{key}` cannot be negative: write {want}"),
        ));
    }
    let lit: Lit = input
        .parse()
        .map_err(|e| Error::new(e.span(), format!("`{key}` takes {want}")))?;
    let digits = match &lit {
        Lit::Int(int) => int.base10_digits().to_owned(),
        Lit::Float(float) => float.base10_digits().to_owned(),
        Lit::Str(s) => {
            let text = s.value();
            let number = text.trim().trim_end_matches('s').trim();
            let hint = if number.parse::<f64>().is_ok() {
                format!("write `{key} = {number}`")
            } else {
                format!("write {want}")
            };
            return Err(Error::new(
                s.span(),
                format!("`{key}` takes seconds as a number, not a string: {hint}"),
            ));
        }
        other => return Err(Error::new(other.span(), format!("`{key}` takes {want}"))),
    };
    let nanos = decimal_nanos(&digits)
        .ok_or_else(|| Error::new(lit.span(), format!("`{key}` takes {want}")))?;
    Ok(Seconds {
        nanos,
        span: lit.span(),
    })
}

/// Converts a decimal number of seconds to nanoseconds, exactly for plain
/// decimals (`0.1` is 100 ms, not the nearest `f64`), rounding beyond
/// nanosecond precision.
fn decimal_nanos(digits: &str) -> Option<u128> {
    if digits.contains(['e', 'E']) {
        let seconds: f64 = digits.parse().ok()?;
        let nanos = (seconds * 1e9).round();
        // Checked before the cast: the cast saturates, and the range check
        // in `valid` must see the real magnitude.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return (0.0..1e30).contains(&nanos).then_some(nanos as u128);
    }
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(1_000_000_000)?;
    let mut scale = 100_000_000;
    let mut round_up = false;
    for (i, c) in fraction.chars().enumerate() {
        let digit = u128::from(c.to_digit(10)?);
        if i < 9 {
            nanos += digit * scale;
            scale /= 10;
        } else if i == 9 {
            round_up = digit >= 5;
        }
    }
    Some(nanos + u128::from(round_up))
}

fn parse_str(input: ParseStream, key: &str) -> Result<LitStr> {
    input.parse().map_err(|e| {
        Error::new(
            e.span(),
            format!("`{key}` takes a string literal, e.g. `{key} = \"upload\"`"),
        )
    })
}

fn parse_crate(input: ParseStream) -> Result<Path> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        return Err(Error::new(
            lit.span(),
            format!(
                "`crate` takes a path, not a string: write `crate = {}`",
                lit.value()
            ),
        ));
    }
    input.call(Path::parse_mod_style).map_err(|e| {
        Error::new(
            e.span(),
            "expected the path of the async-upload crate, e.g. `crate = ::my_async_upload`",
        )
    })
}

fn unknown_key(key: &Ident, name: &str) -> Error {
    let message = match closest_key(name) {
        Some(known) => format!(
            "unknown argument `{name}`; did you mean `{known}`? (expected one of {})",
            expected_keys()
        ),
        None => format!(
            "unknown argument `{name}`; expected one of {}",
            expected_keys()
        ),
    };
    Error::new(key.span(), message)
}

/// The known key nearest to `name` by edit distance, if it is near enough
/// to be a plausible misspelling (`retry` → `retries`, `timout` → `timeout`).
pub(crate) fn closest_key(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(distance, known)| 2 * distance <= name.len().max(known.len()))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn expected_keys() -> String {
    KEYS.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn example(key: &str) -> &'static str {
    match key {
        "fallback" => "upload_blocking",
        "retries" => "2",
        "timeout" => "30",
        "backoff" => "0.1",
        "key" => "req.id",
        "size" => "req.bytes.len()",
        "name" => "\"upload\"",
        "salt" => "\"upload-v2\"",
        "classify" => "classify_upload_error",
        "probe" => "bucket_reachable",
        "probe_timeout" => "0.5",
        _ => "::async_upload",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;

    fn parse(args: &str) -> Result<Args> {
        syn::parse_str(args)
    }

    fn error(args: &str) -> String {
        match parse(args) {
            Ok(_) => panic!("`{args}` parsed but should not"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_every_key() {
        let args = parse(
            r#"fallback = Self::upload_blocking, retries = 2, timeout = 0.25, backoff = 1,
               key = req.id.as_str(), size = req.bytes.len(), name = "upload", salt = "",
               crate = ::renamed"#,
        )
        .unwrap();
        let fallback = args.fallback.unwrap();
        assert_eq!(
            fallback.to_token_stream().to_string(),
            "Self :: upload_blocking"
        );
        assert_eq!(args.retries.unwrap().value, 2);
        assert_eq!(args.timeout.unwrap().nanos, 250_000_000);
        assert_eq!(args.backoff.unwrap().nanos, 1_000_000_000);
        assert_eq!(
            args.key.unwrap().to_token_stream().to_string(),
            "req . id . as_str ()"
        );
        assert_eq!(
            args.size.unwrap().to_token_stream().to_string(),
            "req . bytes . len ()"
        );
        assert_eq!(args.name.unwrap().value(), "upload");
        assert_eq!(args.salt.unwrap().value(), "");
        assert_eq!(
            args.krate.unwrap().to_token_stream().to_string(),
            ":: renamed"
        );
    }

    #[test]
    fn empty_arguments_and_a_trailing_comma_parse() {
        let args = parse("").unwrap();
        assert!(args.fallback.is_none() && args.retries.is_none());
        let args = parse("fallback = f,").unwrap();
        assert!(args.fallback.is_some());
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(decimal_nanos("30"), Some(30_000_000_000));
        assert_eq!(decimal_nanos("0.1"), Some(100_000_000));
        assert_eq!(decimal_nanos("1.000000001"), Some(1_000_000_001));
        assert_eq!(decimal_nanos("0.0000000015"), Some(2));
        assert_eq!(decimal_nanos("0"), Some(0));
        assert_eq!(decimal_nanos("1e3"), Some(1_000_000_000_000));
        assert_eq!(decimal_nanos("2.5e-1"), Some(250_000_000));
    }

    #[test]
    fn unknown_keys_suggest_the_closest_known_key() {
        assert!(error("retry = 2").contains("did you mean `retries`?"));
        assert!(error("timout = 2").contains("did you mean `timeout`?"));
        assert!(error("max_retries = 2").contains("did you mean `retries`?"));
        assert!(error("fallbak = f").contains("did you mean `fallback`?"));
        let far = error("color = 2");
        assert!(!far.contains("did you mean"), "{far}");
        assert!(
            far.contains("expected one of `fallback`, `retries`"),
            "{far}"
        );
    }

    #[test]
    fn a_key_given_twice_is_an_error() {
        assert_eq!(
            error("retries = 1, retries = 2"),
            "`retries` is given twice; keep one of them"
        );
    }

    #[test]
    fn retries_take_a_non_negative_integer() {
        assert!(error("retries = -1").contains("cannot be negative"));
        assert!(error(r#"retries = "2""#).contains("not a string: write `retries = 2`"));
        assert!(error("retries = 1.5").contains("an integer from 0 to 10"));
        // The range is `valid`'s job: 11 parses.
        assert_eq!(parse("retries = 11").unwrap().retries.unwrap().value, 11);
    }

    #[test]
    fn seconds_take_a_non_negative_number() {
        assert!(error("timeout = -3").contains("`timeout` cannot be negative"));
        assert!(error(r#"timeout = "30s""#).contains("not a string: write `timeout = 30`"));
        assert!(error("backoff = fast").contains("`backoff` takes seconds as a number"));
        assert_eq!(parse("timeout = 0").unwrap().timeout.unwrap().nanos, 0);
    }

    #[test]
    fn values_of_the_wrong_kind_say_what_to_write() {
        assert!(
            error(r#"fallback = "upload_blocking""#).contains("write `fallback = upload_blocking`")
        );
        assert!(error("name = upload").contains("`name = \"upload\"`"));
        assert!(error(r#"crate = "renamed""#).contains("write `crate = renamed`"));
        assert!(error("retries 2").contains("expected `=` after `retries`"));
        assert!(error("retries = 2 timeout = 3").contains("expected `,`"));
    }
}
