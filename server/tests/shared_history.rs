//! The shared recovery history (README "Message recovery", cluster model): gateways on one
//! NATS JetStream or Redis hand out the same `<epoch>:<seq>` for the same message, so a client
//! recovers from any of them (an event stream too, with `Last-Event-ID`); every message is
//! stored once; an engine away means `#reset`, never a silent hole. Real `nats-server -js` and `redis-server` processes on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use moleculer_ws_server::{
    Broker, Cluster, ClusterHandle, Gateway, GatewayConfig, RunningGateway, SharedHistory,
};
use serde_json::json;
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

/// `(epoch, seq)` of a `#reset:<epoch>:<seq>` frame.
fn reset_of(frame: &str) -> (String, u64) {
    let rest = frame
        .strip_prefix("#reset:")
        .unwrap_or_else(|| panic!("expected #reset, got {frame}"));
    let (epoch, seq) = rest.split_once(':').unwrap();
    (epoch.to_owned(), seq.parse().unwrap())
}

async fn metric(gw: &RunningGateway, name: &str) -> u64 {
    sample(&metrics_text(gw).await, name)
}

const WRITER: &str = "moleculer_ws_cluster_history_writer";

/// A gauge of the cluster's metrics.
fn cluster_metric(cluster: &ClusterHandle, name: &str) -> u64 {
    sample(&cluster.render_metrics(), name)
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

    // The path's history starts in the engine: both gateways announce the same epoch before
    // any message.
    let mut x = connect(&a, "/ws/h?recover=1").await;
    let (epoch, seq) = reset_of(&next_text(&mut x).await);
    assert_eq!(seq, 0);
    let mut y = connect(&b, "/ws/h?recover=1").await;
    assert_eq!(next_text(&mut y).await, format!("#reset:{epoch}:0"));
    trigger(&a, "/ws/h", json!(1)).await;
    assert_eq!(next_text(&mut x).await, format!("#{epoch}:1:1"));
    assert_eq!(next_text(&mut y).await, format!("#{epoch}:1:1"));

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
    // An event stream recovers across gateways with what a browser's `EventSource` sends back
    // by itself: the id of the last event it saw (on another gateway).
    mirrors(&a, 22).await;
    let last = format!("{epoch}:20");
    let mut stream = try_sse(&a, "/ws/h?recover=1", &[("last-event-id", &last)])
        .await
        .unwrap();
    let status = stream.next_event().await;
    assert_eq!(status.event.as_deref(), Some("recovered"));
    assert_eq!(
        status.data,
        format!(r#"{{"epoch":"{epoch}","seq":22,"replayed":2}}"#)
    );
    for n in [21, 22] {
        let e = stream.next_event().await;
        assert_eq!(e.id, Some(format!("{epoch}:{n}")));
        assert_eq!(e.data, n.to_string());
    }
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

/// What a recovering client sees, checked frame by frame: every message follows the position
/// announced last (`#reset`, `#recovered`) or the message before it, with no hole and no
/// repeat; returns the payload of each message.
#[derive(Default)]
struct Follower {
    at: Option<(String, u64)>,
    frames: Vec<String>,
    payloads: Vec<u64>,
    resets: usize,
}

impl Follower {
    fn read(&mut self, frame: &str) {
        self.frames.push(frame.to_owned());
        if let Some(rest) = frame.strip_prefix("#reset:") {
            let (epoch, seq) = rest.split_once(':').unwrap();
            let seq: u64 = seq.parse().unwrap();
            if let Some((at_epoch, at_seq)) = &self.at {
                // Within one epoch a reset only moves forward (else numbers would repeat).
                assert!(
                    epoch != at_epoch || seq >= *at_seq,
                    "{frame} after {at_seq}"
                );
            }
            self.at = Some((epoch.to_owned(), seq));
            self.resets += 1;
            return;
        }
        let body = frame.strip_prefix('#').unwrap_or_else(|| panic!("{frame}"));
        let mut it = body.splitn(3, ':');
        let (epoch, seq, text) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let seq: u64 = seq.parse().unwrap();
        let (at_epoch, at_seq) = self.at.as_mut().expect("a message before any status");
        assert_eq!(epoch, at_epoch, "{frame}: another epoch without a #reset");
        assert_eq!(
            seq,
            *at_seq + 1,
            "{frame}: a hole or a repeat after {at_seq}"
        );
        *at_seq = seq;
        self.payloads.push(text.parse().unwrap());
    }
}

/// The engine away for 5 s and back: local broadcasts still reach every socket; the
/// recovering one gets `#reset` (a local epoch) instead of a silent hole, and the shared
/// history again once the engine is back; no message lost or repeated on the wire.
async fn engine_away_and_back(url: &str, stop: impl FnOnce(), start_again: impl FnOnce()) {
    let a = gateway("gw-a").await;
    let _ca = join(&a, url, SharedHistory::On).await;
    let mut x = connect(&a, "/ws/f?recover=1").await;
    let mut plain = connect(&a, "/ws/f").await;
    let mut seen = Follower::default();
    seen.read(&next_text(&mut x).await);
    let mut n = 0u64;
    for _ in 0..3 {
        n += 1;
        trigger(&a, "/ws/f", json!(n)).await;
        seen.read(&next_text(&mut x).await);
        assert_eq!(next_text(&mut plain).await, n.to_string());
    }
    let shared_epoch = seen.at.clone().unwrap().0;
    stop();
    n += 1;
    trigger(&a, "/ws/f", json!(n)).await;
    assert_eq!(
        next_text(&mut plain).await,
        n.to_string(),
        "live delivery goes on"
    );
    let reset = next_text(&mut x).await;
    let (local_epoch, _) = reset_of(&reset);
    assert_ne!(local_epoch, shared_epoch);
    seen.read(&reset);
    seen.read(&next_text(&mut x).await);
    // The engine stays away for 5 s (the length of the fault, not a wait for something):
    // a message every 100 ms reaches both sockets, the recovering one under the local epoch.
    let away = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < away {
        n += 1;
        trigger(&a, "/ws/f", json!(n)).await;
        assert_eq!(next_text(&mut plain).await, n.to_string());
        let frame = next_text(&mut x).await;
        assert!(frame.starts_with(&format!("#{local_epoch}:")), "{frame}");
        seen.read(&frame);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start_again();
    // Until a message comes back through the engine again: each goes to the plain socket at
    // once and to the recovering one under one epoch or the other, announced.
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the history never resumed"
        );
        let unstored = metric(&a, "moleculer_ws_recovery_unstored_total").await;
        n += 1;
        trigger(&a, "/ws/f", json!(n)).await;
        assert_eq!(next_text(&mut plain).await, n.to_string());
        while seen.payloads.last() != Some(&n) {
            seen.read(&next_text(&mut x).await);
        }
        if metric(&a, "moleculer_ws_recovery_unstored_total").await == unstored {
            break; // message n came back from the engine
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.payloads, (1..=n).collect::<Vec<_>>());
    assert!(metric(&a, "moleculer_ws_recovery_unstored_total").await >= 1);
    assert_eq!(metric(&a, "moleculer_ws_recovery_engine_up").await, 1);
    // Resumed: a client at the newest position recovers on a second gateway.
    let (epoch, seq) = seen.at.clone().unwrap();
    let b = gateway("gw-b").await;
    let _cb = join(&b, url, SharedHistory::On).await;
    let mut z = connect(&b, &format!("/ws/f?recover=1&epoch={epoch}&seq={seq}")).await;
    assert_eq!(
        next_text(&mut z).await,
        format!("#recovered:{epoch}:{seq}:0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_away_and_back() {
    let nats = std::sync::Arc::new(std::sync::Mutex::new(NatsServer::start_jetstream()));
    let url = nats.lock().unwrap().url();
    let (n1, n2) = (nats.clone(), nats.clone());
    engine_away_and_back(
        &url,
        move || n1.lock().unwrap().stop(),
        move || n2.lock().unwrap().start_again(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_away_and_back() {
    let redis = std::sync::Arc::new(std::sync::Mutex::new(RedisServer::start()));
    let url = redis.lock().unwrap().url();
    let (r1, r2) = (redis.clone(), redis.clone());
    engine_away_and_back(
        &url,
        move || r1.lock().unwrap().stop(),
        move || r2.lock().unwrap().start_again(),
    )
    .await;
}

/// The gateway that stores (the oldest) dies without a word, as with SIGKILL: what the engine
/// acknowledged is kept, the others store in its place (after their stand-by wait, then at once
/// when it is dropped from the cluster), and a recovering client sees every message once, in
/// order.
async fn writer_killed(url: &str) {
    let a = gateway("gw-a").await;
    let ca = join(&a, url, SharedHistory::On).await;
    let b = gateway("gw-b").await;
    let cb = Cluster::builder()
        .transporter(url)
        .heartbeat_interval(Duration::from_millis(200))
        .heartbeat_timeout(Duration::from_millis(1500))
        .max_reconnect_delay(Duration::from_millis(300))
        .start(b.broker())
        .await
        .unwrap();
    within(cb.wait_for_nodes(|ids| ids.iter().any(|n| n == "gw-a"))).await;
    // a is the oldest: once settled it stores, b stands by.
    eventually("a writes", || cluster_metric(&ca, WRITER) == 1).await;
    assert_eq!(cluster_metric(&cb, WRITER), 0);
    let mut x = connect(&b, "/ws/k?recover=1").await;
    let mut seen = Follower::default();
    seen.read(&next_text(&mut x).await);
    for n in 1..=5 {
        trigger(&b, "/ws/k", json!(n)).await;
    }
    while seen.payloads.len() < 5 {
        seen.read(&next_text(&mut x).await);
    }
    // Gone without DISCONNECT: b still counts it as the oldest until its heartbeat timeout.
    drop(ca);
    drop(a);
    for n in 6..=10 {
        trigger(&b, "/ws/k", json!(n)).await;
    }
    while seen.payloads.len() < 10 {
        seen.read(&next_text(&mut x).await);
    }
    within(cb.wait_for_nodes(|ids| !ids.iter().any(|n| n == "gw-a"))).await;
    assert_eq!(cluster_metric(&cb, WRITER), 1, "b took over");
    trigger(&b, "/ws/k", json!(11)).await;
    seen.read(&next_text(&mut x).await);
    assert_eq!(seen.payloads, (1..=11).collect::<Vec<_>>());
    assert_eq!(seen.resets, 1, "the first status only");
    // All of it in the engine: a new gateway reads the eleven back.
    let c = gateway("gw-c").await;
    let _cc = join(&c, url, SharedHistory::On).await;
    assert_eq!(
        metric(&c, "moleculer_ws_recovery_history_messages").await,
        11
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_writer_killed() {
    let nats = NatsServer::start_jetstream();
    writer_killed(&nats.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_writer_killed() {
    let redis = RedisServer::start();
    writer_killed(&redis.url()).await;
}

/// A path quiet for longer than `--recovery-max-age`, with a recovering socket connected:
/// the engine forgot it, so the next message starts a new epoch, announced with `#reset`
/// (never the old epoch counting again from 1, which the gateways would drop as repeats).
async fn path_idle_longer_than_max_age(url: &str) {
    let a = start(
        Gateway::builder()
            .config(
                GatewayConfig::default()
                    .trigger(true)
                    .recovery_max_age(Duration::from_secs(3)),
            )
            .broker(Broker::new("gw-a")),
    )
    .await;
    let _ca = join(&a, url, SharedHistory::On).await;
    let mut x = connect(&a, "/ws/i?recover=1").await;
    let mut seen = Follower::default();
    seen.read(&next_text(&mut x).await);
    trigger(&a, "/ws/i", json!(1)).await;
    seen.read(&next_text(&mut x).await);
    let first = seen.at.clone().unwrap().0;
    // Quiet for 4.5 s: the length of the scenario, longer than the 3 s age limit.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    trigger(&a, "/ws/i", json!(2)).await;
    while seen.payloads.len() < 2 {
        seen.read(&next_text(&mut x).await);
    }
    assert_eq!(seen.payloads, vec![1, 2]);
    assert_ne!(seen.at.clone().unwrap().0, first, "a new epoch");
    assert_eq!(
        seen.resets, 2,
        "the first status and the new epoch's: {:?}",
        seen.frames
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_path_idle_longer_than_max_age() {
    let nats = NatsServer::start_jetstream();
    path_idle_longer_than_max_age(&nats.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_path_idle_longer_than_max_age() {
    let redis = RedisServer::start();
    path_idle_longer_than_max_age(&redis.url()).await;
}
