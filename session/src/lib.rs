//! The session core of the moleculer-ws clients: the rules of one logical WebSocket
//! connection to a Moleculer gateway, across its reconnects, without I/O.
//!
//! # In scope
//!
//! - the heartbeat of the original clients: send `!` ([`HEARTBEAT`]) every `interval`, declare
//!   the link lost when one stays unanswered for `timeout` ([`detectable_timeout`]);
//! - the reconnect policy and its backoff ([`ReconnectPolicy`]), the connect timeout;
//! - what a close code or a refused upgrade means: retry or stop ([`Error`] says why);
//! - the classification of inbound frames (heartbeat reply, ignored, [`Message`]);
//! - message recovery: the position to resume from and the gateway's answer;
//! - the texts of the errors, written once (the browser client shows the same ones).
//!
//! # Not in scope
//!
//! Sockets, TLS, proxies, HTTP, timers, clocks, threads, async runtimes and randomness: a
//! driver owns those. The tokio driver (`moleculer-ws-client`) and the browser driver
//! (`moleculer-ws-browser`) feed the core `now` (a [`Millis`] from a monotonic clock) and what
//! happened on the socket, drain [`Session::poll_action`] and sleep until
//! [`Session::poll_timeout`], where they call [`Session::handle_timeout`]. Randomness for the
//! jitter comes in as a seed, so the same inputs give the same outputs on every target, and the
//! tests run on a scripted clock.
//!
//! ```
//! use moleculer_ws_session::{Action, Millis, Session, SessionConfig};
//!
//! let mut s = Session::new(SessionConfig::default(), 42).unwrap();
//! s.connect(Millis(0));
//! assert!(std::iter::from_fn(|| s.poll_action()).any(|a| a == Action::Connect));
//! s.on_open(Millis(5));
//! assert_eq!(s.poll_timeout(), Some(Millis(20_005))); // heartbeat ticks every 60 s / 3
//! ```
//!
//! The wire contract is the repository's `docs/protocol.md` (sections 3 and 4 for clients,
//! 6 for recovery).

mod clock;
mod close;
mod config;
mod error;
mod event;
mod event_stream;
mod heartbeat;
mod message;
mod reconnect;
mod resume;
#[cfg(test)]
mod tests;
#[doc(hidden)]
pub mod text;
mod transitions;

use std::collections::VecDeque;

pub use clock::Millis;
pub use config::{Carrier, SessionConfig, Transport};
pub use error::Error;
pub use event::{Action, ConnectFailure, ConnectionState, Event, Stats};
pub use event_stream::{stream_event, StreamEvent, MAX_EVENT};
pub use heartbeat::detectable_timeout;
pub use message::{is_control_frame, Message, HEARTBEAT};
pub use reconnect::{BackoffKind, ReconnectPolicy};

pub use reconnect::splitmix64;

use close::{cause_error, Cause};
use heartbeat::{HeartbeatTimer, Tick};
use message::{classify, Inbound};
use reconnect::ReconnectBackoff;
use resume::Position;

/// Close code sent by `disconnect()`.
const NORMAL_CLOSURE: u16 = 1000;
/// Close code sent when the client abandons a broken link (heartbeat lost, transport error).
const GOING_AWAY: u16 = 1001;

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Idle,
    Connecting { deadline: Option<Millis> },
    Open { since: Millis },
    Waiting { until: Millis },
    Stopped,
}

/// The state machine of one logical connection (across its reconnects).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    heartbeat: HeartbeatTimer,
    backoff: ReconnectBackoff,
    actions: VecDeque<Action>,
    stats: Stats,
    opened_once: bool,
    down_since: Option<Millis>,
    healthy: bool,
    /// Message recovery: the last position, when [`SessionConfig::recover`] is on.
    position: Position,
    /// The query pairs the attempt in progress must add to the URL.
    query: Vec<(&'static str, String)>,
    /// The gateway URLs the driver rotates through, and the one of the next attempt.
    endpoints: usize,
    endpoint: usize,
    /// Endpoints still to try at once before the backoff delay (a round tries each once).
    round_left: usize,
    seed: u64,
    /// What carries the attempt in progress or the open connection.
    carrier: Carrier,
    /// [`Transport::Auto`]: WebSocket attempts in a row that failed to open, and the HTTP
    /// status of the last one (if it had one).
    ws_failures: u32,
    ws_status: Option<u16>,
    /// [`Transport::Auto`], on an event stream: when to try the WebSocket again.
    retry_ws_at: Option<Millis>,
    /// [`Transport::Auto`]: the WebSocket attempt in progress is that try (a failure goes back
    /// to the event stream at once).
    trying_ws: bool,
    /// The open event stream's parser.
    parser: event_stream::Parser,
}

