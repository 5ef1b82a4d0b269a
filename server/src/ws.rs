//! One task per socket: the outbound queue and the inbound frames, until the socket ends.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admit::Registered;
use crate::metrics::Closed;
use crate::outbox::Outbox;
use crate::registry::{write_blocked, Kill, Registration, Utf8Bytes, CLOSE_GOING_AWAY};
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
    /// The read buffer grew past `read_buffer` (a large inbound message).
    grown: bool,
    /// What the last write was given, until all of it is written: a write abandoned half-way
    /// (a slow consumer, a shutdown) is finished before a close frame goes out, so that the
    /// close frame never lands inside another frame.
    in_flight: Vec<Arc<Outgoing>>,
    in_flight_control: Vec<u8>,
    /// Bytes of what is in flight already written.
    written: usize,
}

/// How reading a socket ended.
enum ReadEnd {
    /// The client sent something the gateway closes the socket for.
    Fault(Fault),
    /// The connection ended or failed (nothing to tell the peer).
    Gone,
}

/// Most bytes the read buffer grows by at once for a large inbound frame.
const MAX_READ: usize = 1 << 20;

/// Most buffers handed to one vectored write (Linux's IOV_MAX).
const IOV_MAX: usize = 1024;

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
            grown: false,
            in_flight: Vec::new(),
            in_flight_control: Vec::new(),
            written: 0,
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
            if self.buf.is_empty() && self.grown {
                // After a large message: back to the small buffer an idle socket keeps.
                self.buf = BytesMut::with_capacity(self.read_buffer);
                self.grown = false;
            }
            let want = self
                .reader
                .need()
                .max(self.read_buffer)
                .min(MAX_READ.max(self.read_buffer));
            if self.buf.capacity() - self.buf.len() < want {
                self.buf.reserve(want);
                self.grown |= self.buf.capacity() > self.read_buffer;
            }
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(ReadEnd::Gone),
                Ok(_) => {}
            }
        }
    }

    /// Writes `messages` (each as this socket negotiated) and then `control`, in full, with
    /// vectored writes, and flushes.
    async fn send(&mut self, messages: Vec<Arc<Outgoing>>, control: &[u8]) -> io::Result<()> {
        self.in_flight = messages;
        self.in_flight_control.clear();
        self.in_flight_control.extend_from_slice(control);
        self.written = 0;
        self.finish().await
    }

    /// Writes what is in flight from where the last write stopped.
    async fn finish(&mut self) -> io::Result<()> {
        if self.in_flight.is_empty() && self.in_flight_control.is_empty() {
            return Ok(());
        }
        let deflate = self.deflate;
        let mut slices: Vec<IoSlice<'_>> = self
            .in_flight
            .iter()
            .flat_map(|m| m.frame(deflate.as_ref()))
            .chain(std::iter::once(&self.in_flight_control[..]))
            .map(IoSlice::new)
            .collect();
        let mut bufs = &mut slices[..];
        IoSlice::advance_slices(&mut bufs, self.written);
        while !bufs.is_empty() {
            let n = self
                .io
                .write_vectored(&bufs[..bufs.len().min(IOV_MAX)])
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += n;
            IoSlice::advance_slices(&mut bufs, n);
        }
        self.io.flush().await?;
        self.in_flight.clear();
        self.in_flight_control.clear();
        self.written = 0;
        Ok(())
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
    let outbox = reg.outbox;
    let kill = reg.kill;
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
                        let echo = Arc::new(Outgoing::new(opcode, data));
                        if !out.send(&mut socket, vec![echo], killed.as_mut()).await {
                            break;
                        }
                        None
                    }
                    Ok(Inbound::Message { data, .. }) if is_heartbeat(&data) => out.heartbeat(),
                    Ok(Inbound::Message { .. } | Inbound::Pong) => None,
                    Ok(Inbound::Ping(payload)) => Some(wire::control(wire::OP_PONG, &payload)),
                    Ok(Inbound::Close(code)) => {
                        // Echo the close (with its code) and end the connection.
                        let code = code.map(u16::to_be_bytes);
                        if send_close(&mut socket, code.as_ref().map_or(&[], |c| &c[..])).await {
                            let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, socket.io.shutdown())
                                .await;
                        }
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
            () = outbox.woken() => {
                if !out.batch(&mut socket, &outbox, killed.as_mut()).await {
                    break;
                }
            }
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
            Some(Err(_)) => write_blocked(self.kill, &self.shared.metrics, self.path),
        }
        let (code, reason) = self.kill.reason();
        close_with(socket, code, reason).await;
        false
    }

    /// Sends messages.
    #[cfg(feature = "test-hooks")]
    async fn send(
        &self,
        socket: &mut Socket,
        messages: Vec<Arc<Outgoing>>,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let written = self.guarded(killed, socket.send(messages, &[])).await;
        self.settle(socket, written).await
    }

    /// Sends a control frame (or the heartbeat answer).
    async fn control(
        &self,
        socket: &mut Socket,
        frame: &[u8],
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let written = self.guarded(killed, socket.send(Vec::new(), frame)).await;
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
        let messages = replay
            .into_iter()
            .map(|frame| Arc::new(Outgoing::text(frame)))
            .collect();
        let write = socket.send(messages, &[]);
        let written = self.guarded(killed, write).await;
        self.settle(socket, written).await
    }

    /// Writes the queued messages (at most [`BATCH_MAX`], more than one only while they hold
    /// fewer than `gather` bytes) with one vectored write: a socket that fell behind catches up with a few large
    /// writes instead of a system call per message. The messages are the broadcast's own
    /// bytes, shared by every socket (nothing is copied). Their bytes leave the queue's count
    /// once the write is over, written or not. What is left waits for the next turn of the
    /// socket's loop, after its reads: a `!`, Ping or Close is answered between two batches.
    async fn batch(
        &self,
        socket: &mut Socket,
        outbox: &Outbox,
        killed: Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let mut batch = Vec::new();
        let bytes = outbox.take(&mut batch, BATCH_MAX, self.gather);
        if batch.is_empty() {
            return true;
        }
        let count = batch.len() as u64;
        let written = self.guarded(killed, socket.send(batch, &[])).await;
        outbox.written(bytes);
        let sent = self.settle(socket, written).await;
        if sent {
            self.shared.metrics.count_delivered(count);
        }
        sent
    }
}

/// A close frame's payload: `code` and `reason`.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// Finishes a write left half-way and sends a close frame with `payload`, within
/// [`CLOSE_WRITE_TIMEOUT`]; `false` when that failed (then no close frame went out, and
/// none can: the connection is only good for ending).
async fn send_close(socket: &mut Socket, payload: &[u8]) -> bool {
    let frame = wire::control(wire::OP_CLOSE, payload);
    tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        socket.finish().await?;
        socket.send(Vec::new(), &frame).await
    })
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Sends a close frame (bounded in time), then reads until the peer's reply or a timeout, so
/// that the peer receives the frame before the TCP connection goes away.
async fn close_with(socket: &mut Socket, code: u16, reason: &'static str) {
    if !send_close(socket, &close_payload(code, reason)).await {
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
    if send_close(socket, &close_payload(code, reason)).await {
        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, socket.io.shutdown()).await;
    }
    let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
        let mut sink = [0; 1024];
        while matches!(socket.io.read(&mut sink).await, Ok(1..)) {}
    })
    .await;
}
