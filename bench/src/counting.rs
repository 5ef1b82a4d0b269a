//! A socket that counts frames instead of reading messages: most of a fleet's sockets when
//! `--read-every N` is given, so that the generator's own inflating does not bound what a
//! compressing server is measured at.
//!
//! It upgrades by hand (offering permessage-deflate when asked), then parses only frame
//! headers: every final text or binary frame is a delivered broadcast, counted for the step in
//! progress, its payload skipped unread. A text frame `!` (plain, or compressed) is the answer
//! to its own heartbeat. A close frame ends it. The broadcasts' latency, order and path come from the
//! other sockets (every Nth), which read and inflate every message.

use std::sync::atomic::Ordering;
use std::time::Instant;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::fleet::{first_beat, tcp, ConnectSpec, Fleet, MAX_STEPS};

/// `!` compressed (RFC 7692 section 7.2.3.1: one fixed-Huffman block, its tail removed).
const COMPRESSED_BANG: [u8; 3] = [0x52, 0x04, 0x00];

/// Longest answer to the upgrade read.
const MAX_HEAD: usize = 16 * 1024;

/// What the frame parser does with the bytes it has.
#[derive(Debug, Default)]
struct Frames {
    /// Payload bytes of the current frame still to skip.
    skip: u64,
}

/// A frame the parser found.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// A final data frame: a delivered message.
    Message,
    /// A plain text frame `!`: the heartbeat's answer.
    Bang,
    /// A close frame.
    Close,
    /// Anything else (continuations, pings, pongs).
    Other,
}

impl Frames {
    /// Takes the next frame from `buf` (skipping payloads, also across calls); `None` when
    /// `buf` holds no complete header (what it holds stays for the next call).
    fn next(&mut self, buf: &mut Vec<u8>) -> Option<Frame> {
        let mut at = 0;
        loop {
            if self.skip > 0 {
                let n = (self.skip as usize).min(buf.len() - at);
                self.skip -= n as u64;
                at += n;
                if self.skip > 0 {
                    buf.drain(..at);
                    return None;
                }
            }
            let head = &buf[at..];
            if head.len() < 2 {
                buf.drain(..at);
                return None;
            }
            let (b0, b1) = (head[0], head[1]);
            let (len, header) = match b1 & 0x7f {
                126 if head.len() >= 4 => (u64::from(u16::from_be_bytes([head[2], head[3]])), 4),
                127 if head.len() >= 10 => {
                    let mut be = [0; 8];
                    be.copy_from_slice(&head[2..10]);
                    (u64::from_be_bytes(be), 10)
                }
                126 | 127 => {
                    buf.drain(..at);
                    return None;
                }
                n => (u64::from(n), 2),
            };
            let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
            if opcode == 1 && fin && len <= 3 {
                // Short enough to look at: `!` (plain, or compressed as Node.js `ws` sends
                // it) or a short broadcast.
                let len = len as usize;
                if head.len() < header + len {
                    buf.drain(..at);
                    return None;
                }
                let payload = &head[header..header + len];
                let bang = (!rsv1 && payload == b"!") || (rsv1 && payload == COMPRESSED_BANG);
                buf.drain(..at + header + len);
                return Some(if bang { Frame::Bang } else { Frame::Message });
            }
            at += header;
            self.skip = len;
            let frame = match opcode {
                0..=2 if fin => Frame::Message,
                8 => Frame::Close,
                _ => Frame::Other,
            };
            if frame == Frame::Other {
                continue;
            }
            // Skip what of the payload is here; the rest on the next calls.
            let n = (self.skip as usize).min(buf.len() - at);
            self.skip -= n as u64;
            buf.drain(..at + n);
            return Some(frame);
        }
    }
}

/// Upgrades `stream` to a WebSocket at `url` by hand; returns the bytes read past the answer.
async fn upgrade(stream: &mut TcpStream, url: &str, deflate: bool) -> Result<Vec<u8>, String> {
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let offer = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                return Err(format!(
                    "upgrade: {}",
                    String::from_utf8_lossy(&buf[..end.min(80)])
                ));
            }
            return Ok(buf.split_off(end + 4));
        }
        if buf.len() > MAX_HEAD {
            return Err("upgrade: answer too long".into());
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("upgrade: connection closed".into());
        }
    }
}

