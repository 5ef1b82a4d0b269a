//! Plain HTTP requests: dispatch (WebSocket upgrade, event stream, `/metrics`, REST routes, static files,
//! 404), the REST call with its checks and timeouts, and CORS.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::MoleculerError;
use crate::filter::bearer_matches;
use crate::rest::{self, BodyError, CompiledRoute};
use crate::state::Shared;
use crate::{sse, upgrade};

/// The gateway's router: every path goes to [`dispatch`]; CORS when configured.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let cors = cors_layer(&shared.config.cors_origins);
    let router = Router::new().fallback(dispatch).with_state(shared);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Every request: WebSocket upgrade or event stream (any path), `/metrics`, REST routes, static
/// files, 404.
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response {
    if upgrade::is_upgrade(&req) {
        return upgrade::upgrade(shared, req).await;
    }
    if shared.config.event_streams && sse::is_event_stream(&req) {
        return sse::open(shared, req).await;
    }
    let Some(path) = crate::admit::registry_path(req.uri().path()) else {
        return shared.error_response(&MoleculerError::bad_request(
            "The path is not valid UTF-8.",
            "INVALID_PATH",
        ));
    };
    if path == "/metrics" && req.method() == Method::GET {
        return metrics(&shared, &req);
    }
    let method = req.method().clone();
    if let Some((route, vars)) = shared
        .routes
        .iter()
        .find_map(|r| r.matches(&method, &path).map(|v| (r, v)))
    {
        let started = Instant::now();
        let resp = call_route(&shared, route, vars, req).await;
        shared
            .metrics
            .rest_call(resp.status().as_u16(), started.elapsed());
        return resp;
    }
    let wants_html = accepts_html(&req);
    if let (Some(files), true) = (
        &shared.static_files,
        method == Method::GET || method == Method::HEAD,
    ) {
        match files.clone().try_call(req).await {
            Ok(resp) if resp.status() != StatusCode::NOT_FOUND => return resp.map(Body::new),
            Ok(_) => {}
            Err(e) => tracing::warn!(path, error = %e, "static file error"),
        }
    }
    not_found(&path, wants_html)
}

/// `GET /metrics`: the Prometheus text, behind the metrics token (or the token) when set.
fn metrics(shared: &Shared, req: &Request<Body>) -> Response {
    let config = &shared.config;
    let token = config.metrics_token.as_ref().or(config.token.as_ref());
    if let Some(refused) = require_bearer(shared, req, token) {
        return refused;
    }
    let (top, other, paths) = shared.registry.top_paths(config.metrics_max_paths);
    let mut text = shared.metrics.render(&top, other, paths);
    shared.recovery.render_metrics(&mut text);
    shared.broker.render_transport_metrics(&mut text);
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Body::from(text))
        .unwrap_or_default()
}

/// Calls a route's action: token, body (type, size, time), then the action under the request
/// timeout (an expired call's action is aborted).
async fn call_route(
    shared: &Shared,
    route: &CompiledRoute,
    vars: Vec<(String, String)>,
    req: Request<Body>,
) -> Response {
    if let Some(refused) = require_bearer(shared, &req, route.token.as_ref()) {
        return refused;
    }
    let config = &shared.config;
    let params = match rest::params(vars, req, config.max_body_size, config.body_timeout).await {
        Ok(p) => p,
        Err(BodyError::Invalid(e)) => return shared.error_response(&e),
        Err(BodyError::UnsupportedMediaType(e)) => {
            return shared.error_response(&e);
        }
        Err(BodyError::Timeout(e)) => {
            // The rest of the body may still come: do not read it, close the connection.
            let mut resp = shared.error_response(&e);
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return resp;
        }
    };
    let limit = config.request_timeout;
    match tokio::time::timeout(limit, shared.broker.call(&route.action, params)).await {
        Ok(Ok(v)) => rest::ok_response(&v),
        Ok(Err(e)) => shared.error_response(&e),
        Err(_) => shared.error_response(
            &MoleculerError::new(
                "RequestTimeoutError",
                format!("Request timed out after {limit:?}: '{}'.", route.action),
                504,
                "REQUEST_TIMEOUT",
            )
            .retryable(true),
        ),
    }
}

/// The 401 for a request without `Authorization: Bearer <token>`, when a token is required.
fn require_bearer(
    shared: &Shared,
    req: &Request<Body>,
    token: Option<&String>,
) -> Option<Response> {
    let token = token?;
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    (!bearer_matches(auth, token)).then(|| {
        shared.error_response(&MoleculerError::unauthorized(
            "A valid 'Authorization: Bearer' token is required.",
        ))
    })
}

/// CORS for the configured origins (validated by the config); `None` when there are none.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::HEAD,
                Method::OPTIONS,
            ])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

fn accepts_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// 404: JSON `{"success":false,"message":"Not Found: /p"}`, plain text for browsers asking HTML.
fn not_found(path: &str, html: bool) -> Response {
    let message = format!("Not Found: {path}");
    if html {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain;charset=utf-8")
            .body(Body::from(message))
            .unwrap_or_default();
    }
    rest::json_response(
        StatusCode::NOT_FOUND,
        &json!({"success": false, "message": message}),
    )
}
