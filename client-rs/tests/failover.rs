//! Several gateway URLs (`Client::ws_any`): a dead gateway is skipped at once, a restarting
//! one sends the socket to another, and the reconnect delay applies per round.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use moleculer_ws_client::{Client, Error, Event, ReconnectPolicy, WebSocketConfig};
use serde_json::json;
use support::*;

/// A reconnect delay far longer than any wait here: only the switch to the next URL, which
/// does not wait, can connect in time.
fn slow_backoff() -> WebSocketConfig {
    WebSocketConfig::default().reconnect(ReconnectPolicy::fixed().delay(Duration::from_secs(600)))
}

/// `ws://` URL of a port nothing listens on (a listener bound, then closed).
async fn dead_url(path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("ws://{addr}{path}")
}

#[tokio::test]
async fn dead_gateways_are_skipped_within_the_round() {
    let gw = gateway().await;
    let live = format!("ws://{}/ws/failover", gw.local_addr());
    let (dead1, dead2) = (
        dead_url("/ws/failover").await,
        dead_url("/ws/failover").await,
    );
    let client = Client::new().unwrap();
    // The first URL is picked at random: eight sockets start on every one of them in all
    // likelihood, and each must reach the live one without the 600 s delay.
    for _ in 0..8 {
        let (ws, _events) = client
            .ws_any(&[&dead1, &live, &dead2], slow_backoff())
            .unwrap();
        within(ws.connect()).await.unwrap();
        ws.disconnect().await;
    }
}

#[tokio::test]
async fn a_restarting_gateway_sends_the_socket_to_the_other() {
    let (a, b) = (gateway().await, gateway().await);
    let urls = [
        format!("ws://{}/ws/failover", a.local_addr()),
        format!("ws://{}/ws/failover", b.local_addr()),
    ];
    let (ws, mut events) = Client::new()
        .unwrap()
        .ws_any(&[&urls[0], &urls[1]], slow_backoff())
        .unwrap();
    within(ws.connect()).await.unwrap();
    let on_a = a.count_clients().get("/ws/failover").copied().unwrap_or(0) == 1;
    let (leaving, staying) = if on_a { (a, b) } else { (b, a) };
    leaving.shutdown_for_restart().await;
    let closed = expect_event(&mut events, WAIT, "the close", |e| {
        matches!(e, Event::Closed { .. })
    })
    .await;
    assert!(
        matches!(
            closed,
            Event::Closed {
                code: Some(1012),
                will_reconnect: true,
                ..
            }
        ),
        "{closed:?}"
    );
    match expect_event(&mut events, WAIT, "a reconnect", |e| {
        matches!(e, Event::Reconnecting { .. })
    })
    .await
    {
        Event::Reconnecting { delay, .. } => assert_eq!(delay, Duration::ZERO),
        _ => unreachable!(),
    }
    expect_event(&mut events, WAIT, "the open on the other gateway", is_open).await;
    clients_at(&staying, "/ws/failover", 1).await;
    staying
        .broker()
        .broadcast(
            "websocket.send",
            json!({"path": "/ws/failover", "data": {"from": "the other"}}),
        )
        .await;
    assert_eq!(
        message(&mut events).await.json(),
        Some(&json!({"from": "the other"}))
    );
    ws.disconnect().await;
}

#[tokio::test]
async fn an_empty_list_is_a_clear_error() {
    let err = Client::new()
        .unwrap()
        .ws_any(&[], WebSocketConfig::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidUrl(ref m) if m.contains("at least one")),
        "{err}"
    );
}
