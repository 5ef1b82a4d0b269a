//! The byte stream under a WebSocket: TCP to the gateway, or a tunnel through the proxy the
//! rules pick (`net`): HTTP `CONNECT` through hyper's HTTP/1 client (over TLS for an
//! `https://` proxy), or a SOCKS handshake by hyper-util's connectors; then the TLS to the
//! gateway and the upgrade, with the client's own TLS configuration.

use bytes::Bytes;
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::client::legacy::connect::proxy::{SocksV4, SocksV5};
use hyper_util::client::proxy::matcher::Intercept;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;
use tower_service::Service;
use url::Url;

use crate::net::Network;
use crate::session::ConnectFailure;

/// A TLS stream over `S` (with the feature `rustls`; without it never built, and `S` itself
/// stands in for the type).
#[cfg(feature = "rustls")]
type Tls<S> = Box<tokio_rustls::client::TlsStream<S>>;
#[cfg(not(feature = "rustls"))]
type Tls<S> = S;

/// TCP (directly to the gateway, or through a SOCKS proxy), or an HTTP `CONNECT` tunnel.
pub(crate) type Stream = Either<TcpStream, TokioIo<Upgraded>>;

/// The stream, or TLS to the gateway over it (`wss://`).
pub(crate) type Plain = Either<Stream, Tls<Stream>>;

/// What the WebSocket runs on: [`Plain`], with compressed messages inflated on the way
/// (feature `deflate`).
#[cfg(feature = "deflate")]
pub(crate) type WsTransport = super::deflate::Inflate<Plain>;
#[cfg(not(feature = "deflate"))]
pub(crate) type WsTransport = Plain;

/// The WebSocket's transport over `plain`; `offered`: the request offers permessage-deflate.
#[cfg(feature = "deflate")]
fn ws_transport(plain: Plain, offered: bool) -> WsTransport {
    super::deflate::Inflate::new(plain, offered, super::deflate::MAX_MESSAGE)
}
#[cfg(not(feature = "deflate"))]
fn ws_transport(plain: Plain, _offered: bool) -> WsTransport {
    plain
}

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

/// A URI's host as sockets and TLS take it: an IPv6 literal without its brackets.
fn bare_host(uri: &http::Uri) -> &str {
    let host = uri.host().unwrap_or_default();
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The proxy as messages show it: scheme, host and port, never the credentials.
fn shown(proxy: &Intercept) -> String {
    let uri = proxy.uri();
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map_or("", |a| a.as_str());
    // The matcher keeps credentials apart, but be sure.
    let authority = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{authority}")
}

/// Opens the stream to `url`'s host: directly, or through the proxy the rules pick.
pub(crate) async fn transport(url: &Url, net: &Network) -> Result<Stream, ConnectFailure> {
    let (host, authority, port) = target(url)?;
    let Some(proxy) = net.proxy_for(url) else {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                ConnectFailure::Transport(format!("cannot connect to {authority}: {e}"))
            })?;
        let _ = tcp.set_nodelay(true);
        return Ok(Either::Left(tcp));
    };
    let name = shown(&proxy);
    match proxy.uri().scheme_str() {
        Some("http") => {
            let tcp = tcp_to_proxy(&proxy, &name).await?;
            tunnel(TokioIo::new(tcp), &proxy, &name, &authority).await
        }
        Some("https") => {
            let tcp = tcp_to_proxy(&proxy, &name).await?;
            let tls = tls_to_proxy(tcp, &proxy, &name, net).await?;
            tunnel(TokioIo::new(tls), &proxy, &name, &authority).await
        }
        Some(scheme) => socks(scheme, &proxy, &name, (&host, port, &authority)).await,
        None => Err(ConnectFailure::Proxy {
            status: None,
            message: format!("the proxy {name} has no scheme"),
        }),
    }
}

