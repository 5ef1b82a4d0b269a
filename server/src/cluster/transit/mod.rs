//! The transit: reads every incoming packet and answers it, announces this node, sends
//! heartbeats, expires silent nodes, and carries the broker's events and calls to other nodes.
//!
//! It does no I/O itself: packets go out through a bounded queue (drained by the writer task
//! of [`super::ClusterHandle`]), and come in through [`Transit::on_link`]. Unit tests drive it
//! with bytes and read the queue.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};

use super::local;
use super::nodes::{InfoChange, NodeRegistry};
use super::packets::{self, Incoming, Kind, Topics, Version, Writer};
use super::transporter::LinkEvent;

mod calls;

use crate::broker::{ActionResult, Event, WeakBroker};
use crate::error::MoleculerError;
use calls::rejected;
pub(crate) use calls::ClusterTransport;

/// A packet for the writer task, or a flush mark.
#[derive(Debug)]
pub(crate) enum Outbound {
    Packet { topic: String, payload: Vec<u8> },
    Flush(oneshot::Sender<()>),
}

/// Timing settings of the transit.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

struct Pending {
    node: String,
    reply: oneshot::Sender<ActionResult>,
}

pub(crate) struct Transit {
    broker: WeakBroker,
    node_id: String,
    instance_id: String,
    version: Version,
    topics: Topics,
    writer: Writer,
    pub(crate) timing: Timing,
    out: mpsc::Sender<Outbound>,
    nodes: Mutex<NodeRegistry>,
    node_ids: watch::Sender<Vec<String>>,
    pending: Mutex<HashMap<String, Pending>>,
    info_seq: AtomicU64,
    next_id: AtomicU64,
    warned_versions: Mutex<HashSet<(String, String)>>,
    stopped: AtomicBool,
    queue_full: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Transit {
    pub(crate) fn new(
        broker: WeakBroker,
        node_id: String,
        version: Version,
        namespace: &str,
        timing: Timing,
        out: mpsc::Sender<Outbound>,
    ) -> Self {
        Self {
            broker,
            instance_id: local::instance_id(),
            version,
            topics: Topics::new(namespace),
            writer: Writer {
                version,
                sender: node_id.clone(),
            },
            node_id,
            timing,
            out,
            nodes: Mutex::default(),
            node_ids: watch::Sender::new(Vec::new()),
            pending: Mutex::default(),
            info_seq: AtomicU64::new(1),
            next_id: AtomicU64::new(0),
            warned_versions: Mutex::default(),
            stopped: AtomicBool::new(false),
            queue_full: AtomicBool::new(false),
        }
    }

    pub(crate) fn topics(&self) -> &Topics {
        &self.topics
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn out_sender(&self) -> &mpsc::Sender<Outbound> {
        &self.out
    }

    pub(crate) fn watch_nodes(&self) -> watch::Receiver<Vec<String>> {
        self.node_ids.subscribe()
    }

    fn send(&self, topic: String, payload: Vec<u8>) {
        match self.out.try_send(Outbound::Packet { topic, payload }) {
            Ok(()) => {
                self.queue_full.store(false, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Warn once per episode, not once per packet.
                if !self.queue_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!("cluster: outbound queue full (transporter too slow or away): packets are dropped");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.instance_id)
    }

    /// DISCOVER and INFO to everyone: after connecting and after every reconnect.
    pub(crate) fn announce(&self) {
        self.send(self.topics.broadcast(Kind::Discover), self.writer.bare());
        self.send_info(None);
    }

    /// INFO to one node, or to everyone.
    pub(crate) fn send_info(&self, to: Option<&str>) {
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let seq = self.info_seq.load(Ordering::Relaxed);
        let info = local::info(&broker, &self.instance_id, seq);
        let topic = match to {
            Some(node) => self.topics.to_node(Kind::Info, node),
            None => self.topics.broadcast(Kind::Info),
        };
        self.send(topic, self.writer.with_fields(info));
    }

    /// The local services changed: raise `seq` and tell everyone.
    pub(crate) fn services_changed(&self) {
        self.info_seq.fetch_add(1, Ordering::Relaxed);
        self.send_info(None);
    }

    /// HEARTBEAT, then forget the nodes silent for longer than the heartbeat timeout.
    pub(crate) fn tick(&self, now: Instant) {
        let beat = json!({"cpu": local::cpu_percent()});
        self.send(
            self.topics.broadcast(Kind::Heartbeat),
            self.writer.with_fields(beat),
        );
        let gone = lock(&self.nodes).expire(now, self.timing.heartbeat_timeout);
        for node in gone {
            tracing::warn!(node, "cluster: no heartbeat from node, dropped");
            self.node_left(&node);
        }
    }

    /// DISCONNECT: this node leaves. Pending calls fail.
    pub(crate) fn stop(&self) {
        if !self.stopped.swap(true, Ordering::SeqCst) {
            self.send(self.topics.broadcast(Kind::Disconnect), self.writer.bare());
            let pending: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
            for p in pending {
                let _ = p
                    .reply
                    .send(Err(rejected(&p.node, "this node is shutting down")));
            }
        }
    }

    pub(crate) fn on_link(&self, event: LinkEvent) {
        match event {
            LinkEvent::Up => {
                tracing::info!(node = %self.node_id, "cluster: transporter connected, announcing");
                self.announce();
            }
            LinkEvent::Down(why) => tracing::warn!(
                reason = %why,
                "cluster: transporter connection lost; local delivery continues, reconnecting"
            ),
            LinkEvent::Message { topic, payload } => self.handle(&topic, &payload, Instant::now()),
        }
    }

    /// Handles one incoming packet; bad packets are logged and dropped.
    pub(crate) fn handle(&self, topic: &str, payload: &[u8], now: Instant) {
        let Some(kind) = self.topics.kind_of(topic) else {
            tracing::debug!(topic, "cluster: message on a foreign topic dropped");
            return;
        };
        let (header, value) = match packets::read_header(payload) {
            Ok(h) => h,
            Err(why) => {
                tracing::warn!(topic, %why, "cluster: bad packet dropped");
                return;
            }
        };
        if header.ver != self.version.as_str() {
            self.version_mismatch(&header.sender, &header.ver);
            return;
        }
        if header.sender == self.node_id {
            if kind == Kind::Info
                && value.get("instanceID").and_then(Value::as_str) != Some(&self.instance_id)
            {
                tracing::error!(node = %self.node_id, "cluster: another node uses this node ID; give every node a unique --node-id");
            }
            return;
        }
        let body = match packets::read_body(kind, value) {
            Ok(b) => b,
            Err(why) => {
                tracing::warn!(topic, sender = %header.sender, %why, "cluster: bad packet dropped");
                return;
            }
        };
        self.dispatch(&header.sender, body, now);
    }

    fn version_mismatch(&self, sender: &str, ver: &str) {
        if lock(&self.warned_versions).insert((sender.to_owned(), ver.to_owned())) {
            tracing::warn!(
                sender,
                their_version = ver,
                our_version = self.version.as_str(),
                "cluster: dropping the packets of node '{sender}': it speaks Moleculer protocol \
                 version {ver}, this node speaks {} (set --protocol-version to match: 4 for \
                 moleculer 0.14 and moleculer-java, 5 for moleculer 0.15)",
                self.version.as_str()
            );
        }
    }

    fn dispatch(&self, sender: &str, body: Incoming, now: Instant) {
        match body {
            Incoming::Discover => self.send_info(Some(sender)),
            Incoming::Info(info) => {
                let change = lock(&self.nodes).apply_info(sender, &info, now);
                match change {
                    InfoChange::Joined => tracing::info!(node = sender, "cluster: node joined"),
                    InfoChange::Restarted => {
                        tracing::info!(node = sender, "cluster: node restarted");
                        self.fail_pending_of(sender, "the node restarted");
                    }
                    InfoChange::Updated => tracing::debug!(node = sender, "cluster: node updated"),
                }
                self.publish_node_ids();
            }
            Incoming::Heartbeat => {
                if !lock(&self.nodes).seen(sender, now) {
                    // A node we do not know (it joined while we were away): ask for its INFO.
                    self.send(
                        self.topics.to_node(Kind::Discover, sender),
                        self.writer.bare(),
                    );
                }
            }
            Incoming::Disconnect => {
                if lock(&self.nodes).remove(sender) {
                    tracing::info!(node = sender, "cluster: node left");
                    self.node_left(sender);
                }
            }
            Incoming::Event(ev) => {
                let Some(broker) = self.broker.upgrade() else {
                    return;
                };
                let event = Event {
                    name: ev.event,
                    params: ev.data,
                    sender: Some(sender.to_owned()),
                };
                let ran = broker.deliver_to_groups(&event, ev.groups.as_deref(), !ev.broadcast);
                tracing::trace!(event = %event.name, sender, ran, "cluster: event delivered");
            }
            Incoming::Request(req) => self.answer(sender, req),
            Incoming::Response(res) => {
                let Some(pending) = lock(&self.pending).remove(&res.id) else {
                    tracing::debug!(id = %res.id, sender, "cluster: response to no pending call");
                    return;
                };
                let result = if res.success {
                    Ok(res.data)
                } else {
                    Err(packets::error_from_response(res.error.as_ref()))
                };
                let _ = pending.reply.send(result);
            }
            Incoming::Ping(ping) => {
                let pong = json!({"time": ping.time, "id": ping.id, "arrived": local::now_ms()});
                self.send(
                    self.topics.to_node(Kind::Pong, sender),
                    self.writer.with_fields(pong),
                );
            }
            Incoming::Pong => tracing::debug!(sender, "cluster: pong"),
        }
        lock(&self.nodes).seen(sender, now);
    }

    /// Runs a local action for a REQ and sends the RES (in a task: actions may take long).
    fn answer(&self, sender: &str, req: packets::RequestPacket) {
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let topic = self.topics.to_node(Kind::Response, sender);
        let writer = self.writer.clone();
        let out = self.out.clone();
        tokio::spawn(async move {
            let result = broker
                .call_local(&req.action, req.params)
                .await
                .unwrap_or_else(|| Err(MoleculerError::service_not_found(&req.action)));
            let payload = writer.response(&req.id, &result);
            if out.try_send(Outbound::Packet { topic, payload }).is_err() {
                tracing::warn!(action = %req.action, "cluster: response dropped (queue full or stopped)");
            }
        });
    }

    fn node_left(&self, node: &str) {
        self.fail_pending_of(node, "the node left the cluster");
        self.publish_node_ids();
    }

    fn publish_node_ids(&self) {
        let ids = lock(&self.nodes).ids();
        self.node_ids.send_if_modified(|current| {
            let changed = *current != ids;
            *current = ids;
            changed
        });
    }

    fn fail_pending_of(&self, node: &str, why: &str) {
        let failed: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let ids: Vec<String> = pending
                .iter()
                .filter(|(_, p)| p.node == node)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        for p in failed {
            let _ = p.reply.send(Err(rejected(node, why)));
        }
    }
}
