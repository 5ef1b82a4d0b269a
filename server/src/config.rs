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
    /// Read buffer of each WebSocket, in bytes (tungstenite's `read_buffer_size`). Default
    /// 2 KiB. Clients only send small frames (`!` heartbeats), and tungstenite clears this
    /// much of the buffer on every read attempt, so a small one costs less memory per socket
    /// (measured idle RSS per socket: ~134 KiB with tungstenite's default of 128 KiB, ~9 KiB
    /// with 4 KiB, ~6.5 KiB with 2 KiB) and less CPU per message. Larger inbound messages (up
    /// to `max_message_size`) still arrive whole, in more reads.
    pub ws_read_buffer: usize,
    /// Outbound bytes a WebSocket collects before it writes them (tungstenite's
    /// `write_buffer_size`). Default 8 KiB. Messages already queued for a socket are written
    /// together with one flush; this bounds one write's size and the write buffer a busy socket
    /// keeps. 0 writes every frame at once (still one flush per batch).
    pub ws_write_buffer: usize,
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
    /// Most WebSockets open at once; over it an upgrade gets 503. Default 50 000 (mind the
    /// process's file descriptor limit). 0: no limit.
    pub max_sockets: usize,
    /// Most WebSockets open at once from one remote address; over it: 503. Default 0 (no
    /// limit: many users may share one address behind NAT). Set it when clients are not
    /// behind shared addresses.
    pub max_sockets_per_address: usize,
    /// How long a client may take to send its HTTP request head; slower connections
    /// (slowloris) are closed. Default 10 s.
    pub handshake_timeout: Duration,
    /// Largest HTTP request head (request line and headers), in bytes; at least 8192.
    /// Default 16 KiB; larger heads are answered 431 or the connection is closed.
    pub max_header_size: usize,
    /// Most inbound frames per second per socket (heartbeats included); over it the socket is
    /// closed with 1008 (`too many frames`). Default 100; clients send one `!` every few
    /// seconds. 0: no limit.
    pub max_frames_per_second: u32,
    /// Most bytes queued for one socket; over it the socket is closed as a slow consumer
    /// (1008), like a full [`outbound_queue`](Self::outbound_queue). Default 4 MiB. A message
    /// larger than this is still queued for a socket whose queue is empty. The bytes of a
    /// broadcast are shared by all sockets, so this bounds the backlog, not a copy.
    pub outbound_queue_bytes: usize,
    /// How long one write to a socket may block; a client that stops reading for longer is
    /// closed as a slow consumer (1008). Default 10 s.
    pub write_timeout: Duration,
    /// Closes sockets that send nothing (no `!`) for this long, with 1001 and reason
    /// `idle timeout`. Default `None` (off), as the original: old clients without a heartbeat
    /// stay connected. When on, keep it well above the clients' heartbeat interval (6 s in the
    /// browser, 60 s in the Java client).
    pub idle_timeout: Option<Duration>,
    /// How long a REST call may run; on expiry: 504 `REQUEST_TIMEOUT`. Default 30 s.
    pub request_timeout: Duration,
    /// Origins allowed to call the REST routes from browsers (CORS), e.g.
    /// `https://app.example.com`, or `*` for any. Default empty: no CORS headers (same origin
    /// only, as the original).
    pub cors_origins: Vec<String>,
    /// Registers fault-injection routes for client tests: `POST /api/test/heartbeat-replies`
    /// `{"on": false}` makes the gateway stop answering `!`. Never enable it in production.
    /// Default false.
    pub test_hooks: bool,
    /// For protocol test suites only (the Autobahn TestSuite's fuzzing client): every inbound
    /// text or binary message that is not a `!` heartbeat is sent back as the same message
    /// type. The upgrade, filter, limits and close handling stay as they are. Never enable it
    /// in production: it turns the one-way push socket into an echo server. Default false.
    pub echo: bool,
    /// PEM certificate chain for serving TLS (`https://`, `wss://`) on the gateway's own
    /// listener; set together with [`tls_key`](Self::tls_key). Default: none, plain HTTP (TLS
    /// ends at a load balancer, or the gateway is embedded in an application that serves it).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of [`tls_cert`](Self::tls_cert). Default: none.
    pub tls_key: Option<PathBuf>,
    /// Takes the remote address given to the access filter (and counted by
    /// [`max_sockets_per_address`](Self::max_sockets_per_address)) from the last entry of
    /// `Forwarded: for=` or `X-Forwarded-For`, as set by a reverse proxy in front of the
    /// gateway. Default false: the TCP peer's address. Set it only when every connection comes
    /// through such a proxy: otherwise any client can claim any address.
    pub trust_proxy: bool,
    /// Message recovery: the most messages a path's history holds for clients that reconnect
    /// with `?recover=1` (README "Message recovery"). Default 1000. Only paths a client opted
    /// into keep a history. More covers longer outages at busy paths, at the cost of memory.
    pub recovery_history: usize,
    /// Message recovery: messages older than this leave the history. Default 5 min. A client
    /// away longer gets `recovered: false` and must refetch its state.
    pub recovery_max_age: Duration,
    /// Message recovery: the most bytes (of enveloped frames) a path's history holds; the
    /// oldest messages leave first. Default 16 MiB. Bounds memory when messages are large.
    pub recovery_history_bytes: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            ws_read_buffer: 2 * 1024,
            ws_write_buffer: 8 * 1024,
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
            echo: false,
            max_sockets: 50_000,
            max_sockets_per_address: 0,
            handshake_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            max_frames_per_second: 100,
            outbound_queue_bytes: 4 * 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            idle_timeout: None,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            trust_proxy: false,
            recovery_history: 1000,
            recovery_max_age: Duration::from_secs(300),
            recovery_history_bytes: 16 * 1024 * 1024,
        }
    }
}

