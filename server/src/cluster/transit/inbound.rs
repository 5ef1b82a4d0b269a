//! Incoming packets: every one is checked (sender, version, fields) before it is used, bad
//! ones are counted and dropped with a rate-limited log line, and the calls of other nodes run
//! under a concurrency limit and a time limit.

use std::time::Instant;

use serde_json::{json, Value};

use super::calls::{queue_full, request_timeout};
use super::stats::{preview, Reason};
use super::{lock, Outbound, Transit, MAX_WARNED_VERSIONS};
use crate::broker::Event;
use crate::cluster::local;
use crate::cluster::nodes::{InfoChange, NodeServices};
use crate::cluster::packets::{self, BadHeader, Incoming, InfoPacket, Kind, RequestPacket};
use crate::error::MoleculerError;

impl Transit {
    /// Handles one incoming packet; bad packets are counted, logged and dropped.
    pub(crate) fn handle(&self, topic: &str, payload: &[u8], now: Instant) {
        let Some(kind) = self.topics.kind_of(topic) else {
            tracing::debug!(topic, "cluster: message on a foreign topic dropped");
            return;
        };
        let (header, value) = match packets::read_header(payload) {
            Ok(h) => h,
            Err(BadHeader::Malformed(why)) => {
                return self.drop_packet(Reason::BadPacket, now, topic, &preview(&why));
            }
            Err(BadHeader::Sender(sender)) => {
                let why = format!("the sender {} is not a node ID", preview(&sender));
                return self.drop_packet(Reason::BadSender, now, topic, &why);
            }
        };
        if header.ver != self.version.as_str() {
            self.version_mismatch(&header.sender, &header.ver, now);
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
                let why = format!("from {}: {}", header.sender, preview(&why));
                return self.drop_packet(Reason::BadPacket, now, topic, &why);
            }
        };
        self.dispatch(&header.sender, body, now);
    }

    /// Counts a dropped packet and logs it: a warning at most once per reason and
    /// `stats::WARN_EVERY`, the others at debug level. `why` must be short and escaped.
    pub(super) fn drop_packet(&self, reason: Reason, now: Instant, topic: &str, why: &str) {
        let reason_label = reason.label();
        if self.stats.dropped(reason, now) {
            tracing::warn!(
                topic,
                reason = reason_label,
                why,
                "cluster: packet dropped (more for this reason within 10 s are logged at debug \
                 level; see moleculer_ws_cluster_packets_dropped_total)"
            );
        } else {
            tracing::debug!(topic, reason = reason_label, why, "cluster: packet dropped");
        }
    }

    /// A packet of another protocol version: warned about once per node and version (for the
    /// first [`MAX_WARNED_VERSIONS`] pairs; then at most once per period), always counted.
    fn version_mismatch(&self, sender: &str, ver: &str, now: Instant) {
        let ver = preview(ver);
        let due = self.stats.dropped(Reason::Version, now);
        let warn = {
            let mut warned = lock(&self.warned_versions);
            if warned.len() < MAX_WARNED_VERSIONS {
                warned.insert((sender.to_owned(), ver.clone()))
            } else {
                due && !warned.contains(&(sender.to_owned(), ver.clone()))
            }
        };
        if warn {
            tracing::warn!(
                sender,
                their_version = ver,
                our_version = self.version.as_str(),
                "cluster: dropping the packets of node '{sender}': it speaks Moleculer protocol \
                 version {ver}, this node speaks {} (set --protocol-version to match: 4 for \
                 moleculer 0.14 and moleculer-java, 5 for moleculer 0.15)",
                self.version.as_str()
            );
        } else {
            tracing::debug!(
                sender,
                their_version = ver,
                "cluster: packet of another version dropped"
            );
        }
    }

    /// Whether a packet that asks for an answer gets one now (the answer budget); counts and
    /// logs (rate-limited) the ones that do not.
    fn may_answer(&self, sender: &str, what: &str, now: Instant) -> bool {
        if self.answers.take(now) {
            return true;
        }
        if self.stats.count(&self.stats.answers_dropped, 1, now) {
            tracing::warn!(
                sender,
                what,
                "cluster: too many packets asking for an answer; some go unanswered"
            );
        }
        false
    }

    fn dispatch(&self, sender: &str, body: Incoming, now: Instant) {
        match body {
            Incoming::Discover => {
                if self.may_answer(sender, "DISCOVER", now) {
                    self.send_info(Some(sender));
                }
            }
            Incoming::Info(info) => self.node_info(sender, info, now),
            Incoming::Heartbeat => {
                let ask = {
                    let mut nodes = lock(&self.nodes);
                    !nodes.seen(sender, now) && !nodes.refuses(sender)
                };
                if ask && self.may_answer(sender, "HEARTBEAT", now) {
                    // A node we do not know (it joined while we were away, or was refused
                    // while the table was full): ask for its INFO.
                    self.send(
                        self.topics.to_node(Kind::Discover, sender),
                        self.writer.bare(),
                    );
                }
            }
            Incoming::Disconnect => {
                if self.change_nodes(|nodes| nodes.remove(sender)) {
                    tracing::info!(node = sender, "cluster: node left");
                    self.node_left(sender);
                }
            }
            Incoming::Event(ev) => {
                let Some(broker) = self.broker.upgrade() else {
                    return;
                };
                let request_id = ev.request_id();
                let event = Event {
                    name: ev.event,
                    params: ev.data,
                    sender: Some(sender.to_owned()),
                    request_id,
                };
                let ran = broker.deliver_to_groups(&event, ev.groups.as_deref(), !ev.broadcast);
                tracing::trace!(event = %event.name, sender, ran, "cluster: event delivered");
            }
            Incoming::Request(req) => self.answer(sender, req, now),
            Incoming::Response(res) => {
                let Some(pending) = lock(&self.pending).remove(&res.id) else {
                    tracing::debug!(id = %preview(&res.id), sender, "cluster: response to no pending call");
                    return;
                };
                let result = if res.success {
                    Ok(res.data)
                } else {
                    Err(packets::error_from_response(res.error.as_ref()))
                };
                let _ = pending.reply.send(result);
            }
            Incoming::Ping(_) if !self.may_answer(sender, "PING", now) => {}
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

    /// INFO: the node's services are read and their patterns compiled outside the table's
    /// lock; a new node is refused when the table is full.
    fn node_info(&self, sender: &str, info: InfoPacket, now: Instant) {
        if lock(&self.nodes).refuses(sender) {
            let why = format!(
                "INFO of {sender}: the node table is full (max_nodes {})",
                self.limits.max_nodes
            );
            return self.drop_packet(Reason::NodeLimit, now, "INFO", &why);
        }
        let (services, dropped) = NodeServices::read(sender, &info.services);
        if dropped > 0 {
            let stats = &self.stats;
            if stats.count(&stats.names_dropped, dropped, now) {
                tracing::warn!(
                    node = sender,
                    dropped,
                    "cluster: the node announces more actions, events or groups than kept \
                     (or names longer than 256 bytes); the extra ones are ignored"
                );
            }
        }
        let since = info.history_since();
        let change =
            self.change_nodes(|nodes| nodes.apply_info(info.instance_id, since, services, now));
        match change {
            InfoChange::Joined => tracing::info!(node = sender, "cluster: node joined"),
            InfoChange::Restarted => {
                tracing::info!(node = sender, "cluster: node restarted");
                self.fail_pending_of(sender, "the node restarted");
            }
            InfoChange::Updated => tracing::debug!(node = sender, "cluster: node updated"),
            InfoChange::Refused => {
                let why = format!("INFO of {sender}: the node table is full");
                self.drop_packet(Reason::NodeLimit, now, "INFO", &why);
            }
        }
    }

    /// Runs a local action for a REQ and sends the RES, in a task (actions may take long):
    /// at most `max_concurrent_requests` at once (beyond, a 429 `QUEUE_FULL` RES at once), and
    /// for at most the call's timeout, bounded by `request_timeout` (then the action's future
    /// is dropped and a 504 `REQUEST_TIMEOUT` RES is sent).
    fn answer(&self, sender: &str, req: RequestPacket, now: Instant) {
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let topic = self.topics.to_node(Kind::Response, sender);
        let Ok(permit) = self.requests.clone().try_acquire_owned() else {
            let limit = self.limits.max_concurrent_requests;
            let stats = &self.stats;
            if stats.count(&stats.requests_rejected, 1, now) {
                tracing::warn!(
                    limit,
                    sender,
                    "cluster: calls from other nodes refused with QUEUE_FULL: \
                     max_concurrent_requests are running (see \
                     moleculer_ws_cluster_requests_rejected_total)"
                );
            }
            let refused = Err(queue_full(&req.action, &self.node_id, limit));
            self.send(topic, self.writer.response(&req.id, &refused));
            return;
        };
        let time_limit = req.time_limit(self.timing.request_timeout);
        let writer = self.writer.clone();
        let out = self.out.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let call = broker.call_local(&req.action, req.params);
            let result = match tokio::time::timeout(time_limit, call).await {
                Ok(Some(result)) => result,
                Ok(None) => Err(MoleculerError::service_not_found(&req.action)),
                Err(_) => {
                    if stats.count(&stats.requests_timed_out, 1, Instant::now()) {
                        tracing::warn!(
                            action = %preview(&req.action),
                            ?time_limit,
                            "cluster: a call from another node timed out; its action was stopped"
                        );
                    }
                    Err(request_timeout(&req.action, broker.node_id()))
                }
            };
            // The action is over (or its future dropped): its place is free again.
            drop(permit);
            let payload = writer.response(&req.id, &result);
            if out.try_send(Outbound::Packet { topic, payload }).is_err() {
                tracing::warn!(action = %preview(&req.action), "cluster: response dropped (queue full or stopped)");
            }
        });
    }
}
