//! [`Driver`]: one session core over the browser's `WebSocket`, `setTimeout` and
//! `performance.now()`.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use moleculer_ws_session::text::{message, Part};
use moleculer_ws_session::{
    Action, Carrier, ConnectFailure, ConnectionState, Event, Millis, Session, Stats, HEARTBEAT,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;

use crate::clock::{clear_timeout, now, set_timeout, MAX_TIMEOUT_MS};
use crate::socket::{SocketEvent, SocketGuard};
#[cfg(feature = "tabs")]
use crate::tabs::{TabInput, Tabs};

/// What one step of the driver produced, for its owner (the face), in order.
pub struct Step {
    /// The session's events.
    pub events: Vec<Event>,
    /// The browser's `open` event, when `events` holds [`Event::Open`].
    pub open_event: Option<JsValue>,
    /// With `raw_messages`: a message the session counted but did not read, as the page's
    /// string (delivered after `events`).
    pub raw: Option<JsValue>,
    /// The new state, when it changed.
    pub state_changed: Option<ConnectionState>,
}

type OnStep = Box<dyn Fn(Step)>;

/// The URL of an attempt: known now, or a promise of it (a token provider that fetches).
pub enum AttemptUrl {
    /// The absolute `ws(s)://` URL.
    Now(String),
    /// A promise of the URL as a string; anything but a string fails the attempt (and the
    /// reconnect policy goes on). It must not reject: turn a failure into a non-string value.
    Later(js_sys::Promise),
}

impl From<String> for AttemptUrl {
    fn from(url: String) -> AttemptUrl {
        AttemptUrl::Now(url)
    }
}

pub(crate) struct Inner {
    /// The URL of the next attempt, asked at each one with the session's
    /// [`endpoint`](Session::endpoint) (a token may have been refreshed meanwhile).
    url: Box<dyn Fn(usize) -> AttemptUrl>,
    pub(crate) session: Session,
    pub(crate) socket: Option<SocketGuard>,
    generation: u64,
    timer: Option<JsValue>,
    timer_cb: Option<Closure<dyn FnMut(JsValue)>>,
    /// Takes a promised URL ([`AttemptUrl::Later`]).
    url_cb: Option<Closure<dyn FnMut(JsValue)>>,
    /// A promised URL is on its way for the attempt in progress: a new attempt waits for it
    /// instead of asking again (a slow token provider is never asked twice at once); an
    /// attempt given up (connect timeout, disconnect) stops waiting, so a provider that never
    /// answers is asked again at the next attempt. A late answer serves whichever attempt is
    /// connecting when it comes.
    awaiting: bool,
    /// Promises not settled yet (each may still call `url_cb`).
    pending: u32,
    open_event: Option<JsValue>,
    last_state: ConnectionState,
    pub(crate) raw_messages: bool,
    on_step: Rc<OnStep>,
    me: Weak<RefCell<Inner>>,
    /// With [`Driver::share`]: this tab's part in the channel's one socket for all tabs.
    #[cfg(feature = "tabs")]
    pub(crate) tabs: Option<Tabs>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A promise still pending would call a freed closure (and throw): leave it to it.
        if let (1.., Some(cb)) = (self.pending, self.url_cb.take()) {
            cb.forget();
        }
        if let Some(id) = self.timer.take() {
            clear_timeout(&id);
        }
    }
}

/// One logical connection: a [`Session`] driven by the browser. Dropping the last handle
/// closes the socket and cancels the timer.
pub struct Driver {
    pub(crate) inner: Rc<RefCell<Inner>>,
}

