//! The gateway's own series, rendered at `/metrics` in the Prometheus text format. README's
//! "Metrics" table lists every series the gateway exports (these, the recovery ones and the
//! cluster ones).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why the gateway closed a socket (the `reason` label of `moleculer_ws_sockets_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// 1008 slow consumer: outbound queue or byte budget full, or a write blocked too long.
    Slow,
    /// 1009: an inbound message over the size limit.
    Oversize,
    /// 1008: too many inbound frames per second or fragments per message.
    Flood,
}

impl Closed {
    const ALL: [Closed; 3] = [Closed::Slow, Closed::Oversize, Closed::Flood];

    fn label(self) -> &'static str {
        match self {
            Closed::Slow => "slow",
            Closed::Oversize => "oversize",
            Closed::Flood => "flood",
        }
    }
}

/// Why an upgrade was refused (the `reason` label of `moleculer_ws_upgrades_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// 403: the access filter (or token) said no.
    Forbidden,
    /// 503: the socket limits (in total or per address).
    SocketLimit,
    /// 414: the path is longer than the limit.
    PathLength,
    /// 503: the gateway holds its most distinct paths.
    PathsFull,
    /// 429: the per-address limit of recovery replays.
    ReplayThrottled,
}

impl Refused {
    const ALL: [Refused; 5] = [
        Refused::Forbidden,
        Refused::SocketLimit,
        Refused::PathLength,
        Refused::PathsFull,
        Refused::ReplayThrottled,
    ];

    fn label(self) -> &'static str {
        match self {
            Refused::Forbidden => "forbidden",
            Refused::SocketLimit => "socket_limit",
            Refused::PathLength => "path_length",
            Refused::PathsFull => "paths_full",
            Refused::ReplayThrottled => "replay_throttled",
        }
    }
}

