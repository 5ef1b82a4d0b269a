//! What the session core hands back to its driver.

use std::time::Duration;

use super::message::Message;
use crate::Error;

/// Something that happened to a connection, delivered in order on the event stream.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An attempt to open the socket starts. `attempt` is 0 for the first connection and counts
    /// failed attempts since the last healthy connection otherwise.
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// The socket is open.
    Open,
    /// A message from the gateway.
    Message(Message),
    /// Message recovery ([`SessionConfig::recover`](super::SessionConfig::recover)): the
    /// gateway's answer, right after [`Event::Open`] (and before any message of that
    /// connection). `recovered`: the messages missed while away follow (`replayed` of them),
    /// each exactly once and in order; `false` on the first connection and whenever recovery
    /// was impossible (then [`Event::Resync`] follows on a reconnect). Never sent by a gateway
    /// without the extension.
    Recovery {
        /// Whether the missed messages are replayed.
        recovered: bool,
        /// How many messages are replayed.
        replayed: u64,
    },
    /// Message recovery: messages may have been missed (the gateway restarted, the client
    /// moved to another gateway, or was away longer than the history reaches): refetch the
    /// state over REST. Later messages are delivered as usual.
    Resync,
    /// [`Transport::Auto`](crate::Transport::Auto): the next attempts open this instead (after
    /// failed WebSocket attempts, an event stream; later, the WebSocket again).
    Transport(crate::Carrier),
    /// A heartbeat `!` was answered after `rtt`; the connection is healthy.
    HeartbeatRoundTrip {
        /// Round-trip time of the `!`.
        rtt: Duration,
    },
    /// The socket closed (by the server, by a failure, or by a lost heartbeat).
    Closed {
        /// The close code, if the server sent one.
        code: Option<u16>,
        /// The close reason, possibly empty.
        reason: String,
        /// Whether a reconnect follows.
        will_reconnect: bool,
    },
    /// The next attempt starts after `delay`.
    Reconnecting {
        /// Attempt number of the coming attempt (1 for the first retry).
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
    /// A failure: a refused or broken attempt, a transport error, a lost heartbeat.
    Error(Error),
    /// The session ended for good: `None` after `disconnect()`, else why it gave up.
    Stopped(Option<Error>),
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Open a socket (with the URL, headers and a fresh token).
    Connect,
    /// Abandon the attempt in progress; report nothing more about it.
    AbortConnect,
    /// Send the text frame `!`.
    SendHeartbeat,
    /// Close the open socket with this code, then drop it; report nothing more about it.
    Close {
        /// Close code to send.
        code: u16,
    },
    /// Hand this event to the application.
    Emit(Event),
}

/// A failed attempt to open the socket, as the driver reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The server answered the upgrade request with this HTTP status.
    HttpStatus(u16),
    /// The upgrade was answered with this HTTP status and a `Retry-After` delay (typically
    /// 503 or 429): the next attempt waits at least that long (capped at one hour).
    RetryAfter {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`.
        delay: Duration,
    },
    /// DNS, TCP, TLS or handshake failure.
    Transport(String),
    /// The HTTP proxy could not be reached (`status` `None`) or answered `CONNECT` with
    /// `status`; `message` says which proxy and what to fix.
    Proxy {
        /// The proxy's HTTP status, if it answered.
        status: Option<u16>,
        /// What happened, for [`Error::Proxy`](crate::Error::Proxy).
        message: String,
    },
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Not started.
    Idle,
    /// An attempt is in progress.
    Connecting,
    /// The socket is open.
    Open,
    /// Waiting before the next attempt.
    Waiting,
    /// Ended by `disconnect()` or by the policy.
    Stopped,
}

/// Counters of a session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Successful reconnections (openings after the first).
    pub reconnects: u64,
    /// Attempts that failed or were abandoned.
    pub failed_attempts: u64,
    /// Total time without an open socket since the first opening, the current outage included.
    pub downtime: Duration,
    /// The last heartbeat round-trip time.
    pub last_rtt: Option<Duration>,
    /// Messages delivered to the application.
    pub messages_received: u64,
}
