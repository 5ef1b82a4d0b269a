//! permessage-deflate (RFC 7692): the negotiation, and compression and inflation of whole
//! messages.
//!
//! The gateway always answers with `server_no_context_takeover` and `client_no_context_takeover`
//! (section 7.1.1: a server may add both to any offer it accepts):
//!
//! - each message it sends is compressed on its own, so one compressed frame is valid for every
//!   socket of a path and is made once per broadcast;
//! - each message a client sends is inflated on its own, so a socket keeps no inflate state
//!   (about 40 KiB each) between messages: one compressor and one decompressor per worker
//!   thread serve every socket.
//!
//! A client's `server_max_window_bits=N` is accepted: a message longer than 2^N bytes is then
//! sent uncompressed (the extension allows that for any message); a shorter one cannot refer
//! further back than its own length, so the shared frame is valid in an N-bit window.

use std::cell::RefCell;

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// What one socket negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deflate {
    /// The client's `server_max_window_bits` (15 when it did not limit it).
    pub(crate) window_bits: u8,
    /// Messages shorter than this go uncompressed.
    pub(crate) threshold: usize,
}

impl Deflate {
    /// Whether a message of `len` bytes goes out compressed on this socket.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold && (self.window_bits >= 15 || len <= 1 << self.window_bits)
    }
}

/// Accepts the first `permessage-deflate` offer of the request's `Sec-WebSocket-Extensions`
/// that the gateway can honour, and returns its settings and the response header. Offers
/// with unknown, repeated or out-of-range parameters are passed over (RFC 7692 section 5).
pub(crate) fn negotiate(headers: &HeaderMap, threshold: usize) -> Option<(Deflate, HeaderValue)> {
    let offers = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for offer in offers {
        let mut parts = offer.split(';').map(str::trim);
        if !parts
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
        {
            continue;
        }
        if let Some((window_bits, asked)) = accept(parts) {
            let mut answer = String::from(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            );
            // Section 7.1.2.1: an offer with server_max_window_bits is accepted by answering it.
            if asked {
                answer.push_str(&format!("; server_max_window_bits={window_bits}"));
            }
            let value = HeaderValue::from_str(&answer).ok()?;
            return Some((
                Deflate {
                    window_bits,
                    threshold,
                },
                value,
            ));
        }
    }
    None
}

/// The server window of an acceptable offer's parameters, and whether the offer asked for it;
/// `None` when the offer is invalid.
fn accept<'a>(params: impl Iterator<Item = &'a str>) -> Option<(u8, bool)> {
    let mut seen = [false; 4];
    let mut window_bits = 15;
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        let index = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => 0,
            "client_no_context_takeover" if value.is_none() => 1,
            "server_max_window_bits" => {
                window_bits = bits(value?)?;
                2
            }
            "client_max_window_bits" => {
                if let Some(v) = value {
                    bits(v)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None;
        }
    }
    Some((window_bits, seen[2]))
}

/// A window size parameter: 8 to 15, decimal without leading zeros.
fn bits(value: &str) -> Option<u8> {
    if value.len() > 2 || value.starts_with('0') {
        return None;
    }
    value.parse().ok().filter(|b| (8..=15).contains(b))
}

/// The bytes a compressed message ends with before they are stripped (section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    static COMPRESS: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
    static DECOMPRESS: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Compresses one message on its own (no context kept). `None` when the compressed form is
/// not shorter than the message, or the compressor failed: it then goes uncompressed.
///
/// The output buffer is larger than deflate's worst case, so that one call compresses and
/// flushes everything: miniz_oxide does not always finish a sync flush that it resumes
/// after running out of output space (a 64 KiB message lost its last 247 bytes that way).
pub(crate) fn compress(message: &[u8]) -> Option<Bytes> {
    COMPRESS.with(|cell| {
        let mut c = cell.borrow_mut();
        c.reset();
        // Stored blocks cost 5 bytes per 64 KiB; the sync flush 5 more.
        let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 64);
        let done = c.compress_vec(message, &mut out, FlushCompress::Sync);
        let whole = done.is_ok()
            && usize::try_from(c.total_in()).ok() == Some(message.len())
            && out.len() < out.capacity()
            && out.ends_with(&TAIL);
        c.reset();
        if !whole {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        if out.len() >= message.len() {
            return None;
        }
        out.shrink_to_fit();
        Some(Bytes::from(out))
    })
}

