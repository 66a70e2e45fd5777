//! Certificates for TLS tests, made fresh by each test: a CA, a server
//! certificate for `localhost` and `127.0.0.1` signed by it, and a client
//! certificate for mutual TLS, written as PEM files into a directory of
//! their own (removed on drop), since exporters are configured with paths.
//!
//! ```
//! use pocketflow_test_support::otlp::OtlpReceiver;
//! use pocketflow_test_support::tls::TestPki;
//!
//! let pki = TestPki::new()?;
//! let receiver = OtlpReceiver::https(&pki.server())?;
//! assert!(receiver.endpoint().starts_with("https://localhost:"));
//! assert!(std::fs::read_to_string(pki.ca_path())?.starts_with("-----BEGIN CERTIFICATE-----"));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls;

/// A CA and the certificates it signed, as PEM text and as files.
pub struct TestPki {
    dir: PathBuf,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// A server's side of TLS: its certificate and key, and the CA its clients'
/// certificates must come from when it asks for them (mutual TLS).
#[derive(Clone)]
pub struct ServerTls {
    cert: String,
    key: String,
    client_ca: Option<String>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("mutual", &self.client_ca.is_some()).finish_non_exhaustive()
    }
}

fn pki_error(error: rcgen::Error) -> io::Error {
    io::Error::other(format!("making a test certificate: {error}"))
}

impl TestPki {
    /// A new CA, server and client certificate, written under the system's
    /// temporary directory.
    pub fn new() -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (ca_params, ca_key) = ca("pocketflow test CA")?;
        let ca = ca_params.self_signed(&ca_key).map_err(pki_error)?.pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let (server_cert, server_key) =
            leaf(&issuer, "localhost", vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        let (client_cert, client_key) = leaf(&issuer, "pocketflow test client", Vec::new())?;
        let dir = std::env::temp_dir().join(format!(
            "pocketflow-test-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let pki = Self { dir, ca, server_cert, server_key, client_cert, client_key };
        for (name, text) in [
            ("ca.pem", &pki.ca),
            ("server.pem", &pki.server_cert),
            ("server.key", &pki.server_key),
            ("client.pem", &pki.client_cert),
            ("client.key", &pki.client_key),
        ] {
            std::fs::write(pki.dir.join(name), text)?;
        }
        Ok(pki)
    }

    /// The CA certificate (PEM file): what a client trusts.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The client certificate (PEM file), signed by the CA.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// The client certificate's private key (PEM file).
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    /// The server certificate (PEM file): a CA file that does not sign
    /// anything the server presents, for "wrong CA" tests.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The directory the files are in, for tests that write files of
    /// their own next to them (they go when this is dropped).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's side, asking no certificate of clients.
    pub fn server(&self) -> ServerTls {
        ServerTls { cert: self.server_cert.clone(), key: self.server_key.clone(), client_ca: None }
    }

    /// The server's side of mutual TLS: clients must present a certificate
    /// signed by the CA.
    pub fn server_requiring_client_certs(&self) -> ServerTls {
        ServerTls { client_ca: Some(self.ca.clone()), ..self.server() }
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> io::Result<(CertificateParams, KeyPair)> {
    let mut params = CertificateParams::new(Vec::new()).map_err(pki_error)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().map_err(pki_error)?;
    Ok((params, key))
}

fn leaf(issuer: &Issuer<'_, KeyPair>, name: &str, names: Vec<String>) -> io::Result<(String, String)> {
    let mut params = CertificateParams::new(names).map_err(pki_error)?;
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().map_err(pki_error)?;
    let cert = params.signed_by(&key, issuer).map_err(pki_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

impl ServerTls {
    /// The rustls server configuration (HTTP/1.1), for servers written in
    /// a test.
    pub fn rustls_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |error: &dyn fmt::Display| io::Error::new(io::ErrorKind::InvalidData, error.to_string());
        let certs = CertificateDer::pem_slice_iter(self.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).map_err(|e| invalid(&e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder =
            rustls::ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions();
        let builder = builder.map_err(|e| invalid(&e))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    roots.add(cert.map_err(|e| invalid(&e))?).map_err(|e| invalid(&e))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| invalid(&e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| invalid(&e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// tonic's server configuration.
    pub(crate) fn tonic_config(&self) -> tonic::transport::ServerTlsConfig {
        let config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(&self.cert, &self.key));
        match &self.client_ca {
            Some(ca) => config.client_ca_root(tonic::transport::Certificate::from_pem(ca)),
            None => config,
        }
    }
}
