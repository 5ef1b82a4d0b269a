//! TLS on the gateway's own listener: PEM files to a rustls server configuration.
//!
//! The crypto provider is named explicitly (ring, which the cluster transport already builds):
//! a build graph that enables two rustls providers (ring here, aws-lc-rs through a client)
//! has no unambiguous process default, and rustls would panic at the first handshake.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::ServerError;

/// Reads a certificate chain and its private key (PEM) into a TLS acceptor (HTTP/1.1 ALPN).
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServerError> {
    let read = |what: &str, path: &Path| {
        std::fs::read(path).map_err(|e| {
            ServerError::Tls(format!("cannot read the {what} {}: {e}", path.display()))
        })
    };
    let cert_pem = read("certificate", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: not a PEM certificate: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let key_pem = read("private key", key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| ServerError::Tls(format!("{}: not a PEM private key: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An accepted connection, plain or TLS (`Either` delegates reads and writes, vectored ones
/// included, to the side it holds).
pub(crate) type Conn = tokio_util::either::Either<TcpStream, Box<TlsStream<TcpStream>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_invalid_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("mws-tls-unit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let missing = dir.join("missing.pem");
        let err = acceptor(&missing, &missing).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("cannot read the certificate")),
            "{err:?}"
        );
        let empty = dir.join("empty.pem");
        let _ = std::fs::write(&empty, b"not pem");
        let err = acceptor(&empty, &empty).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("no certificate")),
            "{err:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
