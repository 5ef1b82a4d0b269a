//! Entry points for the fuzz targets (`fuzz/`): the gateway's inbound handling without
//! sockets. Not a stable API.

use std::io::{Cursor, Read, Write};

use serde_json::Value;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::WebSocket;

use crate::error::MoleculerError;

/// A byte stream that reads the fuzz input and swallows writes.
struct Wire {
    input: Cursor<Vec<u8>>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `bytes` as a client's frames after the upgrade, through the gateway's own inbound
/// path: its frame counter (the default limits: 100 frames in the same second, 128 fragments
/// per message; the read of 2 KiB in which it overruns is the last one, as on a socket),
/// tungstenite with
/// the gateway's size limits, and the gateway's heartbeat rule. Returns how many heartbeats
/// would be answered.
pub fn inbound_stream(bytes: &[u8], max_message_size: usize) -> usize {
    let defaults = crate::GatewayConfig::default();
    let now = tokio::time::Instant::now();
    let mut counter = crate::frames::FrameCounter::new(
        defaults.max_frames_per_second,
        defaults.max_fragments,
        now,
    );
    // The bytes the socket would read before the counter stops it, in reads of 2 KiB (the
    // gateway's read buffer).
    let mut allowed = 0;
    for chunk in bytes.chunks(defaults.ws_read_buffer) {
        allowed += chunk.len();
        if counter.feed(chunk, now).is_err() {
            break;
        }
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size));
    let wire = Wire {
        input: Cursor::new(bytes[..allowed].to_vec()),
    };
    let mut ws = WebSocket::from_raw_socket(wire, Role::Server, Some(config));
    let mut heartbeats = 0;
    while let Ok(msg) = ws.read() {
        heartbeats += usize::from(crate::ws::is_heartbeat(&msg));
    }
    heartbeats
}

/// Feeds one packet from the transporter on `topic` to a fresh cluster node's packet
/// handling (the real one: header and sender checks, parsing, the node table, answers),
/// with a node already known, so that every kind of packet meets state. Must never panic.
pub fn cluster_packet(topic: &str, payload: &[u8]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    rt.block_on(crate::cluster::fuzz_packet(topic, payload));
}

/// Builds REST action params from a query string, a content type and a body, as a route
/// without path variables does.
pub fn rest_params(
    query: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    max_body: usize,
) -> Result<Value, MoleculerError> {
    let uri = format!("/fuzz?{}", query.replace(['#', ' '], ""));
    let mut req = axum::http::Request::builder()
        .method("POST")
        .uri(uri.as_str());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req
        .body(axum::body::Body::from(body))
        .map_err(|e| MoleculerError::bad_request(e.to_string(), "INVALID_REQUEST"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| MoleculerError::internal(e.to_string()))?;
    let timeout = std::time::Duration::from_secs(10);
    rt.block_on(crate::rest::params(Vec::new(), req, max_body, timeout))
        .map_err(crate::rest::BodyError::into_error)
}
