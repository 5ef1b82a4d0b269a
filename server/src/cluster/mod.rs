//! Cluster mode: the gateway joins a Moleculer cluster over NATS or Redis (docs/protocol.md
//! section 5), so several gateways share every `websocket.send`, and services of Moleculer
//! (Node.js, Java) push through the gateway and are called by its REST routes.
//!
//! ```no_run
//! use moleculer_ws_server::{Broker, Cluster, Gateway};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let gateway = Gateway::builder().broker(Broker::new("gateway-1")).build()?;
//! let cluster = Cluster::builder()
//!     .transporter("nats://127.0.0.1:4222")
//!     .protocol_version(5) // moleculer 0.15; 4 (the default) for 0.14 and moleculer-java
//!     .start(gateway.broker())
//!     .await?;
//! let running = gateway.bind("127.0.0.1:3000").await?;
//! tokio::signal::ctrl_c().await?;
//! running.shutdown().await;
//! cluster.shutdown().await; // DISCONNECT: the other nodes forget this one at once
//! # Ok(()) }
//! ```
//!
//! The broker keeps working on its own: local listeners and actions are served while the
//! transporter is away; the link reconnects with backoff and the node announces itself again.

mod builder;
mod config;
mod history;
mod local;
mod nodes;
mod packets;
mod pattern;
mod transit;
mod transporter;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::transit::{Outbound, Transit};
use self::transporter::Link;
use crate::broker::Broker;
pub use builder::ClusterBuilder;
pub use config::ClusterConfig;
pub use history::SharedHistory;

/// Packets waiting to be published; beyond this many, new ones are dropped (with a warning).
const OUTBOUND_QUEUE: usize = 4096;
/// Incoming messages waiting for the transit.
const INBOUND_QUEUE: usize = 1024;

/// Errors starting a cluster node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The transporter URL is missing or not understood. Use `nats://host:port` or
    /// `redis://host:port`.
    #[error("invalid transporter: {0}")]
    InvalidTransporter(String),
    /// A setting is out of range; the message names it. Fix the setting.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// The first connection to the transporter failed (server down, wrong address,
    /// authentication). Check that the server runs and the URL; later losses are retried.
    #[error("cannot connect to the transporter {url}: {reason}")]
    Connect {
        /// The transporter URL, without its password.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

/// Entry point of cluster mode: [`Cluster::builder`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Cluster;

impl Cluster {
    /// A builder with the settings of [`ClusterConfig::default`].
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// A node ID in Moleculer's style, `<hostname>-<pid>`: unique per process and machine.
    pub fn default_node_id() -> String {
        local::default_node_id()
    }
}

async fn read_loop(transit: Arc<Transit>, mut events: mpsc::Receiver<transporter::LinkEvent>) {
    while let Some(event) = events.recv().await {
        transit.on_link(event);
    }
}

async fn timer_loop(transit: Arc<Transit>, broker: Broker) {
    let mut services = broker.watch_services();
    services.mark_unchanged();
    drop(broker);
    let mut tick = tokio::time::interval(transit.timing.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => transit.tick(Instant::now()),
            changed = services.changed() => {
                if changed.is_err() {
                    return;
                }
                transit.services_changed();
            }
        }
    }
}

async fn write_loop(link: Arc<dyn Link>, mut out: mpsc::Receiver<Outbound>) {
    while let Some(item) = out.recv().await {
        match item {
            Outbound::Packet { topic, payload } => {
                if let Err(e) = link.publish(&topic, payload).await {
                    tracing::debug!(topic, error = %e, "cluster: packet not published");
                }
            }
            Outbound::Flush(done) => {
                link.flush().await;
                let _ = done.send(());
            }
        }
    }
}

/// A running cluster node. [`shutdown`](Self::shutdown) leaves the cluster cleanly
/// (DISCONNECT); dropping the handle stops everything at once without telling the other nodes
/// (they drop this node after their heartbeat timeout).
pub struct ClusterHandle {
    transit: Arc<Transit>,
    broker: Broker,
    /// Keeps the connection open as long as the handle lives.
    _link: Arc<dyn Link>,
    tasks: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    /// The shared recovery history, when there is one.
    history: Option<history::HistoryHandle>,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("node_id", &self.transit.node_id())
            .finish_non_exhaustive()
    }
}

impl ClusterHandle {
    /// This node's ID.
    pub fn node_id(&self) -> &str {
        self.transit.node_id()
    }

    /// The other nodes currently known (announced by INFO, not yet gone), sorted.
    pub fn nodes(&self) -> Vec<String> {
        self.transit.watch_nodes().borrow().clone()
    }

    /// The cluster's counters in the Prometheus text format: packets dropped by reason, calls
    /// refused or timed out, the number of known nodes. The gateway's `/metrics` includes them.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        self.transit.render_metrics(&mut out);
        out
    }

    /// Waits until `condition` holds for the known nodes (checked now and after each change).
    /// Cancel safe; wrap it in `tokio::time::timeout` to bound the wait.
    pub async fn wait_for_nodes(&self, mut condition: impl FnMut(&[String]) -> bool) {
        let mut nodes = self.transit.watch_nodes();
        // The sender lives as long as the transit, which `self` holds: no error can occur.
        let _ = nodes.wait_for(|ids| condition(ids)).await;
    }

    /// Leaves the cluster: publishes DISCONNECT (waiting at most 2 s for it to go out), fails
    /// pending remote calls, unplugs the broker's transport and closes the connection.
    pub async fn shutdown(mut self) {
        self.broker.clear_transport();
        for task in &self.tasks {
            task.abort();
        }
        self.transit.stop();
        let (done, flushed) = oneshot::channel();
        let _ = self.transit.out_sender().try_send(Outbound::Flush(done));
        if tokio::time::timeout(Duration::from_secs(2), flushed)
            .await
            .is_err()
        {
            tracing::warn!("cluster: DISCONNECT could not be sent in time");
        }
        // Only now the shared history stops (what its worker still had queued is dropped: the
        // others store it after their stand-by wait); they know this node left, and the next
        // oldest stores from now on.
        self.history = None;
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
        tracing::info!(node = %self.transit.node_id(), "cluster: left");
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        self.broker.clear_transport();
        for task in &self.tasks {
            task.abort();
        }
        if let Some(writer) = self.writer.take() {
            writer.abort();
        }
    }
}

/// For the fuzz targets (`crate::fuzzing::cluster_packet`): one packet on `topic` through the
/// packet handling of a fresh node that knows one other node (`b`, offering `math.add` and
/// listening to `websocket.send`). Answers go to a small queue that is then dropped.
pub(crate) async fn fuzz_packet(topic: &str, payload: &[u8]) {
    use serde_json::json;
    let broker = Broker::new("me");
    broker.add_action("math.add", |_| async { Ok(json!(2)) });
    let (out, _answers) = mpsc::channel(16);
    let timing = transit::Timing {
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_millis(10),
    };
    let transit = Transit::new(
        broker.downgrade(),
        "me".into(),
        packets::Version::V4,
        "",
        timing,
        transit::Limits::default(),
        out,
    );
    let info = json!({"ver": "4", "sender": "b", "instanceID": "i", "services": [
        {"name": "math", "actions": {"math.add": {"name": "math.add"}},
         "events": {"websocket.*": {"name": "websocket.*"}}}]});
    let now = Instant::now();
    transit.handle("MOL.INFO", info.to_string().as_bytes(), now);
    transit.handle(topic, payload, now);
}
