//! Settings of one WebSocket connection.

use crate::client::parse_header;
use crate::session::SessionConfig;
use crate::Error;

/// Settings of one WebSocket connection (on top of the [`Client`](crate::Client)'s default
/// headers and token provider).
///
/// Defaults match the Java client: heartbeat every 60 s with a 10 s timeout, reconnect after
/// 3 s, connect automatically.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// Heartbeat, connect timeout and reconnect policy. Default [`SessionConfig::default`].
    pub session: SessionConfig,
    /// Extra headers of the upgrade request. Default: none.
    pub headers: Vec<(String, String)>,
    /// Extra query pairs of the URL, e.g. a `key` the gateway's filter checks. Default: none.
    pub query: Vec<(String, String)>,
    /// Also send the token as this query parameter (for gateways whose filter reads
    /// `?token=`). Default `None`: the token goes in the `Authorization` header only.
    pub token_query_param: Option<String>,
    /// Start connecting as soon as the connection is created. Default `true` (as Java's
    /// `autoConnect`); with `false` nothing happens until `connect()`.
    pub auto_connect: bool,
    /// Events buffered for the [`Events`](crate::Events) stream before the connection waits
    /// for the reader (back-pressure). Default 256. Larger absorbs bursts; a reader that
    /// stalls for long stalls the heartbeat too.
    pub event_buffer: usize,
    /// In a browser (wasm32): one socket for all the tabs of this origin that open the same
    /// URL with `shared`. One tab (the leader, elected with the Web Locks API) holds the socket
    /// and the heartbeat; the others receive its events over a `BroadcastChannel`, each through
    /// its own [`Events`](crate::Events) or handler. When the leader goes (dropped,
    /// disconnected, its tab closed, crashed or frozen), the next tab in line connects at once,
    /// resuming from the last position it saw when [`recover`](Self::recover) is on (the
    /// others skip what they have; a tab that was frozen meanwhile gets
    /// [`Event::Resync`](crate::Event::Resync) with its next message); a leader that goes silent (hung, or frozen
    /// without the `freeze` event) is replaced after two thirds of the heartbeat interval (4 s
    /// with the heartbeat off). When the leader's session gives up (its reconnect policy), the
    /// others stop too, with `Stopped(None)` (the reason is the leader's; the others never give
    /// up on their own); `connect()` in any tab starts the channel again. In
    /// the other tabs a change of leader reads as a lost link (`Closed`, then `Open` again). A
    /// browser without Web Locks (http other than localhost) or BroadcastChannel keeps one
    /// socket per tab, with a console note. In the other tabs, [`Stats`](crate::Stats) count
    /// the tab's own deliveries and reconnects, and `last_rtt` stays `None` (the heartbeat is
    /// the leader's). On native targets a process has no tabs: no effect. Default false.
    pub shared: bool,
    /// Offer permessage-deflate (RFC 7692) to the server (tokio driver, cargo feature
    /// `deflate`, on by default): the server may then send its messages compressed (the
    /// moleculer-ws gateway does from 256 B), and the client inflates them, at most 64 MiB
    /// each (more ends the connection with an error, which the reconnect policy handles). The
    /// client itself never compresses (the extension allows that; it sends little besides
    /// `!`). It replaces a `Sec-WebSocket-Extensions` header of [`headers`](Self::headers).
    /// In a browser the browser decides (it always offers it): no effect there, nor without
    /// the feature. Default true.
    pub compression: bool,
    /// For protocol test suites only (feature `autobahn`): the tokio driver sends every text
    /// and binary message it receives back unchanged, before the session sees it, as the
    /// Autobahn TestSuite's fuzzing server requires of the client under test. Default false.
    #[cfg(feature = "autobahn")]
    pub echo: bool,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            session: SessionConfig::default(),
            headers: Vec::new(),
            query: Vec::new(),
            token_query_param: None,
            auto_connect: true,
            event_buffer: 256,
            shared: false,
            compression: true,
            #[cfg(feature = "autobahn")]
            echo: false,
        }
    }
}

impl WebSocketConfig {
    // heartbeat_interval, heartbeat_timeout, connect_timeout, recover, reconnect,
    // reconnect_delay: the session core's setters, on `self.session`.
    moleculer_ws_session::session_setters!(session_mut);

    fn session_mut(&mut self) -> &mut SessionConfig {
        &mut self.session
    }

    /// Sets the whole session configuration.
    pub fn session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Adds a header to the upgrade request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a query pair to the URL.
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }

    /// Sets [`token_query_param`](Self::token_query_param).
    pub fn token_query_param(mut self, name: Option<String>) -> Self {
        self.token_query_param = name;
        self
    }

    /// Sets [`shared`](Self::shared).
    pub fn shared(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Sets [`compression`](Self::compression).
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// Sets [`auto_connect`](Self::auto_connect).
    pub fn auto_connect(mut self, auto_connect: bool) -> Self {
        self.auto_connect = auto_connect;
        self
    }

    /// Sets [`event_buffer`](Self::event_buffer).
    pub fn event_buffer(mut self, size: usize) -> Self {
        self.event_buffer = size;
        self
    }

    /// Sets [`echo`](Self::echo) (feature `autobahn`, for protocol test suites only).
    #[cfg(feature = "autobahn")]
    pub fn echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }

    /// Checks every setting, in one place.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), Error> {
        self.session.validate()?;
        if self.event_buffer == 0 {
            return Err(Error::InvalidConfig(
                "event_buffer must be at least 1".into(),
            ));
        }
        for (name, value) in &self.headers {
            parse_header(name, value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_match_java() {
        let c = WebSocketConfig::default();
        assert_eq!(c.session.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(c.session.heartbeat_timeout, Duration::from_secs(10));
        assert_eq!(c.session.reconnect.delay, Duration::from_secs(3));
        assert_eq!(c.session.connect_timeout, Duration::from_secs(10));
        assert!(c.auto_connect);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn setters_and_validation() {
        let c = WebSocketConfig::default()
            .heartbeat_interval(Duration::from_millis(300))
            .heartbeat_timeout(Duration::from_millis(100))
            .reconnect_delay(Duration::from_secs(1))
            .header("X-A", "1")
            .query("k", "v");
        assert_eq!(c.session.reconnect.delay, Duration::from_secs(1));
        assert!(c.validate().is_ok());
        assert!(c.clone().event_buffer(0).validate().is_err());
        assert!(c.header("bad name", "x").validate().is_err());
    }
}
