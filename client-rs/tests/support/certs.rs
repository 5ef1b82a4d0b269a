//! A test CA and gateway certificates, generated at test time (rcgen), and PEM files for the
//! gateway's `tls_pem_files`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA that signs certificates for `localhost` and `127.0.0.1`.
pub struct TestCa {
    pub pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate for `localhost` and `127.0.0.1`, signed by a [`TestCa`], with its key.
pub struct Issued {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    /// The PEM files (removed on drop).
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    dir: PathBuf,
}

impl Drop for Issued {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`, written to PEM files.
    pub fn issue(&self) -> Issued {
        static N: AtomicUsize = AtomicUsize::new(0);
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "mws-client-tests-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Issued {
            cert,
            key,
            cert_path,
            key_path,
            dir,
        }
    }
}

impl Issued {
    /// A rustls server configuration with this certificate (ring, named explicitly).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![self.cert.der().clone()], key)
        .unwrap();
        Arc::new(config)
    }
}
