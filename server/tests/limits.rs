//! The bounds of issue "safe to expose": path length and count, frames counted below
//! messages (continuations, fragments), plain HTTP connections, slow request bodies, and
//! recovery replays per address. Each keeps a healthy control socket and asserts the exact
//! status or close code a client sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn metric(text: &str, name: &str) -> u64 {
    sample(text, name)
}

/// A masked client frame: FIN bit, opcode, payload.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame((u8::from(fin) << 7) | opcode, payload)
}

/// The close code of the server's close frame, skipping the `!` answers before it.
async fn server_close_code(s: &mut TcpStream) -> u16 {
    loop {
        let mut h = [0u8; 2];
        within(s.read_exact(&mut h)).await.unwrap();
        let mut payload = vec![0u8; usize::from(h[1] & 0x7f)];
        within(s.read_exact(&mut payload)).await.unwrap();
        match h[0] {
            0x88 => return u16::from_be_bytes([payload[0], payload[1]]),
            0x81 if payload == b"!" => continue,
            other => panic!("unexpected frame {other:#x} {payload:?}"),
        }
    }
}

#[tokio::test]
async fn a_path_longer_than_the_limit_is_414_before_the_upgrade() {
    let gw = start(with(GatewayConfig::default().max_path_length(32))).await;
    let mut control = connect(&gw, "/ws/control").await;
    let long = format!("/ws/{}", "x".repeat(40));
    assert_eq!(try_connect(&gw, &long, &[]).await.err(), Some(414));
    // The limit is on the decoded path: 9 escaped bytes are 3 bytes.
    let escaped = format!("/ws/{}{}", "x".repeat(20), "%41".repeat(3));
    assert!(try_connect(&gw, &escaped, &[]).await.is_ok());
    let m = metrics_text(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"moleculer_ws_upgrades_refused_total{reason="path_length"}"#
        ),
        1
    );
    assert!(!gw.count_clients().contains_key(&long));
    healthy(&mut control).await;
}

#[tokio::test]
async fn distinct_paths_are_capped_and_a_path_leaves_with_its_last_socket() {
    let gw = start(with(GatewayConfig::default().max_paths(3))).await;
    let mut control = connect(&gw, "/ws/control").await;
    // Churn: 300 unique paths, one after the other: none stays behind.
    for i in 0..300 {
        let mut ws = connect(&gw, &format!("/ws/churn-{i}")).await;
        ws.close(None).await.unwrap();
        let _ = next(&mut ws).await;
    }
    eventually("churned paths are gone", || gw.count_clients().len() == 1).await;
    let _a = connect(&gw, "/ws/a").await;
    let b = connect(&gw, "/ws/b").await;
    assert_eq!(try_connect(&gw, "/ws/c", &[]).await.err(), Some(503));
    // Another socket at a path that is already open still gets in.
    let _a2 = connect(&gw, "/ws/a").await;
    drop(b);
    eventually("/ws/b leaves with its socket", || {
        !gw.count_clients().contains_key("/ws/b")
    })
    .await;
    let _c = try_connect(&gw, "/ws/c", &[])
        .await
        .expect("a path is free again");
    let m = metrics_text(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"moleculer_ws_upgrades_refused_total{reason="paths_full"}"#
        ),
        1
    );
    assert_eq!(metric(&m, "moleculer_ws_paths"), 3);
    healthy(&mut control).await;
}

