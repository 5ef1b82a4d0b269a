//! One browser `WebSocket` and its event listeners, removed when the guard drops.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

/// What the socket reports to its owner.
pub(crate) enum SocketEvent {
    Open(Event),
    Text(String),
    Binary(Vec<u8>),
    Closed { code: u16, reason: String },
    Error,
}

/// A socket with its listeners. Dropping it detaches every listener (so a late event of an
/// abandoned socket never reaches the session) and closes the socket if it is still open.
pub(crate) struct SocketGuard {
    ws: WebSocket,
    _onopen: Closure<dyn FnMut(Event)>,
    _onmessage: Closure<dyn FnMut(MessageEvent)>,
    _onclose: Closure<dyn FnMut(CloseEvent)>,
    _onerror: Closure<dyn FnMut(Event)>,
}

impl SocketGuard {
    /// Opens `url`; every event goes to `sink`.
    pub(crate) fn open(
        url: &str,
        sink: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<SocketGuard, wasm_bindgen::JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let s = sink.clone();
        let onopen = Closure::<dyn FnMut(Event)>::new(move |e: Event| s(SocketEvent::Open(e)));
        let s = sink.clone();
        let onmessage = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            if let Some(text) = data.as_string() {
                s(SocketEvent::Text(text));
            } else if let Ok(buf) = data.dyn_into::<js_sys::ArrayBuffer>() {
                s(SocketEvent::Binary(js_sys::Uint8Array::new(&buf).to_vec()));
            }
        });
        let s = sink.clone();
        let onclose = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            s(SocketEvent::Closed {
                code: e.code(),
                reason: e.reason(),
            })
        });
        let onerror = Closure::<dyn FnMut(Event)>::new(move |_e: Event| sink(SocketEvent::Error));
        ws.set_onopen(Some(onopen.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(onmessage.as_ref().unchecked_ref()));
        ws.set_onclose(Some(onclose.as_ref().unchecked_ref()));
        ws.set_onerror(Some(onerror.as_ref().unchecked_ref()));
        Ok(SocketGuard {
            ws,
            _onopen: onopen,
            _onmessage: onmessage,
            _onclose: onclose,
            _onerror: onerror,
        })
    }

    /// Sends a text frame; a socket that is not open yet or any more drops it silently (the
    /// session notices a dead link through the heartbeat).
    pub(crate) fn send(&self, text: &str) {
        let _ = self.ws.send_with_str(text);
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
