//! The driver's side of the tab sharing (feature `tabs`, module `tabs` for the lock, the
//! channel and the timer): which session runs, and what goes between the tabs.

use std::mem;
use std::rc::Rc;
use std::time::Duration;

use js_sys::Array;
use moleculer_ws_session::text::{message, whole_ms, Part};
use moleculer_ws_session::{ConnectionState, Event, Session, SessionConfig};
use wasm_bindgen::prelude::*;

use crate::clock::{now, seed};
use crate::driver::{step, Driver, Inner, Input};
use crate::socket::SocketEvent;
use crate::tabs::{
    supported, TabInput, Tabs, CLOSED, JOINED, LEADER_CHANGED, MESSAGE, OPEN, STOPPED, WAKE,
};

impl Driver {
    /// (Feature `tabs`.) Shares one socket with the other tabs of this origin that share
    /// `name` (the channel's URL): one tab, the leader, holds the socket; the others receive
    /// what it receives (module `tabs`). Call before [`connect`](Self::connect). Returns
    /// false, with a console note, where the browser has no Web Locks (http other than
    /// localhost) or BroadcastChannel: this tab then keeps a socket of its own.
    pub fn share(&self, name: &str) -> bool {
        if !supported() {
            web_sys::console::info_1(&JsValue::from_str(
                "moleculer-ws: no Web Locks or BroadcastChannel here (Web Locks need https or \
                 localhost): this tab keeps a socket of its own",
            ));
            return false;
        }
        let weak = Rc::downgrade(&self.inner);
        let Ok(mut me) = self.inner.try_borrow_mut() else {
            return false;
        };
        // The period: a third of the heartbeat interval (2 s without a heartbeat). The leader
        // posts every half period; a follower takes the lock after two periods of silence.
        let third = whole_ms(me.session.config().heartbeat_interval) / 3;
        let beat_ms = if third > 0 { third } else { 2000 };
        let feed = Rc::new(move |input: TabInput| match weak.upgrade() {
            Some(inner) => step(&inner, Input::Tab(input)),
            // Nobody left to lead: a lock granted now goes back at once.
            None => {
                if let TabInput::Granted(resolve, _) = input {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
        });
        let Some(tabs) = Tabs::new(name, feed, beat_ms) else {
            return false;
        };
        me.tabs = Some(tabs);
        me.follow();
        true
    }
}

/// The status frame for a tab that joins an open channel at position `at` (`<epoch>:<seq>`,
/// or undefined): `#recovered:<epoch>:<seq>:0` when nothing passed it (its position is this
/// one, or ahead in the same epoch: it skips what it has), else `#reset:<epoch>:<seq>`.
fn joined_status(epoch: &str, seq: u64, at: &JsValue) -> JsValue {
    let theirs = at.as_string();
    let ahead = theirs
        .as_deref()
        .and_then(|t| t.split_once(':'))
        .and_then(|(e, s)| {
            let s: u64 = s.parse().ok()?;
            (e == epoch && s >= seq).then_some(s)
        });
    let parts = match &ahead {
        Some(s) => [
            Part::Str("#recovered:"),
            Part::Str(epoch),
            Part::Str(":"),
            Part::Number(*s),
            Part::Str(":0"),
        ],
        None => [
            Part::Str("#reset:"),
            Part::Str(epoch),
            Part::Str(":"),
            Part::Number(seq),
            Part::Str(""),
        ],
    };
    message(&parts).into()
}

/// A follower's session: the same settings with no heartbeat, no connect timeout and a
/// reconnect policy that never gives up (its socket is the leader's, which has all three: the
/// leader says when it stopped).
fn follower_session(config: &SessionConfig) -> Option<Session> {
    let policy = config
        .reconnect
        .clone()
        .enabled(true)
        .max_attempts(None)
        .stop_on_http_status(Vec::new());
    let config = config
        .clone()
        .heartbeat_interval(Duration::ZERO)
        .heartbeat_timeout(Duration::ZERO)
        .connect_timeout(Duration::ZERO)
        .reconnect(policy);
    Session::new(config, seed()).ok()
}

impl Inner {
    /// Runs a follower's session (the leader's waits in `spare`).
    pub(crate) fn follow(&mut self) {
        let Some(t) = &mut self.tabs else { return };
        if t.spare.is_some() {
            return;
        }
        if let Some(mut f) = follower_session(self.session.config()) {
            // It goes on from where this tab got to: what passes it meanwhile is a gap.
            if let Some((epoch, seq)) = self.session.recovery_position() {
                f.resume_from(epoch, seq);
            }
            t.spare = Some(mem::replace(&mut self.session, f));
        }
    }

    /// This tab's recovery position, for the leader's answer to its joining.
    fn position_value(&self) -> JsValue {
        self.position_text()
            .map_or(JsValue::UNDEFINED, JsValue::from)
    }

    /// A link the owner saw open is gone with the leader's change: said as a lost link.
    fn lost_link(&mut self) {
        if self.session.state() == ConnectionState::Open {
            if let Some(t) = &mut self.tabs {
                t.early.push(Event::Closed {
                    code: None,
                    reason: String::new(),
                    will_reconnect: true,
                });
            }
        }
    }

    /// Runs the leader's session, resuming from where the follower's got to.
    fn lead(&mut self) {
        self.lost_link();
        let Some(t) = &mut self.tabs else { return };
        if let Some(real) = t.spare.take() {
            let f = mem::replace(&mut self.session, real);
            t.carried += f.messages_received();
            if let Some((epoch, seq)) = f.recovery_position() {
                self.session.resume_from(epoch, seq);
            }
        }
    }

    /// After stepping down without the page asking: closes the socket quietly (the page sees
    /// the channel go on through the next leader) and follows.
    fn hand_over(&mut self) {
        self.lost_link();
        self.session.disconnect(now());
        let _ = self.carry_out();
        self.follow();
        self.session.connect(now());
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

    /// As the leader: after a step, tells the others when the session gave up by itself
    /// (its reconnect policy stopped it; not the page's `disconnect()`, which hands over).
    pub(crate) fn relay_stop(&self, events: &[Event]) {
        if let Some(t) = self.leader_tabs() {
            if events.iter().any(|e| matches!(e, Event::Stopped(Some(_)))) {
                t.post(&[STOPPED.into()]);
            }
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
                    let at = self.position_value();
                    let t = self.tabs.as_mut()?;
                    if t.request_number() == 0 {
                        t.join(at);
                    } else {
                        // Known to the leader already: its session may have stopped.
                        t.post(&[WAKE.into()]);
                    }
                }
            }
            Input::Disconnect => {
                // A leader's own events say it stopped; the next tab in line takes over. A
                // follower leaves the line.
                t.wanted = false;
                t.step_down(true);
                t.withdraw();
                t.stop_timer();
            }
            Input::Tab(TabInput::Granted(resolve, number)) => {
                if !t.granted(resolve, number) {
                    return None;
                }
                self.lead();
                return Some(Input::Connect);
            }
            Input::Tab(TabInput::Lost(number)) => {
                // The lock was taken from this tab (it was silent): follow the new leader.
                if !leader || t.request_number() != number {
                    return None;
                }
                t.step_down(false);
                self.hand_over();
                let at = self.position_value();
                self.tabs.as_mut()?.join(at);
                // `Error` feeds nothing: the step carries the lost link.
                return Some(Input::Socket(SocketEvent::Error));
            }
            Input::Tab(TabInput::Leave) => {
                // Frozen or hidden: the next tab in line takes over now, not when the browser
                // discards this page; a follower leaves the line. Back, it asks again.
                if !leader {
                    t.withdraw();
                    return None;
                }
                t.step_down(true);
                self.hand_over();
                return Some(Input::Socket(SocketEvent::Error));
            }
            Input::Tab(TabInput::Back) => {
                if t.wanted && !leader && t.request_number() == 0 {
                    let at = self.position_value();
                    self.tabs.as_mut()?.join(at);
                }
                return None;
            }
            Input::Tab(TabInput::Watch) => {
                t.tick();
                return None;
            }
            Input::Tab(TabInput::Message(data)) => {
                let a: Array = data.dyn_into().ok()?;
                let kind = a.get(0).as_f64()? as u8;
                if leader {
                    // A tab wants the channel connected: this session may have stopped.
                    if kind == WAKE {
                        return Some(Input::Connect);
                    }
                    // A tab joined an open channel: tell it (only it) where the channel is;
                    // with recovery, whether messages passed it since its own position. A
                    // stopped session connects again: a tab wants the channel.
                    if kind == JOINED && open {
                        let status = self
                            .session
                            .recovery_position()
                            .map_or(JsValue::UNDEFINED, |(epoch, seq)| {
                                joined_status(epoch, seq, &a.get(2))
                            });
                        let t = self.tabs.as_mut()?;
                        t.post(&[OPEN.into(), a.get(1), status]);
                    } else if kind == JOINED && self.session.state() == ConnectionState::Stopped {
                        return Some(Input::Connect);
                    }
                    return None;
                }
                if kind != JOINED && kind != WAKE {
                    t.seen = Some(now().0);
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
                    // The leader's session gave up: so does this one (as the page's own
                    // `disconnect()` would say it; a `connect()` wakes the leader).
                    STOPPED => {
                        self.session.disconnect(now());
                        SocketEvent::Error
                    }
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
