//! The access filter: who may open a WebSocket, and which paths the sweep removed.
//!
//! Mirrors the `WebSocketFilter` of moleculer-java-web. A refusal answers the HTTP upgrade with
//! 403: no socket is opened.

use std::net::SocketAddr;

use crate::broker::BoxFuture;

/// What a filter sees of an upgrade request.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) remote_addr: Option<SocketAddr>,
}

impl ConnectRequest {
    /// A request for tests and custom front ends: `path` percent-decoded with a leading slash,
    /// `query` without the `?`.
    pub fn new(path: impl Into<String>, query: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
            remote_addr: None,
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The registry path: percent-decoded, leading slash, no query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string, without `?`; empty when there is none.
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header as (lower-case name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The peer's address, when the gateway knows it; with
    /// [`trust_proxy`](crate::GatewayConfig::trust_proxy), the client's address as the reverse
    /// proxy reports it (port 0 when the proxy gives none).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }
}

/// Decides, asynchronously, whether a WebSocket may open; hears which paths were removed.
pub trait WebSocketFilter: Send + Sync + 'static {
    /// `true` accepts the upgrade; `false` answers it with 403.
    fn on_connect<'a>(&'a self, request: &'a ConnectRequest) -> BoxFuture<'a, bool>;

    /// Called by the periodic sweep with the paths removed since its last run (a path goes when
    /// its last socket closes). Default: nothing.
    fn on_close(&self, _paths: &[String]) {}
}

/// Accepts only paths that start with one of the prefixes.
#[derive(Debug, Clone)]
pub struct PathPrefixFilter(pub Vec<String>);

impl WebSocketFilter for PathPrefixFilter {
    fn on_connect<'a>(&'a self, request: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        let ok = self
            .0
            .iter()
            .any(|p| request.path().starts_with(p.as_str()));
        Box::pin(async move { ok })
    }
}

/// Accepts only requests whose `Origin` header is one of the list (exact match). A request
/// with no `Origin` (a program, not a browser) is accepted: the check stops cross-site use from
/// browsers, which always send it.
#[derive(Debug, Clone)]
pub struct OriginFilter(pub Vec<String>);

impl WebSocketFilter for OriginFilter {
    fn on_connect<'a>(&'a self, request: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        let ok = match request.header("origin") {
            Some(origin) => self.0.iter().any(|o| o == origin),
            None => true,
        };
        Box::pin(async move { ok })
    }
}

/// Accepts only requests carrying the token as `?token=` or `Authorization: Bearer`.
#[derive(Clone)]
pub struct TokenFilter(pub String);

impl std::fmt::Debug for TokenFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenFilter(..)")
    }
}

impl WebSocketFilter for TokenFilter {
    fn on_connect<'a>(&'a self, request: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        let from_query = request.query_param("token");
        let ok = from_query.is_some_and(|t| token_eq(&t, &self.0))
            || bearer_matches(request.header("authorization"), &self.0);
        Box::pin(async move { ok })
    }
}

/// Whether an `Authorization` header value is `Bearer <token>` (the scheme name in any case,
/// RFC 9110 section 11.1; the token compared in constant time).
pub(crate) fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some((scheme, credentials)) = header.and_then(|h| h.trim_start().split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && token_eq(credentials.trim(), token)
}

/// Compares a presented token with the secret in time that does not depend on where they
/// differ (only on their lengths), so that response times do not reveal the secret.
pub(crate) fn token_eq(presented: &str, secret: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.as_bytes().ct_eq(secret.as_bytes()).into()
}

/// Runs filters in order; the first refusal wins. Every filter hears `on_close`.
pub struct AllFilters(pub Vec<Box<dyn WebSocketFilter>>);

impl WebSocketFilter for AllFilters {
    fn on_connect<'a>(&'a self, request: &'a ConnectRequest) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            for f in &self.0 {
                if !f.on_connect(request).await {
                    return false;
                }
            }
            true
        })
    }

    fn on_close(&self, paths: &[String]) {
        for f in &self.0 {
            f.on_close(paths);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builtin_filters_decide_as_documented() {
        let req = ConnectRequest::new("/ws/chat", "a=1&token=s%20t")
            .with_header("Origin", "https://ok.example");
        assert!(PathPrefixFilter(vec!["/ws/".into()]).on_connect(&req).await);
        assert!(
            !PathPrefixFilter(vec!["/admin".into()])
                .on_connect(&req)
                .await
        );
        assert!(
            OriginFilter(vec!["https://ok.example".into()])
                .on_connect(&req)
                .await
        );
        assert!(
            !OriginFilter(vec!["https://other".into()])
                .on_connect(&req)
                .await
        );
        assert!(TokenFilter("s t".into()).on_connect(&req).await);
        assert!(!TokenFilter("nope".into()).on_connect(&req).await);
        let bearer = ConnectRequest::new("/x", "").with_header("Authorization", "Bearer k");
        assert!(TokenFilter("k".into()).on_connect(&bearer).await);
        let lower = ConnectRequest::new("/x", "").with_header("Authorization", "bearer  k ");
        assert!(TokenFilter("k".into()).on_connect(&lower).await);
        for wrong in ["Basic k", "Bearer", "Bearer k2", "Bearerk", "Bearer K"] {
            let req = ConnectRequest::new("/x", "").with_header("Authorization", wrong);
            assert!(!TokenFilter("k".into()).on_connect(&req).await, "{wrong}");
        }
        let all = AllFilters(vec![
            Box::new(PathPrefixFilter(vec!["/ws/".into()])),
            Box::new(TokenFilter("nope".into())),
        ]);
        assert!(!all.on_connect(&req).await);
    }
}
