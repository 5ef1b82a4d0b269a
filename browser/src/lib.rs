//! The browser driver of the moleculer-ws session core: a `Driver` runs one
//! `moleculer_ws_session::Session` over the browser's `WebSocket`, `setTimeout` and
//! `performance.now()`, and hands what happened to its owner as a `Step`.
//!
//! Two faces are built on it: the Rust API of `moleculer-ws-client` on wasm32 (`Client::ws`
//! → `(WebSocket, Events)`, as on native targets) and the JavaScript `MoleculerWebsocket` of
//! `moleculer-ws-wasm`. The driver holds no policy of its own: the heartbeat, reconnect,
//! close and classification rules are the core's.
//!
//! On targets other than wasm32 the crate is empty.
#![cfg_attr(not(target_arch = "wasm32"), allow(unused))]

#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(target_arch = "wasm32")]
mod driver;
#[cfg(all(target_arch = "wasm32", feature = "tabs"))]
mod share;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(all(target_arch = "wasm32", feature = "tabs"))]
mod tabs;

#[cfg(target_arch = "wasm32")]
pub use clock::{now, seed, MAX_TIMEOUT_MS};
#[cfg(target_arch = "wasm32")]
pub use driver::{AttemptUrl, Driver, Step};
