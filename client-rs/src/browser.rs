//! The browser driver's Rust face (wasm32): the same [`Client::ws`] → `(WebSocket, Events)`,
//! [`Client::ws_with_handler`] and methods as the tokio driver, over `moleculer-ws-browser`.
//!
//! What the browser cannot do, and what this face does instead:
//! - a browser WebSocket sends no headers: [`WebSocketConfig::headers`] is refused
//!   ([`Error::InvalidConfig`]), the client's default headers go with its REST calls only, and
//!   the client's token goes in the query parameter [`WebSocketConfig::token_query_param`]
//!   (`token` when unset, the gateway's name), asked at every attempt as on native targets;
//! - a browser WebSocket cannot be paused: events wait in memory until [`Events`] reads them
//!   ([`WebSocketConfig::event_buffer`] does not apply);
//! - a refused upgrade's HTTP status is hidden from scripts: the session retries instead of
//!   stopping with [`Error::Rejected`].

use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use moleculer_ws_browser::{seed, AttemptUrl, Driver, Step, MAX_TIMEOUT_MS};
use url::Url;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::client::TokenSource;
use crate::session::{ConnectionState, Event, Session, Stats};
use crate::url::{append_query, ws_urls};
use crate::{Client, Error, WebSocketConfig, WebSocketHandler};

/// Where the events go: the stream or the handler.
enum Sink {
    Channel(mpsc::UnboundedSender<Event>),
    Handler(Box<dyn WebSocketHandler>),
}

/// What the handles see of the driver, updated at every step.
struct Status {
    state: ConnectionState,
    stop_error: Option<Error>,
    /// `connect()` and `wait_for_connection()` callers, answered at the next open or stop.
    waiters: Vec<oneshot::Sender<Result<(), Error>>>,
}

struct Shared {
    driver: Driver,
    url: String,
    status: Rc<RefCell<Status>>,
}

/// A WebSocket connection to a gateway path, kept alive with the heartbeat and reconnected by
/// the policy. Cheap to clone: clones share the connection. When the last clone is dropped,
/// the socket closes and the timers stop.
///
/// Create one with [`Client::ws`] (events as a stream) or [`Client::ws_with_handler`].
#[derive(Clone)]
pub struct WebSocket {
    shared: Rc<Shared>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.shared.url)
            .field("state", &self.state())
            .finish()
    }
}

impl WebSocket {
    /// The WebSocket URL (the first one given; without the token).
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Where the connection is now.
    pub fn state(&self) -> ConnectionState {
        self.shared.status.borrow().state
    }

    /// Whether the socket is open now.
    pub fn is_connected(&self) -> bool {
        self.state() == ConnectionState::Open
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.shared.driver.stats().unwrap_or_default()
    }

    /// Connects (if not already open) and resolves once the socket is open. Failed attempts
    /// are retried by the reconnect policy meanwhile; use
    /// [`wait_for_connection`](Self::wait_for_connection) to bound the wait.
    ///
    /// # Errors
    /// The error that stopped the session first ([`Error::GaveUp`], ...), or
    /// [`Error::Disconnected`] if `disconnect()` came first.
    pub async fn connect(&self) -> Result<(), Error> {
        if self.is_connected() {
            return Ok(());
        }
        let answer = self.waiter();
        self.shared.driver.connect();
        answer.await.unwrap_or(Err(Error::Disconnected))
    }

    /// Waits until the socket is open, at most `timeout` (does not start connecting).
    ///
    /// # Errors
    /// [`Error::Timeout`]; or the session's stop error if it stopped (also before the call;
    /// [`Error::Disconnected`] after `disconnect()`).
    pub async fn wait_for_connection(&self, timeout: Duration) -> Result<(), Error> {
        {
            let status = self.shared.status.borrow();
            match status.state {
                ConnectionState::Open => return Ok(()),
                ConnectionState::Stopped => {
                    return Err(status.stop_error.clone().unwrap_or(Error::Disconnected))
                }
                _ => {}
            }
        }
        let mut answer = pin!(self.waiter());
        let mut timer = pin!(sleep(timeout));
        poll_fn(|cx| {
            if let Poll::Ready(result) = answer.as_mut().poll(cx) {
                return Poll::Ready(result.unwrap_or(Err(Error::Disconnected)));
            }
            timer.as_mut().poll(cx).map(|()| Err(Error::Timeout))
        })
        .await
    }

    /// Closes the socket, cancels every timer and pending reconnect. No reconnect follows;
    /// `connect()` starts over. The browser finishes the close handshake on its own.
    pub async fn disconnect(&self) {
        self.shared.driver.disconnect();
    }

    fn waiter(&self) -> oneshot::Receiver<Result<(), Error>> {
        let (tx, rx) = oneshot::channel();
        let mut status = self.shared.status.borrow_mut();
        // Callers that gave up (a timed-out wait) leave no sender behind.
        status.waiters.retain(|w| !w.is_canceled());
        status.waiters.push(tx);
        rx
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The global `setTimeout` (of a window or a worker).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: f64) -> JsValue;
    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// Resolves after `duration`, in timeouts `setTimeout` can hold.
async fn sleep(duration: Duration) {
    let mut left = crate::session::text::whole_ms(duration);
    loop {
        let part = left.min(MAX_TIMEOUT_MS);
        Timeout::new(part).await;
        left -= part;
        if left == 0 {
            return;
        }
    }
}

/// One `setTimeout` as a future; dropping it clears the timer.
struct Timeout {
    id: JsValue,
    done: JsFuture,
}

impl Timeout {
    fn new(ms: u64) -> Timeout {
        let mut id = JsValue::UNDEFINED;
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            id = set_timeout(&resolve, ms as f64);
        });
        Timeout {
            id,
            done: JsFuture::from(promise),
        }
    }
}