/// Opens counting socket number `id` (after taking a permit of `gate`) and runs it until the
/// server closes it or the process exits: [`crate::fleet::run_socket`]'s counterpart.
pub async fn run_socket(
    fleet: Arc<Fleet>,
    spec: Arc<ConnectSpec>,
    id: usize,
    gate: Arc<Semaphore>,
) {
    let (source, path) = spec.slot(id);
    let permit = gate.acquire().await;
    let opened = async {
        let mut stream = tcp(&spec, source).await?;
        let rest = upgrade(&mut stream, &spec.urls[path], spec.deflate).await?;
        Ok::<_, String>((stream, rest))
    }
    .await;
    drop(permit);
    let (stream, rest) = match opened {
        Ok(opened) => opened,
        Err(e) => return fleet.failed(e),
    };
    fleet.opened(path);
    let reason = run(&fleet, &spec, id, stream, rest).await;
    fleet.ended(path, reason);
}

/// Runs an open counting socket (`buf`: what was read past the upgrade's answer) until the
/// server closes it; returns why it ended.
async fn run(
    fleet: &Fleet,
    spec: &ConnectSpec,
    id: usize,
    mut stream: TcpStream,
    mut buf: Vec<u8>,
) -> String {
    let stats = fleet.local();
    let mut next_beat = first_beat(spec, id);
    let beat = tokio::time::sleep_until(next_beat);
    tokio::pin!(beat);
    let mut beat_sent: Option<Instant> = None;
    let mut frames = Frames::default();
    // A masked text frame `!` (mask 1 2 3 4).
    let bang = [0x81, 0x81, 1, 2, 3, 4, b'!' ^ 1];
    loop {
        while let Some(frame) = frames.next(&mut buf) {
            let step = fleet
                .current_step
                .load(Ordering::Relaxed)
                .min(MAX_STEPS - 1);
            match frame {
                Frame::Message => {
                    let counters = &stats.steps[step];
                    counters.counted.fetch_add(1, Ordering::Relaxed);
                    counters
                        .last_receive
                        .fetch_max(fleet.now_us(), Ordering::Relaxed);
                }
                Frame::Bang => {
                    if let Some(sent) = beat_sent.take() {
                        stats.steps[step]
                            .heartbeat
                            .record(sent.elapsed().as_micros() as u64);
                    }
                }
                Frame::Close => return "closed by server (counting socket)".into(),
                Frame::Other => {}
            }
        }
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => return "stream ended".into(),
                Ok(n) => {
                    fleet.wire_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return format!("read: {e}"),
            },
            () = &mut beat => {
                if beat_sent.is_some() {
                    fleet.heartbeats_unanswered.fetch_add(1, Ordering::Relaxed);
                }
                let now = Instant::now();
                if let Err(e) = stream.write_all(&bang).await {
                    return format!("heartbeat: {e}");
                }
                beat_sent = Some(now);
                next_beat += spec.heartbeat;
                beat.as_mut().reset(next_beat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_messages_answers_and_closes_across_reads() {
        let mut frames = Frames::default();
        let mut wire = Vec::new();
        // A compressed text message of 300 bytes (16-bit length), a `!`, a ping, a one-byte
        // broadcast, a close.
        wire.extend([0xc1, 126, 1, 44]);
        wire.extend([7u8; 300]);
        wire.extend([0x81, 1, b'!']);
        wire.extend([0xc1, 3, 0x52, 0x04, 0x00]);
        wire.extend([0x89, 2, 0, 0]);
        wire.extend([0x81, 1, b'7']);
        wire.extend([0x88, 2, 3, 232]);
        // Fed a few bytes at a time.
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for chunk in wire.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(f) = frames.next(&mut buf) {
                seen.push(f);
            }
        }
        assert_eq!(
            seen,
            vec![
                Frame::Message,
                Frame::Bang,
                Frame::Bang,
                Frame::Message,
                Frame::Close
            ]
        );
    }
}
