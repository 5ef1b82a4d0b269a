//! How the client reaches a gateway: proxy rules and TLS, shared by the WebSocket driver and
//! the REST calls so that both take the same way.

pub(crate) mod proxy;
#[cfg(feature = "rustls")]
pub(crate) mod tls;

use std::sync::Arc;

use proxy::{ProxyChoice, ProxyRules};

use crate::Error;

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
#[derive(Clone, Debug, Default)]
pub(crate) struct Network {
    pub(crate) proxy: ProxyRules,
    #[cfg(feature = "rustls")]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl NetOptions {
    /// Reads the environment (for [`ProxyChoice::Environment`]) and builds the TLS
    /// configuration.
    pub(crate) fn resolve(&self) -> Result<Network, Error> {
        let proxy = ProxyRules::resolve(&self.proxy, &|name| std::env::var(name).ok())?;
        Ok(Network {
            proxy,
            #[cfg(feature = "rustls")]
            tls: Some(tls::client_config(&self.roots, self.accept_invalid_certs)?),
        })
    }
}

impl Network {
    /// The HTTP client for REST calls, on the same proxy rules and TLS configuration.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, Error> {
        // reqwest would read the environment itself: our rules replace its own.
        let mut builder = reqwest::Client::builder().no_proxy();
        if !self.proxy.is_empty() {
            let rules = Arc::new(self.proxy.clone());
            builder = builder.proxy(reqwest::Proxy::custom(move |url| {
                rules.for_url(url).map(|p| p.url.clone())
            }));
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