/// Empty continuation frames assemble no message, yet each is a frame to read and parse: they
/// count against the frame rate like any other.
#[tokio::test]
async fn empty_continuation_frames_count_against_the_frame_rate() {
    let gw = start(with(GatewayConfig::default().max_frames_per_second(20))).await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut s = raw_socket(&gw, "/ws/flood").await;
    let mut bytes = frame(false, 1, b"a");
    for _ in 0..40 {
        bytes.extend(frame(false, 0, b""));
    }
    s.write_all(&bytes).await.unwrap();
    assert_eq!(server_close_code(&mut s).await, 1008);
    let m = metrics_text(&gw).await;
    assert_eq!(
        metric(&m, r#"moleculer_ws_sockets_closed_total{reason="flood"}"#),
        1
    );
    healthy(&mut control).await;
}

#[tokio::test]
async fn a_message_in_too_many_fragments_is_closed_with_1008() {
    let config = GatewayConfig::default()
        .max_frames_per_second(0)
        .max_fragments(4);
    let gw = start(with(config)).await;
    let mut control = connect(&gw, "/ws/control").await;
    // Four fragments are fine (the message is a `!`, answered), a fifth is not.
    let mut s = raw_socket(&gw, "/ws/frag").await;
    let mut ok = frame(false, 1, b"!");
    ok.extend(frame(false, 0, b""));
    ok.extend(frame(false, 0, b""));
    ok.extend(frame(true, 0, b""));
    s.write_all(&ok).await.unwrap();
    let mut answer = [0u8; 3];
    within(s.read_exact(&mut answer)).await.unwrap();
    assert_eq!(answer, [0x81, 1, b'!']);
    let mut bad = frame(false, 1, b"a");
    for _ in 0..4 {
        bad.extend(frame(false, 0, b""));
    }
    s.write_all(&bad).await.unwrap();
    assert_eq!(server_close_code(&mut s).await, 1008);
    healthy(&mut control).await;
}

#[tokio::test]
async fn plain_http_connections_are_capped_and_upgraded_sockets_do_not_count() {
    let gw = start(with(GatewayConfig::default().max_connections(2))).await;
    // Upgraded: counted under the socket limits from then on, not here.
    let mut control = connect(&gw, "/ws/control").await;
    let mut other = connect(&gw, "/ws/other").await;
    // Both are served by their socket tasks: their HTTP connections are over.
    healthy(&mut control).await;
    healthy(&mut other).await;
    let hog1 = TcpStream::connect(gw.local_addr()).await.unwrap();
    let hog2 = TcpStream::connect(gw.local_addr()).await.unwrap();
    let mut third = TcpStream::connect(gw.local_addr()).await.unwrap();
    let mut answer = String::new();
    within(third.read_to_string(&mut answer)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert!(answer.contains("Retry-After: 1"), "{answer:?}");
    healthy(&mut control).await;
    healthy(&mut other).await;
    drop((hog1, hog2));
    // The two slots free with the hogs: requests are served again (until the gateway has
    // seen the hogs go, a request may still get the 503).
    let deadline = tokio::time::Instant::now() + WAIT;
    let m = loop {
        let resp = reqwest::get(http_url(&gw, "/metrics")).await.unwrap();
        if resp.status() == 200 {
            break resp.text().await.unwrap();
        }
        assert_eq!(resp.status(), 503);
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        metric(&m, "moleculer_ws_connections_refused_total") >= 1,
        "{m}"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closes() {
    let config = GatewayConfig::default()
        .trigger(true)
        .body_timeout(Duration::from_millis(200));
    let gw = start(with(config)).await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    s.write_all(
        b"POST /api/websocket/send HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"path\":",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    within(s.read_to_string(&mut answer)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    assert!(answer.contains("BODY_TIMEOUT"), "{answer:?}");
    let m = metrics_text(&gw).await;
    assert_eq!(
        metric(&m, r#"moleculer_ws_rest_requests_total{code="408"}"#),
        1
    );
    healthy(&mut control).await;
}

/// Reconnecting again and again with an old position makes the gateway replay its history:
/// the replayed bytes per address are limited, and a refused reconnect gets 429 with
/// `Retry-After` before the upgrade (it recovers later: nothing is lost).
#[tokio::test]
async fn recovery_replays_are_limited_per_address() {
    let config = GatewayConfig::default()
        .recovery_history_bytes(1000)
        .recovery_replay_rate(10);
    let gw = start(with(config)).await;
    let mut control = connect(&gw, "/ws/control").await;
    let mut first = connect(&gw, "/ws/r?recover=1").await;
    let status = next_text(&mut first).await;
    let epoch = status.split(':').nth(1).unwrap().to_owned();
    for i in 0..10 {
        push(&gw, json!({"path": "/ws/r", "data": format!("{i:0>40}")})).await;
        next_text(&mut first).await;
    }
    // Ten enveloped messages of about 70 bytes: the first replay fits the 1000-byte burst.
    let url = format!("/ws/r?recover=1&epoch={epoch}&seq=0");
    let mut again = connect(&gw, &url).await;
    assert_eq!(
        next_text(&mut again).await,
        format!("#recovered:{epoch}:10:10")
    );
    // The second does not: 429, with the wait.
    let req = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        ws_url(&gw, &url).into_client_request().unwrap()
    };
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let wait: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1, "{wait}");
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    let m = metrics_text(&gw).await;
    assert_eq!(
        metric(
            &m,
            r#"moleculer_ws_upgrades_refused_total{reason="replay_throttled"}"#
        ),
        1
    );
    // A first connect replays nothing and is never limited.
    assert!(try_connect(&gw, "/ws/r?recover=1", &[]).await.is_ok());
    healthy(&mut control).await;
}
