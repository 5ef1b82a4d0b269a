//! The WebSocket upgrade: the handshake's checks (then those of every connection at a path,
//! [`crate::admit`]), the 101 answer, and the hand-over of the upgraded connection to its task.
//!
//! The handshake is answered here rather than by axum's `WebSocketUpgrade`: the gateway
//! negotiates permessage-deflate itself and reads and writes the frames itself ([`crate::wire`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tungstenite::handshake::derive_accept_key;

use crate::admit::{self, Admitted};
use crate::error::MoleculerError;
use crate::recovery::RecoverRequest;
use crate::state::Shared;
use crate::wire::{self, Limits, Reader};
use crate::ws::{run_socket, Socket};

/// Whether a request asks for a WebSocket upgrade (on any path).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().get_all(header::UPGRADE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.eq_ignore_ascii_case("websocket"))
    })
}

/// What is wrong with the handshake request, if anything (RFC 6455 section 4.2.1).
fn handshake_error(method: &Method, headers: &HeaderMap) -> Option<(StatusCode, &'static str)> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET {
        return Some((
            StatusCode::METHOD_NOT_ALLOWED,
            "A WebSocket upgrade must be a GET request.",
        ));
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Some((
            StatusCode::BAD_REQUEST,
            "A WebSocket upgrade needs 'Connection: Upgrade'.",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Some((
            StatusCode::UPGRADE_REQUIRED,
            "Only WebSocket version 13 is supported.",
        ));
    }
    if headers.get(header::SEC_WEBSOCKET_KEY).is_none() {
        return Some((
            StatusCode::BAD_REQUEST,
            "A WebSocket upgrade needs 'Sec-WebSocket-Key'.",
        ));
    }
    None
}

/// Handles an upgrade request: checks it, registers the socket and answers 101; the upgraded
/// connection then runs in its own task.
pub(crate) async fn upgrade(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let (mut parts, _body) = req.into_parts();
    let path = match admit::path_of(&shared, &parts) {
        Ok(path) => path,
        Err(refused) => return refused,
    };
    let config = &shared.config;
    if let Some((status, why)) = handshake_error(&parts.method, &parts.headers) {
        let code = if status == StatusCode::UPGRADE_REQUIRED {
            "UNSUPPORTED_WEBSOCKET_VERSION"
        } else {
            "INVALID_UPGRADE"
        };
        let err = MoleculerError::new("BadRequestError", why, status.as_u16(), code);
        let mut resp = shared.error_response(&err);
        if status == StatusCode::UPGRADE_REQUIRED {
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        return resp;
    }
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        // Served by an HTTP server that does not hand over upgraded connections.
        let err = MoleculerError::new(
            "UpgradeRequiredError",
            "This server cannot upgrade connections to WebSocket.",
            426,
            "UPGRADE_NOT_SUPPORTED",
        );
        return shared.error_response(&err);
    };
    let accept = parts
        .headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .unwrap_or_default();
    let recover = RecoverRequest::from_query(parts.uri.query().unwrap_or_default());
    let Admitted {
        reg,
        replay,
        guard,
        slot,
    } = match admit::admit(&shared, path, &parts, recover).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let negotiated = if config.compression {
        wire::deflate::negotiate(&parts.headers, config.compression_threshold)
    } else {
        None
    };
    let (deflate, extensions) = negotiated.unzip();
    if let Some(d) = deflate {
        shared.registry.set_deflate(&guard.path, reg.id, d);
    }
    let limits = Limits {
        max_message: config.max_message_size,
        per_second: config.max_frames_per_second,
        max_fragments: config.max_fragments,
    };
    let read_buffer = config.ws_read_buffer;
    shared
        .metrics
        .sockets_opened
        .fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "the upgrade did not complete");
                return;
            }
        };
        let reader = Reader::new(limits, deflate.is_some(), tokio::time::Instant::now());
        let socket = Socket::new(TokioIo::new(upgraded), reader, deflate, read_buffer);
        run_socket(shared, socket, reg, replay, guard, slot).await;
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(value) = extensions {
        response = response.header(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    response.body(Body::empty()).unwrap_or_default()
}
