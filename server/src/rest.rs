//! REST side: routes that call actions, the params they pass, the responses they give.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use crate::error::{MoleculerError, ServerError};

/// A REST route: HTTP method + path pattern -> action.
///
/// Patterns are absolute paths whose segments may be `:name` variables (passed to the action as
/// params) and whose end may be `*` (any rest, also none): `/api/users/:id`, `/api/files/*`.
#[derive(Debug, Clone)]
pub struct Route {
    method: Option<String>,
    pattern: String,
    action: String,
    token: Option<String>,
}

impl Route {
    /// A route for `method` (e.g. `"GET"`; `"*"` for any method).
    pub fn new(method: &str, pattern: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            method: (method != "*").then(|| method.to_ascii_uppercase()),
            pattern: pattern.into(),
            action: action.into(),
            token: None,
        }
    }
    /// `GET pattern -> action`.
    pub fn get(pattern: impl Into<String>, action: impl Into<String>) -> Self {
        Self::new("GET", pattern, action)
    }
    /// `POST pattern -> action`.
    pub fn post(pattern: impl Into<String>, action: impl Into<String>) -> Self {
        Self::new("POST", pattern, action)
    }
    /// `PUT pattern -> action`.
    pub fn put(pattern: impl Into<String>, action: impl Into<String>) -> Self {
        Self::new("PUT", pattern, action)
    }
    /// `PATCH pattern -> action`.
    pub fn patch(pattern: impl Into<String>, action: impl Into<String>) -> Self {
        Self::new("PATCH", pattern, action)
    }
    /// `DELETE pattern -> action`.
    pub fn delete(pattern: impl Into<String>, action: impl Into<String>) -> Self {
        Self::new("DELETE", pattern, action)
    }
    /// Requires `Authorization: Bearer <token>` (else 401).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub(crate) fn compile(self) -> Result<CompiledRoute, ServerError> {
        let bad =
            |why: &str| ServerError::Route(format!("{} {}: {why}", self.pattern, self.action));
        let method = match &self.method {
            Some(m) => Some(Method::from_bytes(m.as_bytes()).map_err(|_| bad("bad method"))?),
            None => None,
        };
        let Some(rest) = self.pattern.strip_prefix('/') else {
            return Err(bad("the pattern must start with '/'"));
        };
        let (rest, wildcard) = match rest.strip_suffix('*') {
            Some(r) => (r.trim_end_matches('/'), true),
            None => (rest, false),
        };
        let mut segments = Vec::new();
        for seg in rest.split('/').filter(|s| !s.is_empty()) {
            if seg.contains('*') {
                return Err(bad("'*' may only end the pattern"));
            }
            segments.push(match seg.strip_prefix(':') {
                Some("") => return Err(bad("a ':' variable needs a name")),
                Some(name) => Segment::Var(name.to_owned()),
                None => Segment::Lit(seg.to_owned()),
            });
        }
        if self.action.is_empty() {
            return Err(bad("the action name is empty"));
        }
        Ok(CompiledRoute {
            method,
            segments,
            wildcard,
            action: self.action,
            token: self.token,
        })
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Lit(String),
    Var(String),
}

/// A route ready to match.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    method: Option<Method>,
    segments: Vec<Segment>,
    wildcard: bool,
    pub(crate) action: String,
    pub(crate) token: Option<String>,
}

impl CompiledRoute {
    /// The path variables when `method path` matches; `path` is percent-decoded.
    pub(crate) fn matches(&self, method: &Method, path: &str) -> Option<Vec<(String, String)>> {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return None;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut vars = Vec::new();
        for (seg, part) in self.segments.iter().zip(&parts) {
            match seg {
                Segment::Lit(l) if l == part => {}
                Segment::Lit(_) => return None,
                Segment::Var(name) => vars.push((name.clone(), (*part).to_owned())),
            }
        }
        Some(vars)
    }
}

/// Why a request's body gave no params; each becomes a Moleculer error response.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// 415: not `application/json`.
    UnsupportedMediaType(MoleculerError),
    /// 408: the body did not arrive within the body timeout.
    Timeout(MoleculerError),
    /// 400 or 413: malformed or too large.
    Invalid(MoleculerError),
}

