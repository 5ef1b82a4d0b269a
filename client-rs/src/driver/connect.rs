//! The byte stream under a WebSocket: TCP to the gateway, or a `CONNECT` tunnel through an
//! HTTP proxy (itself over TLS for an `https://` proxy); then the TLS to the gateway and the
//! upgrade, with the client's own TLS configuration.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;
use url::Url;

use crate::net::proxy::ProxyServer;
use crate::net::Network;
use crate::session::ConnectFailure;

/// The largest proxy answer head read.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// A TLS stream over `S` (with the feature `rustls`; without it never built, and `S` itself
/// stands in for the type).
#[cfg(feature = "rustls")]
type Tls<S> = Box<tokio_rustls::client::TlsStream<S>>;
#[cfg(not(feature = "rustls"))]
type Tls<S> = S;

/// TCP, or TCP with TLS to an `https://` proxy.
pub(crate) type Stream = Either<TcpStream, Tls<TcpStream>>;

/// What the WebSocket runs on: the stream, or TLS to the gateway over it (`wss://`).
pub(crate) type WsTransport = Either<Stream, Tls<Stream>>;

/// The target's host (IPv6 without brackets), its authority for `CONNECT`, and its port.
fn target(url: &Url) -> Result<(String, String, u16), ConnectFailure> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ConnectFailure::Transport(format!("{url}: no port")))?;
    let (host, authority) = match url.host() {
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), format!("[{ip}]:{port}")),
        Some(h) => (h.to_string(), format!("{h}:{port}")),
        None => return Err(ConnectFailure::Transport(format!("{url}: no host"))),
    };
    Ok((host, authority, port))
}

/// Opens the stream to `url`'s host: directly, or through the proxy the rules pick.
pub(crate) async fn transport(url: &Url, net: &Network) -> Result<Stream, ConnectFailure> {
    let (host, authority, port) = target(url)?;
    let Some(proxy) = net.proxy.for_url(url) else {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                ConnectFailure::Transport(format!("cannot connect to {authority}: {e}"))
            })?;
        let _ = tcp.set_nodelay(true);
        return Ok(Either::Left(tcp));
    };
    let unreachable = |e: String| ConnectFailure::Proxy {
        status: None,
        message: format!("cannot reach the proxy {proxy}: {e}"),
    };
    let tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut stream = if proxy.tls {
        tls_to_proxy(tcp, proxy, net).await?
    } else {
        Either::Left(tcp)
    };
    tunnel(&mut stream, proxy, &authority).await?;
    Ok(stream)
}

#[cfg(feature = "rustls")]
async fn tls_to_proxy(
    tcp: TcpStream,
    proxy: &ProxyServer,
    net: &Network,
) -> Result<Stream, ConnectFailure> {
    let failed = |e: String| ConnectFailure::Proxy {
        status: None,
        message: format!("TLS with the proxy {proxy} failed: {e}"),
    };
    let config = net
        .tls
        .clone()
        .ok_or_else(|| failed("no TLS configuration".into()))?;
    let name = rustls::pki_types::ServerName::try_from(proxy.host.clone())
        .map_err(|e| failed(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(Either::Right(Box::new(tls)))
}

#[cfg(not(feature = "rustls"))]
async fn tls_to_proxy(
    _tcp: TcpStream,
    proxy: &ProxyServer,
    _net: &Network,
) -> Result<Stream, ConnectFailure> {
    Err(ConnectFailure::Proxy {
        status: None,
        message: format!("the proxy {proxy} needs TLS: build with the `rustls` feature"),
    })
}

/// Sends `CONNECT authority` and reads the proxy's answer; a 2xx opens the tunnel.
async fn tunnel(
    stream: &mut Stream,
    proxy: &ProxyServer,
    authority: &str,
) -> Result<(), ConnectFailure> {
    let lost = |e: String| ConnectFailure::Proxy {
        status: None,
        message: format!("the proxy {proxy} dropped the CONNECT to {authority}: {e}"),
    };
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(auth) = &proxy.authorization {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| lost(e.to_string()))?;
    stream.flush().await.map_err(|e| lost(e.to_string()))?;
    // Byte by byte up to the blank line: nothing of the tunnel may be read here (the
    // gateway speaks only after the client, but a proxy may pipeline nothing else either).
    let mut answer = Vec::with_capacity(128);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_PROXY_HEAD {
            return Err(lost("answer head too large".into()));
        }
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(0) => return Err(lost("connection closed before an answer".into())),
            Ok(_) => answer.push(byte[0]),
            Err(e) => return Err(lost(e.to_string())),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default().trim().to_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| lost(format!("not an HTTP answer: {status_line:?}")))?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = match status {
        407 if proxy.authorization.is_some() => format!(
            "the proxy {proxy} rejected the credentials ({status_line}): check the user and \
             password in the proxy URL"
        ),
        407 => format!(
            "the proxy {proxy} requires authentication ({status_line}): put user:password@ in \
             the proxy URL"
        ),
        403 => format!(
            "the proxy {proxy} refused a tunnel to {authority} ({status_line}): its policy \
             does not allow this destination; ask its administrator, or bypass the proxy for \
             this host"
        ),
        _ => format!("the proxy {proxy} answered CONNECT {authority} with {status_line}"),
    };
    Err(ConnectFailure::Proxy {
        status: Some(status),
        message,
    })
}

/// TLS to the gateway (for `wss://`, with the client's configuration) and the upgrade.
#[cfg(feature = "rustls")]
pub(crate) async fn handshake<R: IntoClientRequest + Unpin>(
    request: R,
    stream: Stream,
    net: &Network,
) -> Result<(WebSocketStream<WsTransport>, Response), WsError> {
    use tokio_tungstenite::tungstenite::error::UrlError;
    let request = request.into_client_request()?;
    let transport = match (request.uri().scheme_str(), &net.tls) {
        (Some("wss"), Some(config)) => {
            let host = request
                .uri()
                .host()
                .ok_or(WsError::Url(UrlError::NoHostName))?;
            // An IPv6 literal comes with its brackets in the URI.
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| {
                WsError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{host}: not a valid TLS server name"),
                ))
            })?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await?;
            Either::Right(Box::new(tls))
        }
        (Some("wss"), None) => return Err(WsError::Url(UrlError::TlsFeatureNotEnabled)),
        _ => Either::Left(stream),
    };
    tokio_tungstenite::client_async(request, transport).await
}

/// The upgrade (`ws://` only: `wss://` needs the `rustls` feature).
#[cfg(not(feature = "rustls"))]
pub(crate) async fn handshake<R: IntoClientRequest + Unpin>(
    request: R,
    stream: Stream,
    _net: &Network,
) -> Result<(WebSocketStream<WsTransport>, Response), WsError> {
    use tokio_tungstenite::tungstenite::error::UrlError;
    let request = request.into_client_request()?;
    if request.uri().scheme_str() == Some("wss") {
        return Err(WsError::Url(UrlError::TlsFeatureNotEnabled));
    }
    tokio_tungstenite::client_async(request, Either::Left(stream)).await
}
