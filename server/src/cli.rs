//! The program's command line: every option with its environment variable, and the
//! [`GatewayConfig`] it makes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use moleculer_ws_server::{GatewayConfig, ProxyHeader};

/// The Moleculer WebSocket gateway: pushes `websocket.send` events to WebSocket clients and
/// maps REST routes to actions. Every option can also be set by the environment variable shown.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub(crate) struct Cli {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "MOLECULER_WS_LISTEN", default_value = "127.0.0.1:3000")]
    pub(crate) listen: String,

    /// This node's ID (in error bodies; in a cluster, the Moleculer node ID, unique per node).
    /// Default: moleculer-ws-<pid>, or <hostname>-<pid> with --transporter.
    #[arg(long, env = "MOLECULER_WS_NODE_ID")]
    pub(crate) node_id: Option<String>,

    /// Join a Moleculer cluster through this transporter: nats://host:port or
    /// redis://host:port. Default: none (embedded broker, this process only).
    #[arg(long, env = "MOLECULER_WS_TRANSPORTER")]
    pub(crate) transporter: Option<String>,

    /// Cluster namespace: only nodes of the same namespace see each other (topics MOL-<ns>.*).
    #[arg(long, env = "MOLECULER_WS_NAMESPACE", default_value = "")]
    pub(crate) namespace: String,

    /// Moleculer protocol version: 4 for moleculer 0.14 and moleculer-java, 5 for moleculer 0.15.
    #[arg(long, env = "MOLECULER_WS_PROTOCOL_VERSION", default_value_t = 4,
          value_parser = clap::value_parser!(u8).range(4..=5))]
    pub(crate) protocol_version: u8,

    /// How often the cluster HEARTBEAT is sent; silent nodes are dropped after 3 intervals.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub(crate) cluster_heartbeat_interval: Duration,

    /// How long a call of an action on another node may take before 504 REQUEST_TIMEOUT.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) cluster_request_timeout: Duration,

    /// Largest packet accepted from the transporter, in bytes; larger ones are dropped and
    /// counted.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_MAX_PACKET_SIZE", default_value_t = 1024 * 1024)]
    pub(crate) cluster_max_packet_size: usize,

    /// Most other nodes kept in the node table; INFO from more is refused until one leaves.
    #[arg(long, env = "MOLECULER_WS_CLUSTER_MAX_NODES", default_value_t = 1024)]
    pub(crate) cluster_max_nodes: usize,

    /// Most calls from other nodes running at once; more get 429 QUEUE_FULL at once.
    #[arg(
        long,
        env = "MOLECULER_WS_CLUSTER_MAX_CONCURRENT_REQUESTS",
        default_value_t = 256
    )]
    pub(crate) cluster_max_concurrent_requests: usize,

    /// Largest inbound WebSocket message/frame in bytes; over it the socket closes with 1009.
    #[arg(long, env = "MOLECULER_WS_MAX_MESSAGE_SIZE", default_value_t = 64 * 1024)]
    pub(crate) max_message_size: usize,

    /// Read buffer per WebSocket in bytes (small: clients send only `!`; less memory per socket).
    #[arg(long, env = "MOLECULER_WS_READ_BUFFER", default_value_t = 2 * 1024)]
    pub(crate) ws_read_buffer: usize,

    /// Outbound bytes a WebSocket collects before writing them (queued messages are batched).
    #[arg(long, env = "MOLECULER_WS_WRITE_BUFFER", default_value_t = 8 * 1024)]
    pub(crate) ws_write_buffer: usize,

    /// Outbound queue per socket, in messages; a socket whose queue is full is closed with 1008.
    #[arg(long, env = "MOLECULER_WS_OUTBOUND_QUEUE", default_value_t = 256)]
    pub(crate) outbound_queue: usize,

    /// How often empty paths are swept (e.g. 15s, 500ms, 1m).
    #[arg(long, env = "MOLECULER_WS_SWEEP_PERIOD", default_value = "15s", value_parser = parse_duration)]
    pub(crate) sweep_period: Duration,

    /// Longest WebSocket path in bytes; longer: 414 before the upgrade.
    #[arg(long, env = "MOLECULER_WS_MAX_PATH_LENGTH", default_value_t = 1024)]
    pub(crate) max_path_length: usize,

    /// Most distinct paths with sockets (or a recovery history) at once; past it: 503.
    #[arg(long, env = "MOLECULER_WS_MAX_PATHS", default_value_t = 100_000)]
    pub(crate) max_paths: usize,

    /// Shared secret: upgrades need `?token=` or `Authorization: Bearer` (else 403); the
    /// built-in REST routes and /metrics need the bearer header (else 401).
    #[arg(long, env = "MOLECULER_WS_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// Register the trigger routes POST /api/websocket/send (broadcast to every socket of a
    /// path) and GET /api/websocket/clients. Off by default; without --token anyone who can
    /// reach the gateway can then push to every socket.
    #[arg(long, env = "MOLECULER_WS_TRIGGER")]
    pub(crate) trigger: bool,

    /// Run the demo: the sample chat (POST /api/chat/send broadcasts to ws/chat) and the demo
    /// page (the directory --static-dir, default ./js) at /.
    #[arg(long, env = "MOLECULER_WS_DEMO")]
    pub(crate) demo: bool,

    /// Bearer token for GET /metrics (default: --token when set, else /metrics is open).
    #[arg(long, env = "MOLECULER_WS_METRICS_TOKEN", hide_env_values = true)]
    pub(crate) metrics_token: Option<String>,

    /// Paths listed one by one at /metrics (those with the most sockets; the rest is summed
    /// as path="other").
    #[arg(long, env = "MOLECULER_WS_METRICS_MAX_PATHS", default_value_t = 100)]
    pub(crate) metrics_max_paths: usize,

    /// Allowed Origin for upgrades (repeat, or comma-separate in the env var); default: any.
    #[arg(
        long = "allow-origin",
        env = "MOLECULER_WS_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub(crate) allow_origins: Vec<String>,

    /// Allowed WebSocket path prefix, e.g. /ws/ (repeat, or comma-separate); default: any path.
    #[arg(
        long = "allow-path-prefix",
        env = "MOLECULER_WS_ALLOW_PATH_PREFIXES",
        value_delimiter = ','
    )]
    pub(crate) allow_path_prefixes: Vec<String>,

    /// Directory served at / for GET (e.g. a page and the browser client). Default: none
    /// (with --demo: ./js).
    #[arg(long, env = "MOLECULER_WS_STATIC_DIR")]
    pub(crate) static_dir: Option<PathBuf>,

    /// Largest REST request body in bytes; over it: 413.
    #[arg(long, env = "MOLECULER_WS_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    pub(crate) max_body_size: usize,

    /// How long a REST request body may take to arrive after its head; then 408.
    #[arg(long, env = "MOLECULER_WS_BODY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) body_timeout: Duration,

    /// Most plain HTTP connections at once (not counting WebSockets); past it a new
    /// connection gets 503 and is closed; 0 = no limit.
    #[arg(long, env = "MOLECULER_WS_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub(crate) max_connections: usize,

    /// Fault injection for client tests: POST /api/test/heartbeat-replies {"on": false} makes
    /// the gateway stop answering `!`. Only in builds with the cargo feature `test-hooks`.
    #[cfg(feature = "test-hooks")]
    #[arg(long, env = "MOLECULER_WS_TEST_HOOKS")]
    pub(crate) test_hooks: bool,

    /// How long shutdown waits for sockets to close (SIGINT closes them with 1001, going
    /// away; SIGTERM with 1012, service restart, so clients reconnect elsewhere).
    #[arg(long, env = "MOLECULER_WS_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) shutdown_timeout: Duration,

    /// Most WebSockets open at once (over it: 503 before the upgrade); 0 = no limit.
    #[arg(long, env = "MOLECULER_WS_MAX_SOCKETS", default_value_t = 50_000)]
    pub(crate) max_sockets: usize,

    /// Most WebSockets from one remote address (over it: 503); 0 = no limit (NAT-friendly).
    #[arg(
        long,
        env = "MOLECULER_WS_MAX_SOCKETS_PER_ADDRESS",
        default_value_t = 0
    )]
    pub(crate) max_sockets_per_address: usize,

    /// How long a client may take to send its request head (slowloris guard).
    #[arg(long, env = "MOLECULER_WS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) handshake_timeout: Duration,

    /// Largest HTTP request head in bytes (at least 8192).
    #[arg(long, env = "MOLECULER_WS_MAX_HEADER_SIZE", default_value_t = 16 * 1024)]
    pub(crate) max_header_size: usize,

    /// Most inbound frames per second per socket, continuations and control frames included
    /// (over it: close 1008); 0 = no limit.
    #[arg(
        long,
        env = "MOLECULER_WS_MAX_FRAMES_PER_SECOND",
        default_value_t = 100
    )]
    pub(crate) max_frames_per_second: u32,

    /// Most frames one inbound message may be fragmented into (over it: close 1008); 0 = no
    /// limit.
    #[arg(long, env = "MOLECULER_WS_MAX_FRAGMENTS", default_value_t = 128)]
    pub(crate) max_fragments: u32,

    /// Most bytes queued for one socket (over it: closed as a slow consumer, 1008).
    #[arg(long, env = "MOLECULER_WS_OUTBOUND_QUEUE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub(crate) outbound_queue_bytes: usize,

    /// How long one write may block before the socket is closed as a slow consumer (1008).
    #[arg(long, env = "MOLECULER_WS_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub(crate) write_timeout: Duration,

    /// Message recovery (README): most messages kept per path for reconnecting clients that
    /// opted in with `?recover=1` (only such paths keep a history).
    #[arg(long, env = "MOLECULER_WS_RECOVERY_HISTORY", default_value_t = 1000)]
    pub(crate) recovery_history: usize,

    /// Message recovery: messages older than this leave the history.
    #[arg(long, env = "MOLECULER_WS_RECOVERY_MAX_AGE", default_value = "5m", value_parser = parse_duration)]
    pub(crate) recovery_max_age: Duration,

    /// Message recovery: most bytes kept per path's history (oldest messages leave first).
    #[arg(long, env = "MOLECULER_WS_RECOVERY_HISTORY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub(crate) recovery_history_bytes: usize,

    /// Message recovery: replayed bytes per second one remote address may ask for (over it:
    /// 429 with Retry-After before the upgrade); 0 = no limit.
    #[arg(long, env = "MOLECULER_WS_RECOVERY_REPLAY_RATE", default_value_t = 1024 * 1024)]
    pub(crate) recovery_replay_rate: usize,

    /// Close sockets that send nothing (no `!`) for this long (1001); off when not given.
    #[arg(long, env = "MOLECULER_WS_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub(crate) idle_timeout: Option<Duration>,

    /// How long a REST call may run (then 504 REQUEST_TIMEOUT).
    #[arg(long, env = "MOLECULER_WS_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,

    /// Origin allowed to call the REST routes from browsers (CORS; repeat, comma-separate in the
    /// env var, or `*`); default: none (no CORS headers).
    #[arg(
        long = "cors-origin",
        env = "MOLECULER_WS_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub(crate) cors_origins: Vec<String>,

    /// PEM certificate chain: serve TLS (https://, wss://) on the listener. Needs --tls-key.
    #[arg(long, env = "MOLECULER_WS_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "MOLECULER_WS_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Behind a reverse proxy: take the client's address (for the access filter, the
    /// per-address limits) from the last entry of this header, the one the proxy writes:
    /// `forwarded` or `x-forwarded-for`. Only when every connection comes through that proxy:
    /// otherwise clients can forge it.
    #[arg(long, env = "MOLECULER_WS_TRUST_PROXY", value_name = "HEADER")]
    pub(crate) trust_proxy: Option<ProxyHeader>,
}

