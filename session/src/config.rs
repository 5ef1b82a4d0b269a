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
        self.reconnect
            .validate()
            .map_err(crate::Error::InvalidConfig)
    }
}
