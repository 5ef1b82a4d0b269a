//! A round-robin TCP balancer on 127.0.0.1, in front of several gateways: what an operator
//! puts before a cluster (the rolling-restart test). Each new connection goes to the next
//! backend that accepts it; a backend that refuses (stopped, restarting) is skipped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a connection attempt to one backend may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The balancer. Listens on 127.0.0.1 (any free port) and stops accepting when dropped
/// (connections already made run on until either side closes).
pub struct Balancer {
    local_addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Starts a balancer in front of `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> std::io::Result<Balancer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (backends, next) = (backends.clone(), next.clone());
                tokio::spawn(async move {
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    for i in 0..backends.len() {
                        let backend = backends[(first + i) % backends.len()];
                        let connect = TcpStream::connect(backend);
                        if let Ok(Ok(upstream)) =
                            tokio::time::timeout(CONNECT_TIMEOUT, connect).await
                        {
                            forward(client, upstream).await;
                            return;
                        }
                    }
                    // No backend: the client's connection closes.
                });
            }
        });
        Ok(Balancer { local_addr, accept })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(mut client: TcpStream, mut upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
