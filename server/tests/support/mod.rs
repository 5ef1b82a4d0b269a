//! Test support: a gateway on 127.0.0.1:0 and small WebSocket/HTTP helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod servers;

use std::future::Future;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use moleculer_ws_server::{Gateway, GatewayBuilder, GatewayConfig, RunningGateway};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upper bound for anything a test waits for; a hang becomes a failure, not a stuck run.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn start(builder: GatewayBuilder) -> RunningGateway {
    builder.build().unwrap().bind("127.0.0.1:0").await.unwrap()
}

pub async fn start_default() -> RunningGateway {
    start(Gateway::builder()).await
}

pub fn ws_url(gw: &RunningGateway, path_and_query: &str) -> String {
    format!("ws://{}{}", gw.local_addr(), path_and_query)
}

pub fn http_url(gw: &RunningGateway, path: &str) -> String {
    format!("http://{}{}", gw.local_addr(), path)
}

pub async fn connect(gw: &RunningGateway, path_and_query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(gw, path_and_query))
        .await
        .unwrap();
    ws
}

/// Tries an upgrade with extra headers; returns the HTTP status of a refusal.
pub async fn try_connect(
    gw: &RunningGateway,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, u16> {
    let mut req = ws_url(gw, path_and_query).into_client_request().unwrap();
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes());
        req.headers_mut().insert(name.unwrap(), v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected connect error: {e}"),
    }
}

/// The next frame, or a failure after [`WAIT`].
pub async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("timed out waiting for a frame")
        .expect("stream ended")
        .expect("websocket error")
}

/// The next text frame's text.
pub async fn next_text(ws: &mut Ws) -> String {
    match next(ws).await {
        Message::Text(t) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// Posts `{path, data}` to the gateway's trigger route (`--trigger`); expects 204.
pub async fn trigger(gw: &RunningGateway, path: &str, data: Value) {
    let resp = reqwest::Client::new()
        .post(http_url(gw, "/api/websocket/send"))
        .json(&serde_json::json!({"path": path, "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

/// The value of the sample `name` (with its labels, if any) in a Prometheus text.
pub fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// Broadcasts `websocket.send` through the gateway's broker.
pub async fn push(gw: &RunningGateway, params: Value) {
    gw.broker().broadcast("websocket.send", params).await;
}

/// Waits until `cond` holds, checking after every change the gateway may make; fails after
/// [`WAIT`]. Used for effects that have no event to wait on (a registry count).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

pub fn count(gw: &RunningGateway, path: &str) -> usize {
    gw.count_clients().get(path).copied().unwrap_or(0)
}

/// The base URL (`http://addr`) a started `moleculer-ws-server` program prints on its first
/// stdout line (the child must have a piped stdout).
pub fn program_base(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("moleculer-ws gateway on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_owned()
}

/// The gateway's `/metrics` text.
pub async fn metrics_text(gw: &RunningGateway) -> String {
    reqwest::get(http_url(gw, "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub fn with(config: GatewayConfig) -> moleculer_ws_server::GatewayBuilder {
    Gateway::builder().config(config)
}

/// A socket that answers `!`: the gateway is still healthy.
pub async fn healthy(ws: &mut Ws) {
    send_text(ws, "!").await;
    assert_eq!(next_text(ws).await, "!");
}

/// Opens a raw WebSocket with a hand-written handshake, to send frames no library would.
pub async fn raw_socket(gw: &RunningGateway, path: &str) -> TcpStream {
    raw_socket_with(gw, path, "").await.0
}

/// A raw upgraded socket whose request carries the `extra` header lines (each ending in
/// CRLF); also returns the 101 response's head.
pub async fn raw_socket_with(gw: &RunningGateway, path: &str, extra: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        gw.local_addr()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        within(s.read_exact(&mut b)).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (s, head)
}

/// A masked client frame with the given first byte (FIN, RSV bits, opcode), in the shortest
/// length encoding.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![first];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65535 => {
            f.push(0x80 | 126);
            f.extend((n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend((n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An event stream (Server-Sent Events) read through reqwest: what a client sees, line by line.
pub struct Sse {
    pub resp: reqwest::Response,
    buf: Vec<u8>,
}

/// One thing read from an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A comment line (the text after `:`).
    Comment(String),
    Event(SseEvent),
    /// The response ended.
    End,
}

/// An event as a reader assembles it (`data` lines joined with LF).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// Opens an event stream with extra headers; a refusal gives its status and body.
pub async fn try_sse(
    gw: &RunningGateway,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Sse, (u16, String)> {
    let mut req = reqwest::Client::new()
        .get(http_url(gw, path_and_query))
        .header("accept", "text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = within(req.send()).await.unwrap();
    if resp.status() != 200 {
        let status = resp.status().as_u16();
        return Err((status, resp.text().await.unwrap()));
    }
    Ok(Sse {
        resp,
        buf: Vec::new(),
    })
}

pub async fn sse(gw: &RunningGateway, path_and_query: &str) -> Sse {
    try_sse(gw, path_and_query, &[]).await.unwrap()
}

impl Sse {
    /// The next line (without its LF), or `None` at the end of the response.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(String::from_utf8(line[..i].to_vec()).unwrap());
            }
            match within(self.resp.chunk()).await.unwrap() {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return None,
            }
        }
    }

    /// The next comment or event.
    pub async fn next_item(&mut self) -> SseItem {
        let mut event = SseEvent::default();
        let mut any = false;
        loop {
            let Some(line) = self.line().await else {
                return SseItem::End;
            };
            if line.is_empty() {
                if any {
                    event.data = event
                        .data
                        .strip_suffix('\n')
                        .unwrap_or(&event.data)
                        .to_owned();
                    return SseItem::Event(event);
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                if !any {
                    return SseItem::Comment(comment.to_owned());
                }
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "event" => event.event = Some(value),
                "id" => event.id = Some(value),
                "data" => {
                    event.data.push_str(&value);
                    event.data.push('\n');
                }
                other => panic!("unexpected field {other:?} in {line:?}"),
            }
        }
    }

    /// The next event, skipping comments; fails when the stream ends first, or after [`WAIT`].
    pub async fn next_event(&mut self) -> SseEvent {
        within(async {
            loop {
                match self.next_item().await {
                    SseItem::Comment(_) => {}
                    SseItem::Event(e) => return e,
                    SseItem::End => panic!("the event stream ended"),
                }
            }
        })
        .await
    }
}
