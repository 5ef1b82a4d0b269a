//! An event stream of the fleet (`loadgen --transport sse`): a `GET` with `Accept:
//! text/event-stream` and `frames=1`, as this project's clients open it, read by hand: the
//! chunked body decoded and each `data:` line taken as a delivered broadcast (its stamp read
//! as a reading socket reads it). A stream sends nothing: no `!` (the gateway's keep-alive
//! `data: !` is skipped).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::fleet::{receive, tcp, ConnectSpec, Fleet};

/// Longest answer head read.
const MAX_HEAD: usize = 16 * 1024;

/// Longest line (event) held: a broadcast of the benchmark is at most 64 KiB and a bit.
const MAX_LINE: usize = 1 << 20;

/// The chunked body's decoder and the lines of the events in it.
#[derive(Debug, Default)]
struct Body {
    /// Data bytes of the current chunk still to come (`None`: a size line is next).
    remaining: Option<usize>,
    /// The CRLF after a chunk's data is still to skip.
    crlf: usize,
    /// The event line read so far.
    line: Vec<u8>,
}

impl Body {
    /// Decodes what `raw` holds (leaving an incomplete size line in it) and hands every
    /// complete line to `line`. `Err` when the body ends or breaks the rules.
    fn feed(&mut self, raw: &mut Vec<u8>, mut line: impl FnMut(&[u8])) -> Result<(), String> {
        let mut at = 0;
        while at < raw.len() {
            if self.crlf > 0 {
                let n = self.crlf.min(raw.len() - at);
                self.crlf -= n;
                at += n;
                continue;
            }
            match self.remaining {
                None => {
                    let Some(end) = raw[at..].windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let size = std::str::from_utf8(&raw[at..at + end])
                        .ok()
                        .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                        .ok_or("a bad chunk size")?;
                    if size == 0 {
                        raw.clear();
                        return Err("the stream ended".into());
                    }
                    self.remaining = Some(size);
                    at += end + 2;
                }
                Some(left) => {
                    let n = left.min(raw.len() - at);
                    for &b in &raw[at..at + n] {
                        if b == b'\n' {
                            line(&self.line);
                            self.line.clear();
                        } else if self.line.len() < MAX_LINE {
                            self.line.push(b);
                        } else {
                            return Err("an event over 1 MiB".into());
                        }
                    }
                    at += n;
                    self.remaining = (left > n).then_some(left - n);
                    if left == n {
                        self.crlf = 2;
                    }
                }
            }
        }
        raw.drain(..at);
        Ok(())
    }
}

/// Opens event stream number `id` (after taking a permit of `gate`) and reads it until the
/// server ends it: [`crate::fleet::run_socket`]'s counterpart.
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
        let url = &spec.urls[path];
        let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
        let (host, target) = rest.split_once('/').unwrap_or((rest, ""));
        let request = format!(
            "GET /{target}?frames=1 HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(4096);
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                if !head.starts_with("http/1.1 200") || !head.contains("transfer-encoding: chunked")
                {
                    return Err(format!("stream: {}", &head[..head.len().min(80)]));
                }
                let rest = buf.split_off(end + 4);
                return Ok((stream, rest));
            }
            if buf.len() > MAX_HEAD {
                return Err("stream: answer too long".into());
            }
            if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("stream: connection closed".into());
            }
        }
    }
    .await;
    drop(permit);
    let (mut stream, mut raw) = match opened {
        Ok(opened) => opened,
        Err(e) => return fleet.failed(e),
    };
    fleet.opened(path);
    let stats = fleet.local();
    let mut body = Body::default();
    let mut last_seq = 0u64;
    fleet
        .wire_bytes
        .fetch_add(raw.len() as u64, Ordering::Relaxed);
    let reason = loop {
        let fed = body.feed(&mut raw, |line| {
            if let Some(text) = line.strip_prefix(b"data: ") {
                if text != b"!" {
                    if let Ok(text) = std::str::from_utf8(text) {
                        receive(&fleet, &stats, path, text, &mut last_seq);
                    }
                }
            }
        });
        if let Err(e) = fed {
            break e;
        }
        raw.reserve(16 * 1024);
        match stream.read_buf(&mut raw).await {
            Ok(0) => break "connection closed".to_owned(),
            Ok(n) => {
                fleet.wire_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => break format!("read: {e}"),
        }
    };
    fleet.ended(path, reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_anywhere_give_the_same_lines() {
        let wire =
            b"2\r\n:\n\r\n11\r\ndata: {\"seq\":1}\n\n\r\n5\r\ndata:\r\n4\r\n !\n\n\r\n0\r\n\r\n";
        for cut in 1..wire.len() {
            let mut body = Body::default();
            let mut lines = Vec::new();
            let mut raw = Vec::new();
            let mut end = None;
            for part in [&wire[..cut], &wire[cut..]] {
                if end.is_some() {
                    break; // the socket's loop stops at the first error
                }
                raw.extend_from_slice(part);
                if let Err(e) = body.feed(&mut raw, |l| {
                    lines.push(String::from_utf8_lossy(l).into_owned())
                }) {
                    end = Some(e);
                }
            }
            assert_eq!(
                lines,
                [":", "data: {\"seq\":1}", "", "data: !", ""],
                "cut at {cut}"
            );
            assert_eq!(end.as_deref(), Some("the stream ended"), "cut at {cut}");
        }
    }
}
