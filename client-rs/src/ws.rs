//! The WebSocket entry points of [`Client`], the same on every target: the tokio driver
//! (`driver/`) opens the connection on native targets, the browser driver (`browser.rs`) on
//! wasm32.

use crate::{Client, Error, Events, WebSocket, WebSocketConfig, WebSocketHandler};

impl Client {
    /// A WebSocket to `url` (`http(s)` becomes `ws(s)`; relative to the base URL if set) with
    /// its events as a stream. Connects at once unless `config.auto_connect` is off. On native
    /// targets it must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::InvalidConfig`] (in a browser also for headers, which a
    /// browser WebSocket cannot send), or [`Error::NoRuntime`] (native, outside a runtime).
    pub fn ws(&self, url: &str, config: WebSocketConfig) -> Result<(WebSocket, Events), Error> {
        self.open_stream(&[url], config)
    }

    /// A WebSocket to `url` whose events go to `handler` (Java's `ws(url, handler, configure)`,
    /// with the configuration really applied).
    ///
    /// # Errors
    /// As [`ws`](Self::ws).
    pub fn ws_with_handler(
        &self,
        url: &str,
        config: WebSocketConfig,
        handler: impl WebSocketHandler,
    ) -> Result<WebSocket, Error> {
        self.open_with_handler(&[url], config, Box::new(handler))
    }

    /// A WebSocket to the same path on several gateways, for programs without a load
    /// balancer: the first attempt goes to one of `urls` at random, each failed attempt or
    /// lost connection (a gateway restarting says 1012) moves to the next one at once, and the
    /// reconnect delay, with its jitter and attempt limit, applies once per round of all URLs.
    /// With message recovery, a gateway sharing its history with the others (a cluster) lets
    /// the socket resume where it was on any of them.
    ///
    /// # Errors
    /// As [`ws`](Self::ws); [`Error::InvalidUrl`] also for an empty list.
    pub fn ws_any(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
    ) -> Result<(WebSocket, Events), Error> {
        self.open_stream(urls, config)
    }

    /// [`ws_any`](Self::ws_any) with a handler.
    ///
    /// # Errors
    /// As [`ws_any`](Self::ws_any).
    pub fn ws_any_with_handler(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
        handler: impl WebSocketHandler,
    ) -> Result<WebSocket, Error> {
        self.open_with_handler(urls, config, Box::new(handler))
    }
}
