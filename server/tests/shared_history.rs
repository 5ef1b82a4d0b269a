//! The shared recovery history (README "Message recovery", cluster model): gateways on one
//! NATS JetStream or Redis hand out the same `<epoch>:<seq>` for the same message, so a client
//! recovers from any of them; every message is stored once; an engine away means `#reset`,
//! never a silent hole. Real `nats-server -js` and `redis-server` processes on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use moleculer_ws_server::{
    Broker, Cluster, ClusterHandle, Gateway, GatewayConfig, RunningGateway, SharedHistory,
};
use serde_json::{json, Value};
use support::servers::{NatsServer, RedisServer};
use support::*;

async fn gateway(node: &str) -> RunningGateway {
    start(
        Gateway::builder()
            .config(GatewayConfig::default().trigger(true))
            .broker(Broker::new(node)),
    )
    .await
}

async fn join(gw: &RunningGateway, url: &str, shared: SharedHistory) -> ClusterHandle {
    Cluster::builder()
        .transporter(url)
        .heartbeat_interval(Duration::from_millis(200))
        .max_reconnect_delay(Duration::from_millis(300))
        .shared_history(shared)
        .start(gw.broker())
        .await
        .unwrap()
}

async fn trigger(gw: &RunningGateway, path: &str, data: Value) {
    let resp = reqwest::Client::new()
        .post(http_url(gw, "/api/websocket/send"))
        .json(&json!({"path": path, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

/// `(epoch, seq)` of a `#reset:<epoch>:<seq>` frame.
fn reset_of(frame: &str) -> (String, u64) {
    let rest = frame
        .strip_prefix("#reset:")
        .unwrap_or_else(|| panic!("expected #reset, got {frame}"));
    let (epoch, seq) = rest.split_once(':').unwrap();
    (epoch.to_owned(), seq.parse().unwrap())
}

async fn metric(gw: &RunningGateway, name: &str) -> u64 {
    let text = metrics_text(gw).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Waits until `gw` mirrors `n` messages.
async fn mirrors(gw: &RunningGateway, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(gw, "moleculer_ws_recovery_history_messages").await != n {
        assert!(tokio::time::Instant::now() < deadline, "never mirrored {n}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two gateways, one engine: the same positions on both, each message stored once, and a
/// client cut from A recovers on B exactly what it missed.
async fn recovery_across_gateways(url: &str) {
    let a = gateway("gw-a").await;
    let b = gateway("gw-b").await;
    let _ca = join(&a, url, SharedHistory::On).await;
    let cb = join(&b, url, SharedHistory::On).await;
    within(cb.wait_for_nodes(|ids| ids.iter().any(|n| n == "gw-a"))).await;
    assert_eq!(metric(&a, "moleculer_ws_recovery_shared").await, 1);

    let mut x = connect(&a, "/ws/h?recover=1").await;
    let (epoch, seq) = reset_of(&next_text(&mut x).await);
    assert_eq!(seq, 0);
    trigger(&a, "/ws/h", json!(1)).await;
    assert_eq!(next_text(&mut x).await, format!("#{epoch}:1:1"));
    mirrors(&b, 1).await;
    let mut y = connect(&b, "/ws/h?recover=1").await;
    assert_eq!(next_text(&mut y).await, format!("#reset:{epoch}:1"));

    // Broadcasts from both gateways: both clients see the same frames, in the same order,
    // with every sequence number once.
    for n in 2..=10 {
        let gw = if n % 2 == 0 { &a } else { &b };
        trigger(gw, "/ws/h", json!(n)).await;
    }
    let (mut on_x, mut on_y) = (Vec::new(), Vec::new());
    for _ in 2..=10 {
        on_x.push(next_text(&mut x).await);
        on_y.push(next_text(&mut y).await);
    }
    assert_eq!(on_x, on_y);
    let mut payloads = Vec::new();
    for (i, frame) in on_x.iter().enumerate() {
        let prefix = format!("#{epoch}:{}:", i + 2);
        let body = frame
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{frame}"));
        payloads.push(body.parse::<u64>().unwrap());
    }
    payloads.sort_unstable();
    assert_eq!(payloads, (2..=10).collect::<Vec<_>>());

    // x leaves A; ten more through B; x comes back on B and gets exactly those ten.
    drop(x);
    for n in 11..=20 {
        trigger(&b, "/ws/h", json!(n)).await;
    }
    for n in 11..=20 {
        assert_eq!(next_text(&mut y).await, format!("#{epoch}:{n}:{n}"));
    }
    let mut x = connect(&b, &format!("/ws/h?recover=1&epoch={epoch}&seq=10")).await;
    assert_eq!(next_text(&mut x).await, format!("#recovered:{epoch}:20:10"));
    for n in 11..=20 {
        assert_eq!(next_text(&mut x).await, format!("#{epoch}:{n}:{n}"));
    }
    trigger(&a, "/ws/h", json!(21)).await;
    assert_eq!(next_text(&mut x).await, format!("#{epoch}:21:21"));
    assert_eq!(next_text(&mut y).await, format!("#{epoch}:21:21"));
    // Stored once each: both mirrors hold 21 messages, and a third gateway started now reads
    // the same 21 back from the engine and recovers a client from the start.
    mirrors(&a, 21).await;
    mirrors(&b, 21).await;
    let c = gateway("gw-c").await;
    let _cc = join(&c, url, SharedHistory::On).await;
    assert_eq!(
        metric(&c, "moleculer_ws_recovery_history_messages").await,
        21
    );
    let mut z = connect(&c, &format!("/ws/h?recover=1&epoch={epoch}&seq=19")).await;
    assert_eq!(next_text(&mut z).await, format!("#recovered:{epoch}:21:2"));
    assert_eq!(next_text(&mut z).await, format!("#{epoch}:20:20"));
    assert_eq!(next_text(&mut z).await, format!("#{epoch}:21:21"));
    // Plain sockets are untouched: the bare frame, at once.
    let mut plain = connect(&c, "/ws/h").await;
    trigger(&b, "/ws/h", json!(22)).await;
    assert_eq!(next_text(&mut plain).await, "22");
    assert_eq!(next_text(&mut z).await, format!("#{epoch}:22:22"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_recovery_across_gateways() {
    let nats = NatsServer::start_jetstream();
    recovery_across_gateways(&nats.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_recovery_across_gateways() {
    let redis = RedisServer::start();
    recovery_across_gateways(&redis.url()).await;
}
