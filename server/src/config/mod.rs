//! Gateway configuration.

use std::path::PathBuf;
use std::time::Duration;

mod setters;
mod validate;

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
    /// Longest WebSocket path accepted, in bytes (percent-decoded, without the query). Default
    /// 1 KiB. A longer path is answered 414 before the upgrade and counted at `/metrics`.
    pub max_path_length: usize,
    /// Most distinct paths with an open socket (or a message-recovery history) at once.
    /// Default 100 000. An upgrade that would open one more is answered 503. A path is
    /// removed as soon as its last socket leaves (unless its recovery history still holds
    /// messages), so this bounds memory, not the paths a gateway serves over time.
    pub max_paths: usize,
    /// A shared secret: when set, WebSocket upgrades need `?token=` or `Authorization: Bearer`
    /// with it (else 403), and the built-in routes (the trigger, the chat) and `/metrics` need
    /// the bearer header (else 401). Default: none.
    pub token: Option<String>,
    /// Allowed `Origin` values for upgrades (exact match, e.g. `https://app.example.com`).
    /// Default empty: every origin is accepted, as in the original.
    pub allowed_origins: Vec<String>,
    /// Allowed WebSocket path prefixes (e.g. `/ws/`). Default empty: every path.
    pub allowed_path_prefixes: Vec<String>,
    /// Directory served at `/` for GET requests (the demo page and browser client). Default:
    /// none.
    pub static_dir: Option<PathBuf>,
    /// Registers the sample chat service and its route `POST /api/chat/send` (the program's
    /// `--demo`). Default false: anyone who can reach the gateway could broadcast to `ws/chat`.
    pub sample_chat: bool,
    /// Registers the built-in trigger routes `POST /api/websocket/send` (broadcast
    /// `websocket.send` with the JSON body) and `GET /api/websocket/clients` (sockets per
    /// path). Default false: without a [`token`](Self::token), anyone who can reach the gateway
    /// could push to every socket. The actions `websocket.send` and `websocket.clients` stay
    /// callable by services of the broker (and of the cluster) either way.
    pub trigger: bool,
    /// Largest REST request body, in bytes. Default 1 MiB; over it: 413.
    pub max_body_size: usize,
    /// How long a client may take to send a REST request's body, once its head has arrived
    /// (the head has [`handshake_timeout`](Self::handshake_timeout)). Default 10 s; then: 408
    /// and the connection is closed.
    pub body_timeout: Duration,
    /// Most plain HTTP connections open at once (REST calls, static files, upgrades not yet
    /// done; an upgraded WebSocket counts under [`max_sockets`](Self::max_sockets) instead).
    /// Default 10 000. Past it a new connection gets a bare 503 and is closed at once.
    /// 0: no limit.
    pub max_connections: usize,
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
    /// Most inbound frames per second per socket: every frame counts, control frames and
    /// continuation frames (also empty ones) included. Over it the socket is closed with 1008
    /// (`too many frames`). Default 100; clients send one `!` every few seconds. 0: no limit.
    pub max_frames_per_second: u32,
    /// Most frames one inbound message may be fragmented into. Over it the socket is closed
    /// with 1008 (`too many fragments`). Default 128 (clients send single-frame messages).
    /// 0: no limit.
    pub max_fragments: u32,
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
    /// A shared secret for `GET /metrics`: when set (or when [`token`](Self::token) is set,
    /// which then applies), `/metrics` needs `Authorization: Bearer` with it (else 401).
    /// Default: none.
    pub metrics_token: Option<String>,
    /// Most paths listed with their own `moleculer_ws_sockets{path=...}` series at `/metrics`:
    /// the paths with the most sockets; the others are summed in one `path="other"` series.
    /// Default 100. Bounds the size of a scrape whatever the number of paths.
    pub metrics_max_paths: usize,
    /// Registers fault-injection routes for client tests: `POST /api/test/heartbeat-replies`
    /// `{"on": false}` makes the gateway stop answering `!`. Only in builds with the cargo
    /// feature `test-hooks` (off by default, and in release builds and the published
    /// program). Default false.
    #[cfg(feature = "test-hooks")]
    pub test_hooks: bool,
    /// For protocol test suites only (the Autobahn TestSuite's fuzzing client): every inbound
    /// text or binary message that is not a `!` heartbeat is sent back as the same message
    /// type. The upgrade, filter, limits and close handling stay as they are. Never enable it
    /// in production: it turns the one-way push socket into an echo server. Only in builds
    /// with the cargo feature `test-hooks`. Default false.
    #[cfg(feature = "test-hooks")]
    pub echo: bool,
    /// PEM certificate chain for serving TLS (`https://`, `wss://`) on the gateway's own
    /// listener; set together with [`tls_key`](Self::tls_key). Default: none, plain HTTP (TLS
    /// ends at a load balancer, or the gateway is embedded in an application that serves it).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of [`tls_cert`](Self::tls_cert). Default: none.
    pub tls_key: Option<PathBuf>,
    /// Takes the remote address given to the access filter (and counted by
    /// [`max_sockets_per_address`](Self::max_sockets_per_address) and the replay limit) from
    /// the last entry of this ONE header, as set by the reverse proxy in front of the gateway.
    /// Default `None`: the TCP peer's address. Name the header your proxy writes: the other
    /// one is ignored, so a client cannot pick the one it forged. Set it only when every
    /// connection comes through that proxy: otherwise any client can claim any address.
    pub trust_proxy: Option<ProxyHeader>,
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
    /// Message recovery: replayed bytes one remote address may ask for per second (a token
    /// bucket holding up to [`recovery_history_bytes`](Self::recovery_history_bytes)). Default
    /// 1 MiB/s. A reconnect whose replay does not fit is answered 429 with `Retry-After`
    /// before the upgrade (nothing is lost: it recovers on a later attempt, while the history
    /// still holds its messages). Bounds how much a client can make the gateway send by
    /// reconnecting with an old position. 0: no limit.
    pub recovery_replay_rate: usize,
}

/// The header a trusted reverse proxy writes the client's address into
/// ([`GatewayConfig::trust_proxy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeader {
    /// `Forwarded: for=...` (RFC 7239).
    Forwarded,
    /// `X-Forwarded-For: ...`.
    XForwardedFor,
}

impl std::str::FromStr for ProxyHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "forwarded" => Ok(Self::Forwarded),
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            _ => Err(format!(
                "{s:?}: name the header your proxy writes, forwarded or x-forwarded-for"
            )),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            ws_read_buffer: 2 * 1024,
            ws_write_buffer: 8 * 1024,
            outbound_queue: 256,
            sweep_period: Duration::from_secs(15),
            max_path_length: 1024,
            max_paths: 100_000,
            token: None,
            allowed_origins: Vec::new(),
            allowed_path_prefixes: Vec::new(),
            static_dir: None,
            sample_chat: false,
            trigger: false,
            max_body_size: 1024 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(10),
            metrics_token: None,
            metrics_max_paths: 100,
            #[cfg(feature = "test-hooks")]
            test_hooks: false,
            #[cfg(feature = "test-hooks")]
            echo: false,
            max_sockets: 50_000,
            max_sockets_per_address: 0,
            handshake_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            max_frames_per_second: 100,
            max_fragments: 128,
            outbound_queue_bytes: 4 * 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            idle_timeout: None,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            trust_proxy: None,
            recovery_history: 1000,
            recovery_max_age: Duration::from_secs(300),
            recovery_history_bytes: 16 * 1024 * 1024,
            recovery_replay_rate: 1024 * 1024,
        }
    }
}
