//! The accept loop: HTTP/1 connections with a handshake timeout and a header size limit,
//! WebSocket upgrades, back-off when file descriptors run out, and a graceful stop.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::slots::ConnPermit;
use crate::state::Shared;
use crate::tls::Conn;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// How long a client may take to send its request head (slowloris guard).
    pub handshake_timeout: Duration,
    /// Largest request head (request line + headers), in bytes (at least 8192).
    pub max_header_size: usize,
    /// How long a graceful stop waits for open HTTP requests.
    pub drain: Duration,
    /// Most connections served at once before they are upgraded (0: no limit).
    pub max_connections: usize,
}

/// What a connection over the limit gets before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
    Content-Length: 0\r\nConnection: close\r\n\r\n";

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts until `stop` fires, then waits (at most `limits.drain`) for open requests. With
/// `tls`, every connection first completes a TLS handshake (within the handshake timeout).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
    shared: Arc<Shared>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(if limits.max_connections == 0 {
        Semaphore::MAX_PERMITS
    } else {
        limits.max_connections
    }));
    let mut backoff = BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut stop => break,
            r = listener.accept() => r,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => {
                backoff = BACKOFF_MIN;
                pair
            }
            Err(e) if is_resource_exhaustion(&e) => {
                // EMFILE/ENFILE/ENOMEM: accepting again at once would spin. Wait, then retry;
                // open sockets keep being served meanwhile.
                tracing::warn!(error = %e, ?backoff, "accept failed: out of resources, backing off");
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Over the limit: a short answer if the socket takes it now, never a wait.
            shared
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%remote, "connection refused: too many open HTTP connections");
            let _ = stream.try_write(REFUSED);
            continue;
        };
        shared
            .metrics
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let permit = ConnPermit::new(permit);
        let service =
            TowerToHyperService::new(per_connection(router.clone(), remote, permit.clone()));
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let stream = match tls {
                None => Conn::Left(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => Conn::Right(Box::new(tls)),
                        Ok(Err(e)) => {
                            tracing::debug!(%remote, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%remote, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.handshake_timeout)
                .max_buf_size(limits.max_header_size.max(8192));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
            // Held until the connection is done with HTTP (closed or upgraded: a WebSocket
            // counts under the socket limits from then on, as does an event stream, which
            // gives the permit back when it opens).
            permit.release();
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: open requests did not finish in time");
    }
}

/// The router with the peer's address (as axum's `ConnectInfo`) and the connection's permit in
/// every request.
fn per_connection(
    router: Router,
    remote: SocketAddr,
    permit: ConnPermit,
) -> impl tower::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(remote));
        req.extensions_mut().insert(permit.clone());
        router.clone().oneshot(req)
    })
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux.
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}
