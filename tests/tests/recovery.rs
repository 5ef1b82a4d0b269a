//! Message recovery (README "Message recovery") end to end: the Rust client through the fault
//! proxy against our gateway, plus the wire seen by a client that did not opt in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use moleculer_ws_client::{Client, Event, Events, ReconnectPolicy, WebSocketConfig};
use moleculer_ws_conformance::FaultProxy;
use moleculer_ws_server::{Broker, Gateway, GatewayConfig, RunningGateway};
use serde_json::json;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(15);
const PATH: &str = "/ws/feed";

async fn gateway_at(config: GatewayConfig, addr: &str) -> RunningGateway {
    Gateway::builder()
        .config(config.shutdown_timeout(Duration::from_secs(2)))
        .build()
        .unwrap()
        .bind(addr)
        .await
        .unwrap()
}

fn recovering(delay: Duration) -> WebSocketConfig {
    WebSocketConfig::default()
        .recover(true)
        .reconnect(ReconnectPolicy::fixed().delay(delay))
}

fn client(addr: SocketAddr) -> Client {
    Client::builder()
        .base_url(&format!("http://{addr}/"))
        .build()
        .unwrap()
}

/// Waits for the first event matching `pred`, collecting the messages seen on the way.
async fn until(
    events: &mut Events,
    got: &mut Vec<u64>,
    what: &str,
    mut pred: impl FnMut(&Event, &[u64]) -> bool,
) -> Event {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(e) = events.recv().await {
            if let Event::Message(m) = &e {
                got.push(m.parse::<u64>().unwrap());
            }
            if pred(&e, got) {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        _ => panic!("no {what} within {WAIT:?}; got {} messages", got.len()),
    }
}

/// Broadcasts 1, 2, ... `count` to [`PATH`] at 100 messages per second.
fn broadcaster(broker: Broker, count: u64) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for n in 1..=count {
            tick.tick().await;
            broker
                .broadcast("websocket.send", json!({"path": PATH, "data": n}))
                .await;
        }
    })
}

fn recovery(e: &Event) -> Option<(bool, u64)> {
    match e {
        Event::Recovery {
            recovered,
            replayed,
        } => Some((*recovered, *replayed)),
        _ => None,
    }
}

