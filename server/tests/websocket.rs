//! WebSocket rules of docs/protocol.md section 1, with real sockets on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use moleculer_ws_server::{
    BoxFuture, ConnectRequest, Gateway, GatewayConfig, Route, WebSocketFilter,
};
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The filter of moleculer-java-web's own test: checks path and query, accepts after 200 ms.
struct JavaTestFilter {
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl WebSocketFilter for JavaTestFilter {
    fn on_connect<'a>(&'a self, req: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.seen
                .lock()
                .unwrap()
                .push((req.path().to_owned(), req.query().to_owned()));
            tokio::time::sleep(Duration::from_millis(200)).await;
            req.path() == "/ws/test" && req.query() == "key=value"
        })
    }
}

#[tokio::test]
async fn java_gateway_test_case_filter_route_and_exact_123() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let gw = start(
        Gateway::builder()
            .filter(JavaTestFilter { seen: seen.clone() })
            .route(Route::get("/test", "test.send")),
    )
    .await;
    gw.broker().add_action("test.send", |ctx| async move {
        assert_eq!(ctx.params["key"], "value");
        ctx.broker
            .broadcast("websocket.send", json!({"path": "/ws/test", "data": 123}))
            .await;
        Ok(json!({"ok": true}))
    });
    let mut ws = connect(&gw, "/ws/test?key=value").await;
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[("/ws/test".to_owned(), "key=value".to_owned())]
    );
    let resp = reqwest::get(http_url(&gw, "/test?key=value"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(next_text(&mut ws).await, "123");
}

#[tokio::test]
async fn data_is_one_text_frame_of_compact_json_missing_data_is_null() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/data").await;
    let cases = [
        (json!({"path": "/ws/data", "data": 123}), "123"),
        (json!({"path": "/ws/data", "data": "hi"}), "\"hi\""),
        (
            json!({"path": "/ws/data", "data": {"a": 1, "b": [true, null]}}),
            r#"{"a":1,"b":[true,null]}"#,
        ),
        (json!({"path": "/ws/data", "data": [1, "x"]}), r#"[1,"x"]"#),
        // Keys keep the publisher's order, as the Java gateway's ordered trees do.
        (
            json!({"path": "/ws/data", "data": {"z": 1, "a": 2, "m": {"y": 0, "b": 1}}}),
            r#"{"z":1,"a":2,"m":{"y":0,"b":1}}"#,
        ),
        (json!({"path": "/ws/data", "data": null}), "null"),
        (json!({"path": "/ws/data"}), "null"),
    ];
    for (params, expected) in cases {
        push(&gw, params).await;
        assert_eq!(next_text(&mut ws).await, expected);
    }
}

#[tokio::test]
async fn path_without_leading_slash_is_the_same_path_and_query_is_stripped() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/chat?user=a&x=1").await;
    assert_eq!(count(&gw, "/ws/chat"), 1);
    push(&gw, json!({"path": "ws/chat", "data": 1})).await;
    push(&gw, json!({"path": "/ws/chat", "data": 2})).await;
    assert_eq!(next_text(&mut ws).await, "1");
    assert_eq!(next_text(&mut ws).await, "2");
}

#[tokio::test]
async fn paths_are_percent_decoded_exact_and_case_sensitive() {
    let gw = start_default().await;
    let mut spaced = connect(&gw, "/ws/a%20b").await;
    let mut upper = connect(&gw, "/ws/Chat").await;
    let mut slash = connect(&gw, "/ws/chat/").await;
    assert_eq!(count(&gw, "/ws/a b"), 1);
    push(&gw, json!({"path": "/ws/chat", "data": "nobody"})).await;
    push(&gw, json!({"path": "ws/a b", "data": "spaced"})).await;
    push(&gw, json!({"path": "/ws/Chat", "data": "upper"})).await;
    push(&gw, json!({"path": "/ws/chat/", "data": "slash"})).await;
    assert_eq!(next_text(&mut spaced).await, "\"spaced\"");
    assert_eq!(next_text(&mut upper).await, "\"upper\"");
    assert_eq!(next_text(&mut slash).await, "\"slash\"");
}

#[tokio::test]
async fn paths_are_isolated_and_every_socket_of_a_path_receives() {
    let gw = start_default().await;
    let mut a1 = connect(&gw, "/ws/a").await;
    let mut a2 = connect(&gw, "/ws/a").await;
    let mut b = connect(&gw, "/ws/b").await;
    assert_eq!(count(&gw, "/ws/a"), 2);
    push(&gw, json!({"path": "/ws/a", "data": "for a"})).await;
    push(&gw, json!({"path": "/ws/b", "data": "for b"})).await;
    assert_eq!(next_text(&mut a1).await, "\"for a\"");
    assert_eq!(next_text(&mut a2).await, "\"for a\"");
    assert_eq!(next_text(&mut b).await, "\"for b\"");
}

