//! The load generator's sockets: each one a task that keeps the `!` heartbeat and records the
//! stamped broadcasts it receives into per-thread statistics (no shared cache line per
//! message: the two cores are shared with the server under test).

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use moleculer_ws_client::deflate::{self, Inflate};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;

use crate::hist::Histogram;
use crate::stamp::Stamp;

/// Steps a run may have (index 0 is the idle phase).
pub const MAX_STEPS: usize = 48;

/// What one thread recorded for one step.
#[derive(Default)]
pub struct StepCounters {
    /// Publish-to-receive latency of broadcasts, µs.
    pub latency: Histogram,
    /// `!` round trips, µs.
    pub heartbeat: Histogram,
    /// Time of the last broadcast of this step received, µs since start.
    pub last_receive: AtomicU64,
    /// Broadcasts counted by counting sockets (`counting.rs`), which do not read the stamp:
    /// counted for the step in progress when they arrive.
    pub counted: AtomicU64,
}

/// One thread's counters.
pub struct ThreadStats {
    /// Per step.
    pub steps: Vec<StepCounters>,
    /// Broadcasts received with a sequence number not above the last one on the same socket.
    pub reordered: AtomicU64,
}

impl Default for ThreadStats {
    fn default() -> Self {
        Self {
            steps: (0..MAX_STEPS).map(|_| StepCounters::default()).collect(),
            reordered: AtomicU64::new(0),
        }
    }
}

thread_local! {
    static LOCAL: OnceLock<Arc<ThreadStats>> = const { OnceLock::new() };
}

/// Everything the sockets share with the driver of the run.
pub struct Fleet {
    start: Instant,
    threads: Mutex<Vec<Arc<ThreadStats>>>,
    /// Step whose heartbeat histogram receives round trips now.
    pub current_step: AtomicUsize,
    /// Sockets open now.
    pub open: AtomicUsize,
    /// Upgrades that failed.
    pub connect_failures: AtomicU64,
    /// Sockets that were open and then closed or failed.
    pub closed: AtomicU64,
    /// `!` sent while the previous one was still unanswered.
    pub heartbeats_unanswered: AtomicU64,
    /// Broadcasts received on a socket of another path than the one they were sent to.
    pub misdelivered: AtomicU64,
    /// Sockets open now, per path.
    pub open_per_path: Vec<AtomicUsize>,
    /// The first errors seen, for the report.
    pub errors: Mutex<Vec<String>>,
    /// Bytes the sockets read from their connections (frames as sent, compressed or not).
    pub wire_bytes: Arc<AtomicU64>,
}

/// A connection that adds the bytes it reads to a counter: what came over the wire, whatever
/// the layers above make of it.
pub struct Counted {
    inner: TcpStream,
    bytes: Arc<AtomicU64>,
}