/// Cuts the client's connection once `cut_after` messages arrived; it comes back after the
/// 2 s reconnect delay while the broadcaster goes on. Returns the messages and the recovery.
async fn cut_for_two_seconds(config: GatewayConfig) -> (Vec<u64>, (bool, u64), bool) {
    let gw = gateway_at(config, "127.0.0.1:0").await;
    let proxy = FaultProxy::start(gw.local_addr()).await.unwrap();
    let (ws, mut events) = client(proxy.local_addr())
        .ws(PATH, recovering(Duration::from_secs(2)))
        .unwrap();
    let mut got = Vec::new();
    ws.connect().await.unwrap();
    let first = until(&mut events, &mut got, "first recovery answer", |e, _| {
        recovery(e).is_some()
    })
    .await;
    assert_eq!(recovery(&first), Some((false, 0)), "first connection");
    let total = 400;
    let sender = broadcaster(gw.broker().clone(), total);
    until(&mut events, &mut got, "50 messages", |_, got| {
        got.len() >= 50
    })
    .await;
    proxy.cut();
    let mut resync = false;
    let answer = until(&mut events, &mut got, "recovery after the cut", |e, _| {
        resync |= *e == Event::Resync;
        recovery(e).is_some()
    })
    .await;
    until(&mut events, &mut got, "the last message", |e, got| {
        resync |= *e == Event::Resync;
        got.last() == Some(&total)
    })
    .await;
    sender.await.unwrap();
    ws.disconnect().await;
    (got, recovery(&answer).unwrap(), resync)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_for_two_seconds_recovers_every_message_once_in_order() {
    let (got, (recovered, replayed), resync) = cut_for_two_seconds(GatewayConfig::default()).await;
    assert!(recovered, "recovered");
    assert!(!resync);
    assert!(
        replayed >= 150,
        "about 2 s of messages replayed: {replayed}"
    );
    assert_eq!(got, (1..=400).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shorter_than_the_outage_is_not_recovered() {
    let config = GatewayConfig::default().recovery_history(20);
    let (got, (recovered, replayed), resync) = cut_for_two_seconds(config).await;
    assert!(!recovered);
    assert_eq!(replayed, 0);
    assert!(resync, "a resync event");
    // What was delivered is still in order and without duplicates.
    assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_restart_is_not_recovered_and_says_resync() {
    let gw = gateway_at(GatewayConfig::default(), "127.0.0.1:0").await;
    let addr = gw.local_addr();
    let (ws, mut events) = client(addr)
        .ws(PATH, recovering(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    ws.connect().await.unwrap();
    until(&mut events, &mut got, "first answer", |e, _| {
        recovery(e).is_some()
    })
    .await;
    gw.broker()
        .broadcast("websocket.send", json!({"path": PATH, "data": 1}))
        .await;
    until(&mut events, &mut got, "message 1", |_, got| got == [1]).await;
    gw.shutdown_for_restart().await;
    let gw = gateway_at(GatewayConfig::default(), &addr.to_string()).await;
    let mut resync = false;
    let answer = until(&mut events, &mut got, "answer after the restart", |e, _| {
        resync |= *e == Event::Resync;
        recovery(e).is_some()
    })
    .await;
    assert_eq!(recovery(&answer), Some((false, 0)));
    until(&mut events, &mut got, "resync", |e, _| {
        resync || *e == Event::Resync
    })
    .await;
    // The new gateway's messages start at its own sequence 1 and are delivered.
    gw.broker()
        .broadcast("websocket.send", json!({"path": PATH, "data": 2}))
        .await;
    until(&mut events, &mut got, "message 2", |_, got| got == [1, 2]).await;
    ws.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_did_not_opt_in_gets_plain_frames() {
    use tokio_tungstenite::tungstenite::Message;
    let gw = gateway_at(GatewayConfig::default(), "127.0.0.1:0").await;
    let addr = gw.local_addr();
    let (mut plain, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{PATH}"))
        .await
        .unwrap();
    let (mut rec, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}{PATH}?recover=1&token=x"))
            .await
            .unwrap();
    let next = |m: Option<Result<Message, _>>| match m {
        Some(Ok(Message::Text(t))) => t.to_string(),
        other => panic!("{other:?}"),
    };
    let status = next(tokio::time::timeout(WAIT, rec.next()).await.unwrap());
    assert!(status.starts_with("#reset:"), "{status}");
    let epoch = status.split(':').nth(1).unwrap().to_owned();
    assert_eq!(epoch.len(), 16);
    assert_eq!(status, format!("#reset:{epoch}:0"));
    gw.broker()
        .broadcast(
            "websocket.send",
            json!({"path": PATH, "data": {"a": [1, "x:y"]}}),
        )
        .await;
    let p = next(tokio::time::timeout(WAIT, plain.next()).await.unwrap());
    assert_eq!(p, r#"{"a":[1,"x:y"]}"#, "byte-for-byte the original");
    let r = next(tokio::time::timeout(WAIT, rec.next()).await.unwrap());
    assert_eq!(r, format!(r#"#{epoch}:1:{{"a":[1,"x:y"]}}"#));
    // Resuming from 0 replays message 1.
    let (mut again, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}{PATH}?recover=1&epoch={epoch}&seq=0"
    ))
    .await
    .unwrap();
    let s = next(tokio::time::timeout(WAIT, again.next()).await.unwrap());
    assert_eq!(s, format!("#recovered:{epoch}:1:1"));
    let r = next(tokio::time::timeout(WAIT, again.next()).await.unwrap());
    assert_eq!(r, format!(r#"#{epoch}:1:{{"a":[1,"x:y"]}}"#));
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("moleculer_ws_recovery_paths 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("moleculer_ws_recovery_history_messages 1\n"));
    assert!(metrics.contains("moleculer_ws_recovery_recovered_total 1\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_another_gateway_is_never_a_silent_recovery() {
    use tokio_tungstenite::tungstenite::Message;
    let a = gateway_at(GatewayConfig::default(), "127.0.0.1:0").await;
    let b = gateway_at(GatewayConfig::default(), "127.0.0.1:0").await;
    let first = |addr: SocketAddr, query: String| async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{PATH}?{query}"))
            .await
            .unwrap();
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => t.to_string(),
            other => panic!("{other:?}"),
        }
    };
    let on_a = first(a.local_addr(), "recover=1".into()).await;
    let epoch_a = on_a.split(':').nth(1).unwrap().to_owned();
    // Both gateways have broadcast once (a cluster shares every websocket.send).
    let _on_b = first(b.local_addr(), "recover=1".into()).await;
    for gw in [&a, &b] {
        gw.broker()
            .broadcast("websocket.send", json!({"path": PATH, "data": 1}))
            .await;
    }
    let moved = first(b.local_addr(), format!("recover=1&epoch={epoch_a}&seq=0")).await;
    assert!(moved.starts_with("#reset:"), "{moved}");
    assert_ne!(moved.split(':').nth(1).unwrap(), epoch_a);
}
