//! The transit: reads every incoming packet and answers it, announces this node, sends
//! heartbeats, expires silent nodes, and carries the broker's events and calls to other nodes.
//!
//! It does no I/O itself: packets go out through a bounded queue (drained by the writer task
//! of [`super::ClusterHandle`]), and come in through [`Transit::on_link`]. Unit tests drive it
//! with bytes and read the queue.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::local;
use super::nodes::{NodeRegistry, NodeView, RoundRobin};
use super::packets::{Kind, Topics, Version, Writer};
use super::transporter::LinkEvent;

mod calls;
mod history;
mod inbound;
mod stats;

use crate::broker::{ActionResult, WeakBroker};
use crate::sync::{read, write};
use calls::rejected;
pub(crate) use calls::ClusterTransport;
use stats::{AnswerBudget, Reason, Stats};

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

/// Bounds on what other nodes can make this node hold or do (the `ClusterConfig` fields of
/// the same names; its `Default` is theirs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_packet_size: usize,
    pub(crate) max_nodes: usize,
    pub(crate) max_concurrent_requests: usize,
}

impl Limits {
    /// The first setting out of range, worded for `ClusterError::Config`.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.max_packet_size == 0 || self.max_nodes == 0 || self.max_concurrent_requests == 0 {
            return Err(
                "max_packet_size, max_nodes and max_concurrent_requests must be at least 1".into(),
            );
        }
        if self.max_concurrent_requests > Semaphore::MAX_PERMITS {
            return Err(format!(
                "max_concurrent_requests must be at most {}",
                Semaphore::MAX_PERMITS
            ));
        }
        Ok(())
    }
}