impl Session {
    /// A session in the idle state. `seed` feeds the reconnect jitter (drivers pass a random
    /// value; tests pass a constant).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the configuration fails [`SessionConfig::validate`].
    pub fn new(config: SessionConfig, seed: u64) -> Result<Session, Error> {
        config.validate()?;
        let config_transport = config.transport;
        Ok(Session {
            heartbeat: HeartbeatTimer::new(config.heartbeat_interval, config.heartbeat_timeout),
            backoff: ReconnectBackoff::new(config.reconnect.clone(), seed),
            config,
            state: State::Idle,
            actions: VecDeque::new(),
            stats: Stats::default(),
            opened_once: false,
            down_since: None,
            healthy: false,
            position: Position::default(),
            query: Vec::new(),
            endpoints: 1,
            endpoint: 0,
            round_left: 1,
            seed,
            carrier: match config_transport {
                Transport::EventStream => Carrier::EventStream,
                Transport::WebSocket | Transport::Auto => Carrier::WebSocket,
            },
            ws_failures: 0,
            ws_status: None,
            retry_ws_at: None,
            trying_ws: false,
            parser: event_stream::Parser::default(),
        })
    }

    /// The driver has `n` gateway URLs for the same path (at least 1; 1 is the default). The
    /// first attempt goes to one picked from the seed, each failed attempt or lost connection
    /// moves to the next one at once, and the reconnect delay (with its jitter, and its attempt
    /// limit) applies per round, once every URL was tried. The driver opens
    /// [`endpoint`](Self::endpoint) on each [`Action::Connect`].
    pub fn set_endpoints(&mut self, n: usize) {
        self.endpoints = n.max(1);
        self.endpoint = (splitmix64(self.seed) % self.endpoints as u64) as usize;
        self.round_left = self.endpoints;
    }

    /// The index of the URL the next (or current) attempt uses, below the count given to
    /// [`set_endpoints`](Self::set_endpoints); always 0 with one URL.
    pub fn endpoint(&self) -> usize {
        self.endpoint
    }

