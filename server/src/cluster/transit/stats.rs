//! The transit's counters (atomics, no lock) and their Prometheus text, plus the rule that keeps
//! a flood of bad packets from flooding the log: one warning per reason every
//! [`WARN_EVERY`], the rest at debug level.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one warning per reason this often; the others are logged at debug level.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

/// Why an incoming packet was dropped (the `reason` label of
/// `moleculer_ws_cluster_packets_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Bigger than the cluster's `max_packet_size`.
    TooLarge,
    /// `sender` is not a valid node ID (see `packets::valid_node_id`).
    BadSender,
    /// Not JSON, not an object, or a field of its kind missing or of the wrong type.
    BadPacket,
    /// Another protocol version.
    Version,
    /// INFO of a new node while the node table is full.
    NodeLimit,
}

impl Reason {
    const ALL: [Reason; 5] = [
        Self::TooLarge,
        Self::BadSender,
        Self::BadPacket,
        Self::Version,
        Self::NodeLimit,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::BadSender => "bad_sender",
            Self::BadPacket => "bad_packet",
            Self::Version => "version",
            Self::NodeLimit => "node_limit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A counter that also says when its event is due a warning (at most once per [`WARN_EVERY`]).
#[derive(Debug, Default)]
pub(crate) struct Counter {
    count: AtomicU64,
    /// Milliseconds after `Stats::started` of the last warning, plus one (0: never warned).
    warned_at: AtomicU64,
}

impl Counter {
    fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Every counter of the transit.
#[derive(Debug)]
pub(crate) struct Stats {
    started: Instant,
    dropped: [Counter; Reason::ALL.len()],
    /// REQ refused because `max_concurrent_requests` actions were running.
    pub(crate) requests_rejected: Counter,
    /// REQ whose action ran out of time (answered with 504).
    pub(crate) requests_timed_out: Counter,
    /// Actions, events and groups of INFO left out by the per-node caps or the name length cap.
    pub(crate) names_dropped: Counter,
    /// Answers to DISCOVER, PING and unknown HEARTBEAT not sent: over [`AnswerBudget`].
    pub(crate) answers_dropped: Counter,
}

/// Answers this many packets of other nodes per second (DISCOVER with INFO, PING with PONG,
/// a HEARTBEAT of an unknown node with DISCOVER), after a burst: a peer cannot make the
/// gateway publish as fast as it publishes. A node that misses an answer asks again (its next
/// DISCOVER or HEARTBEAT), so nothing is lost but time.
pub(crate) const ANSWERS_PER_SECOND: f64 = 100.0;

/// The token bucket of [`ANSWERS_PER_SECOND`], shared by every sender (a peer can choose any
/// number of names, so a bucket per name would bound nothing).
#[derive(Debug)]
pub(crate) struct AnswerBudget {
    burst: f64,
    state: std::sync::Mutex<(f64, Instant)>,
}

impl AnswerBudget {
    /// A full bucket of `burst` answers (at least 1).
    pub(crate) fn new(burst: usize, now: Instant) -> Self {
        let burst = burst.max(1) as f64;
        Self {
            burst,
            state: std::sync::Mutex::new((burst, now)),
        }
    }

    /// Takes one answer now; `false` when the bucket is empty.
    pub(crate) fn take(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = &mut *state;
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * ANSWERS_PER_SECOND).min(self.burst);
        *at = now.max(*at);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Stats {
    pub(crate) fn new(started: Instant) -> Self {
        Self {
            started,
            dropped: Default::default(),
            requests_rejected: Counter::default(),
            requests_timed_out: Counter::default(),
            names_dropped: Counter::default(),
            answers_dropped: Counter::default(),
        }
    }

    /// Counts a packet dropped for `reason`; `true` when a warning is due (else log at debug).
    pub(crate) fn dropped(&self, reason: Reason, now: Instant) -> bool {
        self.count(&self.dropped[reason.index()], 1, now)
    }

    /// How many packets were dropped for `reason`.
    pub(crate) fn dropped_count(&self, reason: Reason) -> u64 {
        self.dropped[reason.index()].get()
    }

    /// Adds `n` to `counter`; `true` when a warning is due (the first in [`WARN_EVERY`]).
    pub(crate) fn count(&self, counter: &Counter, n: u64, now: Instant) -> bool {
        counter.count.fetch_add(n, Ordering::Relaxed);
        let elapsed = now.saturating_duration_since(self.started);
        let stamp = u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = counter.warned_at.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        let due = last == 0 || stamp.saturating_sub(last) >= every;
        due && counter
            .warned_at
            .compare_exchange(last, stamp, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Appends the counters and the `nodes` gauge in the Prometheus text format.
    pub(crate) fn render(&self, nodes: usize, out: &mut String) {
        let name = "moleculer_ws_cluster_packets_dropped_total";
        let _ = writeln!(
            out,
            "# HELP {name} Incoming cluster packets dropped, by reason.\n# TYPE {name} counter"
        );
        for reason in Reason::ALL {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{}\"}} {}",
                reason.label(),
                self.dropped_count(reason)
            );
        }
        let counters = [
            (
                "moleculer_ws_cluster_requests_rejected_total",
                "Calls from other nodes refused because too many were running.",
                &self.requests_rejected,
            ),
            (
                "moleculer_ws_cluster_requests_timed_out_total",
                "Calls from other nodes stopped at their timeout (answered with 504).",
                &self.requests_timed_out,
            ),
            (
                "moleculer_ws_cluster_names_dropped_total",
                "Actions, events and groups of other nodes' INFO beyond the caps, ignored.",
                &self.names_dropped,
            ),
            (
                "moleculer_ws_cluster_answers_dropped_total",
                "Answers to DISCOVER, PING and unknown HEARTBEAT not sent: over the answer rate.",
                &self.answers_dropped,
            ),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.get()
            );
        }
        let name = "moleculer_ws_cluster_nodes";
        let _ = writeln!(
            out,
            "# HELP {name} Other nodes currently known.\n# TYPE {name} gauge\n{name} {nodes}"
        );
    }
}

/// At most 96 characters of outside text, escaped, for a log line.
pub(crate) fn preview(text: &str) -> String {
    let mut cut: String = text.chars().take(96).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_reason_per_period_and_every_drop_counted() {
        let t0 = Instant::now();
        let stats = Stats::new(t0);
        assert!(stats.dropped(Reason::BadSender, t0));
        assert!(!stats.dropped(Reason::BadSender, t0 + Duration::from_secs(1)));
        assert!(stats.dropped(Reason::TooLarge, t0 + Duration::from_secs(1)));
        assert!(stats.dropped(Reason::BadSender, t0 + WARN_EVERY * 2));
        assert_eq!(stats.dropped_count(Reason::BadSender), 3);
        let mut out = String::new();
        stats.render(7, &mut out);
        assert!(
            out.contains("moleculer_ws_cluster_packets_dropped_total{reason=\"bad_sender\"} 3\n")
        );
        assert!(out.contains("moleculer_ws_cluster_nodes 7\n"));
        assert!(out.contains("moleculer_ws_cluster_requests_rejected_total 0\n"));
    }

    #[test]
    fn previews_are_short_and_escaped() {
        assert_eq!(preview("a\nb"), r#""a\nb""#);
        assert_eq!(preview(&"x".repeat(5000)).chars().count(), 96 + 3);
    }
}
