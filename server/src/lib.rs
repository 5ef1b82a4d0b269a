//! The reference Moleculer WebSocket gateway.
//!
//! Any service broadcasts the event `websocket.send` with `{path, data}`; the gateway forwards
//! `data`, as compact JSON text, to every WebSocket client connected at `path`. Clients keep the
//! link alive with a `!` heartbeat and answer over REST routes that call actions.
//! The behaviour is the contract of moleculer-java-web (see the repository's README).
//!
//! ```no_run
//! use moleculer_ws_server::{Gateway, GatewayConfig, Route};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), moleculer_ws_server::ServerError> {
//! let gateway = Gateway::builder()
//!     .config(GatewayConfig::default().allow_path_prefix("/ws/"))
//!     .route(Route::get("/api/hello/:name", "greeter.hello"))
//!     .build()?;
//! gateway.broker().add_action("greeter.hello", |ctx| async move {
//!     let name = ctx.params["name"].as_str().unwrap_or("world").to_owned();
//!     ctx.broker
//!         .broadcast("websocket.send", json!({"path": "ws/greetings", "data": {"hello": name}}))
//!         .await;
//!     Ok(json!({"greeted": name}))
//! });
//! let running = gateway.bind("127.0.0.1:3000").await?;
//! println!("listening on {}", running.local_addr());
//! tokio::signal::ctrl_c().await?;
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```
// `MoleculerError` mirrors the Moleculer error body (name, message, type, data, ...) and is
// what actions return: boxing it would only add an allocation to every failed call, and
// results are not on the broadcast path.
#![allow(clippy::result_large_err)]

mod admit;
mod broker;
#[cfg(feature = "cli")]
mod cli_values;
// Without a transporter (cargo features `nats`, `redis` off) part of the cluster's and the shared
// history's code has no caller. The default build, with both, is checked with every lint; the
// reduced builds allow that code's dead-code lints here only (test-all.sh runs clippy on them).
#[cfg_attr(
    not(all(feature = "nats", feature = "redis")),
    allow(dead_code, unused_imports, unused_variables)
)]
mod cluster;
mod config;
mod embed;
mod error;
mod filter;
mod forwarded;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
#[cfg_attr(not(all(feature = "nats", feature = "redis")), allow(dead_code))]
mod history;
mod http;
mod metrics;
mod outbox;
mod recovery;
mod registry;
mod rest;
mod serve;
mod services;
mod slots;
mod sse;
mod state;
mod sync;
mod throttle;
mod tls;
mod upgrade;
mod wire;
mod ws;

pub use broker::{ActionResult, BoxFuture, Broker, Context, Event, Transport};
pub use cluster::{
    Cluster, ClusterBuilder, ClusterConfig, ClusterError, ClusterHandle, SharedHistory,
};
pub use config::{GatewayConfig, ProxyHeader};
pub use embed::EmbeddedGateway;
pub use error::{MoleculerError, ServerError};
pub use filter::{
    AllFilters, ConnectRequest, OriginFilter, PathPrefixFilter, TokenFilter, WebSocketFilter,
};
pub use gateway::{Gateway, GatewayBuilder, RunningGateway};
pub use registry::{CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART, CLOSE_SLOW_CONSUMER};
pub use rest::Route;
pub use services::SEND_EVENT;
