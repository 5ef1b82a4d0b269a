//! Event streams (Server-Sent Events, docs/protocol.md section 6.7): a `GET` on a path that
//! accepts `text/event-stream` opens a stream registered at that path like a WebSocket (the
//! same checks, [`crate::admit`]), for clients whose proxies refuse the upgrade.
//!
//! One task per stream, like a socket's: it writes the recovery status and replay, then what
//! is queued for it (a batch at a time, each message's event built once for every stream of
//! the path, [`crate::wire::Outgoing::event`]) and a keep-alive when nothing was written for
//! the keep-alive period (a comment, or `data: !` for a stream that asked for frames,
//! [`crate::wire::sse`]). It hands its bytes to the response body through a channel of one chunk;
//! a chunk that waits past the write timeout (the client stopped reading) makes the stream a
//! slow consumer, as a socket would be. A stream the gateway ends gets the event `close` with
//! the close code a socket would get, then the end of the response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::admit::{self, Admitted};
use crate::outbox::Outbox;
use crate::recovery::RecoverRequest;
use crate::registry::{write_blocked, Kill};
use crate::slots::ConnPermit;
use crate::state::Shared;
use crate::wire::sse::{self as event, KEEP_ALIVE, KEEP_ALIVE_FRAME};

/// How long the `close` event may wait to be taken by the response.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Most queued messages written as one chunk.
const BATCH_MAX: usize = 64;

/// Whether a request opens an event stream: a `GET` that accepts `text/event-stream`.
pub(crate) fn is_event_stream<B>(req: &Request<B>) -> bool {
    req.method() == Method::GET
        && req.headers().get_all(header::ACCEPT).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',').any(|t| {
                    t.split(';')
                        .next()
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
                })
            })
        })
}

/// Opens an event stream: the checks of every connection at a path, then `200` with the
/// stream as its body.
pub(crate) async fn open(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let (parts, _body) = req.into_parts();
    let path = match admit::path_of(&shared, &parts) {
        Ok(path) => path,
        Err(refused) => return refused,
    };
    let query = parts.uri.query().unwrap_or_default();
    // This project's clients ask for the WebSocket's frames.
    let frames = form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "frames" && v == "1");
    let recover = RecoverRequest::from_query(query).map(|r| {
        r.with_last_event_id(
            parts
                .headers
                .get("last-event-id")
                .map(HeaderValue::as_bytes),
        )
    });
    let admitted = match admit::admit(&shared, path, &parts, recover).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    // The stream counts under the socket limits from now on, not as a plain connection.
    if let Some(permit) = parts.extensions.get::<ConnPermit>() {
        permit.release();
    }
    shared
        .metrics
        .streams_opened
        .fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(run_stream(shared, tx, admitted, frames));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(chunk), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        // The connection ends with the stream: it was given back as a plain connection.
        .header(header::CONNECTION, "close")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

/// One stream's life: its status and replay, then what is queued for it and the keep-alives,
/// until the gateway ends it or the client goes away.
/// `frames`: the stream asked for the WebSocket's frames as its events.
async fn run_stream(
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bytes>,
    admitted: Admitted,
    frames: bool,
) {
    let Admitted {
        reg,
        replay,
        guard,
        slot: _slot,
    } = admitted;
    let path = guard.path.as_str();
    tracing::debug!(path, id = reg.id, "event stream open");
    let out = Stream {
        shared: &shared,
        kill: &reg.kill,
        path,
        tx: &tx,
        write_timeout: shared.config.write_timeout,
        gather: shared.config.ws_write_buffer,
        frames,
    };
    let killed = reg.kill.wait();
    tokio::pin!(killed);
    // A keep-alive first, so that the answer's head goes out at once; then the replay.
    let keep_alive: &'static [u8] = if frames { KEEP_ALIVE_FRAME } else { KEEP_ALIVE };
    let encode = if frames {
        event::encode_frame
    } else {
        event::encode
    };
    let mut first = BytesMut::from(keep_alive);
    for frame in &replay {
        first.extend_from_slice(&encode(frame.as_bytes()));
    }
    drop(replay);
    let period = shared.config.event_stream_keep_alive;
    let beat = tokio::time::sleep(period);
    tokio::pin!(beat);
    let mut ok = out.write(first.freeze(), killed.as_mut()).await;
    while ok {
        ok = tokio::select! {
            biased;
            () = &mut killed => {
                out.close().await;
                false
            }
            () = tx.closed() => false,
            () = &mut beat => out.write(Bytes::from_static(keep_alive), killed.as_mut()).await,
            () = reg.outbox.woken() => out.batch(&reg.outbox, killed.as_mut()).await,
        };
        beat.as_mut().reset(tokio::time::Instant::now() + period);
    }
    tracing::debug!(path, id = guard.id, "event stream closed");
}

/// The writing side of one stream's task (as `Outbound` is a socket's).
struct Stream<'a> {
    shared: &'a Shared,
    kill: &'a Kill,
    path: &'a str,
    tx: &'a mpsc::Sender<Bytes>,
    write_timeout: Duration,
    /// Most bytes gathered into one chunk (at least one message).
    gather: usize,
    /// The stream asked for frames.
    frames: bool,
}

impl Stream<'_> {
    /// Hands `chunk` to the response: `false` when the stream ends instead (the client went
    /// away; the stream was told to close meanwhile; or the chunk waited past the write
    /// timeout, and the stream is closed as a slow consumer).
    async fn write(&self, chunk: Bytes, killed: Pin<&mut impl Future<Output = ()>>) -> bool {
        let sent = tokio::select! {
            biased;
            () = killed => None,
            sent = tokio::time::timeout(self.write_timeout, self.tx.send(chunk)) => Some(sent),
        };
        match sent {
            Some(Ok(Ok(()))) => return true,
            Some(Ok(Err(_))) => return false,
            None => {}
            Some(Err(_)) => write_blocked(self.kill, &self.shared.metrics, self.path),
        }
        self.close().await;
        false
    }

    /// Writes the queued messages (at most [`BATCH_MAX`], more than one only while they hold
    /// fewer than `gather` bytes) as one chunk: one message's shared event as it is, several
    /// copied together.
    async fn batch(&self, outbox: &Outbox, killed: Pin<&mut impl Future<Output = ()>>) -> bool {
        let mut batch = Vec::new();
        let bytes = outbox.take(&mut batch, BATCH_MAX, self.gather);
        let chunk = match &batch[..] {
            [] => return true,
            [one] => one.event(self.frames),
            many => {
                let mut chunk = BytesMut::new();
                for m in many {
                    chunk.extend_from_slice(&m.event(self.frames));
                }
                chunk.freeze()
            }
        };
        let count = batch.len() as u64;
        drop(batch);
        let sent = self.write(chunk, killed).await;
        outbox.written(bytes);
        if sent {
            self.shared.metrics.count_delivered(count);
        }
        sent
    }

    /// The `close` event with the code the stream was told to close with (bounded in time: a
    /// slow consumer's is dropped when the response does not take it).
    async fn close(&self) {
        let (code, reason) = self.kill.reason();
        let _ = tokio::time::timeout(
            CLOSE_WRITE_TIMEOUT,
            self.tx.send(event::close(code, reason, self.frames)),
        )
        .await;
    }
}
