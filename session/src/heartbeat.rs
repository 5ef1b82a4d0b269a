//! The heartbeat rule of the original clients (docs/protocol.md sections 3.3 and 4.2).

use std::time::Duration;

use super::clock::{ms, Millis};

/// The largest heartbeat timeout the rule can detect with `interval`: `timeout` itself when
/// some tick comes at least `timeout` after a `!` and no later than `interval` after it (and
/// when the heartbeat is off); otherwise the last tick within `interval`, in whole tick periods
/// (`interval / 3`). [`SessionConfig::validate`](crate::SessionConfig::validate) refuses a
/// timeout above it; a driver whose users may pass one (pages written for the original
/// `websocket.js`, which silently never reports the loss) lowers it to this.
pub fn detectable_timeout(interval: Duration, timeout: Duration) -> Duration {
    let timer = HeartbeatTimer::new(interval, timeout);
    if timer.can_detect_loss() {
        return timeout;
    }
    let period = ms(timer.period());
    Duration::from_millis((timer.interval / period) * period)
}

/// What a heartbeat tick asks the driver to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Not due yet, or nothing to do on this tick.
    Idle,
    /// Send the text frame `!`.
    SendPing,
    /// The link is lost: close it.
    Lost,
}

/// The heartbeat timer of one connection.
///
/// A timer ticks every `interval / 3`. On a tick, if more than `interval` has passed since the
/// last `!` was sent, send `!`. Otherwise, if the last `!` sent is at least `timeout` newer than
/// the last `!` received, and it was sent at least `timeout` ago, the link is lost. An interval
/// or timeout of zero turns the heartbeat off. Both timestamps restart at each `reset` (one per
/// connection), which fixes the stale-timestamp defect of the Java client.
#[derive(Clone, Debug)]
pub(crate) struct HeartbeatTimer {
    interval: u64,
    timeout: u64,
    last_sent: Millis,
    last_received: Millis,
    next_tick: Option<Millis>,
    pending: bool,
    /// On an event stream: nothing is sent; the link is lost when nothing (a keep-alive or a
    /// message) arrived for `interval + timeout`.
    passive: bool,
}

impl HeartbeatTimer {
    pub(crate) fn new(interval: Duration, timeout: Duration) -> HeartbeatTimer {
        HeartbeatTimer {
            interval: ms(interval),
            timeout: ms(timeout),
            last_sent: Millis::ZERO,
            last_received: Millis::ZERO,
            next_tick: None,
            pending: false,
            passive: false,
        }
    }

    /// Whether the heartbeat runs at all.
    pub(crate) fn enabled(&self) -> bool {
        self.interval > 0 && self.timeout > 0
    }

    /// The tick period, `interval / 3` (at least one millisecond).
    pub(crate) fn period(&self) -> Duration {
        Duration::from_millis((self.interval / 3).max(1))
    }

    /// Whether the rule can ever report a loss: some tick must come at least `timeout` after a
    /// `!` and no later than `interval` after it (later ticks send the next `!` instead).
    /// Always true when the heartbeat is off.
    pub(crate) fn can_detect_loss(&self) -> bool {
        if !self.enabled() {
            return true;
        }
        let period = ms(self.period());
        self.timeout.div_ceil(period).saturating_mul(period) <= self.interval
    }

    /// Starts the timer for a connection opened at `now`; `passive` on an event stream, where
    /// the client sends nothing and the gateway's keep-alives and messages show the link lives.
    pub(crate) fn start(&mut self, now: Millis, passive: bool) {
        self.passive = passive;
        self.last_sent = now;
        self.last_received = now;
        self.pending = false;
        self.next_tick = self.enabled().then(|| now + self.period());
    }

    /// Stops the timer (the connection is gone).
    pub(crate) fn stop(&mut self) {
        self.next_tick = None;
        self.pending = false;
    }

    /// When the next tick is due, if the timer runs.
    pub(crate) fn next_tick(&self) -> Option<Millis> {
        self.next_tick
    }

    /// Runs the tick if it is due at `now`.
    pub(crate) fn tick(&mut self, now: Millis) -> Tick {
        let Some(due) = self.next_tick else {
            return Tick::Idle;
        };
        if now < due {
            return Tick::Idle;
        }
        let next = due + self.period();
        // A throttled timer or a suspended process: do not replay the missed ticks in a burst.
        self.next_tick = Some(if next <= now {
            now + self.period()
        } else {
            next
        });

        if self.passive {
            if now.0.saturating_sub(self.last_received.0) > self.interval + self.timeout {
                self.stop();
                return Tick::Lost;
            }
            return Tick::Idle;
        }
        if now.0.saturating_sub(self.last_sent.0) > self.interval {
            self.last_sent = now;
            self.pending = true;
            return Tick::SendPing;
        }
        let unanswered = self.last_sent.0.saturating_sub(self.last_received.0) >= self.timeout;
        let waited = now.0.saturating_sub(self.last_sent.0) >= self.timeout;
        if unanswered && waited {
            self.stop();
            return Tick::Lost;
        }
        Tick::Idle
    }

