//! Event streams (Server-Sent Events) beside WebSockets: a `GET` with `Accept:
//! text/event-stream` on a path is registered there like a socket (docs/protocol.md section
//! 6.7). Each test asserts what a client reads: the status, the headers, the events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use moleculer_ws_server::{Gateway, GatewayConfig};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn data(text: &str) -> SseEvent {
    SseEvent {
        data: text.to_owned(),
        ..SseEvent::default()
    }
}

#[tokio::test]
async fn a_stream_gets_each_broadcast_as_one_data_event_beside_sockets() {
    let gw = start_default().await;
    let mut stream = sse(&gw, "/ws/chat").await;
    let headers = stream.resp.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    // It opens with a comment, so that the head is not held back.
    assert_eq!(stream.next_item().await, SseItem::Comment(String::new()));
    let mut ws = connect(&gw, "/ws/chat").await;
    assert_eq!(count(&gw, "/ws/chat"), 2);
    assert_eq!(gw.count_clients().len(), 1);
    for value in [json!({"a": 1, "b": [true, null]}), json!("hi"), json!(42)] {
        push(&gw, json!({"path": "/ws/chat", "data": value})).await;
        let text = value.to_string();
        assert_eq!(stream.next_event().await, data(&text));
        assert_eq!(next_text(&mut ws).await, text);
    }
    // Other paths' messages do not reach it.
    push(&gw, json!({"path": "/ws/other", "data": 1})).await;
    push(&gw, json!({"path": "/ws/chat", "data": 2})).await;
    assert_eq!(stream.next_event().await, data("2"));
    let m = metrics_text(&gw).await;
    assert_eq!(sample(&m, "moleculer_ws_event_streams_opened_total"), 1);
    assert_eq!(sample(&m, "moleculer_ws_sockets_opened_total"), 1);
    assert_eq!(sample(&m, r#"moleculer_ws_sockets{path="/ws/chat"}"#), 2);
    drop(stream);
    eventually("the stream leaves its path", || count(&gw, "/ws/chat") == 1).await;
}

#[tokio::test]
async fn a_quiet_stream_gets_a_keep_alive_comment_each_period() {
    let config = GatewayConfig::default().event_stream_keep_alive(Duration::from_millis(100));
    let gw = start(with(config)).await;
    let mut stream = sse(&gw, "/ws/quiet").await;
    for _ in 0..3 {
        assert_eq!(stream.next_item().await, SseItem::Comment(String::new()));
    }
    // A stream that asked for frames: the heartbeat answer `!` as a message, from the start.
    let mut frames = sse(&gw, "/ws/quiet?frames=1").await;
    for _ in 0..3 {
        assert_eq!(frames.next_item().await, SseItem::Event(data("!")));
    }
}

#[tokio::test]
async fn asked_for_frames_a_stream_gets_the_frames_of_a_socket() {
    let gw = start_default().await;
    let mut ws = connect(&gw, "/ws/f?recover=1").await;
    let mut stream = sse(&gw, "/ws/f?recover=1&frames=1").await;
    assert_eq!(stream.next_event().await, data("!"));
    let status = stream.next_event().await;
    let status_ws = next_text(&mut ws).await;
    assert!(status_ws.starts_with("#reset:"), "{status_ws}");
    assert_eq!(status, data(&status_ws));
    push(&gw, json!({"path": "/ws/f", "data": {"a": 1}})).await;
    let frame = next_text(&mut ws).await;
    assert!(frame.ends_with(r#":1:{"a":1}"#), "{frame}");
    assert_eq!(stream.next_event().await, data(&frame));
    // The close says its code and reason in a line.
    let shutdown = tokio::spawn(gw.shutdown());
    let close = stream.next_event().await;
    assert_eq!(close.event.as_deref(), Some("close"));
    assert_eq!(close.data, "1001 server shutting down");
    drop(ws);
    within(shutdown).await.unwrap();
}

#[tokio::test]
async fn with_recover_each_event_has_an_id_and_last_event_id_replays_what_was_missed() {
    let gw = start_default().await;
    let mut first = sse(&gw, "/ws/r?recover=1").await;
    let reset = first.next_event().await;
    assert_eq!(reset.event.as_deref(), Some("reset"));
    let id = reset.id.clone().unwrap();
    let (epoch, seq) = id.split_once(':').unwrap();
    assert_eq!((epoch.len(), seq), (16, "0"));
    assert_eq!(reset.data, format!(r#"{{"epoch":"{epoch}","seq":0}}"#));
    push(&gw, json!({"path": "/ws/r", "data": {"n": 1}})).await;
    let one = first.next_event().await;
    assert_eq!(one.id, Some(format!("{epoch}:1")));
    assert_eq!(one.data, r#"{"n":1}"#);
    assert_eq!(one.event, None);
    // A plain socket at the path gets the plain frame.
    let mut ws = connect(&gw, "/ws/r").await;
    // Away for two messages; back with what EventSource sends by itself.
    drop(first);
    eventually("the stream left", || count(&gw, "/ws/r") == 1).await;
    for n in [2, 3] {
        push(&gw, json!({"path": "/ws/r", "data": {"n": n}})).await;
        assert_eq!(next_text(&mut ws).await, format!(r#"{{"n":{n}}}"#));
    }
    let last = format!("{epoch}:1");
    let mut back = try_sse(&gw, "/ws/r?recover=1", &[("last-event-id", &last)])
        .await
        .unwrap();
    let recovered = back.next_event().await;
    assert_eq!(recovered.event.as_deref(), Some("recovered"));
    assert_eq!(recovered.id, None);
    assert_eq!(
        recovered.data,
        format!(r#"{{"epoch":"{epoch}","seq":3,"replayed":2}}"#)
    );
    for n in [2, 3] {
        let e = back.next_event().await;
        assert_eq!(e.id, Some(format!("{epoch}:{n}")));
        assert_eq!(e.data, format!(r#"{{"n":{n}}}"#));
    }
    push(&gw, json!({"path": "/ws/r", "data": {"n": 4}})).await;
    assert_eq!(back.next_event().await.id, Some(format!("{epoch}:4")));
    // The header wins over a position in the query.
    let query = format!("/ws/r?recover=1&epoch={epoch}&seq=0");
    let mut both = try_sse(&gw, &query, &[("last-event-id", &format!("{epoch}:3"))])
        .await
        .unwrap();
    let status = both.next_event().await;
    assert_eq!(status.event.as_deref(), Some("recovered"));
    assert!(
        status.data.ends_with(r#""seq":4,"replayed":1}"#),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_bad_or_foreign_last_event_id_gets_a_reset_never_an_error() {
    let gw = start_default().await;
    let mut holder = sse(&gw, "/ws/r?recover=1").await;
    let epoch = holder.next_event().await.id.unwrap();
    let epoch = epoch.split_once(':').unwrap().0.to_owned();
    push(&gw, json!({"path": "/ws/r", "data": 1})).await;
    let other = if epoch == "0000000000000001" {
        "0000000000000002:1"
    } else {
        "0000000000000001:1"
    };
    for bad in [
        "",
        "nonsense",
        "12:1",
        &format!("{epoch}:x"),
        &format!("{epoch}:"),
        other,
    ] {
        let mut stream = try_sse(&gw, "/ws/r?recover=1", &[("last-event-id", bad)])
            .await
            .unwrap_or_else(|e| panic!("{bad:?} was refused: {e:?}"));
        let status = stream.next_event().await;
        assert_eq!(status.event.as_deref(), Some("reset"), "{bad:?}");
        assert_eq!(status.id, Some(format!("{epoch}:1")), "{bad:?}");
    }
    // Without `recover=1` the header means nothing: no ids.
    let mut plain = try_sse(&gw, "/ws/r", &[("last-event-id", "x:1")])
        .await
        .unwrap();
    push(&gw, json!({"path": "/ws/r", "data": 2})).await;
    assert_eq!(plain.next_event().await, data("2"));
}

#[tokio::test]
async fn streams_pass_the_checks_of_sockets() {
    let config = GatewayConfig::default()
        .token("s3cret")
        .max_path_length(32)
        .max_sockets(2);
    let gw = start(with(config)).await;
    let refused = try_sse(&gw, "/ws/a", &[]).await.err().unwrap();
    assert_eq!(refused.0, 403);
    assert!(
        refused.1.contains("\"type\":\"FORBIDDEN\""),
        "{}",
        refused.1
    );
    let _a = try_sse(&gw, "/ws/a?token=s3cret", &[]).await.unwrap();
    let _b = try_sse(&gw, "/ws/a", &[("authorization", "Bearer s3cret")])
        .await
        .unwrap();
    let long = format!("/ws/{}?token=s3cret", "x".repeat(40));
    assert_eq!(try_sse(&gw, &long, &[]).await.err().unwrap().0, 414);
    // Streams and sockets share the socket limit.
    assert_eq!(
        try_sse(&gw, "/ws/a?token=s3cret", &[])
            .await
            .err()
            .unwrap()
            .0,
        503
    );
    assert_eq!(
        try_connect(&gw, "/ws/a?token=s3cret", &[]).await.err(),
        Some(503)
    );
    let m = metrics_text_with(&gw, "s3cret").await;
    for (reason, n) in [("forbidden", 1), ("path_length", 1), ("socket_limit", 2)] {
        let name = format!(r#"moleculer_ws_upgrades_refused_total{{reason="{reason}"}}"#);
        assert_eq!(sample(&m, &name), n, "{reason}");
    }
}

async fn metrics_text_with(gw: &moleculer_ws_server::RunningGateway, token: &str) -> String {
    reqwest::Client::new()
        .get(http_url(gw, "/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stream_counts_as_a_socket_not_as_a_plain_connection() {
    let gw = start(with(GatewayConfig::default().max_connections(1))).await;
    let mut stream = sse(&gw, "/ws/a").await;
    assert_eq!(stream.next_item().await, SseItem::Comment(String::new()));
    // The one plain connection is free again: a REST request gets through.
    let resp = reqwest::get(http_url(&gw, "/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_stream_that_never_reads_is_dropped_as_a_slow_consumer() {
    let gw = start(with(GatewayConfig::default().outbound_queue(4))).await;
    let mut fast = sse(&gw, "/ws/flood").await;
    // A client that sends its request and never reads.
    let mut slow = TcpStream::connect(gw.local_addr()).await.unwrap();
    slow.write_all(b"GET /ws/flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    eventually("both streams open", || count(&gw, "/ws/flood") == 2).await;
    let payload = "z".repeat(60 * 1024);
    for i in 0..400 {
        push(&gw, json!({"path": "/ws/flood", "data": [i, payload]})).await;
        let event = fast.next_event().await;
        assert!(event.data.starts_with(&format!("[{i},")));
        if count(&gw, "/ws/flood") == 1 {
            break;
        }
    }
    eventually("the slow stream is dropped", || {
        count(&gw, "/ws/flood") == 1
    })
    .await;
    push(&gw, json!({"path": "/ws/flood", "data": "after"})).await;
    assert_eq!(fast.next_event().await, data("\"after\""));
    let m = metrics_text(&gw).await;
    assert_eq!(
        sample(&m, r#"moleculer_ws_sockets_closed_total{reason="slow"}"#),
        1
    );
}

#[tokio::test]
async fn a_stream_whose_writes_block_is_dropped_after_the_write_timeout() {
    // Queues that never fill: only the write timeout can drop it.
    let config = GatewayConfig::default()
        .outbound_queue(100_000)
        .outbound_queue_bytes(usize::MAX / 2)
        .write_timeout(Duration::from_millis(300));
    let gw = start(with(config)).await;
    let mut fast = sse(&gw, "/ws/stall").await;
    let mut stalled = TcpStream::connect(gw.local_addr()).await.unwrap();
    stalled
        .write_all(b"GET /ws/stall HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    eventually("both streams open", || count(&gw, "/ws/stall") == 2).await;
    let payload = "w".repeat(60 * 1024);
    for i in 0..400 {
        push(&gw, json!({"path": "/ws/stall", "data": [i, payload]})).await;
        assert!(fast.next_event().await.data.starts_with(&format!("[{i},")));
        if count(&gw, "/ws/stall") == 1 {
            break;
        }
    }
    eventually("the stalled stream is dropped", || {
        count(&gw, "/ws/stall") == 1
    })
    .await;
    let m = metrics_text(&gw).await;
    assert_eq!(
        sample(&m, r#"moleculer_ws_sockets_closed_total{reason="slow"}"#),
        1
    );
}

#[tokio::test]
async fn streams_meet_the_path_limit_and_the_replay_budget_as_sockets_do() {
    let config = GatewayConfig::default()
        .max_paths(1)
        .recovery_history_bytes(1000)
        .recovery_replay_rate(10);
    let gw = start(with(config)).await;
    let mut first = sse(&gw, "/ws/r?recover=1").await;
    let epoch = first.next_event().await.id.unwrap();
    let epoch = epoch.split_once(':').unwrap().0.to_owned();
    // The gateway holds its one path: a stream at another is 503, as an upgrade.
    let (status, body) = try_sse(&gw, "/ws/other", &[]).await.err().unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(try_connect(&gw, "/ws/other", &[]).await.err(), Some(503));
    for i in 0..10 {
        push(&gw, json!({"path": "/ws/r", "data": format!("{i:0>40}")})).await;
        first.next_event().await;
    }
    // The first replay fits the budget's burst; the second is 429 with the wait.
    let from = format!("{epoch}:0");
    let mut again = try_sse(&gw, "/ws/r?recover=1", &[("last-event-id", &from)])
        .await
        .unwrap();
    assert_eq!(again.next_event().await.event.as_deref(), Some("recovered"));
    let mut req = reqwest::Client::new()
        .get(http_url(&gw, "/ws/r?recover=1"))
        .header("accept", "text/event-stream")
        .header("last-event-id", from.as_str());
    req = req.timeout(Duration::from_secs(10));
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "{wait}");
    let m = metrics_text(&gw).await;
    for (reason, n) in [("paths_full", 2), ("replay_throttled", 1)] {
        let name = format!(r#"moleculer_ws_upgrades_refused_total{{reason="{reason}"}}"#);
        assert_eq!(sample(&m, &name), n, "{reason}");
    }
}

#[tokio::test]
async fn shutdown_ends_a_stream_with_the_close_event_of_its_code() {
    let gw = start_default().await;
    let mut stream = sse(&gw, "/ws/bye").await;
    assert_eq!(stream.next_item().await, SseItem::Comment(String::new()));
    let shutdown = tokio::spawn(gw.shutdown_for_restart());
    let close = stream.next_event().await;
    assert_eq!(close.event.as_deref(), Some("close"));
    assert_eq!(close.data, r#"{"code":1012,"reason":"service restart"}"#);
    assert_eq!(stream.next_item().await, SseItem::End);
    within(shutdown).await.unwrap();
}

#[tokio::test]
async fn with_event_streams_off_the_request_is_served_like_any_other() {
    let gw = start(with(GatewayConfig::default().event_streams(false))).await;
    let (status, _) = try_sse(&gw, "/ws/a", &[]).await.err().unwrap();
    assert_eq!(status, 404);
    // A plain GET of a socket path is no stream either way.
    let gw = start(Gateway::builder()).await;
    let resp = reqwest::get(http_url(&gw, "/ws/a")).await.unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_wire_is_chunked_text_with_the_events_as_written() {
    let gw = start_default().await;
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    s.write_all(b"GET /ws/raw HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    eventually("open", || count(&gw, "/ws/raw") == 1).await;
    push(&gw, json!({"path": "/ws/raw", "data": {"a": "b"}})).await;
    let want = b"data: {\"a\":\"b\"}\n\n";
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(want.len()).any(|w| w == want) {
        let n = within(s.read(&mut buf)).await.unwrap();
        assert!(n > 0, "ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\n\r\n2\r\n:\n\r\n"), "{text}");
    assert!(text.contains("\r\n11\r\ndata: {\"a\":\"b\"}\n\n"), "{text}");
}
