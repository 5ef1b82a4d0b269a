//! The gateway inside an existing axum application: a `Router` to nest under a prefix, on the
//! application's runtime and listener.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::error::ServerError;
use crate::gateway::{sweep_loop, Gateway};
use crate::registry::{CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART};
use crate::state::Shared;

/// A gateway mounted in an application's own axum server (what the servlet mode is to the
/// Java gateway). Made by [`Gateway::embed`].
///
/// Nest [`router`](Self::router) under a prefix: `Router::new().nest("/realtime",
/// gateway.router())`. axum strips the prefix, so a socket at `/realtime/ws/chat` is
/// registered at `/ws/chat` and a `websocket.send` to `ws/chat` reaches it; the REST routes
/// answer under the prefix (`/realtime/api/websocket/send`). The application's code pushes
/// through [`broker`](Self::broker).
///
/// What the application's server decides, not the gateway: the listener, TLS, the request
/// head timeout and size limits. Serve with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that the access filter and the
/// per-address limit see the peer's address (without it they see none).
///
/// The sweep of idle paths runs on the application's runtime until this handle is dropped.
/// Call [`shutdown`](Self::shutdown) before stopping the application's server (for example
/// inside axum's `with_graceful_shutdown`): upgraded sockets are not HTTP requests, so the
/// server's graceful stop does not wait for them.
pub struct EmbeddedGateway {
    shared: Arc<Shared>,
    router: Router,
    sweeper: JoinHandle<()>,
}

impl Gateway {
    /// The gateway as a router for an existing axum application, with its sweep task started
    /// on the current tokio runtime.
    ///
    /// # Errors
    /// [`ServerError::Config`] outside a tokio runtime, or when TLS files are configured (the
    /// application's listener serves TLS when embedded).
    pub fn embed(self) -> Result<EmbeddedGateway, ServerError> {
        if self.tls.is_some() {
            return Err(ServerError::Config(
                "tls_cert/tls_key do not apply to an embedded gateway: the application's \
                 server terminates TLS"
                    .into(),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            ServerError::Config(format!("embed() must run inside a tokio runtime: {e}"))
        })?;
        let router = self.router();
        let sweeper = runtime.spawn(sweep_loop(self.shared.clone()));
        Ok(EmbeddedGateway {
            shared: self.shared,
            router,
            sweeper,
        })
    }
}

impl EmbeddedGateway {
    /// The router to nest in the application (cheap to call again; every copy serves the same
    /// gateway). It handles every path under its prefix: WebSocket upgrades, the REST routes,
    /// `/metrics`, static files when configured, and 404 otherwise.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The broker: register actions, and broadcast `websocket.send` from the application.
    pub fn broker(&self) -> &Broker {
        &self.shared.broker
    }

    /// Open sockets per path (paths with at least one socket), e.g. `{"/ws/chat": 3}`.
    pub fn count_clients(&self) -> HashMap<String, usize> {
        self.shared.registry.count_clients()
    }

    /// Answers new upgrades 503, closes every socket with 1001 (going away) and waits (at most
    /// the configured shutdown timeout) for the close handshakes. REST routes keep answering
    /// until the application stops its server.
    pub async fn shutdown(&self) {
        self.shared
            .close_sockets(CLOSE_GOING_AWAY, "server shutting down")
            .await;
        self.sweeper.abort();
    }

    /// As [`shutdown`](Self::shutdown), with 1012 (service restart): clients reconnect.
    pub async fn shutdown_for_restart(&self) {
        self.shared
            .close_sockets(CLOSE_SERVICE_RESTART, "service restart")
            .await;
        self.sweeper.abort();
    }
}

impl Drop for EmbeddedGateway {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

impl std::fmt::Debug for EmbeddedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedGateway")
            .field("node_id", &self.shared.broker.node_id())
            .finish_non_exhaustive()
    }
}
