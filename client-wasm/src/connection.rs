//! `Connection`: one `MoleculerWebsocket`, driving the shared session core with the browser's
//! `WebSocket`, `setTimeout` and `performance.now()`.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Function, Object, Reflect};
use moleculer_ws_session::{
    Action, ConnectFailure, ConnectionState, Event, Millis, Session, HEARTBEAT,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;

use crate::options::{self, Callbacks};
use crate::socket::{SocketEvent, SocketGuard};
use crate::text::{message, whole_ms, Part};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(msg: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(msg: &str, err: &JsValue);
}

/// Monotonic milliseconds: real elapsed time, so a throttled background tab whose timers fire
/// late measures the true gap instead of counting ticks.
fn now() -> Millis {
    Millis(performance_now().max(0.0) as u64)
}

struct Inner {
    url: String,
    session: Session,
    socket: Option<SocketGuard>,
    generation: u64,
    timer: Option<JsValue>,
    timer_cb: Option<Closure<dyn FnMut(JsValue)>>,
    callbacks: Callbacks,
    open_event: Option<JsValue>,
    /// With `recover`: the open event, held until the gateway says whether it recovered.
    pending_open: Option<JsValue>,
    last_state: ConnectionState,
    me: Weak<RefCell<Inner>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(id) = self.timer.take() {
            clear_timeout(&id);
        }
    }
}

/// One WebSocket channel with heartbeat and reconnect. Made by `MoleculerWebsocket` in
/// `websocket.js`; pages do not construct it directly.
#[wasm_bindgen]
pub struct Connection {
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl Connection {
    /// A connection to the absolute `ws(s)://` `url`; `opts` as `MoleculerWebsocket`'s, plus
    /// the message `handler`. Throws a `TypeError`/`RangeError` for a bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, opts: JsValue) -> Result<Connection, JsValue> {
        let config = options::session_config(&opts)?;
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        let session = Session::new(config, seed)
            .map_err(|e| JsValue::from(js_sys::Error::new(&e.text())))?;
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
            RefCell::new(Inner {
                url,
                session,
                socket: None,
                generation: 0,
                timer: None,
                timer_cb: Some(cb),
                callbacks: options::callbacks(&opts),
                open_event: None,
                pending_open: None,
                last_state,
                me: me.clone(),
            })
        });
        Ok(Connection { inner })
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

    /// Checks the link now: sends `!` when open, reconnects at once while waiting. The loader
    /// calls it when the page becomes visible, comes back online or is restored from the
    /// back/forward cache.
    pub fn probe(&self) {
        step(&self.inner, Input::Probe);
    }

    /// `"idle"`, `"connecting"`, `"open"`, `"waiting"` (to reconnect) or `"stopped"`.
    /// (Strings are returned as `JsValue`s: no buffer to free in the glue.)
    pub fn state(&self) -> JsValue {
        self.read(|me| JsValue::from_str(state_name(me.session.state())))
    }

    /// `{reconnects, failedAttempts, downtime, rtt, messagesReceived}`; times in ms, `rtt` is
    /// `null` before the first heartbeat round trip.
    pub fn stats(&self) -> JsValue {
        let Ok(me) = self.inner.try_borrow() else {
            return JsValue::UNDEFINED;
        };
        let stats = me.session.stats(now());
        drop(me);
        let obj = Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&obj, &JsValue::from_str(k), &v);
        };
        set("reconnects", JsValue::from_f64(stats.reconnects as f64));
        set(
            "failedAttempts",
            JsValue::from_f64(stats.failed_attempts as f64),
        );
        set(
            "downtime",
            JsValue::from_f64(whole_ms(stats.downtime) as f64),
        );
        set(
            "rtt",
            stats
                .last_rtt
                .map_or(JsValue::NULL, |r| JsValue::from_f64(whole_ms(r) as f64)),
        );
        set(
            "messagesReceived",
            JsValue::from_f64(stats.messages_received as f64),
        );
        obj.into()
    }

    /// The absolute URL of the channel.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> JsValue {
        self.read(|me| JsValue::from_str(&me.url))
    }
}

impl Connection {
    /// Reads the state. The page's callbacks run with no borrow held, so the borrow always
    /// succeeds; `undefined` if it did not (instead of a panic, which aborts the module).
    fn read(&self, f: impl FnOnce(&Inner) -> JsValue) -> JsValue {
        self.inner
            .try_borrow()
            .map_or(JsValue::UNDEFINED, |me| f(&me))
    }
}

