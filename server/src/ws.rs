//! One task per socket: the outbound queue and the inbound frames, until the socket ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::frames::Counted;
use crate::registry::{slow_consumer, Kill, Registration, Utf8Bytes, CLOSE_GOING_AWAY};
use crate::slots::Slot;
use crate::state::Shared;

/// An upgraded gateway socket.
pub(crate) type Socket = WebSocketStream<Counted<TokioIo<hyper::upgrade::Upgraded>>>;

/// How long a close frame may take to write, and how long we then wait for the peer's reply.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Close codes for inbound faults.
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub(crate) const CLOSE_POLICY: u16 = 1008;

/// The heartbeat rule of the gateway (docs/protocol.md section 1.4): a text or binary message
/// whose first byte is `!` is answered with `!`; every other message is ignored.
pub(crate) fn is_heartbeat(msg: &Message) -> bool {
    match msg {
        Message::Text(t) => t.as_str().starts_with('!'),
        Message::Binary(b) => b.first() == Some(&b'!'),
        _ => false,
    }
}

/// A socket's place in the registry; dropping it deregisters the socket at once (close, error,
/// TCP loss, or an upgrade that never completed).
pub(crate) struct Registered {
    pub(crate) shared: Arc<Shared>,
    pub(crate) path: String,
    pub(crate) id: u64,
    /// Opted into message recovery: holds the path's history.
    pub(crate) recover: bool,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.registry.deregister(&self.path, self.id);
        if self.recover {
            self.shared.recovery.release(&self.path);
        }
    }
}

