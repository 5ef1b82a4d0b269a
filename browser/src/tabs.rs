//! One socket for all the tabs of an origin that open the same channel with `shared`.
//!
//! The tabs elect a leader with the Web Locks API: each one asks for the lock named after the
//! channel; the browser grants it to one tab at a time and hands it to the next one in line
//! the moment its holder releases it, closes or crashes. Only the leader holds the socket and
//! sends heartbeats. It posts what its socket receives (open, each message frame as the
//! browser gave it, close) on a `BroadcastChannel`, and every other tab feeds that to a
//! session of its own with the heartbeat and connect timeout off: each tab runs the same
//! session core on the same frames, so its callbacks, state, counters, recovery position and
//! duplicate checks are its own, with no second protocol to keep in step.
//!
//! A SharedWorker could also hold one socket, but it needs a script URL of its own (the drop-in
//! is one file), dies with the last tab that knows it (no hand-over to decide) and is missing
//! from Chrome on Android; a Web Lock is released by the browser itself when its tab goes away,
//! so the next tab takes over at once, not after a timeout.
//!
//! A leader that stops posting (hung, or frozen without a `freeze` event) is replaced: it posts
//! `[7]` every sixth of the heartbeat interval, and a visible tab that hears nothing for two
//! thirds of it takes the lock (`steal`); a hidden tab, whose timers the browser slows, waits a
//! minute. The old leader, when it runs again, finds its lock gone and follows.
//!
//! Posted (structured clones): `[1, frame]` a message frame, `[2, to, status]` the socket is
//! open (`to`: the joining tab it answers, or undefined for all; `status`: with recovery, the
//! leader's position as `#reset:<epoch>:<seq>` for a tab that joins an open channel),
//! `[3, code, reason]` it closed, `[8]` the leader changed (the others take it as a lost link
//! and recover from their own positions when the next leader opens), `[9, id, at]` a tab
//! joined (`at`: its recovery position, `<epoch>:<seq>`; the answer's status is then
//! `#recovered:<epoch>:<seq>:0` when nothing passed it, else `#reset:...`), `[6]` a tab wants
//! the channel connected (the leader's session may have stopped), `[7]` the leader's beat,
//! `[5]` the leader's session gave up (its reconnect policy stopped it). Binary frames are not
//! relayed: the gateway sends text.

use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect};
use moleculer_ws_session::Session;
use wasm_bindgen::prelude::*;
use web_sys::BroadcastChannel;

