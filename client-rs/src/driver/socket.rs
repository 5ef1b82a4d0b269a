//! Opening and closing one tungstenite socket; its types stay in this module's users.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use url::Url;

use crate::client::Defaults;
use crate::session::ConnectFailure;
use crate::url::append_query;

pub(super) type WsStream = WebSocketStream<super::connect::WsTransport>;

/// How long `disconnect()` waits for the server to answer the close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(3);
/// How long an abandoned socket (lost heartbeat, error) gets to send its close frame.
const CLOSE_ABANDON: Duration = Duration::from_millis(500);

/// What every attempt of one connection uses.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The URL of this attempt: one of `urls`, with the session's query.
    pub(crate) url: Url,
    /// Every gateway URL of the connection (the session picks one per attempt).
    pub(crate) urls: Arc<[Url]>,
    pub(crate) headers: HeaderMap,
    pub(crate) defaults: Arc<Defaults>,
    pub(crate) token_query_param: Option<String>,
    /// Offer permessage-deflate (with the feature `deflate`).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) compression: bool,
    /// Echo every text and binary message back (protocol test suites only).
    #[cfg(feature = "autobahn")]
    pub(crate) echo: bool,
}

/// The URL of an attempt and its token: the token provider is asked now, once per attempt,
/// and the token goes in the query when the settings say so.
pub(super) async fn attempt(settings: &Settings) -> (Url, Option<String>) {
    let mut url = settings.url.clone();
    let token = settings.defaults.token_now().await;
    if let (Some(name), Some(token)) = (&settings.token_query_param, &token) {
        append_query(&mut url, &[(name, token)]);
    }
    (url, token)
}

/// An attempt's headers: the client's, then the connection's own, and the token as
/// `Authorization: Bearer` (a WebSocket's and an event stream's alike).
pub(super) fn add_headers(headers: &mut HeaderMap, settings: &Settings, token: Option<&str>) {
    for (name, value) in settings
        .defaults
        .headers
        .iter()
        .chain(settings.headers.iter())
    {
        headers.append(name.clone(), value.clone());
    }
    if let Some(token) = token {
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert(AUTHORIZATION, value);
        }
    }
}

/// Opens a socket: the token provider is asked now, once per attempt.
pub(super) async fn open(settings: Arc<Settings>) -> Result<WsStream, ConnectFailure> {
    let (url, token) = attempt(&settings).await;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectFailure::Transport(e.to_string()))?;
    let headers = request.headers_mut();
    add_headers(headers, &settings, token.as_deref());
    #[cfg(feature = "deflate")]
    if settings.compression {
        headers.insert(
            http::header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(super::deflate::OFFER),
        );
    }
    // Also an application's own `Sec-WebSocket-Extensions` offer (with `compression` off):
    // what the server agrees to is then inflated the same way.
    let offer = cfg!(feature = "deflate")
        && headers
            .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("permessage-deflate")));
    // Directly or through the proxy; then TLS (wss) and the upgrade.
    let net = &settings.defaults.net;
    let stream = super::connect::transport(&url, net).await?;
    match super::connect::handshake(request, stream, net, offer).await {
        Ok((stream, _response)) => Ok(stream),
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            match retry_after(response.headers()) {
                Some(delay) => Err(ConnectFailure::RetryAfter { status, delay }),
                None => Err(ConnectFailure::HttpStatus(status)),
            }
        }
        Err(e) => Err(ConnectFailure::Transport(e.to_string())),
    }
}

/// Sends a close frame; with `graceful`, waits (bounded) for the server's answer.
pub(super) async fn close(mut ws: WsStream, code: u16, graceful: bool) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "".into(),
    };
    let wait = if graceful {
        CLOSE_HANDSHAKE
    } else {
        CLOSE_ABANDON
    };
    let _ = tokio::time::timeout(wait, async {
        if ws.close(Some(frame)).await.is_ok() && graceful {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// Sends the heartbeat `!`.
pub(super) async fn send_heartbeat(ws: &mut WsStream) -> Result<(), String> {
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        crate::session::HEARTBEAT,
    ))
    .await
    .map_err(|e| e.to_string())
}

/// Completes the close handshake the server started: sends the close reply and waits (bounded)
/// for the server to close the TCP connection, as RFC 6455 section 7.1.1 asks of a client.
///
/// `SinkExt::close`, not `WebSocketStream::close`: the latter writes a new Close message, which
/// tungstenite refuses once the peer's Close has arrived (`SendAfterClosing`), so the reply it
/// queued was never flushed (found by the Autobahn TestSuite: every close was unclean).
pub(super) async fn finish_close(mut ws: WsStream) {
    let _ = tokio::time::timeout(CLOSE_ABANDON, async {
        if SinkExt::close(&mut ws).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// Sends a received message back unchanged (feature `autobahn`, protocol test suites only).
#[cfg(feature = "autobahn")]
pub(super) async fn echo(
    ws: &mut WsStream,
    message: tokio_tungstenite::tungstenite::Message,
) -> Result<(), String> {
    ws.send(message).await.map_err(|e| e.to_string())
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: it needs the peer's clock).
pub(super) fn retry_after(
    headers: &tokio_tungstenite::tungstenite::http::HeaderMap,
) -> Option<std::time::Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(std::time::Duration::from_secs)
}