impl Future for Timeout {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.done).poll(cx).map(|_| ())
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// The events of one [`WebSocket`], in order, as a [`Stream`](futures_core::Stream).
///
/// It ends when the connection is gone for good (every handle dropped). The browser cannot
/// pause a socket, so unread events wait in memory: keep reading.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// The next event, or `None` when the stream ended. Cancel safe.
    pub async fn recv(&mut self) -> Option<Event> {
        poll_fn(|cx| Pin::new(&mut self.rx).poll_next(cx)).await
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

impl Client {
    /// The browser driver's [`Client::ws_any`]: the events as a stream.
    pub(crate) fn open_stream(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
    ) -> Result<(WebSocket, Events), Error> {
        let (tx, rx) = mpsc::unbounded();
        let ws = self.start(urls, config, Sink::Channel(tx))?;
        Ok((ws, Events { rx }))
    }

    /// The browser driver's [`Client::ws_any_with_handler`].
    pub(crate) fn open_with_handler(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
        handler: Box<dyn WebSocketHandler>,
    ) -> Result<WebSocket, Error> {
        self.start(urls, config, Sink::Handler(handler))
    }

    fn start(
        &self,
        urls: &[&str],
        config: WebSocketConfig,
        sink: Sink,
    ) -> Result<WebSocket, Error> {
        config.validate()?;
        if !config.headers.is_empty() {
            return Err(Error::InvalidConfig(
                "a browser WebSocket cannot send headers: put the values in the query \
                 (WebSocketConfig::query)"
                    .into(),
            ));
        }
        let urls = ws_urls(self.defaults.base_url.as_ref(), urls, &config.query)?;
        let shown = urls
            .first()
            .map(|u| u.to_string())
            .ok_or_else(|| Error::InvalidUrl("no URL".into()))?;
        let count = urls.len();
        // The URL of each attempt, with the token the provider gives now.
        let defaults = Arc::clone(&self.defaults);
        let name = config
            .token_query_param
            .unwrap_or_else(|| "token".to_owned());
        let attempt_url = move |endpoint: usize| {
            let Some(url) = urls.get(endpoint).or(urls.first()) else {
                return AttemptUrl::Now(String::new());
            };
            let with = |token: Option<String>, mut url: Url, name: &str| match token {
                Some(token) => {
                    append_query(&mut url, &[(name, token)]);
                    String::from(url)
                }
                None => url.to_string(),
            };
            match &defaults.token {
                None => AttemptUrl::Now(url.to_string()),
                Some(TokenSource::Now(f)) => AttemptUrl::Now(with(f(), url.clone(), &name)),
                Some(TokenSource::Later(f)) => {
                    let (future, url, name) = (f(), url.clone(), name.clone());
                    AttemptUrl::Later(wasm_bindgen_futures::future_to_promise(async move {
                        let token = future.await;
                        Ok(JsValue::from_str(&with(token, url, &name)))
                    }))
                }
            }
        };
        let mut session = Session::new(config.session.clone(), seed())?;
        session.set_endpoints(count);
        let status = Rc::new(RefCell::new(Status {
            state: session.state(),
            stop_error: None,
            waiters: Vec::new(),
        }));
        let seen = Rc::clone(&status);
        let driver = Driver::new(attempt_url, session, false, move |step| {
            on_step(&seen, &sink, step)
        });
        if config.shared {
            driver.share(&shown);
        }
        if config.auto_connect {
            driver.connect();
        }
        Ok(WebSocket {
            shared: Rc::new(Shared {
                driver,
                url: shown,
                status,
            }),
        })
    }
}

/// Records the step in the status, answers the waiters, then delivers the events (with no
/// borrow held: a handler may call the handle's methods).
fn on_step(status: &RefCell<Status>, sink: &Sink, step: Step) {
    // The status is only ever borrowed for a moment, never across a call into the driver, so
    // this borrow succeeds; if it did not, the events would still be delivered.
    let answered = status.try_borrow_mut().ok().and_then(|mut me| {
        if let Some(state) = step.state_changed {
            me.state = state;
        }
        let mut answer = None;
        for event in &step.events {
            match event {
                Event::Open => answer = Some(Ok(())),
                Event::Stopped(error) => {
                    me.stop_error = error.clone().map(Error::from);
                    answer = Some(Err(me.stop_error.clone().unwrap_or(Error::Disconnected)));
                }
                _ => {}
            }
        }
        answer.map(|a| (a, std::mem::take(&mut me.waiters)))
    });
    if let Some((answer, waiters)) = answered {
        for w in waiters {
            let _ = w.send(answer.clone());
        }
    }
    for event in step.events {
        crate::ws::log_event(&event);
        match sink {
            Sink::Channel(tx) => {
                let _ = tx.unbounded_send(event);
            }
            Sink::Handler(h) => crate::handler::dispatch(h.as_ref(), event),
        }
    }
}
