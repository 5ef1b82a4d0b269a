//! Gateway configuration.

use std::path::PathBuf;
use std::time::Duration;

#[cfg(feature = "cli")]
use crate::cli_values::{duration_text, parse_duration};

mod defaults;
mod proxy;
mod setters;
mod validate;

pub use proxy::ProxyHeader;

/// Gateway settings. Every field has a documented default ([`GatewayConfig::default`]);
/// change them with the by-value setters. [`Gateway::builder`](crate::Gateway::builder) checks
/// them together when it builds.
///
/// With the cargo feature `cli` (on by default) this is also clap's `Args`, which the program
/// flattens into its command line: one option per field, with its environment variable, its
/// default taken from [`GatewayConfig::default`], and the first paragraph of the field's
/// documentation as its help. The fields a program does not take are skipped.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Largest inbound WebSocket message/frame in bytes; over it the socket closes with 1009.
    ///
    /// Default 64 KiB, as the Netty original. 1009 is "message too big".
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_MESSAGE_SIZE",
        default_value_t = Self::default().max_message_size))]
    pub max_message_size: usize,
    /// Read buffer per WebSocket in bytes (small: clients send only `!`; less memory per socket).
    ///
    /// Default 2 KiB. Clients only send small frames (`!` heartbeats), so a small buffer costs
    /// less memory per socket (measured idle RSS per socket when the gateway read through
    /// tungstenite: ~134 KiB with its default of 128 KiB, ~9 KiB with 4 KiB, ~6.5 KiB with
    /// 2 KiB). A larger inbound message (up to `max_message_size`) grows the buffer while it
    /// arrives; an idle socket goes back to this size.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_READ_BUFFER",
        default_value_t = Self::default().ws_read_buffer))]
    pub ws_read_buffer: usize,
    /// Most outbound bytes a WebSocket gathers into one write (queued messages are batched).
    ///
    /// Default 8 KiB. Messages already queued for a socket are written together, with one
    /// vectored write of the broadcasts' own bytes (nothing is copied per socket); past the
    /// first message, a write gathers no more than this. 0 writes one message per write.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_WRITE_BUFFER",
        default_value_t = Self::default().ws_write_buffer))]
    pub ws_write_buffer: usize,
    /// permessage-deflate (RFC 7692) with clients that offer it: `on` or `off`.
    ///
    /// Default on. Browsers offer it on every WebSocket; JSON shrinks about 3x. Each message is
    /// compressed once, for every socket of its path that negotiated it (the gateway asks for
    /// no context takeover both ways, so sockets keep no compression state). A client that
    /// does not offer it gets plain frames. Off: the gateway declines every offer.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_COMPRESSION",
        default_value = crate::cli_values::switch_text(Self::default().compression),
        value_parser = crate::cli_values::parse_switch, action = clap::ArgAction::Set))]
    pub compression: bool,
    /// Server-Sent Events beside WebSockets: a `GET` on a path with `Accept:
    /// text/event-stream` opens an event stream there (`on` or `off`).
    ///
    /// Default on. A stream is a socket in every respect (the filter, the token, the socket
    /// limits, the slow-consumer rule, the counts); it reaches clients whose proxies refuse
    /// WebSocket upgrades (docs/protocol.md section 6.7). Off: such a `GET` is served like any
    /// other.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_EVENT_STREAMS",
        default_value = crate::cli_values::switch_text(Self::default().event_streams),
        value_parser = crate::cli_values::parse_switch, action = clap::ArgAction::Set))]
    pub event_streams: bool,
    /// How long an event stream may go without a byte before the gateway writes a keep-alive
    /// comment.
    ///
    /// Default 5 s, below the browser client's heartbeat interval (6 s): on an event stream a
    /// client takes a keep-alive or a message within its heartbeat interval and timeout as
    /// its heartbeat. Keep it below the clients' interval.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_EVENT_STREAM_KEEP_ALIVE",
        default_value = duration_text(Self::default().event_stream_keep_alive),
        value_parser = parse_duration))]
    pub event_stream_keep_alive: Duration,
    /// Messages shorter than this (bytes) go uncompressed even where compression is on.
    ///
    /// Default 256 B: below that deflate saves a few bytes and costs the client an inflate.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_COMPRESSION_THRESHOLD",
        default_value_t = Self::default().compression_threshold))]
    pub compression_threshold: usize,
    /// Outbound queue per socket, in messages; a socket whose queue is full is closed with 1008.
    ///
    /// Default 256. A full queue is a client that reads slower than the gateway pushes: it is
    /// closed with reason `slow consumer`, and the others are not slowed. Larger: more burst
    /// tolerance, more memory per slow socket.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_OUTBOUND_QUEUE",
        default_value_t = Self::default().outbound_queue))]
    pub outbound_queue: usize,
    /// How often empty paths are swept (e.g. 15s, 500ms, 1m).
    ///
    /// Default 15 s, as the Java gateway.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_SWEEP_PERIOD",
        default_value = duration_text(Self::default().sweep_period),
        value_parser = parse_duration))]
    pub sweep_period: Duration,
    /// Longest WebSocket path in bytes; longer: 414 before the upgrade.
    ///
    /// The path is counted percent-decoded, without the query. Default 1 KiB. Refused paths
    /// are counted at `/metrics`.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_PATH_LENGTH",
        default_value_t = Self::default().max_path_length))]
    pub max_path_length: usize,
    /// Most distinct paths with sockets (or a recovery history) at once; past it: 503.
    ///
    /// Default 100 000. A path is removed as soon as its last socket leaves (unless its
    /// recovery history still holds messages), so this bounds memory, not the paths a gateway
    /// serves over time.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_PATHS",
        default_value_t = Self::default().max_paths))]
    pub max_paths: usize,
    /// Shared secret: upgrades need `?token=` or `Authorization: Bearer` (else 403); the
    /// built-in REST routes and /metrics need the bearer header (else 401).
    ///
    /// The built-in routes are the trigger and the chat. Default: none.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "MOLECULER_WS_TOKEN", hide_env_values = true)
    )]
    pub token: Option<String>,
    /// Register the trigger routes POST /api/websocket/send (broadcast to every socket of a
    /// path) and GET /api/websocket/clients. Off by default; without --token anyone who can
    /// reach the gateway can then push to every socket.
    ///
    /// `--token` is the program's [`token`](Self::token). The first route broadcasts
    /// `websocket.send` with the JSON body, the second lists the sockets per path. The actions
    /// `websocket.send` and `websocket.clients` stay callable by services of the broker (and
    /// of the cluster) either way.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_TRIGGER"))]
    pub trigger: bool,
    /// Registers the sample chat service and its route `POST /api/chat/send` (the program's
    /// `--demo`). Default false: anyone who can reach the gateway could broadcast to `ws/chat`.
    #[cfg_attr(feature = "cli", arg(skip = Self::default().sample_chat))]
    pub sample_chat: bool,
    /// Bearer token for GET /metrics (default: --token when set, else /metrics is open).
    ///
    /// `--token` is the program's [`token`](Self::token). When set, `/metrics` needs
    /// `Authorization: Bearer` with it (else 401); when only the token is set, that one
    /// applies. Default: none.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "MOLECULER_WS_METRICS_TOKEN", hide_env_values = true)
    )]
    pub metrics_token: Option<String>,
    /// Paths listed one by one at /metrics (those with the most sockets; the rest is summed
    /// as path="other").
    ///
    /// Each has its own `moleculer_ws_sockets{path=...}` series. Default 100. Bounds the size
    /// of a scrape whatever the number of paths.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_METRICS_MAX_PATHS",
        default_value_t = Self::default().metrics_max_paths))]
    pub metrics_max_paths: usize,
    /// Allowed Origin for upgrades (repeat, or comma-separate in the env var); default: any.
    ///
    /// Exact match, e.g. `https://app.example.com`. Default empty: every origin is accepted,
    /// as in the original.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "allow-origin",
            env = "MOLECULER_WS_ALLOW_ORIGINS",
            value_name = "ALLOW_ORIGINS",
            value_delimiter = ','
        )
    )]
    pub allowed_origins: Vec<String>,
    /// Allowed WebSocket path prefix, e.g. /ws/ (repeat, or comma-separate); default: any path.
    ///
    /// Each must start with `/`.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "allow-path-prefix",
            env = "MOLECULER_WS_ALLOW_PATH_PREFIXES",
            value_name = "ALLOW_PATH_PREFIXES",
            value_delimiter = ','
        )
    )]
    pub allowed_path_prefixes: Vec<String>,
    /// Directory served at / for GET (e.g. a page and the browser client). Default: none
    /// (with --demo: ./js).
    ///
    /// `--demo` is the program's: it also sets [`sample_chat`](Self::sample_chat).
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_STATIC_DIR"))]
    pub static_dir: Option<PathBuf>,
    /// Largest REST request body in bytes; over it: 413.
    ///
    /// Default 1 MiB.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_BODY_SIZE",
        default_value_t = Self::default().max_body_size))]
    pub max_body_size: usize,
    /// How long a REST request body may take to arrive after its head; then 408.
    ///
    /// The head has [`handshake_timeout`](Self::handshake_timeout). Default 10 s; on expiry
    /// the connection is closed too.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_BODY_TIMEOUT",
        default_value = duration_text(Self::default().body_timeout),
        value_parser = parse_duration))]
    pub body_timeout: Duration,
    /// Most plain HTTP connections at once (not counting WebSockets); past it a new
    /// connection gets 503 and is closed; 0 = no limit.
    ///
    /// Plain: REST calls, static files, upgrades not yet done; an upgraded WebSocket counts
    /// under [`max_sockets`](Self::max_sockets) instead. Default 10 000.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_CONNECTIONS",
        default_value_t = Self::default().max_connections))]
    pub max_connections: usize,
    /// Fault injection for client tests: POST /api/test/heartbeat-replies {"on": false} makes
    /// the gateway stop answering `!`. Only in builds with the cargo feature `test-hooks`.
    ///
    /// The feature is off by default, and in release builds and the published program.
    /// Default false.
    #[cfg(feature = "test-hooks")]
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_TEST_HOOKS"))]
    pub test_hooks: bool,
    /// For protocol test suites only (the Autobahn TestSuite's fuzzing client): every inbound
    /// text or binary message is sent back as the same message type, also one that starts
    /// with `!` (the suite's messages may). The upgrade, filter, limits and close handling stay as they are. Never enable it
    /// in production: it turns the one-way push socket into an echo server. Only in builds
    /// with the cargo feature `test-hooks`. Default false.
    #[cfg(feature = "test-hooks")]
    #[cfg_attr(feature = "cli", arg(skip = Self::default().echo))]
    pub echo: bool,
    /// How long shutdown waits for sockets to close (SIGINT closes them with 1001, going
    /// away; SIGTERM with 1012, service restart, so clients reconnect elsewhere).
    ///
    /// The signals are the program's; a library closes with 1001 in
    /// [`RunningGateway::shutdown`](crate::RunningGateway::shutdown) and with 1012 in
    /// [`RunningGateway::shutdown_for_restart`](crate::RunningGateway::shutdown_for_restart).
    /// Default 10 s.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_SHUTDOWN_TIMEOUT",
        default_value = duration_text(Self::default().shutdown_timeout),
        value_parser = parse_duration))]
    pub shutdown_timeout: Duration,
    /// Most WebSockets open at once (over it: 503 before the upgrade); 0 = no limit.
    ///
    /// Default 50 000 (mind the process's file descriptor limit).
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_SOCKETS",
        default_value_t = Self::default().max_sockets))]
    pub max_sockets: usize,
    /// Most WebSockets from one remote address (over it: 503); 0 = no limit (NAT-friendly).
    ///
    /// Default 0: many users may share one address behind NAT. Set it when clients are not
    /// behind shared addresses.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_SOCKETS_PER_ADDRESS",
        default_value_t = Self::default().max_sockets_per_address))]
    pub max_sockets_per_address: usize,
    /// How long a client may take to send its request head (slowloris guard).
    ///
    /// Slower connections are closed. Default 10 s.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_HANDSHAKE_TIMEOUT",
        default_value = duration_text(Self::default().handshake_timeout),
        value_parser = parse_duration))]
    pub handshake_timeout: Duration,
    /// Largest HTTP request head in bytes (at least 8192).
    ///
    /// The head is the request line and the headers. Default 16 KiB; larger heads are
    /// answered 431 or the connection is closed.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_HEADER_SIZE",
        default_value_t = Self::default().max_header_size))]
    pub max_header_size: usize,
    /// Most inbound frames per second per socket, continuations and control frames included
    /// (over it: close 1008); 0 = no limit.
    ///
    /// Every frame counts, also empty continuation frames; the close reason is
    /// `too many frames`. Default 100; clients send one `!` every few seconds.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_FRAMES_PER_SECOND",
        default_value_t = Self::default().max_frames_per_second))]
    pub max_frames_per_second: u32,
    /// Most frames one inbound message may be fragmented into (over it: close 1008); 0 = no
    /// limit.
    ///
    /// The close reason is `too many fragments`. Default 128 (clients send single-frame
    /// messages).
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_MAX_FRAGMENTS",
        default_value_t = Self::default().max_fragments))]
    pub max_fragments: u32,
    /// Most bytes queued for one socket (over it: closed as a slow consumer, 1008).
    ///
    /// Like a full [`outbound_queue`](Self::outbound_queue). Default 4 MiB. A message larger
    /// than this is still queued for a socket whose queue is empty. The bytes of a broadcast
    /// are shared by all sockets, so this bounds the backlog, not a copy.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_OUTBOUND_QUEUE_BYTES",
        default_value_t = Self::default().outbound_queue_bytes))]
    pub outbound_queue_bytes: usize,
    /// How long one write may block before the socket is closed as a slow consumer (1008).
    ///
    /// That is a client that stops reading for longer. Default 10 s.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_WRITE_TIMEOUT",
        default_value = duration_text(Self::default().write_timeout),
        value_parser = parse_duration))]
    pub write_timeout: Duration,
    /// Message recovery (README): most messages kept per path for reconnecting clients that
    /// opted in with `?recover=1` (only such paths keep a history).
    ///
    /// README "Message recovery". Default 1000. More covers longer outages at busy paths, at
    /// the cost of memory.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_RECOVERY_HISTORY",
        default_value_t = Self::default().recovery_history))]
    pub recovery_history: usize,
    /// Message recovery: messages older than this leave the history.
    ///
    /// Default 5 min. A client away longer gets `recovered: false` and must refetch its state.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_RECOVERY_MAX_AGE",
        default_value = duration_text(Self::default().recovery_max_age),
        value_parser = parse_duration))]
    pub recovery_max_age: Duration,
    /// Message recovery: most bytes kept per path's history (oldest messages leave first).
    ///
    /// The bytes of enveloped frames. Default 16 MiB. Bounds memory when messages are large.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_RECOVERY_HISTORY_BYTES",
        default_value_t = Self::default().recovery_history_bytes))]
    pub recovery_history_bytes: usize,
    /// Message recovery: replayed bytes per second one remote address may ask for (over it:
    /// 429 with Retry-After before the upgrade); 0 = no limit.
    ///
    /// A token bucket holding up to [`recovery_history_bytes`](Self::recovery_history_bytes).
    /// Default 1 MiB/s. Nothing is lost when a reconnect's replay does not fit: it recovers on
    /// a later attempt, while the history still holds its messages. Bounds how much a client
    /// can make the gateway send by reconnecting with an old position.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_RECOVERY_REPLAY_RATE",
        default_value_t = Self::default().recovery_replay_rate))]
    pub recovery_replay_rate: usize,
    /// Close sockets that send nothing (no `!`) for this long (1001); off when not given.
    ///
    /// The close reason is `idle timeout`. Default `None` (off), as the original: old clients
    /// without a heartbeat stay connected. When on, keep it well above the clients' heartbeat
    /// interval (6 s in the browser, 60 s in the Java client).
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_IDLE_TIMEOUT",
        value_parser = parse_duration))]
    pub idle_timeout: Option<Duration>,
    /// How long a REST call may run (then 504 REQUEST_TIMEOUT).
    ///
    /// Default 30 s.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_REQUEST_TIMEOUT",
        default_value = duration_text(Self::default().request_timeout),
        value_parser = parse_duration))]
    pub request_timeout: Duration,
    /// Origin allowed to call the REST routes from browsers (CORS; repeat, comma-separate in
    /// the env var, or `*`); default: none (no CORS headers).
    ///
    /// E.g. `https://app.example.com`, or `*` for any. Default empty: same origin only, as the
    /// original.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "cors-origin",
            env = "MOLECULER_WS_CORS_ORIGINS",
            value_name = "CORS_ORIGINS",
            value_delimiter = ','
        )
    )]
    pub cors_origins: Vec<String>,
    /// PEM certificate chain: serve TLS (https://, wss://) on the listener. Needs --tls-key.
    ///
    /// Set together with [`tls_key`](Self::tls_key) (the program's `--tls-key`), e.g. with
    /// [`tls_pem_files`](Self::tls_pem_files). Default: none, plain HTTP (TLS ends at a load
    /// balancer, or the gateway is embedded in an application that serves it).
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "MOLECULER_WS_TLS_CERT", requires = "tls_key")
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    ///
    /// PKCS#8, PKCS#1 or SEC1, of [`tls_cert`](Self::tls_cert) (the program's `--tls-cert`).
    /// Default: none.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "MOLECULER_WS_TLS_KEY", requires = "tls_cert")
    )]
    pub tls_key: Option<PathBuf>,
    /// Behind a reverse proxy: take the client's address (for the access filter, the
    /// per-address limits) from the last entry of this header, the one the proxy writes:
    /// `forwarded` or `x-forwarded-for`. Only when every connection comes through that proxy:
    /// otherwise clients can forge it.
    ///
    /// The address is the one counted by
    /// [`max_sockets_per_address`](Self::max_sockets_per_address) and the replay limit.
    /// Default `None`: the TCP peer's address. Name the header your proxy writes: the other
    /// one is ignored, so a client cannot pick the one it forged.
    #[cfg_attr(
        feature = "cli",
        arg(long, env = "MOLECULER_WS_TRUST_PROXY", value_name = "HEADER")
    )]
    pub trust_proxy: Option<ProxyHeader>,
}
