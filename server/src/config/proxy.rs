//! [`ProxyHeader`]: the header a trusted reverse proxy writes the client's address into.

/// The header a trusted reverse proxy writes the client's address into
/// ([`GatewayConfig::trust_proxy`](super::GatewayConfig::trust_proxy)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyHeader {
    /// `Forwarded: for=...` (RFC 7239).
    Forwarded,
    /// `X-Forwarded-For: ...`.
    XForwardedFor,
}

impl std::str::FromStr for ProxyHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "forwarded" => Ok(Self::Forwarded),
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            _ => Err(format!(
                "{s:?}: name the header your proxy writes, forwarded or x-forwarded-for"
            )),
        }
    }
}
