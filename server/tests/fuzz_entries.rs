//! The fuzz targets' entry points (`fuzz/`, not run in CI) on a few known inputs, so that CI
//! keeps them compiling and shows they go through the gateway's real inbound path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moleculer_ws_server::fuzzing;
use serde_json::json;

/// A masked client text frame.
fn frame(text: &[u8]) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | text.len() as u8, 1, 2, 3, 4];
    f.extend(
        text.iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
    );
    f
}

#[test]
fn inbound_bytes_meet_the_heartbeat_rule_and_the_frame_limit() {
    let mut bytes = frame(b"!");
    bytes.extend(frame(b"hello"));
    bytes.extend(frame(b"!ping"));
    assert_eq!(fuzzing::inbound_stream(&bytes, 1024), 2);
    // 1000 heartbeats at once: the reader stops at the 101st frame of the second (the default
    // limit is 100), as it stops a socket's.
    let flood: Vec<u8> = (0..1000).flat_map(|_| frame(b"!")).collect();
    assert_eq!(fuzzing::inbound_stream(&flood, 1024), 100);
}

#[test]
fn cluster_packets_of_every_kind_go_through_without_panicking() {
    let packets = [
        (
            "MOL.EVENT.me",
            json!({"ver": "4", "sender": "b", "event": "websocket.send",
            "data": {"path": "/x", "data": 1}, "broadcast": true}),
        ),
        (
            "MOL.REQ.me",
            json!({"ver": "4", "sender": "b", "id": "1", "action": "math.add",
            "params": {}, "timeout": 5}),
        ),
        (
            "MOL.RES.me",
            json!({"ver": "4", "sender": "b", "id": "nobody", "success": true}),
        ),
        ("MOL.DISCOVER", json!({"ver": "4", "sender": "b"})),
        (
            "MOL.PING.me",
            json!({"ver": "4", "sender": "b", "time": 1, "id": "p"}),
        ),
        (
            "MOL.HEARTBEAT",
            json!({"ver": "4", "sender": "c", "cpu": 1}),
        ),
        ("MOL.DISCONNECT", json!({"ver": "4", "sender": "b"})),
        (
            "MOL.INFO",
            json!({"ver": "4", "sender": "d", "services": [{"name": "s",
            "events": {"a*a*a*a*a*a*a*a*a*a*b": {}}}]}),
        ),
    ];
    for (topic, packet) in packets {
        fuzzing::cluster_packet(topic, packet.to_string().as_bytes());
    }
    for junk in [&b""[..], b"{", b"[]", b"{\"ver\":4}", &[0xff; 64]] {
        fuzzing::cluster_packet("MOL.INFO", junk);
    }
}
