//! Building the session's few messages without `core::fmt`: the browser client compiles this
//! core to WebAssembly, where `format!`, integer `Display` and `Duration`'s `Debug` cost several
//! kilobytes of the download. The output is exactly that of the `fmt` implementations they
//! replace (the tests compare them). The browser driver builds its own messages with these
//! too (one copy of the code in the download): public for it, not a stable API.

use std::time::Duration;

/// The decimal digits, as strings (`String::push` of a `char` costs its UTF-8 encoder).
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Appends the decimal digits of `n` (as `n.to_string()`).
pub fn push_u64(out: &mut String, n: u64) {
    if n >= 10 {
        push_u64(out, n / 10);
    }
    out.push_str(DIGITS[(n % 10) as usize]);
}

/// The decimal text of `n` (as `n.to_string()`).
pub(crate) fn decimal(n: u64) -> String {
    let mut s = String::new();
    push_u64(&mut s, n);
    s
}

/// Appends `d` as `format!("{d:?}")` writes it (`1.5s`, `250ms`, `2.001µs`, `7ns`).
pub(crate) fn push_duration_debug(out: &mut String, d: Duration) {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    // (integer part, fraction, divisor of the fraction's first digit, unit), as core's
    // `fmt_decimal`; without a precision every digit of the fraction is written, trailing zeros
    // excepted, so no rounding ever happens.
    let (int, mut frac, mut div, unit) = if secs > 0 {
        (secs, nanos, 100_000_000, "s")
    } else if nanos >= 1_000_000 {
        (
            u64::from(nanos / 1_000_000),
            nanos % 1_000_000,
            100_000,
            "ms",
        )
    } else if nanos >= 1_000 {
        (u64::from(nanos / 1_000), nanos % 1_000, 100, "µs")
    } else {
        (u64::from(nanos), 0, 1, "ns")
    };
    push_u64(out, int);
    if frac > 0 {
        out.push('.');
        while frac > 0 && div > 0 {
            out.push_str(DIGITS[(frac / div % 10) as usize]);
            frac %= div;
            div /= 10;
        }
    }
    out.push_str(unit);
}

/// Appends `s` quoted as `{:?}` writes it: quotes, backslashes and control characters escaped
/// (non-printable Unicode other than control characters is written as it is, where `Debug`
/// would escape it).
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                out.push_str("\\u{");
                let n = u32::from(c);
                for shift in (0..8).rev().map(|i| i * 4) {
                    if n >> shift != 0 || shift == 0 {
                        let d = (n >> shift) & 0xf;
                        out.push_str(HEX[d as usize]);
                    }
                }
                out.push('}');
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Hexadecimal digits, lower case, as `Debug` writes escapes.
const HEX: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
];

/// Whole milliseconds of `d` (as `d.as_millis()`, without 128-bit arithmetic; saturating).
pub fn whole_ms(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// Concatenates `parts`: numbers as their `Display`, durations as their `Debug` text.
pub fn message(parts: &[Part<'_>]) -> String {
    let mut s = String::new();
    for part in parts {
        match part {
            Part::Str(t) => s.push_str(t),
            Part::Number(n) => push_u64(&mut s, *n),
            Part::Duration(d) => push_duration_debug(&mut s, *d),
        }
    }
    s
}

/// A piece of a [`message`].
pub enum Part<'a> {
    /// Text as it is.
    Str(&'a str),
    /// A number, as `Display` writes it.
    Number(u64),
    /// A duration, as `Debug` writes it.
    Duration(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_milliseconds() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999_999),
            Duration::from_millis(1_500),
        ] {
            assert_eq!(u128::from(whole_ms(d)), d.as_millis());
        }
        assert_eq!(whole_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn integers_as_display() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }

    #[test]
    fn durations_as_debug() {
        let cases = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999),
            Duration::from_nanos(1_000),
            Duration::from_nanos(2_001),
            Duration::from_nanos(999_999),
            Duration::from_millis(1),
            Duration::from_nanos(1_500_000),
            Duration::from_nanos(1_000_001),
            Duration::from_millis(250),
            Duration::from_millis(999),
            Duration::from_secs(1),
            Duration::from_millis(1_500),
            Duration::from_millis(10_000),
            Duration::from_nanos(1_500_000_001),
            Duration::from_nanos(3_000_000_100),
            Duration::from_secs(60),
            Duration::new(u64::MAX, 999_999_999),
        ];
        for d in cases {
            let mut s = String::new();
            push_duration_debug(&mut s, d);
            assert_eq!(s, format!("{d:?}"));
        }
    }

    #[test]
    fn messages_join_their_parts() {
        let d = Duration::from_millis(1_250);
        assert_eq!(
            message(&[
                Part::Str("a ("),
                Part::Duration(d),
                Part::Str(") "),
                Part::Number(42)
            ]),
            format!("a ({d:?}) 42")
        );
    }
}