impl Driver {
    /// A driver for the absolute `ws(s)://` URL that `url` returns for the session's endpoint
    /// (asked at every attempt; the session's recovery query is added to it). Every step's output goes to `on_step`,
    /// called with no borrow held (it may call [`connect`](Self::connect) or
    /// [`disconnect`](Self::disconnect)).
    ///
    /// `raw_messages`: without `recover`, a message goes to `on_step` as the page's string in
    /// [`Step::raw`] (the session counts it, its text is never copied into wasm memory) instead
    /// of an [`Event::Message`].
    pub fn new(
        url: impl Fn(usize) -> AttemptUrl + 'static,
        session: Session,
        raw_messages: bool,
        on_step: impl Fn(Step) + 'static,
    ) -> Driver {
        let last_state = session.state();
        let inner = Rc::new_cyclic(|me: &Weak<RefCell<Inner>>| {
            let weak = me.clone();
            // The type of the socket's listeners: one glue shim for all closures.
            let cb = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    if let Ok(mut me) = inner.try_borrow_mut() {
                        me.timer = None;
                    }
                    step(&inner, Input::Timeout);
                }
            });
            let weak = me.clone();
            let url_cb = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
                if let Some(inner) = weak.upgrade() {
                    step(&inner, Input::Url(v));
                }
            });
            RefCell::new(Inner {
                url: Box::new(url),
                url_cb: Some(url_cb),
                awaiting: false,
                pending: 0,
                session,
                socket: None,
                generation: 0,
                timer: None,
                timer_cb: Some(cb),
                open_event: None,
                last_state,
                raw_messages,
                on_step: Rc::new(Box::new(on_step)),
                me: me.clone(),
                #[cfg(feature = "tabs")]
                tabs: None,
            })
        });
        Driver { inner }
    }

    /// Connects (at once, also while waiting to reconnect). A second call while connecting or
    /// open does nothing: there is never more than one socket.
    pub fn connect(&self) {
        step(&self.inner, Input::Connect);
    }

    /// Closes the socket, stops the heartbeat and cancels any pending reconnect.
    pub fn disconnect(&self) {
        step(&self.inner, Input::Disconnect);
    }

    /// Checks the link now: sends `!` when open, reconnects at once while waiting (for a page
    /// that becomes visible, comes back online or is restored from the back/forward cache).
    pub fn probe(&self) {
        step(&self.inner, Input::Probe);
    }

    /// Message recovery: the last position delivered, as `<epoch>:<seq>`; `None` before the
    /// gateway's first answer (or when called from inside the driver's own step).
    pub fn position(&self) -> Option<String> {
        self.inner.try_borrow().ok()?.position_text()
    }

    /// The state; `None` only when called from inside the driver's own step.
    pub fn state(&self) -> Option<ConnectionState> {
        self.inner.try_borrow().ok().map(|me| me.session.state())
    }

    /// The statistics; `None` only when called from inside the driver's own step.
    pub fn stats(&self) -> Option<Stats> {
        self.inner.try_borrow().ok().map(|me| {
            #[allow(unused_mut)]
            let mut stats = me.session.stats(now());
            #[cfg(feature = "tabs")]
            if let Some(t) = &me.tabs {
                stats.messages_received += t.carried;
                if let Some(spare) = &t.spare {
                    stats.messages_received += spare.messages_received();
                }
            }
            stats
        })
    }
}

/// What the session is fed (one non-generic `step` for all of them keeps the code small).
pub(crate) enum Input {
    Connect,
    Disconnect,
    Probe,
    Timeout,
    Socket(SocketEvent),
    /// What the tab sharing reports (feature `tabs`).
    #[cfg(feature = "tabs")]
    Tab(TabInput),
    /// A promised URL arrived.
    Url(JsValue),
}

