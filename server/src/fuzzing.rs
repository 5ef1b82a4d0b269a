//! Entry points for the fuzz targets (`fuzz/`): the gateway's inbound handling without
//! sockets. Not a stable API.

use serde_json::Value;

use crate::error::MoleculerError;

/// Reads `bytes` as a client's frames after the upgrade, through the gateway's own inbound
/// path: its frame reader with the default limits (100 frames in the same second, 128
/// fragments per message), the size limit given, permessage-deflate negotiated, in reads of
/// 2 KiB (the gateway's read buffer), and the gateway's heartbeat rule. Returns how many
/// heartbeats would be answered before the first fault or close.
pub fn inbound_stream(bytes: &[u8], max_message_size: usize) -> usize {
    use crate::wire::{Inbound, Limits, Reader};
    let defaults = crate::GatewayConfig::default();
    let now = tokio::time::Instant::now();
    let limits = Limits {
        max_message: max_message_size,
        per_second: defaults.max_frames_per_second,
        max_fragments: defaults.max_fragments,
    };
    let mut reader = Reader::new(limits, true, now);
    let mut buf = bytes::BytesMut::new();
    let mut heartbeats = 0;
    for chunk in bytes.chunks(defaults.ws_read_buffer) {
        buf.extend_from_slice(chunk);
        loop {
            match reader.next(&mut buf, now) {
                Ok(Some(Inbound::Message { data, .. })) => {
                    heartbeats += usize::from(crate::ws::is_heartbeat(&data));
                }
                Ok(Some(Inbound::Close(_))) | Err(_) => return heartbeats,
                Ok(Some(_)) => {}
                Ok(None) => break,
            }
        }
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
