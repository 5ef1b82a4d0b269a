//! Hardening: connection limits, slowloris, floods, slow consumers, idle sockets, malformed
//! frames, REST limits and CORS, fd exhaustion; a healthy control socket keeps working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use moleculer_ws_server::{Gateway, GatewayConfig, Route, RunningGateway};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn socket_limits_answer_503_before_the_upgrade() {
    let gw = start(with(
        GatewayConfig::default()
            .max_sockets(4)
            .max_sockets_per_address(2),
    ))
    .await;
    // The control socket comes from an address of its own and counts in the total.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let stream = sock.connect(gw.local_addr()).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut control, _) = tokio_tungstenite::client_async(ws_url(&gw, "/ws/control"), stream)
        .await
        .unwrap();
    let _a = connect(&gw, "/ws/l").await;
    let _b = connect(&gw, "/ws/l").await;
    assert_eq!(
        try_connect(&gw, "/ws/l", &[]).await.err(),
        Some(503),
        "per address"
    );
    // Another address of the loopback range still gets in, up to the total.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = sock.connect(gw.local_addr()).await.unwrap();
    let (_c, _) = tokio_tungstenite::client_async(ws_url(&gw, "/ws/l"), stream)
        .await
        .unwrap();
    assert_eq!(
        try_connect(&gw, "/ws/l", &[]).await.err(),
        Some(503),
        "total"
    );
    drop(_a);
    eventually("a slot frees when a socket closes", || {
        count(&gw, "/ws/l") == 2
    })
    .await;
    assert!(try_connect(&gw, "/ws/l", &[]).await.is_ok());
    let m = metrics_text(&gw).await;
    assert!(
        m.contains("moleculer_ws_upgrades_refused_total{reason=\"socket_limit\"} 2\n"),
        "{m}"
    );
    healthy(&mut control).await;
}

