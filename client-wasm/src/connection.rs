//! `Connection`: one `MoleculerWebsocket`, the JavaScript face of the browser driver
//! (`moleculer_ws_browser::Driver`): the page's options in, its callbacks out.

use std::cell::RefCell;

use js_sys::{Function, Object, Reflect};
use moleculer_ws_browser::{seed, AttemptUrl, Driver, Step};
use moleculer_ws_session::{ConnectionState, Event, Session};
use wasm_bindgen::prelude::*;

use crate::options::{self, Callbacks};
// Texts are built with the session core's writers, not `format!`: `core::fmt` would be several
// kilobytes of the download.
use moleculer_ws_session::text::{message, whole_ms, Part};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(msg: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(msg: &str, err: &JsValue);
}

/// What the callbacks need between steps.
struct Face {
    callbacks: Callbacks,
    url: String,
    recover: bool,
    /// With `recover`: the open event, held until the gateway says whether it recovered.
    pending_open: Option<JsValue>,
}

/// One WebSocket channel with heartbeat and reconnect. Made by `MoleculerWebsocket` in
/// `websocket.js`; pages do not construct it directly.
#[wasm_bindgen]
pub struct Connection {
    driver: Driver,
    url: String,
}

#[wasm_bindgen]
impl Connection {
    /// A connection to the absolute `ws(s)://` `url`; `opts` as `MoleculerWebsocket`'s, plus
    /// the message `handler`. Throws a `TypeError`/`RangeError` for a bad option.
    #[wasm_bindgen(constructor)]
    pub fn new(url: String, opts: JsValue) -> Result<Connection, JsValue> {
        let config = options::session_config(&opts)?;
        let recover = config.recover;

        let mut session = Session::new(config, seed())
            .map_err(|e| JsValue::from(js_sys::Error::new(&e.text())))?;
        // `resumeFrom` ("<epoch>:<seq>", from `position()` in another tab): with `recover`,
        // the first connection asks for what came after it.
        if let Some(from) = Reflect::get(&opts, &"resumeFrom".into())
            .ok()
            .and_then(|v| v.as_string())
        {
            // A malformed one is ignored (the session starts without a position).
            if let Some((epoch, Ok(seq))) = from.split_once(':').map(|(e, s)| (e, s.parse())) {
                session.resume_from(epoch, seq);
            }
        }
        let face = RefCell::new(Face {
            callbacks: options::callbacks(&opts),
            url: url.clone(),
            recover,
            pending_open: None,
        });
        // `urlFor` (the loader's, for `tokenProvider`): a function giving the URL of each
        // attempt, or a promise of it.
        let url_for = Reflect::get(&opts, &"urlFor".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok());
        let driver = Driver::new(
            {
                let url = url.clone();
                move |_| match &url_for {
                    None => AttemptUrl::Now(url.clone()),
                    // The loader's function never throws and its promise never rejects.
                    Some(f) => AttemptUrl::Later(js_sys::Promise::resolve(
                        &f.call0(&JsValue::NULL).unwrap_or(JsValue::NULL),
                    )),
                }
            },
            session,
            true,
            move |step| on_step(&face, step),
        );
        Ok(Connection { driver, url })
    }

    /// Connects (at once, also while waiting to reconnect). A second call while connecting or
    /// open does nothing: there is never more than one socket.
    pub fn connect(&self) {
        self.driver.connect();
    }

    /// Closes the socket, stops the heartbeat and cancels any pending reconnect.
    pub fn disconnect(&self) {
        self.driver.disconnect();
    }

    /// Checks the link now: sends `!` when open, reconnects at once while waiting. The loader
    /// calls it when the page becomes visible, comes back online or is restored from the
    /// back/forward cache.
    pub fn probe(&self) {
        self.driver.probe();
    }

    /// `"idle"`, `"connecting"`, `"open"`, `"waiting"` (to reconnect) or `"stopped"`.
    /// (Strings are returned as `JsValue`s: no buffer to free in the glue.)
    pub fn state(&self) -> JsValue {
        self.driver
            .state()
            .map_or(JsValue::UNDEFINED, |s| JsValue::from_str(state_name(s)))
    }

    /// `{reconnects, failedAttempts, downtime, rtt, messagesReceived}`; times in ms, `rtt` is
    /// `null` before the first heartbeat round trip.
    pub fn stats(&self) -> JsValue {
        let Some(stats) = self.driver.stats() else {
            return JsValue::UNDEFINED;
        };
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

    /// With `recover`: the last position delivered, `"<epoch>:<seq>"`, or undefined before
    /// the gateway's first answer (the loader hands it to the tab that takes over a shared
    /// channel, as `resumeFrom`).
    pub fn position(&self) -> JsValue {
        self.driver
            .position()
            .map_or(JsValue::UNDEFINED, JsValue::from)
    }

    /// The absolute URL of the channel.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> JsValue {
        JsValue::from_str(&self.url)
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

/// Calls the page's callbacks for one step of the driver, in order (no borrow of the driver
/// is held, so a callback may call `connect()` or `disconnect()`).
fn on_step(face: &RefCell<Face>, step: Step) {
    let (outs, callbacks) = {
        let Ok(mut me) = face.try_borrow_mut() else {
            return;
        };
        if me.callbacks.debug
            && step
                .events
                .iter()
                .any(|e| matches!(e, Event::Connecting { .. }))
        {
            console_log(&message(&[
                Part::Str("Connecting to "),
                Part::Str(&me.url),
                Part::Str("..."),
            ]));
        }
        let outs = me.hold_open(step.events, step.open_event);
        (outs, me.callbacks.clone())
    };
    for out in outs {
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
    if let Some(data) = step.raw {
        if callbacks.debug {
            console_log("WebSocket message received.");
        }
        call(&callbacks.handler, &data);
    }
    if let Some(state) = step.state_changed {
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

impl Face {
    /// Orders the page's callbacks. With `recover`, `onopen` waits for the gateway's recovery
    /// answer (its first frame) to pass `{recovered, replayed}`; a gateway without the
    /// extension gives `{recovered: false, replayed: 0}` at its first frame or close.
    fn hold_open(&mut self, events: Vec<Event>, mut open_event: Option<JsValue>) -> Vec<Out> {
        let recover = self.recover;
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
