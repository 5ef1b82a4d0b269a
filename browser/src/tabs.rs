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
//! Posted (structured clones): `[1, frame]` a message frame, `[2, to, status]` the socket is
//! open (`to`: the joining tab it answers, or undefined for all; `status`: with recovery, the
//! leader's position as `#reset:<epoch>:<seq>` for a tab that joins an open channel),
//! `[3, code, reason]` it closed, `[8]` the leader changed (the others take it as a lost link
//! and recover from their own positions when the next leader opens), `[9, id]` a tab joined.

use std::mem;
use std::time::Duration;

use js_sys::{Array, Function, Promise, Reflect};
use moleculer_ws_session::text::{message, Part};
use moleculer_ws_session::{ConnectionState, Session, SessionConfig};
use wasm_bindgen::prelude::*;
use web_sys::BroadcastChannel;

use crate::driver::{now, seed, Inner, Input};
use crate::socket::SocketEvent;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks.request(name, callback)`.
    #[wasm_bindgen(js_namespace = ["navigator", "locks"], js_name = request, catch)]
    fn request_lock(name: &str, callback: &Function) -> Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = addEventListener, catch)]
    fn listen(kind: &str, f: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_name = removeEventListener, catch)]
    fn unlisten(kind: &str, f: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = document, js_name = addEventListener, catch)]
    fn document_listen(kind: &str, f: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = document, js_name = removeEventListener, catch)]
    fn document_unlisten(kind: &str, f: &Function) -> Result<(), JsValue>;
}

const MESSAGE: u8 = 1;
const OPEN: u8 = 2;
const CLOSED: u8 = 3;
const LEADER_CHANGED: u8 = 8;
const JOINED: u8 = 9;

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

/// A follower's session: the same settings with no heartbeat and no connect timeout (its
/// socket is the leader's, which has both).
fn follower_session(config: &SessionConfig) -> Option<Session> {
    let config = config
        .clone()
        .heartbeat_interval(Duration::ZERO)
        .heartbeat_timeout(Duration::ZERO)
        .connect_timeout(Duration::ZERO);
    Session::new(config, seed()).ok()
}

/// Said on the console: a refused lock request (e.g. an opaque origin) leaves this tab
/// following with no leader.
fn refused(e: JsValue) {
    web_sys::console::error_2(&"moleculer-ws: the tab lock was refused".into(), &e);
}

/// This tab's part in a shared channel.
pub(crate) struct Tabs {
    name: String,
    /// This tab's id in `[9, id]` and the answers to it.
    pub(crate) id: f64,
    channel: BroadcastChannel,
    /// This tab holds the lock and the socket.
    pub(crate) leader: bool,
    /// A lock request of this tab is waiting or granted.
    requested: bool,
    /// The page wants the channel connected (`connect()` and no `disconnect()` since).
    pub(crate) wanted: bool,
    /// Resolves the promise that holds the lock.
    release: Option<Function>,
    /// The session in use is a follower's (fed by the leader's posts).
    pub(crate) following: bool,
    /// The leader's session (with the heartbeat, the page's settings) while following.
    pub(crate) spare: Option<Session>,
    /// Messages delivered by the sessions swapped out.
    pub(crate) carried: u64,
    _on_message: Closure<dyn FnMut(JsValue)>,
    on_grant: Closure<dyn FnMut(JsValue) -> JsValue>,
    on_leave: Closure<dyn FnMut(JsValue)>,
    on_back: Closure<dyn FnMut(JsValue)>,
    on_refused: Closure<dyn FnMut(JsValue)>,
}

impl Tabs {
    /// Joins the channel `name`; the closures feed the driver.
    pub(crate) fn new(
        name: &str,
        id: f64,
        on_message: Closure<dyn FnMut(JsValue)>,
        on_grant: Closure<dyn FnMut(JsValue) -> JsValue>,
        on_leave: Closure<dyn FnMut(JsValue)>,
        on_back: Closure<dyn FnMut(JsValue)>,
    ) -> Option<Tabs> {
        let mut lock = String::from("moleculer-ws ");
        lock.push_str(name);
        let channel = BroadcastChannel::new(&lock).ok()?;
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let tabs = Tabs {
            name: lock,
            id,
            channel,
            leader: false,
            requested: false,
            wanted: false,
            release: None,
            following: false,
            spare: None,
            carried: 0,
            _on_message: on_message,
            on_grant,
            on_leave,
            on_back,
            on_refused: Closure::new(refused),
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

    /// Asks for the lock once (the browser queues the request until the lock is free) and
    /// asks the leader, if there is one, whether its socket is open.
    pub(crate) fn request(&mut self) {
        if self.requested {
            return;
        }
        self.requested = true;
        match request_lock(&self.name, self.on_grant.as_ref().unchecked_ref()) {
            Ok(p) => drop(p.catch(&self.on_refused)),
            Err(e) => refused(e),
        }
        self.post(&[JOINED.into(), self.id.into()]);
    }

    /// The lock was granted (`resolve` releases it): whether this tab leads now. A tab whose
    /// page no longer wants the channel gives it back at once.
    pub(crate) fn granted(&mut self, resolve: Function) -> bool {
        if !self.wanted {
            let _ = resolve.call0(&JsValue::NULL);
            self.requested = false;
            return false;
        }
        self.leader = true;
        self.release = Some(resolve);
        // The others take the change as a lost link, and recover when this tab opens.
        self.post(&[LEADER_CHANGED.into()]);
        true
    }

    /// Stops leading: releases the lock (the next tab in line takes it) and tells the others.
    pub(crate) fn step_down(&mut self) {
        if let Some(resolve) = self.release.take() {
            self.post(&[LEADER_CHANGED.into()]);
            let _ = resolve.call0(&JsValue::NULL);
        }
        self.leader = false;
        self.requested = false;
    }

    /// Posts one array to the other tabs.
    pub(crate) fn post(&self, parts: &[JsValue]) {
        let _ = self
            .channel
            .post_message(&parts.iter().collect::<Array>());
    }

    /// The page is back from `freeze` or `pagehide`: asks for the lock again.
    pub(crate) fn back(&mut self) {
        if self.wanted && !self.leader {
            self.requested = false;
            self.request();
        }
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        self.step_down();
        self.channel.set_onmessage(None);
        self.channel.close();
        self.page_listeners(false);
    }
}

/// The driver's side of sharing: which session runs, and what goes between the tabs.
impl Inner {
    /// Runs a follower's session (the leader's waits in `spare`).
    pub(crate) fn follow(&mut self) {
        let Some(t) = &mut self.tabs else { return };
        if t.following {
            return;
        }
        if let Some(f) = follower_session(self.session.config()) {
            t.spare = Some(mem::replace(&mut self.session, f));
            t.following = true;
        }
    }

    /// Runs the leader's session, resuming from where the follower's got to.
    fn lead(&mut self) {
        let Some(t) = &mut self.tabs else { return };
        if let Some(real) = t.spare.take().filter(|_| t.following) {
            let f = mem::replace(&mut self.session, real);
            t.carried += f.messages_received();
            if let Some((epoch, seq)) = f.recovery_position() {
                self.session.resume_from(epoch, seq);
            }
            t.following = false;
        }
    }

    fn leader_tabs(&self) -> Option<&Tabs> {
        self.tabs.as_ref().filter(|t| t.leader)
    }

    /// As the leader: posts what the socket reported.
    pub(crate) fn relay(&self, ev: &SocketEvent) {
        let Some(t) = self.leader_tabs() else { return };
        match ev {
            SocketEvent::Open(_) => t.post(&[OPEN.into()]),
            SocketEvent::Message(data) => t.post(&[MESSAGE.into(), data.clone()]),
            SocketEvent::Closed { code, reason } => {
                t.post(&[CLOSED.into(), (*code).into(), reason.into()])
            }
            _ => {}
        }
    }

    /// As the leader: the session closed or abandoned the socket itself.
    pub(crate) fn relay_closed(&self, code: u16) {
        if let Some(t) = self.leader_tabs() {
            t.post(&[CLOSED.into(), code.into(), "".into()]);
        }
    }

    /// What a sharing tab does with an input: handled here (`None`), or the input for the
    /// session in use.
    pub(crate) fn tab_input(&mut self, input: Input) -> Option<Input> {
        let open = self.session.state() == ConnectionState::Open;
        let t = self.tabs.as_mut()?;
        let (leader, id) = (t.leader, t.id);
        match input {
            Input::Connect => {
                t.wanted = true;
                if !leader {
                    self.follow();
                    self.tabs.as_mut()?.request();
                }
            }
            Input::Disconnect => {
                // A leader's own events say it stopped; the next tab in line takes over.
                t.wanted = false;
                t.step_down();
            }
            Input::Granted(resolve) => {
                if !t.granted(resolve) {
                    return None;
                }
                self.lead();
                return Some(Input::Connect);
            }
            Input::Leave => {
                // Frozen or hidden: the next tab in line takes over now, not when the browser
                // discards this page. Back, this tab asks again.
                if leader {
                    t.step_down();
                    self.session.disconnect(now());
                    let _ = self.carry_out();
                    self.follow();
                    self.session.connect(now());
                }
                return None;
            }
            Input::Back => {
                t.back();
                return None;
            }
            Input::Tab(data) => {
                let a: Array = data.dyn_into().ok()?;
                let kind = a.get(0).as_f64()? as u8;
                if leader {
                    // A tab joined an open channel: tell it (only it) where the channel is.
                    if kind == JOINED && open {
                        let status = self.session.recovery_position().map_or(
                            JsValue::UNDEFINED,
                            |(epoch, seq)| {
                                message(&[
                                    Part::Str("#reset:"),
                                    Part::Str(epoch),
                                    Part::Str(":"),
                                    Part::Number(seq),
                                ])
                                .into()
                            },
                        );
                        t.post(&[OPEN.into(), a.get(1), status]);
                    }
                    return None;
                }
                if !t.wanted {
                    return None;
                }
                return Some(Input::Socket(match kind {
                    MESSAGE if open => SocketEvent::Message(a.get(1)),
                    OPEN if !open => {
                        let to = a.get(1);
                        if !to.is_undefined() && to.as_f64() != Some(id) {
                            return None;
                        }
                        // This session may be waiting to reconnect: the leader was faster.
                        self.session.connect(now());
                        self.session.on_open(now());
                        // With recovery, a joining tab starts from the leader's position;
                        // `Error` feeds nothing.
                        a.get(2)
                            .as_string()
                            .map_or(SocketEvent::Error, SocketEvent::Text)
                    }
                    CLOSED => SocketEvent::Closed {
                        code: a.get(1).as_f64().map_or(1006, |c| c as u16),
                        reason: a.get(2).as_string().unwrap_or_default(),
                    },
                    LEADER_CHANGED if open => SocketEvent::Closed {
                        code: 1006,
                        reason: String::new(),
                    },
                    _ => return None,
                }));
            }
            _ => {}
        }
        Some(input)
    }
}