impl BodyError {
    pub(crate) fn into_error(self) -> MoleculerError {
        match self {
            Self::UnsupportedMediaType(e) | Self::Timeout(e) | Self::Invalid(e) => e,
        }
    }
}

/// Whether a `Content-Type` value is `application/json` (parameters such as `charset` allowed).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Builds the action params: path variables, then the query, then the JSON body. A name
/// already set by the path wins over the query; path and query win over body fields.
///
/// A request whose method is not GET or HEAD, or that names a `Content-Type`, must be
/// `application/json` (else 415): browsers send cross-site requests without asking the server
/// first (no CORS preflight) only with form, text or no content types, so such requests
/// cannot reach an action from another site's page. The body must arrive within `timeout`
/// (else 408).
///
/// A body that is not a JSON object becomes the params itself when the path and query give
/// none; otherwise it is a 400.
pub(crate) async fn params(
    vars: Vec<(String, String)>,
    req: Request<Body>,
    max_body: usize,
    timeout: Duration,
) -> Result<Value, BodyError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)").to_owned());
    let needs_json = !matches!(*req.method(), Method::GET | Method::HEAD);
    match &content_type {
        Some(t) if is_json(t) => {}
        None if !needs_json => {}
        other => {
            let named = other.as_deref().unwrap_or("none");
            return Err(BodyError::UnsupportedMediaType(MoleculerError::new(
                "UnsupportedMediaTypeError",
                format!("The request must have 'Content-Type: application/json' (it has {named})."),
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            )));
        }
    }
    let mut map = Map::new();
    for (k, v) in vars {
        map.insert(k, Value::String(v));
    }
    if let Some(q) = req.uri().query() {
        for (k, v) in parse_query(q) {
            map.entry(k).or_insert(v);
        }
    }
    let read = tokio::time::timeout(timeout, to_bytes(req.into_body(), max_body)).await;
    let bytes = match read {
        Err(_) => {
            return Err(BodyError::Timeout(MoleculerError::new(
                "RequestTimeoutError",
                format!("The request body did not arrive within {timeout:?}."),
                408,
                "BODY_TIMEOUT",
            )))
        }
        Ok(Err(_)) => {
            return Err(BodyError::Invalid(MoleculerError::new(
                "PayloadTooLarge",
                format!("The request body is larger than {max_body} bytes."),
                413,
                "PAYLOAD_TOO_LARGE",
            )))
        }
        Ok(Ok(bytes)) => bytes,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(map));
    }
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
        BodyError::Invalid(MoleculerError::bad_request(
            format!("The request body is not valid JSON: {e}"),
            "INVALID_REQUEST_BODY",
        ))
    })?;
    match body {
        Value::Object(fields) => {
            for (k, v) in fields {
                map.entry(k).or_insert(v);
            }
            Ok(Value::Object(map))
        }
        other if map.is_empty() => Ok(other),
        _ => Err(BodyError::Invalid(MoleculerError::bad_request(
            "The request body must be a JSON object when the path or query has parameters.",
            "INVALID_REQUEST_BODY",
        ))),
    }
}

/// The query as string values; a repeated name becomes an array of its values.
fn parse_query(q: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let v = Value::String(v.into_owned());
        match out.get_mut(k.as_ref()) {
            None => {
                out.insert(k.into_owned(), v);
            }
            Some(Value::Array(items)) => items.push(v),
            Some(first) => *first = Value::Array(vec![first.take(), v]),
        }
    }
    out
}

/// 200 with compact JSON and no-cache headers, or 204 for `null`.
pub(crate) fn ok_response(value: &Value) -> Response {
    if value.is_null() {
        return with_no_cache(Response::builder().status(StatusCode::NO_CONTENT))
            .body(Body::empty())
            .unwrap_or_default();
    }
    json_response(StatusCode::OK, value)
}

/// A JSON response with the gateway's content type and cache headers.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    with_no_cache(Response::builder().status(status))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        )
        .body(Body::from(body))
        .unwrap_or_default()
}

fn with_no_cache(b: axum::http::response::Builder) -> axum::http::response::Builder {
    b.header(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate"),
    )
}

#[cfg(test)]
mod tests;
