//! The crate's one error type.

use crate::rest::MoleculerError;

/// Everything that can go wrong, on every target. Each variant says what the caller should do.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse or its scheme is not `ws`, `wss`, `http` or `https`.
    /// Fix the URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A setting or header is invalid. Fix the configuration.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The gateway refused the WebSocket upgrade with a status the reconnect policy stops on
    /// (401, 403, 404 by default). The session stopped: fix the token or the path.
    #[error("the gateway refused the WebSocket upgrade with HTTP {status}")]
    Rejected {
        /// The HTTP status of the refusal.
        status: u16,
    },
    /// An upgrade attempt was answered with another HTTP status. The session retries.
    #[error("the WebSocket upgrade was answered with HTTP {status}")]
    UpgradeStatus {
        /// The HTTP status.
        status: u16,
    },
    /// A network, TLS or protocol failure. The session retries; REST callers may retry.
    #[error("transport error: {0}")]
    Transport(String),
    /// The HTTP proxy could not be reached (`status` is `None`; the session retries) or
    /// refused the tunnel to the gateway with `status`: 407 (it wants credentials, or other
    /// ones: put `user:password@` in the proxy URL) and 403 (its policy forbids this
    /// destination: ask its administrator, or bypass the proxy for the host) stop the session;
    /// other statuses are retried. The message names the proxy and says what to fix.
    #[error("proxy: {message}")]
    Proxy {
        /// The proxy's answer to `CONNECT`, if it answered.
        status: Option<u16>,
        /// What happened and what to do.
        message: String,
    },
    /// An attempt to open the socket took longer than the connect timeout. The session retries.
    #[error("connect timed out")]
    ConnectTimeout,
    /// A heartbeat `!` went unanswered: the link was closed. The session retries.
    #[error("heartbeat lost")]
    HeartbeatLost,
    /// The connection closed and reconnecting is disabled. Connect again if you want to.
    #[error("connection closed (code {code:?}, reason {reason:?})")]
    ConnectionClosed {
        /// The close code, if any.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// The reconnect policy's attempt limit was reached. The session stopped.
    #[error("gave up after {attempts} failed reconnect attempts")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// `disconnect()` was called (or every handle dropped) before the awaited thing happened.
    #[error("disconnected")]
    Disconnected,
    /// Waiting (for example in `wait_for_connection`) took longer than the given timeout.
    #[error("timed out")]
    Timeout,
    /// No async runtime to run the connection on: create the connection inside a tokio runtime.
    #[error("no async runtime: {0}")]
    NoRuntime(String),
    /// A frame or a response body is not the JSON that was asked for.
    #[error("could not decode: {0}")]
    Decode(String),
    /// A REST request failed below HTTP (connection, timeout, TLS). Retry if the call is safe to.
    #[error("request failed: {0}")]
    Request(String),
    /// The gateway answered a REST call with an error (status >= 400).
    #[error("{0}")]
    Gateway(Box<MoleculerError>),
}
