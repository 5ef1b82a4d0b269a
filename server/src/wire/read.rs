//! Frames a client sends: parsed, checked against RFC 6455 and the gateway's limits, and
//! assembled into messages (inflated when compressed).

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::time::Instant;

use super::deflate::{inflate, InflateError};
use super::{OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

/// The inbound limits of one socket (0 = no limit for the two counts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest message, after inflating; also the largest frame and compressed message.
    pub(crate) max_message: usize,
    /// Most frames of any kind in one second (empty ones and control frames count too).
    pub(crate) per_second: u32,
    /// Most frames in one fragmented message.
    pub(crate) max_fragments: u32,
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// A whole data message: text (valid UTF-8) or binary.
    Message {
        opcode: u8,
        data: Bytes,
    },
    Ping(Bytes),
    Pong,
    /// A close frame with its code, if any (valid; its reason is valid UTF-8).
    Close(Option<u16>),
}

/// Why a socket is closed for what its client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A message (or frame) over the size limit: 1009.
    TooBig,
    /// More frames in one second than allowed: 1008.
    TooManyFrames,
    /// More frames in one fragmented message than allowed: 1008.
    TooManyFragments,
    /// A frame against RFC 6455: 1002.
    Protocol(&'static str),
    /// Text that is not UTF-8, or compressed data that does not inflate: 1007.
    InvalidData(&'static str),
}

impl Fault {
    /// The close code and reason the socket is closed with.
    pub(crate) fn close(self) -> (u16, &'static str) {
        match self {
            Self::TooBig => (1009, "message too big"),
            Self::TooManyFrames => (1008, "too many frames"),
            Self::TooManyFragments => (1008, "too many fragments"),
            Self::Protocol(why) => (1002, why),
            Self::InvalidData(why) => (1007, why),
        }
    }
}

/// A message whose first frames have arrived.
#[derive(Debug)]
struct Partial {
    opcode: u8,
    compressed: bool,
    data: BytesMut,
    /// Bytes of `data` known to be valid UTF-8 (text that is not compressed is checked as it
    /// arrives, so invalid text fails at once).
    checked: usize,
    fragments: u32,
}

/// Parses one socket's inbound bytes.
#[derive(Debug)]
pub(crate) struct Reader {
    limits: Limits,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    deflate: bool,
    window: Instant,
    in_window: u32,
    /// The frame at the head of the buffer was counted already (its payload is incomplete).
    counted: bool,
    /// Bytes still missing for the frame at the head of the buffer.
    need: usize,
    partial: Option<Partial>,
}

impl Reader {
    pub(crate) fn new(limits: Limits, deflate: bool, now: Instant) -> Self {
        Self {
            limits,
            deflate,
            window: now,
            in_window: 0,
            counted: false,
            need: 0,
            partial: None,
        }
    }

    /// Bytes the buffer still lacks for the frame it begins with (0 when unknown).
    pub(crate) fn need(&self) -> usize {
        self.need
    }

    /// Takes the next whole message or control frame out of `buf`; `Ok(None)` when `buf` holds
    /// no complete one yet (what it holds stays there).
    pub(crate) fn next(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
    ) -> Result<Option<Inbound>, Fault> {
        loop {
            let Some(frame) = self.frame(buf, now)? else {
                return Ok(None);
            };
            if let Some(inbound) = self.take(frame)? {
                return Ok(Some(inbound));
            }
        }
    }

    /// Splits the next whole frame off `buf`, checked and unmasked.
    fn frame(&mut self, buf: &mut BytesMut, now: Instant) -> Result<Option<Frame>, Fault> {
        self.need = 0;
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let extended = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header = 2 + extended + if b1 & 0x80 != 0 { 4 } else { 0 };
        if buf.len() < header {
            return Ok(None);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        if !self.counted {
            self.count(opcode, now)?;
            self.counted = true;
        }
        if b1 & 0x80 == 0 {
            return Err(Fault::Protocol("unmasked client frame"));
        }
        let len = match extended {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => {
                let mut n = [0; 8];
                n.copy_from_slice(&buf[2..10]);
                u64::from_be_bytes(n)
            }
            _ => u64::from(b1 & 0x7f),
        };
        if len >> 63 != 0 {
            return Err(Fault::Protocol("payload length with its top bit set"));
        }
        let rsv1 = b0 & 0x40 != 0;
        if b0 & 0x30 != 0 {
            return Err(Fault::Protocol("reserved bits set"));
        }
        let compressed = match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(Fault::Protocol("fragmented control frame"));
                }
                if len > 125 {
                    return Err(Fault::Protocol("control frame over 125 bytes"));
                }
                if rsv1 {
                    return Err(Fault::Protocol("reserved bits set"));
                }
                false
            }
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(Fault::Protocol("a new message inside a fragmented one"));
                }
                if rsv1 && !self.deflate {
                    return Err(Fault::Protocol("reserved bits set"));
                }
                rsv1
            }
            OP_CONTINUATION => {
                if self.partial.is_none() {
                    return Err(Fault::Protocol("continuation frame without a message"));
                }
                if rsv1 {
                    return Err(Fault::Protocol("reserved bits set"));
                }
                false
            }
            _ => return Err(Fault::Protocol("unknown opcode")),
        };
        let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
        let limit = self.limits.max_message as u64;
        if opcode < OP_CLOSE && len.saturating_add(so_far as u64) > limit {
            return Err(Fault::TooBig);
        }
        // At most `max_message` (data) or 125 (control) bytes: fits in usize.
        let len = usize::try_from(len).map_err(|_| Fault::TooBig)?;
        let total = header.checked_add(len).ok_or(Fault::TooBig)?;
        if buf.len() < total {
            self.need = total - buf.len();
            return Ok(None);
        }
        self.counted = false;
        let mut mask = [0; 4];
        mask.copy_from_slice(&buf[header - 4..header]);
        buf.advance(header);
        let mut payload = buf.split_to(len);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        Ok(Some(Frame {
            fin,
            opcode,
            compressed,
            payload,
        }))
    }

    /// Counts a frame against the frame rate and the fragments per message.
    fn count(&mut self, opcode: u8, now: Instant) -> Result<(), Fault> {
        if self.limits.per_second > 0 {
            if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
                self.window = now;
                self.in_window = 0;
            }
            self.in_window += 1;
            if self.in_window > self.limits.per_second {
                return Err(Fault::TooManyFrames);
            }
        }
        if opcode == OP_CONTINUATION && self.limits.max_fragments > 0 {
            let fragments = self.partial.as_ref().map_or(1, |p| p.fragments + 1);
            if fragments > self.limits.max_fragments {
                return Err(Fault::TooManyFragments);
            }
        }
        Ok(())
    }

    /// What a checked frame amounts to: a control frame, a whole message, or nothing yet.
    fn take(&mut self, frame: Frame) -> Result<Option<Inbound>, Fault> {
        let Frame {
            fin,
            opcode,
            compressed,
            payload,
        } = frame;
        match opcode {
            OP_PING => return Ok(Some(Inbound::Ping(payload.freeze()))),
            OP_PONG => return Ok(Some(Inbound::Pong)),
            OP_CLOSE => return close(&payload).map(|code| Some(Inbound::Close(code))),
            _ => {}
        }
        let mut partial = match self.partial.take() {
            None if fin && !compressed => {
                if opcode == OP_TEXT && std::str::from_utf8(&payload).is_err() {
                    return Err(Fault::InvalidData("invalid UTF-8"));
                }
                return Ok(Some(Inbound::Message {
                    opcode,
                    data: payload.freeze(),
                }));
            }
            None => Partial {
                opcode,
                compressed,
                data: payload,
                checked: 0,
                fragments: 1,
            },
            Some(mut partial) => {
                partial.data.unsplit(payload);
                partial.fragments += 1;
                partial
            }
        };
        if partial.opcode == OP_TEXT && !partial.compressed {
            check_utf8(&partial.data, &mut partial.checked, fin)?;
        }
        if !fin {
            self.partial = Some(partial);
            return Ok(None);
        }
        let data = if partial.compressed {
            let inflated =
                inflate(&partial.data, self.limits.max_message).map_err(|e| match e {
                    InflateError::TooBig => Fault::TooBig,
                    InflateError::Invalid => Fault::InvalidData("invalid compressed data"),
                })?;
            if partial.opcode == OP_TEXT && std::str::from_utf8(&inflated).is_err() {
                return Err(Fault::InvalidData("invalid UTF-8"));
            }
            Bytes::from(inflated)
        } else {
            partial.data.freeze()
        };
        Ok(Some(Inbound::Message {
            opcode: partial.opcode,
            data,
        }))
    }
}

struct Frame {
    fin: bool,
    opcode: u8,
    compressed: bool,
    payload: BytesMut,
}

/// Checks the text received so far; a sequence cut at the end may still be completed by the
/// next fragment unless this was the last.
fn check_utf8(data: &[u8], checked: &mut usize, fin: bool) -> Result<(), Fault> {
    match std::str::from_utf8(&data[*checked..]) {
        Ok(_) => *checked = data.len(),
        Err(e) if e.error_len().is_none() && !fin => *checked += e.valid_up_to(),
        Err(_) => return Err(Fault::InvalidData("invalid UTF-8")),
    }
    Ok(())
}

/// A close frame's code (RFC 6455 section 7.4), if it has one.
fn close(payload: &[u8]) -> Result<Option<u16>, Fault> {
    match payload {
        [] => Ok(None),
        [_] => Err(Fault::Protocol("close frame of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                return Err(Fault::Protocol("invalid close code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Fault::InvalidData("invalid UTF-8 in the close reason"));
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod tests;