#[tokio::test]
async fn slowloris_connections_are_closed_after_the_handshake_timeout() {
    let gw = start(with(
        GatewayConfig::default().handshake_timeout(Duration::from_millis(300)),
    ))
    .await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut slow = TcpStream::connect(gw.local_addr()).await.unwrap();
    slow.write_all(b"GET /ws/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    // A head that did not arrive in time: hyper closes the connection without an answer.
    let mut answer = Vec::new();
    within(slow.read_to_end(&mut answer)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&answer), "");
    healthy(&mut control).await;
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let gw = start_default().await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(64 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let mut buf = vec![0u8; 1024];
    let n = within(s.read(&mut buf)).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 431 "), "{head:?}");
    healthy(&mut control).await;
}

#[tokio::test]
async fn a_heartbeat_flood_is_closed_with_1008() {
    let gw = start(with(GatewayConfig::default().max_frames_per_second(20))).await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut flood = connect(&gw, "/ws/flood").await;
    for _ in 0..50 {
        let _ = flood.feed(Message::text("!")).await;
    }
    let _ = flood.flush().await;
    // Up to 20 answers, then the close.
    let code = loop {
        match next(&mut flood).await {
            Message::Text(t) => assert_eq!(t.as_str(), "!"),
            Message::Close(Some(f)) => break u16::from(f.code),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 1008);
    healthy(&mut control).await;
}

#[tokio::test]
async fn idle_sockets_close_after_the_idle_timeout_when_enabled() {
    let config = GatewayConfig::default().idle_timeout(Some(Duration::from_secs(1)));
    let gw = start(with(config)).await;
    let mut idle = connect(&gw, "/ws/idle").await;
    let mut busy = connect(&gw, "/ws/busy").await;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    // The busy socket sends `!` every 300 ms; the idle one nothing.
    let code = loop {
        tokio::select! {
            _ = tick.tick() => healthy(&mut busy).await,
            m = next(&mut idle) => match m {
                Message::Close(Some(f)) => break u16::from(f.code),
                other => panic!("unexpected {other:?}"),
            },
        }
    };
    assert_eq!(code, 1001);
    // Not before the timeout (an upper bound would break on a loaded machine).
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    healthy(&mut busy).await;
    // Off by default: covered by every other test, whose sockets never send `!` for long.
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_within_the_write_timeout() {
    let config = GatewayConfig::default()
        .outbound_queue(100_000)
        .outbound_queue_bytes(usize::MAX / 2)
        .write_timeout(Duration::from_millis(300));
    let gw = start(with(config)).await;
    let mut fast = connect(&gw, "/ws/stall").await;
    let stalled = connect(&gw, "/ws/stall").await; // never reads
    let payload = "w".repeat(60 * 1024);
    for i in 0..400 {
        push(&gw, json!({"path": "/ws/stall", "data": [i, payload]})).await;
        assert!(next_text(&mut fast).await.starts_with(&format!("[{i},")));
        if count(&gw, "/ws/stall") == 1 {
            break;
        }
    }
    eventually("stalled socket dropped", || count(&gw, "/ws/stall") == 1).await;
    // Dropped by the write timeout (the queues are unbounded here), and counted as such.
    let m = metrics_text(&gw).await;
    assert!(
        m.contains("moleculer_ws_sockets_closed_total{reason=\"slow\"} 1\n"),
        "{m}"
    );
    drop(stalled);
}

#[tokio::test]
async fn the_outbound_byte_budget_drops_a_slow_consumer() {
    let config = GatewayConfig::default()
        .outbound_queue(100_000)
        .outbound_queue_bytes(256 * 1024);
    let gw = start(with(config)).await;
    let mut fast = connect(&gw, "/ws/bytes").await;
    let slow = connect(&gw, "/ws/bytes").await;
    let payload = "b".repeat(60 * 1024);
    for i in 0..400 {
        push(&gw, json!({"path": "/ws/bytes", "data": [i, payload]})).await;
        assert!(next_text(&mut fast).await.starts_with(&format!("[{i},")));
        if count(&gw, "/ws/bytes") == 1 {
            break;
        }
    }
    eventually("slow socket dropped by bytes", || {
        count(&gw, "/ws/bytes") == 1
    })
    .await;
    // A message larger than the budget still reaches a socket with an empty queue.
    push(
        &gw,
        json!({"path": "/ws/bytes", "data": "x".repeat(300 * 1024)}),
    )
    .await;
    assert_eq!(next_text(&mut fast).await.len(), 300 * 1024 + 2);
    drop(slow);
}

/// A masked client frame with the given first byte (FIN, RSV bits, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(first, payload)
}

/// The close code in the server's close frame (first frame it sends).
async fn server_close_code(s: &mut TcpStream) -> u16 {
    let mut h = [0u8; 4];
    within(s.read_exact(&mut h)).await.unwrap();
    assert_eq!(h[0], 0x88, "expected a close frame, got {h:?}");
    u16::from_be_bytes([h[2], h[3]])
}

#[tokio::test]
async fn invalid_utf8_closes_1007_and_protocol_errors_close_1002() {
    let gw = start_default().await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut s = raw_socket(&gw, "/ws/raw").await;
    s.write_all(&frame(0x81, &[0xff, 0xfe, 0xfd]))
        .await
        .unwrap();
    assert_eq!(server_close_code(&mut s).await, 1007);
    let mut s = raw_socket(&gw, "/ws/raw").await;
    s.write_all(&frame(0xC1, b"rsv1")).await.unwrap(); // RSV1 without an extension
    assert_eq!(server_close_code(&mut s).await, 1002);
    let mut s = raw_socket(&gw, "/ws/raw").await;
    s.write_all(&frame(0x83, b"op3")).await.unwrap(); // a reserved data opcode
    assert_eq!(server_close_code(&mut s).await, 1002);
    let mut s = raw_socket(&gw, "/ws/raw").await;
    s.write_all(&[0x81, 0x01, b'!']).await.unwrap(); // unmasked: only servers may
    assert_eq!(server_close_code(&mut s).await, 1002);
    healthy(&mut control).await;
}

#[tokio::test]
async fn rest_request_timeout_is_504_and_deep_json_is_400() {
    let config = GatewayConfig::default().request_timeout(Duration::from_millis(200));
    let gw = start(with(config).route(Route::post("/api/slow", "test.slow"))).await;
    let mut control = connect(&gw, "/ws/control").await;
    gw.broker().add_action("test.slow", |_ctx| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(json!(1))
    });
    let c = reqwest::Client::new();
    let resp = c
        .post(http_url(&gw, "/api/slow"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "REQUEST_TIMEOUT");
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let resp = c
        .post(http_url(&gw, "/api/slow"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "INVALID_REQUEST_BODY");
    healthy(&mut control).await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_preflights_when_configured() {
    let c = reqwest::Client::new();
    let preflight = |gw: &RunningGateway| {
        c.request(reqwest::Method::OPTIONS, http_url(gw, "/api/chat/send"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let off = start_default().await;
    let mut control = connect(&off, "/ws/control").await;
    let resp = preflight(&off).await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let on = start(with(
        GatewayConfig::default()
            .cors_origin("https://app.example")
            .sample_chat(true),
    ))
    .await;
    let resp = preflight(&on).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = resp.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let other = c
        .request(reqwest::Method::OPTIONS, http_url(&on, "/api/chat/send"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let posted = c
        .post(http_url(&on, "/api/chat/send"))
        .header("origin", "https://app.example")
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(
        posted.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    healthy(&mut control).await;
}

#[test]
fn bad_limits_are_config_errors() {
    for config in [
        GatewayConfig::default().max_header_size(1000),
        GatewayConfig::default().write_timeout(Duration::ZERO),
        GatewayConfig::default().idle_timeout(Some(Duration::from_millis(10))),
        GatewayConfig::default().cors_origin("bad\norigin"),
    ] {
        assert!(Gateway::builder().config(config).build().is_err());
    }
}