impl Counted {
    /// Counts what `inner` reads into `bytes`.
    pub fn new(inner: TcpStream, bytes: Arc<AtomicU64>) -> Self {
        Self { inner, bytes }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How sockets connect.
#[derive(Clone)]
pub struct ConnectSpec {
    /// The `ws://` URL of each path; socket `id` connects to `urls[id % urls.len()]`.
    pub urls: Vec<String>,
    /// Its address.
    pub addr: SocketAddr,
    /// Source addresses to spread sockets over (127.0.0.x).
    pub sources: Vec<Ipv4Addr>,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Offer permessage-deflate (and inflate what comes compressed).
    pub deflate: bool,
    /// Every this many sockets one reads every message (stamp, latency, order, this file's
    /// [`run_socket`]); the others only count frames (`counting.rs`). 1: all read.
    pub read_every: usize,
}

impl ConnectSpec {
    /// The source address and the path (index of `urls`) of connection `id`.
    pub(crate) fn slot(&self, id: usize) -> (Ipv4Addr, usize) {
        (self.sources[id % self.sources.len()], id % self.urls.len())
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new(1)
    }
}

impl Fleet {
    /// A fleet whose sockets are spread over `paths` paths.
    pub fn new(paths: usize) -> Self {
        Self {
            start: Instant::now(),
            threads: Mutex::default(),
            current_step: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            connect_failures: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            heartbeats_unanswered: AtomicU64::new(0),
            misdelivered: AtomicU64::new(0),
            open_per_path: (0..paths.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            errors: Mutex::default(),
            wire_bytes: Arc::default(),
        }
    }

    /// Microseconds since the fleet was made (the stamp clock).
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub(crate) fn local(&self) -> Arc<ThreadStats> {
        LOCAL.with(|l| {
            l.get_or_init(|| {
                let s = Arc::new(ThreadStats::default());
                self.threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(s.clone());
                s
            })
            .clone()
        })
    }

    /// Every thread's counters.
    pub fn threads(&self) -> Vec<Arc<ThreadStats>> {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Merged latency and heartbeat histograms of `step`, and the last receive time.
    pub fn step(&self, step: usize) -> (Histogram, Histogram, u64) {
        let (lat, hb) = (Histogram::default(), Histogram::default());
        let mut last = 0;
        for t in self.threads() {
            let s = &t.steps[step];
            lat.merge(&s.latency);
            hb.merge(&s.heartbeat);
            last = last.max(s.last_receive.load(Ordering::Relaxed));
        }
        (lat, hb, last)
    }

    /// Broadcasts of `step` received so far, all threads: read and counted.
    pub fn received(&self, step: usize) -> u64 {
        self.threads()
            .iter()
            .map(|t| t.steps[step].latency.count() + t.steps[step].counted.load(Ordering::Relaxed))
            .sum()
    }

    /// Broadcasts of `step` that counting sockets counted, all threads.
    pub fn counted(&self, step: usize) -> u64 {
        self.threads()
            .iter()
            .map(|t| t.steps[step].counted.load(Ordering::Relaxed))
            .sum()
    }

    /// Reordered broadcasts, all threads.
    pub fn reordered(&self) -> u64 {
        self.threads()
            .iter()
            .map(|t| t.reordered.load(Ordering::Relaxed))
            .sum()
    }

    /// A connection that did not open: counted, and its error kept.
    pub(crate) fn failed(&self, e: String) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
        self.error(e);
    }

    /// A connection at `path` opened.
    pub(crate) fn opened(&self, path: usize) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.open_per_path[path].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection at `path` that was open ended, for `reason`.
    pub(crate) fn ended(&self, path: usize, reason: String) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.open_per_path[path].fetch_sub(1, Ordering::Relaxed);
        self.closed.fetch_add(1, Ordering::Relaxed);
        self.error(reason);
    }

    pub(crate) fn error(&self, e: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < 10 {
            errors.push(e);
        }
    }
}

/// A socket's connection: plain, or under the client crate's permessage-deflate layer.
pub type Stream = Either<Counted, Inflate<Counted>>;

type Ws = WebSocketStream<Stream>;

/// The upgrade request for `url` and the connection to send it over; `deflate`: the request
/// offers permessage-deflate.
pub fn upgrade(
    url: &str,
    stream: Counted,
    deflate: bool,
) -> Result<
    (
        tokio_tungstenite::tungstenite::handshake::client::Request,
        Stream,
    ),
    String,
> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if !deflate {
        return Ok((request, Either::Left(stream)));
    }
    request.headers_mut().insert(
        "Sec-WebSocket-Extensions",
        HeaderValue::from_static(deflate::OFFER),
    );
    Ok((
        request,
        Either::Right(Inflate::new(stream, true, deflate::MAX_MESSAGE)),
    ))
}

/// A TCP connection to the server from `source`.
pub(crate) async fn tcp(spec: &ConnectSpec, source: Ipv4Addr) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(source.into(), 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(spec.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

async fn connect(
    spec: &ConnectSpec,
    url: &str,
    source: Ipv4Addr,
    wire_bytes: Arc<AtomicU64>,
) -> Result<Ws, String> {
    let stream = tcp(spec, source).await?;
    // Small buffers: the generator holds up to 19k sockets and only reads small frames.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let stream = Counted::new(stream, wire_bytes);
    let (request, stream) = upgrade(url, stream, spec.deflate)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    Ok(ws)
}

/// A broadcast a reading socket at `path` received: its latency, and its order after
/// `last_seq` (the socket's last sequence number), recorded from its stamp.
pub(crate) fn receive(
    fleet: &Fleet,
    stats: &ThreadStats,
    path: usize,
    text: &str,
    last_seq: &mut u64,
) {
    let Some(stamp) = Stamp::parse(text) else {
        return;
    };
    if stamp.path as usize != path {
        fleet.misdelivered.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let now = fleet.now_us();
    let step = &stats.steps[(stamp.step as usize).min(MAX_STEPS - 1)];
    step.latency.record(now.saturating_sub(stamp.micros));
    step.last_receive.fetch_max(now, Ordering::Relaxed);
    if stamp.seq <= *last_seq {
        stats.reordered.fetch_add(1, Ordering::Relaxed);
    } else {
        *last_seq = stamp.seq;
    }
}

/// When socket `id` sends its first `!`: the fleet's heartbeats spread evenly over one period.
pub(crate) fn first_beat(spec: &ConnectSpec, id: usize) -> tokio::time::Instant {
    let phase = spec
        .heartbeat
        .mul_f64((id.wrapping_mul(7919) % 1000) as f64 / 1000.0);
    tokio::time::Instant::now() + phase
}

/// Opens socket number `id` (after taking a permit of `gate`) and runs it until the server
/// closes it or the process exits.
pub async fn run_socket(
    fleet: Arc<Fleet>,
    spec: Arc<ConnectSpec>,
    id: usize,
    gate: Arc<Semaphore>,
) {
    let (source, path) = spec.slot(id);
    let permit = gate.acquire().await;
    let mut ws = match connect(&spec, &spec.urls[path], source, fleet.wire_bytes.clone()).await {
        Ok(ws) => ws,
        Err(e) => return fleet.failed(e),
    };
    drop(permit);
    fleet.opened(path);
    let stats = fleet.local();
    let mut next_beat = first_beat(&spec, id);
    let beat = tokio::time::sleep_until(next_beat);
    tokio::pin!(beat);
    let mut beat_sent: Option<Instant> = None;
    let mut last_seq = 0u64;
    let reason = loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str() == "!" {
                        if let Some(sent) = beat_sent.take() {
                            let step = fleet.current_step.load(Ordering::Relaxed);
                            stats.steps[step].heartbeat.record(sent.elapsed().as_micros() as u64);
                        }
                    } else {
                        receive(&fleet, &stats, path, text.as_str(), &mut last_seq);
                    }
                }
                Some(Ok(Message::Close(frame))) => break format!("closed by server: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("read: {e}"),
                None => break "stream ended".to_owned(),
            },
            () = &mut beat => {
                if beat_sent.is_some() {
                    fleet.heartbeats_unanswered.fetch_add(1, Ordering::Relaxed);
                }
                let now = Instant::now();
                if let Err(e) = ws.send(Message::text("!")).await {
                    break format!("heartbeat: {e}");
                }
                beat_sent = Some(now);
                next_beat += spec.heartbeat;
                beat.as_mut().reset(next_beat);
            }
        }
    };
    fleet.ended(path, reason);
}
