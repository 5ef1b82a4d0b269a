//! permessage-deflate (RFC 7692) with real sockets on 127.0.0.1:0: what is negotiated, which
//! frames go out compressed, and what a client's compressed frames may do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use moleculer_ws_server::{Gateway, GatewayConfig};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What browsers offer.
const BROWSER_OFFER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
const ANSWER: &str =
    "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The next frame the gateway sends: its first byte and payload.
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    within(s.read_exact(&mut h)).await.unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).await.unwrap();
            usize::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).await.unwrap();
            usize::try_from(u64::from_be_bytes(l)).unwrap()
        }
        n => usize::from(n),
    };
    assert_eq!(h[1] & 0x80, 0, "a server frame is not masked");
    let mut payload = vec![0; len];
    within(s.read_exact(&mut payload)).await.unwrap();
    (h[0], payload)
}

/// A masked client frame.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(first, payload)
}

/// `data` compressed as a client does (one message, the trailing 00 00 ff ff removed).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 20);
    let mut input = data.to_vec();
    input.extend([0, 0, 0xff, 0xff]);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(d.total_in() as usize, input.len());
    out
}

/// A JSON message of about 1 KiB, as pushes are.
fn kib_json(n: usize) -> serde_json::Value {
    json!({"seq": n, "items": (0..20).map(|i| json!({"id": i, "name": format!("item {i}"), "price": i * 3, "tags": ["new", "sale"]})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn a_broadcast_goes_compressed_where_negotiated_and_plain_elsewhere() {
    let gw = start_default().await;
    let (mut deflating, head) = raw_socket_with(&gw, "/ws/z", BROWSER_OFFER).await;
    assert!(head.to_ascii_lowercase().contains(ANSWER), "{head}");
    let (mut plain, head) = raw_socket_with(&gw, "/ws/z", "").await;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    let mut tungstenite = connect(&gw, "/ws/z").await;

    let data = kib_json(1);
    let text = serde_json::to_string(&data).unwrap();
    assert!((1000..1400).contains(&text.len()), "{}", text.len());
    push(&gw, json!({"path": "/ws/z", "data": data})).await;
    let (first, payload) = read_frame(&mut deflating).await;
    assert_eq!(first, 0xc1, "FIN, RSV1 (compressed), text");
    assert_eq!(inflate(&payload), text.as_bytes());
    assert!(
        payload.len() * 10 <= text.len() * 4,
        "{} of {}",
        payload.len(),
        text.len()
    );
    assert_eq!(
        read_frame(&mut plain).await,
        (0x81, text.clone().into_bytes())
    );
    assert_eq!(next_text(&mut tungstenite).await, text);

    // Under the threshold (256 B by default): plain on every socket.
    push(&gw, json!({"path": "/ws/z", "data": "short"})).await;
    assert_eq!(
        read_frame(&mut deflating).await,
        (0x81, b"\"short\"".to_vec())
    );
    assert_eq!(read_frame(&mut plain).await, (0x81, b"\"short\"".to_vec()));
}

#[tokio::test]
async fn compressed_heartbeats_are_answered_and_a_deflate_bomb_closes_1009() {
    let gw = start_default().await;
    let (mut s, _) = raw_socket_with(&gw, "/ws/bomb", BROWSER_OFFER).await;
    // Browsers compress their `!` too.
    s.write_all(&frame(0xc1, &deflate(b"!"))).await.unwrap();
    assert_eq!(read_frame(&mut s).await, (0x81, b"!".to_vec()));
    // 10 MiB of spaces is about 10 KiB compressed, under the 64 KiB limit on the wire, and
    // far over it inflated.
    let bomb = deflate(&vec![b' '; 10 << 20]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    s.write_all(&frame(0xc1, &bomb)).await.unwrap();
    let (first, payload) = read_frame(&mut s).await;
    assert_eq!(first, 0x88);
    assert_eq!(payload[..2], 1009u16.to_be_bytes());
    assert_eq!(&payload[2..], b"message too big");
    let metrics = metrics_text(&gw).await;
    assert_eq!(
        sample(
            &metrics,
            "moleculer_ws_sockets_closed_total{reason=\"oversize\"}"
        ),
        1
    );
    // Invalid compressed data: 1007.
    let (mut s, _) = raw_socket_with(&gw, "/ws/bomb", BROWSER_OFFER).await;
    s.write_all(&frame(0xc1, &[0xff; 8])).await.unwrap();
    let (first, payload) = read_frame(&mut s).await;
    assert_eq!((first, &payload[..2]), (0x88, &1007u16.to_be_bytes()[..]));
}

#[tokio::test]
async fn with_compression_off_offers_are_declined_and_compressed_frames_refused() {
    let gw = start(Gateway::builder().config(GatewayConfig::default().compression(false))).await;
    let (mut s, head) = raw_socket_with(&gw, "/ws/off", BROWSER_OFFER).await;
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{head}"
    );
    push(&gw, json!({"path": "/ws/off", "data": kib_json(2)})).await;
    let (first, _) = read_frame(&mut s).await;
    assert_eq!(first, 0x81);
    s.write_all(&frame(0xc1, &deflate(b"!"))).await.unwrap();
    let (first, payload) = read_frame(&mut s).await;
    assert_eq!((first, &payload[..2]), (0x88, &1002u16.to_be_bytes()[..]));
}

#[tokio::test]
async fn a_smaller_server_window_is_honoured_and_the_threshold_is_configurable() {
    let gw =
        start(Gateway::builder().config(GatewayConfig::default().compression_threshold(16))).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n";
    let (mut s, head) = raw_socket_with(&gw, "/ws/w", offer).await;
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("{ANSWER}; server_max_window_bits=9")),
        "{head}"
    );
    // A browser's socket on the same path: the full window.
    let (mut full, _) = raw_socket_with(&gw, "/ws/w", BROWSER_OFFER).await;
    // Longer than the 512 B window: plain there, compressed on the other socket.
    let long = kib_json(3);
    push(&gw, json!({"path": "/ws/w", "data": long})).await;
    let (first, payload) = read_frame(&mut s).await;
    assert_eq!((first, payload), (0x81, serde_json::to_vec(&long).unwrap()));
    let (first, payload) = read_frame(&mut full).await;
    assert_eq!(first, 0xc1);
    assert_eq!(inflate(&payload), serde_json::to_vec(&long).unwrap());
    // Shorter, and over the 16 B threshold: compressed, the same bytes on both sockets (one
    // compression for the path; a message of at most 512 B cannot refer further back).
    let short = json!({"text": "hello hello hello hello"});
    push(&gw, json!({"path": "/ws/w", "data": short})).await;
    let (first, payload) = read_frame(&mut s).await;
    assert_eq!(first, 0xc1);
    assert_eq!(inflate(&payload), serde_json::to_vec(&short).unwrap());
    assert_eq!(read_frame(&mut full).await, (0xc1, payload));
}
