//! The WebSocket upgrade: the request's checks (path, limits, filter, recovery budget), the
//! socket's registration, the 101 answer, and the hand-over of the upgraded connection to its
//! task.
//!
//! The handshake is answered here rather than by axum's `WebSocketUpgrade`: the gateway
//! negotiates permessage-deflate itself and reads and writes the frames itself ([`crate::wire`]).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tungstenite::handshake::derive_accept_key;

use crate::error::MoleculerError;
use crate::filter::ConnectRequest;
use crate::metrics::Refused as Why;
use crate::recovery::{RecoverRequest, Refused};
use crate::state::Shared;
use crate::wire::{self, Limits, Reader};
use crate::ws::{run_socket, Registered, Socket};

/// Whether a request asks for a WebSocket upgrade (on any path).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().get_all(header::UPGRADE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.eq_ignore_ascii_case("websocket"))
    })
}

/// The registry key of a request path: percent-decoded, leading slash, no query.
pub(crate) fn registry_path(raw_path: &str) -> Option<String> {
    let decoded = percent_decode_str(raw_path).decode_utf8().ok()?;
    Some(if decoded.starts_with('/') {
        decoded.into_owned()
    } else {
        format!("/{decoded}")
    })
}

fn unavailable(shared: &Shared, message: &str) -> Response {
    let err = MoleculerError::new(
        "ServiceUnavailableError",
        message,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .retryable(true);
    with_retry_after(shared.error_response(&err), 1)
}

fn with_retry_after(mut resp: Response, seconds: u64) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    resp
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
    if shared.stopping.load(Ordering::Relaxed) {
        return unavailable(&shared, "The gateway is shutting down; try again later.");
    }
    let (mut parts, _body) = req.into_parts();
    let Some(path) = registry_path(parts.uri.path()) else {
        let err = MoleculerError::bad_request("The path is not valid UTF-8.", "INVALID_PATH");
        return shared.error_response(&err);
    };
    let config = &shared.config;
    if path.len() > config.max_path_length {
        shared.metrics.refused(Why::PathLength);
        tracing::info!(
            len = path.len(),
            "upgrade refused: the path is longer than {} bytes",
            config.max_path_length
        );
        let err = MoleculerError::new(
            "UriTooLongError",
            format!(
                "The WebSocket path is longer than {} bytes.",
                config.max_path_length
            ),
            414,
            "PATH_TOO_LONG",
        );
        return shared.error_response(&err);
    }
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
    let connect = ConnectRequest {
        path: path.clone(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        remote_addr: crate::forwarded::remote_addr(
            &parts.headers,
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ci| ci.0),
            config.trust_proxy,
        ),
    };
    let ip = connect.remote_addr.map(|a| a.ip());
    let slot = match shared.slots.acquire(ip) {
        Ok(slot) => slot,
        Err(refusal) => {
            shared.metrics.refused(Why::SocketLimit);
            tracing::warn!(path, remote = ?connect.remote_addr, ?refusal, "upgrade refused: socket limit");
            return unavailable(&shared, "Too many WebSocket connections; try again later.");
        }
    };
    if let Some(filter) = &shared.filter {
        if !filter.on_connect(&connect).await {
            shared.metrics.refused(Why::Forbidden);
            tracing::info!(path, remote = ?connect.remote_addr, "upgrade refused by the filter");
            let err = MoleculerError::forbidden("The WebSocket connection was refused.");
            let mut resp = shared.error_response(&err);
            *resp.status_mut() = StatusCode::FORBIDDEN;
            return resp;
        }
    }
    // Register before the 101 goes out: a client that sees the upgrade succeed may trigger a
    // broadcast at once, and it must reach this socket (queued until the task runs). If the
    // upgrade fails, dropping the guard removes the registration again.
    // A client that opted into message recovery (README "Message recovery") is registered
    // with the history locked, and first gets its status frame and replay.
    let recover = RecoverRequest::from_query(&connect.query);
    if let Some(request) = &recover {
        // With a shared history: the path's history started in the engine, and what the
        // client saw elsewhere read here (a bounded wait).
        shared.recovery.prepare(&path, request).await;
    }
    let queue = config.outbound_queue;
    let registered = match &recover {
        Some(request) => {
            shared
                .recovery
                .register(&shared.registry, &path, queue, request, |bytes| {
                    shared
                        .replay_budget
                        .take(ip, bytes, tokio::time::Instant::now())
                })
        }
        None => shared
            .registry
            .register(&path, queue)
            .map(|r| (r, Vec::new()))
            .map_err(|_| Refused::PathsFull),
    };
    let (reg, replay) = match registered {
        Ok(r) => r,
        Err(Refused::PathsFull) => {
            shared.metrics.refused(Why::PathsFull);
            tracing::warn!(path, "upgrade refused: the gateway holds its most paths");
            return unavailable(&shared, "Too many WebSocket paths; try again later.");
        }
        Err(Refused::Throttled(wait)) => {
            shared.metrics.refused(Why::ReplayThrottled);
            tracing::info!(path, remote = ?connect.remote_addr, ?wait, "recovery replay throttled");
            let err = MoleculerError::new(
                "TooManyRequestsError",
                "Too many recovery replays from this address; try again later.",
                429,
                "REPLAY_RATE_LIMITED",
            )
            .retryable(true);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return with_retry_after(shared.error_response(&err), secs);
        }
    };
    let negotiated = if config.compression {
        wire::deflate::negotiate(&parts.headers, config.compression_threshold)
    } else {
        None
    };
    let (deflate, extensions) = negotiated.unzip();
    if let Some(d) = deflate {
        shared.registry.set_deflate(&path, reg.id, d);
    }
    let guard = Registered {
        shared: shared.clone(),
        path,
        id: reg.id,
        recover: recover.is_some(),
    };
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