    /// What the driver opens on [`Action::Connect`], and what carries the open connection: a
    /// WebSocket, or an event stream ([`SessionConfig::transport`]).
    pub fn carrier(&self) -> Carrier {
        self.carrier
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Where the session is.
    pub fn state(&self) -> ConnectionState {
        match self.state {
            State::Idle => ConnectionState::Idle,
            State::Connecting { .. } => ConnectionState::Connecting,
            State::Open { .. } => ConnectionState::Open,
            State::Waiting { .. } => ConnectionState::Waiting,
            State::Stopped => ConnectionState::Stopped,
        }
    }

    /// The counters, with the current outage counted up to `now`.
    pub fn stats(&self, now: Millis) -> Stats {
        let mut stats = self.stats.clone();
        if let Some(since) = self.down_since {
            stats.downtime += now.saturating_since(since);
        }
        stats
    }

    /// Messages delivered so far ([`Stats::messages_received`]), without copying the other
    /// counters: a driver may read it after every message.
    #[inline]
    pub fn messages_received(&self) -> u64 {
        self.stats.messages_received
    }

    /// The query pairs the driver adds to the URL of the attempt it opens on
    /// [`Action::Connect`]: with [`SessionConfig::recover`], `recover=1` and the last position
    /// (`epoch`, `seq`) once there is one; on an event stream, `frames=1`; empty otherwise.
    pub fn connect_query(&self) -> &[(&'static str, String)] {
        &self.query
    }

    /// Appends [`connect_query`](Self::connect_query) to `url`, after `?` or `&`, for drivers
    /// that hold the URL as text. No pair needs percent-encoding: the names are fixed, the
    /// epoch is 16 hexadecimal digits (anything else from the gateway is refused) and `seq` is
    /// decimal.
    pub fn append_connect_query(&self, url: &mut String) {
        for (k, v) in &self.query {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
    }

    /// Message recovery: the last position seen (epoch, sequence number), if any.
    pub fn recovery_position(&self) -> Option<(&str, u64)> {
        self.position.last()
    }

    /// Message recovery: resume from `epoch`/`seq` at the next attempt, as if this session had
    /// delivered up to there (another holder of the same channel did, e.g. the browser tab that
    /// held the shared socket before this one). Ignored when the epoch is not 16 hexadecimal
    /// digits or [`SessionConfig::recover`] is off.
    pub fn resume_from(&mut self, epoch: &str, seq: u64) {
        if self.config.recover {
            self.position.set(epoch, seq);
        }
    }

    /// The next action for the driver, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the driver must call [`handle_timeout`](Self::handle_timeout) next, if ever.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match self.state {
            State::Connecting { deadline } => deadline,
            State::Open { .. } => {
                let retry = self
                    .retry_ws_at
                    .filter(|_| self.carrier == Carrier::EventStream);
                match (self.heartbeat.next_tick(), retry) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Waiting { until } => Some(until),
            State::Idle | State::Stopped => None,
        }
    }

    /// Starts connecting (from idle, after a stop, or at once while waiting to reconnect).
    /// Does nothing while connecting or open.
    pub fn connect(&mut self, now: Millis) {
        match self.state {
            State::Idle | State::Waiting { .. } => self.start_attempt(now),
            State::Stopped => {
                self.backoff.reset();
                self.start_attempt(now);
            }
            State::Connecting { .. } | State::Open { .. } => {}
        }
    }

    /// Stops for good: closes the socket or abandons the attempt, cancels every timer and
    /// never reconnects (until [`connect`](Self::connect) is called again).
    pub fn disconnect(&mut self, _now: Millis) {
        match self.state {
            State::Stopped => return,
            State::Open { .. } => {
                self.heartbeat.stop();
                self.push(Action::Close {
                    code: NORMAL_CLOSURE,
                });
                self.emit(Event::Closed {
                    code: Some(NORMAL_CLOSURE),
                    reason: String::new(),
                    will_reconnect: false,
                });
            }
            State::Connecting { .. } => self.push(Action::AbortConnect),
            State::Idle | State::Waiting { .. } => {}
        }
        self.down_since = None;
        self.trying_ws = false;
        self.state = State::Stopped;
        self.emit(Event::Stopped(None));
    }

    /// Checks the link at once instead of waiting for the next tick: when open, sends `!` now
    /// (a missing reply is then noticed `heartbeat_timeout` later); while waiting to reconnect,
    /// reconnects now. Drivers call it when the network comes back or, in a browser, when the
    /// page becomes visible again. Does nothing in the other states.
    pub fn probe(&mut self, now: Millis) {
        match self.state {
            State::Open { .. } => {
                if self.heartbeat.probe(now) {
                    self.push(Action::SendHeartbeat);
                }
            }
            State::Waiting { .. } => self.start_attempt(now),
            State::Idle | State::Connecting { .. } | State::Stopped => {}
        }
    }

    /// The socket opened.
    pub fn on_open(&mut self, now: Millis) {
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        if self.opened_once {
            self.stats.reconnects += 1;
        }
        self.opened_once = true;
        if let Some(since) = self.down_since.take() {
            self.stats.downtime += now.saturating_since(since);
        }
        self.healthy = false;
        // A lost connection starts a new round: the next URL at once.
        self.round_left = self.endpoints;
        let stream = self.carrier == Carrier::EventStream;
        self.heartbeat.start(now, stream);
        self.parser = event_stream::Parser::default();
        self.trying_ws = false;
        if stream {
            let retry = self.config.websocket_retry;
            self.retry_ws_at =
                (self.config.transport == Transport::Auto && !retry.is_zero()).then(|| now + retry);
        } else {
            self.ws_failures = 0;
        }
        self.state = State::Open { since: now };
        self.emit(Event::Open);
    }

    /// A text frame arrived that the driver delivers itself, without handing its text over:
    /// the browser driver keeps the page's string and saves copying it into and out of the
    /// session. Only for frames [`on_text`](Self::on_text) would deliver as they are: not
    /// empty, not starting with `!`, and never with [`SessionConfig::recover`] (envelopes).
    /// Counts the message; `true` when the driver must deliver it now (the socket is open), as
    /// `on_text` would have emitted [`Event::Message`].
    pub fn on_message_kept(&mut self, now: Millis) -> bool {
        if !matches!(self.state, State::Open { .. }) {
            return false;
        }
        self.stream_activity(now);
        self.stats.messages_received += 1;
        true
    }

    /// A text frame arrived (on an event stream: the frame an event stands for,
    /// [`stream_event`]).
    pub fn on_text(&mut self, now: Millis, text: &str) {
        if !matches!(self.state, State::Open { .. }) {
            return;
        }
        self.stream_activity(now);
        if self.config.recover && text.starts_with('#') {
            self.on_envelope(text);
            return;
        }
        match classify(text) {
            Inbound::HeartbeatReply => {
                if let Some(rtt) = self.heartbeat.on_reply(now) {
                    self.stats.last_rtt = Some(rtt);
                    if !self.healthy {
                        self.healthy = true;
                        self.backoff.reset();
                    }
                    self.emit(Event::HeartbeatRoundTrip { rtt });
                }
            }
            Inbound::Ignored => {}
            Inbound::Deliver(message) => {
                self.stats.messages_received += 1;
                self.emit(Event::Message(message));
            }
        }
    }

    /// Bytes of the open event stream's body arrived ([`Carrier::EventStream`]): its events are
    /// delivered as the WebSocket's frames would be, its keep-alives keep the heartbeat
    /// content, and its `close` event closes as a close frame would. A body that breaks the
    /// rules (an event over [`MAX_EVENT`] bytes, text that is not UTF-8) is a transport error:
    /// the driver gets [`Action::Close`].
    pub fn on_event_stream(&mut self, now: Millis, bytes: &[u8]) {
        if !matches!(self.state, State::Open { .. }) || self.carrier != Carrier::EventStream {
            return;
        }
        let mut items = Vec::new();
        let parsed = self.parser.feed(bytes, &mut items);
        for item in items {
            if !matches!(self.state, State::Open { .. }) {
                return;
            }
            self.on_stream_item(now, item);
        }
        if let Err(broken) = parsed {
            let why = match broken {
                event_stream::Broken::TooLong => "an event of the stream is over 64 MiB",
                event_stream::Broken::NotUtf8 => "the event stream is not UTF-8 text",
            };
            self.on_transport_error(now, why);
        }
    }

    /// On an event stream, anything that arrives shows the link lives.
    fn stream_activity(&mut self, now: Millis) {
        if self.carrier == Carrier::EventStream {
            self.heartbeat.on_activity(now);
        }
    }

    /// A binary frame arrived: handled as text if it is UTF-8, dropped otherwise.
    pub fn on_binary(&mut self, now: Millis, data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            self.on_text(now, text);
        }
    }

    /// The server closed the open socket (`code` is `None` without a close frame).
    pub fn on_closed(&mut self, now: Millis, code: Option<u16>, reason: &str) {
        let reason = reason.to_owned();
        self.lose_connection(now, Cause::Closed { code, reason });
    }

    /// The open socket failed (read or write error).
    pub fn on_transport_error(&mut self, now: Millis, message: &str) {
        if !matches!(self.state, State::Open { .. }) {
            return;
        }
        self.push(Action::Close { code: GOING_AWAY });
        let cause = Cause::Transport(message.to_owned());
        self.emit(Event::Error(cause_error(&cause)));
        self.lose_connection(now, cause);
    }

    /// The attempt in progress failed.
    pub fn on_connect_failed(&mut self, now: Millis, failure: ConnectFailure) {
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        self.fail_attempt(now, Cause::Failed(failure));
    }

    /// A timer fired: the connect timeout, a heartbeat tick or the reconnect delay.
    /// Calling it early or late is harmless.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.state {
            State::Connecting {
                deadline: Some(deadline),
            } if now >= deadline => {
                self.push(Action::AbortConnect);
                self.fail_attempt(now, Cause::ConnectTimeout);
            }
            State::Open { .. }
                if self.carrier == Carrier::EventStream
                    && self.retry_ws_at.is_some_and(|at| now >= at) =>
            {
                self.try_websocket_again(now);
            }
            State::Open { .. } => match self.heartbeat.tick(now) {
                Tick::Idle => {}
                Tick::SendPing => self.push(Action::SendHeartbeat),
                Tick::Lost => {
                    self.push(Action::Close { code: GOING_AWAY });
                    self.emit(Event::Error(Error::HeartbeatLost));
                    self.lose_connection(now, Cause::HeartbeatLost);
                }
            },
            State::Waiting { until } if now >= until => self.start_attempt(now),
            _ => {}
        }
    }
}
