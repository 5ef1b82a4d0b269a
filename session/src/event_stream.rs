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
    /// A complete event: its type (`message` when the stream named none), its id (when it had
    /// an `id` field) and its data (the `data` lines joined with LF).
    Event {
        name: String,
        id: Option<String>,
        data: String,
    },
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
    id: Option<String>,
    data: String,
    has_data: bool,
    /// Bytes of the event being read (its lines so far).
    held: usize,
}

impl Parser {
    /// Reads `bytes`, appending what they complete to `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<Item>) -> Result<(), Broken> {
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    self.end_line(out)?;
                }
                _ => {
                    self.held += 1;
                    if self.held > MAX_EVENT {
                        return Err(Broken::TooLong);
                    }
                    self.line.push(b);
                }
            }
        }
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
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` (the browser's own reconnect delay) and unknown fields: the session has
            // its own reconnect policy.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Item>) {
        self.held = 0;
        let name = self.name.take();
        let id = self.id.take();
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return;
        }
        out.push(Item::Event {
            name: name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            id,
            data: std::mem::take(&mut self.data),
        });
    }
}

/// The text of the WebSocket frame an event stands for (docs/protocol.md section 6.7): a
/// message is its data, or with an id `<E>:<seq>` the recovery envelope `#<E>:<seq>:<data>`;
/// the events `reset` and `recovered` are the status frames. `None` for events the session
/// does not know (ignored, as an `EventSource` ignores them) and for malformed status data.
pub(crate) fn as_frame(
    name: &str,
    id: Option<&str>,
    data: String,
    recover: bool,
) -> Option<String> {
    match name {
        "message" => Some(match id {
            Some(id) if recover && !id.is_empty() => format!("#{id}:{data}"),
            _ => data,
        }),
        "reset" | "recovered" => {
            let status: serde_json::Value = serde_json::from_str(&data).ok()?;
            let epoch = status.get("epoch")?.as_str()?;
            let seq = status.get("seq")?.as_u64()?;
            if name == "reset" {
                return Some(format!("#reset:{epoch}:{seq}"));
            }
            let replayed = status.get("replayed")?.as_u64()?;
            Some(format!("#recovered:{epoch}:{seq}:{replayed}"))
        }
        _ => None,
    }
}

/// The close code and reason of a `close` event (`{"code":1012,"reason":"..."}`).
pub(crate) fn close_of(data: &str) -> Option<(u16, String)> {
    let close: serde_json::Value = serde_json::from_str(data).ok()?;
    let code = u16::try_from(close.get("code")?.as_u64()?).ok()?;
    let reason = close
        .get("reason")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    Some((code, reason.to_owned()))
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

    fn event(name: &str, id: Option<&str>, data: &str) -> Item {
        Item::Event {
            name: name.into(),
            id: id.map(Into::into),
            data: data.into(),
        }
    }

    #[test]
    fn events_comments_and_line_ends_in_any_split() {
        let body =
            b"\xef\xbb\xbf:\nid: e:1\ndata: {\"a\":1}\n\r\nevent: reset\r\ndata:x\rdata: y\r\r:\n";
        let want = vec![
            Item::Comment,
            event("message", Some("e:1"), "{\"a\":1}"),
            event("reset", None, "x\ny"),
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
            vec![event("message", None, "")]
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
        // Many small events are fine: the bound is per event.
        let mut p = Parser::default();
        for _ in 0..100 {
            p.feed(&line, &mut out).unwrap();
            p.feed(b"\n\n", &mut out).unwrap();
        }
        let mut p = Parser::default();
        assert_eq!(p.feed(b"data: \xff\n", &mut out), Err(Broken::NotUtf8));
    }

    #[test]
    fn events_map_to_the_frames_of_the_websocket() {
        let id = Some("00000000000000ff:3");
        assert_eq!(
            as_frame("message", id, "1".into(), true).unwrap(),
            "#00000000000000ff:3:1"
        );
        assert_eq!(as_frame("message", id, "1".into(), false).unwrap(), "1");
        assert_eq!(as_frame("message", None, "1".into(), true).unwrap(), "1");
        let reset = r#"{"epoch":"00000000000000ff","seq":2}"#;
        assert_eq!(
            as_frame("reset", None, reset.into(), true).unwrap(),
            "#reset:00000000000000ff:2"
        );
        let recovered = r#"{"epoch":"00000000000000ff","seq":2,"replayed":1}"#;
        assert_eq!(
            as_frame("recovered", None, recovered.into(), true).unwrap(),
            "#recovered:00000000000000ff:2:1"
        );
        assert_eq!(as_frame("recovered", None, reset.into(), true), None);
        assert_eq!(as_frame("reset", None, "nope".into(), true), None);
        assert_eq!(as_frame("other", None, "1".into(), true), None);
        assert_eq!(
            close_of(r#"{"code":1012,"reason":"service restart"}"#),
            Some((1012, "service restart".into()))
        );
        assert_eq!(close_of(r#"{"code":70000}"#), None);
    }
}