/// How many (node, version) pairs of version mismatch are remembered (each is warned about
/// once); beyond, mismatches are warned about at most once per `stats::WARN_EVERY`.
const MAX_WARNED_VERSIONS: usize = 256;

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
    limits: Limits,
    stats: Arc<Stats>,
    out: mpsc::Sender<Outbound>,
    /// The node table; taken by incoming packets only, never by broadcasts and calls.
    nodes: Mutex<NodeRegistry>,
    /// What broadcasts and calls route on: the node table at its last change.
    view: RwLock<Arc<NodeView>>,
    turns: RoundRobin,
    node_ids: watch::Sender<Vec<String>>,
    /// Answers to packets that ask for one (DISCOVER, PING, unknown HEARTBEAT).
    answers: AnswerBudget,
    /// Permits for the calls of other nodes running at once.
    requests: Arc<Semaphore>,
    pending: Mutex<HashMap<String, Pending>>,
    info_seq: AtomicU64,
    /// Since when (Unix ms) this node shares the recovery history; 0: it does not.
    history_since: AtomicU64,
    next_id: AtomicU64,
    /// (sender, version) pairs already warned about, at most [`MAX_WARNED_VERSIONS`].
    warned_versions: Mutex<HashSet<(String, String)>>,
    stopped: AtomicBool,
    queue_full: AtomicBool,
    /// Whether the transporter's connection is up (gauge `moleculer_ws_cluster_transporter_up`).
    link_up: AtomicBool,
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
        limits: Limits,
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
            limits,
            stats: Arc::new(Stats::new(Instant::now())),
            out,
            nodes: Mutex::new(NodeRegistry::new(limits.max_nodes)),
            view: RwLock::default(),
            turns: RoundRobin::default(),
            node_ids: watch::Sender::new(Vec::new()),
            answers: AnswerBudget::new(limits.max_nodes, Instant::now()),
            requests: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            pending: Mutex::default(),
            info_seq: AtomicU64::new(1),
            history_since: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            warned_versions: Mutex::default(),
            stopped: AtomicBool::new(false),
            queue_full: AtomicBool::new(false),
            link_up: AtomicBool::new(false),
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

    /// Appends the transit's counters (Prometheus text format).
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        self.stats.render(self.view().len(), out);
        self.render_history_role(out);
        let up = u8::from(self.link_up.load(Ordering::Relaxed));
        let queued = self.out.max_capacity() - self.out.capacity();
        let _ = writeln!(
            out,
            "# HELP moleculer_ws_cluster_transporter_up 1 while the connection to the transporter \
             is up, else 0.\n# TYPE moleculer_ws_cluster_transporter_up gauge\n\
             moleculer_ws_cluster_transporter_up {up}\n\
             # HELP moleculer_ws_cluster_outbound_queue Packets waiting to be published \
             (dropped when the queue is full).\n# TYPE moleculer_ws_cluster_outbound_queue gauge\n\
             moleculer_ws_cluster_outbound_queue {queued}"
        );
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
        let since = self.history_since.load(Ordering::Relaxed);
        let info = local::info(&broker, &self.instance_id, seq, since);
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
        let timeout = self.timing.heartbeat_timeout;
        let gone = self.change_nodes(|nodes| nodes.expire(now, timeout));
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
                self.link_up.store(true, Ordering::Relaxed);
                tracing::info!(node = %self.node_id, "cluster: transporter connected, announcing");
                self.announce();
            }
            LinkEvent::Down(why) => {
                self.link_up.store(false, Ordering::Relaxed);
                tracing::warn!(
                    reason = %why,
                    "cluster: transporter connection lost; local delivery continues, reconnecting"
                );
            }
            LinkEvent::Message { topic, payload } => self.handle(&topic, &payload, Instant::now()),
            LinkEvent::TooLarge { topic, size } => {
                let why = format!(
                    "{size} bytes, more than max_packet_size ({})",
                    self.limits.max_packet_size
                );
                self.drop_packet(Reason::TooLarge, Instant::now(), &topic, &why);
            }
        }
    }

    fn node_left(&self, node: &str) {
        self.fail_pending_of(node, "the node left the cluster");
    }

    /// The routing view: the node table at its last change, taken without waiting on it.
    pub(crate) fn view(&self) -> Arc<NodeView> {
        read(&self.view).clone()
    }

    /// Changes the node table with `change`, then publishes the new view and IDs. Both are
    /// published under the table's lock, so a later change can never be overwritten by an
    /// earlier one; the view's lock is only held to swap an `Arc`.
    fn change_nodes<T>(&self, change: impl FnOnce(&mut NodeRegistry) -> T) -> T {
        let mut nodes = lock(&self.nodes);
        let result = change(&mut nodes);
        *write(&self.view) = Arc::new(nodes.view());
        let ids = nodes.ids();
        self.node_ids.send_if_modified(|current| {
            let changed = *current != ids;
            *current = ids;
            changed
        });
        result
    }

    /// Calls of other nodes' actions waiting for their answer.
    #[cfg(test)]
    pub(crate) fn pending_calls(&self) -> usize {
        lock(&self.pending).len()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::broker::{Broker, Transport};
    use serde_json::json;

    fn transit(broker: &Broker) -> Arc<Transit> {
        let (tx, _) = mpsc::channel(8);
        let timing = Timing {
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(1),
        };
        Arc::new(Transit::new(
            broker.downgrade(),
            "me".into(),
            Version::V4,
            "",
            timing,
            Limits::default(),
            tx,
        ))
    }

    #[test]
    fn version_warnings_are_remembered_up_to_the_cap_and_all_counted() {
        let broker = Broker::new("me");
        let t = transit(&broker);
        for i in 0..MAX_WARNED_VERSIONS + 50 {
            let packet = json!({"ver": "3", "sender": format!("old-{i}")}).to_string();
            t.handle("MOL.DISCOVER", packet.as_bytes(), Instant::now());
        }
        assert_eq!(lock(&t.warned_versions).len(), MAX_WARNED_VERSIONS);
        let counted = t.stats.dropped_count(Reason::Version);
        assert_eq!(counted, (MAX_WARNED_VERSIONS + 50) as u64);
    }

    /// The node table's lock is held by someone else (an INFO being applied): broadcasts,
    /// emits and calls route on the view and do not wait for it.
    #[test]
    fn routing_never_waits_on_the_node_table() {
        let broker = Broker::new("me");
        let t = transit(&broker);
        let info = json!({"ver": "4", "sender": "a", "instanceID": "1",
            "services": [{"name": "s", "events": {"ev.*": {}}, "actions": {"s.do": {}}}]});
        t.handle("MOL.INFO", info.to_string().as_bytes(), Instant::now());
        let held = lock(&t.nodes);
        let (done, finished) = std::sync::mpsc::channel();
        let routing = t.clone();
        std::thread::spawn(move || {
            let transport = ClusterTransport(routing);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(transport.broadcast("ev.x", &json!(1)));
            let reached = rt.block_on(transport.emit("ev.x", &json!(1), &[]));
            let node = transport
                .0
                .view()
                .pick_for_action(&transport.0.turns, "s.do");
            let _ = done.send((reached, node));
        });
        let (reached, node) = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(held);
        assert_eq!(
            (reached, node),
            (vec!["s".to_owned()], Some("a".to_owned()))
        );
    }
}
