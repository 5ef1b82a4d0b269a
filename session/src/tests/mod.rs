//! Scenario tests of the whole state machine with a scripted clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;

/// A session plus a scripted clock, with helpers that jump to a state.
struct Scenario {
    s: Session,
    now: Millis,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Heartbeat 300/100 ms, connect timeout 1 s, fixed-free exponential policy without jitter.
fn config() -> SessionConfig {
    SessionConfig::default()
        .heartbeat_interval(ms(300))
        .heartbeat_timeout(ms(100))
        .connect_timeout(ms(1000))
        .reconnect(ReconnectPolicy::default().jitter(false).delay(ms(3000)))
}

impl Scenario {
    fn new(config: SessionConfig) -> Scenario {
        Scenario {
            s: Session::new(config, 7).unwrap(),
            now: Millis(0),
        }
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.s.poll_action()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        self.actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Emit(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    /// Advances the clock to `t`, firing every timer due on the way; returns the actions.
    fn advance_to(&mut self, t: u64) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(due) = self.s.poll_timeout() {
            if due.0 > t {
                break;
            }
            self.now = due.max(self.now);
            self.s.handle_timeout(self.now);
            out.extend(self.actions());
        }
        self.now = Millis(t);
        out
    }

    /// Jumps to an open connection at the current time.
    fn opened(mut self) -> Scenario {
        self.s.connect(self.now);
        self.s.on_open(self.now);
        self.actions();
        self
    }

    fn reply(&mut self) {
        self.s.on_text(self.now, "!");
    }
}

fn has(actions: &[Action], wanted: &Action) -> bool {
    actions.iter().any(|a| a == wanted)
}

fn reconnecting(actions: &[Action]) -> Option<(u32, Duration)> {
    actions.iter().find_map(|a| match a {
        Action::Emit(Event::Reconnecting { attempt, delay }) => Some((*attempt, *delay)),
        _ => None,
    })
}

mod endpoints;
mod lifecycle;
mod recovery;
mod resume;
mod transport;
