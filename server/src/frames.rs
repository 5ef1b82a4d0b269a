//! Inbound frame accounting under tungstenite: every frame a client sends counts against the
//! socket's frame rate (control and continuation frames too, also empty ones), and the frames
//! of one fragmented message are capped.
//!
//! tungstenite assembles messages and never shows single frames, so the count is kept on the
//! bytes: [`FrameCounter`] reads frame headers (RFC 6455 section 5.2) and skips payloads, and
//! [`Counted`] runs it over everything the socket reads. It only counts: tungstenite still
//! checks the frames (sizes, masking, opcodes) and closes on protocol errors.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Why a socket went over its inbound limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overrun {
    /// More frames in one second than allowed.
    TooManyFrames,
    /// More frames in one fragmented message than allowed.
    TooManyFragments,
}

/// Reads frame headers out of a byte stream and counts frames (0 = no limit for either).
#[derive(Debug)]
pub(crate) struct FrameCounter {
    per_second: u32,
    max_fragments: u32,
    header: [u8; 14],
    have: usize,
    need: usize,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
    /// Frames of the message being received (0 between messages).
    fragments: u32,
    window: Instant,
    in_window: u32,
}

impl FrameCounter {
    pub(crate) fn new(per_second: u32, max_fragments: u32, now: Instant) -> Self {
        Self {
            per_second,
            max_fragments,
            header: [0; 14],
            have: 0,
            need: 2,
            skip: 0,
            fragments: 0,
            window: now,
            in_window: 0,
        }
    }

    /// Counts the frames whose headers are in `bytes` (the next bytes of the stream).
    pub(crate) fn feed(&mut self, mut bytes: &[u8], now: Instant) -> Result<(), Overrun> {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[n..];
                self.skip -= n as u64;
                continue;
            }
            let Some((&b, rest)) = bytes.split_first() else {
                break;
            };
            bytes = rest;
            self.header[self.have] = b;
            self.have += 1;
            if self.have == 2 {
                let extended = match self.header[1] & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
                self.need = 2 + extended + mask;
            }
            if self.have == self.need {
                self.skip = self.payload_len();
                self.have = 0;
                self.need = 2;
                self.on_frame(now)?;
            }
        }
        Ok(())
    }

    fn payload_len(&self) -> u64 {
        let h = &self.header;
        match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            n => u64::from(n),
        }
    }

    fn on_frame(&mut self, now: Instant) -> Result<(), Overrun> {
        if self.per_second > 0 {
            if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
                self.window = now;
                self.in_window = 0;
            }
            self.in_window += 1;
            if self.in_window > self.per_second {
                return Err(Overrun::TooManyFrames);
            }
        }
        let fin = self.header[0] & 0x80 != 0;
        let opcode = self.header[0] & 0x0f;
        if opcode >= 0x8 {
            // Control frames may come between fragments; they are not part of the message.
            return Ok(());
        }
        self.fragments = if opcode == 0 {
            self.fragments.saturating_add(1)
        } else {
            1
        };
        if self.max_fragments > 0 && self.fragments > self.max_fragments {
            return Err(Overrun::TooManyFragments);
        }
        if fin {
            self.fragments = 0;
        }
        Ok(())
    }
}

/// A socket's byte stream with its inbound frames counted. On the first overrun it calls
/// `on_overrun` (which tells the socket's task to close with 1008) and reads nothing more:
/// the task sends the close frame and ends the connection.
pub(crate) struct Counted<S> {
    inner: S,
    counter: FrameCounter,
    on_overrun: Option<Box<dyn FnOnce(Overrun) + Send + Sync>>,
}

impl<S> Counted<S> {
    pub(crate) fn new(
        inner: S,
        counter: FrameCounter,
        on_overrun: impl FnOnce(Overrun) + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            counter,
            on_overrun: Some(Box::new(on_overrun)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.on_overrun.is_none() {
            // Over the limit: the socket's task is closing it (its kill wakes it).
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            if let Err(overrun) = this.counter.feed(&buf.filled()[before..], Instant::now()) {
                if let Some(tell) = this.on_overrun.take() {
                    tell(overrun);
                }
            }
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame: FIN bit, opcode, payload.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=65535 => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend([1, 2, 3, 4]);
        f.extend(payload);
        f
    }

    #[test]
    fn every_frame_counts_also_empty_continuations_and_split_headers() {
        let t0 = Instant::now();
        let mut c = FrameCounter::new(5, 0, t0);
        let mut bytes = frame(false, 1, b"a");
        for _ in 0..4 {
            bytes.extend(frame(false, 0, b""));
        }
        // Five frames, fed one byte at a time: within the limit.
        for b in &bytes {
            assert_eq!(c.feed(std::slice::from_ref(b), t0), Ok(()));
        }
        assert_eq!(
            c.feed(&frame(true, 0, b""), t0),
            Err(Overrun::TooManyFrames)
        );
        // A new second starts a new window.
        let mut c = FrameCounter::new(1, 0, t0);
        assert_eq!(c.feed(&frame(true, 1, b"!"), t0), Ok(()));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(c.feed(&frame(true, 9, b"ping"), later), Ok(()));
        assert_eq!(
            c.feed(&frame(true, 9, b"ping"), later),
            Err(Overrun::TooManyFrames)
        );
    }

    #[test]
    fn payloads_are_skipped_whatever_their_length_encoding() {
        let t0 = Instant::now();
        let mut c = FrameCounter::new(3, 0, t0);
        let mut bytes = frame(true, 2, &[b'!'; 300]);
        bytes.extend(frame(true, 2, &vec![0x81; 70_000]));
        bytes.extend(frame(true, 1, b"\x81\x81"));
        for chunk in bytes.chunks(7) {
            assert_eq!(c.feed(chunk, t0), Ok(()));
        }
        assert_eq!(
            c.feed(&frame(true, 1, b"!"), t0),
            Err(Overrun::TooManyFrames)
        );
    }

    #[test]
    fn fragments_per_message_are_capped_and_control_frames_do_not_count() {
        let t0 = Instant::now();
        let mut c = FrameCounter::new(0, 3, t0);
        let mut ok = frame(false, 1, b"a");
        ok.extend(frame(true, 9, b""));
        ok.extend(frame(false, 0, b"b"));
        ok.extend(frame(true, 0, b"c"));
        // A finished message resets the count.
        ok.extend(frame(false, 2, b"a"));
        ok.extend(frame(false, 0, b""));
        ok.extend(frame(false, 0, b""));
        assert_eq!(c.feed(&ok, t0), Ok(()));
        assert_eq!(
            c.feed(&frame(false, 0, b""), t0),
            Err(Overrun::TooManyFragments)
        );
    }
}
