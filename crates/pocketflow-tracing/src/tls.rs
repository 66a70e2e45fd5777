//! TLS for OTLP exports: the CA certificate a server's certificate must
//! chain to (`OTEL_EXPORTER_OTLP_CERTIFICATE`), and the client certificate
//! and key presented for mutual TLS (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`,
//! `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
//!
//! The files are read and checked when the config is resolved, so a missing
//! file or one with no certificate in it is an error naming the setting and
//! the path before anything runs, not a failed export later.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::{self, PemObject as _, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ConfigError;

/// The TLS settings of the OTLP exporter. Empty: the system's trusted
/// roots, no client certificate.
#[derive(Clone, Default)]
pub(crate) struct OtlpTls {
    /// The only CA trusted: a server certificate must chain to it.
    pub(crate) ca: Option<PemFile>,
    /// The client certificate chain and its key, for mutual TLS.
    pub(crate) client: Option<ClientIdentity>,
}

impl OtlpTls {
    /// The setting that asked for TLS (for an error about a plain `http://`
    /// endpoint).
    pub(crate) fn source(&self) -> Option<&str> {
        self.ca.as_ref().map(|ca| ca.source.as_str()).or(self.client.as_ref().map(|c| c.cert.source.as_str()))
    }
}

// By hand: paths only, never what the key file holds.
impl fmt::Debug for OtlpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpTls")
            .field("ca", &self.ca.as_ref().map(|ca| &ca.path))
            .field("client_certificate", &self.client.as_ref().map(|c| &c.cert.path))
            .field("client_key", &self.client.as_ref().map(|c| &c.key.path))
            .finish()
    }
}

/// A PEM file as read, with where it came from.
#[derive(Clone)]
pub(crate) struct PemFile {
    pub(crate) path: PathBuf,
    /// The variable or setting that named it.
    pub(crate) source: String,
    pub(crate) pem: Vec<u8>,
}

// By hand: where the file came from, never what it holds.
impl fmt::Debug for PemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemFile").field("path", &self.path).field("source", &self.source).finish_non_exhaustive()
    }
}

/// A client certificate chain and its private key.
#[derive(Clone)]
pub(crate) struct ClientIdentity {
    pub(crate) cert: PemFile,
    pub(crate) key: PemFile,
}

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PemKind {
    /// One or more certificates.
    Certificates,
    /// A private key (PKCS#8, PKCS#1 or SEC1).
    PrivateKey,
}

/// Reads the file at `path`, named by `source`, and checks that it holds
/// `kind`.
pub(crate) fn read_pem(source: &str, path: &Path, kind: PemKind) -> Result<PemFile, ConfigError> {
    let problem =
        |problem: String| ConfigError::TlsFile { name: source.to_owned(), path: path.display().to_string(), problem };
    let pem = read_bounded(path).map_err(problem)?;
    match kind {
        PemKind::Certificates => {
            let mut count = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                cert.map_err(|error| problem(format!("it is not valid PEM: {error}")))?;
                count += 1;
            }
            if count == 0 {
                return Err(problem("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned()));
            }
        }
        PemKind::PrivateKey => {
            // The error never quotes the file: it may be a key after all.
            PrivateKeyDer::from_pem_slice(&pem).map_err(|error| match error {
                // A certificate file given as the key is the usual mix-up.
                pem::Error::NoItemsFound if has_section(&pem, SectionKind::Certificate) => {
                    problem("it holds a certificate, not a private key".to_owned())
                }
                pem::Error::NoItemsFound => problem(
                    "it holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
                        .to_owned(),
                ),
                _ => problem("it is not a valid PEM private key".to_owned()),
            })?;
        }
    }
    Ok(PemFile { path: path.to_owned(), source: source.to_owned(), pem })
}

/// The largest TLS file read: a chain of certificates is a few KiB.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Reads a regular file of at most [`MAX_PEM_BYTES`]: a path to a device
/// (`/dev/zero`) or a pipe is refused rather than read without end.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let cannot = |error: std::io::Error| format!("it cannot be read: {error}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    let mut pem = Vec::new();
    file.take(MAX_PEM_BYTES + 1).read_to_end(&mut pem).map_err(cannot)?;
    if pem.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("it is larger than {} KiB, too large for a certificate or key", MAX_PEM_BYTES / 1024));
    }
    Ok(pem)
}

fn has_section(pem: &[u8], wanted: SectionKind) -> bool {
    let mut reader = pem;
    while let Ok(Some((kind, _))) = pem::from_buf(&mut reader) {
        if kind == wanted {
            return true;
        }
    }
    false
}

/// The client identity from a certificate and a key, both or neither: one
/// without the other is an error naming both settings.
pub(crate) fn client_identity(
    cert: Option<(String, PathBuf)>,
    key: Option<(String, PathBuf)>,
) -> Result<Option<ClientIdentity>, ConfigError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some((cert_source, cert)), Some((key_source, key))) => Ok(Some(ClientIdentity {
            cert: read_pem(&cert_source, &cert, PemKind::Certificates)?,
            key: read_pem(&key_source, &key, PemKind::PrivateKey)?,
        })),
        (Some((given, _)), None) => Err(ConfigError::ClientCertificateHalf { given, missing: "the client key" }),
        (None, Some((given, _))) => {
            Err(ConfigError::ClientCertificateHalf { given, missing: "the client certificate" })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("pocketflow-tls-test-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_file_without_a_certificate_is_named_with_its_setting() {
        let path = write("empty.pem", "not a certificate\n");
        let error = read_pem("OTEL_EXPORTER_OTLP_CERTIFICATE", &path, PemKind::Certificates).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("OTEL_EXPORTER_OTLP_CERTIFICATE"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("no PEM certificate"), "{text}");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_device_is_refused_rather_than_read_without_end() {
        let error = read_pem("otlp_certificate", Path::new("/dev/zero"), PemKind::Certificates).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }

    #[test]
    fn a_missing_file_says_it_cannot_be_read() {
        let path = std::env::temp_dir().join("pocketflow-tls-test-does-not-exist.pem");
        let error = read_pem("otlp_certificate", &path, PemKind::Certificates).unwrap_err();
        assert!(error.to_string().contains("cannot be read"), "{error}");
    }

    #[test]
    fn a_key_file_must_hold_a_key_and_its_text_is_never_quoted() {
        let path =
            write("key.pem", "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n");
        // A well-formed PEM key section is accepted here; rustls checks the
        // key itself when the exporter is built.
        assert!(read_pem("otlp_client_key", &path, PemKind::PrivateKey).is_ok());
        let garbage = write("garbage.key", "secret-key-bytes\n");
        let error = read_pem("otlp_client_key", &garbage, PemKind::PrivateKey).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("secret-key-bytes"), "{error:?}");
        for path in [path, garbage] {
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn a_client_certificate_without_its_key_names_both() {
        let error =
            client_identity(Some(("otlp_client_certificate".to_owned(), PathBuf::from("c.pem"))), None).err().unwrap();
        let text = error.to_string();
        assert!(text.contains("otlp_client_certificate") && text.contains("client key"), "{text}");
    }
}