/// Why a compressed message could not be inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates to more than the limit.
    TooBig,
    /// It is not valid deflate data.
    Invalid,
}

/// Inflates one message compressed on its own, to at most `limit` bytes: a message that
/// inflates to more stops there (a deflate bomb costs `limit` bytes, not what it expands to).
pub(crate) fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    DECOMPRESS.with(|cell| {
        let mut d = cell.borrow_mut();
        d.reset(false);
        let result = inflate_with(&mut d, compressed, limit);
        d.reset(false);
        result
    })
}

fn inflate_with(
    d: &mut Decompress,
    compressed: &[u8],
    limit: usize,
) -> Result<Vec<u8>, InflateError> {
    let cap = limit.saturating_add(1);
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).max(64).min(cap));
    for input in [compressed, &TAIL[..]] {
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                // Exact: never more than the limit allocated, whatever the data expands to.
                out.reserve_exact((cap - out.len()).min(out.len().max(1024)));
            }
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Invalid)?;
            pos += usize::try_from(d.total_in() - in_before).map_err(|_| InflateError::Invalid)?;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                // A final block: whatever follows it is not part of the message.
                return Ok(out);
            }
            let room = out.len() < out.capacity();
            if pos == input.len() && room {
                break;
            }
            if room && d.total_in() == in_before && d.total_out() == out_before {
                return Err(InflateError::Invalid);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: &str) -> Option<(Deflate, HeaderValue)> {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_str(value).unwrap(),
        );
        negotiate(&headers, 64)
    }

    #[test]
    fn the_browsers_offer_is_accepted_without_context_takeover() {
        let (d, answer) = offer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(d.window_bits, 15);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn a_smaller_server_window_is_honoured_and_bad_offers_passed_over() {
        let (d, answer) = offer(
            "permessage-deflate; server_max_window_bits=16, permessage-deflate; foo, \
             permessage-deflate; server_max_window_bits=\"9\"",
        )
        .unwrap();
        assert_eq!(d.window_bits, 9);
        assert!(answer
            .to_str()
            .unwrap()
            .ends_with("; server_max_window_bits=9"));
        assert!(d.wants(512) && !d.wants(513) && !d.wants(63));
        for bad in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=07",
            "permessage-deflate; client_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(offer(bad), None, "{bad}");
        }
        assert_eq!(negotiate(&HeaderMap::new(), 64), None);
        let (d, answer) = offer("permessage-deflate; server_max_window_bits=15").unwrap();
        assert_eq!(d.window_bits, 15);
        assert!(answer
            .to_str()
            .unwrap()
            .ends_with("; server_max_window_bits=15"));
    }

    #[test]
    fn messages_round_trip_and_incompressible_ones_stay_plain() {
        let json = br#"{"user":"ann","text":"hello hello hello hello hello hello"}"#.repeat(20);
        let packed = compress(&json).unwrap();
        assert!(packed.len() * 4 < json.len(), "{}", packed.len());
        assert!(!packed.ends_with(&TAIL));
        assert_eq!(inflate(&packed, json.len()).unwrap(), json);
        // Again on the same thread: nothing is left over from the last message.
        assert_eq!(inflate(&compress(&json).unwrap(), 1 << 20).unwrap(), json);
        assert_eq!(compress(b"!"), None);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }

    /// A 64 KiB message that compresses to more than half its size: the one whose sync flush
    /// miniz_oxide did not finish when it was resumed (the Autobahn TestSuite's case 12.2.9).
    #[test]
    fn long_messages_that_compress_little_round_trip_whole() {
        let mut x: u64 = 7;
        for len in [40_000, 65_536, 131_072, 1 << 20] {
            let message: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Runs of repeated bytes between noise: compresses to 60-80 %.
                    if i % 7 < 3 {
                        b'a'
                    } else {
                        (x >> 30) as u8 & 0x3f
                    }
                })
                .collect();
            let packed = compress(&message).unwrap();
            assert!(packed.len() * 10 > message.len() * 5, "{}", packed.len());
            assert_eq!(inflate(&packed, len).unwrap(), message, "{len}");
        }
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit_and_garbage_is_invalid() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = compress(&zeros).unwrap();
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        assert_eq!(inflate(&bomb, 64 * 1024), Err(InflateError::TooBig));
        assert_eq!(inflate(&bomb, 10 << 20).map(|v| v.len()), Ok(10 << 20));
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff], 1024),
            Err(InflateError::Invalid)
        );
    }
}
