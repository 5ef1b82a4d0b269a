//! One task per socket: the outbound queue and the inbound frames, until the socket ends.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::metrics::Closed;
use crate::registry::{slow_consumer, Kill, Registration, Utf8Bytes, CLOSE_GOING_AWAY};
use crate::slots::Slot;
use crate::state::Shared;
use crate::wire::{self, Deflate, Fault, Inbound, Outgoing, Reader};

/// An upgraded connection's bytes.
type Io = TokioIo<hyper::upgrade::Upgraded>;

/// How long a close frame may take to write, and how long we then wait for the peer's reply.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// The heartbeat rule of the gateway (docs/protocol.md section 1.4): a text or binary message
/// whose first byte is `!` is answered with `!`; every other message is ignored.
pub(crate) fn is_heartbeat(data: &[u8]) -> bool {
    data.first() == Some(&b'!')
}

/// An upgraded gateway socket: its connection, what it negotiated, and its inbound parser.
pub(crate) struct Socket {
    io: Io,
    buf: BytesMut,
    reader: Reader,
    deflate: Option<Deflate>,
    read_buffer: usize,
}

/// How reading a socket ended.
enum ReadEnd {
    /// The client sent something the gateway closes the socket for.
    Fault(Fault),
    /// The connection ended or failed (nothing to tell the peer).
    Gone,
}

