//! What every connection at a path passes, a WebSocket ([`crate::upgrade`]) and an event
//! stream ([`crate::sse`]) alike: the path rules, the socket limits, the access filter and
//! message recovery, then the registration at the path. The errors are the same for both
//! (docs/protocol.md section 1.2).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use percent_encoding::percent_decode_str;

use crate::error::MoleculerError;
use crate::filter::ConnectRequest;
use crate::metrics::Refused as Why;
use crate::recovery::{RecoverRequest, Refused};
use crate::registry::{Registration, Utf8Bytes};
use crate::slots::Slot;
use crate::state::Shared;

/// The registry key of a request path: percent-decoded, leading slash, no query.
pub(crate) fn registry_path(raw_path: &str) -> Option<String> {
    let decoded = percent_decode_str(raw_path).decode_utf8().ok()?;
    Some(if decoded.starts_with('/') {
        decoded.into_owned()
    } else {
        format!("/{decoded}")
    })
}

pub(crate) fn unavailable(shared: &Shared, message: &str) -> Response {
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

/// The path a connection asks for, or the answer when the gateway is stopping (503) or the
/// path is refused (400, 414).
pub(crate) fn path_of(shared: &Shared, parts: &Parts) -> Result<String, Response> {
    if shared.stopping.load(Ordering::Relaxed) {
        return Err(unavailable(
            shared,
            "The gateway is shutting down; try again later.",
        ));
    }
    let Some(path) = registry_path(parts.uri.path()) else {
        let err = MoleculerError::bad_request("The path is not valid UTF-8.", "INVALID_PATH");
        return Err(shared.error_response(&err));
    };
    let max = shared.config.max_path_length;
    if path.len() > max {
        shared.metrics.refused(Why::PathLength);
        tracing::info!(
            len = path.len(),
            "connection refused: the path is longer than {max} bytes"
        );
        let err = MoleculerError::new(
            "UriTooLongError",
            format!("The WebSocket path is longer than {max} bytes."),
            414,
            "PATH_TOO_LONG",
        );
        return Err(shared.error_response(&err));
    }
    Ok(path)
}

/// A connection admitted at its path: registered there and counted under the socket limits.
pub(crate) struct Admitted {
    pub(crate) reg: Registration,
    /// With recovery: the status frame and the replay, to write before anything queued.
    pub(crate) replay: Vec<Utf8Bytes>,
    pub(crate) guard: Registered,
    pub(crate) slot: Slot,
}

/// Admits a connection at `path`: its place under the socket limits (503), the access filter
/// (403), then its registration (503 when the gateway holds its most paths), with recovery
/// when `recover` asks for it (429 when the replay is over the address's budget).
pub(crate) async fn admit(
    shared: &Arc<Shared>,
    path: String,
    parts: &Parts,
    recover: Option<RecoverRequest>,
) -> Result<Admitted, Response> {
    let config = &shared.config;
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
            tracing::warn!(path, remote = ?connect.remote_addr, ?refusal, "connection refused: socket limit");
            return Err(unavailable(
                shared,
                "Too many WebSocket connections; try again later.",
            ));
        }
    };
    if let Some(filter) = &shared.filter {
        if !filter.on_connect(&connect).await {
            shared.metrics.refused(Why::Forbidden);
            tracing::info!(path, remote = ?connect.remote_addr, "connection refused by the filter");
            let err = MoleculerError::forbidden("The WebSocket connection was refused.");
            let mut resp = shared.error_response(&err);
            *resp.status_mut() = StatusCode::FORBIDDEN;
            return Err(resp);
        }
    }
    // Registered before the answer goes out: a client that sees the connection open may
    // trigger a broadcast at once, and it must reach this connection (queued until its task
    // runs). If the connection fails, dropping the guard removes the registration again.
    // A client that opted into message recovery (README "Message recovery") is registered
    // with the history locked, and first gets its status frame and replay.
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
            tracing::warn!(path, "connection refused: the gateway holds its most paths");
            return Err(unavailable(
                shared,
                "Too many WebSocket paths; try again later.",
            ));
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
            return Err(with_retry_after(shared.error_response(&err), secs));
        }
    };
    let guard = Registered {
        shared: shared.clone(),
        path,
        id: reg.id,
        recover: recover.is_some(),
    };
    Ok(Admitted {
        reg,
        replay,
        guard,
        slot,
    })
}

/// A connection's place in the registry; dropping it deregisters the connection at once
/// (close, error, TCP loss, or an opening that never completed).
pub(crate) struct Registered {
    pub(crate) shared: Arc<Shared>,
    pub(crate) path: String,
    pub(crate) id: u64,
    /// Opted into message recovery: holds the path's history.
    pub(crate) recover: bool,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.registry.deregister(&self.path, self.id);
        if self.recover {
            self.shared.recovery.release(&self.path);
        }
    }
}
