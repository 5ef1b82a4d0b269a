//! A rogue node on the transporter: raw packets published straight to real `nats-server` and
//! `redis-server` processes try subject injection, pathological event patterns, node-table,
//! request and size floods. Each test ends with a healthy control: a `websocket.send` from the
//! rogue still reaches a WebSocket client of the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use moleculer_ws_server::{
    Broker, Cluster, ClusterBuilder, ClusterHandle, Gateway, RunningGateway,
};
use serde_json::{json, Value};
use support::servers::{NatsServer, RedisServer};
use support::*;
use tokio::sync::{mpsc, oneshot};

/// The gateway's node ID and the rogue's own (valid) one.
const GW: &str = "gw";
const ROGUE: &str = "rogue-1";

/// A transporter server of either kind, kept alive for the test.
enum Server {
    Nats(NatsServer),
    Redis(RedisServer),
}

impl Server {
    fn url(&self) -> String {
        match self {
            Self::Nats(s) => s.url(),
            Self::Redis(s) => s.url(),
        }
    }
}

/// The rogue: publishes raw bytes on any topic, and sees every `MOL.*` message.
struct Rogue {
    publisher: Publisher,
    seen: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    reader: tokio::task::JoinHandle<()>,
    /// Every message taken off `seen` so far: (topic, payload).
    log: Vec<(String, Vec<u8>)>,
}

enum Publisher {
    Nats(async_nats::Client),
    Redis(redis::aio::MultiplexedConnection),
}

