//! The crate's one error type.

use std::fmt;

use crate::rest::MoleculerError;
#[cfg(feature = "rest")]
use crate::rest::RequestError;
use crate::SessionError;

/// Everything that can go wrong, on every target. Each variant says what the caller should do.
///
/// Below a failed REST call the causes are there to walk, as with any `std::error::Error`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::error::Error as _;
///
/// let client = moleculer_ws_client::Client::new().unwrap();
/// // Nothing listens on port 9 (discard) here.
/// let err = client.get("http://127.0.0.1:9/api").await.unwrap_err();
/// let mut causes = vec![err.to_string()];
/// let mut source = err.source();
/// while let Some(cause) = source {
///     causes.push(cause.to_string());
///     source = cause.source();
/// }
/// assert!(causes.len() >= 2, "the client's message, then what failed below: {causes:?}");
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse or its scheme is not `ws`, `wss`, `http` or `https`.
    /// Fix the URL.
    InvalidUrl(String),
    /// A setting or header is invalid. Fix the configuration.
    InvalidConfig(String),
    /// The gateway refused the WebSocket upgrade with a status the reconnect policy stops on
    /// (401, 403, 404 by default). The session stopped: fix the token or the path.
    Rejected {
        /// The HTTP status of the refusal.
        status: u16,
    },
    /// An upgrade attempt was answered with another HTTP status. The session retries.
    UpgradeStatus {
        /// The HTTP status.
        status: u16,
    },
    /// A network, TLS or protocol failure. The session retries; REST callers may retry.
    Transport(String),
    /// The HTTP proxy could not be reached (`status` is `None`; the session retries) or
    /// refused the tunnel to the gateway with `status`: 407 (it wants credentials, or other
    /// ones: put `user:password@` in the proxy URL) and 403 (its policy forbids this
    /// destination: ask its administrator, or bypass the proxy for the host) stop the session;
    /// other statuses are retried. The message names the proxy and says what to fix.
    Proxy {
        /// The proxy's answer to `CONNECT`, if it answered.
        status: Option<u16>,
        /// What happened and what to do.
        message: String,
    },
    /// An attempt to open the socket took longer than the connect timeout. The session retries.
    ConnectTimeout,
    /// A heartbeat `!` went unanswered: the link was closed. The session retries.
    HeartbeatLost,
    /// The connection closed and reconnecting is disabled. Connect again if you want to.
    ConnectionClosed {
        /// The close code, if any.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// The reconnect policy's attempt limit was reached. The session stopped.
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// `disconnect()` was called (or every handle dropped) before the awaited thing happened.
    Disconnected,
    /// Waiting (for example in `wait_for_connection`) took longer than the given timeout.
    Timeout,
    /// No async runtime to run the connection on: create the connection inside a tokio runtime.
    NoRuntime(String),
    /// A frame or a response body is not the JSON that was asked for.
    Decode(String),
    /// A REST request failed below HTTP (connection, timeout, TLS). Retry if the call is safe
    /// to. [`source`](std::error::Error::source) leads to the cause.
    #[cfg(feature = "rest")]
    Request(RequestError),
    /// The gateway answered a REST call with an error (status >= 400).
    Gateway(Box<MoleculerError>),
}

impl fmt::Display for Error {
    /// What the session core reports prints the core's text ([`SessionError::text`], written
    /// once for every face); the rest is the client's own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            Error::Disconnected => f.write_str("disconnected"),
            Error::Timeout => f.write_str("timed out"),
            Error::NoRuntime(m) => write!(f, "no async runtime: {m}"),
            #[cfg(feature = "rest")]
            Error::Request(m) => write!(f, "request failed: {m}"),
            Error::Gateway(e) => write!(f, "{e}"),
            other => match other.as_session() {
                Some(e) => f.write_str(&e.text()),
                None => f.write_str("error"),
            },
        }
    }
}

impl std::error::Error for Error {
    /// The cause, where there is one below the client: what failed below reqwest for
    /// [`Error::Request`] (whose own text this error prints already). The session's errors are
    /// the session core's texts (shared with the browser client, where causes are texts), and
    /// [`Error::Gateway`] prints the gateway's error itself.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "rest")]
            Error::Request(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

#[cfg(feature = "rest")]
impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        Error::Request(e)
    }
}

impl Error {
    /// The session core's error of the same variant, if it is one.
    fn as_session(&self) -> Option<SessionError> {
        use SessionError as S;
        Some(match self.clone() {
            Error::InvalidConfig(m) => S::InvalidConfig(m),
            Error::Rejected { status } => S::Rejected { status },
            Error::UpgradeStatus { status } => S::UpgradeStatus { status },
            Error::Transport(m) => S::Transport(m),
            Error::Proxy { status, message } => S::Proxy { status, message },
            Error::ConnectTimeout => S::ConnectTimeout,
            Error::HeartbeatLost => S::HeartbeatLost,
            Error::ConnectionClosed { code, reason } => S::ConnectionClosed { code, reason },
            Error::GaveUp { attempts } => S::GaveUp { attempts },
            Error::Decode(m) => S::Decode(m),
            _ => return None,
        })
    }
}

impl From<crate::SessionError> for Error {
    /// The session core's error as the client's variant of the same name and text.
    fn from(e: crate::SessionError) -> Error {
        use crate::SessionError as S;
        match e {
            S::InvalidConfig(m) => Error::InvalidConfig(m),
            S::Rejected { status } => Error::Rejected { status },
            S::UpgradeStatus { status } => Error::UpgradeStatus { status },
            S::Transport(m) => Error::Transport(m),
            S::Proxy { status, message } => Error::Proxy { status, message },
            S::ConnectTimeout => Error::ConnectTimeout,
            S::HeartbeatLost => Error::HeartbeatLost,
            S::ConnectionClosed { code, reason } => Error::ConnectionClosed { code, reason },
            S::GaveUp { attempts } => Error::GaveUp { attempts },
            S::Decode(m) => Error::Decode(m),
            // A variant added to the core later: its text, as a transport error.
            other => Error::Transport(other.text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionError as S;

    /// The client's variants print exactly the core's texts (the browser shows those).
    #[test]
    fn session_errors_keep_their_text() {
        let cases = [
            S::InvalidConfig("x".into()),
            S::Rejected { status: 403 },
            S::UpgradeStatus { status: 502 },
            S::Transport("reset".into()),
            S::Proxy {
                status: None,
                message: "m".into(),
            },
            S::ConnectTimeout,
            S::HeartbeatLost,
            S::ConnectionClosed {
                code: Some(1001),
                reason: "a \"b\"\n".into(),
            },
            S::ConnectionClosed {
                code: None,
                reason: String::new(),
            },
            S::GaveUp { attempts: 3 },
            S::Decode("eof".into()),
        ];
        for s in cases {
            let text = s.to_string();
            let client = Error::from(s.clone());
            assert_eq!(client.to_string(), text);
            assert_eq!(client.as_session(), Some(s), "the variant is kept");
        }
    }
}
