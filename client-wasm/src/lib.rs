//! The browser client of moleculer-ws: `MoleculerWebsocket` of the original `websocket.js`,
//! the JavaScript face of the browser driver (`moleculer-ws-browser`), which runs the same
//! session core as the Rust client (`moleculer-ws-session`) over the browser's `WebSocket`
//! and timers.
//!
//! This crate is the wasm half; `js/websocket.js` is the classic-script loader that defines the
//! global `MoleculerWebsocket(channel, handler, opts)` synchronously and forwards to
//! `Connection` once the module has loaded. Build it with `scripts/build-wasm.sh`.
//!
//! On targets other than wasm32 the crate is empty.
#![cfg_attr(not(target_arch = "wasm32"), allow(unused))]

#[cfg(target_arch = "wasm32")]
mod connection;
#[cfg(target_arch = "wasm32")]
mod options;

#[cfg(target_arch = "wasm32")]
pub use connection::Connection;

/// The heap: see `Cargo.toml` for why not std's default.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
