//! The entry point: default headers, token provider, base URL; REST calls and WebSockets.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use url::Url;

use crate::Error;

type TokenFn = dyn Fn() -> Option<String> + Send + Sync;

/// Settings shared by the REST calls and the WebSockets of one [`Client`].
#[derive(Clone, Default)]
pub(crate) struct Defaults {
    pub(crate) headers: HeaderMap,
    pub(crate) token: Option<Arc<TokenFn>>,
    pub(crate) base_url: Option<Url>,
    pub(crate) timeout: Option<Duration>,
}

impl fmt::Debug for Defaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Defaults")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("token", &self.token.is_some())
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Defaults {
    /// The default headers plus `Authorization: Bearer <token>` from the provider, asked now.
    pub(crate) fn headers_now(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        if let Some(token) = self.token.as_ref().and_then(|p| p()) {
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                headers.insert(AUTHORIZATION, value);
            }
        }
        headers
    }

    /// The current token, if a provider is set and returns one.
    #[cfg_attr(
        not(all(feature = "tokio-runtime", not(target_arch = "wasm32"))),
        allow(dead_code)
    )]
    pub(crate) fn token_now(&self) -> Option<String> {
        self.token.as_ref().and_then(|p| p())
    }
}

/// Parses one header, for the builders.
pub(crate) fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), Error> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| Error::InvalidConfig(format!("header name {name:?}: {e}")))?;
    let v = HeaderValue::from_str(value)
        .map_err(|e| Error::InvalidConfig(format!("header {name}: {e}")))?;
    Ok((n, v))
}

/// A client of one or more Moleculer gateways: REST calls (`get`, `post`, ...) and WebSockets
/// (`ws`) that share default headers, a token provider and a base URL.
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) defaults: Arc<Defaults>,
}

impl Client {
    /// A client without default headers, token or base URL.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the HTTP stack cannot start (no TLS backend).
    pub fn new() -> Result<Client, Error> {
        Client::builder().build()
    }

    /// A builder for the shared settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The base URL relative URLs are joined to, if set.
    pub fn base_url(&self) -> Option<&Url> {
        self.defaults.base_url.as_ref()
    }
}

/// Builds a [`Client`]. Never panics: the first invalid setting is returned by [`build`](Self::build).
#[derive(Default)]
#[must_use]
pub struct ClientBuilder {
    defaults: Defaults,
    error: Option<Error>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("defaults", &self.defaults)
            .field("error", &self.error)
            .finish()
    }
}

impl ClientBuilder {
    /// A header sent with every REST call and every WebSocket upgrade. Default: none.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match parse_header(name, value) {
            Ok((n, v)) => {
                self.defaults.headers.append(n, v);
            }
            Err(e) => self.keep(e),
        }
        self
    }

    /// A fixed bearer token: `Authorization: Bearer <token>` on every call and upgrade.
    pub fn token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token_provider(move || Some(token.clone()))
    }

    /// A function asked for the bearer token before every REST call and every connection
    /// attempt (so a refreshed token is picked up on reconnect). `None` sends no token.
    /// Keep it fast: it runs on the connection task.
    pub fn token_provider(
        mut self,
        provider: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.defaults.token = Some(Arc::new(provider));
        self
    }

    /// The URL relative paths are joined to, e.g. `http://127.0.0.1:3000/`. Default: none,
    /// every URL must be absolute.
    pub fn base_url(mut self, url: &str) -> Self {
        match Url::parse(url) {
            Ok(u) => self.defaults.base_url = Some(u),
            Err(e) => self.keep(Error::InvalidUrl(format!("{url}: {e}"))),
        }
        self
    }

    /// The default timeout of a REST call (from sending to the end of the body), which
    /// [`RequestBuilder::timeout`](crate::rest::RequestBuilder::timeout) overrides.
    /// Default: none, a call waits as long as the server takes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.defaults.timeout = Some(timeout);
        self
    }

    /// The client, or the first invalid setting.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] or [`Error::InvalidUrl`] for a bad header or base URL.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            defaults: Arc::new(self.defaults),
        })
    }

    fn keep(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }
}