impl Rogue {
    /// Connects and subscribes to every `MOL.*` topic (subscribed once this returns).
    async fn connect(url: &str) -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let (publisher, reader) = if url.starts_with("nats") {
            let client = async_nats::connect(url).await.unwrap();
            let mut sub = client.subscribe("MOL.>").await.unwrap();
            client.flush().await.unwrap();
            let reader = tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    let _ = tx.send((m.subject.to_string(), m.payload.to_vec()));
                }
            });
            (Publisher::Nats(client), reader)
        } else {
            let client = redis::Client::open(url).unwrap();
            let conn = client.get_multiplexed_async_connection().await.unwrap();
            let mut pubsub = client.get_async_pubsub().await.unwrap();
            pubsub.psubscribe("MOL.*").await.unwrap();
            let reader = tokio::spawn(async move {
                let mut messages = pubsub.into_on_message();
                while let Some(m) = messages.next().await {
                    let topic = m.get_channel_name().to_owned();
                    let _ = tx.send((topic, m.get_payload_bytes().to_vec()));
                }
            });
            (Publisher::Redis(conn), reader)
        };
        Self {
            publisher,
            seen,
            reader,
            log: Vec::new(),
        }
    }

    async fn publish_raw(&mut self, topic: &str, payload: Vec<u8>) {
        match &mut self.publisher {
            Publisher::Nats(client) => {
                client
                    .publish(topic.to_owned(), payload.into())
                    .await
                    .unwrap();
                client.flush().await.unwrap();
            }
            Publisher::Redis(conn) => {
                redis::cmd("PUBLISH")
                    .arg(topic)
                    .arg(payload)
                    .query_async::<i64>(conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// Publishes a protocol-4 packet from `sender` with `fields`.
    async fn send(&mut self, topic: &str, sender: &str, mut fields: Value) {
        fields["ver"] = json!("4");
        fields["sender"] = json!(sender);
        self.publish_raw(topic, fields.to_string().into_bytes())
            .await;
    }

    /// The next message on `topic` (earlier ones on other topics are logged), as JSON.
    async fn next_on(&mut self, topic: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing on {topic}; seen: {:?}", self.topics()))
                .expect("rogue reader ended");
            self.log.push(msg.clone());
            if msg.0 == topic {
                return serde_json::from_slice(&msg.1).unwrap();
            }
        }
    }

    /// The topics of every message seen so far (including what is queued now).
    fn topics(&mut self) -> Vec<String> {
        while let Ok(msg) = self.seen.try_recv() {
            self.log.push(msg);
        }
        self.log.iter().map(|(t, _)| t.clone()).collect()
    }

    /// A `websocket.send` EVENT, as a Moleculer node broadcasts it.
    async fn websocket_send(&mut self, path: &str, data: Value) {
        let event = json!({"id": "ev", "event": "websocket.send",
                           "data": {"path": path, "data": data}, "broadcast": true,
                           "meta": {}, "level": 1, "needAck": false});
        self.send(&format!("MOL.EVENT.{GW}"), ROGUE, event).await;
    }

    /// The healthy control: a `websocket.send` from the rogue reaches a client of the gateway.
    async fn control(&mut self, gw: &RunningGateway) {
        let mut ws = connect(gw, "/ws/control").await;
        self.websocket_send("/ws/control", json!("still delivered"))
            .await;
        assert_eq!(next_text(&mut ws).await, r#""still delivered""#);
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A gateway `gw` in the cluster, tuned by `tune`. Nodes stay known for a minute without
/// heartbeat, so nothing expires during a test.
async fn gateway_in(
    server: &Server,
    tune: impl FnOnce(ClusterBuilder) -> ClusterBuilder,
) -> (RunningGateway, ClusterHandle) {
    let gw = start(Gateway::builder().broker(Broker::new(GW))).await;
    let builder = Cluster::builder()
        .transporter(server.url())
        .heartbeat_interval(Duration::from_millis(200))
        .heartbeat_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(5));
    let cluster = tune(builder).start(gw.broker()).await.unwrap();
    (gw, cluster)
}

/// The value of a sample of the cluster's metrics, e.g.
/// `moleculer_ws_cluster_packets_dropped_total{reason="bad_sender"}`.
fn metric(cluster: &ClusterHandle, name: &str) -> u64 {
    sample(&cluster.render_metrics(), name)
}

fn dropped(reason: &str) -> String {
    format!("moleculer_ws_cluster_packets_dropped_total{{reason=\"{reason}\"}}")
}

fn nats() -> Server {
    Server::Nats(NatsServer::start())
}

fn redis() -> Server {
    Server::Redis(RedisServer::start())
}

/// Senders that are no node ID: NATS wildcards, spaces, empty tokens, 5 KB.
fn bad_senders() -> Vec<String> {
    vec![
        "evil.>".into(),
        "evil.*".into(),
        "evil x".into(),
        "evil\tx".into(),
        "evil..x".into(),
        format!("evil{}", "a".repeat(5000)),
    ]
}

/// Packets every node answers on the sender's own topic, from bad senders: nothing is
/// published for them (no subject built from their `sender`), and each is counted. A valid
/// sender's packet after them on the same topic is answered (so they were all read).
async fn bad_senders_get_no_reply(server: Server) {
    let (gw, cluster) = gateway_in(&server, |b| b).await;
    gw.broker()
        .add_action("math.add", |_| async { Ok(json!(2)) });
    let mut rogue = Rogue::connect(&server.url()).await;
    let asks = [
        ("MOL.DISCOVER", json!({}), "MOL.INFO"),
        ("MOL.PING", json!({"time": 1, "id": "p"}), "MOL.PONG"),
        ("MOL.HEARTBEAT", json!({"cpu": 1}), "MOL.DISCOVER"),
        (
            "MOL.REQ.gw",
            json!({"id": "r", "action": "math.add", "params": {}, "meta": {}, "timeout": 0}),
            "MOL.RES",
        ),
    ];
    for (topic, fields, answer) in &asks {
        for sender in bad_senders() {
            rogue.send(topic, &sender, fields.clone()).await;
        }
        rogue.send(topic, ROGUE, fields.clone()).await;
        rogue.next_on(&format!("{answer}.{ROGUE}")).await;
    }
    let topics = rogue.topics();
    let weird: Vec<&String> = topics.iter().filter(|t| t.contains("evil")).collect();
    assert!(weird.is_empty(), "published for bad senders: {weird:.100?}");
    let expected = (bad_senders().len() * asks.len()) as u64;
    assert_eq!(metric(&cluster, &dropped("bad_sender")), expected);
    // The same counters on the gateway's /metrics.
    let text = metrics_text(&gw).await;
    let line = format!("{} {expected}\n", dropped("bad_sender"));
    assert!(text.contains(&line), "{text}");
    rogue.control(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_bad_senders_get_no_reply_and_are_counted() {
    bad_senders_get_no_reply(nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_bad_senders_get_no_reply_and_are_counted() {
    bad_senders_get_no_reply(redis()).await;
}

/// Patterns that make a backtracking glob take exponential time on a long name.
const PATHOLOGICAL: [&str; 3] = [
    "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
    "**.**.**.**.**.**.**.**.**.**.**.**.**.**.**.b",
    "?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*b",
];

/// Broadcasts `event` from the gateway's broker on a thread of its own and waits for it
/// without the runtime (a broadcast that hangs may hold up the runtime's workers too): a
/// broadcast that never ends fails the test instead of blocking it; fails after [`WAIT`].
async fn broadcast_completes(broker: &Broker, event: String) {
    let (done, finished) = std::sync::mpsc::channel();
    let broker = broker.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(broker.broadcast(&event, json!({"path": "/ws/none", "data": 1})));
        let _ = done.send(());
    });
    tokio::task::block_in_place(|| finished.recv_timeout(WAIT))
        .expect("the broadcast did not complete");
}

/// INFO announcing pathological patterns; broadcasts of long names complete, and a name that
/// matches still reaches the rogue.
async fn pathological_patterns_do_not_stall_broadcasts(server: Server) {
    let (gw, cluster) = gateway_in(&server, |b| b).await;
    let mut rogue = Rogue::connect(&server.url()).await;
    let events: serde_json::Map<String, Value> = PATHOLOGICAL
        .iter()
        .map(|p| (p.to_string(), json!({"name": p})))
        .collect();
    let services = json!([{"name": "evil", "events": events}]);
    rogue
        .send(
            "MOL.INFO",
            ROGUE,
            json!({"services": services, "instanceID": "i1"}),
        )
        .await;
    within(cluster.wait_for_nodes(|ids| ids.iter().any(|n| n == ROGUE))).await;

    broadcast_completes(gw.broker(), "a".repeat(3000)).await;
    broadcast_completes(gw.broker(), format!("{}c", "a.".repeat(1500))).await;
    let matching = format!("{}b", "a".repeat(3000));
    broadcast_completes(gw.broker(), matching.clone()).await;
    let event = rogue.next_on(&format!("MOL.EVENT.{ROGUE}")).await;
    assert_eq!(event["event"], json!(matching));
    rogue.control(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_pathological_patterns_do_not_stall_broadcasts() {
    pathological_patterns_do_not_stall_broadcasts(nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pathological_patterns_do_not_stall_broadcasts() {
    pathological_patterns_do_not_stall_broadcasts(redis()).await;
}

/// 2,000 INFO packets with distinct node IDs: the table stops at its cap (default 1024), the
/// rest are counted.
async fn node_flood_stays_at_the_cap(server: Server) {
    let (gw, cluster) = gateway_in(&server, |b| b).await;
    let mut rogue = Rogue::connect(&server.url()).await;
    let services = json!([{"name": "flood", "events": {"flood.*": {"name": "flood.*"}}}]);
    for i in 0..2000 {
        let info = json!({"services": services, "instanceID": format!("i{i}")});
        rogue.send("MOL.INFO", &format!("flood-{i}"), info).await;
    }
    eventually("976 INFO refused", || {
        metric(&cluster, &dropped("node_limit")) == 2000 - 1024
    })
    .await;
    assert_eq!(cluster.nodes().len(), 1024);
    assert_eq!(metric(&cluster, "moleculer_ws_cluster_nodes"), 1024);
    broadcast_completes(gw.broker(), "flood.x".into()).await;
    rogue.control(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_node_flood_stays_at_the_cap() {
    node_flood_stays_at_the_cap(nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_node_flood_stays_at_the_cap() {
    node_flood_stays_at_the_cap(redis()).await;
}

/// 20 calls of a slow action with `max_concurrent_requests(4)`: 4 run (never more at once),
/// 16 are answered at once with 429 `QUEUE_FULL`; released, the 4 answer.
async fn request_flood_runs_at_most_the_limit(server: Server) {
    let (gw, cluster) = gateway_in(&server, |b| b.max_concurrent_requests(4)).await;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    {
        let (running, most, gate) = (running.clone(), most.clone(), gate.clone());
        gw.broker().add_action("slow.work", move |_| {
            let (running, most, gate) = (running.clone(), most.clone(), gate.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _pass = gate.acquire().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(json!("done"))
            }
        });
    }
    let mut rogue = Rogue::connect(&server.url()).await;
    for i in 0..20 {
        let req = json!({"id": format!("r{i}"), "action": "slow.work", "params": {},
                         "meta": {}, "timeout": 0, "level": 1});
        rogue.send("MOL.REQ.gw", ROGUE, req).await;
    }
    let res_topic = format!("MOL.RES.{ROGUE}");
    for _ in 0..16 {
        let res = rogue.next_on(&res_topic).await;
        assert_eq!(res["success"], false, "{res}");
        assert_eq!(
            (res["error"]["code"].as_u64(), res["error"]["type"].as_str()),
            (Some(429), Some("QUEUE_FULL")),
            "{res}"
        );
    }
    assert_eq!(
        metric(&cluster, "moleculer_ws_cluster_requests_rejected_total"),
        16
    );
    eventually("4 running", || running.load(Ordering::SeqCst) == 4).await;
    gate.add_permits(20);
    for _ in 0..4 {
        let res = rogue.next_on(&res_topic).await;
        assert_eq!(
            (res["success"].as_bool(), &res["data"]),
            (Some(true), &json!("done"))
        );
    }
    assert_eq!(most.load(Ordering::SeqCst), 4, "at most 4 at once");
    rogue.control(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_request_flood_runs_at_most_the_limit() {
    request_flood_runs_at_most_the_limit(nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_request_flood_runs_at_most_the_limit() {
    request_flood_runs_at_most_the_limit(redis()).await;
}

/// Tells when dropped: the action's future was dropped (or ran to its end, which never
/// happens here).
struct DropGuard(Option<oneshot::Sender<()>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// A call with `timeout: 200` of an action that never ends: a 504 `REQUEST_TIMEOUT` comes back
/// and the action's future is dropped.
async fn request_timeout_answers_504(server: Server) {
    let (gw, cluster) = gateway_in(&server, |b| b).await;
    let (dropped_tx, action_dropped) = oneshot::channel();
    let dropped_tx = std::sync::Mutex::new(Some(dropped_tx));
    gw.broker().add_action("never.ends", move |_| {
        let guard = DropGuard(dropped_tx.lock().unwrap().take());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Value::Null)
        }
    });
    let mut rogue = Rogue::connect(&server.url()).await;
    let started = Instant::now();
    let req = json!({"id": "t1", "action": "never.ends", "params": {}, "meta": {},
                     "timeout": 200, "level": 1});
    rogue.send("MOL.REQ.gw", ROGUE, req).await;
    let res = rogue.next_on(&format!("MOL.RES.{ROGUE}")).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        (res["id"].as_str(), res["success"].as_bool()),
        (Some("t1"), Some(false))
    );
    assert_eq!(
        (res["error"]["code"].as_u64(), res["error"]["type"].as_str()),
        (Some(504), Some("REQUEST_TIMEOUT")),
        "{res}"
    );
    within(action_dropped)
        .await
        .expect("the action's future was dropped");
    assert_eq!(
        metric(&cluster, "moleculer_ws_cluster_requests_timed_out_total"),
        1
    );
    rogue.control(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_request_timeout_answers_504_and_drops_the_action() {
    request_timeout_answers_504(nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_request_timeout_answers_504_and_drops_the_action() {
    request_timeout_answers_504(redis()).await;
}

/// With `max_packet_size(16 KiB)`, a 20 KB `websocket.send` is dropped (not delivered) and
/// counted; the next, small one is delivered.
async fn oversized_packet_is_dropped(server: Server) {
    let (gw, cluster) = gateway_in(&server, |b| b.max_packet_size(16 * 1024)).await;
    let mut rogue = Rogue::connect(&server.url()).await;
    let mut ws = connect(&gw, "/ws/big").await;
    rogue
        .websocket_send("/ws/big", json!("x".repeat(20_000)))
        .await;
    rogue.websocket_send("/ws/big", json!("small")).await;
    assert_eq!(next_text(&mut ws).await, r#""small""#);
    assert_eq!(metric(&cluster, &dropped("too_large")), 1);
    rogue.control(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_oversized_packet_is_dropped_and_counted() {
    oversized_packet_is_dropped(nats()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_oversized_packet_is_dropped_and_counted() {
    oversized_packet_is_dropped(redis()).await;
}
