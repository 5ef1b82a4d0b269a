//! HTTP proxies: which one a URL goes through (explicit or from the environment), the
//! `NO_PROXY` bypass list, and Basic credentials. The WebSocket driver and REST share it.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use url::Url;

use crate::Error;

/// One proxy server (`http://` or `https://`), credentials kept apart from its display.
#[derive(Clone, PartialEq)]
pub(crate) struct ProxyServer {
    /// `http` or `https` (TLS to the proxy itself).
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Basic <base64(user:password)>`, when the URL had credentials.
    pub(crate) authorization: Option<String>,
    /// The URL as reqwest takes it (with the credentials).
    pub(crate) url: Url,
}

impl fmt::Display for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProxyServer({self}, credentials: {})",
            self.authorization.is_some()
        )
    }
}

impl ProxyServer {
    /// Parses a proxy URL; a bare `host:port` means `http://host:port`.
    pub(crate) fn parse(raw: &str) -> Result<ProxyServer, String> {
        let raw = raw.trim();
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        let url = Url::parse(&with_scheme).map_err(|e| format!("{e}"))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "scheme {other:?} is not supported: use an http:// or https:// proxy"
                ))
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err("no host".into()),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "no port".to_owned())?;
        let authorization = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode_str(url.username()).decode_utf8_lossy();
            let password = percent_decode_str(url.password().unwrap_or("")).decode_utf8_lossy();
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            Some(format!("Basic {token}"))
        };
        Ok(ProxyServer {
            tls,
            host,
            port,
            authorization,
            url,
        })
    }
}

/// Which proxy each kind of URL goes through, and which hosts bypass it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ProxyRules {
    /// For `http://` and `ws://` URLs.
    pub(crate) http: Option<ProxyServer>,
    /// For `https://` and `wss://` URLs.
    pub(crate) https: Option<ProxyServer>,
    pub(crate) bypass: NoProxy,
}

/// How the proxy is chosen, as set on the builder.
#[derive(Clone, Debug, Default)]
pub(crate) enum ProxyChoice {
    /// From the environment (the default): `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`,
    /// `NO_PROXY`, lower or upper case.
    #[default]
    Environment,
    /// Never a proxy.
    Off,
    /// This proxy for every URL, except the bypass list.
    Explicit { url: String, bypass: String },
}

impl ProxyRules {
    /// The rules for a choice; `env` reads a variable (injected for tests).
    pub(crate) fn resolve(
        choice: &ProxyChoice,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProxyRules, Error> {
        match choice {
            ProxyChoice::Off => Ok(ProxyRules::default()),
            ProxyChoice::Explicit { url, bypass } => {
                let server = ProxyServer::parse(url)
                    .map_err(|e| Error::InvalidConfig(format!("proxy URL {url:?}: {e}")))?;
                Ok(ProxyRules {
                    http: Some(server.clone()),
                    https: Some(server),
                    bypass: NoProxy::parse(bypass),
                })
            }
            ProxyChoice::Environment => Self::from_env(env),
        }
    }

    fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ProxyRules, Error> {
        fn get(
            env: &dyn Fn(&str) -> Option<String>,
            names: &[&'static str],
        ) -> Option<(&'static str, String)> {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
        }
        // Behind CGI, `HTTP_PROXY` may come from a request's `Proxy:` header (httpoxy):
        // only the lower-case name counts there.
        let http_names: &[&'static str] = if env("REQUEST_METHOD").is_some() {
            &["http_proxy"]
        } else {
            &["http_proxy", "HTTP_PROXY"]
        };
        let parse = |found: Option<(&'static str, String)>| -> Result<Option<ProxyServer>, Error> {
            let Some((name, value)) = found else {
                return Ok(None);
            };
            if value.trim_start().to_ascii_lowercase().starts_with("socks") {
                // SOCKS proxies (common in ALL_PROXY) are not supported: go direct.
                return Ok(None);
            }
            ProxyServer::parse(&value)
                .map(Some)
                .map_err(|e| Error::InvalidConfig(format!("{name}={value:?}: {e}")))
        };
        let all = parse(get(env, &["all_proxy", "ALL_PROXY"]))?;
        let http = parse(get(env, http_names))?.or_else(|| all.clone());
        let https = parse(get(env, &["https_proxy", "HTTPS_PROXY"]))?.or(all);
        let bypass = get(env, &["no_proxy", "NO_PROXY"])
            .map(|(_, v)| NoProxy::parse(&v))
            .unwrap_or_default();
        Ok(ProxyRules {
            http,
            https,
            bypass,
        })
    }

    /// Whether any URL goes through a proxy.
    pub(crate) fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for `url`, or `None` to go direct.
    pub(crate) fn for_url(&self, url: &Url) -> Option<&ProxyServer> {
        let server = match url.scheme() {
            "https" | "wss" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        if self.bypass.matches(&host, url.port_or_known_default()) {
            return None;
        }
        Some(server)
    }
}

/// A `NO_PROXY` list: `*`, host names (a name also covers its subdomains; a leading `.` or
/// `*.` is the same), IP addresses, CIDR blocks, each optionally with `:port`; separated by
/// commas or spaces.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct NoProxy {
    all: bool,
    entries: Vec<(Entry, Option<u16>)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Domain(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
}

impl NoProxy {
    pub(crate) fn parse(list: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for raw in list.split([',', ' ', '\t']).map(str::trim) {
            if raw.is_empty() {
                continue;
            }
            if raw == "*" {
                out.all = true;
                continue;
            }
            let (host, port) = split_port(raw);
            let host = host.trim_start_matches("*.").trim_start_matches('.');
            let entry = if let Some((ip, bits)) = host.split_once('/') {
                match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Ok(ip), Ok(bits)) => Entry::Cidr(ip, bits),
                    _ => continue,
                }
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                Entry::Ip(ip)
            } else {
                Entry::Domain(host.to_ascii_lowercase())
            };
            out.entries.push((entry, port));
        }
        out
    }

    /// Whether `host` (lower case; an IP without brackets) on `port` bypasses the proxy.
    pub(crate) fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if self.all {
            return true;
        }
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|(entry, want_port)| {
            if want_port.is_some() && *want_port != port {
                return false;
            }
            match (entry, ip) {
                (Entry::Ip(e), Some(ip)) => *e == ip,
                (Entry::Cidr(net, bits), Some(ip)) => in_cidr(ip, *net, *bits),
                (Entry::Domain(d), None) => {
                    host == d
                        || host
                            .strip_suffix(d.as_str())
                            .is_some_and(|rest| rest.ends_with('.'))
                }
                _ => false,
            }
        })
    }
}