/// TCP to the proxy.
async fn tcp_to_proxy(proxy: &Intercept, name: &str) -> Result<TcpStream, ConnectFailure> {
    let uri = proxy.uri();
    let host = bare_host(uri);
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => 1080,
    });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| ConnectFailure::Proxy {
            status: None,
            message: format!("cannot reach the proxy {name}: {e}"),
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

#[cfg(feature = "rustls")]
async fn tls_to_proxy(
    tcp: TcpStream,
    proxy: &Intercept,
    name: &str,
    net: &Network,
) -> Result<Tls<TcpStream>, ConnectFailure> {
    let failed = |e: String| ConnectFailure::Proxy {
        status: None,
        message: format!("TLS with the proxy {name} failed: {e}"),
    };
    let config = net
        .tls
        .clone()
        .ok_or_else(|| failed("no TLS configuration".into()))?;
    let server = rustls::pki_types::ServerName::try_from(bare_host(proxy.uri()).to_owned())
        .map_err(|e| failed(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(server, tcp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(Box::new(tls))
}

#[cfg(not(feature = "rustls"))]
async fn tls_to_proxy(
    _tcp: TcpStream,
    _proxy: &Intercept,
    name: &str,
    _net: &Network,
) -> Result<Tls<TcpStream>, ConnectFailure> {
    Err(ConnectFailure::Proxy {
        status: None,
        message: format!("the proxy {name} needs TLS: build with the `rustls` feature"),
    })
}

/// `CONNECT authority` through hyper's HTTP/1 client; a 2xx answer hands over the connection
/// (hyper's upgrade), anything else is the proxy's refusal with its status.
async fn tunnel<S>(
    io: TokioIo<S>,
    proxy: &Intercept,
    name: &str,
    authority: &str,
) -> Result<Stream, ConnectFailure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let lost = |e: String| ConnectFailure::Proxy {
        status: None,
        message: format!("the proxy {name} dropped the CONNECT to {authority}: {e}"),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| lost(e.to_string()))?;
    let mut request = http::Request::connect(authority).header(http::header::HOST, authority);
    if let Some(auth) = proxy.basic_auth() {
        request = request.header(http::header::PROXY_AUTHORIZATION, auth.clone());
    }
    let request = request
        .body(Empty::new())
        .map_err(|e| lost(e.to_string()))?;
    // The answer, while the connection runs. A refusal may come with a body on a kept-alive
    // connection (which then never ends by itself): it is dropped with the answer. If the
    // connection ends first, its answer (or why there is none) is waiting for `send`.
    let mut conn = conn.with_upgrades();
    let mut send = std::pin::pin!(sender.send_request(request));
    let first = tokio::select! {
        biased;
        answer = &mut send => Some(answer),
        _ = &mut conn => None,
    };
    let (answer, conn) = match first {
        Some(answer) => (answer, Some(conn)),
        None => {
            // Dropped, the ended connection cancels a request it never sent (a proxy that
            // closed at once): `send` then says so instead of waiting.
            drop(conn);
            (send.await, None)
        }
    };
    let answer = answer.map_err(|e| lost(e.to_string()))?;
    let status = answer.status();
    if status.is_success() {
        // The connection hands itself over to the upgrade once it has read the answer.
        let upgraded = match conn {
            Some(conn) => tokio::join!(hyper::upgrade::on(answer), conn).0,
            None => hyper::upgrade::on(answer).await,
        };
        let upgraded = upgraded.map_err(|e| lost(e.to_string()))?;
        return Ok(Either::Right(TokioIo::new(upgraded)));
    }
    let line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let line = line.trim_end();
    let message = match status.as_u16() {
        407 if proxy.basic_auth().is_some() => format!(
            "the proxy {name} rejected the credentials ({line}): check the user and password \
             in the proxy URL"
        ),
        407 => format!(
            "the proxy {name} requires authentication ({line}): put user:password@ in the \
             proxy URL"
        ),
        403 => format!(
            "the proxy {name} refused a tunnel to {authority} ({line}): its policy does not \
             allow this destination; ask its administrator, or bypass the proxy for this host"
        ),
        _ => format!("the proxy {name} answered CONNECT {authority} with {line}"),
    };
    Err(ConnectFailure::Proxy {
        status: Some(status.as_u16()),
        message,
    })
}

/// Through a SOCKS proxy: TCP to it here, then hyper-util's handshake (`socks5h` and
/// `socks4a` let the proxy resolve the gateway's name; `socks5` and `socks4` resolve it here).
/// `gateway`: its host (IPv6 without brackets), port and authority, from [`target`].
async fn socks(
    scheme: &str,
    proxy: &Intercept,
    name: &str,
    gateway: (&str, u16, &str),
) -> Result<Stream, ConnectFailure> {
    let (host, port, authority) = gateway;
    let failed = |e: String| ConnectFailure::Proxy {
        status: None,
        message: format!("the SOCKS proxy {name} did not open a connection to {authority}: {e}"),
    };
    // `socks5` and `socks4` resolve the name here, with tokio's resolver (hyper-util's would
    // block the runtime's thread); SOCKS4 carries IPv4 addresses only.
    let target = match scheme {
        "socks5" | "socks4" => {
            let addrs = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| failed(format!("cannot resolve {host}: {e}")))?;
            let addr = addrs
                .into_iter()
                .find(|a| scheme == "socks5" || a.is_ipv4())
                .ok_or_else(|| failed(format!("{host} has no address the proxy can take")))?;
            addr.to_string()
        }
        _ => authority.to_owned(),
    };
    let dst: http::Uri = format!("http://{target}/")
        .parse()
        .map_err(|e: http::uri::InvalidUri| failed(e.to_string()))?;
    let tcp = Connected(Some(tcp_to_proxy(proxy, name).await?));
    let proxy_uri = proxy.uri().clone();
    let io = match scheme {
        "socks5" | "socks5h" => {
            let mut connector = SocksV5::new(proxy_uri, tcp).local_dns(scheme == "socks5");
            if let Some((user, password)) = proxy.raw_auth() {
                // RFC 1929 carries each in at most 255 bytes (also for a proxy from the
                // environment, which `build()` does not check).
                if user.len() > 255 || password.len() > 255 {
                    return Err(failed(
                        "the user or the password is longer than 255 bytes".into(),
                    ));
                }
                connector = connector.with_auth(user.to_owned(), password.to_owned());
            }
            connector
                .call(dst)
                .await
                .map_err(|e| failed(socks_error(&e)))?
        }
        "socks4" | "socks4a" => SocksV4::new(proxy_uri, tcp)
            .local_dns(scheme == "socks4")
            .call(dst)
            .await
            .map_err(|e| failed(socks_error(&e)))?,
        other => {
            return Err(ConnectFailure::Proxy {
                status: None,
                message: format!("the proxy {name}: scheme {other:?} is not supported"),
            })
        }
    };
    Ok(Either::Left(io.into_inner()))
}

/// A SOCKS failure in words: hyper-util's text, with the I/O error it hides behind "io error"
/// (its error type has no `source`; its `Debug` holds the cause and never the credentials).
fn socks_error(e: &(impl std::fmt::Display + std::fmt::Debug)) -> String {
    let text = e.to_string();
    if text.contains("io error") {
        format!("{text} ({e:?})")
    } else {
        text
    }
}

/// The connection to the SOCKS proxy, already open, as the connector hyper-util's SOCKS
/// handshake runs over (so that a proxy that cannot be reached says why).
struct Connected(Option<TcpStream>);

impl Service<http::Uri> for Connected {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        std::future::ready(
            self.0
                .take()
                .map(TokioIo::new)
                .ok_or_else(|| std::io::Error::other("the proxy connection was used already")),
        )
    }
}

/// TLS to the gateway over `stream` (for `https://`, with the client's configuration), or the
/// stream as it is (`http://`): what an event stream runs on.
#[cfg(feature = "rustls")]
pub(crate) async fn secure(url: &Url, stream: Stream, net: &Network) -> Result<Plain, String> {
    if url.scheme() != "https" {
        return Ok(Either::Left(stream));
    }
    let config = net
        .tls
        .clone()
        .ok_or("https:// needs a TLS configuration")?;
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => return Err(format!("{url}: no host")),
    };
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|_| format!("{host}: not a valid TLS server name"))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS with {host} failed: {e}"))?;
    Ok(Either::Right(Box::new(tls)))
}

