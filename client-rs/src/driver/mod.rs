//! The tokio driver: a cheap `Clone` handle plus one background task per connection.

mod connect;
#[cfg(feature = "deflate")]
pub(crate) mod deflate;
mod events;
mod socket;
mod stream;
mod task;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::time::Instant;

use crate::client::parse_header;
use crate::session::{splitmix64, ConnectionState, Event, Session, Stats};
use crate::url::ws_urls;
use crate::{Client, Error, WebSocketConfig, WebSocketHandler};
pub use events::Events;
use socket::Settings;
use task::{Command, Task};
use url::Url;

/// Where the events go: the stream or the handler.
pub(super) enum Sink {
    /// The [`Events`] stream. Messages received together travel as one batch of at most
    /// `batch` events (one channel operation and one wake-up per batch, not per message).
    /// `room` holds a permit per event that may still be buffered (`event_buffer` in all): a
    /// batch takes as many as it has events, the stream gives them back once read.
    Channel {
        tx: mpsc::UnboundedSender<Vec<Event>>,
        room: Arc<Semaphore>,
        batch: usize,
    },
    Handler(Arc<dyn WebSocketHandler>),
}

impl Clone for Sink {
    fn clone(&self) -> Self {
        match self {
            Sink::Channel { tx, room, batch } => Sink::Channel {
                tx: tx.clone(),
                room: Arc::clone(room),
                batch: *batch,
            },
            Sink::Handler(h) => Sink::Handler(Arc::clone(h)),
        }
    }
}

impl Sink {
    /// Delivers a batch of events, in order.
    async fn deliver(&self, events: Vec<Event>) {
        match self {
            Sink::Channel { tx, room, .. } => {
                // Waits while the stream holds `event_buffer` unread events. A dropped `Events`
                // closes `room`: nobody listens, and that is fine.
                let n = u32::try_from(events.len()).unwrap_or(u32::MAX);
                if let Ok(permits) = room.acquire_many(n).await {
                    permits.forget();
                    let _ = tx.send(events);
                }
            }
            Sink::Handler(_) => {
                for event in events {
                    self.deliver_one(event);
                }
            }
        }
    }

    /// Calls the handler for one event (the channel takes batches only).
    fn deliver_one(&self, event: Event) {
        match self {
            Sink::Channel { .. } => {}
            Sink::Handler(h) => {
                crate::handler::dispatch(h.as_ref(), event);
            }
        }
    }
}

/// What the handles can see of the task.
#[derive(Clone, Debug)]
pub(super) struct Status {
    state: ConnectionState,
    stats: Stats,
    stop_error: Option<Error>,
}

pub(super) struct Shared {
    settings: Arc<Settings>,
    sink: Sink,
    status: watch::Sender<Status>,
    /// Messages delivered so far: updated per message without waking anyone (the watch
    /// `status` is published only when something else changes).
    received: Arc<AtomicU64>,
    origin: Instant,
    runtime: tokio::runtime::Handle,
    inner: Mutex<Inner>,
}

struct Inner {
    commands: Option<mpsc::Sender<Command>>,
    parked: Option<Session>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The lock guards no invariant a panic could break: recover from poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The command channel of the running task, starting a task on the parked session if none.
    fn commands(self: &Arc<Self>) -> Option<mpsc::Sender<Command>> {
        let mut inner = self.lock();
        if let Some(tx) = &inner.commands {
            if !tx.is_closed() {
                return Some(tx.clone());
            }
        }
        let session = inner.parked.take()?;
        let (tx, rx) = mpsc::channel(16);
        let task = Task::new(
            session,
            Arc::clone(&self.settings),
            self.sink.clone(),
            Arc::downgrade(self),
            self.status.clone(),
            Arc::clone(&self.received),
            rx,
            self.origin,
        );
        // Every event of the connection is logged in its span (`crate::ws::log_event`).
        // The URL without its query and credentials (a token may be in either).
        let mut shown = self.settings.url.clone();
        shown.set_query(None);
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let span = tracing::info_span!(
            target: "moleculer_ws_client::ws",
            "moleculer_ws",
            url = %shown
        );
        self.runtime
            .spawn(tracing::Instrument::instrument(task.run(), span));
        inner.commands = Some(tx.clone());
        Some(tx)
    }

    /// The running task hands its session back when it stops.
    fn park(&self, session: Session) {
        let mut inner = self.lock();
        inner.parked = Some(session);
        inner.commands = None;
    }
}

/// A WebSocket connection to a gateway path, kept alive with the heartbeat and reconnected by
/// the policy. Cheap to clone: clones share the connection. When the last clone is dropped,
/// the connection closes and its task ends.
///
/// Create one with [`Client::ws`] (events as a stream) or [`Client::ws_with_handler`].
#[derive(Clone)]
pub struct WebSocket {
    shared: Arc<Shared>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.shared.settings.url.as_str())
            .field("state", &self.state())
            .finish()
    }
}

impl WebSocket {
    /// The WebSocket URL (the first one given; without the token).
    pub fn url(&self) -> &str {
        self.shared.settings.url.as_str()
    }

