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
    /// blocks (`10.0.0.0/8`), or `*` for every host. Default:
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
        let (http, defaults) = {
            let mut defaults = self.defaults;
            defaults.net = self.net.resolve()?;
            (defaults.net.http_client()?, defaults)
        };
        #[cfg(target_arch = "wasm32")]
        let (http, defaults) = (
            reqwest::Client::builder()
                .build()
                .map_err(|e| Error::InvalidConfig(format!("HTTP client: {e}")))?,
            self.defaults,
        );
        Ok(Client {
            http,
            defaults: Arc::new(defaults),
        })
    }

    fn keep(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }
}
