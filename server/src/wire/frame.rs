//! Frames the gateway sends: a broadcast's frame built once and shared by every socket, and
//! small control frames.

use std::sync::OnceLock;

use bytes::Bytes;

use super::deflate::{self, Deflate};
use crate::registry::Utf8Bytes;

/// A frame header: FIN, RSV1 when compressed, the opcode and the payload length (a server
/// does not mask).
#[derive(Debug, Clone, Copy)]
struct Head {
    bytes: [u8; 10],
    len: u8,
}

impl Head {
    fn new(opcode: u8, compressed: bool, len: usize) -> Self {
        let mut bytes = [0; 10];
        bytes[0] = 0x80 | if compressed { 0x40 } else { 0 } | opcode;
        let len = match len {
            0..=125 => {
                bytes[1] = len as u8;
                2
            }
            126..=0xffff => {
                bytes[1] = 126;
                bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            _ => {
                bytes[1] = 127;
                bytes[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                10
            }
        };
        Self { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// One outbound message, shared (behind an `Arc`) by every socket it goes to: its header is
/// built once, and its compressed form once, by the first socket that negotiated compression
/// and writes it. Each socket writes these bytes as they are (vectored writes, no copy).
#[derive(Debug)]
pub(crate) struct Outgoing {
    opcode: u8,
    payload: Bytes,
    head: Head,
    /// The compressed frame's header and payload; `None` inside when compressing does not
    /// make it shorter.
    deflated: OnceLock<Option<(Head, Bytes)>>,
    /// The message as a Server-Sent Event, built by the first event stream that writes it: as
    /// a page reads it, and as a frame (`?frames=1`).
    event: OnceLock<Bytes>,
    frame_event: OnceLock<Bytes>,
}

impl Outgoing {
    /// A data message (text or binary opcode) with `payload`.
    pub(crate) fn new(opcode: u8, payload: Bytes) -> Self {
        Self {
            opcode,
            head: Head::new(opcode, false, payload.len()),
            payload,
            deflated: OnceLock::new(),
            event: OnceLock::new(),
            frame_event: OnceLock::new(),
        }
    }

    /// A text message.
    pub(crate) fn text(text: Utf8Bytes) -> Self {
        Self::new(super::OP_TEXT, Bytes::from(text))
    }

    /// The message's length (uncompressed).
    pub(crate) fn len(&self) -> usize {
        self.payload.len()
    }

    /// The message's bytes (uncompressed).
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The message's text (tests).
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap_or("<binary>")
    }

    /// The header and payload to write on a socket that negotiated `deflate` (or not).
    pub(crate) fn frame(&self, deflate: Option<&Deflate>) -> [&[u8]; 2] {
        if deflate.is_some_and(|d| d.wants(self.payload.len())) {
            let packed = self.deflated.get_or_init(|| {
                deflate::compress(&self.payload)
                    .map(|bytes| (Head::new(self.opcode, true, bytes.len()), bytes))
            });
            if let Some((head, bytes)) = packed {
                return [head.as_slice(), bytes];
            }
        }
        [self.head.as_slice(), &self.payload]
    }
}

impl Outgoing {
    /// The message as a Server-Sent Event ([`super::sse::encode`], or with `frames`
    /// [`super::sse::encode_frame`]), built once.
    pub(crate) fn event(&self, frames: bool) -> Bytes {
        if frames {
            return self
                .frame_event
                .get_or_init(|| super::sse::encode_frame(&self.payload))
                .clone();
        }
        self.event
            .get_or_init(|| super::sse::encode(&self.payload))
            .clone()
    }
}

/// The gateway's heartbeat answer: the text frame `!`.
pub(crate) const BANG: [u8; 3] = [0x81, 0x01, b'!'];

/// A control frame (close, ping or pong) with at most 125 bytes of payload (longer is cut).
pub(crate) fn control(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(125)];
    let mut frame = Vec::with_capacity(2 + payload.len());
    frame.extend_from_slice(Head::new(opcode, false, payload.len()).as_slice());
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        assert_eq!(Head::new(1, false, 125).as_slice(), [0x81, 125]);
        assert_eq!(Head::new(2, false, 126).as_slice(), [0x82, 126, 0, 126]);
        assert_eq!(
            Head::new(1, true, 65535).as_slice(),
            [0xc1, 126, 0xff, 0xff]
        );
        assert_eq!(
            Head::new(1, false, 65536).as_slice(),
            [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(control(0x8, &[3, 232]), [0x88, 2, 3, 232]);
    }

    #[test]
    fn the_compressed_frame_is_made_once_and_only_where_negotiated() {
        let text = "{\"n\":1,\"pad\":\"".to_owned() + &"x".repeat(1000) + "\"}";
        let out = Outgoing::text(Utf8Bytes::from(text.clone()));
        let plain = out.frame(None);
        let len = (text.len() as u16).to_be_bytes();
        assert_eq!(plain[0], [0x81, 126, len[0], len[1]]);
        assert_eq!(plain[1], text.as_bytes());
        let d = Deflate {
            window_bits: 15,
            threshold: 64,
        };
        let [head, body] = out.frame(Some(&d));
        assert_eq!(head[0], 0xc1);
        assert!(body.len() < 100, "{}", body.len());
        let again = out.frame(Some(&d));
        assert_eq!(again[1].as_ptr(), body.as_ptr(), "compressed once");
        let small = Deflate {
            window_bits: 9,
            threshold: 64,
        };
        assert_eq!(
            out.frame(Some(&small))[0][0],
            0x81,
            "longer than the window"
        );
        assert_eq!(
            super::super::deflate::inflate(body, 4096).unwrap(),
            text.as_bytes()
        );
    }
}