fn state_name(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Idle => "idle",
        ConnectionState::Connecting => "connecting",
        ConnectionState::Open => "open",
        ConnectionState::Waiting => "waiting",
        _ => "stopped",
    }
}

/// What the session is fed (one non-generic `step` for all of them keeps the code small).
enum Input {
    Connect,
    Disconnect,
    Probe,
    Timeout,
    Socket(SocketEvent),
}

impl Input {
    /// Feeds the session; a message the driver delivers itself comes back.
    fn feed(self, s: &mut Session, now: Millis) -> Option<JsValue> {
        match self {
            Input::Socket(SocketEvent::Message(data)) => {
                // Without `recover`, a message goes to the page as it is: the session counts
                // it, its text is never copied. (With `recover`, frames may be envelopes and
                // `onopen` waits for the first one: the session reads them all.)
                if !s.config().recover {
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
                    let why = message(&[
                        Part::Str("the WebSocket closed before opening (code "),
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
            Input::Socket(SocketEvent::Error) => {}
        }
        None
    }
}

/// Feeds one input to the session, carries out its actions, then calls the page's callbacks
/// with no borrow held (so a callback may call `connect()` or `disconnect()`).
fn step(inner: &Rc<RefCell<Inner>>, input: Input) {
    let (events, callbacks, changed, kept) = {
        let Ok(mut me) = inner.try_borrow_mut() else {
            return;
        };
        let kept = input.feed(&mut me.session, now());
        let events = me.carry_out();
        let state = me.session.state();
        let changed = (state != me.last_state).then_some(state);
        me.last_state = state;
        let open_event = if events.iter().any(|e| matches!(e, Event::Open)) {
            me.open_event.take()
        } else {
            None
        };
        let outs = me.hold_open(events, open_event);
        (outs, me.callbacks.clone(), changed, kept)
    };
    for out in events {
        match out {
            Out::Open(evt, info) => {
                if callbacks.debug {
                    console_log("WebSocket channel opened.");
                }
                call2(&callbacks.onopen, &evt, &info);
            }
            Out::Event(event) => dispatch(&callbacks, event),
        }
    }
    if let Some(data) = kept {
        if callbacks.debug {
            console_log("WebSocket message received.");
        }
        call(&callbacks.handler, &data);
    }

    if let Some(state) = changed {
        call(
            &callbacks.onstatechange,
            &JsValue::from_str(state_name(state)),
        );
    }
}

/// A page callback to make, in order.
enum Out {
    /// `onopen(evt, info)`; `info` is `{recovered, replayed}` with `recover`, else undefined.
    Open(JsValue, JsValue),
    Event(Event),
}

fn recovery_info(recovered: bool, replayed: u64) -> JsValue {
    let info = Object::new();
    let _ = Reflect::set(&info, &"recovered".into(), &JsValue::from_bool(recovered));
    let _ = Reflect::set(
        &info,
        &"replayed".into(),
        &JsValue::from_f64(replayed as f64),
    );
    info.into()
}

impl Inner {
    /// Orders the page's callbacks. With `recover`, `onopen` waits for the gateway's recovery
    /// answer (its first frame) to pass `{recovered, replayed}`; a gateway without the
    /// extension gives `{recovered: false, replayed: 0}` at its first frame or close.
    fn hold_open(&mut self, events: Vec<Event>, mut open_event: Option<JsValue>) -> Vec<Out> {
        let recover = self.session.config().recover;
        let mut outs = Vec::with_capacity(events.len() + 1);
        for event in events {
            match &event {
                Event::Open if recover => {
                    self.pending_open = Some(open_event.take().unwrap_or(JsValue::UNDEFINED));
                    continue;
                }
                Event::Open => {
                    let evt = open_event.take().unwrap_or(JsValue::UNDEFINED);
                    outs.push(Out::Open(evt, JsValue::UNDEFINED));
                    continue;
                }
                Event::Recovery {
                    recovered,
                    replayed,
                } => {
                    if let Some(evt) = self.pending_open.take() {
                        outs.push(Out::Open(evt, recovery_info(*recovered, *replayed)));
                    }
                }
                Event::Message(_)
                | Event::Resync
                | Event::HeartbeatRoundTrip { .. }
                | Event::Closed { .. }
                | Event::Error(_) => {
                    if let Some(evt) = self.pending_open.take() {
                        outs.push(Out::Open(evt, recovery_info(false, 0)));
                    }
                }
                _ => {}
            }
            outs.push(Out::Event(event));
        }
        outs
    }

    /// Carries out the session's actions; returns the events for the page.
    fn carry_out(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect => self.open_socket(),
                Action::AbortConnect => self.socket = None,
                Action::SendHeartbeat => {
                    if let Some(s) = &self.socket {
                        s.send(HEARTBEAT);
                    }
                }
                Action::Close { code } => {
                    if let Some(s) = self.socket.take() {
                        s.close(code);
                    }
                }
                Action::Emit(event) => events.push(event),
                _ => {}
            }
        }
        self.schedule();
        events
    }

    fn open_socket(&mut self) {
        self.generation += 1;
        let generation = self.generation;
        let weak = self.me.clone();
        let sink = move |ev: SocketEvent| {
            if let Some(inner) = weak.upgrade() {
                on_socket_event(&inner, generation, ev);
            }
        };
        if self.callbacks.debug {
            console_log(&message(&[
                Part::Str("Connecting to "),
                Part::Str(&self.url),
                Part::Str("..."),
            ]));
        }
        let mut url = self.url.clone();
        for (i, (k, v)) in self.session.connect_query().iter().enumerate() {
            let sep = if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(v);
        }
        match SocketGuard::open(&url, sink) {
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
        let delay = at.0.saturating_sub(now().0);
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
    }
    step(inner, Input::Socket(ev));
}

fn dispatch(cb: &Callbacks, event: Event) {
    let debug = |m: &str| {
        if cb.debug {
            console_log(m);
        }
    };
    match event {
        Event::Resync => {
            debug("WebSocket messages may have been missed: resync.");
            call0(&cb.onresync);
        }
        Event::Message(m) => {
            debug("WebSocket message received.");
            call(&cb.handler, &JsValue::from_str(m.text()));
        }
        Event::Connecting { attempt } if attempt > 0 => {
            debug("WebSocket reconnecting...");
            call0(&cb.onreconnect);
        }
        Event::Closed {
            code,
            reason,
            will_reconnect,
        } => {
            debug("WebSocket channel closed.");
            let info = Object::new();
            let _ = Reflect::set(
                &info,
                &"code".into(),
                &code.map_or(JsValue::NULL, JsValue::from),
            );
            let _ = Reflect::set(&info, &"reason".into(), &JsValue::from_str(&reason));
            let _ = Reflect::set(
                &info,
                &"willReconnect".into(),
                &JsValue::from_bool(will_reconnect),
            );
            call(&cb.onclose, &info.into());
        }
        Event::Reconnecting { attempt, delay } if cb.debug => {
            console_log(&message(&[
                Part::Str("Reconnect attempt "),
                Part::Number(u64::from(attempt)),
                Part::Str(" in "),
                Part::Number(whole_ms(delay)),
                Part::Str(" ms."),
            ]));
        }
        Event::HeartbeatRoundTrip { rtt } if cb.debug => {
            console_log(&message(&[
                Part::Str("Heartbeat response received ("),
                Part::Number(whole_ms(rtt)),
                Part::Str(" ms)."),
            ]));
        }
        Event::Error(e) | Event::Stopped(Some(e)) => {
            let text = e.text();
            if cb.debug {
                console_log(&message(&[
                    Part::Str("WebSocket error: "),
                    Part::Str(&text),
                ]));
            }
            call(&cb.onerror, &js_sys::Error::new(&text).into());
        }
        _ => {}
    }
}

fn call(f: &Option<Function>, arg: &JsValue) {
    if let Some(f) = f {
        if let Err(e) = f.call1(&JsValue::NULL, arg) {
            console_error("moleculer-ws: a callback threw", &e);
        }
    }
}

fn call2(f: &Option<Function>, a: &JsValue, b: &JsValue) {
    if let Some(f) = f {
        if let Err(e) = f.call2(&JsValue::NULL, a, b) {
            console_error("moleculer-ws: a callback threw", &e);
        }
    }
}

fn call0(f: &Option<Function>) {
    if let Some(f) = f {
        if let Err(e) = f.call0(&JsValue::NULL) {
            console_error("moleculer-ws: a callback threw", &e);
        }
    }
}