    /// Where the connection is now.
    pub fn state(&self) -> ConnectionState {
        self.shared.status.borrow().state
    }

    /// Whether the socket is open now.
    pub fn is_connected(&self) -> bool {
        self.state() == ConnectionState::Open
    }

    /// The counters, as of the last event.
    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.status.borrow().stats.clone();
        stats.messages_received = self.shared.received.load(Ordering::Relaxed);
        stats
    }

    /// Connects (if not already open) and resolves once the socket is open. Failed attempts
    /// are retried by the reconnect policy meanwhile; wrap in a timeout to bound the wait.
    ///
    /// # Errors
    /// The error that stopped the session first ([`Error::Rejected`], [`Error::GaveUp`], ...),
    /// or [`Error::Disconnected`] if `disconnect()` came first.
    pub async fn connect(&self) -> Result<(), Error> {
        // A task that is stopping may drop the request: retry once on a fresh task.
        for _ in 0..2 {
            let Some(tx) = self.shared.commands() else {
                return Err(Error::Disconnected);
            };
            let (reply, answer) = oneshot::channel();
            if tx.send(Command::Connect(Some(reply))).await.is_err() {
                continue;
            }
            if let Ok(result) = answer.await {
                return result;
            }
        }
        Err(Error::Disconnected)
    }

    /// Waits until the socket is open, at most `timeout` (does not start connecting).
    ///
    /// # Errors
    /// [`Error::Timeout`]; or the session's stop error if it stopped (also before the call;
    /// [`Error::Disconnected`] after `disconnect()`).
    pub async fn wait_for_connection(&self, timeout: Duration) -> Result<(), Error> {
        let mut rx = self.shared.status.subscribe();
        let wait = async {
            loop {
                {
                    let status = rx.borrow_and_update();
                    match status.state {
                        ConnectionState::Open => return Ok(()),
                        ConnectionState::Stopped => {
                            return Err(status.stop_error.clone().unwrap_or(Error::Disconnected))
                        }
                        _ => {}
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Disconnected);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(Error::Timeout))
    }

    /// Closes the socket, cancels every timer and pending reconnect, and resolves once the
    /// socket is closed and the task has ended. No reconnect follows; `connect()` starts over.
    pub async fn disconnect(&self) {
        let tx = self.shared.lock().commands.clone();
        let Some(tx) = tx else { return };
        let (reply, closed) = oneshot::channel();
        if tx.send(Command::Disconnect(reply)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

impl Client {
    /// The tokio driver's [`Client::ws_any`]: the events as a stream.
    pub(crate) fn open_stream(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
    ) -> Result<(WebSocket, Events), Error> {
        let buffer = config.event_buffer.clamp(1, Semaphore::MAX_PERMITS);
        let batch = buffer.min(task::BURST);
        let room = Arc::new(Semaphore::new(buffer));
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = Sink::Channel {
            tx,
            room: Arc::clone(&room),
            batch,
        };
        let ws = self.start(urls, config, sink)?;
        Ok((ws, Events::new(rx, room)))
    }

    /// The tokio driver's [`Client::ws_any_with_handler`].
    pub(crate) fn open_with_handler(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
        handler: Box<dyn WebSocketHandler>,
    ) -> Result<WebSocket, Error> {
        self.start(urls, config, Sink::Handler(Arc::from(handler)))
    }

    fn start(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
        sink: Sink,
    ) -> Result<WebSocket, Error> {
        config.validate()?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|e| Error::NoRuntime(e.to_string()))?;
        let urls: Arc<[Url]> =
            ws_urls(self.defaults.base_url.as_ref(), urls, &config.query)?.into();
        let url = urls
            .first()
            .cloned()
            .ok_or_else(|| Error::InvalidUrl("no URL".into()))?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &config.headers {
            let (n, v) = parse_header(name, value)?;
            headers.append(n, v);
        }
        let seed = splitmix64(std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            url.as_str(),
        ));
        let mut session = Session::new(config.session.clone(), seed)?;
        session.set_endpoints(urls.len());
        let state = if config.auto_connect {
            ConnectionState::Connecting
        } else {
            ConnectionState::Idle
        };
        let (status, _) = watch::channel(Status {
            state,
            stats: Stats::default(),
            stop_error: None,
        });
        let shared = Arc::new(Shared {
            settings: Arc::new(Settings {
                url,
                urls,
                headers,
                defaults: Arc::clone(&self.defaults),
                token_query_param: config.token_query_param.clone(),
                compression: config.compression,
                #[cfg(feature = "autobahn")]
                echo: config.echo,
            }),
            sink,
            status,
            received: Arc::new(AtomicU64::new(0)),
            origin: Instant::now(),
            runtime,
            inner: Mutex::new(Inner {
                commands: None,
                parked: Some(session),
            }),
        });
        if config.auto_connect {
            if let Some(tx) = shared.commands() {
                // A fresh channel has room: this cannot fail for lack of space.
                let _ = tx.try_send(Command::Connect(None));
            }
        }
        Ok(WebSocket { shared })
    }
}