impl GatewayConfig {
    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Sets [`ws_read_buffer`](Self::ws_read_buffer).
    pub fn ws_read_buffer(mut self, bytes: usize) -> Self {
        self.ws_read_buffer = bytes;
        self
    }
    /// Sets [`ws_write_buffer`](Self::ws_write_buffer).
    pub fn ws_write_buffer(mut self, bytes: usize) -> Self {
        self.ws_write_buffer = bytes;
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

    /// Sets [`max_sockets`](Self::max_sockets).
    pub fn max_sockets(mut self, n: usize) -> Self {
        self.max_sockets = n;
        self
    }
    /// Sets [`max_sockets_per_address`](Self::max_sockets_per_address).
    pub fn max_sockets_per_address(mut self, n: usize) -> Self {
        self.max_sockets_per_address = n;
        self
    }
    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`max_header_size`](Self::max_header_size).
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }
    /// Sets [`max_frames_per_second`](Self::max_frames_per_second).
    pub fn max_frames_per_second(mut self, n: u32) -> Self {
        self.max_frames_per_second = n;
        self
    }
    /// Sets [`outbound_queue_bytes`](Self::outbound_queue_bytes).
    pub fn outbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.outbound_queue_bytes = bytes;
        self
    }
    /// Sets [`write_timeout`](Self::write_timeout).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Sets [`idle_timeout`](Self::idle_timeout).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Adds a CORS origin ([`cors_origins`](Self::cors_origins)).
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origins.push(origin.into());
        self
    }
    /// Sets [`test_hooks`](Self::test_hooks).
    pub fn test_hooks(mut self, on: bool) -> Self {
        self.test_hooks = on;
        self
    }

    /// Sets [`echo`](Self::echo).
    pub fn echo(mut self, on: bool) -> Self {
        self.echo = on;
        self
    }

    /// Serves TLS with this PEM certificate chain and private key
    /// ([`tls_cert`](Self::tls_cert), [`tls_key`](Self::tls_key)); the files are read when
    /// the gateway is built.
    pub fn tls_pem_files(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(cert.into());
        self.tls_key = Some(key.into());
        self
    }

    /// Sets [`recovery_history`](Self::recovery_history).
    pub fn recovery_history(mut self, messages: usize) -> Self {
        self.recovery_history = messages;
        self
    }
    /// Sets [`recovery_max_age`](Self::recovery_max_age).
    pub fn recovery_max_age(mut self, age: Duration) -> Self {
        self.recovery_max_age = age;
        self
    }
    /// Sets [`recovery_history_bytes`](Self::recovery_history_bytes).
    pub fn recovery_history_bytes(mut self, bytes: usize) -> Self {
        self.recovery_history_bytes = bytes;
        self
    }
    /// Sets [`trust_proxy`](Self::trust_proxy).
    pub fn trust_proxy(mut self, on: bool) -> Self {
        self.trust_proxy = on;
        self
    }

    /// Cross-field checks, in one place.
    pub(crate) fn validate(&self) -> Result<(), ServerError> {
        let bad = |m: &str| Err(ServerError::Config(m.to_owned()));
        if self.max_message_size < 16 {
            return bad("max_message_size must be at least 16 bytes");
        }
        if self.ws_read_buffer < 256 {
            return bad("ws_read_buffer must be at least 256 bytes");
        }
        if self.outbound_queue == 0 {
            return bad("outbound_queue must be at least 1");
        }
        if self.sweep_period.is_zero() {
            return bad("sweep_period must be more than 0");
        }
        if self.max_header_size < 8192 {
            return bad("max_header_size must be at least 8192 bytes");
        }
        if self.handshake_timeout.is_zero() || self.write_timeout.is_zero() {
            return bad("handshake_timeout and write_timeout must be more than 0");
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be more than 0");
        }
        if self
            .idle_timeout
            .is_some_and(|t| t < Duration::from_secs(1))
        {
            return bad("idle_timeout must be at least 1 s (well above the clients' heartbeat)");
        }
        if let Some(o) = self
            .cors_origins
            .iter()
            .find(|o| *o != "*" && o.parse::<axum::http::HeaderValue>().is_err())
        {
            return Err(ServerError::Config(format!(
                "CORS origin {o:?} is not a valid header value"
            )));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key must be set together");
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
