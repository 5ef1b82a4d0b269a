//! permessage-deflate (RFC 7692) for the tokio driver: compressed messages from the server
//! are inflated in the byte stream under tungstenite.
//!
//! tungstenite has no extension points and refuses every frame with a reserved bit, so the
//! client offers the extension itself and [`Inflate`] sits between the connection and
//! tungstenite: it lets the handshake through, reads what the server agreed to from the
//! `101` answer, and from then on turns each compressed message (RSV1 set on its first frame)
//! into one plain frame with the inflated payload. Every other frame (plain messages, control
//! frames, also between the fragments of a compressed message) passes through unchanged, so
//! tungstenite still checks everything else (and refuses what is wrong: a reserved bit
//! where the extension does not allow one, a masked server frame). The client never
//! compresses what it sends (the extension allows that); it sends little besides `!`.
//!
//! Inflating stops at the message size limit: a deflate bomb ends the connection with an
//! error, whatever it would expand to. The server's context takeover is honoured (one
//! decompressor per connection) unless it answered `server_no_context_takeover`.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use flate2::{Decompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The offer the client makes (the header's value).
pub const OFFER: &str = "permessage-deflate";

/// Largest inflated message: tungstenite's default message size limit, which the plain
/// frames handed to it must meet anyway.
pub const MAX_MESSAGE: usize = 64 << 20;

/// Largest frame handed to tungstenite (its default frame size limit): a longer inflated
/// message goes to it in fragments.
const MAX_FRAME: usize = 16 << 20;

/// The end of every compressed message, removed by the sender (RFC 7692 section 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Longest `101` answer read before giving up on the extension (tungstenite then judges it).
const MAX_HEAD: usize = 64 * 1024;

enum State {
    /// Before the end of the server's answer to the upgrade.
    Head,
    /// The extension was agreed: frames are parsed.
    Frames(Box<Frames>),
    /// Not agreed (or not an upgrade): everything passes through.
    Plain,
}

/// The frame parser's state.
struct Frames {
    decompress: Decompress,
    /// The server keeps its compression context between messages.
    takeover: bool,
    /// Payload bytes of a passed-through frame still to copy.
    through: u64,
    /// Payload bytes of a compressed message's frame still to collect.
    collect: u64,
    /// The compressed message being collected: its opcode, its data, and whether its last
    /// frame has arrived.
    message: Option<(u8, Vec<u8>, bool)>,
}

/// A connection whose compressed messages reach the reader inflated.
pub struct Inflate<S> {
    inner: S,
    state: State,
    /// Bytes read from `inner` not yet looked at.
    input: BytesMut,
    /// Bytes ready for the reader.
    output: BytesMut,
    limit: usize,
    /// How much of `input` was searched for the end of the `101` answer.
    scanned: usize,
    /// An error met after bytes still to be read: returned once they are.
    error: Option<io::Error>,
}

impl<S> Inflate<S> {
    /// `offered`: the client's request carries [`OFFER`] (else everything passes through).
    /// Wraps the connection `inner` before the WebSocket handshake goes over it. `offered`:
    /// the request carries [`OFFER`] in `Sec-WebSocket-Extensions` (else everything passes
    /// through). `limit`: the largest inflated message ([`MAX_MESSAGE`] is tungstenite's
    /// default limit); a longer one ends the connection with an error.
    pub fn new(inner: S, offered: bool, limit: usize) -> Self {
        Self {
            inner,
            state: if offered { State::Head } else { State::Plain },
            input: BytesMut::new(),
            output: BytesMut::new(),
            limit,
            scanned: 0,
            error: None,
        }
    }

    /// Moves what `input` holds to `output`, inflating compressed messages.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match &mut self.state {
                State::Plain => {
                    let all = self.input.split();
                    self.output.unsplit(all);
                    return Ok(());
                }
                State::Head => {
                    // The head ends with an empty line (CRLF CRLF; LF LF as httparse allows).
                    let from = self.scanned.saturating_sub(3);
                    let end = find(&self.input[from..], b"\r\n\r\n")
                        .map(|i| from + i + 4)
                        .or_else(|| find(&self.input[from..], b"\n\n").map(|i| from + i + 2));
                    let Some(end) = end else {
                        self.scanned = self.input.len();
                        if self.input.len() > MAX_HEAD {
                            self.state = State::Plain;
                            continue;
                        }
                        return Ok(());
                    };
                    let head = self.input.split_to(end);
                    self.state = match agreed(&head) {
                        Some(takeover) => State::Frames(Box::new(Frames {
                            decompress: Decompress::new(false),
                            takeover,
                            through: 0,
                            collect: 0,
                            message: None,
                        })),
                        None => State::Plain,
                    };
                    self.output.unsplit(head);
                }
                State::Frames(frames) => {
                    return frames.process(&mut self.input, &mut self.output, self.limit);
                }
            }
        }
    }
}

