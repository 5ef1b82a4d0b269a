//! [`ClusterBuilder`]: the settings of a cluster node ([`ClusterConfig`]), checked together,
//! and its start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::ClusterConfig;
use super::history;
use super::packets::{self, Version};
use super::transit::{ClusterTransport, Timing, Transit};
use super::transporter::{self, Connected, LinkOptions};
use super::{
    read_loop, timer_loop, write_loop, ClusterError, ClusterHandle, INBOUND_QUEUE, OUTBOUND_QUEUE,
};
use crate::broker::Broker;

/// Configures and starts a cluster node. Never panics: the first invalid setting is returned
/// by [`start`](Self::start).
#[derive(Debug, Default)]
#[must_use]
pub struct ClusterBuilder {
    transporter: Option<String>,
    config: ClusterConfig,
}

impl ClusterBuilder {
    /// The transporter: `nats://host:port` or `redis://host:port` (required).
    pub fn transporter(mut self, url: impl Into<String>) -> Self {
        self.transporter = Some(url.into());
        self
    }

    /// Uses `config` for every setting (default: [`ClusterConfig::default`]); the setters
    /// below change one.
    pub fn config(mut self, config: ClusterConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets [`ClusterConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = namespace.into();
        self
    }

    /// Sets [`ClusterConfig::protocol_version`]: 4 or 5.
    pub fn protocol_version(mut self, version: u8) -> Self {
        self.config.protocol_version = version;
        self
    }

    /// Sets [`ClusterConfig::heartbeat_interval`].
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// Sets [`ClusterConfig::heartbeat_timeout`].
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.config.heartbeat_timeout = Some(timeout);
        self
    }

    /// Sets [`ClusterConfig::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Sets [`ClusterConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Sets [`ClusterConfig::max_reconnect_delay`].
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.config.max_reconnect_delay = delay;
        self
    }

    /// Sets [`ClusterConfig::shared_history`].
    pub fn shared_history(mut self, shared: super::SharedHistory) -> Self {
        self.config.shared_history = shared;
        self
    }

    /// Sets [`ClusterConfig::max_packet_size`].
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.config.max_packet_size = bytes;
        self
    }

    /// Sets [`ClusterConfig::max_nodes`].
    pub fn max_nodes(mut self, nodes: usize) -> Self {
        self.config.max_nodes = nodes;
        self
    }

    /// Sets [`ClusterConfig::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.config.max_concurrent_requests = requests;
        self
    }

    /// The settings checked together: the transporter URL, the protocol version and the
    /// heartbeat timeout.
    fn check(&self) -> Result<(String, Version, Duration), ClusterError> {
        let c = &self.config;
        let Some(version) = Version::from_number(c.protocol_version) else {
            return Err(ClusterError::Config(format!(
                "protocol version {}: use 4 or 5",
                c.protocol_version
            )));
        };
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
        zero("the heartbeat interval", c.heartbeat_interval)?;
        zero("the request timeout", c.request_timeout)?;
        zero("the connect timeout", c.connect_timeout)?;
        zero("the max reconnect delay", c.max_reconnect_delay)?;
        c.limits().check().map_err(ClusterError::Config)?;
        let timeout = c
            .heartbeat_timeout
            .unwrap_or(c.heartbeat_interval.saturating_mul(3));
        if timeout <= c.heartbeat_interval {
            return Err(ClusterError::Config(format!(
                "the heartbeat timeout ({timeout:?}) must be longer than the interval ({:?})",
                c.heartbeat_interval
            )));
        }
        if c.namespace.contains(['.', '*', '>', ' ']) {
            return Err(ClusterError::Config(format!(
                "namespace {:?}: no dots, spaces or wildcards",
                c.namespace
            )));
        }
        Ok((url, version, timeout))
    }

    /// Connects to the transporter, announces the broker's node (ID: [`Broker::node_id`]) and
    /// plugs the cluster into `broker`. Fails when the first connection fails; later losses
    /// are retried in the background.
    pub async fn start(self, broker: &Broker) -> Result<ClusterHandle, ClusterError> {
        let (url, version, heartbeat_timeout) = self.check()?;
        if !packets::valid_node_id(broker.node_id()) {
            return Err(ClusterError::Config(format!(
                "node ID {:?}: use 1 to {} ASCII letters, digits, '-', '_' and '.' (no empty \
                 part between dots); other nodes refuse other IDs",
                broker.node_id(),
                packets::MAX_NODE_ID_LEN
            )));
        }
        let c = self.config;
        let timing = Timing {
            heartbeat_interval: c.heartbeat_interval,
            heartbeat_timeout,
            request_timeout: c.request_timeout,
        };
        let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let transit = Arc::new(Transit::new(
            broker.downgrade(),
            broker.node_id().to_owned(),
            version,
            &c.namespace,
            timing,
            c.limits(),
            out_tx,
        ));
        let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
        let options = LinkOptions {
            client_name: format!("moleculer-ws {}", broker.node_id()),
            connect_timeout: c.connect_timeout,
            max_reconnect_delay: c.max_reconnect_delay,
            max_packet_size: c.max_packet_size,
        };
        let subscriptions = transit.topics().subscriptions(broker.node_id());
        let Connected { link, mut tasks } =
            transporter::connect(&url, subscriptions, in_tx, options).await?;
        tasks.push(tokio::spawn(read_loop(transit.clone(), in_rx)));
        tasks.push(tokio::spawn(timer_loop(transit.clone(), broker.clone())));
        let writer = tokio::spawn(write_loop(link.clone(), out_rx));
        broker.set_transport(Arc::new(ClusterTransport(transit.clone())));
        let oldest = transit.clone();
        let history = history::start(
            c.shared_history,
            &url,
            &c.namespace,
            broker,
            c.max_packet_size,
            c.max_reconnect_delay,
            Arc::new(move || oldest.history_role()),
        )
        .await;
        let history = match history {
            Ok(h) => {
                if h.is_some() {
                    transit.share_history();
                }
                h
            }
            Err(e) => {
                broker.clear_transport();
                for task in &tasks {
                    task.abort();
                }
                writer.abort();
                return Err(e);
            }
        };
        tracing::info!(
            node = %broker.node_id(),
            transporter = %transporter::redact(&url),
            version = %version.as_str(),
            "cluster: joined"
        );
        Ok(ClusterHandle {
            transit,
            broker: broker.clone(),
            _link: link,
            tasks,
            writer: Some(writer),
            history,
        })
    }
}
