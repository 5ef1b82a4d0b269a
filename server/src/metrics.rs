//! Counters, rendered at `/metrics` in the Prometheus text format.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The gateway's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub delivered: AtomicU64,
    pub heartbeats: AtomicU64,
    pub slow_dropped: AtomicU64,
    pub refused: AtomicU64,
    pub oversized: AtomicU64,
    pub broadcasts: AtomicU64,
    pub refused_limit: AtomicU64,
    pub flooded: AtomicU64,
}

impl Metrics {
    /// Renders the counters and the per-path socket gauge.
    pub(crate) fn render(&self, clients: &HashMap<String, usize>) -> String {
        let mut out = String::with_capacity(1024);
        let counters = [
            (
                "moleculer_ws_frames_delivered_total",
                "Text frames written to sockets.",
                &self.delivered,
            ),
            (
                "moleculer_ws_heartbeats_answered_total",
                "Heartbeat frames (`!`) answered.",
                &self.heartbeats,
            ),
            (
                "moleculer_ws_sockets_dropped_slow_total",
                "Sockets closed because their outbound queue was full.",
                &self.slow_dropped,
            ),
            (
                "moleculer_ws_upgrades_refused_total",
                "WebSocket upgrades refused (403).",
                &self.refused,
            ),
            (
                "moleculer_ws_sockets_closed_oversize_total",
                "Sockets closed with 1009 for an oversized message.",
                &self.oversized,
            ),
            (
                "moleculer_ws_broadcasts_total",
                "`websocket.send` events handled.",
                &self.broadcasts,
            ),
            (
                "moleculer_ws_upgrades_refused_limit_total",
                "WebSocket upgrades refused (503) by the socket limits.",
                &self.refused_limit,
            ),
            (
                "moleculer_ws_sockets_closed_flood_total",
                "Sockets closed with 1008 for too many inbound frames per second.",
                &self.flooded,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out.push_str("# HELP moleculer_ws_sockets Open WebSocket connections per path.\n");
        out.push_str("# TYPE moleculer_ws_sockets gauge\n");
        let mut paths: Vec<_> = clients.iter().collect();
        paths.sort();
        for (path, n) in paths {
            let _ = writeln!(
                out,
                "moleculer_ws_sockets{{path=\"{}\"}} {n}",
                escape_label(path)
            );
        }
        out
    }
}

/// Appends the message-recovery gauges and counters (README "Message recovery").
pub(crate) fn render_recovery(out: &mut String, recovery: &crate::recovery::Recovery) {
    let (paths, messages, bytes) = recovery.totals();
    let gauges = [
        (
            "moleculer_ws_recovery_paths",
            "Paths holding a recovery history.",
            paths as u64,
        ),
        (
            "moleculer_ws_recovery_history_messages",
            "Messages held in recovery histories.",
            messages,
        ),
        (
            "moleculer_ws_recovery_history_bytes",
            "Bytes of the frames held in recovery histories.",
            bytes,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    let counters = [
        (
            "moleculer_ws_recovery_recovered_total",
            "Reconnects that recovered their missed messages.",
            &recovery.recovered,
        ),
        (
            "moleculer_ws_recovery_replayed_total",
            "Messages replayed to recovering sockets.",
            &recovery.replayed,
        ),
        (
            "moleculer_ws_recovery_resets_total",
            "Recoveries refused (another epoch or history too short).",
            &recovery.resets,
        ),
    ];
    for (name, help, v) in counters {
        let v = v.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
}

/// Escapes a Prometheus label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_escaped_path_labels() {
        let m = Metrics::default();
        m.delivered.fetch_add(3, Ordering::Relaxed);
        let clients = HashMap::from([("/ws/\"q\"".to_owned(), 2)]);
        let text = m.render(&clients);
        assert!(text.contains("moleculer_ws_frames_delivered_total 3\n"));
        assert!(text.contains("moleculer_ws_sockets{path=\"/ws/\\\"q\\\"\"} 2\n"));
    }
}
