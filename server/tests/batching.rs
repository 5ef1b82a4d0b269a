//! Outbound batching and buffer settings: messages queued behind each other are written
//! together (feed + one flush) and still arrive whole, once each and in order, with small
//! read/write buffers and with 0 (write every frame at once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use moleculer_ws_server::{Gateway, GatewayConfig};
use serde_json::json;
use support::*;

async fn burst_arrives_in_order(config: GatewayConfig) {
    let gw = start(Gateway::builder().config(config)).await;
    let mut ws = connect(&gw, "/ws/burst").await;
    let mut other = connect(&gw, "/ws/burst").await;
    // 200 messages pushed back to back (under the queue of 256): the socket task finds many
    // queued at once and writes them in batches; one is larger than the write buffer.
    for i in 0..200 {
        let data = if i == 100 {
            json!({"i": i, "pad": "x".repeat(20_000)})
        } else {
            json!({"i": i})
        };
        push(&gw, json!({"path": "ws/burst", "data": data})).await;
    }
    for ws in [&mut ws, &mut other] {
        for i in 0..200 {
            let text = within(next_text(ws)).await;
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["i"], i, "message {i} out of order or missing");
        }
        // The heartbeat still works after the burst.
        send_text(ws, "!").await;
        assert_eq!(within(next_text(ws)).await, "!");
    }
}

#[tokio::test]
async fn queued_burst_arrives_whole_and_in_order_with_default_buffers() {
    assert_eq!(GatewayConfig::default().ws_read_buffer, 2 * 1024);
    assert_eq!(GatewayConfig::default().ws_write_buffer, 8 * 1024);
    burst_arrives_in_order(GatewayConfig::default()).await;
}

#[tokio::test]
async fn queued_burst_arrives_whole_and_in_order_with_unbuffered_writes() {
    burst_arrives_in_order(
        GatewayConfig::default()
            .ws_read_buffer(256)
            .ws_write_buffer(0),
    )
    .await;
}

#[tokio::test]
async fn large_inbound_message_is_read_through_a_small_read_buffer() {
    let gw = start(Gateway::builder().config(GatewayConfig::default().ws_read_buffer(256))).await;
    let mut ws = connect(&gw, "/ws/big").await;
    // 60 KiB starting with '!' (a heartbeat, under the 64 KiB limit): read in 256-byte steps.
    send_text(&mut ws, &format!("!{}", "y".repeat(60 * 1024))).await;
    assert_eq!(within(next_text(&mut ws)).await, "!");
}

#[test]
fn too_small_read_buffer_is_refused() {
    let err = Gateway::builder()
        .config(GatewayConfig::default().ws_read_buffer(16))
        .build()
        .err()
        .expect("refused");
    assert!(err.to_string().contains("ws_read_buffer"), "{err}");
}

/// The control lane: a `!` waits for at most the write in progress, not for what is queued
/// behind it. The socket does not read while 200 messages of 64 KiB (12.5 MiB, more than the
/// kernel's buffers on both sides can hold) are pushed, so most of them wait in the gateway's
/// queue; then it sends `!` and reads: the answer comes before the queued rest.
#[tokio::test]
async fn a_heartbeat_is_answered_ahead_of_the_broadcasts_queued_for_its_socket() {
    const COUNT: usize = 200;
    let config = GatewayConfig::default()
        .compression(false)
        .outbound_queue(COUNT)
        .outbound_queue_bytes(64 << 20)
        // The socket reads nothing while the messages are pushed: no slow-consumer close.
        .write_timeout(std::time::Duration::from_secs(300));
    let gw = start(Gateway::builder().config(config)).await;
    let mut ws = connect(&gw, "/ws/lane").await;
    let pad = "x".repeat(64 * 1024);
    for i in 0..COUNT {
        push(
            &gw,
            json!({"path": "ws/lane", "data": {"i": i, "pad": pad}}),
        )
        .await;
    }
    send_text(&mut ws, "!").await;
    let mut before = 0;
    loop {
        let text = within(next_text(&mut ws)).await;
        if text == "!" {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["i"], before, "message {before} out of order or missing");
        before += 1;
    }
    assert!(
        before < COUNT,
        "the answer waited for every queued broadcast"
    );
    for i in before..COUNT {
        let v: serde_json::Value = serde_json::from_str(&within(next_text(&mut ws)).await).unwrap();
        assert_eq!(v["i"], i, "message {i} out of order or missing");
    }
    eprintln!("`!` answered after {before} of {COUNT} messages");
}
