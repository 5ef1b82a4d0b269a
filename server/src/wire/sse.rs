//! The bytes of one Server-Sent Event (docs/protocol.md section 6.7): what an event stream
//! gets for a message queued for it, built once per message and form, and shared by every
//! stream of the path (as a WebSocket frame is by every socket).
//!
//! A stream that asked for frames (`?frames=1`, what this project's clients ask) gets every
//! frame a WebSocket would get as the data of one event, `data: <frame>`, and `data: !` as its
//! keep-alive: its client handles both transports alike. Every other stream (a bare
//! `EventSource`) gets events a page reads as they are:
//!
//! - A plain message (compact JSON text) is `data: <text>`.
//! - A recovery envelope `#<E>:<seq>:<text>` is `id: <E>:<seq>` and `data: <text>`: a browser's
//!   `EventSource` remembers the id and sends it back as `Last-Event-ID` when it reconnects.
//! - The status `#reset:<E>:<S>` is the event `reset` with `id: <E>:<S>` (live messages after
//!   `S` follow, so that is the position to come back with), and `#recovered:<E>:<S>:<n>` the
//!   event `recovered` without an id (the `n` replayed messages carry theirs). Their data is
//!   JSON: `{"epoch":"<E>","seq":<S>}`, plus `"replayed":<n>`.

use bytes::{BufMut, Bytes, BytesMut};

/// The keep-alive: a comment line, which every client skips.
pub(crate) const KEEP_ALIVE: &[u8] = b":\n";

/// The keep-alive of a stream that asked for frames: the heartbeat answer `!` as a message (a
/// browser's `EventSource` shows no comments; its client runs the heartbeat on what it sees).
pub(crate) const KEEP_ALIVE_FRAME: &[u8] = b"data: !\n\n";

/// The event for `payload` as a stream that asked for frames gets it: the frame's text as its
/// data.
pub(crate) fn encode_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 8);
    data(&mut out, payload);
    out.freeze()
}

/// The event for `payload` (a message's text, or a recovery frame for a stream that opted in).
pub(crate) fn encode(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 48);
    if let Some(rest) = payload.strip_prefix(b"#") {
        if let Some(status) = status(rest) {
            out.extend_from_slice(status.as_bytes());
            return out.freeze();
        }
        if let Some((id, text)) = envelope(rest) {
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id);
            out.put_u8(b'\n');
            data(&mut out, text);
            return out.freeze();
        }
    }
    data(&mut out, payload);
    out.freeze()
}

/// The event that tells a stream why the gateway ends it, before it does: `close` with the
/// code a WebSocket would get. Its data is `{"code":<code>,"reason":"<reason>"}`, or for a
/// stream that asked for frames `<code> <reason>`.
pub(crate) fn close(code: u16, reason: &str, frames: bool) -> Bytes {
    if frames {
        return Bytes::from(format!("event: close\ndata: {code} {reason}\n\n"));
    }
    let data = serde_json::json!({ "code": code, "reason": reason });
    Bytes::from(format!("event: close\ndata: {data}\n\n"))
}

