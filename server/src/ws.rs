//! WebSocket side: the upgrade (path, filter, limits) and one task per socket.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::FromRequestParts;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use percent_encoding::percent_decode_str;
use tokio::sync::mpsc;

use crate::error::MoleculerError;
use crate::filter::ConnectRequest;
use crate::gateway::Shared;
use crate::registry::{Kill, Registration, CLOSE_GOING_AWAY, CLOSE_SLOW_CONSUMER};
use crate::slots::Slot;

/// How long a close frame may take to write, and how long we then wait for the peer's reply.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Close codes for inbound faults.
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_POLICY: u16 = 1008;

/// Whether a request asks for a WebSocket upgrade (on any path).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(axum::http::header::UPGRADE)
        .iter()
        .any(|v| {
            v.to_str()
                .is_ok_and(|s| s.eq_ignore_ascii_case("websocket"))
        })
}

/// The registry key of a request path: percent-decoded, leading slash, no query.
pub(crate) fn registry_path(raw_path: &str) -> Option<String> {
    let decoded = percent_decode_str(raw_path).decode_utf8().ok()?;
    Some(if decoded.starts_with('/') {
        decoded.into_owned()
    } else {
        format!("/{decoded}")
    })
}

/// Handles an upgrade request: checks the filter, then hands the socket to its task.
pub(crate) async fn upgrade(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let (mut parts, _body) = req.into_parts();
    let Some(path) = registry_path(parts.uri.path()) else {
        let err = MoleculerError::bad_request("The path is not valid UTF-8.", "INVALID_PATH");
        return shared.error_response(&err);
    };
    let connect = ConnectRequest {
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        remote_addr: crate::forwarded::remote_addr(
            &parts.headers,
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ci| ci.0),
            shared.config.trust_proxy,
        ),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let slot = match shared.slots.acquire(connect.remote_addr.map(|a| a.ip())) {
        Ok(slot) => slot,
        Err(refusal) => {
            shared.metrics.refused_limit.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path, remote = ?connect.remote_addr, ?refusal, "upgrade refused: socket limit");
            let err = MoleculerError::new(
                "ServiceUnavailableError",
                "Too many WebSocket connections; try again later.",
                503,
                "SERVICE_UNAVAILABLE",
            )
            .retryable(true);
            return shared.error_response(&err);
        }
    };
    if let Some(filter) = &shared.filter {
        if !filter.on_connect(&connect).await {
            shared.metrics.refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(path, remote = ?connect.remote_addr, "upgrade refused by the filter");
            let err = MoleculerError::forbidden("The WebSocket connection was refused.");
            let mut resp = shared.error_response(&err);
            *resp.status_mut() = StatusCode::FORBIDDEN;
            return resp;
        }
    }
    // Register before the 101 goes out: a client that sees the upgrade succeed may trigger a
    // broadcast at once, and it must reach this socket (queued until the task runs). If the
    // upgrade fails, dropping the guard removes the registration again.
    // A client that opted into message recovery (README "Message recovery") is registered
    // with the history locked, and first gets its status frame and replay.
    let recover = crate::recovery::RecoverRequest::from_query(&connect.query);
    let (reg, replay) = match &recover {
        Some(request) => shared.recovery.register(
            &shared.registry,
            &path,
            shared.config.outbound_queue,
            request,
        ),
        None => (
            shared
                .registry
                .register(&path, shared.config.outbound_queue),
            Vec::new(),
        ),
    };
    let guard = Registered {
        shared: shared.clone(),
        path,
        id: reg.id,
        recover: recover.is_some(),
    };
    let limit = shared.config.max_message_size;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(shared.config.ws_read_buffer)
        .write_buffer_size(shared.config.ws_write_buffer)
        .on_upgrade(move |socket| run_socket(shared, socket, reg, replay, guard, slot))
}

/// Counts inbound frames in one-second windows.
struct FrameRate {
    max: u32,
    window: tokio::time::Instant,
    count: u32,
}

