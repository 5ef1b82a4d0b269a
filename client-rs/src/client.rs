//! The entry point: default headers, token provider, base URL; REST calls and WebSockets.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::Error;

/// A future of a token (`Send` on native targets, where the connection runs on a tokio task;
/// not in a browser, where nothing is).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type TokenFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;
#[cfg(target_arch = "wasm32")]
pub(crate) type TokenFuture = Pin<Box<dyn Future<Output = Option<String>>>>;

/// Where the bearer token comes from (asked by the drivers and REST; a build with neither has
/// nothing to ask it).
#[derive(Clone)]
#[cfg_attr(
    not(any(feature = "rest", feature = "tokio-runtime", feature = "browser")),
    allow(dead_code)
)]
pub(crate) enum TokenSource {
    /// Asked and answered at once.
    Now(Arc<dyn Fn() -> Option<String> + Send + Sync>),
    /// Asked, then awaited (a refresh over the network).
    Later(Arc<dyn Fn() -> TokenFuture + Send + Sync>),
}

/// Settings shared by the REST calls and the WebSockets of one [`Client`].
#[derive(Clone, Default)]
pub(crate) struct Defaults {
    pub(crate) headers: HeaderMap,
    pub(crate) token: Option<TokenSource>,
    pub(crate) base_url: Option<Url>,
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    pub(crate) timeout: Option<Duration>,
    /// Proxy rules and TLS configuration, shared with the REST client.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) net: crate::net::Network,
}

