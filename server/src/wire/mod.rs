//! The gateway's own WebSocket frames (RFC 6455) with permessage-deflate (RFC 7692).
//!
//! The handshake is answered in [`crate::upgrade`]; from then on the gateway reads and writes
//! frames itself instead of through tungstenite, for three things tungstenite cannot do:
//!
//! - **permessage-deflate.** tungstenite refuses every frame with a reserved bit set, so a
//!   client's compressed message cannot even be read. [`deflate`] negotiates the extension with
//!   `server_no_context_takeover` and `client_no_context_takeover`: every message is compressed
//!   on its own, in both directions.
//! - **One frame for every socket.** tungstenite copies each message into every socket's write
//!   buffer. An [`Outgoing`] is built once per broadcast (its header, and its compressed form
//!   the first time a socket that negotiated compression needs it) and its bytes are written to
//!   every socket with vectored writes: memory under large broadcasts does not grow with the
//!   sockets, and a path's sockets share one compression.
//! - **Limits on what was sent, not on what arrived.** [`Reader`] applies the frame rate, the
//!   fragments per message and the message size (after inflating) as it parses; before, a
//!   byte-counting layer under tungstenite had to read frame headers a second time.
//!
//! The gateway only ever reads small messages (`!` heartbeats, pings, closes), so the reader is
//! simple: it waits for a whole frame before looking at its payload, which is bounded by the
//! message size limit. The frame rules are those the Autobahn TestSuite checks (its report,
//! both ways, is committed in `tests/autobahn`).

pub(crate) mod deflate;
mod frame;
mod read;
pub(crate) mod sse;

pub(crate) use deflate::Deflate;
pub(crate) use frame::{control, Outgoing, BANG};
pub(crate) use read::{Fault, Inbound, Limits, Reader};

/// Opcodes (RFC 6455 section 5.2).
pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;
