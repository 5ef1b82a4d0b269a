//! The session's transitions: what an attempt, a failure, a loss and a recovery envelope do
//! to the state, the timers, the actions and the events.

use std::time::Duration;

use crate::close::{cause_error, verdict, Cause, Verdict};
use crate::event::ConnectFailure;
use crate::event_stream::{stream_event, Item, StreamEvent};
use crate::message::{classify, Inbound};
use crate::resume::Resumed;
use crate::{Action, Carrier, Error, Event, Millis, Session, State, Transport, NORMAL_CLOSURE};

/// How [`Transport::Auto`] follows a failed attempt.
enum AutoVerdict {
    /// Again at once, outside the backoff (back to the stream after a failed try of the
    /// WebSocket).
    Now,
    /// Again after the backoff, even where the usual rules would stop (a refusal that may be
    /// a proxy's, or a gateway's answer to the other carrier).
    Retry,
    /// The usual rules.
    Usual,
}

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

    /// One keep-alive or event of the open event stream.
    pub(crate) fn on_stream_item(&mut self, now: Millis, item: Item) {
        self.heartbeat.on_activity(now);
        let Item::Event { name, data, .. } = item else {
            return;
        };
        match stream_event(&name, data) {
            StreamEvent::Frame(frame) => self.on_text(now, &frame),
            StreamEvent::Closed { code, reason } => {
                self.push(Action::Close {
                    code: NORMAL_CLOSURE,
                });
                self.lose_connection(
                    now,
                    Cause::Closed {
                        code: Some(code),
                        reason,
                    },
                );
            }
            _ => {}
        }
    }

    /// [`Transport::Auto`] on an open event stream, when the time has come: closes it and tries
    /// the WebSocket (a failure goes back to the event stream at once).
    pub(crate) fn try_websocket_again(&mut self, now: Millis) {
        self.heartbeat.stop();
        self.push(Action::Close {
            code: NORMAL_CLOSURE,
        });
        self.emit(Event::Closed {
            code: Some(NORMAL_CLOSURE),
            reason: "trying the WebSocket again".to_owned(),
            will_reconnect: true,
        });
        self.down_since = Some(now);
        self.start_attempt(now);
    }

    /// Carries the next attempts on `carrier`, and says so when that changes.
    pub(crate) fn switch_to(&mut self, carrier: Carrier) {
        if self.carrier != carrier {
            self.carrier = carrier;
            self.emit(Event::Transport(carrier));
        }
    }

    /// [`Transport::Auto`]: what a failed attempt changes, and how it is followed.
    fn auto_failure(&mut self, now: Millis, cause: &Cause) -> AutoVerdict {
        if self.config.transport != Transport::Auto {
            return AutoVerdict::Usual;
        }
        let status = match cause {
            Cause::Failed(
                ConnectFailure::HttpStatus(status) | ConnectFailure::RetryAfter { status, .. },
            ) => Some(*status),
            _ => None,
        };
        let stops = matches!(
            verdict(self.backoff.policy(), cause),
            Verdict::Stop(Error::Rejected { .. })
        );
        match self.carrier {
            Carrier::WebSocket if std::mem::take(&mut self.trying_ws) => {
                // Still refused: back to the event stream that was open a moment ago, at once.
                self.switch_to(Carrier::EventStream);
                self.schedule_websocket_retry(now);
                AutoVerdict::Now
            }
            Carrier::WebSocket => {
                self.ws_failures += 1;
                self.ws_status = status;
                if self.ws_failures >= self.config.fallback_after {
                    self.ws_failures = 0;
                    self.switch_to(Carrier::EventStream);
                }
                // A refusal of the upgrade may be a proxy's, not the gateway's: the event
                // stream's answer decides whether to stop.
                if stops {
                    AutoVerdict::Retry
                } else {
                    AutoVerdict::Usual
                }
            }
            Carrier::EventStream => {
                // The gateway itself refused both (the same status): the usual rules (a 403
                // stops). Any other failure says nothing against the WebSocket: the next
                // attempt tries it first again (a gateway without streams answers 404).
                if stops && status == self.ws_status {
                    return AutoVerdict::Usual;
                }
                self.switch_to(Carrier::WebSocket);
                if stops {
                    AutoVerdict::Retry
                } else {
                    AutoVerdict::Usual
                }
            }
        }
    }

    /// [`Transport::Auto`] on an event stream: the WebSocket is tried again
    /// [`SessionConfig::websocket_retry`](crate::SessionConfig) from `now` (never when zero).
    pub(crate) fn schedule_websocket_retry(&mut self, now: Millis) {
        let retry = self.config.websocket_retry;
        self.retry_ws_at = (!retry.is_zero()).then(|| now + retry);
    }

    pub(crate) fn start_attempt(&mut self, now: Millis) {
        // `auto` on an event stream whose time is up: this attempt tries the WebSocket (also
        // when the stream was lost meanwhile, so that streams cut often do not keep it away).
        if self.carrier == Carrier::EventStream && self.retry_ws_at.is_some_and(|at| now >= at) {
            self.retry_ws_at = None;
            self.switch_to(Carrier::WebSocket);
            self.trying_ws = true;
        }
        self.query = if self.config.recover {
            self.position.query()
        } else {
            Vec::new()
        };
        if self.carrier == Carrier::EventStream {
            // The WebSocket's frames as the stream's events (docs/protocol.md section 6.7).
            self.query.push(("frames", "1".to_owned()));
        }
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
        let verdict = match self.auto_failure(now, &cause) {
            // Outside the backoff, on the same URL.
            AutoVerdict::Now => return self.wait(now, Duration::ZERO),
            AutoVerdict::Retry => Verdict::Retry {
                at_least: Duration::ZERO,
            },
            AutoVerdict::Usual => verdict(self.backoff.policy(), &cause),
        };
        self.follow(now, verdict, None);
    }

    pub(crate) fn lose_connection(&mut self, now: Millis, cause: Cause) {
        let State::Open { since } = self.state else {
            return;
        };
        self.heartbeat.stop();
        let healthy_after = self.backoff.policy().healthy_after;
        // Without `!` answers (no heartbeat, or an event stream), a connection that lasted is
        // what counts as healthy.
        let no_answers = !self.heartbeat.enabled() || self.carrier == Carrier::EventStream;
        if no_answers && now.saturating_since(since) >= healthy_after {
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