impl FrameRate {
    /// Whether one more frame now stays within the limit (always, when the limit is 0).
    fn allow(&mut self) -> bool {
        if self.max == 0 {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.max
    }
}

/// A socket's place in the registry; dropping it deregisters the socket at once (close, error,
/// TCP loss, or an upgrade that never completed).
struct Registered {
    shared: Arc<Shared>,
    path: String,
    id: u64,
    /// Opted into message recovery: holds the path's history.
    recover: bool,
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
async fn run_socket(
    shared: Arc<Shared>,
    mut socket: WebSocket,
    reg: Registration,
    replay: Vec<Utf8Bytes>,
    guard: Registered,
    _slot: Slot,
) {
    let path = guard.path.as_str();
    tracing::debug!(path, id = reg.id, "socket open");
    if !send_replay(&mut socket, replay, &reg.kill, shared.config.write_timeout).await {
        return;
    }
    let mut rx = reg.rx;
    let kill = reg.kill;
    let queued = reg.queued;
    let write_timeout = shared.config.write_timeout;
    let killed = kill.wait();
    tokio::pin!(killed);
    let mut rate = FrameRate {
        max: shared.config.max_frames_per_second,
        window: tokio::time::Instant::now(),
        count: 0,
    };
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
            inbound = socket.recv() => {
                if matches!(inbound, Some(Ok(_))) {
                    if let Some(limit) = idle_limit {
                        idle.as_mut().reset(tokio::time::Instant::now() + limit);
                    }
                    if !rate.allow() {
                        shared.metrics.flooded.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(path, "closing socket: too many frames per second");
                        close_with(&mut socket, CLOSE_POLICY, "too many frames").await;
                        break;
                    }
                }
                match inbound {
                None => break,
                Some(Ok(Message::Text(t))) if t.as_str().starts_with('!') => {
                    if !reply_heartbeat(&shared, &mut socket, &kill, write_timeout).await {
                        break;
                    }
                }
                Some(Ok(Message::Binary(b))) if b.first() == Some(&b'!') => {
                    if !reply_heartbeat(&shared, &mut socket, &kill, write_timeout).await {
                        break;
                    }
                }
                // Echo mode (protocol test suites only): data messages go back as they came.
                Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) if shared.config.echo => {
                    if !send_or_killed(&mut socket, msg, &kill, write_timeout).await {
                        break;
                    }
                }
                // Pings are answered with the same payload by the protocol layer; a Close is
                // echoed by it too: keep reading so that the echo is flushed and the stream ends.
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if let Some((code, reason)) = close_code_for(&e) {
                        if code == CLOSE_TOO_BIG {
                            shared.metrics.oversized.fetch_add(1, Ordering::Relaxed);
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
                    let batch = send_batch(&mut socket, &mut rx, text, &kill, killed.as_mut(), write_timeout).await;
                    queued.fetch_sub(batch.bytes, Ordering::Relaxed);
                    if !batch.sent {
                        break;
                    }
                    shared.metrics.delivered.fetch_add(batch.messages, Ordering::Relaxed);
                }
                None => break,
            },
        }
    }
    tracing::debug!(path, id = guard.id, "socket closed");
}

/// Writes the recovery status frame and replay (empty for other sockets) before anything that
/// is queued; gives up like [`send_or_killed`].
async fn send_replay(
    socket: &mut WebSocket,
    replay: Vec<Utf8Bytes>,
    kill: &Kill,
    write_timeout: Duration,
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
    let written = tokio::select! {
        biased;
        _ = kill.wait() => None,
        w = tokio::time::timeout(write_timeout, write) => Some(w),
    };
    match written {
        Some(Ok(r)) => r.is_ok(),
        None => {
            let (code, reason) = kill.reason();
            close_with(socket, code, reason).await;
            false
        }
        Some(Err(_)) => {
            tracing::warn!("closing slow consumer: the replay blocked for {write_timeout:?}");
            kill.close(CLOSE_SLOW_CONSUMER, "slow consumer");
            close_with(socket, CLOSE_SLOW_CONSUMER, "slow consumer").await;
            false
        }
    }
}

async fn reply_heartbeat(
    shared: &Shared,
    socket: &mut WebSocket,
    kill: &Kill,
    write_timeout: Duration,
) -> bool {
    if !shared.heartbeat_replies.load(Ordering::Relaxed) {
        return true;
    }
    shared.metrics.heartbeats.fetch_add(1, Ordering::Relaxed);
    let bang = Message::Text(Utf8Bytes::from_static("!"));
    send_or_killed(socket, bang, kill, write_timeout).await
}

/// Sends one message; gives up (false) on a write error, when the socket is told to close
/// while the write waits, or when the write blocks longer than `write_timeout` (a client that
/// stopped reading: a slow consumer). In the last two cases it sends the close frame itself.
async fn send_or_killed(
    socket: &mut WebSocket,
    msg: Message,
    kill: &Kill,
    write_timeout: Duration,
) -> bool {
    tokio::select! {
        biased;
        _ = kill.wait() => {
            let (code, reason) = kill.reason();
            close_with(socket, code, reason).await;
            false
        }
        sent = tokio::time::timeout(write_timeout, socket.send(msg)) => match sent {
            Ok(r) => r.is_ok(),
            Err(_) => {
                tracing::warn!("closing slow consumer: a write blocked for {write_timeout:?}");
                kill.close(CLOSE_SLOW_CONSUMER, "slow consumer");
                close_with(socket, CLOSE_SLOW_CONSUMER, "slow consumer").await;
                false
            }
        },
    }
}

/// Most queued messages written with one flush.
const BATCH_MAX: u64 = 64;

/// What [`send_batch`] took from the queue, and whether it was written.
struct Batch {
    messages: u64,
    bytes: usize,
    sent: bool,
}

/// Writes `first` and the messages already queued behind it (at most [`BATCH_MAX`]) with one
/// flush: a socket that fell behind catches up with a few large writes instead of a system
/// call per message. Gives up like [`send_or_killed`] (write error, kill, or the batch blocked
/// longer than `write_timeout`); `killed` is the socket's pinned [`Kill::wait`], polled here
/// instead of registering a new waiter per write.
async fn send_batch(
    socket: &mut WebSocket,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    first: Utf8Bytes,
    kill: &Kill,
    killed: Pin<&mut impl Future<Output = ()>>,
    write_timeout: Duration,
) -> Batch {
    let mut batch = Batch {
        messages: 1,
        bytes: first.len(),
        sent: false,
    };
    let write = async {
        socket.feed(Message::Text(first)).await?;
        while batch.messages < BATCH_MAX {
            let Ok(next) = rx.try_recv() else { break };
            batch.messages += 1;
            batch.bytes += next.len();
            socket.feed(Message::Text(next)).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        biased;
        () = killed => {
            let (code, reason) = kill.reason();
            close_with(socket, code, reason).await;
        }
        written = tokio::time::timeout(write_timeout, write) => match written {
            Ok(r) => batch.sent = r.is_ok(),
            Err(_) => {
                tracing::warn!("closing slow consumer: a write blocked for {write_timeout:?}");
                kill.close(CLOSE_SLOW_CONSUMER, "slow consumer");
                close_with(socket, CLOSE_SLOW_CONSUMER, "slow consumer").await;
            }
        },
    }
    batch
}

/// Sends a close frame (bounded in time), then reads until the peer's reply or a timeout, so
/// that the peer receives the frame before the TCP connection goes away.
async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
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
        while let Some(r) = socket.recv().await {
            if r.is_err() {
                break;
            }
        }
    })
    .await;
}

/// The close code for an inbound fault; `None` for transport errors (nothing to tell the peer).
fn close_code_for(err: &axum::Error) -> Option<(u16, &'static str)> {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(t) = e.downcast_ref::<tungstenite::Error>() {
            return match t {
                tungstenite::Error::Capacity(_) => Some((CLOSE_TOO_BIG, "message too big")),
                tungstenite::Error::Utf8(_) => Some((CLOSE_INVALID_DATA, "invalid UTF-8")),
                tungstenite::Error::Protocol(_) => Some((CLOSE_PROTOCOL_ERROR, "protocol error")),
                _ => None,
            };
        }
        source = e.source();
    }
    None
}
