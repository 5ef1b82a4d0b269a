//! The event-stream transport (Server-Sent Events, docs/protocol.md section 6.7): the parser of
//! the response body, and what its events mean to the session.
//!
//! The parser follows the WHATWG rules (lines end at CRLF, LF or CR; `field: value` with one
//! optional space; comments start with `:`; an event is dispatched at a blank line) with a
//! bound on what it holds: a server cannot make it buffer more than [`MAX_EVENT`] bytes.

/// Most bytes of one event (its lines as they arrive) the parser holds before it gives up on
/// the stream: as much as a WebSocket message may hold by default (tungstenite's limit).
pub const MAX_EVENT: usize = 64 << 20;

/// A byte-order mark, which a stream may begin with.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// What the parser found in the bytes it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A comment line: the gateway's keep-alive.
    Comment,
    /// A complete event: its type (`message` when the stream named none) and its data (the
    /// `data` lines joined with LF). Ids are not kept: the session's position comes from the
    /// frames.
    Event { name: String, data: String },
}

/// The stream broke the rules this parser keeps: an event over [`MAX_EVENT`] bytes, or text
/// that is not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Broken {
    TooLong,
    NotUtf8,
}

/// An incremental parser of an event stream's body.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// The line read so far.
    line: Vec<u8>,
    /// A CR ended the last line: an LF right after it belongs to it.
    after_cr: bool,
    /// The first line of the stream ended (a byte-order mark before it is skipped).
    started: bool,
    name: Option<String>,
    data: String,
    has_data: bool,
}

impl Parser {
    /// Reads `bytes`, appending what they complete to `out`.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Item>) -> Result<(), Broken> {
        while let Some(&first) = bytes.first() {
            if std::mem::take(&mut self.after_cr) && first == b'\n' {
                bytes = &bytes[1..];
                continue;
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.hold(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    self.end_line(out)?;
                    bytes = &bytes[end + 1..];
                }
                None => return self.hold(bytes),
            }
        }
        Ok(())
    }

    /// Adds `part` to the line being read. What the event holds (its data so far and that
    /// line; comments and other fields are not kept, so they do not add up) stays within
    /// [`MAX_EVENT`].
    fn hold(&mut self, part: &[u8]) -> Result<(), Broken> {
        if self.line.len() + part.len() + self.data.len() > MAX_EVENT {
            return Err(Broken::TooLong);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Item>) -> Result<(), Broken> {
        let mut line = std::mem::take(&mut self.line);
        if !std::mem::replace(&mut self.started, true) && line.starts_with(BOM) {
            line.drain(..BOM.len());
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            out.push(Item::Comment);
            return Ok(());
        }
        let line = String::from_utf8(line).map_err(|_| Broken::NotUtf8)?;
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.name = Some(value.to_owned()),
            // `id`, `retry` (the browser's own reconnect delay) and unknown fields: the
            // session keeps its position and its reconnect policy itself.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Item>) {
        let name = self.name.take();
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return;
        }
        out.push(Item::Event {
            name: name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data: std::mem::take(&mut self.data),
        });
    }
}

/// What one event of an event stream stands for (docs/protocol.md section 6.7). The session
/// asks for the WebSocket's frames (`frames=1` in [`Session::connect_query`](crate::Session)),
/// so a message's data is the frame a socket would get (the heartbeat answer `!` is the
/// gateway's keep-alive) and the event `close` says how the gateway ends the stream. For the
/// session and for drivers whose browser parses the stream itself (`EventSource`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The frame a WebSocket would have received.
    Frame(String),
    /// The event `close`: the gateway ends the stream with this close code and reason.
    Closed {
        /// The close code a socket would get.
        code: u16,
        /// Its reason.
        reason: String,
    },
    /// An event the session does not know, or a malformed `close`: ignored, as an
    /// `EventSource` ignores events nobody listens to.
    Ignored,
}

/// What the event `name` with `data` stands for.
pub fn stream_event(name: &str, data: String) -> StreamEvent {
    match name {
        "message" => StreamEvent::Frame(data),
        // `<code> <reason>`, read byte by byte (no `str` slicing: its panic path would cost
        // a browser build kilobytes).
        "close" => {
            let mut code: u32 = 0;
            let mut bytes = data.bytes();
            let mut digits = 0;
            let mut rest_starts = None;
            for (i, b) in bytes.by_ref().enumerate() {
                match b {
                    b'0'..=b'9' if code <= 0xffff => {
                        code = code * 10 + u32::from(b - b'0');
                        digits += 1;
                    }
                    b' ' => {
                        rest_starts = Some(i + 1);
                        break;
                    }
                    _ => return StreamEvent::Ignored,
                }
            }
            match (u16::try_from(code), digits) {
                (Ok(code), 1..) => StreamEvent::Closed {
                    code,
                    reason: rest_starts
                        .and_then(|at| data.get(at..))
                        .unwrap_or_default()
                        .to_owned(),
                },
                _ => StreamEvent::Ignored,
            }
        }
        _ => StreamEvent::Ignored,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Item> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        out
    }

    fn event(name: &str, data: &str) -> Item {
        Item::Event {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_line_ends_in_any_split() {
        let body =
            b"\xef\xbb\xbf:\nid: e:1\ndata: {\"a\":1}\n\r\nevent: reset\r\ndata:x\rdata: y\r\r:\n";
        let want = vec![
            Item::Comment,
            event("message", "{\"a\":1}"),
            event("reset", "x\ny"),
            Item::Comment,
        ];
        assert_eq!(parse(&[body]), want);
        // Byte by byte: the same items (a CRLF split in two is one line end).
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(parse(&bytes), want);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        assert_eq!(
            parse(&[b"event: x\nid: 1\n\ndata\n\n"]),
            vec![event("message", "")]
        );
    }

    #[test]
    fn an_event_over_the_bound_breaks_the_stream() {
        let mut p = Parser::default();
        let mut out = Vec::new();
        let line = vec![b'a'; 1 << 20];
        p.feed(b"data: ", &mut out).unwrap();
        let mut result = Ok(());
        for _ in 0..=MAX_EVENT >> 20 {
            result = p.feed(&line, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(Broken::TooLong));
        // Many small events are fine: the bound is per event; so are endless comments.
        let mut p = Parser::default();
        for _ in 0..100 {
            p.feed(&line, &mut out).unwrap();
            p.feed(b"\n\n", &mut out).unwrap();
        }
        let mut p = Parser::default();
        let comment = [&b":"[..], &line, b"\n"].concat();
        for _ in 0..=MAX_EVENT >> 20 {
            p.feed(&comment, &mut out).unwrap();
        }
        let mut p = Parser::default();
        assert_eq!(p.feed(b"data: \xff\n", &mut out), Err(Broken::NotUtf8));
    }

    #[test]
    fn events_map_to_the_frames_of_the_websocket() {
        assert_eq!(
            stream_event("message", "#e:1:2".into()),
            StreamEvent::Frame("#e:1:2".into())
        );
        assert_eq!(
            stream_event("close", "1012 service restart".into()),
            StreamEvent::Closed {
                code: 1012,
                reason: "service restart".into()
            }
        );
        assert_eq!(
            stream_event("close", "1000".into()),
            StreamEvent::Closed {
                code: 1000,
                reason: String::new()
            }
        );
        for odd in ["70000 x", "x 1", ""] {
            assert_eq!(
                stream_event("close", odd.into()),
                StreamEvent::Ignored,
                "{odd}"
            );
        }
        assert_eq!(stream_event("reset", "1".into()), StreamEvent::Ignored);
    }
}
