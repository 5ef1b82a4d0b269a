//! The runtime-free part of the connection settings.

use std::time::Duration;

use super::heartbeat::HeartbeatTimer;
use super::reconnect::ReconnectPolicy;
use super::text::{message, Part};

/// Heartbeat, connect-timeout and reconnect settings shared by every driver.
///
/// Defaults match the Java client (`heartbeatInterval` 60 s, `heartbeatTimeout` 10 s,
/// `reconnectDelay` 3 s).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Send `!` when more than this has passed since the last one; the check runs every third
    /// of it. Default 60 s. Shorter detects a dead link sooner but costs traffic; zero turns
    /// the heartbeat off.
    pub heartbeat_interval: Duration,
    /// A `!` unanswered for this long means the link is lost. Default 10 s. Too short gives
    /// false alarms on slow links; zero turns the heartbeat off. Must not exceed the interval
    /// (the rule would send the next `!` first and never see the loss).
    pub heartbeat_timeout: Duration,
    /// Give up one connection attempt (TCP, TLS and upgrade) after this long and treat it as a
    /// failed attempt. Default 10 s. Zero means no limit.
    pub connect_timeout: Duration,
    /// When to reconnect. Default [`ReconnectPolicy::default`].
    pub reconnect: ReconnectPolicy,
    /// Message recovery (README "Message recovery"): ask the gateway with `?recover=1` for
    /// the messages missed while reconnecting; they arrive once each and in order, and
    /// [`Event::Recovery`](super::Event::Recovery) / [`Event::Resync`](super::Event::Resync)
    /// say whether that worked. Default false: the original wire. Needs a gateway with the
    /// extension (others send plain frames, delivered as usual, with no recovery events).
    pub recover: bool,
    /// How to reach the gateway: a WebSocket (default, the original wire), an event stream
    /// (Server-Sent Events, for networks whose proxies refuse WebSocket upgrades), or
    /// [`Transport::Auto`].
    pub transport: Transport,
    /// [`Transport::Auto`]: after this many WebSocket attempts in a row failed to open, the
    /// next attempt opens an event stream. Default 2 (at least 1).
    pub fallback_after: u32,
    /// [`Transport::Auto`]: how long a session stays on an event stream before it tries the
    /// WebSocket again (and goes back to the stream at once if that fails). Default 5 min;
    /// zero never tries again.
    pub websocket_retry: Duration,
}

/// How a session reaches the gateway ([`SessionConfig::transport`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// A WebSocket, as the original clients (default).
    #[default]
    WebSocket,
    /// An event stream (Server-Sent Events over a plain HTTP `GET`): pushes only, which is all
    /// the socket carries; the heartbeat becomes "a keep-alive or a message within the
    /// heartbeat interval and timeout" (docs/protocol.md section 6.7).
    EventStream,
    /// A WebSocket first; after [`SessionConfig::fallback_after`] failed attempts to open one,
    /// an event stream, and the WebSocket again after [`SessionConfig::websocket_retry`].
    Auto,
}

impl Transport {
    /// Reads `websocket`, `sse` (or `event-stream`) and `auto`.
    pub fn parse(name: &str) -> Option<Transport> {
        match name {
            "websocket" => Some(Transport::WebSocket),
            "sse" | "event-stream" => Some(Transport::EventStream),
            "auto" => Some(Transport::Auto),
            _ => None,
        }
    }
}

/// What carries one connection: what the driver opens on [`Action::Connect`](crate::Action).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Carrier {
    /// A WebSocket.
    WebSocket,
    /// An event stream: `GET` with `Accept: text/event-stream` on the same URL with the scheme
    /// `http` (for `ws`) or `https` (for `wss`).
    EventStream,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            reconnect: ReconnectPolicy::default(),
            recover: false,
            transport: Transport::WebSocket,
            fallback_after: 2,
            websocket_retry: Duration::from_secs(300),
        }
    }
}

/// The by-value setters of the session settings, written once: [`SessionConfig`] has them,
/// and so has every driver configuration that holds one (the client's `WebSocketConfig`).
/// `$config` names a method `fn(&mut self) -> &mut SessionConfig`. Not a stable API.
#[doc(hidden)]
#[macro_export]
macro_rules! session_setters {
    ($config:ident) => {
        /// Sets `SessionConfig::heartbeat_interval` (default 60 s; zero turns the heartbeat
        /// off).
        pub fn heartbeat_interval(mut self, interval: ::std::time::Duration) -> Self {
            self.$config().heartbeat_interval = interval;
            self
        }

        /// Sets `SessionConfig::heartbeat_timeout` (default 10 s; zero turns the heartbeat
        /// off).
        pub fn heartbeat_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.$config().heartbeat_timeout = timeout;
            self
        }

        /// Sets `SessionConfig::connect_timeout` (default 10 s; zero means none).
        pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
            self.$config().connect_timeout = timeout;
            self
        }

        /// Sets `SessionConfig::recover`, message recovery (default false).
        pub fn recover(mut self, on: bool) -> Self {
            self.$config().recover = on;
            self
        }

        /// Sets `SessionConfig::transport` (default `Transport::WebSocket`).
        pub fn transport(mut self, transport: $crate::Transport) -> Self {
            self.$config().transport = transport;
            self
        }

        /// Sets `SessionConfig::fallback_after` (default 2 failed WebSocket attempts).
        pub fn fallback_after(mut self, attempts: u32) -> Self {
            self.$config().fallback_after = attempts;
            self
        }

        /// Sets `SessionConfig::websocket_retry` (default 5 min; zero never).
        pub fn websocket_retry(mut self, after: ::std::time::Duration) -> Self {
            self.$config().websocket_retry = after;
            self
        }

        /// Sets the whole `SessionConfig::reconnect` policy (default
        /// `ReconnectPolicy::default()`).
        pub fn reconnect(mut self, policy: $crate::ReconnectPolicy) -> Self {
            self.$config().reconnect = policy;
            self
        }

        /// Sets the first reconnect delay of the `SessionConfig::reconnect` policy (default
        /// 3 s, Java's `reconnectDelay`).
        pub fn reconnect_delay(mut self, delay: ::std::time::Duration) -> Self {
            self.$config().reconnect.delay = delay;
            self
        }
    };
}

impl SessionConfig {
    crate::session_setters!(settings);

    /// Itself, for [`session_setters!`](crate::session_setters).
    fn settings(&mut self) -> &mut SessionConfig {
        self
    }

    /// Cross-field checks, in one place.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the offending setting.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let heartbeat = HeartbeatTimer::new(self.heartbeat_interval, self.heartbeat_timeout);
        if !heartbeat.can_detect_loss() {
            return Err(crate::Error::InvalidConfig(message(&[
                Part::Str("heartbeat_timeout ("),
                Part::Duration(self.heartbeat_timeout),
                Part::Str(") must not exceed heartbeat_interval ("),
                Part::Duration(self.heartbeat_interval),
                Part::Str("): a new `!` would be sent before the timeout could pass"),
            ])));
        }
        if self.fallback_after == 0 {
            return Err(crate::Error::InvalidConfig(
                "fallback_after must be at least 1".to_owned(),
            ));
        }
        self.reconnect
            .validate()
            .map_err(crate::Error::InvalidConfig)
    }
}
