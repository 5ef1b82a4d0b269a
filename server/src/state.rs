//! The gateway's state, shared by every request and socket task, and the delivery of one
//! `websocket.send`: what the HTTP side, the socket tasks and the built-in services all use,
//! below the builder and the server that assemble them.

#[cfg(feature = "test-hooks")]
use std::sync::atomic::AtomicBool as HookFlag;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tower_http::services::ServeDir;

use crate::broker::{Broker, Event};
use crate::config::GatewayConfig;
use crate::error::MoleculerError;
use crate::filter::WebSocketFilter;
use crate::history::{Append, HistoryHost, Job, Stored, Tip};
use crate::metrics::Metrics;
use crate::recovery::{Origin, Recovery};
use crate::registry::{Registry, Utf8Bytes};
use crate::rest::{self, CompiledRoute};
use crate::slots::Slots;
use crate::throttle::AddressBuckets;

/// State shared by every request and socket task.
pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    pub(crate) broker: Broker,
    pub(crate) registry: Registry,
    /// Message recovery histories (only for paths a client opted into).
    pub(crate) recovery: Recovery,
    pub(crate) metrics: Metrics,
    pub(crate) filter: Option<Box<dyn WebSocketFilter>>,
    /// Test hooks: `false` stops the `!` replies.
    #[cfg(feature = "test-hooks")]
    pub(crate) heartbeat_replies: HookFlag,
    pub(crate) slots: Slots,
    /// Replayed bytes per remote address (message recovery).
    pub(crate) replay_budget: AddressBuckets,
    /// Set by a shutdown: new upgrades are answered 503 while the open sockets close.
    pub(crate) stopping: AtomicBool,
    pub(crate) routes: Vec<CompiledRoute>,
    pub(crate) static_files: Option<ServeDir>,
}

impl Shared {
    /// Delivers one `websocket.send` event to the sockets at its path (docs/protocol.md
    /// section 1.3).
    pub(crate) fn deliver(&self, event: &Event) {
        let params = &event.params;
        self.metrics.broadcasts.fetch_add(1, Ordering::Relaxed);
        let path = match params.get("path").and_then(Value::as_str) {
            Some(p) if !p.is_empty() => p,
            _ => {
                tracing::warn!(%params, "websocket.send without a path: nothing sent");
                return;
            }
        };
        let path = if path.starts_with('/') {
            std::borrow::Cow::Borrowed(path)
        } else {
            std::borrow::Cow::Owned(format!("/{path}"))
        };
        let data = params.get("data").unwrap_or(&Value::Null);
        let text = Utf8Bytes::from(data.to_string());
        let max_bytes = self.config.outbound_queue_bytes;
        let origin = Origin {
            sender: event.sender.as_deref().unwrap_or(self.broker.node_id()),
            request_id: event.request_id.as_deref(),
        };
        let n = self.recovery.deliver(
            &self.registry,
            &path,
            &text,
            origin,
            max_bytes,
            &self.metrics,
        );
        tracing::trace!(path = %path, sockets = n, "websocket.send delivered");
    }

    /// Refuses new upgrades, closes every socket with `code`, and waits (at most the shutdown
    /// timeout) for their close handshakes.
    pub(crate) async fn close_sockets(&self, code: u16, reason: &'static str) {
        self.stopping.store(true, Ordering::Relaxed);
        self.registry.close_all(code, reason);
        let deadline = self.config.shutdown_timeout;
        if tokio::time::timeout(deadline, self.registry.wait_all_closed())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: some sockets did not close in time");
        }
    }

    pub(crate) fn error_response(&self, err: &MoleculerError) -> Response {
        let status =
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = rest::json_response(status, &err.to_body(self.broker.node_id()));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 says when to come back (the upgrade refusals set their own value).
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

/// The gateway's side of a cluster's shared history (`crate::history`).
impl HistoryHost for Shared {
    fn attach(&self, jobs: Option<tokio::sync::mpsc::Sender<Job>>) {
        let max_bytes = self.config.outbound_queue_bytes;
        match jobs {
            Some(jobs) => self.recovery.attach(Some(jobs)),
            None => self
                .recovery
                .detach(&self.registry, max_bytes, &self.metrics),
        }
    }

    fn stored(&self, message: Stored) {
        if message.path.len() > self.config.max_path_length {
            return; // not a path of this gateway's
        }
        let max_bytes = self.config.outbound_queue_bytes;
        self.recovery
            .stored(&self.registry, message, max_bytes, &self.metrics);
    }

    fn stored_here(&self, message: Stored) {
        let max_bytes = self.config.outbound_queue_bytes;
        self.recovery
            .stored_here(&self.registry, message, max_bytes, &self.metrics);
    }

    fn tip(&self, path: &str) -> Tip {
        self.recovery.tip(path)
    }

    fn unstored(&self, message: Append) {
        let max_bytes = self.config.outbound_queue_bytes;
        self.recovery
            .unstored(&self.registry, message, max_bytes, &self.metrics);
    }

    fn engine_up(&self, up: bool) {
        self.recovery.set_engine_up(up);
    }

    fn limits(&self) -> (usize, std::time::Duration) {
        (self.config.recovery_history, self.config.recovery_max_age)
    }

    fn was_stored(&self, id: &str) -> bool {
        self.recovery.was_stored(id)
    }

    fn changed(
        &self,
        timeout: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.recovery.changed(timeout))
    }
}