/// `data:` lines for `text` (one per line of it; compact JSON has a single line) and the blank
/// line that ends the event: a reader joins the lines with LF.
fn data(out: &mut BytesMut, text: &[u8]) {
    let mut line = |part: &[u8]| {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(part);
        out.put_u8(b'\n');
    };
    // A reader ends a line at CRLF, LF or CR alike.
    let (mut start, mut i) = (0, 0);
    while i < text.len() {
        match text[i] {
            b'\n' => {
                line(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                line(&text[start..i]);
                i += if text.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    line(&text[start..]);
    out.put_u8(b'\n');
}

/// `<E>:<seq>` and the text of an envelope (after its `#`).
fn envelope(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let epoch_end = 16;
    if rest.len() < epoch_end + 2 || rest[epoch_end] != b':' {
        return None;
    }
    if !rest[..epoch_end].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let after = &rest[epoch_end + 1..];
    let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || after.get(digits) != Some(&b':') {
        return None;
    }
    let id_len = epoch_end + 1 + digits;
    Some((&rest[..id_len], &rest[id_len + 1..]))
}

/// The event for a status frame (`reset:<E>:<S>` or `recovered:<E>:<S>:<n>`, after its `#`).
fn status(rest: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(rest).ok()?;
    let number = |s: &str| s.parse::<u64>().ok();
    let epoch = |s: &str| (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(());
    if let Some(args) = text.strip_prefix("reset:") {
        let (e, s) = args.split_once(':')?;
        epoch(e)?;
        let seq = number(s)?;
        return Some(format!(
            "event: reset\nid: {e}:{seq}\ndata: {{\"epoch\":\"{e}\",\"seq\":{seq}}}\n\n"
        ));
    }
    if let Some(args) = text.strip_prefix("recovered:") {
        let mut parts = args.splitn(3, ':');
        let (e, s, n) = (parts.next()?, parts.next()?, parts.next()?);
        epoch(e)?;
        let (seq, replayed) = (number(s)?, number(n)?);
        return Some(format!(
            "event: recovered\ndata: {{\"epoch\":\"{e}\",\"seq\":{seq},\"replayed\":{replayed}}}\n\n"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn a_plain_message_is_one_data_line() {
        assert_eq!(text(encode(br#"{"a":1}"#)), "data: {\"a\":1}\n\n");
        assert_eq!(text(encode(b"42")), "data: 42\n\n");
    }

    #[test]
    fn an_envelope_carries_its_position_as_the_id() {
        let frame = br##"#00000000000000ff:7:{"a":"#:x"}"##;
        assert_eq!(
            text(encode(frame)),
            "id: 00000000000000ff:7\ndata: {\"a\":\"#:x\"}\n\n"
        );
    }

    #[test]
    fn the_status_frames_are_named_events() {
        assert_eq!(
            text(encode(b"#reset:00000000000000ff:12")),
            "event: reset\nid: 00000000000000ff:12\ndata: {\"epoch\":\"00000000000000ff\",\"seq\":12}\n\n"
        );
        assert_eq!(
            text(encode(b"#recovered:00000000000000ff:12:3")),
            "event: recovered\ndata: {\"epoch\":\"00000000000000ff\",\"seq\":12,\"replayed\":3}\n\n"
        );
    }

    #[test]
    fn lines_become_data_lines() {
        assert_eq!(text(encode(b"[1,\n2]")), "data: [1,\ndata: 2]\n\n");
        assert_eq!(
            text(encode(b"[1,\r\n2,\r3]")),
            "data: [1,\ndata: 2,\ndata: 3]\n\n"
        );
        assert_eq!(text(encode(b"1\n")), "data: 1\ndata: \n\n");
    }

    #[test]
    fn what_only_looks_like_an_envelope_is_data() {
        for odd in [
            &b"#zz:1:x"[..],
            b"#00000000000000ff:x:1",
            b"#00000000000000ff:1",
            b"#reset:ff:1",
        ] {
            let got = text(encode(odd));
            assert!(got.starts_with("data: #"), "{got}");
        }
    }

    #[test]
    fn the_close_event_names_the_code() {
        assert_eq!(
            text(close(1008, "slow consumer", false)),
            "event: close\ndata: {\"code\":1008,\"reason\":\"slow consumer\"}\n\n"
        );
        assert_eq!(
            text(close(1012, "service restart", true)),
            "event: close\ndata: 1012 service restart\n\n"
        );
    }

    #[test]
    fn as_frames_every_frame_is_the_data_as_it_is() {
        for frame in [
            &b"42"[..],
            b"#00000000000000ff:7:{}",
            b"#reset:00000000000000ff:1",
        ] {
            let want = format!("data: {}\n\n", String::from_utf8_lossy(frame));
            assert_eq!(text(encode_frame(frame)), want);
        }
    }
}