impl Frames {
    fn process(
        &mut self,
        input: &mut BytesMut,
        output: &mut BytesMut,
        limit: usize,
    ) -> io::Result<()> {
        loop {
            if self.through > 0 {
                let n = take(input, &mut self.through);
                let bytes = input.split_to(n);
                output.unsplit(bytes);
                if self.through > 0 {
                    return Ok(());
                }
                continue;
            }
            if self.collect > 0 {
                let n = take(input, &mut self.collect);
                if let Some((_, data, _)) = &mut self.message {
                    data.extend_from_slice(&input[..n]);
                }
                input.advance(n);
                if self.collect > 0 {
                    return Ok(());
                }
                if self.message.as_ref().is_some_and(|m| m.2) {
                    self.finish(output, limit)?;
                }
                continue;
            }
            let Some((header, len)) = header(input) else {
                return Ok(());
            };
            let (b0, b1) = (input[0], input[1]);
            let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
            // Only a well-formed frame of a compressed message is taken: anything with RSV2 or
            // RSV3, or masked, passes to tungstenite, which refuses it.
            let clean = b1 & 0x80 == 0 && b0 & 0x30 == 0;
            if clean && (opcode == 1 || opcode == 2) && self.message.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "permessage-deflate: a new message inside a fragmented compressed one",
                ));
            }
            let compressed = clean
                && match (opcode, &self.message) {
                    (1 | 2, None) => rsv1,
                    (0, Some(_)) => !rsv1,
                    _ => false,
                };
            if !compressed {
                // Plain, control, or wrong: tungstenite decides.
                let head = input.split_to(header);
                output.unsplit(head);
                self.through = len;
                continue;
            }
            let so_far = self.message.as_ref().map_or(0, |m| m.1.len());
            if len.saturating_add(so_far as u64) > limit as u64 {
                return Err(too_big(limit));
            }
            input.advance(header);
            match &mut self.message {
                Some(message) => message.2 = fin,
                None => self.message = Some((opcode, Vec::new(), fin)),
            }
            self.collect = len;
            if len == 0 && fin {
                self.finish(output, limit)?;
            }
        }
    }

    /// Inflates the collected message into one plain frame.
    fn finish(&mut self, output: &mut BytesMut, limit: usize) -> io::Result<()> {
        let Some((opcode, mut data, _)) = self.message.take() else {
            return Ok(());
        };
        data.extend_from_slice(&TAIL);
        let (inflated, ended) = inflate(&mut self.decompress, &data, limit)?;
        if ended || !self.takeover {
            // A final block ends the stream: the next message starts a new one.
            self.decompress.reset(false);
        }
        // One frame, or fragments of at most MAX_FRAME bytes.
        let mut chunks = inflated.chunks(MAX_FRAME).peekable();
        let mut first = true;
        if inflated.is_empty() {
            header_into(output, true, opcode, 0);
        }
        while let Some(chunk) = chunks.next() {
            let fin = chunks.peek().is_none();
            header_into(output, fin, if first { opcode } else { 0 }, chunk.len());
            output.extend_from_slice(chunk);
            first = false;
        }
        Ok(())
    }
}

/// A server frame's header (unmasked).
fn header_into(output: &mut BytesMut, fin: bool, opcode: u8, len: usize) {
    output.extend_from_slice(&[if fin { 0x80 } else { 0 } | opcode]);
    match len {
        0..=125 => output.extend_from_slice(&[len as u8]),
        126..=0xffff => {
            output.extend_from_slice(&[126]);
            output.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            output.extend_from_slice(&[127]);
            output.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// How many of the `want` bytes still expected `input` holds now (and counts them off).
fn take(input: &BytesMut, want: &mut u64) -> usize {
    let n = usize::try_from(*want)
        .unwrap_or(usize::MAX)
        .min(input.len());
    *want -= n as u64;
    n
}

/// The length of the frame header at the start of `input` and the payload length, once the
/// header is complete.
fn header(input: &[u8]) -> Option<(usize, u64)> {
    let b1 = *input.get(1)?;
    let (extended, len) = match b1 & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes([*input.get(2)?, *input.get(3)?])),
        ),
        127 => {
            let bytes = input.get(2..10)?;
            let mut n = [0; 8];
            n.copy_from_slice(bytes);
            (8, u64::from_be_bytes(n))
        }
        n => (0, u64::from(n)),
    };
    let header = 2 + extended + if b1 & 0x80 != 0 { 4 } else { 0 };
    (input.len() >= header).then_some((header, len))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether the `101` answer agreed to permessage-deflate, and if so whether the server keeps
/// its context between messages.
fn agreed(head: &[u8]) -> Option<bool> {
    // Other headers may hold bytes that are not UTF-8: they do not matter here.
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    if lines.next()?.split(' ').nth(1).is_none_or(|s| s != "101") {
        return None;
    }
    let mut found = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("sec-websocket-extensions") {
            continue;
        }
        for extension in value.split(',') {
            let mut params = extension.split(';').map(str::trim);
            if params.next() == Some("permessage-deflate") {
                let takeover =
                    !params.any(|p| p.eq_ignore_ascii_case("server_no_context_takeover"));
                found = Some(takeover);
            }
        }
    }
    found
}

