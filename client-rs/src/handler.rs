//! The callback interface, shaped like the Java client's `WebSocketHandler`.

use crate::session::{Event, Message};
use crate::Error;

/// Callbacks for a WebSocket, as an alternative to the [`Events`](crate::Events) stream.
///
/// Every method has an empty default, so implement only what you need. The methods run on the
/// connection's task (in the browser: in the socket's and timers' callbacks), in order: keep
/// them short and hand long work to another task, or the heartbeat waits for you.
pub trait WebSocketHandler: Send + Sync + 'static {
    /// A message from the gateway (JSON object/array parsed, anything else raw text).
    fn on_message(&self, message: Message) {
        let _ = message;
    }

    /// The socket opened (also after every reconnect).
    fn on_open(&self) {}

    /// Message recovery: the gateway's answer after each opening (see
    /// [`Event::Recovery`]).
    fn on_recovery(&self, recovered: bool, replayed: u64) {
        let _ = (recovered, replayed);
    }

    /// Message recovery: messages may have been missed; refetch the state (see
    /// [`Event::Resync`]).
    fn on_resync(&self) {}

    /// A failure: a refused or broken attempt, a transport error, a lost heartbeat.
    fn on_error(&self, error: &Error) {
        let _ = error;
    }

    /// The socket closed; `code` is `None` without a close frame.
    fn on_close(&self, code: Option<u16>, reason: &str) {
        let _ = (code, reason);
    }

    /// Every event, before the specific method above (reconnecting, heartbeat round trips,
    /// stopped, ...).
    fn on_event(&self, event: &Event) {
        let _ = event;
    }
}

/// Calls `h` for one event: [`WebSocketHandler::on_event`], then the specific method.
pub(crate) fn dispatch(h: &dyn WebSocketHandler, event: Event) {
    h.on_event(&event);
    match event {
        Event::Message(m) => h.on_message(m),
        Event::Open => h.on_open(),
        Event::Recovery {
            recovered,
            replayed,
        } => h.on_recovery(recovered, replayed),
        Event::Resync => h.on_resync(),
        Event::Error(e) => h.on_error(&Error::from(e)),
        Event::Closed { code, reason, .. } => h.on_close(code, &reason),
        _ => {}
    }
}