/// The stream as it is (`http://` only: `https://` needs the `rustls` feature).
#[cfg(not(feature = "rustls"))]
pub(crate) async fn secure(url: &Url, stream: Stream, _net: &Network) -> Result<Plain, String> {
    if url.scheme() == "https" {
        return Err("https:// needs the `rustls` feature".to_owned());
    }
    Ok(Either::Left(stream))
}

/// TLS to the gateway (for `wss://`, with the client's configuration) and the upgrade.
#[cfg(feature = "rustls")]
pub(crate) async fn handshake<R: IntoClientRequest + Unpin>(
    request: R,
    stream: Stream,
    net: &Network,
    offered: bool,
) -> Result<(WebSocketStream<WsTransport>, Response), WsError> {
    use tokio_tungstenite::tungstenite::error::UrlError;
    let request = request.into_client_request()?;
    let transport = match (request.uri().scheme_str(), &net.tls) {
        (Some("wss"), Some(config)) => {
            if request.uri().host().is_none() {
                return Err(WsError::Url(UrlError::NoHostName));
            }
            let host = bare_host(request.uri()).to_owned();
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
    tokio_tungstenite::client_async(request, ws_transport(transport, offered)).await
}

/// The upgrade (`ws://` only: `wss://` needs the `rustls` feature).
#[cfg(not(feature = "rustls"))]
pub(crate) async fn handshake<R: IntoClientRequest + Unpin>(
    request: R,
    stream: Stream,
    _net: &Network,
    offered: bool,
) -> Result<(WebSocketStream<WsTransport>, Response), WsError> {
    use tokio_tungstenite::tungstenite::error::UrlError;
    let request = request.into_client_request()?;
    if request.uri().scheme_str() == Some("wss") {
        return Err(WsError::Url(UrlError::TlsFeatureNotEnabled));
    }
    tokio_tungstenite::client_async(request, ws_transport(Either::Left(stream), offered)).await
}
