//! The close policy: after a lost connection or a failed attempt, retry or stop.

use std::time::Duration;

use super::event::ConnectFailure;
use super::reconnect::ReconnectPolicy;
use crate::Error;

/// Close code "try again later".
pub(crate) const TRY_AGAIN_LATER: u16 = 1013;
/// The longest `Retry-After` honoured: a server cannot park a client for longer.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Why a connection or an attempt ended (other than `disconnect()`, which never reconnects).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cause {
    /// The server closed the socket, cleanly or not.
    Closed { code: Option<u16>, reason: String },
    /// The open socket failed.
    Transport(String),
    /// No heartbeat reply in time.
    HeartbeatLost,
    /// The attempt to open did not succeed.
    Failed(ConnectFailure),
    /// The attempt to open took longer than the connect timeout.
    ConnectTimeout,
}

/// What to do after a [`Cause`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Reconnect after the next backoff delay, but not sooner than `at_least`.
    Retry { at_least: Duration },
    /// Stop the session with this error.
    Stop(Error),
}

/// Reconnect on errors, heartbeat loss and clean server closes alike (the originals only noticed
/// a clean close by the heartbeat); stop on the configured upgrade statuses or when reconnecting
/// is off; wait longer after 1013.
pub(crate) fn verdict(policy: &ReconnectPolicy, cause: &Cause) -> Verdict {
    if let Cause::Failed(
        ConnectFailure::HttpStatus(status) | ConnectFailure::RetryAfter { status, .. },
    ) = cause
    {
        if policy.stop_on_http_status.contains(status) {
            return Verdict::Stop(Error::Rejected { status: *status });
        }
    }
    // A proxy that wants other credentials (407) or forbids the destination (403) will not
    // change its mind by itself.
    if let Cause::Failed(ConnectFailure::Proxy {
        status: Some(407 | 403),
        ..
    }) = cause
    {
        return Verdict::Stop(cause_error(cause));
    }
    if !policy.enabled {
        return Verdict::Stop(cause_error(cause));
    }
    match cause {
        Cause::Closed {
            code: Some(TRY_AGAIN_LATER),
            ..
        } => Verdict::Retry {
            at_least: policy.try_again_later_delay,
        },
        Cause::Failed(ConnectFailure::RetryAfter { delay, .. }) => Verdict::Retry {
            at_least: (*delay).min(MAX_RETRY_AFTER),
        },
        _ => Verdict::Retry {
            at_least: Duration::ZERO,
        },
    }
}

/// The error a cause amounts to, as reported on the event stream.
pub(crate) fn cause_error(cause: &Cause) -> Error {
    match cause {
        Cause::Closed { code, reason } => Error::ConnectionClosed {
            code: *code,
            reason: reason.clone(),
        },
        Cause::Transport(message) => Error::Transport(message.clone()),
        Cause::HeartbeatLost => Error::HeartbeatLost,
        Cause::Failed(
            ConnectFailure::HttpStatus(status) | ConnectFailure::RetryAfter { status, .. },
        ) => Error::UpgradeStatus { status: *status },
        Cause::Failed(ConnectFailure::Transport(message)) => Error::Transport(message.clone()),
        Cause::Failed(ConnectFailure::Proxy { status, message }) => Error::Proxy {
            status: *status,
            message: message.clone(),
        },
        Cause::ConnectTimeout => Error::ConnectTimeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(at_least: u64) -> Verdict {
        Verdict::Retry {
            at_least: Duration::from_secs(at_least),
        }
    }

    #[test]
    fn reconnects_on_every_kind_of_loss() {
        let p = ReconnectPolicy::default();
        for cause in [
            Cause::Closed {
                code: Some(1000),
                reason: String::new(),
            },
            Cause::Closed {
                code: Some(1001),
                reason: "bye".into(),
            },
            Cause::Closed {
                code: None,
                reason: String::new(),
            },
            Cause::Transport("reset".into()),
            Cause::HeartbeatLost,
            Cause::ConnectTimeout,
            Cause::Failed(ConnectFailure::Transport("refused".into())),
            Cause::Failed(ConnectFailure::HttpStatus(500)),
            Cause::Failed(ConnectFailure::HttpStatus(502)),
        ] {
            assert_eq!(verdict(&p, &cause), retry(0), "{cause:?}");
        }
    }

    #[test]
    fn stops_on_auth_and_missing_path_statuses() {
        let p = ReconnectPolicy::default();
        for status in [401, 403, 404] {
            let cause = Cause::Failed(ConnectFailure::HttpStatus(status));
            assert_eq!(
                verdict(&p, &cause),
                Verdict::Stop(Error::Rejected { status })
            );
        }
    }

    #[test]
    fn stop_statuses_are_configurable() {
        let p = ReconnectPolicy::default().stop_on_http_status(vec![]);
        let cause = Cause::Failed(ConnectFailure::HttpStatus(403));
        assert_eq!(verdict(&p, &cause), retry(0));
        let p = ReconnectPolicy::default().stop_on_http_status(vec![503]);
        let cause = Cause::Failed(ConnectFailure::HttpStatus(503));
        assert_eq!(
            verdict(&p, &cause),
            Verdict::Stop(Error::Rejected { status: 503 })
        );
    }

    #[test]
    fn proxy_refusals_stop_and_unreachable_proxies_retry() {
        let p = ReconnectPolicy::default();
        let proxy = |status| {
            Cause::Failed(ConnectFailure::Proxy {
                status,
                message: "m".into(),
            })
        };
        for status in [407, 403] {
            assert_eq!(
                verdict(&p, &proxy(Some(status))),
                Verdict::Stop(Error::Proxy {
                    status: Some(status),
                    message: "m".into()
                })
            );
        }
        assert_eq!(verdict(&p, &proxy(None)), retry(0));
        assert_eq!(verdict(&p, &proxy(Some(502))), retry(0));
    }

    #[test]
    fn try_again_later_waits_longer() {
        let p = ReconnectPolicy::default();
        let cause = Cause::Closed {
            code: Some(1013),
            reason: String::new(),
        };
        assert_eq!(verdict(&p, &cause), retry(30));
        let p = p.try_again_later_delay(Duration::from_secs(5));
        assert_eq!(verdict(&p, &cause), retry(5));
    }

    #[test]
    fn disabled_reconnect_stops_with_the_cause() {
        let p = ReconnectPolicy::disabled();
        let closed = Cause::Closed {
            code: Some(1001),
            reason: "x".into(),
        };
        assert_eq!(
            verdict(&p, &closed),
            Verdict::Stop(Error::ConnectionClosed {
                code: Some(1001),
                reason: "x".into()
            })
        );
        assert_eq!(
            verdict(&p, &Cause::HeartbeatLost),
            Verdict::Stop(Error::HeartbeatLost)
        );
        assert_eq!(
            verdict(&p, &Cause::ConnectTimeout),
            Verdict::Stop(Error::ConnectTimeout)
        );
        let failed = Cause::Failed(ConnectFailure::HttpStatus(500));
        assert_eq!(
            verdict(&p, &failed),
            Verdict::Stop(Error::UpgradeStatus { status: 500 })
        );
        // A stop status still reads as a refusal.
        let refused = Cause::Failed(ConnectFailure::HttpStatus(403));
        assert_eq!(
            verdict(&p, &refused),
            Verdict::Stop(Error::Rejected { status: 403 })
        );
    }
}
