//! How the client reaches a gateway: proxy rules and TLS, shared by the WebSocket driver and
//! the REST calls so that both take the same way.
//!
//! The proxy rules are hyper-util's `Matcher` (the one reqwest uses): the environment's
//! `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (as curl reads them), or one
//! explicit proxy with a bypass list. REST calls get the same proxy through reqwest (built
//! from the same strings, so the same `Matcher`); the WebSocket driver asks the `Matcher` and
//! opens the tunnel itself (`driver/connect.rs`).

#[cfg(feature = "rustls")]
pub(crate) mod tls;

use std::sync::Arc;

use hyper_util::client::proxy::matcher::{Intercept, Matcher};

use crate::Error;

/// How the proxy is chosen, as set on the builder.
#[derive(Clone, Debug, Default)]
pub(crate) enum ProxyChoice {
    /// From the environment (the default).
    #[default]
    Environment,
    /// Never a proxy.
    Off,
    /// This proxy for every URL, except the bypass list.
    Explicit { url: String, bypass: String },
}

/// What the builder collects.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetOptions {
    pub(crate) proxy: ProxyChoice,
    #[cfg(feature = "rustls")]
    pub(crate) roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    #[cfg(feature = "rustls")]
    pub(crate) accept_invalid_certs: bool,
}

/// The resolved settings: which proxy for which URL, and the TLS configuration.
#[derive(Clone, Default)]
pub(crate) struct Network {
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    choice: ProxyChoice,
    proxy: Option<Arc<Matcher>>,
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The proxy URL may hold credentials: only whether there are rules.
        f.debug_struct("Network")
            .field("proxy", &self.proxy.is_some())
            .finish_non_exhaustive()
    }
}

/// The schemes a proxy URL may have.
const PROXY_SCHEMES: [&str; 6] = ["http", "https", "socks4", "socks4a", "socks5", "socks5h"];

/// An explicit proxy URL with its scheme (`http://` when it has none), or why it is invalid.
fn proxy_url(raw: &str) -> Result<String, Error> {
    let raw = raw.trim();
    let url = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let invalid = |why: &str| Error::InvalidConfig(format!("proxy: {why}"));
    let uri: http::Uri = url.parse().map_err(|e| invalid(&format!("{e}")))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if !PROXY_SCHEMES.contains(&scheme) {
        return Err(invalid(&format!(
            "scheme {scheme:?} is not supported: use http://, https://, socks5://, socks5h://, \
             socks4:// or socks4a://"
        )));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    // SOCKS5 carries the user and the password in at most 255 bytes each (RFC 1929).
    if scheme.starts_with("socks") {
        let userinfo = uri
            .authority()
            .and_then(|a| a.as_str().rsplit_once('@'))
            .map(|(u, _)| u);
        // As hyper-util reads them: split at the first `:`, decoded (lossily) as UTF-8.
        let too_long = userinfo.is_some_and(|u| {
            let (user, password) = u.split_once(':').unwrap_or((u, ""));
            [user, password].iter().any(|part| {
                percent_encoding::percent_decode_str(part)
                    .decode_utf8_lossy()
                    .len()
                    > 255
            })
        });
        if too_long {
            return Err(invalid("a SOCKS user or password is longer than 255 bytes"));
        }
    }
    Ok(url)
}

/// Whether a bypass list says `*`: every host, IP addresses too (hyper-util's matcher takes
/// `*` for every host *name* only, so such a list turns the proxy off here, for both ways).
fn bypasses_all(list: &str) -> bool {
    list.split(',').any(|entry| entry.trim() == "*")
}

impl NetOptions {
    /// Reads the environment (for [`ProxyChoice::Environment`]) and builds the TLS
    /// configuration.
    pub(crate) fn resolve(&self) -> Result<Network, Error> {
        let env_bypass = || {
            ["NO_PROXY", "no_proxy"]
                .iter()
                .find_map(|name| std::env::var(name).ok())
                .unwrap_or_default()
        };
        let (choice, proxy) = match &self.proxy {
            ProxyChoice::Off => (ProxyChoice::Off, None),
            ProxyChoice::Environment if bypasses_all(&env_bypass()) => (ProxyChoice::Off, None),
            ProxyChoice::Explicit { url, bypass } if bypasses_all(bypass) => {
                proxy_url(url)?;
                (ProxyChoice::Off, None)
            }
            // hyper-util reads the variables (`from_system`: the environment, plus the
            // system's settings on macOS and Windows when reqwest's `system-proxy` is on,
            // exactly as reqwest does for REST).
            ProxyChoice::Environment => (
                ProxyChoice::Environment,
                Some(Arc::new(Matcher::from_system())),
            ),
            ProxyChoice::Explicit { url, bypass } => {
                let url = proxy_url(url)?;
                let matcher = Matcher::builder()
                    .all(url.clone())
                    .no(bypass.clone())
                    .build();
                (
                    ProxyChoice::Explicit {
                        url,
                        bypass: bypass.clone(),
                    },
                    Some(Arc::new(matcher)),
                )
            }
        };
        Ok(Network {
            choice,
            proxy,
            #[cfg(feature = "rustls")]
            tls: Some(tls::client_config(&self.roots, self.accept_invalid_certs)?),
        })
    }
}

impl Network {
    /// The proxy for a `ws://`/`wss://` (or `http://`/`https://`) URL, if one applies.
    #[cfg_attr(
        not(all(feature = "tokio-runtime", not(target_arch = "wasm32"))),
        allow(dead_code)
    )]
    pub(crate) fn proxy_for(&self, url: &url::Url) -> Option<Intercept> {
        let matcher = self.proxy.as_ref()?;
        let scheme = match url.scheme() {
            "ws" | "http" => "http",
            "wss" | "https" => "https",
            _ => return None,
        };
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let uri: http::Uri = format!("{scheme}://{host}:{port}/").parse().ok()?;
        matcher.intercept(&uri)
    }

    /// The HTTP client for REST calls, on the same proxy rules and TLS configuration.
    #[cfg(feature = "rest")]
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, Error> {
        let mut builder = reqwest::Client::builder();
        match &self.choice {
            // reqwest reads the environment itself, with the same hyper-util Matcher.
            ProxyChoice::Environment => {}
            ProxyChoice::Off => builder = builder.no_proxy(),
            ProxyChoice::Explicit { url, bypass } => {
                let proxy = reqwest::Proxy::all(url.as_str())
                    .map_err(|e| Error::InvalidConfig(format!("proxy: {e}")))?
                    .no_proxy(reqwest::NoProxy::from_string(bypass));
                builder = builder.no_proxy().proxy(proxy);
            }
        }
        #[cfg(feature = "rustls")]
        if let Some(tls) = &self.tls {
            builder = builder.tls_backend_preconfigured(rustls::ClientConfig::clone(tls));
        }
        builder
            .build()
            .map_err(|e| Error::InvalidConfig(format!("HTTP client: {e}")))
    }
}