/// The upper bounds (seconds) of the REST latency histogram's buckets (plus `+Inf`).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// REST calls answered, by status, and how long they took.
#[derive(Debug)]
struct Rest {
    /// Index: status - 100 (statuses 100 to 599; others are not sent).
    by_status: Box<[AtomicU64; 500]>,
    /// Calls by bucket: `[i]` took at most `BUCKETS[i]` and more than the bound before; the
    /// last one more than every bound. Each call counts once, so a scrape sums them into
    /// cumulative buckets that always rise, with `+Inf` and `_count` their total.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Default for Rest {
    fn default() -> Rest {
        Rest {
            by_status: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            buckets: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The gateway's counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub delivered: AtomicU64,
    pub heartbeats: AtomicU64,
    pub broadcasts: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub sockets_opened: AtomicU64,
    pub streams_opened: AtomicU64,
    closed: [AtomicU64; Closed::ALL.len()],
    refused: [AtomicU64; Refused::ALL.len()],
    rest: Rest,
}

impl Metrics {
    /// Counts a socket the gateway closed.
    pub(crate) fn closed(&self, why: Closed) {
        self.closed[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many sockets were closed for `why`.
    #[cfg(test)]
    pub(crate) fn closed_count(&self, why: Closed) -> u64 {
        self.closed[why as usize].load(Ordering::Relaxed)
    }

    /// Counts `n` messages written to a socket or a stream.
    pub(crate) fn count_delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a refused upgrade.
    pub(crate) fn refused(&self, why: Refused) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a REST call answered with `status` after `took`.
    pub(crate) fn rest_call(&self, status: u16, took: Duration) {
        if let Some(n) = status
            .checked_sub(100)
            .and_then(|i| self.rest.by_status.get(usize::from(i)))
        {
            n.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        if let Some(n) = self.rest.buckets.get(bucket) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.rest.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Renders the gateway's series and the per-path socket gauge: `top` (the paths with the
    /// most sockets) one by one, `other` (the sockets of every other path) as `path="other"`
    /// when there are such paths, and `paths` (how many paths there are).
    pub(crate) fn render(&self, top: &[(String, usize)], other: usize, paths: usize) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP moleculer_ws_build_info The gateway's version (the value is always 1).\n\
             # TYPE moleculer_ws_build_info gauge\n\
             moleculer_ws_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let counters = [
            (
                "moleculer_ws_connections_accepted_total",
                "HTTP connections accepted (plain HTTP and WebSocket alike).",
                &self.connections_accepted,
            ),
            (
                "moleculer_ws_connections_refused_total",
                "HTTP connections refused (503) by the connection limit.",
                &self.connections_refused,
            ),
            (
                "moleculer_ws_sockets_opened_total",
                "WebSocket upgrades accepted (answered 101).",
                &self.sockets_opened,
            ),
            (
                "moleculer_ws_event_streams_opened_total",
                "Event streams (Server-Sent Events) opened (answered 200).",
                &self.streams_opened,
            ),
            (
                "moleculer_ws_broadcasts_total",
                "`websocket.send` events handled.",
                &self.broadcasts,
            ),
            (
                "moleculer_ws_frames_delivered_total",
                "Messages written to sockets (text frames) and event streams (events).",
                &self.delivered,
            ),
            (
                "moleculer_ws_heartbeats_answered_total",
                "Heartbeat frames (`!`) answered.",
                &self.heartbeats,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let closed = Closed::ALL.map(|why| (why.label(), &self.closed[why as usize]));
        by_reason(
            &mut out,
            "moleculer_ws_sockets_closed_total",
            "Sockets and event streams the gateway closed, by reason: slow (1008, slow consumer), oversize (1009), flood (1008, too many frames or fragments).",
            &closed,
        );
        let refused = Refused::ALL.map(|why| (why.label(), &self.refused[why as usize]));
        by_reason(
            &mut out,
            "moleculer_ws_upgrades_refused_total",
            "WebSocket upgrades and event streams refused, by reason: forbidden (403), socket_limit (503), path_length (414), paths_full (503), replay_throttled (429).",
            &refused,
        );
        self.render_rest(&mut out);
        let _ = writeln!(
            out,
            "# HELP moleculer_ws_paths Distinct paths with open WebSockets or event streams.\n\
             # TYPE moleculer_ws_paths gauge\nmoleculer_ws_paths {paths}"
        );
        out.push_str("# HELP moleculer_ws_sockets Open WebSockets and event streams per path.\n");
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

    /// The REST counter (by status) and latency histogram.
    fn render_rest(&self, out: &mut String) {
        let name = "moleculer_ws_rest_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} REST calls of routes answered, by HTTP status (415, 408, 413 included).\n# TYPE {name} counter"
        );
        for (i, n) in self.rest.by_status.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "{name}{{code=\"{}\"}} {n}", i + 100);
            }
        }
        let name = "moleculer_ws_rest_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from routing a REST call to its answer.\n# TYPE {name} histogram"
        );
        let mut count = 0;
        for (i, n) in self.rest.buckets.iter().enumerate() {
            count += n.load(Ordering::Relaxed);
            if let Some(bound) = BUCKETS.get(i) {
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
            }
        }
        let sum = self.rest.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// A counter with a `reason` label: its help, type and one sample per reason.
fn by_reason(out: &mut String, name: &str, help: &str, samples: &[(&str, &AtomicU64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (reason, n) in samples {
        let n = n.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
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
        m.closed(Closed::Flood);
        m.refused(Refused::PathsFull);
        m.refused(Refused::PathsFull);
        let top = [("/ws/\"q\"".to_owned(), 2)];
        let text = m.render(&top, 0, 1);
        assert!(text.contains("moleculer_ws_frames_delivered_total 3\n"));
        assert!(text.contains("moleculer_ws_sockets{path=\"/ws/\\\"q\\\"\"} 2\n"));
        assert!(text.contains("moleculer_ws_sockets_closed_total{reason=\"flood\"} 1\n"));
        assert!(text.contains("moleculer_ws_sockets_closed_total{reason=\"slow\"} 0\n"));
        assert!(text.contains("moleculer_ws_upgrades_refused_total{reason=\"paths_full\"} 2\n"));
        let version = format!(
            "moleculer_ws_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&version), "{text}");
        assert!(!text.contains("other"), "{text}");
    }

    #[test]
    fn rest_calls_fill_the_status_counter_and_the_histogram() {
        let m = Metrics::default();
        m.rest_call(200, Duration::from_millis(3));
        m.rest_call(200, Duration::from_millis(70));
        m.rest_call(415, Duration::from_secs(20));
        m.rest_call(99, Duration::ZERO); // not a status: only the histogram
        let text = m.render(&[], 0, 0);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("moleculer_ws_rest_"))
            .collect();
        assert_eq!(
            lines,
            [
                "moleculer_ws_rest_requests_total{code=\"200\"} 2",
                "moleculer_ws_rest_requests_total{code=\"415\"} 1",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.005\"} 2",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.01\"} 2",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.025\"} 2",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.05\"} 2",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.1\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.25\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"0.5\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"1\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"2.5\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"5\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"10\"} 3",
                "moleculer_ws_rest_request_duration_seconds_bucket{le=\"+Inf\"} 4",
                "moleculer_ws_rest_request_duration_seconds_sum 20.073",
                "moleculer_ws_rest_request_duration_seconds_count 4",
            ]
        );
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
