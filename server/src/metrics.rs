//! Counters, rendered at `/metrics` in the Prometheus text format.

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
    pub refused_path_length: AtomicU64,
    pub refused_paths_full: AtomicU64,
    pub refused_connections: AtomicU64,
    pub replays_throttled: AtomicU64,
    pub unsupported_media: AtomicU64,
    pub body_timeouts: AtomicU64,
}

impl Metrics {
    /// Renders the counters and the per-path socket gauge: `top` (the paths with the most
    /// sockets) one by one, `other` (the sockets of every other path) as `path="other"` when
    /// there are such paths, and `paths` (how many paths there are).
    pub(crate) fn render(&self, top: &[(String, usize)], other: usize, paths: usize) -> String {
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
                "Sockets closed as slow consumers (1008): outbound queue or byte budget full, or a write blocked past the write timeout.",
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
                "Sockets closed with 1008 for too many inbound frames per second or fragments per message.",
                &self.flooded,
            ),
            (
                "moleculer_ws_upgrades_refused_path_length_total",
                "WebSocket upgrades refused (414): the path is longer than the limit.",
                &self.refused_path_length,
            ),
            (
                "moleculer_ws_upgrades_refused_paths_full_total",
                "WebSocket upgrades refused (503): the gateway holds its most distinct paths.",
                &self.refused_paths_full,
            ),
            (
                "moleculer_ws_connections_refused_total",
                "HTTP connections refused (503) by the connection limit.",
                &self.refused_connections,
            ),
            (
                "moleculer_ws_recovery_replays_throttled_total",
                "Recovering upgrades refused (429) by the per-address replay limit.",
                &self.replays_throttled,
            ),
            (
                "moleculer_ws_requests_unsupported_media_type_total",
                "REST requests refused (415): not application/json.",
                &self.unsupported_media,
            ),
            (
                "moleculer_ws_requests_body_timeout_total",
                "REST requests whose body did not arrive in time (408).",
                &self.body_timeouts,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP moleculer_ws_paths Distinct paths with open WebSocket connections.\n\
             # TYPE moleculer_ws_paths gauge\nmoleculer_ws_paths {paths}"
        );
        out.push_str("# HELP moleculer_ws_sockets Open WebSocket connections per path.\n");
        out.push_str("# TYPE moleculer_ws_sockets gauge\n");
        let mut sorted: Vec<&(String, usize)> = top.iter().collect();
        sorted.sort();
        for (path, n) in sorted {
            let _ = writeln!(
                out,
                "moleculer_ws_sockets{{path=\"{}\"}} {n}",
                escape_label(path)
            );
        }
        if paths > top.len() {
            let _ = writeln!(out, "moleculer_ws_sockets{{path=\"other\"}} {other}");
        }
        out
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
        let top = [("/ws/\"q\"".to_owned(), 2)];
        let text = m.render(&top, 0, 1);
        assert!(text.contains("moleculer_ws_frames_delivered_total 3\n"));
        assert!(text.contains("moleculer_ws_sockets{path=\"/ws/\\\"q\\\"\"} 2\n"));
        assert!(!text.contains("other"), "{text}");
    }

    #[test]
    fn only_the_busiest_paths_get_their_own_series() {
        let reg = crate::registry::Registry::default();
        let mut held = Vec::new();
        for i in 1..=60 {
            for _ in 0..i {
                held.push(reg.register(&format!("/p{i}"), 1).unwrap());
            }
        }
        let (top, other, paths) = reg.top_paths(2);
        let text = Metrics::default().render(&top, other, paths);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.starts_with("moleculer_ws_sockets{") || l.starts_with("moleculer_ws_paths ")
            })
            .collect();
        let rest: usize = (1..=58).sum();
        assert_eq!(
            series,
            [
                "moleculer_ws_paths 60".to_owned(),
                "moleculer_ws_sockets{path=\"/p59\"} 59".to_owned(),
                "moleculer_ws_sockets{path=\"/p60\"} 60".to_owned(),
                format!("moleculer_ws_sockets{{path=\"other\"}} {rest}"),
            ]
        );
        // Ties: the smaller path wins, whatever the map's order.
        let reg = crate::registry::Registry::default();
        let _held: Vec<_> = ["/b", "/a", "/c"]
            .iter()
            .map(|p| reg.register(p, 1).unwrap())
            .collect();
        let (top, other, paths) = reg.top_paths(2);
        let mut names: Vec<&str> = top.iter().map(|(p, _)| p.as_str()).collect();
        names.sort_unstable();
        assert_eq!((names, other, paths), (vec!["/a", "/b"], 1, 3));
    }
}