/// `host:port` → (host, port); `[v6]:port` and a bare IPv6 address too.
fn split_port(raw: &str) -> (&str, Option<u16>) {
    if let Some(rest) = raw.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host, Some(p)),
            Err(_) => (raw, None),
        },
        _ => (raw, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    fn rules(vars: &[(&str, &str)]) -> Result<ProxyRules, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProxyRules::resolve(&ProxyChoice::Environment, &move |k| map.get(k).cloned())
    }

    fn via(r: &ProxyRules, url: &str) -> Option<String> {
        r.for_url(&Url::parse(url).unwrap()).map(|p| p.to_string())
    }

    #[test]
    fn environment_by_scheme_both_cases() {
        let r = rules(&[("HTTP_PROXY", "http://h:1"), ("https_proxy", "https://s:2")]).unwrap();
        assert_eq!(via(&r, "ws://g/ws").as_deref(), Some("http://h:1"));
        assert_eq!(via(&r, "http://g/api").as_deref(), Some("http://h:1"));
        assert_eq!(via(&r, "wss://g/ws").as_deref(), Some("https://s:2"));
        // Lower case wins over upper case.
        let r = rules(&[("http_proxy", "a:3"), ("HTTP_PROXY", "http://b:4")]).unwrap();
        assert_eq!(via(&r, "ws://g/").as_deref(), Some("http://a:3"));
        // ALL_PROXY fills in; a SOCKS one is ignored; CGI ignores upper-case HTTP_PROXY.
        let r = rules(&[("ALL_PROXY", "http://all:5")]).unwrap();
        assert_eq!(via(&r, "wss://g/").as_deref(), Some("http://all:5"));
        assert!(rules(&[("all_proxy", "socks5://s:1080")])
            .unwrap()
            .is_empty());
        let cgi = rules(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]).unwrap();
        assert!(cgi.is_empty());
        assert!(matches!(
            rules(&[("HTTPS_PROXY", "http://[bad")]),
            Err(Error::InvalidConfig(m)) if m.contains("HTTPS_PROXY")
        ));
        assert!(rules(&[]).unwrap().is_empty());
    }

    #[test]
    fn no_proxy_matching() {
        let r = rules(&[
            ("HTTP_PROXY", "http://p:1"),
            (
                "no_proxy",
                "example.com, .internal,10.0.0.0/8 ,::1, 127.0.0.1:3000",
            ),
        ])
        .unwrap();
        for direct in [
            "ws://example.com/",
            "ws://api.example.com/",
            "ws://x.internal/",
            "ws://10.2.3.4/",
            "ws://[::1]:9/",
            "ws://127.0.0.1:3000/",
        ] {
            assert_eq!(via(&r, direct), None, "{direct}");
        }
        for proxied in [
            "ws://notexample.com/",
            "ws://11.0.0.1/",
            "ws://127.0.0.1:3001/",
            "ws://internal.org/",
        ] {
            assert!(via(&r, proxied).is_some(), "{proxied}");
        }
        let all = rules(&[("HTTP_PROXY", "http://p:1"), ("NO_PROXY", "*")]).unwrap();
        assert_eq!(via(&all, "ws://anything/"), None);
    }

    #[test]
    fn credentials_become_basic_auth_and_stay_out_of_display() {
        let p = ProxyServer::parse("http://ann:s%3Acret@127.0.0.1:8080").unwrap();
        assert_eq!(p.authorization.as_deref(), Some("Basic YW5uOnM6Y3JldA=="));
        assert_eq!(p.to_string(), "http://127.0.0.1:8080");
        assert!(!format!("{p:?}").contains("cret"));
        assert!(ProxyServer::parse("socks5://h:1").is_err());
        let explicit = ProxyRules::resolve(
            &ProxyChoice::Explicit {
                url: "https://p".into(),
                bypass: "localhost".into(),
            },
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            via(&explicit, "http://g/").as_deref(),
            Some("https://p:443")
        );
        assert_eq!(via(&explicit, "ws://localhost:1/"), None);
        assert!(
            ProxyRules::resolve(&ProxyChoice::Off, &|_| Some("http://x:1".into()))
                .unwrap()
                .is_empty()
        );
    }
}
