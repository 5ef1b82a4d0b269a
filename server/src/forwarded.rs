//! The client's address behind a trusted reverse proxy: `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`, whichever ONE the operator names.
//!
//! Only the LAST entry of that header is used: it is the one the proxy right in front of the
//! gateway added (the address that connected to it). Entries to its left come from the client
//! or from proxies further out and can be forged by anyone. The other header is never read: a
//! proxy that writes `X-Forwarded-For` passes a client's own `Forwarded` through untouched.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::ProxyHeader;

/// The remote address for the access filter and the per-address limits: the TCP peer, or,
/// with `trust_proxy`, the address the proxy reports in that header (the peer when it reports
/// none usable).
pub(crate) fn remote_addr(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_proxy: Option<ProxyHeader>,
) -> Option<SocketAddr> {
    let reported = match trust_proxy {
        None => return peer,
        Some(ProxyHeader::Forwarded) => forwarded_for(headers),
        Some(ProxyHeader::XForwardedFor) => x_forwarded_for(headers),
    };
    reported.or(peer)
}

/// The `for=` of the last element of the `Forwarded` headers.
fn forwarded_for(headers: &HeaderMap) -> Option<SocketAddr> {
    let mut last_element_for = None;
    let mut seen = false;
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else { continue };
        for element in value.split(',') {
            seen = true;
            last_element_for = element.split(';').find_map(|pair| {
                let (key, node) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| node.trim().trim_matches('"').to_owned())
            });
        }
    }
    if !seen {
        return None;
    }
    parse_node(&last_element_for?)
}

/// The last address of the `X-Forwarded-For` headers.
fn x_forwarded_for(headers: &HeaderMap) -> Option<SocketAddr> {
    let value = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())?;
    parse_node(value)
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `[2001:db8::1]` or `2001:db8::1`;
/// `unknown` and obfuscated identifiers (`_hidden`) give `None`. No port: port 0.
fn parse_node(node: &str) -> Option<SocketAddr> {
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = node
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(node);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    const XFF: Option<ProxyHeader> = Some(ProxyHeader::XForwardedFor);
    const FWD: Option<ProxyHeader> = Some(ProxyHeader::Forwarded);

    #[test]
    fn only_when_trusted_only_the_named_header_and_its_last_entry() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7")]);
        assert_eq!(remote_addr(&h, Some(peer), None), Some(peer));
        assert_eq!(
            remote_addr(&h, Some(peer), XFF),
            Some("203.0.113.7:0".parse().unwrap())
        );
        let h = headers(&[
            ("forwarded", "for=1.1.1.1;proto=https"),
            ("forwarded", r#"for="[2001:db8::7]:4711";by=proxy"#),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            remote_addr(&h, Some(peer), FWD),
            Some("[2001:db8::7]:4711".parse().unwrap())
        );
        // A proxy that writes X-Forwarded-For: the client's own Forwarded is not believed.
        assert_eq!(
            remote_addr(&h, Some(peer), XFF),
            Some("198.51.100.1:0".parse().unwrap())
        );
    }

    #[test]
    fn unusable_values_fall_back_to_the_peer() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        for (k, v) in [
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", "for=1.1.1.1, proto=http"),
            ("x-forwarded-for", "not an ip"),
            ("x-forwarded-for", ""),
        ] {
            let h = headers(&[(k, v)]);
            let trusted = if k == "forwarded" { FWD } else { XFF };
            assert_eq!(remote_addr(&h, Some(peer), trusted), Some(peer), "{k}: {v}");
        }
        assert_eq!(remote_addr(&HeaderMap::new(), None, XFF), None);
        assert_eq!(
            parse_node("192.0.2.1:80"),
            Some("192.0.2.1:80".parse().unwrap())
        );
        assert_eq!(
            parse_node("2001:db8::1"),
            Some("[2001:db8::1]:0".parse().unwrap())
        );
    }
}
