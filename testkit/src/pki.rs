//! A CA and a server certificate generated at start (rcgen), for localhost, 127.0.0.1 and the
//! member names of the local DNS.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct Pki {
    pub ca_pem: String,
    /// The CA in a PEM file (for --tls-ca-file, tlsCAFile): lives as long as this value.
    pub ca_file: PathBuf,
    pub server_config: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// What is wrong with the server certificate, for the TLS faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertFault {
    #[default]
    None,
    /// Valid only for another host name (not localhost, not 127.0.0.1).
    OtherName,
    /// Expired a year ago.
    Expired,
}

impl Pki {
    /// A new CA, and a server certificate signed by it for `names` plus localhost and 127.0.0.1.
    pub fn generate(names: &[String]) -> anyhow::Result<Pki> {
        Pki::generate_with(names, CertFault::None)
    }

    /// As `generate`, with a fault in the server certificate.
    pub fn generate_with(names: &[String], fault: CertFault) -> anyhow::Result<Pki> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own, so that another CA is unknown to clients, not a namesake.
        let serial: u64 = rand::random();
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("local-atlas test CA {serial:016x}"),
        );
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        sans.extend(names.iter().cloned());
        if fault == CertFault::OtherName {
            sans = vec!["cluster9.other.example.net".to_string()];
        }
        let mut leaf = CertificateParams::new(sans)?;
        if fault == CertFault::Expired {
            leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        leaf.distinguished_name
            .push(DnType::CommonName, "local-atlas");
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

        let dir = tempfile::tempdir().context("temp dir for the CA file")?;
        let ca_file = dir.path().join("local-atlas-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).context("write CA file")?;

        let chain = vec![
            CertificateDer::from(leaf_cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server_config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_file,
            server_config: Arc::new(server_config),
            _dir: dir,
        })
    }
}
