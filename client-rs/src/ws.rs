//! The WebSocket entry points of [`Client`], the same on every target: the tokio driver
//! (`driver/`) opens the connection on native targets, the browser driver (`browser.rs`) on
//! wasm32.

use crate::{Client, Error, Event, Events, Message, WebSocket, WebSocketConfig, WebSocketHandler};

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

impl Events {
    /// The messages only, as a stream (and with [`recv`](Messages::recv)): the other events
    /// (open, close, errors, recovery) are skipped. It borrows the events, so drop it to
    /// read them all again. It ends when the events end.
    ///
    /// ```no_run
    /// # use moleculer_ws_client::{Client, WebSocketConfig};
    /// # async fn run(client: Client) -> Result<(), moleculer_ws_client::Error> {
    /// use futures_util::StreamExt;
    ///
    /// let (_socket, mut events) = client.ws("/ws/chat", WebSocketConfig::default())?;
    /// let mut messages = events.messages();
    /// while let Some(message) = messages.next().await {
    ///     println!("{}", message.text());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn messages(&mut self) -> Messages<'_> {
        Messages { events: self }
    }
}

/// The messages of an [`Events`] stream ([`Events::messages`]).
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Messages<'a> {
    events: &'a mut Events,
}

impl Messages<'_> {
    /// The next message, or `None` when the events ended. Cancel safe.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Event::Message(m) = self.events.recv().await? {
                return Some(m);
            }
        }
    }
}

impl futures_core::Stream for Messages<'_> {
    type Item = Message;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Message>> {
        use std::task::Poll;
        loop {
            match std::pin::Pin::new(&mut *self.events).poll_next(cx) {
                Poll::Ready(Some(Event::Message(m))) => return Poll::Ready(Some(m)),
                Poll::Ready(Some(_)) => {}
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Logs a session event through `tracing` (target `moleculer_ws_client::ws`), inside the
/// connection's span: both drivers call it for every event they hand on. Messages and
/// heartbeats at `trace`, the link's changes at `debug` and `info`, failures at `warn`.
pub(crate) fn log_event(event: &Event) {
    const T: &str = "moleculer_ws_client::ws";
    match event {
        Event::Connecting { attempt } => tracing::debug!(target: T, attempt, "connecting"),
        Event::Open => tracing::info!(target: T, "connected"),
        Event::Message(m) => tracing::trace!(target: T, bytes = m.text().len(), "message"),
        Event::Recovery {
            recovered,
            replayed,
        } => tracing::info!(target: T, recovered, replayed, "recovery answered"),
        Event::Resync => tracing::info!(target: T, "messages may have been missed: resync"),
        Event::HeartbeatRoundTrip { rtt } => {
            tracing::trace!(target: T, rtt_ms = rtt.as_secs_f64() * 1e3, "heartbeat answered");
        }
        Event::Closed {
            code,
            reason,
            will_reconnect,
        } => tracing::info!(target: T, ?code, reason, will_reconnect, "closed"),
        Event::Reconnecting { attempt, delay } => tracing::info!(
            target: T,
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "reconnecting"
        ),
        Event::Error(e) => tracing::warn!(target: T, error = %e, "connection error"),
        Event::Transport(carrier) => {
            tracing::info!(target: T, ?carrier, "the next attempts use another transport");
        }
        Event::Stopped(None) => tracing::info!(target: T, "stopped"),
        Event::Stopped(Some(e)) => tracing::warn!(target: T, error = %e, "gave up"),
        _ => tracing::debug!(target: T, ?event, "event"),
    }
}