/// Inflates one message (ending in [`TAIL`]) to at most `limit` bytes; also says whether it
/// ended the deflate stream (a final block).
fn inflate(d: &mut Decompress, input: &[u8], limit: usize) -> io::Result<(Vec<u8>, bool)> {
    let cap = limit.saturating_add(1);
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).max(64).min(cap));
    let mut pos = 0;
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(too_big(limit));
            }
            out.reserve_exact((cap - out.len()).min(out.len().max(1024)));
        }
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
            .map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("permessage-deflate: {e}"),
                )
            })?;
        pos += usize::try_from(d.total_in() - in_before)
            .unwrap_or(usize::MAX)
            .min(input.len() - pos);
        if out.len() > limit {
            return Err(too_big(limit));
        }
        let room = out.len() < out.capacity();
        if status == Status::StreamEnd {
            return Ok((out, true));
        }
        if pos == input.len() && room {
            return Ok((out, false));
        }
        if room && d.total_in() == in_before && d.total_out() == out_before {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "permessage-deflate: the message does not inflate",
            ));
        }
    }
}

fn too_big(limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("permessage-deflate: a message inflates to more than {limit} bytes"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Inflate<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = &this.error {
                // Sticky: every later read fails the same way.
                return Poll::Ready(Err(io::Error::new(e.kind(), e.to_string())));
            }
            if matches!(this.state, State::Plain) && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            this.input.reserve(8 * 1024);
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.inner),
                cx,
                &mut this.input
            ))?;
            if n == 0 {
                // The end of the stream: what is left is incomplete; tungstenite sees the end.
                return Poll::Ready(Ok(()));
            }
            if let Err(e) = this.process() {
                this.error = Some(e);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inflate<S> {
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
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use tokio::io::AsyncReadExt;

    const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";

    /// A server frame (unmasked).
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n @ 0..=125 => f.push(n as u8),
            n @ 126..=65535 => {
                f.push(126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    fn compress(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        out.truncate(out.len() - 4);
        out
    }

    /// What a reader of `Inflate` over `wire` reads, `chunk` bytes at a time from the wire.
    async fn through(
        wire: Vec<u8>,
        offered: bool,
        chunk: usize,
        limit: usize,
    ) -> io::Result<Vec<u8>> {
        let (mut server, client) = tokio::io::duplex(chunk);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in wire.chunks(chunk) {
                if server.write_all(piece).await.is_err() {
                    break;
                }
            }
        });
        let mut out = Vec::new();
        let result = Inflate::new(client, offered, limit)
            .read_to_end(&mut out)
            .await;
        writer.abort();
        result.map(|_| out)
    }

    #[tokio::test]
    async fn compressed_messages_become_plain_frames_and_the_rest_passes_through() {
        let text = br#"{"rows":[1,2,3],"text":"hello hello hello hello hello"}"#.repeat(30);
        let mut c = Compress::new(Compression::default(), false);
        let packed = compress(&mut c, &text);
        c.reset();
        let (a, b) = packed.split_at(packed.len() / 2);
        let mut wire = HEAD.to_vec();
        wire.extend(frame(0x81, b"plain"));
        // A compressed message in two fragments, a ping between them.
        wire.extend(frame(0x41, a));
        wire.extend(frame(0x89, b"ping"));
        wire.extend(frame(0x80, b));
        wire.extend(frame(0xc2, &compress(&mut c, b"binary!")));
        let mut want = HEAD.to_vec();
        want.extend(frame(0x81, b"plain"));
        want.extend(frame(0x89, b"ping"));
        want.extend(frame(0x81, &text));
        want.extend(frame(0x82, b"binary!"));
        for chunk in [1, 3, 64, 100_000] {
            assert_eq!(
                through(wire.clone(), true, chunk, 1 << 20).await.unwrap(),
                want,
                "{chunk}"
            );
        }
    }

    #[tokio::test]
    async fn the_servers_context_takeover_is_followed() {
        // Without server_no_context_takeover, the second message refers back into the first.
        let head = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        let mut c = Compress::new(Compression::default(), false);
        let msg = b"the same words again and again and again".to_vec();
        let mut wire = head.to_vec();
        wire.extend(frame(0xc1, &compress(&mut c, &msg)));
        let second = compress(&mut c, &msg);
        assert!(second.len() < 10, "{}", second.len());
        wire.extend(frame(0xc1, &second));
        let mut want = head.to_vec();
        want.extend(frame(0x81, &msg));
        want.extend(frame(0x81, &msg));
        assert_eq!(through(wire, true, 7, 1 << 20).await.unwrap(), want);
    }

    #[tokio::test]
    async fn long_messages_come_in_fragments_and_a_final_block_starts_a_new_stream() {
        let head =
            b"HTTP/1.1 101 Switching Protocols\nSec-WebSocket-Extensions: permessage-deflate\n\n";
        // 20 MiB inflated: over tungstenite's 16 MiB frame limit, so two fragments.
        let big = vec![b'x'; 20 << 20];
        let mut c = Compress::new(Compression::fast(), false);
        let mut wire = head.to_vec();
        wire.extend(frame(0xc2, &compress(&mut c, &big)));
        // A message ending with a final block (BFINAL), then one more with the context kept.
        let mut last = Compress::new(Compression::default(), false);
        let mut ended = Vec::with_capacity(256);
        last.compress_vec(b"final", &mut ended, FlushCompress::Finish)
            .unwrap();
        wire.extend(frame(0xc1, &ended));
        let mut again = Compress::new(Compression::default(), false);
        wire.extend(frame(0xc1, &compress(&mut again, b"after")));
        let out = through(wire, true, 1 << 16, MAX_MESSAGE).await.unwrap();
        let mut want = head.to_vec();
        want.extend(&[0x02, 127]);
        want.extend((MAX_FRAME as u64).to_be_bytes());
        want.extend(&big[..MAX_FRAME]);
        want.extend(&[0x80, 127]);
        want.extend(((big.len() - MAX_FRAME) as u64).to_be_bytes());
        want.extend(&big[MAX_FRAME..]);
        want.extend(frame(0x81, b"final"));
        want.extend(frame(0x81, b"after"));
        assert!(out == want, "{} vs {} bytes", out.len(), want.len());
    }

    #[tokio::test]
    async fn bad_frames_reach_tungstenite_or_fail_after_what_came_before() {
        let mut c = Compress::new(Compression::default(), false);
        let packed = compress(&mut c, b"hello hello hello");
        // RSV2 on a compressed frame: passed through as it is, for tungstenite to refuse.
        let mut wire = HEAD.to_vec();
        wire.extend(frame(0x61, &packed));
        assert_eq!(through(wire.clone(), true, 64, 1024).await.unwrap(), wire);
        // A new message inside a fragmented compressed one: an error, after the frame
        // before it.
        let mut wire = HEAD.to_vec();
        wire.extend(frame(0x81, b"first"));
        wire.extend(frame(0x41, &packed));
        wire.extend(frame(0x81, b"second"));
        let (mut server, client) = tokio::io::duplex(1 << 16);
        tokio::io::AsyncWriteExt::write_all(&mut server, &wire)
            .await
            .unwrap();
        let mut inflate = Inflate::new(client, true, 1024);
        let mut want = HEAD.to_vec();
        want.extend(frame(0x81, b"first"));
        let mut got = vec![0; want.len()];
        inflate.read_exact(&mut got).await.unwrap();
        assert_eq!(got, want);
        let err = inflate.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            inflate.read(&mut [0; 16]).await.is_err(),
            "the error sticks"
        );
    }

    #[tokio::test]
    async fn without_the_extension_everything_passes_and_bombs_end_the_stream() {
        let mut c = Compress::new(Compression::default(), false);
        let bomb = compress(&mut c, &vec![0; 1 << 20]);
        // Not offered, or not agreed: bytes untouched (tungstenite refuses RSV1 itself).
        let mut plain = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
        plain.extend(frame(0xc1, &bomb));
        for offered in [false, true] {
            assert_eq!(
                through(plain.clone(), offered, 64, 1024).await.unwrap(),
                plain
            );
        }
        let mut wire = HEAD.to_vec();
        wire.extend(frame(0xc1, &bomb));
        let err = through(wire, true, 64, 64 * 1024).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "permessage-deflate: a message inflates to more than 65536 bytes"
        );
        let mut wire = HEAD.to_vec();
        wire.extend(frame(0xc1, &[0xff; 8]));
        assert_eq!(
            through(wire, true, 64, 1024).await.unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
