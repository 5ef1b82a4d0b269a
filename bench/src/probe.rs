//! The heartbeat probe: one extra socket on a thread and runtime of its own that sends `!`
//! every few milliseconds and records the round trip per step.
//!
//! The fleet's own `!` round trips include the time its 10k-socket runtime takes to get to the
//! reply (it reads every broadcast first, on the same two cores as the server). The probe
//! socket receives the same broadcasts, but its thread has nothing else to do, so its figure is
//! much closer to how fast the server answers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::fleet::{upgrade, Counted, Fleet, Stream, MAX_STEPS};
use crate::hist::Histogram;

/// Round trips longer than this count as unanswered (and end the wait).
const GIVE_UP: Duration = Duration::from_secs(5);

/// What the probe recorded.
pub struct Probe {
    /// `!` round trips per step, µs.
    pub steps: Vec<Histogram>,
    /// `!` not answered within 5 s.
    pub unanswered: AtomicU64,
    /// Connection failures.
    pub failures: AtomicU64,
}

impl Probe {
    /// Starts the probe thread: connects to `url` and sends `!` every `interval`, recording
    /// into the step the fleet is in.
    /// `addr` is the URL's address; `deflate`: offer permessage-deflate, as the fleet does.
    pub fn start(
        url: String,
        addr: SocketAddr,
        deflate: bool,
        interval: Duration,
        fleet: Arc<Fleet>,
    ) -> std::io::Result<Arc<Probe>> {
        let probe = Arc::new(Probe {
            steps: (0..MAX_STEPS).map(|_| Histogram::default()).collect(),
            unanswered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let p = probe.clone();
        std::thread::Builder::new()
            .name("probe".into())
            .spawn(move || runtime.block_on(run(p, url, addr, deflate, interval, fleet)))?;
        Ok(probe)
    }
}

async fn connect(url: &str, addr: SocketAddr, deflate: bool) -> Result<Ws, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    // Not counted with the fleet's bytes: a counter of its own.
    let stream = Counted::new(stream, Arc::default());
    let (request, stream) = upgrade(url, stream, deflate)?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

type Ws = tokio_tungstenite::WebSocketStream<Stream>;

async fn run(
    probe: Arc<Probe>,
    url: String,
    addr: SocketAddr,
    deflate: bool,
    interval: Duration,
    fleet: Arc<Fleet>,
) {
    loop {
        let mut ws = match connect(&url, addr, deflate).await {
            Ok(ws) => ws,
            Err(_) => {
                probe.failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'socket: loop {
            tick.tick().await;
            let sent = Instant::now();
            if ws.send(Message::text("!")).await.is_err() {
                break;
            }
            // Read (and drop) broadcasts until the reply.
            loop {
                let left = GIVE_UP.saturating_sub(sent.elapsed());
                match tokio::time::timeout(left, ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "!" => {
                        let step = fleet.current_step.load(Ordering::Relaxed);
                        probe.steps[step.min(MAX_STEPS - 1)]
                            .record(sent.elapsed().as_micros() as u64);
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(_) => break 'socket,
                    Err(_) => {
                        probe.unanswered.fetch_add(1, Ordering::Relaxed);
                        break 'socket;
                    }
                }
            }
        }
        probe.failures.fetch_add(1, Ordering::Relaxed);
    }
}
