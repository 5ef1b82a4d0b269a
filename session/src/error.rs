//! The session core's error type: why a connection attempt failed, a link was lost or the
//! session stopped. Its texts are written here once, without `core::fmt` (see [`text`](crate::text)),
//! and `Display` prints them, so the Rust and browser clients say exactly the same.

use crate::text::{push_quoted, push_u64};

/// What went wrong with the connection. Each variant says what the caller should do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A setting is invalid. Fix the configuration.
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
    /// A network, TLS or protocol failure. The session retries.
    Transport(String),
    /// The HTTP proxy could not be reached (`status` is `None`; the session retries) or
    /// refused the tunnel to the gateway with `status`: 407 (it wants credentials, or other
    /// ones) and 403 (its policy forbids this destination) stop the session; other statuses
    /// are retried. The message names the proxy and says what to fix.
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
    /// A message is not the JSON that was asked for ([`Message::parse`](crate::Message::parse)).
    Decode(String),
}

impl Error {
    /// The error's text (what `Display` prints).
    pub fn text(&self) -> String {
        let mut s = String::new();
        let (head, tail) = match self {
            Error::InvalidConfig(m) => ("invalid configuration: ", m.as_str()),
            Error::Transport(m) => ("transport error: ", m.as_str()),
            Error::Proxy { message, .. } => ("proxy: ", message.as_str()),
            Error::Decode(m) => ("could not decode: ", m.as_str()),
            Error::ConnectTimeout => ("connect timed out", ""),
            Error::HeartbeatLost => ("heartbeat lost", ""),
            Error::Rejected { status } => {
                s.push_str("the gateway refused the WebSocket upgrade with HTTP ");
                push_u64(&mut s, u64::from(*status));
                return s;
            }
            Error::UpgradeStatus { status } => {
                s.push_str("the WebSocket upgrade was answered with HTTP ");
                push_u64(&mut s, u64::from(*status));
                return s;
            }
            Error::GaveUp { attempts } => {
                s.push_str("gave up after ");
                push_u64(&mut s, u64::from(*attempts));
                s.push_str(" failed reconnect attempts");
                return s;
            }
            Error::ConnectionClosed { code, reason } => {
                s.push_str("connection closed (code ");
                match code {
                    Some(c) => {
                        s.push_str("Some(");
                        push_u64(&mut s, u64::from(*c));
                        s.push(')');
                    }
                    None => s.push_str("None"),
                }
                s.push_str(", reason ");
                push_quoted(&mut s, reason);
                s.push(')');
                return s;
            }
        };
        s.push_str(head);
        s.push_str(tail);
        s
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts, as the `format!` they replace would write them.
    #[test]
    fn texts() {
        let reason = "bye \"now\"\n\t\\ \u{1}é";
        let cases = [
            (
                Error::InvalidConfig("x".into()),
                "invalid configuration: x".to_owned(),
            ),
            (
                Error::Rejected { status: 403 },
                "the gateway refused the WebSocket upgrade with HTTP 403".to_owned(),
            ),
            (
                Error::UpgradeStatus { status: 502 },
                "the WebSocket upgrade was answered with HTTP 502".to_owned(),
            ),
            (
                Error::Transport("reset".into()),
                "transport error: reset".to_owned(),
            ),
            (
                Error::Proxy {
                    status: Some(407),
                    message: "m".into(),
                },
                "proxy: m".to_owned(),
            ),
            (Error::ConnectTimeout, "connect timed out".to_owned()),
            (Error::HeartbeatLost, "heartbeat lost".to_owned()),
            (
                Error::ConnectionClosed {
                    code: Some(1000),
                    reason: reason.into(),
                },
                format!(
                    "connection closed (code {:?}, reason {:?})",
                    Some(1000),
                    reason
                ),
            ),
            (
                Error::ConnectionClosed {
                    code: None,
                    reason: String::new(),
                },
                format!(
                    "connection closed (code {:?}, reason {:?})",
                    None::<u16>, ""
                ),
            ),
            (
                Error::GaveUp { attempts: 12 },
                "gave up after 12 failed reconnect attempts".to_owned(),
            ),
            (
                Error::Decode("eof".into()),
                "could not decode: eof".to_owned(),
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