    /// Sends `!` now, out of cadence (the page became visible, the network came back), and
    /// moves the next tick to `timeout` from now. As with every `!`, the rule then declares the
    /// link lost if no reply came and the previous reply is at least `timeout` older than this
    /// `!` (the usual case after a long pause, which is when probes are made).
    /// Returns false (nothing to send) when the timer is not running.
    pub(crate) fn probe(&mut self, now: Millis) -> bool {
        if self.next_tick.is_none() || self.passive {
            return false;
        }
        self.last_sent = now;
        self.pending = true;
        // No tick before then could act: none may send (a `!` just went out) and none may
        // declare a loss (less than `timeout` waited).
        self.next_tick = Some(now + Duration::from_millis(self.timeout));
        true
    }

    /// Something arrived on an event stream (a keep-alive or a message): the link lives.
    pub(crate) fn on_activity(&mut self, now: Millis) {
        self.last_received = now;
    }

    /// Records a `!` reply; returns the round-trip time if it answers a ping in flight.
    pub(crate) fn on_reply(&mut self, now: Millis) -> Option<Duration> {
        self.last_received = now;
        if std::mem::take(&mut self.pending) {
            Some(now.saturating_since(self.last_sent))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl HeartbeatTimer {
        fn start_ws(&mut self, now: Millis) {
            self.start(now, false);
        }
    }

    #[test]
    fn on_an_event_stream_silence_longer_than_interval_and_timeout_is_a_loss() {
        let mut t = timer(300, 100);
        t.start(Millis(0), true);
        // Nothing is ever sent; activity keeps it alive.
        for at in [100, 200, 300, 400] {
            assert_eq!(t.tick(Millis(at)), Tick::Idle, "{at}");
        }
        t.on_activity(Millis(350));
        assert_eq!(run(&mut t, 750), vec![]);
        assert_eq!(run(&mut t, 800), vec![(800, Tick::Lost)]);
        assert!(!t.probe(Millis(900)));
    }

    fn timer(interval: u64, timeout: u64) -> HeartbeatTimer {
        HeartbeatTimer::new(
            Duration::from_millis(interval),
            Duration::from_millis(timeout),
        )
    }

    /// Runs every due tick from `from` to `to` (inclusive), returning (time, tick) for non-idle ones.
    fn run(t: &mut HeartbeatTimer, to: u64) -> Vec<(u64, Tick)> {
        let mut out = Vec::new();
        while let Some(due) = t.next_tick() {
            if due.0 > to {
                break;
            }
            let r = t.tick(due);
            if r != Tick::Idle {
                out.push((due.0, r));
            }
        }
        out
    }

    #[test]
    fn disabled_when_interval_or_timeout_is_zero() {
        for (i, to) in [(0, 10), (60, 0), (0, 0)] {
            let mut t = timer(i, to);
            assert!(!t.enabled());
            t.start_ws(Millis(0));
            assert_eq!(t.next_tick(), None);
            assert_eq!(t.tick(Millis(1_000_000)), Tick::Idle);
        }
    }

    #[test]
    fn ticks_every_third_of_the_interval() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(1000));
        assert_eq!(t.period(), Duration::from_millis(100));
        assert_eq!(t.next_tick(), Some(Millis(1100)));
        assert_eq!(t.tick(Millis(1099)), Tick::Idle, "not due yet");
        assert_eq!(
            t.next_tick(),
            Some(Millis(1100)),
            "an early call does not move the tick"
        );
        assert_eq!(t.tick(Millis(1100)), Tick::Idle);
        assert_eq!(t.next_tick(), Some(Millis(1200)));
    }

    #[test]
    fn tiny_interval_still_has_a_positive_period() {
        let t = timer(2, 1);
        assert_eq!(t.period(), Duration::from_millis(1));
    }

