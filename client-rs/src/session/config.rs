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
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            reconnect: ReconnectPolicy::default(),
            recover: false,
        }
    }
}

impl SessionConfig {
    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`recover`](Self::recover).
    pub fn recover(mut self, on: bool) -> Self {
        self.recover = on;
        self
    }

    /// Sets [`reconnect`](Self::reconnect).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
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
        self.reconnect
            .validate()
            .map_err(crate::Error::InvalidConfig)
    }
}
