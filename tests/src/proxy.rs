//! A fault-injecting TCP proxy on 127.0.0.1, between a client and a gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the proxy does to the bytes of every connection, open or new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Keep TCP open but deliver nothing, either way: a network partition the OS does not
    /// notice. Like a real partition, the bytes (and a FIN) are held, not lost: when the fault
    /// is lifted they arrive, as TCP retransmission would deliver them.
    Blackhole,
    /// Forward everything after a fixed latency, each way.
    Delay(Duration),
    /// Forward one byte per write (the peer sees frames arrive in pieces).
    Slice,
    /// A hostile HTTP proxy: a new connection whose request asks for a WebSocket upgrade is
    /// answered `403 Forbidden` and closed; plain HTTP requests (an event stream too) pass.
    /// Connections open before stay as they are.
    RefuseUpgrades,
    /// The gateway is unreachable: new connections are reset at once (open ones stay; `cut`
    /// resets them).
    Down,
}

/// What a new connection gets under [`Fault::RefuseUpgrades`].
pub const UPGRADE_REFUSED: &[u8] = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\
    Content-Length: 28\r\nConnection: close\r\n\r\nWebSocket upgrades refused.\n";

/// Most bytes of a request head the proxy reads under [`Fault::RefuseUpgrades`].
const MAX_HEAD: usize = 16 * 1024;

impl std::str::FromStr for Fault {
    type Err = String;
    /// `pass`, `blackhole`, `slice`, `refuse-upgrades`, `down`, or `delay:<ms>`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "pass" => Ok(Fault::Pass),
            "blackhole" => Ok(Fault::Blackhole),
            "slice" => Ok(Fault::Slice),
            "refuse-upgrades" => Ok(Fault::RefuseUpgrades),
            "down" => Ok(Fault::Down),
            other => match other.strip_prefix("delay:").map(str::parse::<u64>) {
                Some(Ok(ms)) => Ok(Fault::Delay(Duration::from_millis(ms))),
                _ => Err(format!(
                    "unknown fault {other:?}: pass, blackhole, slice, refuse-upgrades, down, delay:<ms>"
                )),
            },
        }
    }
}

struct Shared {
    upstream: SocketAddr,
    fault: watch::Sender<Fault>,
    cut: watch::Sender<u64>,
    open: AtomicUsize,
    /// Upgrades refused under [`Fault::RefuseUpgrades`].
    refused: AtomicUsize,
}

/// The proxy. Listens on 127.0.0.1 (any free port) and stops when dropped.
pub struct FaultProxy {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` in [`Fault::Pass`].
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            fault: watch::channel(Fault::Pass).0,
            cut: watch::channel(0).0,
            open: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, s.clone()));
            }
        });
        Ok(FaultProxy {
            local_addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Applies `fault` to every open and future connection.
    pub fn set(&self, fault: Fault) {
        self.shared.fault.send_replace(fault);
    }

    /// Resets (RST) every open connection; new connections are accepted as before.
    pub fn cut(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// WebSocket upgrades answered 403 under [`Fault::RefuseUpgrades`] so far.
    pub fn refused_upgrades(&self) -> usize {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Connections open through the proxy now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Whether a request head asks for a WebSocket upgrade (`Upgrade: websocket`).
fn asks_upgrade(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    })
}

/// Reads a request head (up to the blank line, at most [`MAX_HEAD`] bytes, and what came with
/// it); `None` when the client went away first.
async fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

async fn connection(mut client: TcpStream, shared: Arc<Shared>) {
    let fault = *shared.fault.borrow();
    if fault == Fault::Down {
        #[allow(deprecated)]
        let _ = client.set_linger(Some(Duration::ZERO));
        return;
    }
    let mut head = Vec::new();
    if fault == Fault::RefuseUpgrades {
        let Some(read) = read_head(&mut client).await else {
            return;
        };
        if asks_upgrade(&read) {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            let _ = client.write_all(UPGRADE_REFUSED).await;
            let _ = client.shutdown().await;
            return;
        }
        head = read;
    }
    let Ok(mut upstream) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    if !head.is_empty() && upstream.write_all(&head).await.is_err() {
        return;
    }
    shared.open.fetch_add(1, Ordering::Relaxed);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let mut cut = shared.cut.subscribe();
    cut.borrow_and_update();
    let pumps = async {
        tokio::join!(
            pump(&mut cr, &mut uw, shared.fault.subscribe()),
            pump(&mut ur, &mut cw, shared.fault.subscribe()),
        )
    };
    let was_cut = tokio::select! {
        _ = pumps => false,
        _ = cut.changed() => true,
    };
    if was_cut {
        // SO_LINGER 0: closing sends RST instead of FIN. It does not block with a zero linger.
        #[allow(deprecated)]
        {
            let _ = cr.as_ref().set_linger(Some(Duration::ZERO));
            let _ = ur.as_ref().set_linger(Some(Duration::ZERO));
        }
    }
    shared.open.fetch_sub(1, Ordering::Relaxed);
}

/// Copies one direction under the current fault (read when each chunk is written). End of
/// stream is passed on like data: a closed connection is not something the proxy hides.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut fault: watch::Receiver<Fault>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async {
        loop {
            let chunk = rx.recv().await;
            // Hold everything, the end of stream too, while the link is blackholed.
            while *fault.borrow_and_update() == Fault::Blackhole {
                if fault.changed().await.is_err() {
                    return;
                }
            }
            let Some((read_at, bytes)) = chunk else {
                break;
            };
            let current = *fault.borrow();
            let written = match current {
                Fault::Slice => {
                    let mut r = Ok(());
                    for b in &bytes {
                        r = to.write_all(std::slice::from_ref(b)).await;
                        if r.is_err() {
                            break;
                        }
                    }
                    r
                }
                Fault::Delay(d) => {
                    tokio::time::sleep_until(read_at + d).await;
                    to.write_all(&bytes).await
                }
                Fault::Pass | Fault::Blackhole | Fault::RefuseUpgrades | Fault::Down => {
                    to.write_all(&bytes).await
                }
            };
            if written.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
