//! [`ClusterConfig`]: the settings of a cluster node, each with its default and its option.

use std::time::Duration;

use super::transit::Limits;
use super::SharedHistory;
#[cfg(feature = "cli")]
use crate::cli_values::{duration_text, parse_duration};

/// Cluster settings. Every field has a documented default ([`ClusterConfig::default`]);
/// change them with the [`ClusterBuilder`](super::ClusterBuilder) setters, or give them all
/// with [`ClusterBuilder::config`](super::ClusterBuilder::config).
/// [`ClusterBuilder::start`](super::ClusterBuilder::start) checks them.
///
/// With the cargo feature `cli` (on by default) this is also clap's `Args`, as
/// [`GatewayConfig`](crate::GatewayConfig) is: the program's `--namespace`,
/// `--protocol-version` and `--cluster-*` options, their defaults taken from
/// [`ClusterConfig::default`]. The fields a program does not take are skipped.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[non_exhaustive]
pub struct ClusterConfig {
    /// Cluster namespace: only nodes of the same namespace see each other (topics `MOL-<ns>.*`).
    ///
    /// Default: none (topics `MOL.*`). No dots, spaces or wildcards.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_NAMESPACE",
        default_value_t = Self::default().namespace))]
    pub namespace: String,
    /// Moleculer protocol version: 4 for moleculer 0.14 and moleculer-java, 5 for moleculer 0.15.
    ///
    /// Default 4. Nodes of another version are not seen (their packets are dropped and the log
    /// says so).
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_PROTOCOL_VERSION",
        default_value_t = Self::default().protocol_version,
        value_parser = clap::value_parser!(u8).range(4..=5)))]
    pub protocol_version: u8,
    /// How often the cluster HEARTBEAT is sent; silent nodes are dropped after 3 intervals.
    ///
    /// Default 10 s. Shorter finds lost nodes sooner, at the cost of more traffic. The 3
    /// intervals are the default of [`heartbeat_timeout`](Self::heartbeat_timeout).
    #[cfg_attr(feature = "cli", arg(long = "cluster-heartbeat-interval",
        env = "MOLECULER_WS_CLUSTER_HEARTBEAT_INTERVAL", value_name = "CLUSTER_HEARTBEAT_INTERVAL",
        default_value = duration_text(Self::default().heartbeat_interval),
        value_parser = parse_duration))]
    pub heartbeat_interval: Duration,
    /// How long a call of an action on another node may take before 504 REQUEST_TIMEOUT.
    ///
    /// Default 10 s.
    #[cfg_attr(feature = "cli", arg(id = "cluster_request_timeout",
        long = "cluster-request-timeout", env = "MOLECULER_WS_CLUSTER_REQUEST_TIMEOUT",
        value_name = "CLUSTER_REQUEST_TIMEOUT",
        default_value = duration_text(Self::default().request_timeout),
        value_parser = parse_duration))]
    pub request_timeout: Duration,
    /// Largest packet accepted from the transporter, in bytes; larger ones are dropped and
    /// counted.
    ///
    /// Default 1 MiB, the default `max_payload` of nats-server. Bigger packets are dropped
    /// before they are parsed, with a log line and the counter
    /// `moleculer_ws_cluster_packets_dropped_total{reason="too_large"}`. Raise it only if your
    /// nodes announce very many services or send big events or calls: a packet is held in
    /// memory whole, and Redis accepts messages of up to 512 MB.
    #[cfg_attr(feature = "cli", arg(long = "cluster-max-packet-size",
        env = "MOLECULER_WS_CLUSTER_MAX_PACKET_SIZE", value_name = "CLUSTER_MAX_PACKET_SIZE",
        default_value_t = Self::default().max_packet_size))]
    pub max_packet_size: usize,
    /// Most other nodes kept in the node table; INFO from more is refused until one leaves.
    ///
    /// Default 1024. The INFO of a new node beyond this is dropped (logged, counted with
    /// `reason="node_limit"`); the node is taken in once a known node leaves or goes silent.
    /// This bounds the memory and the routing work a flood of made-up node IDs can cause; set
    /// it above the size of your cluster.
    #[cfg_attr(feature = "cli", arg(long = "cluster-max-nodes",
        env = "MOLECULER_WS_CLUSTER_MAX_NODES", value_name = "CLUSTER_MAX_NODES",
        default_value_t = Self::default().max_nodes))]
    pub max_nodes: usize,
    /// Most calls from other nodes running at once; more get 429 QUEUE_FULL at once.
    ///
    /// Default 256. A call beyond this is answered at once with moleculer's 429
    /// `QueueIsFullError` (`QUEUE_FULL`, retryable), as moleculer's bulkhead does, and counted
    /// in `moleculer_ws_cluster_requests_rejected_total`. Higher lets more slow actions run in
    /// parallel, at the cost of memory and CPU a flood of calls can take.
    #[cfg_attr(feature = "cli", arg(long = "cluster-max-concurrent-requests",
        env = "MOLECULER_WS_CLUSTER_MAX_CONCURRENT_REQUESTS",
        value_name = "CLUSTER_MAX_CONCURRENT_REQUESTS",
        default_value_t = Self::default().max_concurrent_requests))]
    pub max_concurrent_requests: usize,
    /// How long a silent node is kept before it is dropped. Default `None`: 3 heartbeat
    /// intervals, as moleculer's 10 s / 30 s. Must be longer than the interval.
    #[cfg_attr(feature = "cli", arg(skip = Self::default().heartbeat_timeout))]
    pub heartbeat_timeout: Option<Duration>,
    /// How long the first connection (and each reconnect attempt) may take. Default 10 s.
    #[cfg_attr(feature = "cli", arg(skip = Self::default().connect_timeout))]
    pub connect_timeout: Duration,
    /// The longest wait between reconnect attempts. Default 5 s; the first waits 100 ms and
    /// the wait doubles up to this.
    #[cfg_attr(feature = "cli", arg(skip = Self::default().max_reconnect_delay))]
    pub max_reconnect_delay: Duration,
    /// Where the recovery histories live in a cluster (README "Message recovery").
    ///
    /// Default `auto`: shared through the transporter's engine (Redis Streams with a Redis
    /// transporter; NATS JetStream with a NATS one, when the server runs it), so a client
    /// recovers from any gateway; per gateway, with a warning in the log, when the engine
    /// cannot keep them. `on`: the node does not start without them. `off`: per gateway.
    #[cfg_attr(feature = "cli", arg(long, env = "MOLECULER_WS_SHARED_HISTORY",
        value_enum, default_value_t = Self::default().shared_history))]
    pub shared_history: SharedHistory,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            namespace: String::new(),
            protocol_version: 4,
            heartbeat_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_packet_size: 1024 * 1024,
            max_nodes: 1024,
            max_concurrent_requests: 256,
            heartbeat_timeout: None,
            connect_timeout: Duration::from_secs(10),
            max_reconnect_delay: Duration::from_secs(5),
            shared_history: SharedHistory::Auto,
        }
    }
}

impl ClusterConfig {
    /// The bounds the transit keeps.
    pub(super) fn limits(&self) -> Limits {
        Limits {
            max_packet_size: self.max_packet_size,
            max_nodes: self.max_nodes,
            max_concurrent_requests: self.max_concurrent_requests,
        }
    }
}

/// The limits of [`ClusterConfig::default`] (the transit's unit tests, the fuzz entry).
impl Default for Limits {
    fn default() -> Self {
        ClusterConfig::default().limits()
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::ClusterConfig;

    /// The defaults of the command line are these, for every field (the skipped ones too).
    #[test]
    fn the_options_default_to_these() {
        let parsed = crate::cli_values::parsed_without_options::<ClusterConfig>();
        assert_eq!(
            format!("{parsed:?}"),
            format!("{:?}", ClusterConfig::default())
        );
    }
}