/// Parses `250ms`, `15s`, `2m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 250ms, 15s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

impl Cli {
    pub(crate) fn config(&self) -> GatewayConfig {
        let mut c = GatewayConfig::default()
            .max_message_size(self.max_message_size)
            .ws_read_buffer(self.ws_read_buffer)
            .ws_write_buffer(self.ws_write_buffer)
            .outbound_queue(self.outbound_queue)
            .sweep_period(self.sweep_period)
            .max_path_length(self.max_path_length)
            .max_paths(self.max_paths)
            .sample_chat(self.demo)
            .trigger(self.trigger)
            .metrics_max_paths(self.metrics_max_paths)
            .max_body_size(self.max_body_size)
            .body_timeout(self.body_timeout)
            .max_connections(self.max_connections)
            .shutdown_timeout(self.shutdown_timeout)
            .max_sockets(self.max_sockets)
            .max_sockets_per_address(self.max_sockets_per_address)
            .handshake_timeout(self.handshake_timeout)
            .max_header_size(self.max_header_size)
            .max_frames_per_second(self.max_frames_per_second)
            .max_fragments(self.max_fragments)
            .outbound_queue_bytes(self.outbound_queue_bytes)
            .write_timeout(self.write_timeout)
            .recovery_history(self.recovery_history)
            .recovery_max_age(self.recovery_max_age)
            .recovery_history_bytes(self.recovery_history_bytes)
            .recovery_replay_rate(self.recovery_replay_rate)
            .idle_timeout(self.idle_timeout)
            .request_timeout(self.request_timeout)
            .trust_proxy(self.trust_proxy);
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            c = c.tls_pem_files(cert.clone(), key.clone());
        }
        for o in &self.cors_origins {
            c = c.cors_origin(o.clone());
        }
        #[cfg(feature = "test-hooks")]
        {
            c = c.test_hooks(self.test_hooks);
        }
        if let Some(t) = &self.token {
            c = c.token(t.clone());
        }
        if let Some(t) = &self.metrics_token {
            c = c.metrics_token(t.clone());
        }
        for o in &self.allow_origins {
            c = c.allow_origin(o.clone());
        }
        for p in &self.allow_path_prefixes {
            c = c.allow_path_prefix(p.clone());
        }
        match (&self.static_dir, self.demo) {
            (Some(dir), _) => c = c.static_dir(dir.clone()),
            (None, true) => c = c.static_dir("js"),
            (None, false) => {}
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
