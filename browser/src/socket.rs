//! One browser `WebSocket`, or one `EventSource` (the event-stream transport), and its event
//! listeners, removed when the guard drops. The stream asks for the WebSocket's frames, so its
//! messages come out as a socket's (its `close` as a close): the driver and the tab sharing
//! handle both alike.

use moleculer_ws_session::{is_control_frame, stream_event, StreamEvent};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, EventSource, MessageEvent, WebSocket};

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

/// What a guard holds.
enum Conn {
    Socket(WebSocket),
    Stream(EventSource),
}

/// A socket (or stream) with its listeners. Dropping it detaches every listener (so a late
/// event of an abandoned socket never reaches the session) and closes the socket if it is
/// still open.
pub(crate) struct SocketGuard {
    conn: Conn,
    listeners: [Listener; 4],
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

/// An event stream's `error`: the stream failed or ended (a browser would reconnect by itself;
/// the session decides instead), as a WebSocket closed without a close frame.
fn on_stream_error(_e: JsValue) -> Option<SocketEvent> {
    Some(SocketEvent::Closed {
        code: 1006,
        reason: String::new(),
    })
}

/// An event stream's `close` event: how the gateway ends it.
fn on_stream_close(e: JsValue) -> Option<SocketEvent> {
    let data = e.unchecked_into::<MessageEvent>().data().as_string()?;
    match stream_event("close", data) {
        StreamEvent::Closed { code, reason } => Some(SocketEvent::Closed { code, reason }),
        _ => None,
    }
}

/// The four listeners, each handing what `read` makes of its event to `sink`.
fn listen(
    sink: impl Fn(SocketEvent) + Clone + 'static,
    reads: [fn(JsValue) -> Option<SocketEvent>; 4],
) -> [Listener; 4] {
    reads.map(|read| {
        let sink = sink.clone();
        Listener::new(move |e: JsValue| {
            if let Some(ev) = read(e) {
                sink(ev);
            }
        })
    })
}

impl SocketGuard {
    /// Opens `url`; every event goes to `sink`.
    pub(crate) fn open(
        url: &str,
        sink: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<SocketGuard, JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let listeners = listen(sink, [on_open, on_message, on_close, on_error]);
        let [open, message, close, error] = &listeners;
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        ws.set_onerror(Some(error.as_ref().unchecked_ref()));
        Ok(SocketGuard {
            conn: Conn::Socket(ws),
            listeners,
        })
    }

    /// Opens the event stream at `url` (`http(s)://`, asking for frames); every event goes to
    /// `sink` as the socket event it stands for.
    pub(crate) fn open_stream(
        url: &str,
        sink: impl Fn(SocketEvent) + Clone + 'static,
    ) -> Result<SocketGuard, JsValue> {
        let es = EventSource::new(url)?;
        let listeners = listen(
            sink,
            [on_open, on_message, on_stream_error, on_stream_close],
        );
        let [open, message, error, close] = &listeners;
        es.set_onopen(Some(open.as_ref().unchecked_ref()));
        es.set_onmessage(Some(message.as_ref().unchecked_ref()));
        es.set_onerror(Some(error.as_ref().unchecked_ref()));
        es.add_event_listener_with_callback("close", close.as_ref().unchecked_ref())?;
        Ok(SocketGuard {
            conn: Conn::Stream(es),
            listeners,
        })
    }

    /// Sends a text frame; a socket that is not open yet or any more drops it silently (the
    /// session notices a dead link through the heartbeat).
    /// Sends while the socket is open; on a closing one (the gateway's close frame is on its
    /// way to the close event) nothing: the browser would log "WebSocket is already in
    /// CLOSING or CLOSED state" to the page's console.
    pub(crate) fn send(&self, text: &str) {
        if let Conn::Socket(ws) = &self.conn {
            if ws.ready_state() == WebSocket::OPEN {
                let _ = ws.send_with_str(text);
            }
        }
    }

    /// Starts the close handshake. Browsers only accept 1000 and 3000-4999 from scripts, so
    /// other codes (the session's 1001 "going away") close without a code.
    /// An event stream just ends.
    pub(crate) fn close(&self, code: u16) {
        let _ = match &self.conn {
            Conn::Socket(ws) if code == 1000 || (3000..=4999).contains(&code) => {
                ws.close_with_code(code)
            }
            Conn::Socket(ws) => ws.close(),
            Conn::Stream(es) => {
                es.close();
                Ok(())
            }
        };
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        match &self.conn {
            Conn::Socket(ws) => {
                ws.set_onopen(None);
                ws.set_onmessage(None);
                ws.set_onclose(None);
                ws.set_onerror(None);
                let state = ws.ready_state();
                if state == WebSocket::CONNECTING || state == WebSocket::OPEN {
                    let _ = ws.close();
                }
            }
            Conn::Stream(es) => {
                // Closed first: a closed stream dispatches nothing more, not even events
                // already queued.
                es.close();
                es.set_onopen(None);
                es.set_onmessage(None);
                es.set_onerror(None);
                let close = self.listeners[3].as_ref().unchecked_ref();
                let _ = es.remove_event_listener_with_callback("close", close);
            }
        }
    }
}