use crate::clock::{now, seed};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, options, callback)`.
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request, catch)]
    fn request_lock(name: &str, options: &Object, callback: &JsValue) -> Result<Promise, JsValue>;
    /// A promise, for `then(f, f)`.
    type Thenable;
    #[wasm_bindgen(js_name = then, method)]
    fn then_both(this: &Thenable, ok: &JsValue, err: &JsValue);
    /// An `AbortController`: withdraws a queued lock request.
    #[wasm_bindgen(js_name = AbortController)]
    type Abort;
    #[wasm_bindgen(constructor, js_class = "AbortController", catch)]
    fn new() -> Result<Abort, JsValue>;
    #[wasm_bindgen(method, js_class = "AbortController")]
    fn abort(this: &Abort);
    #[wasm_bindgen(method, getter, js_class = "AbortController")]
    fn signal(this: &Abort) -> JsValue;
    #[wasm_bindgen(js_name = setInterval)]
    fn set_interval(f: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearInterval)]
    fn clear_interval(id: &JsValue);
    #[wasm_bindgen(js_name = addEventListener, catch)]
    fn listen(kind: &str, f: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = removeEventListener, catch)]
    fn unlisten(kind: &str, f: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = document, js_name = addEventListener, catch)]
    fn document_listen(kind: &str, f: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = document, js_name = removeEventListener, catch)]
    fn document_unlisten(kind: &str, f: &Function) -> Result<(), JsValue>;
}

pub(crate) const MESSAGE: u8 = 1;
pub(crate) const OPEN: u8 = 2;
pub(crate) const CLOSED: u8 = 3;
pub(crate) const STOPPED: u8 = 5;
pub(crate) const WAKE: u8 = 6;
pub(crate) const BEAT: u8 = 7;
pub(crate) const LEADER_CHANGED: u8 = 8;
pub(crate) const JOINED: u8 = 9;

/// Page lifecycle events: the leader steps down on `freeze` (document) and `pagehide`
/// (window); a tab asks again on `resume` and `pageshow`.
const LEAVE: [&str; 2] = ["freeze", "pagehide"];
const BACK: [&str; 2] = ["resume", "pageshow"];

/// Whether this browser has what sharing needs: Web Locks (secure contexts only: https, or
/// http on localhost) and BroadcastChannel.
pub(crate) fn supported() -> bool {
    let has = |o: &JsValue, k: &str| Reflect::get(o, &k.into()).is_ok_and(|v| v.is_truthy());
    let global: JsValue = js_sys::global().into();
    has(&global, "BroadcastChannel")
        && Reflect::get(&global, &"navigator".into()).is_ok_and(|n| has(&n, "locks"))
}

/// `p.then(f, f)`: `f` runs once, whichever way `p` settles.
fn then_either(p: &Promise, f: &JsValue) {
    p.unchecked_ref::<Thenable>().then_both(f, f);
}

/// Said on the console: a refused lock request (e.g. an opaque origin) leaves this tab
/// following with no leader.
fn refused(e: JsValue) {
    web_sys::console::error_2(&"moleculer-ws: the tab lock was refused".into(), &e);
}

/// What the sharing reports to the driver.
pub(crate) enum TabInput {
    /// What another tab posted on the shared channel.
    Message(JsValue),
    /// The lock was granted to request `.1`; calling `.0` releases it.
    Granted(Function, u32),
    /// Request `.0` ended: released, or taken by another tab.
    Lost(u32),
    /// The page is being frozen or hidden; it is back.
    Leave,
    Back,
    /// The timer: the leader's beat, a follower's check for a silent leader.
    Watch,
}

/// Where the sharing's reports go (the driver's step; it holds the driver weakly).
pub(crate) type Feed = Rc<dyn Fn(TabInput)>;

/// This tab's part in a shared channel.
pub(crate) struct Tabs {
    name: String,
    /// This tab's id in `[9, id]` and the answers to it.
    pub(crate) id: f64,
    channel: BroadcastChannel,
    /// This tab holds the lock and the socket.
    pub(crate) leader: bool,
    /// The number of this tab's latest lock request (0: none); a lock granted to an older one
    /// is given back at once.
    request: u32,
    requests: u32,
    /// The page wants the channel connected (`connect()` and no `disconnect()` since).
    pub(crate) wanted: bool,
    /// Resolves the promise that holds the lock.
    release: Option<Function>,
    /// The leader's session (with the heartbeat, the page's settings) while this tab follows:
    /// `Some` exactly when the session in use is a follower's (fed by the leader's posts).
    pub(crate) spare: Option<Session>,
    /// Messages delivered by the sessions swapped out.
    pub(crate) carried: u64,
    /// Withdraws the latest request while it waits in line.
    abort: Option<Abort>,
    /// Events for the owner before the next step's own (a hand-over seen as a lost link).
    pub(crate) early: Vec<moleculer_ws_session::Event>,
    /// When a leader last posted, or this tab got in line (driver ms), the beat period, the
    /// timer (every half period: the leader's beat, a follower's check).
    pub(crate) seen: Option<u64>,
    beat_ms: u64,
    timer: Option<JsValue>,
    feed: Feed,
    _on_message: Closure<dyn FnMut(JsValue)>,
    on_leave: Closure<dyn FnMut(JsValue)>,
    on_back: Closure<dyn FnMut(JsValue)>,
    on_timer: Closure<dyn FnMut(JsValue)>,
}

impl Tabs {
    /// Joins the channel `name`; what happens goes to `feed`.
    pub(crate) fn new(name: &str, feed: Feed, beat_ms: u64) -> Option<Tabs> {
        let listener = |make: fn(JsValue) -> TabInput| {
            let feed = Rc::clone(&feed);
            Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| feed(make(v)))
        };
        let on_message =
            listener(|e| TabInput::Message(e.unchecked_into::<web_sys::MessageEvent>().data()));
        let mut lock = String::from("moleculer-ws-rs ");
        lock.push_str(name);
        let channel = BroadcastChannel::new(&lock).ok()?;
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let tabs = Tabs {
            name: lock,
            id: seed() as f64,
            channel,
            leader: false,
            request: 0,
            requests: 0,
            wanted: false,
            release: None,
            spare: None,
            carried: 0,
            abort: None,
            early: Vec::new(),
            seen: None,
            beat_ms,
            timer: None,
            on_leave: listener(|_| TabInput::Leave),
            on_back: listener(|_| TabInput::Back),
            on_timer: listener(|_| TabInput::Watch),
            feed,
            _on_message: on_message,
        };
        tabs.page_listeners(true);
        Some(tabs)
    }

    fn page_listeners(&self, add: bool) {
        for (kinds, f) in [(LEAVE, &self.on_leave), (BACK, &self.on_back)] {
            let f: &Function = f.as_ref().unchecked_ref();
            for kind in kinds {
                let _ = if add {
                    listen(kind, f).and(document_listen(kind, f))
                } else {
                    unlisten(kind, f).and(document_unlisten(kind, f))
                };
            }
        }
    }

    /// Asks for the lock (the browser queues the request until the lock is free; `steal`
    /// takes it from a silent leader) and starts the check for a silent leader.
    pub(crate) fn request(&mut self, steal: bool) {
        self.requests += 1;
        let number = self.requests;
        self.request = number;
        let feed = Rc::clone(&self.feed);
        // The driver gives the lock back at once when nobody is left to lead.
        let grant = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
            let mut release = None;
            let held = Promise::new(&mut |resolve, _| release = Some(resolve));
            if let Some(resolve) = release {
                feed(TabInput::Granted(resolve, number));
            }
            held.into()
        });
        let options = Object::new();
        // `steal` takes no signal; a queued request does, to leave the line (`withdraw`). A
        // steal leaves the line first.
        if let Some(a) = self.abort.take() {
            a.abort();
        }
        self.abort = if steal { None } else { Abort::new().ok() };
        let _ = match &self.abort {
            Some(a) => Reflect::set(&options, &"signal".into(), &a.signal()),
            None => Reflect::set(&options, &"steal".into(), &JsValue::TRUE),
        };
        match request_lock(&self.name, &options, &grant) {
            Ok(p) => {
                // Settled when the lock is released, or taken by another tab (AbortError).
                let feed = Rc::clone(&self.feed);
                let ended = Closure::once_into_js(move |v: JsValue| {
                    let taken = v
                        .dyn_ref::<js_sys::Error>()
                        .is_some_and(|e| e.name() == "AbortError");
                    if v.is_instance_of::<js_sys::Error>() && !taken {
                        refused(v);
                    }
                    feed(TabInput::Lost(number));
                });
                then_either(&p, &ended);
            }
            Err(e) => refused(e),
        }
        if self.timer.is_none() {
            let half = (self.beat_ms / 2) as f64;
            self.timer = Some(set_interval(self.on_timer.as_ref().unchecked_ref(), half));
        }
    }

    /// The lock was granted to request `number` (`resolve` releases it): whether this tab
    /// leads now. A request that is not the latest, or a page that no longer wants the
    /// channel, gives it back at once.
    pub(crate) fn granted(&mut self, resolve: Function, number: u32) -> bool {
        if !self.wanted || number != self.request {
            let _ = resolve.call0(&JsValue::NULL);
            return false;
        }
        self.leader = true;
        self.release = Some(resolve);
        // The others take the change as a lost link, and recover when this tab opens.
        self.post(&[LEADER_CHANGED.into()]);
        true
    }

    /// Stops leading: releases the lock (the next tab in line takes it) and tells the others
    /// (`tell`: not when the lock was taken from this tab).
    pub(crate) fn step_down(&mut self, tell: bool) {
        if let Some(resolve) = self.release.take() {
            if tell {
                self.post(&[LEADER_CHANGED.into()]);
            }
            let _ = resolve.call0(&JsValue::NULL);
        }
        self.leader = false;
        self.request = 0;
    }

    /// Posts one array to the other tabs.
    pub(crate) fn post(&self, parts: &[JsValue]) {
        let _ = self.channel.post_message(&parts.iter().collect::<Array>());
    }

    /// The latest lock request (0: none).
    pub(crate) fn request_number(&self) -> u32 {
        self.request
    }

    /// Gets in line for the lock and asks the leader, if there is one, where the channel is
    /// (`at`: this tab's recovery position, `<epoch>:<seq>`).
    pub(crate) fn join(&mut self, at: JsValue) {
        self.request(false);
        self.seen = Some(now().0);
        self.post(&[JOINED.into(), self.id.into(), at]);
    }

    /// Leaves the line (a frozen or hidden page must not be next; a follower that
    /// disconnected): a lock granted to the request anyway is given back at once.
    pub(crate) fn withdraw(&mut self) {
        if let Some(a) = self.abort.take() {
            a.abort();
        }
        self.request = 0;
    }

    /// Stops the timer (the page disconnected; `request` starts it again).
    pub(crate) fn stop_timer(&mut self) {
        if let Some(id) = self.timer.take() {
            clear_interval(&id);
        }
    }

    /// The timer: as the leader, posts a beat; as a follower, takes the lock from a leader
    /// that has been silent too long.
    pub(crate) fn tick(&mut self) {
        if self.leader {
            self.post(&[BEAT.into()]);
            return;
        }
        let Some(seen) = self.seen else { return };
        let silent = now().0.saturating_sub(seen);
        if self.wanted && silent > 2 * self.beat_ms && (visible() || silent > 60_000) {
            self.seen = None;
            self.request(true);
        }
    }
}

/// Whether the page is visible (true where there is no document).
fn visible() -> bool {
    let global: JsValue = js_sys::global().into();
    Reflect::get(&global, &"document".into())
        .and_then(|d| Reflect::get(&d, &"visibilityState".into()))
        .map_or(true, |v| v.as_string().as_deref() != Some("hidden"))
}

impl Drop for Tabs {
    fn drop(&mut self) {
        self.step_down(true);
        self.stop_timer();
        self.channel.set_onmessage(None);
        self.channel.close();
        self.page_listeners(false);
    }
}
