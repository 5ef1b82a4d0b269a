//! The driver's messages, built with `push_str` instead of `format!`: `core::fmt` (integer and
//! `Duration` formatting, `Debug` escaping, the `Display` of every error variant) would be
//! several kilobytes of the download. The texts are those of the `fmt` versions.

use std::time::Duration;

use moleculer_ws_client::Error;

/// Whole milliseconds of `d` (as `d.as_millis()`, without 128-bit arithmetic; saturating).
pub(crate) fn whole_ms(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

// The session core's writers: one copy of them in the download.
pub(crate) use moleculer_ws_client::session::text::{message, push_u64, Part};

/// Appends `s` quoted as `{:?}` writes it: quotes, backslashes and control characters escaped.
fn push_quoted(out: &mut String, s: &str) {
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
                        out.push(char::from_digit(d, 16).unwrap_or('0'));
                    }
                }
                out.push('}');
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The error's message: the text of its `Display`, for every variant the session core reports
/// (quoting in `ConnectionClosed` escapes ASCII control characters only, where `Debug` would
/// also escape non-printable Unicode; the browser session never stops with that variant).
pub(crate) fn error_text(e: &Error) -> String {
    let mut s = String::new();
    let (head, tail) = match e {
        Error::InvalidUrl(m) => ("invalid URL: ", m.as_str()),
        Error::InvalidConfig(m) => ("invalid configuration: ", m.as_str()),
        Error::Transport(m) => ("transport error: ", m.as_str()),
        Error::Proxy { message, .. } => ("proxy: ", message.as_str()),
        Error::NoRuntime(m) => ("no async runtime: ", m.as_str()),
        Error::Decode(m) => ("could not decode: ", m.as_str()),
        Error::Request(m) => ("request failed: ", m.as_str()),
        Error::ConnectTimeout => ("connect timed out", ""),
        Error::HeartbeatLost => ("heartbeat lost", ""),
        Error::Disconnected => ("disconnected", ""),
        Error::Timeout => ("timed out", ""),
        Error::Rejected { status } => {
            s.push_str("the gateway refused the WebSocket upgrade with HTTP ");
            push_u64(&mut s, u64::from(*status));
            return s;
        }
        Error::UpgradeStatus { status } => {
            s.push_str("the WebSocket upgrade was answered with HTTP ");
            push_u64(&mut s, u64::from(*status));
            return s;
        }
        Error::GaveUp { attempts } => {
            s.push_str("gave up after ");
            push_u64(&mut s, u64::from(*attempts));
            s.push_str(" failed reconnect attempts");
            return s;
        }
        Error::ConnectionClosed { code, reason } => {
            s.push_str("connection closed (code ");
            match code {
                Some(c) => {
                    s.push_str("Some(");
                    push_u64(&mut s, u64::from(*c));
                    s.push(')');
                }
                None => s.push_str("None"),
            }
            s.push_str(", reason ");
            push_quoted(&mut s, reason);
            s.push(')');
            return s;
        }
        Error::Gateway(m) => {
            s.push_str(if m.name.is_empty() { "Error" } else { &m.name });
            s.push_str(" (HTTP ");
            push_u64(&mut s, u64::from(m.status));
            s.push_str("): ");
            s.push_str(&m.message);
            return s;
        }
        _ => ("error", ""),
    };
    s.push_str(head);
    s.push_str(tail);
    s
}