    #[test]
    fn sends_only_when_more_than_interval_has_passed() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        // Ticks at 100, 200, 300: 300 - 0 is not MORE than 300.
        assert_eq!(run(&mut t, 300), vec![]);
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
    }

    #[test]
    fn answered_pings_keep_the_link() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        assert_eq!(t.on_reply(Millis(430)), Some(Duration::from_millis(30)));
        // The next ping goes out once more than 300 ms passed since 400.
        assert_eq!(run(&mut t, 850), vec![(800, Tick::SendPing)]);
    }

    #[test]
    fn unanswered_ping_is_lost_once_timeout_has_passed() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        // 450: waited 50 < 100. 500: waited 100 >= 100 and sent - received = 400 >= 100.
        assert_eq!(t.tick(Millis(450)), Tick::Idle);
        assert_eq!(t.tick(Millis(500)), Tick::Lost);
        assert_eq!(t.next_tick(), None, "a lost timer stops");
        assert_eq!(t.tick(Millis(600)), Tick::Idle);
    }

    #[test]
    fn lost_needs_the_ping_to_be_newer_than_the_reply_by_timeout() {
        // A reply arriving after the ping (received > sent) never counts as lost.
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        t.on_reply(Millis(480));
        assert_eq!(t.tick(Millis(500)), Tick::Idle);
        assert_eq!(t.tick(Millis(600)), Tick::Idle);
    }

    #[test]
    fn a_late_old_reply_does_not_save_a_newer_ping() {
        // The last `!` received is older than the last `!` sent by more than the timeout.
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        t.on_reply(Millis(410));
        assert_eq!(t.tick(Millis(800)), Tick::SendPing);
        assert_eq!(t.tick(Millis(900)), Tick::Lost);
    }

    #[test]
    fn reply_just_under_timeout_before_ping_is_not_enough_to_be_lost() {
        // sent - received = 90 < timeout 100: not lost even though we waited long enough.
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        t.on_reply(Millis(310));
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        assert_eq!(t.tick(Millis(500)), Tick::Idle);
        assert_eq!(t.tick(Millis(600)), Tick::Idle);
    }

    #[test]
    fn lost_is_detected_within_interval_plus_timeout_plus_period() {
        // The bound the e2e test relies on, checked over many phases.
        for interval in [3u64, 4, 300, 600, 60_000] {
            for timeout in [1u64, 2, 100, 299, 300, 10_000] {
                let mut t = timer(interval, timeout);
                if !t.can_detect_loss() {
                    continue;
                }
                t.start_ws(Millis(0));
                let ticks = run(&mut t, 10 * (interval + timeout));
                let lost = ticks
                    .iter()
                    .find(|(_, k)| *k == Tick::Lost)
                    .map(|(at, _)| *at);
                let lost = lost.expect("loss detected");
                let bound = interval + timeout + 2 * (interval / 3).max(1);
                assert!(
                    lost <= bound,
                    "{interval}/{timeout}: lost at {lost} > {bound}"
                );
            }
        }
    }

    #[test]
    fn a_timeout_beyond_the_interval_never_detects_loss() {
        // The original rule re-sends `!` before the timeout can pass: such settings are refused.
        let mut t = timer(300, 400);
        assert!(!t.can_detect_loss());
        t.start_ws(Millis(0));
        assert!(run(&mut t, 100_000)
            .iter()
            .all(|(_, k)| *k == Tick::SendPing));
        assert!(timer(300, 300).can_detect_loss());
        assert!(
            !timer(301, 301).can_detect_loss(),
            "period 100: 301 needs the 4th tick"
        );
        assert!(timer(0, 400).can_detect_loss(), "disabled is fine");
    }

    #[test]
    fn unsolicited_reply_has_no_rtt() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        assert_eq!(t.on_reply(Millis(50)), None);
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        assert_eq!(t.on_reply(Millis(420)), Some(Duration::from_millis(20)));
        assert_eq!(t.on_reply(Millis(430)), None, "a duplicate reply");
    }

    #[test]
    fn start_resets_the_timestamps_per_connection() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        assert_eq!(t.tick(Millis(400)), Tick::SendPing);
        t.stop();
        assert_eq!(t.next_tick(), None);
        // A new connection 10 s later: no instant ping, no false loss from the old ping.
        t.start_ws(Millis(10_000));
        assert_eq!(run(&mut t, 10_300), vec![]);
        assert_eq!(t.tick(Millis(10_400)), Tick::SendPing);
    }

    #[test]
    fn a_suspended_process_does_not_replay_missed_ticks() {
        let mut t = timer(300, 100);
        t.start_ws(Millis(0));
        // Woken up long after: one tick sends, the next tick is a period later.
        assert_eq!(t.tick(Millis(5_000)), Tick::SendPing);
        assert_eq!(t.next_tick(), Some(Millis(5_100)));
    }
}
