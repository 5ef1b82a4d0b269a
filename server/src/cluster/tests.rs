//! The transit without a network: packets in as bytes, packets out read from its queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::packets::Version;
use super::transit::{ClusterTransport, Limits, Outbound, Timing, Transit};
use crate::broker::{Broker, Transport};

struct Harness {
    ver: &'static str,
    broker: Broker,
    transit: Arc<Transit>,
    out: mpsc::Receiver<Outbound>,
}

fn harness(version: Version) -> Harness {
    let broker = Broker::new("me");
    let (tx, out) = mpsc::channel(64);
    let timing = Timing {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_millis(200),
    };
    let transit = Arc::new(Transit::new(
        broker.downgrade(),
        "me".into(),
        version,
        "",
        timing,
        Limits::default(),
        tx,
    ));
    Harness {
        ver: version.as_str(),
        broker,
        transit,
        out,
    }
}

impl Harness {
    fn feed(&self, topic: &str, packet: Value) {
        self.transit
            .handle(topic, packet.to_string().as_bytes(), Instant::now());
    }

    /// Every packet queued so far: (topic, JSON).
    fn sent(&mut self) -> Vec<(String, Value)> {
        let mut all = Vec::new();
        while let Ok(item) = self.out.try_recv() {
            if let Outbound::Packet { topic, payload } = item {
                all.push((topic, serde_json::from_slice(&payload).unwrap()));
            }
        }
        all
    }

    fn join(&self, node: &str, services: Value) {
        self.feed(
            "MOL.INFO",
            json!({"ver": self.ver, "sender": node, "services": services, "instanceID": node}),
        );
    }
}

#[tokio::test]
async fn discover_is_answered_with_info_listing_the_gateway_event() {
    let mut h = harness(Version::V4);
    h.broker.on_event("websocket.send", "websocket", |_| {});
    h.broker
        .add_action("websocket.send", |_| async { Ok(Value::Null) });
    h.feed("MOL.DISCOVER", json!({"ver": "4", "sender": "other"}));
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    let (topic, info) = &sent[0];
    assert_eq!(topic, "MOL.INFO.other");
    assert_eq!(
        (info["ver"].as_str(), info["sender"].as_str()),
        (Some("4"), Some("me"))
    );
    let ws = &info["services"][0];
    assert_eq!(ws["name"], "websocket");
    assert_eq!(ws["events"]["websocket.send"]["name"], "websocket.send");
    assert_eq!(ws["actions"]["websocket.send"]["name"], "websocket.send");
    assert!(info["instanceID"].is_string() && info["seq"].is_u64());
}

#[tokio::test]
async fn own_other_version_and_bad_packets_are_dropped() {
    let mut h = harness(Version::V5);
    h.feed("MOL.DISCOVER", json!({"ver": "5", "sender": "me"}));
    h.feed("MOL.DISCOVER", json!({"ver": "4", "sender": "old"}));
    h.feed("MOL.DISCOVER", json!({"ver": "5"}));
    h.feed(
        "MOL.EVENT.me",
        json!({"ver": "5", "sender": "x", "data": 1}),
    );
    h.transit.handle("MOL.INFO", b"{not json", Instant::now());
    h.transit.handle("OTHER.INFO", b"{}", Instant::now());
    assert!(h.sent().is_empty());
    h.feed("MOL.DISCOVER", json!({"ver": "5", "sender": "new"}));
    assert_eq!(h.sent()[0].0, "MOL.INFO.new");
}

#[tokio::test]
async fn remote_broadcast_reaches_local_listeners_of_its_groups() {
    let h = harness(Version::V5);
    let seen = Arc::new(Mutex::new(Vec::new()));
    for group in ["websocket", "audit"] {
        let seen = seen.clone();
        h.broker.on_event("websocket.send", group, move |e| {
            seen.lock()
                .unwrap()
                .push((group, e.params.clone(), e.sender.clone()));
        });
    }
    let event = json!({"ver": "5", "sender": "n", "id": "1", "event": "websocket.send",
                       "data": {"path": "/ws", "data": 1}, "groups": ["websocket"],
                       "broadcast": true, "meta": {}, "headers": {}, "level": 1});
    h.feed("MOL.EVENT.me", event);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "websocket");
    assert_eq!(seen[0].2.as_deref(), Some("n"));
}

