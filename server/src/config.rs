//! Gateway configuration.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::ServerError;

/// Gateway settings. Every field has a documented default ([`GatewayConfig::default`]);
/// change them with the by-value setters. [`Gateway::builder`](crate::Gateway::builder) checks
/// them together when it builds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Largest inbound WebSocket message and frame, in bytes. Default 64 KiB, as the Netty
    /// original. Over it the socket is closed with 1009 (message too big).
    pub max_message_size: usize,
    /// Outbound queue per socket, in messages. Default 256. A socket whose queue is full (a
    /// client that reads slower than the gateway pushes) is closed with 1008 and reason
    /// `slow consumer`; the others are not slowed. Larger: more burst tolerance, more memory
    /// per slow socket.
    pub outbound_queue: usize,
    /// How often empty paths are swept. Default 15 s, as the Java gateway.
    pub sweep_period: Duration,
    /// How long a path must be empty before the sweep removes it (and tells the filter's
    /// `on_close`). Default 60 s, as the Java gateway.
    pub path_idle_timeout: Duration,
    /// A shared secret: when set, WebSocket upgrades need `?token=` or `Authorization: Bearer`
    /// with it (else 403) and the `/api/websocket/*` routes need the bearer header (else 401).
    /// Default: none.
    pub token: Option<String>,
    /// Allowed `Origin` values for upgrades (exact match, e.g. `https://app.example.com`).
    /// Default empty: every origin is accepted, as in the original.
    pub allowed_origins: Vec<String>,
    /// Allowed WebSocket path prefixes (e.g. `/ws/`). Default empty: every path.
    pub allowed_path_prefixes: Vec<String>,
    /// Directory served at `/` for GET requests (the demo page and browser client). Default:
    /// none.
    pub static_dir: Option<PathBuf>,
    /// Registers the sample chat service and its route `POST /api/chat/send`. Default true.
    pub sample_chat: bool,
    /// Largest REST request body, in bytes. Default 1 MiB; over it: 413.
    pub max_body_size: usize,
    /// How long shutdown waits for sockets to finish their close handshake. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Registers fault-injection routes for client tests: `POST /api/test/heartbeat-replies`
    /// `{"on": false}` makes the gateway stop answering `!`. Never enable it in production.
    /// Default false.
    pub test_hooks: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            outbound_queue: 256,
            sweep_period: Duration::from_secs(15),
            path_idle_timeout: Duration::from_secs(60),
            token: None,
            allowed_origins: Vec::new(),
            allowed_path_prefixes: Vec::new(),
            static_dir: None,
            sample_chat: true,
            max_body_size: 1024 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            test_hooks: false,
        }
    }
}

impl GatewayConfig {
    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`outbound_queue`](Self::outbound_queue).
    pub fn outbound_queue(mut self, messages: usize) -> Self {
        self.outbound_queue = messages;
        self
    }
    /// Sets [`sweep_period`](Self::sweep_period).
    pub fn sweep_period(mut self, period: Duration) -> Self {
        self.sweep_period = period;
        self
    }
    /// Sets [`path_idle_timeout`](Self::path_idle_timeout).
    pub fn path_idle_timeout(mut self, idle: Duration) -> Self {
        self.path_idle_timeout = idle;
        self
    }
    /// Sets [`token`](Self::token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// Adds an allowed origin ([`allowed_origins`](Self::allowed_origins)).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }
    /// Adds an allowed path prefix ([`allowed_path_prefixes`](Self::allowed_path_prefixes)).
    pub fn allow_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.allowed_path_prefixes.push(prefix.into());
        self
    }
    /// Sets [`static_dir`](Self::static_dir).
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(dir.into());
        self
    }
    /// Sets [`sample_chat`](Self::sample_chat).
    pub fn sample_chat(mut self, on: bool) -> Self {
        self.sample_chat = on;
        self
    }
    /// Sets [`max_body_size`](Self::max_body_size).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }
    /// Sets [`shutdown_timeout`](Self::shutdown_timeout).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets [`test_hooks`](Self::test_hooks).
    pub fn test_hooks(mut self, on: bool) -> Self {
        self.test_hooks = on;
        self
    }

    /// Cross-field checks, in one place.
    pub(crate) fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: &str| Err(ServerError::Config(m.to_owned()));
        if self.max_message_size < 16 {
            return bad("max_message_size must be at least 16 bytes");
        }
        if self.outbound_queue == 0 {
            return bad("outbound_queue must be at least 1");
        }
        if self.sweep_period.is_zero() {
            return bad("sweep_period must be more than 0");
        }
        if self.token.as_deref() == Some("") {
            return bad("token must not be empty");
        }
        if let Some(p) = self
            .allowed_path_prefixes
            .iter()
            .find(|p| !p.starts_with('/'))
        {
            return Err(ServerError::Config(format!(
                "allowed path prefix {p:?} must start with '/'"
            )));
        }
        Ok(())
    }
}
