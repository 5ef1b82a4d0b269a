//! Which node stores the shared recovery history's messages as they come (`cluster::history`):
//! the oldest one sharing it, as every node's INFO metadata says.

use std::sync::atomic::Ordering;

use super::{lock, Transit};
pub(crate) use crate::cluster::history::Role;

/// A node that started sharing the history this recently (ms) is never the writer: the other
/// nodes' INFO may not have reached it yet.
const SETTLE_MS: u64 = 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Transit {
    /// Appends the gauge `moleculer_ws_cluster_history_writer` (1 while this node stores the
    /// shared history's messages as they come).
    pub(crate) fn render_history_role(&self, out: &mut String) {
        use std::fmt::Write;
        let name = "moleculer_ws_cluster_history_writer";
        let v = u8::from(self.history_role() == Role::Writer);
        let _ = writeln!(
            out,
            "# HELP {name} 1 while this node stores the shared recovery history's messages as \
             they come (the oldest sharing node), else 0.\n# TYPE {name} gauge\n{name} {v}"
        );
    }

    /// This node shares the recovery history from now on: tell everyone (INFO metadata).
    pub(crate) fn share_history(&self) {
        self.history_since.store(now_ms().max(1), Ordering::Relaxed);
        self.services_changed();
    }

    /// This node's part in storing the shared history's messages.
    pub(crate) fn history_role(&self) -> Role {
        let since = self.history_since.load(Ordering::Relaxed);
        let older = since == 0
            || lock(&self.nodes)
                .oldest_history_node()
                .is_some_and(|oldest| oldest < (since, self.node_id.as_str()));
        if older {
            Role::Follower
        } else if now_ms().saturating_sub(since) < SETTLE_MS {
            Role::Settling
        } else {
            Role::Writer
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use serde_json::json;
    use tokio::sync::mpsc;

    use super::*;
    use crate::broker::Broker;
    use crate::cluster::packets::Version;
    use crate::cluster::transit::{Limits, Timing};

    fn transit(broker: &Broker, id: &str) -> Arc<Transit> {
        let (tx, _) = mpsc::channel(64);
        let timing = Timing {
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(1),
        };
        let limits = Limits::default();
        let t = Transit::new(
            broker.downgrade(),
            id.into(),
            Version::V4,
            "",
            timing,
            limits,
            tx,
        );
        Arc::new(t)
    }

    fn info(t: &Transit, sender: &str, since: Option<u64>) {
        let metadata = match since {
            Some(s) => json!({ crate::cluster::packets::HISTORY_SINCE: s }),
            None => json!({}),
        };
        let info = json!({"ver": "4", "sender": sender, "instanceID": sender,
            "services": [], "metadata": metadata});
        t.handle("MOL.INFO", info.to_string().as_bytes(), Instant::now());
    }

    /// The oldest sharing node writes (ties by node ID); one that just started never does;
    /// when the oldest leaves, the next one takes over.
    #[test]
    fn the_oldest_sharing_node_writes() {
        let broker = Broker::new("m");
        let t = transit(&broker, "m");
        assert_eq!(t.history_role(), Role::Follower, "not sharing");
        t.share_history();
        assert_eq!(t.history_role(), Role::Settling, "just started");
        let mine = now_ms() - 10_000;
        t.history_since.store(mine, Ordering::Relaxed);
        assert_eq!(t.history_role(), Role::Writer, "alone");
        info(&t, "z-newer", Some(mine + 1));
        info(&t, "plain", None);
        assert_eq!(t.history_role(), Role::Writer, "older than the others");
        info(&t, "a-same-age", Some(mine));
        assert_eq!(
            t.history_role(),
            Role::Follower,
            "same age, smaller node ID"
        );
        info(&t, "z-older", Some(mine - 1));
        assert_eq!(t.history_role(), Role::Follower);
        let bye = |sender: &str| {
            let packet = json!({"ver": "4", "sender": sender}).to_string();
            t.handle("MOL.DISCONNECT", packet.as_bytes(), Instant::now());
        };
        bye("z-older");
        assert_eq!(t.history_role(), Role::Follower);
        bye("a-same-age");
        assert_eq!(t.history_role(), Role::Writer, "the oldest left");
    }
}
