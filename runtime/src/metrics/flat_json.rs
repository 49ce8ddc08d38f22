//! A scanner for the one JSON shape the log writes on nearly every line: a
//! flat object of strings without escapes, numbers, booleans and nulls,
//! with no whitespace.
//!
//! Parsing was two thirds of a report's CPU through `serde_json`'s derived
//! deserializer; reading upload lines through this scanner and building
//! the record by hand halved it (a report of the synthetic week: 1.53 →
//! 1.08 s of CPU). It accepts a strict subset of JSON and
//! declines (`None`) everything else: escapes, whitespace, nesting, or a
//! number outside JSON's grammar. The caller then parses the line with
//! `serde_json`, which reads all of JSON and names what is wrong, so the
//! scanner never decides what a line means on its own.

/// A value of a flat object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// A string, which had no escape.
    Str(&'a str),
    /// A number's text, valid by JSON's grammar.
    Number(&'a str),
    Bool(bool),
    Null,
}

/// Calls `field` with each key and value of the object on `line` (one
/// trailing `\n` or `\r\n` allowed), in order; `None` when the line is not
/// in the subset or `field` returns `None`.
pub(crate) fn scan<'a>(
    line: &'a str,
    mut field: impl FnMut(&'a str, Scalar<'a>) -> Option<()>,
) -> Option<()> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut rest = line.strip_prefix('{')?.strip_suffix('}')?;
    if rest.is_empty() {
        return Some(());
    }
    loop {
        let (key, after) = string(rest.strip_prefix('"')?)?;
        let (value, after) = scalar(after.strip_prefix(':')?)?;
        field(key, value)?;
        if after.is_empty() {
            return Some(());
        }
        rest = after.strip_prefix(',')?;
    }
}

/// The string whose opening quote is just before `text`, and what follows
/// its closing quote.
fn string(text: &str) -> Option<(&str, &str)> {
    // One pass to the first byte that ends the string or takes it out of
    // the subset: a quote, an escape, or a control character (which JSON
    // forbids raw). A log's strings are short: a plain loop beats memchr.
    let end = text.bytes().position(|b| SPECIAL[usize::from(b)])?;
    let (content, rest) = text.split_at(end);
    Some((content, rest.strip_prefix('"')?))
}

/// The bytes [`string`] stops at.
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        special[byte] = true;
        byte += 1;
    }
    special[b'"' as usize] = true;
    special[b'\\' as usize] = true;
    special
};

fn scalar(text: &str) -> Option<(Scalar<'_>, &str)> {
    if let Some(rest) = text.strip_prefix('"') {
        let (content, rest) = string(rest)?;
        return Some((Scalar::Str(content), rest));
    }
    for (word, value) in [
        ("true", Scalar::Bool(true)),
        ("false", Scalar::Bool(false)),
        ("null", Scalar::Null),
    ] {
        if let Some(rest) = text.strip_prefix(word) {
            return Some((value, rest));
        }
    }
    let (number, rest) = text.split_at(number_len(text.as_bytes())?);
    Some((Scalar::Number(number), rest))
}

/// The length of the JSON number `text` starts with:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number_len(text: &[u8]) -> Option<usize> {
    let digits = |from: usize| {
        text.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let mut at = usize::from(text.first() == Some(&b'-'));
    let whole = digits(at);
    if whole == 0 || (whole > 1 && text[at] == b'0') {
        return None;
    }
    at += whole;
    if text.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 {
            return None;
        }
        at += 1 + fraction;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Option<Vec<(&str, Scalar<'_>)>> {
        let mut fields = Vec::new();
        scan(line, |key, value| {
            fields.push((key, value));
            Some(())
        })?;
        Some(fields)
    }

    #[test]
    fn reads_a_flat_object_of_scalars() {
        let line = "{\"s\":\"é,:{}\",\"n\":-1.5e+3,\"z\":0,\"t\":true,\"f\":false,\"x\":null}\r\n";
        assert_eq!(
            fields(line).unwrap(),
            [
                ("s", Scalar::Str("é,:{}")),
                ("n", Scalar::Number("-1.5e+3")),
                ("z", Scalar::Number("0")),
                ("t", Scalar::Bool(true)),
                ("f", Scalar::Bool(false)),
                ("x", Scalar::Null),
            ]
        );
        assert_eq!(fields("{}\n").unwrap(), []);
    }

    #[test]
    fn declines_everything_outside_the_subset() {
        for line in [
            "",
            "{",
            "{\"a\":1",
            "{\"a\":1,}",
            "{ \"a\":1}",
            "{\"a\": 1}",
            "{\"a\":1}\n\n",
            "{\"a\":\"b\\\"c\"}",
            "{\"a\\n\":1}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":{}}",
            "{\"a\":[1]}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":+1}",
            "{\"a\":-}",
            "{\"a\":tru}",
            "{\"a\":nulls}",
            "{\"a\":1 }",
            "{\"a\"1}",
            "[1]",
        ] {
            assert_eq!(fields(line), None, "{line:?}");
        }
    }

    #[test]
    fn stops_where_the_callback_declines() {
        let mut seen = 0;
        let scanned = scan("{\"a\":1,\"b\":2,\"c\":3}", |key, _| {
            seen += 1;
            (key != "b").then_some(())
        });
        assert_eq!((scanned, seen), (None, 2));
    }
}