impl fmt::Debug for Defaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Defaults")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("token", &self.token.is_some())
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Defaults {
    /// The default headers plus `Authorization: Bearer <token>` from the provider, asked now.
    #[cfg(feature = "rest")]
    pub(crate) async fn headers_now(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        if let Some(token) = self.token_now().await {
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
                headers.insert(http::header::AUTHORIZATION, value);
            }
        }
        headers
    }

    /// The current token, if a provider is set and gives one (the browser driver asks the
    /// source itself, to hand the browser a promise).
    #[cfg_attr(
        not(any(
            feature = "rest",
            all(feature = "tokio-runtime", not(target_arch = "wasm32"))
        )),
        allow(dead_code)
    )]
    pub(crate) async fn token_now(&self) -> Option<String> {
        match self.token.as_ref()? {
            TokenSource::Now(f) => f(),
            TokenSource::Later(f) => f().await,
        }
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
    #[cfg(feature = "rest")]
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
    #[cfg(not(target_arch = "wasm32"))]
    net: crate::net::NetOptions,
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
    /// Keep it fast: it runs on the connection task. For a token fetched over the network,
    /// use [`token_provider_async`](Self::token_provider_async).
    pub fn token_provider(
        mut self,
        provider: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.defaults.token = Some(TokenSource::Now(Arc::new(provider)));
        self
    }

    /// An async function asked for the bearer token before every REST call and every
    /// connection attempt, and awaited (a refresh over the network, a token cache with
    /// expiry). `None` sends no token. A connection attempt waits for it within its connect
    /// timeout; a REST call waits for it before its own timeout starts. On native targets the
    /// future must be `Send`. In a browser, an answer still on its way when the next attempt
    /// starts serves that attempt (the provider is not asked twice at once).
    ///
    /// ```
    /// # use moleculer_ws_client::Client;
    /// # async fn refresh() -> Option<String> { Some("fresh".into()) }
    /// let client = Client::builder()
    ///     .base_url("http://127.0.0.1:3000/")
    ///     .token_provider_async(|| async { refresh().await })
    ///     .build();
    /// # assert!(client.is_ok());
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn token_provider_async<F>(
        mut self,
        provider: impl Fn() -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Option<String>> + Send + 'static,
    {
        self.defaults.token = Some(TokenSource::Later(Arc::new(move || {
            Box::pin(provider()) as TokenFuture
        })));
        self
    }

    /// An async function asked for the bearer token before every REST call and every
    /// connection attempt, and awaited. `None` sends no token.
    #[cfg(target_arch = "wasm32")]
    pub fn token_provider_async<F>(
        mut self,
        provider: impl Fn() -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Option<String>> + 'static,
    {
        self.defaults.token = Some(TokenSource::Later(Arc::new(move || {
            Box::pin(provider()) as TokenFuture
        })));
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
    #[cfg(feature = "rest")]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.defaults.timeout = Some(timeout);
        self
    }

    /// Sends every WebSocket and REST call through this proxy instead of the one the
    /// environment names: `http://host:port`, `https://host:port` (TLS to the proxy),
    /// `socks5h://`, `socks5://`, `socks4a://` or `socks4://` (the `h` and `a` forms let the
    /// proxy resolve names), with `user:password@` (percent-encoded) for Basic or SOCKS5
    /// authentication; `host:port` alone means `http://`. Through an HTTP proxy the WebSocket
    /// goes through a `CONNECT` tunnel, REST calls to `http://` URLs are forwarded and those to
    /// `https://` URLs tunnelled.
    ///
    /// Default: the environment, read by [`build`](Self::build) with hyper-util's rules (as
    /// reqwest): `HTTPS_PROXY` for `wss://` and `https://`, `HTTP_PROXY` for `ws://` and
    /// `http://`, `ALL_PROXY` for both, each in upper or lower case (upper first; none under
    /// CGI), and `NO_PROXY`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn proxy(mut self, url: &str) -> Self {
        self.net.proxy = crate::net::ProxyChoice::Explicit {
            url: url.to_owned(),
            bypass: String::new(),
        };
        self
    }

    /// Hosts reached directly although [`proxy`](Self::proxy) is set, in `NO_PROXY` syntax:
    /// comma-separated names (`example.com` covers its subdomains too), IP addresses, CIDR
    /// blocks (`10.0.0.0/8`), or `*` for every host (`host:port` and `*.x` entries match
    /// nothing). Default:
    /// none (the environment's `NO_PROXY` applies to the environment's proxies only). Call it
    /// after `proxy`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn proxy_bypass(mut self, hosts: &str) -> Self {
        match &mut self.net.proxy {
            crate::net::ProxyChoice::Explicit { bypass, .. } => {
                hosts.clone_into(bypass);
            }
            _ => self.keep(Error::InvalidConfig(
                "proxy_bypass needs an explicit proxy(): set it first".into(),
            )),
        }
        self
    }

    /// Connects directly, whatever the environment's proxy variables say.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn no_proxy(mut self) -> Self {
        self.net.proxy = crate::net::ProxyChoice::Off;
        self
    }

    /// Trusts the CA certificate(s) in `pem` (one or more `CERTIFICATE` blocks) for `wss://`,
    /// `https://` and `https://` proxies, in addition to the webpki roots (Mozilla's list,
    /// built in; the operating system's store is not read). For gateways with a private CA.
    #[cfg(all(feature = "rustls", not(target_arch = "wasm32")))]
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        match crate::net::tls::parse_pem(pem) {
            Ok(certs) => self.net.roots.extend(certs),
            Err(e) => self.keep(e),
        }
        self
    }

    /// DANGEROUS, for development only: accepts any server certificate (self-signed,
    /// expired, for another name), so anyone on the path can read and change the traffic,
    /// tokens included. Prefer [`add_root_certificate_pem`](Self::add_root_certificate_pem)
    /// with the development CA. Default false.
    #[cfg(all(feature = "rustls", not(target_arch = "wasm32")))]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.net.accept_invalid_certs = accept;
        self
    }

    /// The client, or the first invalid setting.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] or [`Error::InvalidUrl`] for a bad header, base URL, proxy
    /// (also one from the environment) or certificate.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        #[cfg(not(target_arch = "wasm32"))]
        let defaults = {
            let mut defaults = self.defaults;
            defaults.net = self.net.resolve()?;
            defaults
        };
        #[cfg(target_arch = "wasm32")]
        let defaults = self.defaults;
        Ok(Client {
            #[cfg(all(feature = "rest", not(target_arch = "wasm32")))]
            http: defaults.net.http_client()?,
            #[cfg(all(feature = "rest", target_arch = "wasm32"))]
            http: reqwest::Client::builder()
                .build()
                .map_err(|e| Error::InvalidConfig(format!("HTTP client: {e}")))?,
            defaults: Arc::new(defaults),
        })
    }

    fn keep(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }
}