impl Socket {
    pub(crate) fn new(
        io: Io,
        reader: Reader,
        deflate: Option<Deflate>,
        read_buffer: usize,
    ) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(read_buffer),
            reader,
            deflate,
            read_buffer,
        }
    }

    /// The next message or control frame. Cancel-safe: what was read stays buffered.
    async fn read(&mut self) -> Result<Inbound, ReadEnd> {
        loop {
            let now = tokio::time::Instant::now();
            match self.reader.next(&mut self.buf, now) {
                Ok(Some(inbound)) => return Ok(inbound),
                Ok(None) => {}
                Err(fault) => return Err(ReadEnd::Fault(fault)),
            }
            if self.buf.is_empty() && self.buf.capacity() > 4 * self.read_buffer {
                // After a large message: back to the small buffer an idle socket keeps.
                self.buf = BytesMut::with_capacity(self.read_buffer);
            }
            let want = self.reader.need().clamp(self.read_buffer, 1 << 20);
            if self.buf.capacity() - self.buf.len() < want.min(self.read_buffer) {
                self.buf.reserve(want);
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(ReadEnd::Gone),
                Ok(_) => {}
            }
        }
    }

    /// Writes `bufs` in full (vectored) and flushes.
    async fn write(&mut self, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        wire::write_all(&mut self.io, bufs).await
    }

    /// Writes one message.
    async fn write_one(&mut self, message: &Outgoing) -> io::Result<()> {
        let [head, body] = message.frame(self.deflate.as_ref());
        wire::write_all(&mut self.io, &mut [IoSlice::new(head), IoSlice::new(body)]).await
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
    let out = Outbound {
        shared: &shared,
        kill: &kill,
        path,
        write_timeout: shared.config.write_timeout,
        gather: shared.config.ws_write_buffer,
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
            inbound = socket.read() => {
                if inbound.is_ok() {
                    if let Some(limit) = idle_limit {
                        idle.as_mut().reset(tokio::time::Instant::now() + limit);
                    }
                }
                let reply = match inbound {
                    // Echo mode (protocol test suites only): data messages go back as they
                    // came, heartbeats too.
                    #[cfg(feature = "test-hooks")]
                    Ok(Inbound::Message { opcode, data }) if shared.config.echo => {
                        let echo = Outgoing::new(opcode, data);
                        if !out.send(&mut socket, &echo, killed.as_mut()).await {
                            break;
                        }
                        None
                    }
                    Ok(Inbound::Message { data, .. }) if is_heartbeat(&data) => out.heartbeat(),
                    Ok(Inbound::Message { .. } | Inbound::Pong) => None,
                    Ok(Inbound::Ping(payload)) => Some(wire::control(wire::OP_PONG, &payload)),
                    Ok(Inbound::Close(code)) => {
                        // Echo the close (with its code) and end the connection.
                        let payload = code.map(u16::to_be_bytes);
                        let frame = wire::control(wire::OP_CLOSE, payload.as_ref().map_or(&[], |p| &p[..]));
                        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
                            socket.write(&mut [IoSlice::new(&frame)]).await?;
                            socket.io.shutdown().await
                        })
                        .await;
                        break;
                    }
                    Err(ReadEnd::Fault(fault)) => {
                        let (code, reason) = fault.close();
                        match fault {
                            Fault::TooBig => shared.metrics.closed(Closed::Oversize),
                            Fault::TooManyFrames | Fault::TooManyFragments => {
                                shared.metrics.closed(Closed::Flood);
                            }
                            Fault::Protocol(_) | Fault::InvalidData(_) => {}
                        }
                        tracing::info!(path, code, reason, "closing socket on inbound fault");
                        fail_with(&mut socket, code, reason).await;
                        break;
                    }
                    Err(ReadEnd::Gone) => break,
                };
                if let Some(frame) = reply {
                    if !out.control(&mut socket, &frame, killed.as_mut()).await {
                        break;
                    }
                }
            },
            outbound = rx.recv() => match outbound {
                Some(first) => {
                    if !out.batch(&mut socket, &mut rx, first, &queued, killed.as_mut()).await {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    tracing::debug!(path, id = guard.id, "socket closed");
}

/// Most queued messages written with one (vectored) write.
const BATCH_MAX: usize = 64;

/// The writing side of one socket's task. Every write gives up the same way: on a write error,
/// when the socket is told to close while the write waits (then it sends that close frame),
/// or when the write blocks longer than the write timeout (a client that stopped reading: a
/// slow consumer, closed with 1008 and counted).
struct Outbound<'a> {
    shared: &'a Shared,
    kill: &'a Kill,
    path: &'a str,
    write_timeout: Duration,
    /// Most bytes gathered into one write (at least one message).
    gather: usize,
}

/// What a guarded write came to: `None` when the socket was told to close first, else the
/// write's result within the write timeout.
type Written = Option<Result<io::Result<()>, tokio::time::error::Elapsed>>;

impl Outbound<'_> {
    /// Runs `write` until it completes, the write timeout passes, or `killed` (the socket's
    /// pinned [`Kill::wait`]) fires, whichever comes first.
    async fn guarded(
        &self,
        killed: Pin<&mut impl Future<Output = ()>>,
        write: impl Future<Output = io::Result<()>>,
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
    #[cfg(feature = "test-hooks")]
    async fn send(
        &self,
        socket: &mut Socket,
        message: &Outgoing,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let written = self.guarded(killed, socket.write_one(message)).await;
        self.settle(socket, written).await
    }

    /// Sends a control frame (or the heartbeat answer).
    async fn control(
        &self,
        socket: &mut Socket,
        frame: &[u8],
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let written = self
            .guarded(killed, socket.write(&mut [IoSlice::new(frame)]))
            .await;
        self.settle(socket, written).await
    }

    /// The answer to a `!` heartbeat (none when the test hooks turned replies off).
    fn heartbeat(&self) -> Option<Vec<u8>> {
        #[cfg(feature = "test-hooks")]
        if !self.shared.heartbeat_replies.load(Ordering::Relaxed) {
            return None;
        }
        self.shared
            .metrics
            .heartbeats
            .fetch_add(1, Ordering::Relaxed);
        Some(wire::BANG.to_vec())
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
        let messages: Vec<Outgoing> = replay.into_iter().map(Outgoing::text).collect();
        let write = async {
            for message in &messages {
                socket.write_one(message).await?;
            }
            Ok(())
        };
        let written = self.guarded(killed, write).await;
        self.settle(socket, written).await
    }

    /// Writes `first` and the messages already queued behind it (at most [`BATCH_MAX`], and
    /// past the first at most `gather` bytes) with one vectored write: a socket that fell
    /// behind catches up with a few large writes instead of a system call per message. The
    /// messages are the broadcast's own bytes, shared by every socket (nothing is copied).
    /// The bytes taken from the queue are subtracted from `queued`, written or not.
    async fn batch(
        &self,
        socket: &mut Socket,
        rx: &mut mpsc::Receiver<Arc<Outgoing>>,
        first: Arc<Outgoing>,
        queued: &AtomicUsize,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let mut bytes = first.len();
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX && bytes < self.gather {
            let Ok(next) = rx.try_recv() else { break };
            bytes += next.len();
            batch.push(next);
        }
        let deflate = socket.deflate;
        let mut slices: Vec<IoSlice<'_>> = batch
            .iter()
            .flat_map(|m| m.frame(deflate.as_ref()))
            .map(IoSlice::new)
            .collect();
        let written = self.guarded(killed, socket.write(&mut slices)).await;
        drop(slices);
        queued.fetch_sub(bytes, Ordering::Relaxed);
        let sent = self.settle(socket, written).await;
        if sent {
            self.shared
                .metrics
                .delivered
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        sent
    }
}

/// A close frame with `code` and `reason`.
fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    wire::control(wire::OP_CLOSE, &payload)
}

/// Sends a close frame (bounded in time), then reads until the peer's reply or a timeout, so
/// that the peer receives the frame before the TCP connection goes away.
async fn close_with(socket: &mut Socket, code: u16, reason: &'static str) {
    let frame = close_frame(code, reason);
    let sent = tokio::time::timeout(
        CLOSE_WRITE_TIMEOUT,
        socket.write(&mut [IoSlice::new(&frame)]),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if !sent {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
        loop {
            match socket.read().await {
                Ok(Inbound::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = socket.io.shutdown().await;
    })
    .await;
}

/// Fails the connection for what the client sent (RFC 6455 section 7.1.7): the close frame,
/// then the end of the TCP stream at once; what the client still sends is read and dropped
/// (bounded in time) so that the kernel does not answer it with a reset that could destroy
/// the close frame on its way.
async fn fail_with(socket: &mut Socket, code: u16, reason: &'static str) {
    let frame = close_frame(code, reason);
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        socket.write(&mut [IoSlice::new(&frame)]).await?;
        socket.io.shutdown().await
    })
    .await;
    let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
        let mut sink = [0; 1024];
        while matches!(socket.io.read(&mut sink).await, Ok(1..)) {}
    })
    .await;
}