#[tokio::test]
async fn nothing_is_pushed_on_connect_and_pathless_events_send_nothing() {
    let gw = start_default().await;
    let mut root = connect(&gw, "/").await;
    push(&gw, json!({"data": "no path"})).await;
    push(&gw, json!({"path": "", "data": "empty path"})).await;
    push(&gw, json!({"path": 5, "data": "number path"})).await;
    push(&gw, json!({"path": "/", "data": "marker"})).await;
    // The first frame is the marker: nothing came on connect or from the path-less events.
    assert_eq!(next_text(&mut root).await, "\"marker\"");
}

#[tokio::test]
async fn heartbeat_frames_are_answered_with_bang_and_others_ignored() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/hb").await;
    send_text(&mut ws, "!").await;
    assert_eq!(next_text(&mut ws).await, "!");
    send_text(&mut ws, "!xyz").await;
    assert_eq!(next_text(&mut ws).await, "!");
    ws.send(Message::binary(b"!bin".to_vec())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, "!");
    // Other frames: ignored, the socket stays open and answers the next heartbeat.
    send_text(&mut ws, "hello").await;
    send_text(&mut ws, "").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    send_text(&mut ws, "!").await;
    assert_eq!(next_text(&mut ws).await, "!");
    assert_eq!(count(&gw, "/ws/hb"), 1);
}

#[tokio::test]
async fn ping_is_answered_by_pong_with_the_same_payload() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/ping").await;
    ws.send(Message::Ping(b"payload-42".to_vec().into()))
        .await
        .unwrap();
    match next(&mut ws).await {
        Message::Pong(p) => assert_eq!(&p[..], b"payload-42"),
        other => panic!("expected pong, got {other:?}"),
    }
}

#[tokio::test]
async fn close_is_echoed_and_socket_deregistered() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/close").await;
    let other = connect(&gw, "/ws/close").await;
    assert_eq!(count(&gw, "/ws/close"), 2);
    ws.close(None).await.unwrap();
    match next(&mut ws).await {
        Message::Close(None) => {}
        other => panic!("expected the close echo (no code, as sent), got {other:?}"),
    }
    eventually("socket deregistered after close", || {
        count(&gw, "/ws/close") == 1
    })
    .await;
    // TCP loss without a close frame: deregistered at once too, not at the next sweep.
    drop(other);
    eventually("socket deregistered after TCP loss", || {
        count(&gw, "/ws/close") == 0
    })
    .await;
}

#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let gw =
        start(Gateway::builder().config(GatewayConfig::default().max_message_size(1024))).await;
    let mut ws = connect(&gw, "/ws/big").await;
    send_text(&mut ws, &"x".repeat(1024)).await; // at the limit: fine
    send_text(&mut ws, "!").await;
    assert_eq!(next_text(&mut ws).await, "!");
    let _ = ws.send(Message::text("y".repeat(1025))).await;
    match next(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected close 1009, got {other:?}"),
    }
    eventually("oversized socket deregistered", || {
        count(&gw, "/ws/big") == 0
    })
    .await;
}

#[tokio::test]
async fn default_frame_limit_is_64_kib() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/big").await;
    let _ = ws.send(Message::text("y".repeat(64 * 1024 + 1))).await;
    match next(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

struct Refuse;
impl WebSocketFilter for Refuse {
    fn on_connect<'a>(&'a self, req: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        let ok = req.header("x-let-me-in").is_some();
        Box::pin(async move { ok })
    }
}

#[tokio::test]
async fn refused_upgrade_gets_403_and_opens_no_socket() {
    let gw = start(Gateway::builder().filter(Refuse)).await;
    assert_eq!(try_connect(&gw, "/ws/x", &[]).await.err(), Some(403));
    assert!(try_connect(&gw, "/ws/x", &[("x-let-me-in", "1")])
        .await
        .is_ok());
    assert_eq!(count(&gw, "/ws/x"), 1);
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("moleculer_ws_upgrades_refused_total{reason=\"forbidden\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn builtin_filters_token_origin_and_path_prefix() {
    let config = GatewayConfig::default()
        .token("s3cret")
        .allow_origin("http://good.example")
        .allow_path_prefix("/ws/");
    let gw = start(Gateway::builder().config(config)).await;
    assert_eq!(try_connect(&gw, "/ws/a", &[]).await.err(), Some(403));
    assert!(try_connect(&gw, "/ws/a?token=s3cret", &[]).await.is_ok());
    assert!(
        try_connect(&gw, "/ws/a", &[("authorization", "Bearer s3cret")])
            .await
            .is_ok()
    );
    assert_eq!(
        try_connect(&gw, "/other?token=s3cret", &[]).await.err(),
        Some(403)
    );
    assert_eq!(
        try_connect(
            &gw,
            "/ws/a?token=s3cret",
            &[("origin", "http://evil.example")]
        )
        .await
        .err(),
        Some(403)
    );
    assert!(try_connect(
        &gw,
        "/ws/a?token=s3cret",
        &[("origin", "http://good.example")]
    )
    .await
    .is_ok());
}

#[tokio::test]
async fn slow_socket_is_dropped_while_fast_one_keeps_receiving() {
    let gw = start(Gateway::builder().config(GatewayConfig::default().outbound_queue(4))).await;
    let mut fast = connect(&gw, "/ws/flood").await;
    let slow = connect(&gw, "/ws/flood").await; // never read from
    let payload = "z".repeat(60 * 1024);
    let mut received = 0;
    // Lock-step with the fast client, so only the slow one falls behind; enough data to fill
    // the kernel's socket buffers (several MiB on loopback) and then its queue.
    for i in 0..400 {
        push(&gw, json!({"path": "/ws/flood", "data": [i, payload]})).await;
        let text = next_text(&mut fast).await;
        assert!(text.starts_with(&format!("[{i},")));
        received += 1;
        if count(&gw, "/ws/flood") == 1 {
            break;
        }
    }
    eventually("slow socket closed", || count(&gw, "/ws/flood") == 1).await;
    // The fast one still receives after the slow one was dropped.
    push(&gw, json!({"path": "/ws/flood", "data": "after"})).await;
    assert_eq!(next_text(&mut fast).await, "\"after\"");
    assert!(received > 4);
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("moleculer_ws_sockets_closed_total{reason=\"slow\"} 1\n"),
        "{metrics}"
    );
    drop(slow);
}

