use super::*;
use crate::wire::deflate::compress;

/// A masked client frame: FIN bit, RSV1, opcode, payload.
fn frame_with(fin: bool, rsv1: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
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
    let mask = [1, 2, 3, 4];
    f.extend(mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    f
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(fin, false, opcode, payload)
}

fn limits(per_second: u32, max_fragments: u32) -> Limits {
    Limits {
        max_message: 64 * 1024,
        per_second,
        max_fragments,
    }
}

/// Everything `bytes` holds, fed `chunk` bytes at a time; stops at the first fault.
fn read_all(
    reader: &mut Reader,
    bytes: &[u8],
    chunk: usize,
    now: Instant,
) -> Result<Vec<Inbound>, Fault> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(inbound) = reader.next(&mut buf, now)? {
            out.push(inbound);
        }
    }
    assert!(buf.is_empty() || reader.need() > 0 || buf.len() < 14);
    Ok(out)
}

fn text(s: &str) -> Inbound {
    Inbound::Message {
        opcode: OP_TEXT,
        data: Bytes::copy_from_slice(s.as_bytes()),
    }
}

#[test]
fn messages_and_control_frames_are_read_whatever_the_chunking() {
    let mut bytes = frame(true, OP_TEXT, b"!");
    bytes.extend(frame(false, OP_TEXT, "h\u{e9}".as_bytes()));
    bytes.extend(frame(true, OP_PING, b"p"));
    bytes.extend(frame(true, OP_CONTINUATION, b"llo"));
    bytes.extend(frame(true, OP_BINARY, &[7; 70_000]));
    bytes.extend(frame(true, OP_PONG, b""));
    bytes.extend(frame(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k']));
    let roomy = Limits {
        max_message: 1 << 20,
        ..limits(0, 0)
    };
    for chunk in [1, 7, 2048, bytes.len()] {
        let mut r = Reader::new(roomy, false, Instant::now());
        let got = read_all(&mut r, &bytes, chunk, Instant::now()).unwrap();
        assert_eq!(
            got,
            vec![
                text("!"),
                Inbound::Ping(Bytes::from_static(b"p")),
                text("h\u{e9}llo"),
                Inbound::Message {
                    opcode: OP_BINARY,
                    data: Bytes::from(vec![7; 70_000])
                },
                Inbound::Pong,
                Inbound::Close(Some(1000)),
            ],
            "chunks of {chunk}"
        );
    }
}

#[test]
fn every_frame_counts_also_empty_continuations_and_split_headers() {
    let t0 = Instant::now();
    let mut r = Reader::new(limits(5, 0), false, t0);
    let mut bytes = frame(false, OP_TEXT, b"a");
    for _ in 0..4 {
        bytes.extend(frame(false, OP_CONTINUATION, b""));
    }
    assert_eq!(read_all(&mut r, &bytes, 1, t0), Ok(vec![]));
    assert_eq!(
        read_all(&mut r, &frame(true, OP_CONTINUATION, b""), 1, t0),
        Err(Fault::TooManyFrames)
    );
    // A new second starts a new window.
    let mut r = Reader::new(limits(1, 0), false, t0);
    assert!(read_all(&mut r, &frame(true, OP_TEXT, b"!"), 3, t0).is_ok());
    let later = t0 + Duration::from_secs(1);
    assert!(read_all(&mut r, &frame(true, OP_PING, b"ping"), 3, later).is_ok());
    assert_eq!(
        read_all(&mut r, &frame(true, OP_PING, b"ping"), 3, later),
        Err(Fault::TooManyFrames)
    );
}

#[test]
fn fragments_per_message_are_capped_and_control_frames_do_not_count() {
    let t0 = Instant::now();
    let mut r = Reader::new(limits(0, 3), false, t0);
    let mut ok = frame(false, OP_TEXT, b"a");
    ok.extend(frame(true, OP_PING, b""));
    ok.extend(frame(false, OP_CONTINUATION, b"b"));
    ok.extend(frame(true, OP_CONTINUATION, b"c"));
    // A finished message resets the count.
    ok.extend(frame(false, OP_BINARY, b"a"));
    ok.extend(frame(false, OP_CONTINUATION, b""));
    ok.extend(frame(false, OP_CONTINUATION, b""));
    assert_eq!(read_all(&mut r, &ok, 5, t0).map(|v| v.len()), Ok(2));
    assert_eq!(
        read_all(&mut r, &frame(false, OP_CONTINUATION, b""), 5, t0),
        Err(Fault::TooManyFragments)
    );
}

#[test]
fn frames_against_the_rfc_are_protocol_errors() {
    let t0 = Instant::now();
    let mut unmasked = frame(true, OP_TEXT, b"!");
    unmasked[1] &= 0x7f;
    unmasked.truncate(2);
    unmasked.push(b'!');
    let mut long_ping = frame(true, OP_PING, &[0; 126]);
    long_ping.truncate(8);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (unmasked, "unmasked client frame"),
        (frame_with(true, true, OP_TEXT, b"x"), "reserved bits set"),
        (frame(true, 3, b""), "unknown opcode"),
        (frame(false, OP_PING, b""), "fragmented control frame"),
        (long_ping, "control frame over 125 bytes"),
        (
            frame(true, OP_CONTINUATION, b"x"),
            "continuation frame without a message",
        ),
        (
            [frame(false, OP_TEXT, b"a"), frame(true, OP_TEXT, b"b")].concat(),
            "a new message inside a fragmented one",
        ),
        (frame(true, OP_CLOSE, &[3]), "close frame of one byte"),
        (
            vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4],
            "payload length with its top bit set",
        ),
        (frame(true, OP_CLOSE, &[0x03, 0xed]), "invalid close code"),
    ];
    for (bytes, why) in cases {
        let mut r = Reader::new(limits(0, 0), false, t0);
        assert_eq!(
            read_all(&mut r, &bytes, 64, t0),
            Err(Fault::Protocol(why)),
            "{why}"
        );
    }
}

