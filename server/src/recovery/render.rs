//! The message-recovery series of `/metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Recovery;

impl Recovery {
    /// Appends the message-recovery gauges and counters (docs/protocol.md section 6).
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let (paths, messages, bytes) = self.totals();
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
            (
                "moleculer_ws_recovery_shared",
                "1 when the histories are shared through the cluster's engine, else 0.",
                u64::from(self.is_shared()),
            ),
            (
                "moleculer_ws_recovery_engine_up",
                "1 while the shared history's engine is reachable, else 0.",
                u64::from(self.is_shared() && self.engine_up()),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            (
                "moleculer_ws_recovery_recovered_total",
                "Reconnects that recovered their missed messages.",
                &self.recovered,
            ),
            (
                "moleculer_ws_recovery_replayed_total",
                "Messages replayed to recovering sockets.",
                &self.replayed,
            ),
            (
                "moleculer_ws_recovery_resets_total",
                "Recoveries refused (another epoch or history too short).",
                &self.resets,
            ),
            (
                "moleculer_ws_recovery_unstored_total",
                "Messages the shared history's engine did not take (sent under a local epoch).",
                &self.unstored,
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
}
