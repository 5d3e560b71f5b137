//! TLS for the domains' HTTPS endpoints: a CA created at start-up (its PEM written to a file that
//! clients trust through `AWS_CA_BUNDLE`) signs one certificate for `127.0.0.1`/`localhost` and
//! `*.sandbox.internal` (the VPC domains' names), which every domain listener serves, as each AWS
//! domain serves a publicly trusted certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::SandboxError;

/// The CA file and the acceptor for domain listeners.
pub struct Authority {
    ca_path: PathBuf,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn tls_err(e: impl std::error::Error + Send + Sync + 'static) -> SandboxError {
    SandboxError::Tls(Box::new(e))
}

impl Authority {
    pub fn create(dir: &Path) -> Result<Self, SandboxError> {
        let ca_key = KeyPair::generate().map_err(tls_err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "snapferry sandbox CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(tls_err)?;

        let leaf_key = KeyPair::generate().map_err(tls_err)?;
        let mut leaf_params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            format!("*.{}", crate::control_plane::VPC_DOMAIN_SUFFIX),
        ])
        .map_err(tls_err)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "snapferry sandbox domain");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .map_err(tls_err)?;

        let ca_path = dir.join("snapferry-sandbox-ca.pem");
        std::fs::write(&ca_path, ca.pem()).map_err(|source| SandboxError::WriteCa {
            path: ca_path.clone(),
            source,
        })?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(leaf.der().to_vec()),
                    CertificateDer::from(ca.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .map_err(tls_err)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_path,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.acceptor.clone()
    }
}
