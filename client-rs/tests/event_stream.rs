//! The event-stream transport of the Rust client (`Transport::EventStream`, docs/protocol.md
//! section 6.7) against the reference gateway: the same API as over a WebSocket (events,
//! state, stats, recovery), through an HTTP `CONNECT` proxy and TLS, the heartbeat on
//! keep-alives, and the gateway's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use moleculer_ws_client::{
    Carrier, Client, ConnectionState, Event, SessionError, Transport, WebSocketConfig,
};
use moleculer_ws_server::GatewayConfig;
use serde_json::json;
use support::certs::TestCa;
use support::proxy::{ProxyOptions, TestProxy};
use support::*;

fn sse() -> WebSocketConfig {
    fast().transport(Transport::EventStream)
}

/// The gateway's `/metrics` text.
async fn metrics(gw: &moleculer_ws_server::RunningGateway) -> String {
    reqwest::get(format!("http://{}/metrics", gw.local_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A gateway whose streams keep alive every 50 ms (below the clients' 300 ms heartbeat).
async fn lively(config: GatewayConfig) -> moleculer_ws_server::RunningGateway {
    gateway_at(config.event_stream_keep_alive(ms(50)), "127.0.0.1:0").await
}

#[tokio::test]
async fn a_stream_delivers_like_a_socket_and_its_keep_alives_keep_the_heartbeat() {
    let gw = lively(GatewayConfig::default()).await;
    let client = client(&gw);
    let (ws, mut events) = client
        .ws("/ws/sse", hb().transport(Transport::EventStream))
        .unwrap();
    within(ws.connect()).await.unwrap();
    clients_at(&gw, "/ws/sse", 1).await;
    let opened = metrics(&gw).await;
    assert!(
        opened.contains("moleculer_ws_event_streams_opened_total 1\n"),
        "{opened}"
    );
    for n in 0..3 {
        gw.broker()
            .broadcast(
                "websocket.send",
                json!({"path": "/ws/sse", "data": {"n": n}}),
            )
            .await;
        assert_eq!(message(&mut events).await.json(), Some(&json!({"n": n})));
    }
    // Six heartbeat intervals: the keep-alives hold the link; no `!` goes out (the gateway
    // answers none) and nothing closes.
    let quiet = events_within(&mut events, ms(1800)).await;
    assert!(
        !quiet
            .iter()
            .any(|e| matches!(e, Event::Closed { .. } | Event::HeartbeatRoundTrip { .. })),
        "{quiet:?}"
    );
    let m = metrics(&gw).await;
    assert!(
        m.contains("moleculer_ws_heartbeats_answered_total 0\n"),
        "{m}"
    );
    assert_eq!(ws.state(), ConnectionState::Open);
    assert_eq!(ws.stats().messages_received, 3);
    ws.disconnect().await;
    clients_at(&gw, "/ws/sse", 0).await;
}

#[tokio::test]
async fn a_silent_stream_is_lost_and_reopened() {
    // Keep-alives every 5 s (the default), the client's heartbeat 300 + 100 ms: lost.
    let gw = gateway().await;
    let client = client(&gw);
    let (ws, mut events) = client
        .ws("/ws/quiet", hb().transport(Transport::EventStream))
        .unwrap();
    within(ws.connect()).await.unwrap();
    expect_event(&mut events, WAIT, "the loss", |e| {
        matches!(e, Event::Error(SessionError::HeartbeatLost))
    })
    .await;
    expect_event(&mut events, WAIT, "the reopen", is_open).await;
    ws.disconnect().await;
}

#[tokio::test]
async fn a_stream_through_an_http_connect_proxy_to_a_tls_gateway() {
    let ca = TestCa::new("moleculer-ws event stream test CA");
    let cert = ca.issue();
    let config = GatewayConfig::default().tls_pem_files(&cert.cert_path, &cert.key_path);
    let gw = lively(config).await;
    let proxy = TestProxy::start(ProxyOptions::default()).await;
    let client = Client::builder()
        .base_url(&format!("https://localhost:{}/", gw.local_addr().port()))
        .proxy(&proxy.url())
        .add_root_certificate_pem(ca.pem.as_bytes())
        .build()
        .unwrap();
    let (ws, mut events) = client.ws("/ws/tunnel", sse()).unwrap();
    within(ws.connect()).await.unwrap();
    assert_eq!(proxy.tunnels(), 1);
    clients_at(&gw, "/ws/tunnel", 1).await;
    gw.broker()
        .broadcast(
            "websocket.send",
            json!({"path": "/ws/tunnel", "data": "through"}),
        )
        .await;
    assert_eq!(message(&mut events).await.text(), r#""through""#);
    ws.disconnect().await;
}

#[tokio::test]
async fn the_token_goes_as_a_header_and_a_refusal_stops_as_over_a_socket() {
    let gw = lively(GatewayConfig::default().token("s3cret")).await;
    let refused = Client::builder()
        .base_url(&base(gw.local_addr()))
        .build()
        .unwrap();
    let (ws, mut events) = refused.ws("/ws/t", sse()).unwrap();
    let err = within(ws.connect()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    expect_event(&mut events, WAIT, "stopped", |e| {
        matches!(
            e,
            Event::Stopped(Some(SessionError::Rejected { status: 403 }))
        )
    })
    .await;
    let allowed = Client::builder()
        .base_url(&base(gw.local_addr()))
        .token("s3cret")
        .build()
        .unwrap();
    let (ws, _events) = allowed.ws("/ws/t", sse()).unwrap();
    within(ws.connect()).await.unwrap();
    clients_at(&gw, "/ws/t", 1).await;
    ws.disconnect().await;
}

#[tokio::test]
async fn a_restart_closes_with_its_code_and_recovery_reports_the_new_epoch() {
    let gw = lively(GatewayConfig::default()).await;
    let addr = gw.local_addr();
    let client = client(&gw);
    let (ws, mut events) = client.ws("/ws/rec", sse().recover(true)).unwrap();
    within(ws.connect()).await.unwrap();
    let first = expect_event(&mut events, WAIT, "the recovery status", |e| {
        matches!(e, Event::Recovery { .. })
    })
    .await;
    assert_eq!(
        first,
        Event::Recovery {
            recovered: false,
            replayed: 0
        }
    );
    gw.broker()
        .broadcast("websocket.send", json!({"path": "/ws/rec", "data": 1}))
        .await;
    assert_eq!(message(&mut events).await.text(), "1");
    gw.shutdown_for_restart().await;
    let closed = expect_event(&mut events, WAIT, "the close", |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert_eq!(
        closed,
        Event::Closed {
            code: Some(1012),
            reason: "service restart".into(),
            will_reconnect: true
        }
    );
    let gw = gateway_at(
        GatewayConfig::default().event_stream_keep_alive(ms(50)),
        &addr.to_string(),
    )
    .await;
    expect_event(&mut events, WAIT, "resync", |e| matches!(e, Event::Resync)).await;
    gw.broker()
        .broadcast("websocket.send", json!({"path": "/ws/rec", "data": 2}))
        .await;
    assert_eq!(message(&mut events).await.text(), "2");
    ws.disconnect().await;
}

#[tokio::test]
async fn auto_opens_a_websocket_where_upgrades_pass() {
    let gw = lively(GatewayConfig::default()).await;
    let client = client(&gw);
    let (ws, mut events) = client
        .ws("/ws/auto", fast().transport(Transport::Auto))
        .unwrap();
    within(ws.connect()).await.unwrap();
    let seen = events_within(&mut events, ms(200)).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Transport(Carrier::EventStream))),
        "{seen:?}"
    );
    let m = metrics(&gw).await;
    assert!(m.contains("moleculer_ws_sockets_opened_total 1\n"), "{m}");
    assert!(
        m.contains("moleculer_ws_event_streams_opened_total 0\n"),
        "{m}"
    );
    ws.disconnect().await;
}