#[tokio::test]
async fn binary_close_frame_from_server_on_shutdown_is_1001() {
    let gw = start_default().await;
    let addr = gw.local_addr();
    let mut ws = connect(&gw, "/ws/bye").await;
    let shutdown = tokio::spawn(gw.shutdown());
    match next(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected close 1001, got {other:?}"),
    }
    // Finish the handshake so shutdown need not wait for its timeout.
    let _ = ws.next().await;
    within(shutdown).await.unwrap();
    // The port is free again: a new gateway binds the same address.
    let again = Gateway::builder()
        .build()
        .unwrap()
        .bind(addr)
        .await
        .unwrap();
    assert_eq!(again.local_addr(), addr);
    again.shutdown().await;
}

struct SweepSpy(tokio::sync::mpsc::UnboundedSender<Vec<String>>);
impl WebSocketFilter for SweepSpy {
    fn on_connect<'a>(&'a self, _req: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
    fn on_close(&self, paths: &[String]) {
        let _ = self.0.send(paths.to_vec());
    }
}

#[tokio::test]
async fn a_path_goes_with_its_last_socket_and_the_sweep_reports_it_to_on_close() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = GatewayConfig::default().sweep_period(Duration::from_millis(50));
    let gw = start(Gateway::builder().config(config).filter(SweepSpy(tx))).await;
    let mut keep = connect(&gw, "/ws/keep").await;
    let mut gone = connect(&gw, "/ws/gone").await;
    gone.close(None).await.unwrap();
    let _ = next(&mut gone).await;
    let removed = loop {
        let paths = within(rx.recv()).await.unwrap();
        if !paths.is_empty() {
            break paths;
        }
    };
    assert_eq!(removed, vec!["/ws/gone".to_owned()]);
    assert_eq!(
        gw.count_clients().into_keys().collect::<Vec<_>>(),
        ["/ws/keep"]
    );
    send_text(&mut keep, "!").await;
    assert_eq!(next_text(&mut keep).await, "!");
    assert_eq!(count(&gw, "/ws/keep"), 1);
}

/// Echo mode (for protocol test suites such as Autobahn): off by default; when on, text and
/// binary messages come back as the same type, and a `!` is still a heartbeat.
#[tokio::test]
#[cfg(feature = "test-hooks")]
async fn echo_mode_is_off_by_default_and_echoes_data_messages_when_on() {
    assert!(!GatewayConfig::default().echo);

    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/echo").await;
    send_text(&mut ws, "hello").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    send_text(&mut ws, "!").await;
    // Nothing came back before the heartbeat answer: no echo.
    assert_eq!(next_text(&mut ws).await, "!");

    let gw = start(Gateway::builder().config(GatewayConfig::default().echo(true))).await;
    let mut ws = connect(&gw, "/ws/echo").await;
    send_text(&mut ws, "hello").await;
    assert_eq!(next_text(&mut ws).await, "hello");
    send_text(&mut ws, "").await;
    assert_eq!(next_text(&mut ws).await, "");
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    match next(&mut ws).await {
        Message::Binary(b) => assert_eq!(&b[..], &[1, 2, 3]),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    // Everything is echoed, heartbeats too: the suite's messages may start with `!`.
    send_text(&mut ws, "!ping").await;
    assert_eq!(next_text(&mut ws).await, "!ping");
    assert_eq!(count(&gw, "/ws/echo"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_right_after_the_upgrade_is_never_lost() {
    // The socket is registered before the 101 goes out: whatever the client triggers as soon
    // as its connect resolves reaches it.
    let gw = start_default().await;
    for i in 0..300 {
        let mut ws = connect(&gw, "/ws/race").await;
        push(&gw, json!({"path": "/ws/race", "data": i})).await;
        assert_eq!(next_text(&mut ws).await, i.to_string());
    }
}