/// One socket's life: pump the outbound queue and inbound frames until the socket ends.
/// `guard` deregisters it and `_slot` frees its place under the connection limits at the end.
pub(crate) async fn run_socket(
    shared: Arc<Shared>,
    mut socket: Socket,
    reg: Registration,
    replay: Vec<Utf8Bytes>,
    guard: Registered,
    _slot: Slot,
) {
    let path = guard.path.as_str();
    tracing::debug!(path, id = reg.id, "socket open");
    let mut rx = reg.rx;
    let kill = reg.kill;
    let queued = reg.queued;
    let write_timeout = shared.config.write_timeout;
    let out = Outbound {
        shared: &shared,
        kill: &kill,
        path,
        write_timeout,
    };
    let killed = kill.wait();
    tokio::pin!(killed);
    if !out.replay(&mut socket, replay, killed.as_mut()).await {
        return;
    }
    let idle_limit = shared.config.idle_timeout;
    let idle = tokio::time::sleep(idle_limit.unwrap_or(Duration::MAX / 4));
    tokio::pin!(idle);
    loop {
        tokio::select! {
            biased;
            _ = &mut killed => {
                let (code, reason) = kill.reason();
                close_with(&mut socket, code, reason).await;
                break;
            }
            _ = &mut idle, if idle_limit.is_some() => {
                tracing::debug!(path, "closing idle socket");
                close_with(&mut socket, CLOSE_GOING_AWAY, "idle timeout").await;
                break;
            }
            inbound = socket.next() => {
                if matches!(inbound, Some(Ok(_))) {
                    if let Some(limit) = idle_limit {
                        idle.as_mut().reset(tokio::time::Instant::now() + limit);
                    }
                }
                match inbound {
                None => break,
                Some(Ok(msg)) if is_heartbeat(&msg) => {
                    if !out.heartbeat(&mut socket, killed.as_mut()).await {
                        break;
                    }
                }
                // Echo mode (protocol test suites only): data messages go back as they came.
                #[cfg(feature = "test-hooks")]
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) if shared.config.echo => {
                    if !out.send(&mut socket, msg, killed.as_mut()).await {
                        break;
                    }
                }
                // Pings are answered with the same payload by the protocol layer; a Close is
                // echoed by it too: keep reading so that the echo is flushed and the stream ends.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if let Some((code, reason)) = close_code_for(&e) {
                        if code == CLOSE_TOO_BIG {
                            shared.metrics.closed(crate::metrics::Closed::Oversize);
                        }
                        tracing::info!(path, code, error = %e, "closing socket on inbound fault");
                        close_with(&mut socket, code, reason).await;
                    } else {
                        tracing::debug!(path, error = %e, "socket error");
                    }
                    break;
                }
                }
            },
            outbound = rx.recv() => match outbound {
                Some(text) => {
                    if !out.batch(&mut socket, &mut rx, text, &queued, killed.as_mut()).await {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    tracing::debug!(path, id = guard.id, "socket closed");
}

/// Most queued messages written with one flush.
const BATCH_MAX: u64 = 64;

/// The writing side of one socket's task. Every write gives up the same way: on a write error,
/// when the socket is told to close while the write waits (then it sends that close frame),
/// or when the write blocks longer than the write timeout (a client that stopped reading: a
/// slow consumer, closed with 1008 and counted).
struct Outbound<'a> {
    shared: &'a Shared,
    kill: &'a Kill,
    path: &'a str,
    write_timeout: Duration,
}

/// What a guarded write came to: `None` when the socket was told to close first, else the
/// write's result within the write timeout.
type Written = Option<Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>>;

impl Outbound<'_> {
    /// Runs `write` until it completes, the write timeout passes, or `killed` (the socket's
    /// pinned [`Kill::wait`]) fires, whichever comes first.
    async fn guarded(
        &self,
        killed: Pin<&mut impl Future<Output = ()>>,
        write: impl Future<Output = Result<(), tungstenite::Error>>,
    ) -> Written {
        tokio::select! {
            biased;
            () = killed => None,
            w = tokio::time::timeout(self.write_timeout, write) => Some(w),
        }
    }

    /// Closes the socket when a guarded write did not complete; `true` when it did.
    async fn settle(&self, socket: &mut Socket, written: Written) -> bool {
        match written {
            Some(Ok(r)) => return r.is_ok(),
            None => {}
            Some(Err(_)) => slow_consumer(
                self.kill,
                &self.shared.metrics,
                self.path,
                "a write blocked past the write timeout",
            ),
        }
        let (code, reason) = self.kill.reason();
        close_with(socket, code, reason).await;
        false
    }

    /// Sends one message.
    async fn send(
        &self,
        socket: &mut Socket,
        msg: Message,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let written = self.guarded(killed, socket.send(msg)).await;
        self.settle(socket, written).await
    }

    /// Answers a `!` heartbeat with `!` (unless the test hooks turned replies off).
    async fn heartbeat(
        &self,
        socket: &mut Socket,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        #[cfg(feature = "test-hooks")]
        if !self.shared.heartbeat_replies.load(Ordering::Relaxed) {
            return true;
        }
        self.shared
            .metrics
            .heartbeats
            .fetch_add(1, Ordering::Relaxed);
        let bang = Message::Text(Utf8Bytes::from_static("!"));
        self.send(socket, bang, killed).await
    }

    /// Writes the recovery status frame and replay (empty for other sockets) before anything
    /// that is queued.
    async fn replay(
        &self,
        socket: &mut Socket,
        replay: Vec<Utf8Bytes>,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        if replay.is_empty() {
            return true;
        }
        let write = async {
            for frame in replay {
                socket.feed(Message::Text(frame)).await?;
            }
            socket.flush().await
        };
        let written = self.guarded(killed, write).await;
        self.settle(socket, written).await
    }

    /// Writes `first` and the messages already queued behind it (at most [`BATCH_MAX`]) with
    /// one flush: a socket that fell behind catches up with a few large writes instead of a
    /// system call per message. The bytes taken from the queue are subtracted from `queued`,
    /// written or not.
    async fn batch(
        &self,
        socket: &mut Socket,
        rx: &mut mpsc::Receiver<Utf8Bytes>,
        first: Utf8Bytes,
        queued: &AtomicUsize,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let mut messages = 1;
        let mut bytes = first.len();
        let write = async {
            socket.feed(Message::Text(first)).await?;
            while messages < BATCH_MAX {
                let Ok(next) = rx.try_recv() else { break };
                messages += 1;
                bytes += next.len();
                socket.feed(Message::Text(next)).await?;
            }
            socket.flush().await
        };
        let written = self.guarded(killed, write).await;
        queued.fetch_sub(bytes, Ordering::Relaxed);
        let sent = self.settle(socket, written).await;
        if sent {
            self.shared
                .metrics
                .delivered
                .fetch_add(messages, Ordering::Relaxed);
        }
        sent
    }
}

/// Sends a close frame (bounded in time), then reads until the peer's reply or a timeout, so
/// that the peer receives the frame before the TCP connection goes away.
async fn close_with(socket: &mut Socket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    };
    let sent = tokio::time::timeout(
        CLOSE_WRITE_TIMEOUT,
        socket.send(Message::Close(Some(frame))),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !sent {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
        while let Some(r) = socket.next().await {
            if r.is_err() {
                break;
            }
        }
    })
    .await;
}

/// The close code for an inbound fault; `None` for transport errors (nothing to tell the peer).
fn close_code_for(err: &tungstenite::Error) -> Option<(u16, &'static str)> {
    match err {
        tungstenite::Error::Capacity(_) => Some((CLOSE_TOO_BIG, "message too big")),
        tungstenite::Error::Utf8(_) => Some((CLOSE_INVALID_DATA, "invalid UTF-8")),
        tungstenite::Error::Protocol(_) => Some((CLOSE_PROTOCOL_ERROR, "protocol error")),
        _ => None,
    }
}
