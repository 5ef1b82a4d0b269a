//! Client for Moleculer WebSocket gateways: what `moleculer-java-httpclient` is to Java
//! programs, for Rust.
//!
//! A gateway pushes messages one way, over WebSocket, to the sockets connected at a path; the
//! client answers with ordinary REST calls. This crate gives both:
//!
//! - [`Client::ws`] opens a [`WebSocket`] kept alive with the `!` heartbeat of the original
//!   clients and reconnected with exponential backoff; its [`Events`] are a `Stream`
//!   (or use a [`WebSocketHandler`] like Java's `WebSocketHandler`);
//! - [`Client::get`], [`Client::post`] and friends call REST routes and parse the JSON answer;
//!   a gateway error becomes a typed [`MoleculerError`].
//!
//! Both share the client's default headers, bearer-token provider and base URL.
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! use moleculer_ws_client::{Client, Event, WebSocketConfig};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), moleculer_ws_client::Error> {
//! # let config = moleculer_ws_server::GatewayConfig::default().sample_chat(true);
//! # let gateway = moleculer_ws_server::Gateway::builder().config(config).build().unwrap()
//! #     .bind("127.0.0.1:0").await.unwrap();
//! # let base = format!("http://{}/", gateway.local_addr());
//! // `base` is the gateway's address, e.g. "http://127.0.0.1:3000/".
//! let client = Client::builder().base_url(&base).build()?;
//! let (socket, mut events) = client.ws("/ws/chat", WebSocketConfig::default())?;
//! socket.connect().await?;
//! # while gateway.count_clients().is_empty() { tokio::task::yield_now().await; }
//!
//! // Say something over REST; the gateway pushes it to every socket at /ws/chat.
//! let answer = client.post("/api/chat/send", &json!({"user": "ann", "text": "hi"})).await?;
//! assert!(answer.is_success());
//!
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(message) = event {
//!         let json = message.json().expect("a JSON object");
//!         assert_eq!(json["text"], "hi");
//!         break;
//!     }
//! }
//! socket.disconnect().await; // no reconnect after this
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour
//!
//! The session logic lives in the runtime-free session core ([`session`], the crate
//! `moleculer-ws-session`: no clock reads, no spawning, no I/O), shared with the browser
//! driver so both behave the same:
//!
//! - heartbeat as the originals: every `interval / 3` a tick sends `!` when more than
//!   `interval` passed since the last one, and declares the link lost when a `!` stays
//!   unanswered for `timeout` (defaults 60 s and 10 s, as the Java client);
//! - reconnect on errors, heartbeat loss and clean server closes, with backoff from
//!   `reconnect_delay` (3 s) up to 30 s with jitter, reset once a connection proved healthy;
//!   [`ReconnectPolicy::fixed`] reproduces the original 3000 ms;
//! - stop with [`Error::Rejected`] when the upgrade is answered 401, 403 or 404;
//! - messages classified as the Java client does ([`Message`]).
//!
//! # Logs
//!
//! The client logs through `tracing` (nothing is printed unless the program installs a
//! subscriber): on native targets each socket's task runs in a span `moleculer_ws{url}` (the
//! URL without its query and credentials); on every target attempts, opens,
//! closes, reconnects and errors are events of the target `moleculer_ws_client::ws` (debug,
//! info, warn), messages and heartbeats at trace; each REST call is a debug event of
//! `moleculer_ws_client::rest` (method, status, bytes, time).
//!
//! ```
//! // For example with tracing-subscriber (and its `env-filter` feature):
//! tracing_subscriber::fmt()
//!     .with_env_filter("moleculer_ws_client=debug")
//!     .try_init()
//!     .ok();
//! ```
//!
//! # Errors
//!
//! What the session reports on the way ([`Event::Error`], [`Event::Stopped`]) is the session
//! core's [`SessionError`]: the same type, and the same texts, as the browser client's. The
//! calls of this crate return its [`Error`], which has a variant of the same name and text for
//! each of those (`From<SessionError>`) plus the REST and runtime ones.
//!
//! # Features
//!
//! - `tokio-runtime` (default): the tokio WebSocket driver ([`WebSocket`], [`Events`]) on
//!   native targets.
//! - `browser` (default): on `wasm32`, the same [`Client::ws`] API over the browser driver
//!   (`moleculer-ws-browser`: the browser's `WebSocket` and timers), for Rust programs that
//!   run in a page (Leptos, Yew, Dioxus). A browser WebSocket sends no headers: the token goes
//!   in the query (`token`, or [`WebSocketConfig::token_query_param`]).
//!
//!   Without the driver of the target, the crate is the session core plus REST.
//! - `rest` (default): REST calls ([`Client::get`], [`Client::post`], ..., [`Response`])
//!   through reqwest. Without it no reqwest is built (native or wasm32) and the crate is the
//!   WebSocket client alone. (`url` stays: the WebSocket's URL rules use it.)
//! - `rustls` (default): `wss://` and `https://` through rustls (also `https://` proxies).
//! - Proxies (`ClientBuilder::proxy`, the environment's variables) are hyper-util's rules,
//!   for the WebSocket and REST alike: HTTP `CONNECT`, SOCKS5 and SOCKS4 (see README
//!   "Behind a proxy").
//! - `autobahn` (off): `WebSocketConfig::echo`, which makes the tokio driver echo every text
//!   and binary message, for protocol test suites (the Autobahn TestSuite) only.

#[cfg(all(feature = "browser", target_arch = "wasm32"))]
mod browser;
mod client;
#[cfg(all(feature = "tokio-runtime", not(target_arch = "wasm32")))]
mod driver;
mod error;
#[cfg(any(
    all(feature = "tokio-runtime", not(target_arch = "wasm32")),
    all(feature = "browser", target_arch = "wasm32")
))]
mod handler;
#[cfg(not(target_arch = "wasm32"))]
mod net;
pub mod rest;
/// permessage-deflate for programs that drive tokio-tungstenite themselves: the layer this
/// client puts under tungstenite (feature `deflate`), which tungstenite lacks. Offer the
/// extension in the request and wrap the connection; compressed messages reach tungstenite
/// inflated:
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use moleculer_ws_client::deflate::{Inflate, MAX_MESSAGE, OFFER};
/// use tokio_tungstenite::tungstenite::client::IntoClientRequest;
///
/// let mut request = "ws://127.0.0.1:3000/ws/chat".into_client_request()?;
/// request
///     .headers_mut()
///     .insert("Sec-WebSocket-Extensions", OFFER.parse()?);
/// let tcp = tokio::net::TcpStream::connect("127.0.0.1:3000").await?;
/// let (ws, _) =
///     tokio_tungstenite::client_async(request, Inflate::new(tcp, true, MAX_MESSAGE)).await?;
/// # drop(ws);
/// # Ok(())
/// # }
/// ```
#[cfg(all(feature = "deflate", not(target_arch = "wasm32")))]
pub mod deflate {
    pub use crate::driver::deflate::{Inflate, MAX_MESSAGE, OFFER};
}
/// The session core (the crate `moleculer-ws-session`): the rules this client drives.
pub use moleculer_ws_session as session;
mod url;
#[cfg(any(
    all(feature = "tokio-runtime", not(target_arch = "wasm32")),
    all(feature = "browser", target_arch = "wasm32")
))]
mod ws;
mod ws_config;

#[cfg(all(feature = "browser", target_arch = "wasm32"))]
pub use browser::{Events, WebSocket};
pub use client::{Client, ClientBuilder};
#[cfg(all(feature = "tokio-runtime", not(target_arch = "wasm32")))]
pub use driver::{Events, WebSocket};
pub use error::Error;
#[cfg(any(
    all(feature = "tokio-runtime", not(target_arch = "wasm32")),
    all(feature = "browser", target_arch = "wasm32")
))]
pub use handler::WebSocketHandler;
/// The `http` crate, whose types the REST calls take and give.
pub use http;
pub use http::{HeaderMap, Method, StatusCode};
pub use rest::MoleculerError;
#[cfg(feature = "rest")]
pub use rest::{RequestBuilder, RequestError, Response};
pub use session::{
    BackoffKind, Carrier, ConnectionState, Error as SessionError, Event, Message, ReconnectPolicy,
    SessionConfig, Stats, Transport,
};
#[cfg(any(
    all(feature = "tokio-runtime", not(target_arch = "wasm32")),
    all(feature = "browser", target_arch = "wasm32")
))]
pub use ws::Messages;
pub use ws_config::WebSocketConfig;
