//! Entry points for the fuzz targets (`fuzz/`): the gateway's inbound handling without
//! sockets. Not a stable API.

use std::io::{Cursor, Read, Write};

use serde_json::Value;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

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

/// Reads `bytes` as a client's frames after the upgrade, with the gateway's limits, and
/// classifies each message as the gateway does (`!` heartbeat or ignored). Returns how many
/// heartbeats would be answered.
pub fn inbound_stream(bytes: &[u8], max_message_size: usize) -> usize {
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size));
    let wire = Wire {
        input: Cursor::new(bytes.to_vec()),
    };
    let mut ws = WebSocket::from_raw_socket(wire, Role::Server, Some(config));
    let mut heartbeats = 0;
    while let Ok(msg) = ws.read() {
        let bang = match &msg {
            Message::Text(t) => t.as_str().starts_with('!'),
            Message::Binary(b) => b.first() == Some(&b'!'),
            _ => false,
        };
        heartbeats += usize::from(bang);
    }
    heartbeats
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