#[tokio::test]
async fn broadcast_sends_one_event_per_listening_node() {
    let mut h = harness(Version::V5);
    let listener =
        json!([{"name": "websocket", "events": {"websocket.send": {"name": "websocket.send"}}}]);
    h.join("a", listener.clone());
    h.join("b", listener);
    h.join(
        "c",
        json!([{"name": "math", "actions": {"math.add": {"name": "math.add"}}}]),
    );
    let transport = ClusterTransport(h.transit.clone());
    transport
        .broadcast("websocket.send", &json!({"path": "/ws", "data": "x"}))
        .await;
    let sent = h.sent();
    let topics: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["MOL.EVENT.a", "MOL.EVENT.b"]);
    let ev = &sent[0].1;
    assert_eq!(ev["event"], "websocket.send");
    assert_eq!(ev["broadcast"], true);
    assert_eq!(ev["groups"], json!(["websocket"]));
    assert_eq!(ev["headers"], json!({}), "v5 carries headers");
    assert_eq!(ev["data"], json!({"path": "/ws", "data": "x"}));
}

#[tokio::test]
async fn call_goes_to_the_offering_node_and_times_out_with_504() {
    let mut h = harness(Version::V4);
    h.join(
        "b",
        json!([{"name": "math", "actions": {"math.add": {"name": "math.add"}}}]),
    );
    let transport = ClusterTransport(h.transit.clone());
    assert!(transport.call("math.sub", &json!({})).await.is_none());

    let call = tokio::spawn({
        let t = h.transit.clone();
        async move { ClusterTransport(t).call("math.add", &json!({"a": 1})).await }
    });
    let req = loop {
        if let Some((topic, req)) = h.sent().into_iter().find(|(t, _)| t.starts_with("MOL.REQ")) {
            assert_eq!(topic, "MOL.REQ.b");
            break req;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(
        (req["action"].as_str(), req["timeout"].as_u64()),
        (Some("math.add"), Some(200))
    );
    assert!(req.get("headers").is_none(), "v4 has no headers");
    h.feed(
        "MOL.RES.me",
        json!({"ver": "4", "sender": "b", "id": req["id"], "success": false,
               "error": {"name": "ValidationError", "message": "bad", "code": 422, "type": "VALIDATION_ERROR"}}),
    );
    let err = call.await.unwrap().unwrap().unwrap_err();
    assert_eq!((err.code, err.kind.as_str()), (422, "VALIDATION_ERROR"));

    let err = transport
        .call("math.add", &json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((err.code, err.kind.as_str()), (504, "REQUEST_TIMEOUT"));
    assert_eq!(h.transit.pending_calls(), 0);

    // A call whose caller gives up first (its REST request timed out) leaves nothing behind.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(20),
        transport.call("math.add", &json!({})),
    )
    .await;
    assert!(abandoned.is_err());
    assert_eq!(
        h.transit.pending_calls(),
        0,
        "the abandoned call's entry is gone"
    );
}

#[tokio::test]
async fn request_runs_the_local_action_and_answers_on_the_callers_topic() {
    let mut h = harness(Version::V5);
    h.broker.add_action("math.add", |ctx| async move {
        Ok(json!(ctx.params["a"].as_i64().unwrap_or(0) + 1))
    });
    h.feed("MOL.REQ.me", json!({"ver": "5", "sender": "caller", "id": "r1", "action": "math.add", "params": {"a": 41}}));
    h.feed(
        "MOL.REQ.me",
        json!({"ver": "5", "sender": "caller", "id": "r2", "action": "nope", "params": {}}),
    );
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match h.out.recv().await.unwrap() {
            Outbound::Packet { topic, payload } => {
                answers.push((topic, serde_json::from_slice::<Value>(&payload).unwrap()))
            }
            Outbound::Flush(_) => {}
        }
    }
    answers.sort_by(|a, b| a.1["id"].as_str().cmp(&b.1["id"].as_str()));
    assert_eq!(answers[0].0, "MOL.RES.caller");
    assert_eq!(
        (answers[0].1["success"].as_bool(), &answers[0].1["data"]),
        (Some(true), &json!(42))
    );
    assert_eq!(answers[1].1["error"]["type"], "SERVICE_NOT_FOUND");
    assert_eq!(answers[1].1["error"]["nodeID"], "me");
}

#[tokio::test]
async fn heartbeats_keep_nodes_silence_expires_them_unknown_senders_are_discovered() {
    let mut h = harness(Version::V4);
    h.join("a", json!([]));
    assert_eq!(*h.transit.watch_nodes().borrow(), ["a"]);
    h.feed(
        "MOL.HEARTBEAT",
        json!({"ver": "4", "sender": "stranger", "cpu": 3}),
    );
    let sent = h.sent();
    assert!(
        sent.iter().any(|(t, _)| t == "MOL.DISCOVER.stranger"),
        "{sent:?}"
    );
    h.transit.tick(Instant::now() + Duration::from_secs(10));
    assert!(h.transit.watch_nodes().borrow().is_empty());
    let sent = h.sent();
    assert_eq!(sent[0].0, "MOL.HEARTBEAT");
    assert!(sent[0].1["cpu"].is_u64());
    h.join("a", json!([]));
    h.feed("MOL.DISCONNECT", json!({"ver": "4", "sender": "a"}));
    assert!(h.transit.watch_nodes().borrow().is_empty());
}

#[tokio::test]
async fn ping_is_answered_with_pong_and_namespace_prefixes_topics() {
    let broker = Broker::new("me");
    let (tx, mut out) = mpsc::channel(8);
    let timing = Timing {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(1),
    };
    let transit = Transit::new(
        broker.downgrade(),
        "me".into(),
        Version::V4,
        "dev",
        timing,
        Limits::default(),
        tx,
    );
    let ping = json!({"ver": "4", "sender": "p", "time": 5, "id": "x"}).to_string();
    transit.handle("MOL.PING", ping.as_bytes(), Instant::now());
    assert!(out.try_recv().is_err(), "no namespace: foreign topic");
    transit.handle("MOL-dev.PING", ping.as_bytes(), Instant::now());
    match out.try_recv().unwrap() {
        Outbound::Packet { topic, payload } => {
            assert_eq!(topic, "MOL-dev.PONG.p");
            let pong: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(
                (pong["time"].as_u64(), pong["id"].as_str()),
                (Some(5), Some("x"))
            );
            assert!(pong["arrived"].is_u64());
        }
        Outbound::Flush(_) => panic!("unexpected flush"),
    }
}

/// The value of a sample in the transit's metrics.
fn metric(transit: &Transit, sample: &str) -> u64 {
    let mut text = String::new();
    transit.render_metrics(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
}

fn harness_with(limits: Limits) -> Harness {
    let broker = Broker::new("me");
    let (tx, out) = mpsc::channel(64);
    let timing = Timing {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(5),
    };
    let transit = Arc::new(Transit::new(
        broker.downgrade(),
        "me".into(),
        Version::V4,
        "",
        timing,
        limits,
        tx,
    ));
    Harness {
        ver: "4",
        broker,
        transit,
        out,
    }
}

#[tokio::test]
async fn bad_senders_are_answered_nothing_and_counted() {
    let mut h = harness(Version::V4);
    for sender in ["x.>", "a b", "a..b", &"n".repeat(200)] {
        h.feed("MOL.DISCOVER", json!({"ver": "4", "sender": sender}));
        h.feed("MOL.PING", json!({"ver": "4", "sender": sender, "time": 1}));
        h.join(sender, json!([]));
    }
    assert!(h.sent().is_empty());
    assert!(h.transit.watch_nodes().borrow().is_empty());
    assert_eq!(
        metric(
            &h.transit,
            "moleculer_ws_cluster_packets_dropped_total{reason=\"bad_sender\"}"
        ),
        12
    );
}

#[tokio::test]
async fn a_full_node_table_refuses_new_nodes_and_does_not_ask_them_for_info() {
    let mut h = harness_with(Limits {
        max_nodes: 2,
        ..Limits::default()
    });
    for node in ["a", "b", "c"] {
        h.join(node, json!([]));
    }
    assert_eq!(*h.transit.watch_nodes().borrow(), ["a", "b"]);
    h.feed("MOL.HEARTBEAT", json!({"ver": "4", "sender": "d"}));
    assert!(h.sent().is_empty(), "no DISCOVER while full");
    let refused = "moleculer_ws_cluster_packets_dropped_total{reason=\"node_limit\"}";
    assert_eq!(metric(&h.transit, refused), 1);
    assert_eq!(metric(&h.transit, "moleculer_ws_cluster_nodes"), 2);
    h.feed("MOL.DISCONNECT", json!({"ver": "4", "sender": "a"}));
    h.feed("MOL.HEARTBEAT", json!({"ver": "4", "sender": "d"}));
    assert_eq!(
        h.sent()[0].0,
        "MOL.DISCOVER.d",
        "room again: ask d for INFO"
    );
    h.join("d", json!([]));
    assert_eq!(*h.transit.watch_nodes().borrow(), ["b", "d"]);
}

#[tokio::test]
async fn requests_past_the_limit_get_queue_full_at_once_and_slow_ones_a_504() {
    let mut h = harness_with(Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    });
    h.broker
        .add_action("slow.never", |_| std::future::pending());
    let req = |id: &str, timeout: u64| {
        json!({"ver": "4", "sender": "caller", "id": id, "action": "slow.never",
               "params": {}, "timeout": timeout})
    };
    h.feed("MOL.REQ.me", req("r1", 30));
    h.feed("MOL.REQ.me", req("r2", 0));
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (topic, res) = &sent[0];
    assert_eq!(
        (topic.as_str(), res["id"].as_str()),
        ("MOL.RES.caller", Some("r2"))
    );
    assert_eq!(
        (res["error"]["code"].as_u64(), res["error"]["type"].as_str()),
        (Some(429), Some("QUEUE_FULL"))
    );
    assert_eq!(res["error"]["retryable"], true);
    let res = loop {
        let item = tokio::time::timeout(Duration::from_secs(10), h.out.recv()).await;
        if let Some(Outbound::Packet { payload, .. }) = item.unwrap() {
            break serde_json::from_slice::<Value>(&payload).unwrap();
        }
    };
    assert_eq!(res["id"], "r1");
    assert_eq!(
        (res["error"]["code"].as_u64(), res["error"]["type"].as_str()),
        (Some(504), Some("REQUEST_TIMEOUT"))
    );
    assert_eq!(
        metric(&h.transit, "moleculer_ws_cluster_requests_rejected_total"),
        1
    );
    assert_eq!(
        metric(&h.transit, "moleculer_ws_cluster_requests_timed_out_total"),
        1
    );
    // The timed-out call gave its place back.
    h.feed("MOL.REQ.me", req("r3", 30));
    assert!(h.sent().is_empty(), "r3 runs");
}

#[tokio::test]
async fn oversized_messages_are_counted_and_transport_metrics_reach_the_broker() {
    let h = harness(Version::V4);
    h.transit.on_link(super::transporter::LinkEvent::TooLarge {
        topic: "MOL.INFO".into(),
        size: 2 << 20,
    });
    h.broker
        .set_transport(Arc::new(ClusterTransport(h.transit.clone())));
    let mut text = String::new();
    h.broker.render_transport_metrics(&mut text);
    assert!(
        text.contains("moleculer_ws_cluster_packets_dropped_total{reason=\"too_large\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE moleculer_ws_cluster_nodes gauge\n"));
}

#[tokio::test]
async fn answers_to_other_nodes_are_rate_limited_and_counted() {
    let mut h = harness_with(Limits {
        max_nodes: 8,
        ..Limits::default()
    });
    let t0 = Instant::now();
    let packet = |extra: Value| {
        let mut p = json!({"ver": "4", "sender": "b"});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
            p.extend(extra.clone());
        }
        p.to_string()
    };
    // A burst of 8 (the node table's size), then nothing until the bucket refills.
    for _ in 0..20 {
        h.transit
            .handle("MOL.DISCOVER", packet(json!({})).as_bytes(), t0);
    }
    let infos = h.sent().iter().filter(|(t, _)| t == "MOL.INFO.b").count();
    assert_eq!(infos, 8);
    // 100 answers per second: 50 ms later, 5 more.
    let later = t0 + Duration::from_millis(50);
    for _ in 0..10 {
        let ping = packet(json!({"time": 1, "id": "p"}));
        h.transit.handle("MOL.PING.me", ping.as_bytes(), later);
    }
    let pongs = h.sent().iter().filter(|(t, _)| t == "MOL.PONG.b").count();
    assert_eq!(pongs, 5);
    assert_eq!(
        metric(&h.transit, "moleculer_ws_cluster_answers_dropped_total"),
        17
    );
}

#[test]
fn the_transporter_link_and_the_outbound_queue_are_gauges() {
    let mut h = harness(Version::V4);
    assert_eq!(metric(&h.transit, "moleculer_ws_cluster_transporter_up"), 0);
    h.transit.on_link(super::transporter::LinkEvent::Up);
    assert_eq!(metric(&h.transit, "moleculer_ws_cluster_transporter_up"), 1);
    // Announcing queued DISCOVER and INFO: nobody has published them yet.
    let queued = metric(&h.transit, "moleculer_ws_cluster_outbound_queue");
    assert!(queued >= 2, "{queued}");
    let _ = h.sent();
    assert_eq!(metric(&h.transit, "moleculer_ws_cluster_outbound_queue"), 0);
    h.transit
        .on_link(super::transporter::LinkEvent::Down("gone".into()));
    assert_eq!(metric(&h.transit, "moleculer_ws_cluster_transporter_up"), 0);
}