impl Input {
    /// Feeds the session; a message the driver delivers itself comes back.
    pub(crate) fn feed(self, s: &mut Session, now: Millis, raw_messages: bool) -> Option<JsValue> {
        match self {
            Input::Socket(SocketEvent::Message(data)) => {
                // With `recover`, frames may be envelopes and `onopen` waits for the first one:
                // the session reads them all.
                if raw_messages && !s.config().recover {
                    return s.on_message_kept(now).then_some(data);
                }
                if let Some(t) = data.as_string() {
                    s.on_text(now, &t);
                }
            }
            Input::Connect => s.connect(now),
            Input::Disconnect => s.disconnect(now),
            Input::Probe => s.probe(now),
            Input::Timeout => s.handle_timeout(now),
            Input::Socket(SocketEvent::Open(_)) => s.on_open(now),
            Input::Socket(SocketEvent::Text(t)) => s.on_text(now, &t),
            Input::Socket(SocketEvent::Binary(b)) => s.on_binary(now, &b),
            Input::Socket(SocketEvent::Closed { code, reason }) => {
                if s.state() == ConnectionState::Connecting {
                    let what = match s.carrier() {
                        Carrier::EventStream => "the event stream",
                        _ => "the WebSocket",
                    };
                    let why = message(&[
                        Part::Str(what),
                        Part::Str(" closed before opening (code "),
                        Part::Number(u64::from(code)),
                        Part::Str(")"),
                    ]);
                    s.on_connect_failed(now, ConnectFailure::Transport(why));
                } else {
                    // 1005/1006: no close frame was received.
                    let code = (code != 1005 && code != 1006).then_some(code);
                    s.on_closed(now, code, &reason);
                }
            }
            // Browsers follow every error with a close event: the close carries the decision.
            // The tab inputs are handled before the session sees anything (`Inner::advance`).
            _ => {}
        }
        None
    }
}

/// Feeds one input to the session (or to the tab sharing), carries out its actions, then hands
/// the output to the owner with no borrow held.
pub(crate) fn step(inner: &Rc<RefCell<Inner>>, input: Input) {
    let (out, on_step) = {
        let Ok(mut me) = inner.try_borrow_mut() else {
            // A lock granted at such a moment is given back (the next tab in line takes it).
            #[cfg(feature = "tabs")]
            if let Input::Tab(TabInput::Granted(resolve, _)) = input {
                let _ = resolve.call0(&JsValue::NULL);
            }
            return;
        };
        let Some(out) = me.advance(input) else {
            return;
        };
        (out, Rc::clone(&me.on_step))
    };
    on_step(out);
}

impl Inner {
    /// The session's recovery position as `<epoch>:<seq>`.
    pub(crate) fn position_text(&self) -> Option<String> {
        let (epoch, seq) = self.session.recovery_position()?;
        Some(message(&[
            Part::Str(epoch),
            Part::Str(":"),
            Part::Number(seq),
        ]))
    }

    /// One step: `None` when there is nothing for the owner.
    fn advance(&mut self, input: Input) -> Option<Step> {
        let raw = match input {
            Input::Url(url) => {
                self.awaiting = false;
                self.pending = self.pending.saturating_sub(1);
                self.url_settled(url)?;
                None
            }
            input => {
                #[cfg(feature = "tabs")]
                let input = match self.tabs {
                    Some(_) => self.tab_input(input)?,
                    None => input,
                };
                input.feed(&mut self.session, now(), self.raw_messages)
            }
        };
        #[allow(unused_mut)]
        let mut events = self.carry_out();
        #[cfg(feature = "tabs")]
        if let Some(t) = self.tabs.as_mut() {
            events.splice(0..0, t.early.drain(..));
            self.relay_stop(&events);
        }
        Some(self.show(events, raw))
    }

    /// The step for the owner: the events, and the state when it changed.
    pub(crate) fn show(&mut self, events: Vec<Event>, raw: Option<JsValue>) -> Step {
        let state = self.session.state();
        let state_changed = (state != self.last_state).then_some(state);
        self.last_state = state;
        let open_event = if events.iter().any(|e| matches!(e, Event::Open)) {
            self.open_event.take()
        } else {
            None
        };
        Step {
            events,
            open_event,
            raw,
            state_changed,
        }
    }

