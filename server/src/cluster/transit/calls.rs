//! Calls and events for other nodes: REQ with its RES or timeout, one EVENT per node, and
//! the broker's [`Transport`] over them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{lock, Pending, Transit};
use crate::broker::{ActionResult, BoxFuture, Event, Transport};
use crate::cluster::packets::Kind;
use crate::error::MoleculerError;

impl Transit {
    /// Calls `action` on the next node offering it; `None` when no node does.
    async fn call(&self, action: &str, params: &Value) -> Option<ActionResult> {
        if self.stopped.load(Ordering::SeqCst) {
            return None;
        }
        let node = self.view().pick_for_action(&self.turns, action)?;
        let id = self.new_id();
        let (reply, answer) = oneshot::channel();
        lock(&self.pending).insert(
            id.clone(),
            Pending {
                node: node.clone(),
                reply,
            },
        );
        // However this call ends (answered, timed out, or its caller gone), its entry goes.
        let _forget = Forget {
            transit: self,
            id: &id,
        };
        let timeout = self.timing.request_timeout;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.send(
            self.topics.to_node(Kind::Request, &node),
            self.writer.request(&id, action, params, timeout_ms),
        );
        let result = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(rejected(&node, "the call was abandoned")),
            Err(_) => Err(request_timeout(action, &node)),
        };
        Some(result)
    }

    fn send_event(
        &self,
        node: &str,
        event: &str,
        params: &Value,
        groups: &[String],
        broadcast: bool,
        request_id: Option<&str>,
    ) {
        let id = self.new_id();
        let payload = self.writer.event(
            &id,
            request_id.unwrap_or(&id),
            event,
            params,
            Some(groups),
            broadcast,
        );
        self.send(self.topics.to_node(Kind::Event, node), payload);
    }
}

/// Removes a call's pending entry when the call ends, also when its future is dropped (the
/// REST request that made it timed out or went away): the table never keeps calls nobody
/// waits for.
struct Forget<'a> {
    transit: &'a Transit,
    id: &'a str,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.transit.pending).remove(self.id);
    }
}

/// 504 `RequestTimeoutError` / `REQUEST_TIMEOUT`, as moleculer words it.
pub(super) fn request_timeout(action: &str, node: &str) -> MoleculerError {
    MoleculerError::new(
        "RequestTimeoutError",
        format!("Request is timed out when call '{action}' action on '{node}' node."),
        504,
        "REQUEST_TIMEOUT",
    )
    .with_data(json!({"action": action, "nodeID": node}))
    .retryable(true)
}

/// 429 `QueueIsFullError` / `QUEUE_FULL`: moleculer's bulkhead answer when too many calls run.
pub(super) fn queue_full(action: &str, node: &str, limit: usize) -> MoleculerError {
    MoleculerError::new(
        "QueueIsFullError",
        format!("Queue is full. Request '{action}' action on '{node}' node is rejected."),
        429,
        "QUEUE_FULL",
    )
    .with_data(json!({"action": action, "nodeID": node, "limit": limit}))
    .retryable(true)
}

/// 503 `RequestRejectedError` / `REQUEST_REJECTED`: the called node went away.
pub(super) fn rejected(node: &str, why: &str) -> MoleculerError {
    MoleculerError::new(
        "RequestRejectedError",
        format!("Request is rejected when call action on '{node}' node: {why}."),
        503,
        "REQUEST_REJECTED",
    )
    .with_data(json!({"nodeID": node}))
    .retryable(true)
}

/// The broker's [`Transport`]: events and calls for other nodes go through the transit.
pub(crate) struct ClusterTransport(pub(crate) Arc<Transit>);

impl Transport for ClusterTransport {
    fn broadcast<'a>(&'a self, event: &'a str, params: &'a Value) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let targets = self.0.view().broadcast_targets(event);
            for (node, groups) in targets {
                self.0.send_event(&node, event, params, &groups, true, None);
            }
        })
    }

    fn broadcast_event<'a>(&'a self, event: &'a Event) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let targets = self.0.view().broadcast_targets(&event.name);
            let request_id = event.request_id.as_deref();
            for (node, groups) in targets {
                self.0
                    .send_event(&node, &event.name, &event.params, &groups, true, request_id);
            }
        })
    }

    fn emit<'a>(
        &'a self,
        event: &'a str,
        params: &'a Value,
        skip_groups: &'a [String],
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let targets = self
                .0
                .view()
                .balanced_targets(&self.0.turns, event, skip_groups);
            let mut reached = Vec::new();
            for (node, groups) in targets {
                self.0
                    .send_event(&node, event, params, &groups, false, None);
                reached.extend(groups);
            }
            reached
        })
    }

    fn call<'a>(
        &'a self,
        action: &'a str,
        params: &'a Value,
    ) -> BoxFuture<'a, Option<ActionResult>> {
        Box::pin(self.0.call(action, params))
    }

    fn render_metrics(&self, out: &mut String) {
        self.0.render_metrics(out);
    }
}
