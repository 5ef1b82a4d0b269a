//! The gateway: the builder that assembles its state, and the running server handle.

use std::collections::HashMap;
use std::net::SocketAddr;
#[cfg(feature = "test-hooks")]
use std::sync::atomic::AtomicBool as HookFlag;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::Router;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower_http::services::ServeDir;

use crate::broker::Broker;
use crate::config::GatewayConfig;
use crate::error::ServerError;
use crate::filter::{AllFilters, OriginFilter, PathPrefixFilter, TokenFilter, WebSocketFilter};
use crate::metrics::Metrics;
use crate::registry::{Registry, CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART};
use crate::rest::Route;
use crate::serve::{accept_loop, ConnLimits};
use crate::services;
use crate::slots::Slots;
use crate::state::Shared;
use crate::throttle::AddressBuckets;

/// Builds a [`Gateway`]. Never panics: the first problem is returned by [`build`](Self::build).
#[derive(Default)]
#[must_use]
pub struct GatewayBuilder {
    config: GatewayConfig,
    broker: Option<Broker>,
    filter: Option<Box<dyn WebSocketFilter>>,
    routes: Vec<Route>,
}

impl GatewayBuilder {
    /// Uses `config` (default: [`GatewayConfig::default`]).
    pub fn config(mut self, config: GatewayConfig) -> Self {
        self.config = config;
        self
    }
    /// Uses an existing broker (default: a new in-process one).
    pub fn broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }
    /// Adds a custom access filter; it runs after the built-in ones of the config.
    pub fn filter(mut self, filter: impl WebSocketFilter) -> Self {
        self.filter = Some(Box::new(filter));
        self
    }
    /// Adds a REST route. Routes are tried in the order added, before the built-in ones.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Checks the configuration, compiles the routes and registers the built-in services.
    pub fn build(self) -> Result<Gateway, ServerError> {
        self.config.validate()?;
        warn_exposure(&self.config);
        let broker = self.broker.unwrap_or_default();
        let mut filters: Vec<Box<dyn WebSocketFilter>> = Vec::new();
        if !self.config.allowed_path_prefixes.is_empty() {
            filters.push(Box::new(PathPrefixFilter(
                self.config.allowed_path_prefixes.clone(),
            )));
        }
        if !self.config.allowed_origins.is_empty() {
            filters.push(Box::new(OriginFilter(self.config.allowed_origins.clone())));
        }
        if let Some(token) = &self.config.token {
            filters.push(Box::new(TokenFilter(token.clone())));
        }
        filters.extend(self.filter);
        let filter: Option<Box<dyn WebSocketFilter>> = match filters.len() {
            0 => None,
            1 => filters.pop(),
            _ => Some(Box::new(AllFilters(filters))),
        };
        let static_files = match &self.config.static_dir {
            Some(dir) if !dir.is_dir() => {
                return Err(ServerError::Config(format!(
                    "static directory {} does not exist",
                    dir.display()
                )))
            }
            Some(dir) => Some(ServeDir::new(dir)),
            None => None,
        };
        let tls = match (&self.config.tls_cert, &self.config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let user_routes = self.routes;
        let config = self.config;
        let mut route_error = None;
        let shared = Arc::new_cyclic(|weak: &std::sync::Weak<Shared>| {
            broker.set_history_host(weak.clone());
            let builtin = services::register(&broker, weak.clone(), &config);
            let mut routes = Vec::new();
            for r in user_routes.into_iter().chain(builtin) {
                match r.compile() {
                    Ok(c) => routes.push(c),
                    Err(e) => {
                        route_error.get_or_insert(e);
                    }
                }
            }
            Shared {
                slots: Slots::new(config.max_sockets, config.max_sockets_per_address),
                recovery: crate::recovery::Recovery::new(
                    crate::recovery::Limits {
                        max_messages: config.recovery_history,
                        max_age: config.recovery_max_age,
                        max_bytes: config.recovery_history_bytes,
                    },
                    config.max_paths,
                ),
                replay_budget: AddressBuckets::new(
                    config.recovery_replay_rate,
                    config.recovery_history_bytes,
                ),
                registry: Registry::new(config.max_paths),
                config,
                broker: broker.clone(),
                metrics: Metrics::default(),
                filter,
                #[cfg(feature = "test-hooks")]
                heartbeat_replies: HookFlag::new(true),
                stopping: AtomicBool::new(false),
                routes,
                static_files,
            }
        });
        match route_error {
            Some(e) => Err(e),
            None => Ok(Gateway { shared, tls }),
        }
    }
}

