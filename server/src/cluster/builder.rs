//! [`ClusterBuilder`]: the settings of a cluster node, checked together, and its start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::packets::{self, Version};
use super::transit::{ClusterTransport, Limits, Timing, Transit};
use super::transporter::{self, Connected, LinkOptions};
use super::{
    read_loop, timer_loop, write_loop, ClusterError, ClusterHandle, INBOUND_QUEUE, OUTBOUND_QUEUE,
};
use crate::broker::Broker;

/// Configures and starts a cluster node. Never panics: the first invalid setting is returned
/// by [`start`](Self::start).
#[derive(Debug)]
#[must_use]
pub struct ClusterBuilder {
    transporter: Option<String>,
    namespace: String,
    version: Version,
    heartbeat_interval: Duration,
    heartbeat_timeout: Option<Duration>,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_reconnect_delay: Duration,
    limits: Limits,
    error: Option<ClusterError>,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        Self {
            transporter: None,
            namespace: String::new(),
            version: Version::V4,
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: None,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_reconnect_delay: Duration::from_secs(5),
            limits: Limits::default(),
            error: None,
        }
    }
}

impl ClusterBuilder {
    /// The transporter: `nats://host:port` or `redis://host:port` (required).
    pub fn transporter(mut self, url: impl Into<String>) -> Self {
        self.transporter = Some(url.into());
        self
    }

    /// The namespace: only nodes of the same namespace see each other (topics `MOL-<ns>.*`).
    /// Default: none (`MOL.*`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The protocol version: 4 (default) for moleculer 0.14 and moleculer-java, 5 for
    /// moleculer 0.15. Nodes of another version are not seen (their packets are dropped and
    /// the log says so).
    pub fn protocol_version(mut self, version: u8) -> Self {
        match Version::from_number(version) {
            Some(v) => self.version = v,
            None => {
                self.error.get_or_insert(ClusterError::Config(format!(
                    "protocol version {version}: use 4 or 5"
                )));
            }
        }
        self
    }

    /// How often HEARTBEAT is sent (default 10 s). Shorter finds lost nodes sooner, at the
    /// cost of more traffic.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How long a silent node is kept before it is dropped (default: 3 heartbeat intervals,
    /// as moleculer's 10 s / 30 s). Must be longer than the interval.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// How long a call of a remote action may take before it fails with 504
    /// `REQUEST_TIMEOUT` (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long the first connection (and each reconnect attempt) may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait between reconnect attempts (default 5 s; the first waits 100 ms and
    /// the wait doubles up to this).
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// The largest incoming packet accepted, in bytes (default 1 MiB, the default `max_payload`
    /// of nats-server). Bigger packets are dropped before they are parsed, with a log line and
    /// the counter `moleculer_ws_cluster_packets_dropped_total{reason="too_large"}`. Raise it
    /// only if your nodes announce very many services or send big events or calls: a packet is
    /// held in memory whole, and Redis accepts messages of up to 512 MB.
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.limits.max_packet_size = bytes;
        self
    }

    /// How many other nodes are remembered at most (default 1024). The INFO of a new node
    /// beyond this is dropped (logged, counted with `reason="node_limit"`); the node is taken in
    /// once a known node leaves or goes silent. This bounds the memory and the routing work a
    /// flood of made-up node IDs can cause; set it above the size of your cluster.
    pub fn max_nodes(mut self, nodes: usize) -> Self {
        self.limits.max_nodes = nodes;
        self
    }

    /// How many calls from other nodes run at once at most (default 256). A call beyond this
    /// is answered at once with moleculer's 429 `QueueIsFullError` (`QUEUE_FULL`, retryable),
    /// as moleculer's bulkhead does, and counted in
    /// `moleculer_ws_cluster_requests_rejected_total`. Higher lets more slow actions run in
    /// parallel, at the cost of memory and CPU a flood of calls can take.
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.limits.max_concurrent_requests = requests;
        self
    }

    fn check(&self) -> Result<(String, Duration), ClusterError> {
        let url = match &self.transporter {
            Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
            _ => {
                return Err(ClusterError::InvalidTransporter(
                    "no transporter URL".into(),
                ))
            }
        };
        let zero = |what: &str, d: Duration| {
            if d.is_zero() {
                Err(ClusterError::Config(format!(
                    "{what} must be longer than 0"
                )))
            } else {
                Ok(())
            }
        };
        zero("the heartbeat interval", self.heartbeat_interval)?;
        zero("the request timeout", self.request_timeout)?;
        zero("the connect timeout", self.connect_timeout)?;
        zero("the max reconnect delay", self.max_reconnect_delay)?;
        self.limits.check().map_err(ClusterError::Config)?;
        let timeout = self
            .heartbeat_timeout
            .unwrap_or(self.heartbeat_interval.saturating_mul(3));
        if timeout <= self.heartbeat_interval {
            return Err(ClusterError::Config(format!(
                "the heartbeat timeout ({timeout:?}) must be longer than the interval ({:?})",
                self.heartbeat_interval
            )));
        }
        if self.namespace.contains(['.', '*', '>', ' ']) {
            return Err(ClusterError::Config(format!(
                "namespace {:?}: no dots, spaces or wildcards",
                self.namespace
            )));
        }
        Ok((url, timeout))
    }

    /// Connects to the transporter, announces the broker's node (ID: [`Broker::node_id`]) and
    /// plugs the cluster into `broker`. Fails when the first connection fails; later losses
    /// are retried in the background.
    pub async fn start(mut self, broker: &Broker) -> Result<ClusterHandle, ClusterError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let (url, heartbeat_timeout) = self.check()?;
        if !packets::valid_node_id(broker.node_id()) {
            return Err(ClusterError::Config(format!(
                "node ID {:?}: use 1 to {} ASCII letters, digits, '-', '_' and '.' (no empty \
                 part between dots); other nodes refuse other IDs",
                broker.node_id(),
                packets::MAX_NODE_ID_LEN
            )));
        }
        let timing = Timing {
            heartbeat_interval: self.heartbeat_interval,
            heartbeat_timeout,
            request_timeout: self.request_timeout,
        };
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let transit = Arc::new(Transit::new(
            broker.downgrade(),
            broker.node_id().to_owned(),
            self.version,
            &self.namespace,
            timing,
            self.limits,
            out_tx,
        ));
        let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
        let options = LinkOptions {
            client_name: format!("moleculer-ws {}", broker.node_id()),
            connect_timeout: self.connect_timeout,
            max_reconnect_delay: self.max_reconnect_delay,
            max_packet_size: self.limits.max_packet_size,
        };
        let subscriptions = transit.topics().subscriptions(broker.node_id());
        let Connected { link, mut tasks } =
            transporter::connect(&url, subscriptions, in_tx, options).await?;
        tasks.push(tokio::spawn(read_loop(transit.clone(), in_rx)));
        tasks.push(tokio::spawn(timer_loop(transit.clone(), broker.clone())));
        let writer = tokio::spawn(write_loop(link.clone(), out_rx));
        broker.set_transport(Arc::new(ClusterTransport(transit.clone())));
        tracing::info!(
            node = %broker.node_id(),
            transporter = %transporter::redact(&url),
            version = %self.version.as_str(),
            "cluster: joined"
        );
        Ok(ClusterHandle {
            transit,
            broker: broker.clone(),
            _link: link,
            tasks,
            writer: Some(writer),
        })
    }
}
