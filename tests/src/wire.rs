//! Raw WebSocket and HTTP helpers for the checks: every wait is bounded.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A raw client socket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What came next on a socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close frame with its code (`None`: no code).
    Close(Option<u16>),
    /// The stream ended or failed without a close frame.
    Gone(String),
    /// Nothing within the wait.
    Silence,
}

impl std::fmt::Display for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Next::Text(t) if t.len() > 80 => write!(f, "text {:?}...", &t[..80]),
            Next::Text(t) => write!(f, "text {t:?}"),
            Next::Binary(b) => write!(f, "binary ({} bytes)", b.len()),
            Next::Pong(p) => write!(f, "pong {:?}", String::from_utf8_lossy(p)),
            Next::Close(c) => write!(f, "close {c:?}"),
            Next::Gone(e) => write!(f, "connection gone ({e})"),
            Next::Silence => f.write_str("nothing"),
        }
    }
}

/// Opens a socket at `ws_url` (any path and query). `Err` carries the HTTP status of a refused
/// upgrade, or the error text.
pub async fn open(ws_url: &str, token: Option<&str>, wait: Duration) -> Result<Socket, String> {
    let mut req = ws_url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(t) = token {
        let v = format!("Bearer {t}")
            .parse()
            .map_err(|_| "bad token".to_owned())?;
        req.headers_mut().insert("authorization", v);
    }
    // Large enough for any message the checks provoke, so the client never limits the server.
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
    let connect = tokio_tungstenite::connect_async_with_config(req, Some(config), false);
    match tokio::time::timeout(wait, connect).await {
        Err(_) => Err(format!("no upgrade within {wait:?}")),
        Ok(Err(WsError::Http(resp))) => Err(format!("upgrade refused with HTTP {}", resp.status())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// The next data, pong or close frame within `wait` (pings are skipped: the library answers).
pub async fn next(ws: &mut Socket, wait: Duration) -> Next {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Next::Silence,
            Ok(None) => return Next::Gone("stream ended".into()),
            Ok(Some(Err(e))) => return Next::Gone(e.to_string()),
            Ok(Some(Ok(m))) => match m {
                Message::Text(t) => return Next::Text(t.to_string()),
                Message::Binary(b) => return Next::Binary(b.to_vec()),
                Message::Pong(p) => return Next::Pong(p.to_vec()),
                Message::Close(c) => return Next::Close(c.map(|f| u16::from(f.code))),
                Message::Ping(_) | Message::Frame(_) => {}
            },
        }
    }
}

/// Sends a message; a send error is returned as text.
pub async fn send(ws: &mut Socket, msg: Message) -> Result<(), String> {
    ws.send(msg).await.map_err(|e| e.to_string())
}

/// Posts JSON to `url` (with the bearer token); returns status and body.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: String,
) -> Result<(u16, String), String> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}
