//! A small HTTP proxy on 127.0.0.1:0 for tests: `CONNECT` tunnels and forwarded
//! absolute-form requests, Basic auth checked, counting what it did. Optionally over TLS.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::rustls;

/// What the proxy demands and refuses.
#[derive(Clone, Default)]
pub struct ProxyOptions {
    /// `(user, password)` required in `Proxy-Authorization: Basic`; else 407.
    pub auth: Option<(String, String)>,
    /// Answer every `CONNECT` with 403.
    pub forbid: bool,
    /// Serve the proxy itself over TLS (an `https://` proxy).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Default)]
pub struct Counters {
    /// `CONNECT` tunnels opened.
    pub tunnels: AtomicUsize,
    /// Absolute-form requests forwarded (REST to `http://` URLs).
    pub forwarded: AtomicUsize,
    /// Requests refused (407 or 403; the SOCKS proxy: wrong credentials).
    pub refused: AtomicUsize,
    /// The tunnels' targets, in order (`host:port`, as the client sent it).
    pub targets: Mutex<Vec<String>>,
}

/// Listens on 127.0.0.1:0 and runs `handle` on every connection (the test proxies' loop);
/// dropping the set stops it all.
pub async fn listen<F, Fut>(handle: F) -> (SocketAddr, JoinSet<()>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            connections.spawn(handle(stream));
            while connections.try_join_next().is_some() {}
        }
    });
    (addr, tasks)
}

/// The proxy; stops (and drops every connection) when dropped.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    tls: bool,
    _tasks: JoinSet<()>,
}

impl TestProxy {
    pub async fn start(options: ProxyOptions) -> TestProxy {
        let counters = Arc::new(Counters::default());
        let tls = options.tls.is_some();
        let c = counters.clone();
        let (addr, tasks) = listen(move |stream| {
            let (options, c) = (options.clone(), c.clone());
            async move {
                match &options.tls {
                    None => serve(stream, &options, &c).await,
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                        if let Ok(tls) = acceptor.accept(stream).await {
                            serve(tls, &options, &c).await;
                        }
                    }
                }
            }
        })
        .await;
        TestProxy {
            addr,
            counters,
            tls,
            _tasks: tasks,
        }
    }

    /// `http://127.0.0.1:port` (or `https://`), without credentials.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The URL with `user:password@`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{user}:{password}@{}", self.addr)
    }

    pub fn tunnels(&self) -> usize {
        self.counters.tunnels.load(Ordering::SeqCst)
    }

    pub fn forwarded(&self) -> usize {
        self.counters.forwarded.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.counters.refused.load(Ordering::SeqCst)
    }
}

/// A refusal as real proxies (Squid) send it: an HTML page on a kept-alive connection, which
/// stays open until the client closes it.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, status: &str, headers: &str) {
    let body = format!("<html><body><h1>{status}</h1></body></html>");
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Type: text/html\r\nContent-Length: {}\r\n\
         Connection: keep-alive\r\n\r\n",
        body.len()
    );
    if client.write_all(head.as_bytes()).await.is_err()
        || client.write_all(body.as_bytes()).await.is_err()
    {
        return;
    }
    let mut sink = [0u8; 1024];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    options: &ProxyOptions,
    c: &Counters,
) {
    // The request head; whatever follows it (a body) is kept.
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let rest = buf[head_end..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));

    if let Some((user, password)) = &options.auth {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let got = headers
            .iter()
            .find(|(k, _)| k == "proxy-authorization")
            .map(|(_, v)| v.as_str());
        if got != Some(want.as_str()) {
            c.refused.fetch_add(1, Ordering::SeqCst);
            refuse(
                client,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"test\"\r\n",
            )
            .await;
            return;
        }
    }

    if method == "CONNECT" {
        c.targets.lock().unwrap().push(target.to_owned());
        // Traffic stays on this machine.
        let local = target.starts_with("127.0.0.1:") || target.starts_with("localhost:");
        if options.forbid || !local {
            c.refused.fetch_add(1, Ordering::SeqCst);
            refuse(client, "403 Forbidden", "").await;
            return;
        }
        let Ok(mut upstream) = TcpStream::connect(target).await else {
            let _ = client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await;
            return;
        };
        c.tunnels.fetch_add(1, Ordering::SeqCst);
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let _ = upstream.write_all(&rest).await;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return;
    }

    // Absolute form: `GET http://127.0.0.1:port/path HTTP/1.1`.
    let Ok(url) = url::Url::parse(target) else {
        let _ = client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    };
    let upstream_addr = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(80)
    );
    if url.host_str() != Some("127.0.0.1") && url.host_str() != Some("localhost") {
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(&upstream_addr).await else {
        return;
    };
    c.forwarded.fetch_add(1, Ordering::SeqCst);
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        if !matches!(
            k.as_str(),
            "proxy-authorization" | "proxy-connection" | "connection" | "keep-alive"
        ) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("connection: close\r\n\r\n");
    if upstream.write_all(out.as_bytes()).await.is_err() || upstream.write_all(&rest).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
