//! The background task of one connection: runs the session core against a real socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::socket::{self, Settings, WsStream};
use super::stream::{self, EventStream};
use super::{Shared, Sink, Status};
use crate::session::{Action, Carrier, ConnectFailure, ConnectionState, Event, Millis, Session};
use crate::Error;

type Opening = Pin<Box<dyn Future<Output = Result<Opened, ConnectFailure>> + Send>>;

/// What an attempt opened: what the session's carrier asked for.
enum Opened {
    Socket(Box<WsStream>),
    Stream(EventStream),
}

/// Frames already received that are handled in one go, without going back to the `select!`
/// (which polls every source and re-arms the waker each time).
pub(super) const BURST: usize = 64;

/// A request from a handle.
#[derive(Debug)]
pub(super) enum Command {
    /// Connect (if not open) and answer when open or stopped.
    Connect(Option<oneshot::Sender<Result<(), Error>>>),
    /// Close for good and answer once closed.
    Disconnect(oneshot::Sender<()>),
}

pub(super) struct Task {
    pub(super) session: Session,
    pub(super) settings: Arc<Settings>,
    pub(super) sink: Sink,
    pub(super) shared: Weak<Shared>,
    pub(super) status: tokio::sync::watch::Sender<Status>,
    received: Arc<AtomicU64>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) origin: Instant,
    /// The session's next timeout; re-armed only when the deadline changes.
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// What was last published to the handles while open (state and counters but the
    /// message count, which has its own atomic).
    published: Option<(ConnectionState, u64, u64, Option<std::time::Duration>)>,
    /// Events not yet handed to the sink: messages wait here until the burst they arrived in
    /// is handled (or a batch is full); any other event sends them along at once.
    pending: Vec<Event>,
    socket: Option<WsStream>,
    /// The open event stream, when the session's carrier is one.
    stream: Option<EventStream>,
    opening: Option<Opening>,
    open_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    closed_waiters: Vec<oneshot::Sender<()>>,
    graceful: bool,
    stop_error: Option<Error>,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        session: Session,
        settings: Arc<Settings>,
        sink: Sink,
        shared: Weak<Shared>,
        status: tokio::sync::watch::Sender<Status>,
        received: Arc<AtomicU64>,
        commands: mpsc::Receiver<Command>,
        origin: Instant,
    ) -> Task {
        Task {
            session,
            settings,
            sink,
            shared,
            status,
            received,
            commands,
            origin,
            timer: Box::pin(tokio::time::sleep_until(origin)),
            armed: None,
            published: None,
            pending: Vec::new(),
            socket: None,
            stream: None,
            opening: None,
            open_waiters: Vec::new(),
            closed_waiters: Vec::new(),
            graceful: false,
            stop_error: None,
        }
    }

    fn now(&self) -> Millis {
        Millis::from_elapsed(self.origin.elapsed())
    }

    /// Runs until the session stops (disconnect, policy, or every handle dropped).
    pub(super) async fn run(mut self) {
        // A parked session starts stopped: the command that started this task comes first.
        let mut first = true;
        loop {
            self.perform().await;
            self.flush().await;
            if !first {
                // (A parked session's stale state is not published before its command runs.)
                self.publish_if_changed();
            }
            if !first && self.session.state() == ConnectionState::Stopped {
                break;
            }
            first = false;
            let deadline = self
                .session
                .poll_timeout()
                .map(|at| self.origin + at.as_duration());
            if deadline != self.armed {
                if let Some(at) = deadline {
                    self.timer.as_mut().reset(at);
                }
                self.armed = deadline;
            }
            tokio::select! {
                command = self.commands.recv() => self.on_command(command),
                result = opening(&mut self.opening) => {
                    self.opening = None;
                    let now = self.now();
                    match result {
                        Ok(Opened::Socket(ws)) => {
                            self.socket = Some(*ws);
                            self.session.on_open(now);
                        }
                        Ok(Opened::Stream(stream)) => {
                            self.stream = Some(stream);
                            self.session.on_open(now);
                        }
                        Err(failure) => self.session.on_connect_failed(now, failure),
                    }
                }
                frame = next_frame(&mut self.socket) => {
                    let now = self.now();
                    self.on_frame(frame, now).await;
                    self.burst().await;
                }
                chunk = next_chunk(&mut self.stream) => {
                    let now = self.now();
                    match chunk {
                        Some(Ok(bytes)) => self.session.on_event_stream(now, &bytes),
                        Some(Err(e)) => {
                            self.stream = None;
                            self.session.on_transport_error(now, &e);
                        }
                        None => {
                            self.stream = None;
                            self.session.on_closed(now, None, "");
                        }
                    }
                }
                () = &mut self.timer, if self.armed.is_some() => {
                    // A fired `Sleep` stays ready: re-armed on the next deadline.
                    self.armed = None;
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
            }
        }
        self.finish();
    }

    fn on_command(&mut self, command: Option<Command>) {
        let now = self.now();
        match command {
            Some(Command::Connect(reply)) => {
                if self.session.state() == ConnectionState::Open {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                    return;
                }
                self.open_waiters.extend(reply);
                self.session.connect(now);
            }
            Some(Command::Disconnect(reply)) => {
                self.closed_waiters.push(reply);
                self.graceful = true;
                self.session.disconnect(now);
            }
            None => {
                // Every handle is gone.
                self.graceful = true;
                self.session.disconnect(now);
            }
        }
    }

    /// Handles the frames that are already received (at most [`BURST`]), each with its
    /// actions, as the loop would, but without a `select!` round per frame.
    async fn burst(&mut self) {
        // Frames that are already here arrived at the same time, as far as the session cares
        // (it reads the clock for heartbeat round trips only): one clock read per burst.
        let now = self.now();
        for _ in 0..BURST {
            self.perform().await;
            if self.session.state() != ConnectionState::Open {
                return;
            }
            let Some(ws) = &mut self.socket else { return };
            let Some(frame) = ws.next().now_or_never() else {
                return;
            };
            self.on_frame(frame.map(|r| r.map_err(|e| e.to_string())), now)
                .await;
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<WsMessage, String>>, now: Millis) {
        #[cfg(feature = "autobahn")]
        if let (true, Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_))))) =
            (self.settings.echo, &frame)
        {
            if let Some(ws) = &mut self.socket {
                if let Err(e) = socket::echo(ws, message.clone()).await {
                    self.socket = None;
                    let now = self.now();
                    self.session.on_transport_error(now, &e);
                    return;
                }
            }
        }
        match frame {
            Some(Ok(WsMessage::Text(text))) => self.session.on_text(now, text.as_str()),
            Some(Ok(WsMessage::Binary(data))) => self.session.on_binary(now, &data),
            Some(Ok(WsMessage::Close(frame))) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                    None => (None, String::new()),
                };
                if let Some(ws) = self.socket.take() {
                    socket::finish_close(ws).await;
                }
                self.session.on_closed(now, code, &reason);
            }
            Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
            Some(Err(e)) => {
                self.socket = None;
                self.session.on_transport_error(now, &e);
            }
            None => {
                self.socket = None;
                self.session.on_closed(now, None, "");
            }
        }
    }

    /// Carries out the session's actions, in order.
    async fn perform(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect => {
                    let endpoint = self.session.endpoint();
                    let settings = match (self.session.connect_query(), endpoint) {
                        ([], 0) => self.settings.clone(),
                        (query, i) => {
                            let mut s = Settings::clone(&self.settings);
                            if let Some(url) = s.urls.get(i) {
                                s.url = url.clone();
                            }
                            crate::url::append_query(&mut s.url, query);
                            Arc::new(s)
                        }
                    };
                    self.opening = Some(match self.session.carrier() {
                        Carrier::EventStream => {
                            Box::pin(stream::open(settings).map(|r| r.map(Opened::Stream)))
                        }
                        _ => Box::pin(
                            socket::open(settings)
                                .map(|r| r.map(|ws| Opened::Socket(Box::new(ws)))),
                        ),
                    });
                }
                Action::AbortConnect => self.opening = None,
                Action::SendHeartbeat => {
                    if let Some(ws) = &mut self.socket {
                        if let Err(e) = socket::send_heartbeat(ws).await {
                            self.socket = None;
                            let now = self.now();
                            self.session.on_transport_error(now, &e);
                        }
                    }
                }
                Action::Close { code } => {
                    // An event stream ends when dropped: there is nothing to send.
                    self.stream = None;
                    if let Some(ws) = self.socket.take() {
                        socket::close(ws, code, self.graceful).await;
                    }
                }
                Action::Emit(event) => self.dispatch(event).await,
                // An action added to the core later: this driver does not know it yet.
                _ => {}
            }
        }
    }

    async fn dispatch(&mut self, event: Event) {
        crate::ws::log_event(&event);
        match &event {
            Event::Open => {
                for w in self.open_waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            Event::Stopped(error) => {
                self.stop_error = error.clone().map(Error::from);
                let error = self.stop_error.clone().unwrap_or(Error::Disconnected);
                for w in self.open_waiters.drain(..) {
                    let _ = w.send(Err(error.clone()));
                }
            }
            Event::Message(_) => {
                // The hot path: the count only, no wake-up of the handles' watchers.
                let count = self.session.messages_received();
                self.received.store(count, Ordering::Relaxed);
                match &self.sink {
                    Sink::Channel { batch, .. } => {
                        let full = self.pending.len() + 1 >= *batch;
                        self.pending.push(event);
                        if full {
                            self.flush().await;
                        }
                    }
                    Sink::Handler(_) => self.sink.deliver_one(event),
                }
                return;
            }
            _ => {}
        }
        self.publish();
        self.pending.push(event);
        self.flush().await;
    }

    /// Hands the pending events to the sink.
    async fn flush(&mut self) {
        if !self.pending.is_empty() {
            let events = std::mem::take(&mut self.pending);
            self.sink.deliver(events).await;
        }
    }

    /// Publishes the status unless the socket is open and nothing but the message count
    /// changed since the last time (the downtime grows only while not open).
    fn publish_if_changed(&mut self) {
        let state = self.session.state();
        if state == ConnectionState::Open {
            let s = self.session.stats(Millis::ZERO);
            let key = Some((state, s.reconnects, s.failed_attempts, s.last_rtt));
            if key == self.published {
                return;
            }
        }
        self.publish();
    }

    fn publish(&mut self) {
        let status = Status {
            state: self.session.state(),
            stats: self.session.stats(self.now()),
            stop_error: self.stop_error.clone(),
        };
        self.published = (status.state == ConnectionState::Open).then_some((
            status.state,
            status.stats.reconnects,
            status.stats.failed_attempts,
            status.stats.last_rtt,
        ));
        self.received
            .store(status.stats.messages_received, Ordering::Relaxed);
        self.status.send_replace(status);
    }

    /// Parks the session for a later `connect()` and answers the waiters.
    fn finish(mut self) {
        // Park first: from now on a `connect()` starts a new task on the session.
        if let Some(shared) = self.shared.upgrade() {
            shared.park(self.session);
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                // A connect that raced with the stop: dropping the reply makes the handle
                // retry, on the new task.
                Command::Connect(reply) => drop(reply),
                Command::Disconnect(reply) => self.closed_waiters.push(reply),
            }
        }
        for w in self.closed_waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

async fn opening(opening: &mut Option<Opening>) -> Result<Opened, ConnectFailure> {
    match opening {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn next_chunk(stream: &mut Option<EventStream>) -> Option<Result<bytes::Bytes, String>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn next_frame(socket: &mut Option<WsStream>) -> Option<Result<WsMessage, String>> {
    match socket {
        Some(ws) => ws.next().await.map(|r| r.map_err(|e| e.to_string())),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
pub(super) fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Task>();
}
