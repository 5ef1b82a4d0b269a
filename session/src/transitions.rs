//! The session's transitions: what an attempt, a failure, a loss and a recovery envelope do
//! to the state, the timers, the actions and the events.

use std::time::Duration;

use crate::close::{cause_error, verdict, Cause, Verdict};
use crate::message::{classify, Inbound};
use crate::resume::Resumed;
use crate::{Action, Error, Event, Millis, Session, State};

impl Session {
    /// A frame of the recovery extension: status, or a message to unwrap (or drop).
    pub(crate) fn on_envelope(&mut self, text: &str) {
        let deliver = |s: &mut Self, body: &str| {
            if let Inbound::Deliver(message) = classify(body) {
                s.stats.messages_received += 1;
                s.emit(Event::Message(message));
            }
        };
        match self.position.on_frame(text) {
            Resumed::Plain => deliver(self, text),
            Resumed::Drop => {}
            Resumed::Deliver(body) => deliver(self, body),
            Resumed::DeliverAfterGap(body) => {
                self.emit(Event::Resync);
                deliver(self, body);
            }
            Resumed::Status {
                recovered,
                replayed,
                resync,
            } => {
                self.emit(Event::Recovery {
                    recovered,
                    replayed,
                });
                if resync {
                    self.emit(Event::Resync);
                }
            }
        }
    }

    pub(crate) fn start_attempt(&mut self, now: Millis) {
        self.query = if self.config.recover {
            self.position.query()
        } else {
            Vec::new()
        };
        let timeout = self.config.connect_timeout;
        self.state = State::Connecting {
            deadline: (!timeout.is_zero()).then(|| now + timeout),
        };
        self.emit(Event::Connecting {
            attempt: self.backoff.attempt(),
        });
        self.push(Action::Connect);
    }

    pub(crate) fn fail_attempt(&mut self, now: Millis, cause: Cause) {
        self.stats.failed_attempts += 1;
        self.emit(Event::Error(cause_error(&cause)));
        let verdict = verdict(self.backoff.policy(), &cause);
        self.follow(now, verdict, None);
    }

    pub(crate) fn lose_connection(&mut self, now: Millis, cause: Cause) {
        let State::Open { since } = self.state else {
            return;
        };
        self.heartbeat.stop();
        let healthy_after = self.backoff.policy().healthy_after;
        if !self.heartbeat.enabled() && now.saturating_since(since) >= healthy_after {
            self.backoff.reset();
        }
        self.down_since = Some(now);
        let (code, reason) = match &cause {
            Cause::Closed { code, reason } => (*code, reason.clone()),
            _ => (None, String::new()),
        };
        let verdict = verdict(self.backoff.policy(), &cause);
        self.follow(now, verdict, Some((code, reason)));
    }

    pub(crate) fn follow(
        &mut self,
        now: Millis,
        verdict: Verdict,
        closed: Option<(Option<u16>, String)>,
    ) {
        let next = match verdict {
            Verdict::Retry { at_least } => {
                // Several URLs: the next one, at once until each was tried in this round.
                self.endpoint = (self.endpoint + 1) % self.endpoints;
                self.round_left = self.round_left.saturating_sub(1);
                if self.round_left > 0 {
                    Ok(at_least)
                } else {
                    self.round_left = self.endpoints;
                    match self.backoff.next_delay() {
                        Some(delay) => Ok(delay.max(at_least)),
                        None => Err(Error::GaveUp {
                            attempts: self.backoff.attempt(),
                        }),
                    }
                }
            }
            Verdict::Stop(error) => Err(error),
        };
        if let Some((code, reason)) = closed {
            self.emit(Event::Closed {
                code,
                reason,
                will_reconnect: next.is_ok(),
            });
        }
        match next {
            Ok(delay) => self.wait(now, delay),
            Err(error) => {
                self.down_since = None;
                self.state = State::Stopped;
                self.emit(Event::Stopped(Some(error)));
            }
        }
    }

    pub(crate) fn wait(&mut self, now: Millis, delay: Duration) {
        self.state = State::Waiting { until: now + delay };
        self.emit(Event::Reconnecting {
            attempt: self.backoff.attempt(),
            delay,
        });
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.actions.push_back(Action::Emit(event));
    }

    pub(crate) fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}