    /// Carries out the session's actions; returns the events for the owner. A follower tab
    /// opens no socket (the leader's is its socket).
    pub(crate) fn carry_out(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        #[cfg(feature = "tabs")]
        let leads = self.tabs.as_ref().is_none_or(|t| t.leader);
        #[cfg(not(feature = "tabs"))]
        let leads = true;
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect if leads => self.open_socket(),
                Action::AbortConnect => {
                    self.socket = None;
                    self.awaiting = false;
                    #[cfg(feature = "tabs")]
                    self.relay_closed(1006);
                }
                Action::SendHeartbeat => {
                    if let Some(s) = &self.socket {
                        s.send(HEARTBEAT);
                    }
                }
                Action::Close { code } => {
                    if let Some(s) = self.socket.take() {
                        s.close(code);
                    }
                    #[cfg(feature = "tabs")]
                    self.relay_closed(code);
                }
                Action::Emit(event) => events.push(event),
                _ => {}
            }
        }
        self.schedule();
        events
    }

    fn open_socket(&mut self) {
        if self.awaiting {
            return; // the promised URL on its way serves this attempt
        }
        match (self.url)(self.session.endpoint()) {
            AttemptUrl::Now(url) => self.open_at(url),
            AttemptUrl::Later(promise) => {
                if let Some(cb) = &self.url_cb {
                    self.awaiting = true;
                    self.pending += 1;
                    // A rejection comes as a value that is not a string: the attempt fails.
                    let _ = promise.then2(cb, cb);
                }
            }
        }
    }

    /// A promised URL arrived: opens the socket if an attempt is connecting and this tab leads
    /// (`None`: nothing changed).
    fn url_settled(&mut self, url: JsValue) -> Option<()> {
        #[cfg(feature = "tabs")]
        let leads = self.tabs.as_ref().is_none_or(|t| t.leader);
        #[cfg(not(feature = "tabs"))]
        let leads = true;
        if !leads || self.socket.is_some() || self.session.state() != ConnectionState::Connecting {
            return None;
        }
        match url.as_string() {
            Some(url) => self.open_at(url),
            None => self.session.on_connect_failed(
                now(),
                ConnectFailure::Transport("the token provider failed".into()),
            ),
        }
        Some(())
    }

    fn open_at(&mut self, mut url: String) {
        self.generation += 1;
        let generation = self.generation;
        let weak = self.me.clone();
        let sink = move |ev: SocketEvent| {
            if let Some(inner) = weak.upgrade() {
                on_socket_event(&inner, generation, ev);
            }
        };
        self.session.append_connect_query(&mut url);
        let opened = if self.session.carrier() == Carrier::EventStream {
            // The same URL over HTTP (the session's query asks for frames).
            if let Some(rest) = url.strip_prefix("ws") {
                url = message(&[Part::Str("http"), Part::Str(rest)]);
            }
            SocketGuard::open_stream(&url, sink)
        } else {
            SocketGuard::open(&url, sink)
        };
        match opened {
            Ok(guard) => self.socket = Some(guard),
            Err(e) => {
                self.socket = None;
                let msg = js_sys::Error::from(e)
                    .message()
                    .as_string()
                    .unwrap_or_default();
                self.session
                    .on_connect_failed(now(), ConnectFailure::Transport(msg));
            }
        }
    }

    fn schedule(&mut self) {
        if let Some(id) = self.timer.take() {
            clear_timeout(&id);
        }
        let (Some(at), Some(cb)) = (self.session.poll_timeout(), &self.timer_cb) else {
            return;
        };
        let delay = at.0.saturating_sub(now().0).min(MAX_TIMEOUT_MS);
        self.timer = Some(set_timeout(cb.as_ref().unchecked_ref(), delay as f64));
    }
}

fn on_socket_event(inner: &Rc<RefCell<Inner>>, generation: u64, ev: SocketEvent) {
    {
        let Ok(mut me) = inner.try_borrow_mut() else {
            return;
        };
        if me.generation != generation || me.socket.is_none() {
            return; // an abandoned socket
        }
        match &ev {
            SocketEvent::Open(e) => me.open_event = Some(e.clone()),
            SocketEvent::Closed { .. } => me.socket = None,
            _ => {}
        }
        #[cfg(feature = "tabs")]
        me.relay(&ev);
    }
    step(inner, Input::Socket(ev));
}