/// Says in the log what the configuration opens to anyone who can reach the gateway.
fn warn_exposure(config: &GatewayConfig) {
    if config.token.is_none() && (config.trigger || config.sample_chat) {
        let routes = match (config.trigger, config.sample_chat) {
            (true, true) => {
                "POST /api/websocket/send, GET /api/websocket/clients and POST /api/chat/send"
            }
            (true, false) => "POST /api/websocket/send and GET /api/websocket/clients",
            _ => "POST /api/chat/send",
        };
        tracing::warn!(
            "no token: anyone who can reach the gateway may call {routes} and push messages to \
             every connected socket; set a token (--token, GatewayConfig::token) or keep the \
             gateway on a private address"
        );
    }
    #[cfg(feature = "test-hooks")]
    if config.test_hooks {
        tracing::warn!(
            "test hooks are on (POST /api/test/heartbeat-replies can stop the heartbeat \
             replies): for tests only, never in production"
        );
    }
}

/// A configured gateway, not yet listening: [`bind`](Self::bind) or [`serve`](Self::serve) it
/// on its own listener, or [`embed`](Self::embed) it in an axum application.
pub struct Gateway {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tls: Option<TlsAcceptor>,
}

impl Gateway {
    /// A builder with the default configuration.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// The broker: register services, broadcast `websocket.send`.
    pub fn broker(&self) -> &Broker {
        &self.shared.broker
    }

    /// Binds `addr` (use port 0 for any free port) and starts serving.
    pub async fn bind(self, addr: impl ToSocketAddrs) -> Result<RunningGateway, ServerError> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// Starts serving on an already bound listener.
    pub fn serve(self, listener: TcpListener) -> Result<RunningGateway, ServerError> {
        let local_addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let config = &self.shared.config;
        let limits = ConnLimits {
            handshake_timeout: config.handshake_timeout,
            max_header_size: config.max_header_size,
            drain: config.shutdown_timeout,
            max_connections: config.max_connections,
        };
        let router = self.router();
        let tls = self.tls.is_some();
        let shared = self.shared.clone();
        let server = tokio::spawn(accept_loop(
            listener, router, limits, self.tls, stop_rx, shared,
        ));
        let sweeper = tokio::spawn(sweep_loop(self.shared.clone()));
        tracing::info!(%local_addr, tls, "gateway listening");
        Ok(RunningGateway {
            shared: self.shared,
            local_addr,
            tls,
            stop: Some(stop_tx),
            server: Some(server),
            sweeper,
        })
    }

    /// The gateway as an axum `Router` (every path; CORS when configured).
    pub(crate) fn router(&self) -> Router {
        crate::http::router(self.shared.clone())
    }
}

/// Every sweep period (or at once when many paths were removed): expires recovery histories
/// and tells the filter's `on_close` which paths went away.
pub(crate) async fn sweep_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.sweep_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.registry.sweep_now.notified() => {}
        }
        let removed = shared.registry.take_removed();
        shared.recovery.sweep();
        if !removed.is_empty() {
            tracing::debug!(?removed, "swept idle paths");
            if let Some(filter) = &shared.filter {
                filter.on_close(&removed);
            }
        }
    }
}

/// A gateway that is serving. Dropping it stops it abruptly; [`shutdown`](Self::shutdown)
/// stops it gracefully.
pub struct RunningGateway {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tls: bool,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    sweeper: JoinHandle<()>,
}

impl RunningGateway {
    /// The address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the gateway serves TLS (`https://`, `wss://`) itself.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The base URL: `http://addr/`, or `https://addr/` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// The broker: register services, broadcast `websocket.send`.
    pub fn broker(&self) -> &Broker {
        &self.shared.broker
    }

    /// Open sockets per path (paths with at least one socket), e.g. `{"/ws/chat": 3}`.
    pub fn count_clients(&self) -> HashMap<String, usize> {
        self.shared.registry.count_clients()
    }

    /// Fault injection for tests of clients: `false` makes the gateway stop answering `!`
    /// (the socket stays open), as a hung server would. Default `true`. Only with the cargo
    /// feature `test-hooks`.
    #[cfg(feature = "test-hooks")]
    pub fn set_heartbeat_replies(&self, on: bool) {
        self.shared
            .heartbeat_replies
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops accepting, closes every socket with 1001 (going away), waits (at most the
    /// configured shutdown timeout) for the close handshakes and open requests, and frees the
    /// port.
    pub async fn shutdown(self) {
        self.stop_with(CLOSE_GOING_AWAY, "server shutting down")
            .await;
    }

    /// As [`shutdown`](Self::shutdown), but tells sockets 1012 (service restart): clients
    /// reconnect, with jitter, to this or another gateway. The program does this on SIGTERM.
    pub async fn shutdown_for_restart(self) {
        self.stop_with(CLOSE_SERVICE_RESTART, "service restart")
            .await;
    }

    async fn stop_with(mut self, code: u16, reason: &'static str) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.close_sockets(code, reason).await;
        let deadline = self.shared.config.shutdown_timeout;
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(deadline, &mut server).await.is_err() {
                tracing::warn!("shutdown: open requests did not finish in time");
                server.abort();
                let _ = server.await;
            }
        }
        self.sweeper.abort();
        tracing::info!("gateway stopped");
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.shared
                .registry
                .close_all(CLOSE_GOING_AWAY, "server shutting down");
            server.abort();
        }
        self.sweeper.abort();
    }
}
