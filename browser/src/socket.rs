//! One browser `WebSocket` and its event listeners, removed when the guard drops.

use moleculer_ws_session::is_control_frame;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What the socket reports to its owner.
pub(crate) enum SocketEvent {
    /// The `open` event (handed to the page's `onopen`).
    Open(JsValue),
    /// A text frame that is not empty and does not start with `!`, kept as the page's string
    /// (the driver hands it on as it is, uncopied, to an owner that asked for raw messages;
    /// otherwise the session reads its text).
    Message(JsValue),
    Text(String),
    Binary(Vec<u8>),
    Closed {
        code: u16,
        reason: String,
    },
    Error,
}

/// The listeners all have one type (one glue shim for the four of them); this reads the event.
type Listener = Closure<dyn FnMut(JsValue)>;

/// A socket with its listeners. Dropping it detaches every listener (so a late event of an
/// abandoned socket never reaches the session) and closes the socket if it is still open.
pub(crate) struct SocketGuard {
    ws: WebSocket,
    _listeners: [Listener; 4],
}

fn on_open(e: JsValue) -> Option<SocketEvent> {
    Some(SocketEvent::Open(e))
}

fn on_message(e: JsValue) -> Option<SocketEvent> {
    let data = e.unchecked_into::<MessageEvent>().data();
    if let Some(s) = data.dyn_ref::<js_sys::JsString>() {
        // NaN for an empty string; the heartbeat `!` goes to the session as text.
        let first = s.char_code_at(0);
        if is_control_frame((!first.is_nan()).then_some(first as u16)) {
            data.as_string().map(SocketEvent::Text)
        } else {
            Some(SocketEvent::Message(data))
        }
    } else {
        let buf = data.dyn_into::<js_sys::ArrayBuffer>().ok()?;
        Some(SocketEvent::Binary(js_sys::Uint8Array::new(&buf).to_vec()))
    }
}

fn on_close(e: JsValue) -> Option<SocketEvent> {
    let e = e.unchecked_into::<CloseEvent>();
    Some(SocketEvent::Closed {
        code: e.code(),
        reason: e.reason(),
    })
}

fn on_error(_e: JsValue) -> Option<SocketEvent> {
    Some(SocketEvent::Error)
}

impl SocketGuard {
    /// Opens `url`; every event goes to `sink`.
    pub(crate) fn open(
        url: &str,
        sink: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<SocketGuard, JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let listener = |read: fn(JsValue) -> Option<SocketEvent>| {
            let sink = sink.clone();
            Listener::new(move |e: JsValue| {
                if let Some(ev) = read(e) {
                    sink(ev);
                }
            })
        };
        let listeners = [
            listener(on_open),
            listener(on_message),
            listener(on_close),
            listener(on_error),
        ];
        let [open, message, close, error] = &listeners;
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(error.as_ref().unchecked_ref()));
        Ok(SocketGuard {
            ws,
            _listeners: listeners,
        })
    }

    /// Sends a text frame; a socket that is not open yet or any more drops it silently (the
    /// session notices a dead link through the heartbeat).
    /// Sends while the socket is open; on a closing one (the gateway's close frame is on its
    /// way to the close event) nothing: the browser would log "WebSocket is already in
    /// CLOSING or CLOSED state" to the page's console.
    pub(crate) fn send(&self, text: &str) {
        if self.ws.ready_state() == WebSocket::OPEN {
            let _ = self.ws.send_with_str(text);
        }
    }

    /// Starts the close handshake. Browsers only accept 1000 and 3000-4999 from scripts, so
    /// other codes (the session's 1001 "going away") close without a code.
    pub(crate) fn close(&self, code: u16) {
        let _ = if code == 1000 || (3000..=4999).contains(&code) {
            self.ws.close_with_code(code)
        } else {
            self.ws.close()
        };
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        let state = self.ws.ready_state();
        if state == WebSocket::CONNECTING || state == WebSocket::OPEN {
            let _ = self.ws.close();
        }
    }
}