#[test]
fn invalid_text_fails_at_the_first_fragment_that_shows_it() {
    let t0 = Instant::now();
    let mut r = Reader::new(limits(0, 0), false, t0);
    // "é" cut between two fragments is fine; a byte that can never be UTF-8 is not, even
    // before the message ends.
    let mut ok = frame(false, OP_TEXT, &[b'a', 0xc3]);
    ok.extend(frame(true, OP_CONTINUATION, &[0xa9]));
    assert_eq!(read_all(&mut r, &ok, 64, t0), Ok(vec![text("a\u{e9}")]));
    assert_eq!(
        read_all(&mut r, &frame(false, OP_TEXT, &[b'a', 0xff]), 64, t0),
        Err(Fault::InvalidData("invalid UTF-8"))
    );
    let mut r = Reader::new(limits(0, 0), false, t0);
    assert_eq!(
        read_all(&mut r, &frame(true, OP_TEXT, &[b'a', 0xc3]), 64, t0),
        Err(Fault::InvalidData("invalid UTF-8"))
    );
    let mut r = Reader::new(limits(0, 0), false, t0);
    assert_eq!(
        read_all(&mut r, &frame(true, OP_CLOSE, &[0x03, 0xe8, 0xff]), 64, t0),
        Err(Fault::InvalidData("invalid UTF-8 in the close reason"))
    );
}

#[test]
fn the_size_limit_applies_before_the_payload_arrives_and_after_inflating() {
    let t0 = Instant::now();
    let small = Limits {
        max_message: 1024,
        per_second: 0,
        max_fragments: 0,
    };
    let mut r = Reader::new(small, false, t0);
    let big = frame(true, OP_BINARY, &[0; 1025]);
    assert_eq!(read_all(&mut r, &big[..20], 20, t0), Err(Fault::TooBig));
    let mut r = Reader::new(small, false, t0);
    let mut two = frame(false, OP_BINARY, &[0; 1000]);
    two.extend(frame(true, OP_CONTINUATION, &[0; 25]));
    assert_eq!(read_all(&mut r, &two, 64, t0), Err(Fault::TooBig));

    // Compressed: 2 KiB of zeros is a few bytes on the wire, and too big once inflated.
    let zeros = compress(&[0; 2048]).unwrap();
    let mut r = Reader::new(small, true, t0);
    assert_eq!(
        read_all(&mut r, &frame_with(true, true, OP_TEXT, &zeros), 64, t0),
        Err(Fault::TooBig)
    );
    let json = br#"{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}"#;
    let packed = compress(json).unwrap();
    let (first, rest) = packed.split_at(3);
    let mut bytes = frame_with(false, true, OP_TEXT, first);
    bytes.extend(frame(true, OP_CONTINUATION, rest));
    let mut r = Reader::new(small, true, t0);
    assert_eq!(
        read_all(&mut r, &bytes, 5, t0),
        Ok(vec![text(std::str::from_utf8(json).unwrap())])
    );
    assert_eq!(
        read_all(
            &mut r,
            &frame_with(true, true, OP_BINARY, &[0xff; 8]),
            64,
            t0
        ),
        Err(Fault::InvalidData("invalid compressed data"))
    );
}
