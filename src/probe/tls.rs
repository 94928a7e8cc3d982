//! The tls stage: every host, concurrently: the handshake (chain, host name, version) when TLS is
//! on, then a hello over the connection (see `wire`). With TLS off, a plaintext hello, and a port
//! that speaks only TLS is named as such.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use super::tcp::{connect, each_host, ms, ms_f64};
use super::wire::{hello, hello_failure, version_of, HelloError};
use super::HostPort;
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{CertificateFacts, Facts, HostFacts};
use crate::runner::Passed;

pub(crate) fn client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, Diagnosis> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |why: String| {
                Diagnosis::new(
                    Kind::InvalidConfig,
                    format!("cannot use the CA file {}: {why}", path.display()),
                    "give a PEM file with the CA certificate(s) to trust",
                )
            };
            let pem =
                crate::files::read_regular(path, crate::files::MAX_FILE_BYTES).map_err(bad)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                roots
                    .add(cert.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in it".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Diagnosis::new(Kind::Internal, format!("TLS setup: {e}"), "report this"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any certificate: used only to find out whether a port speaks TLS at all.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn sniffing_config() -> Option<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Some(Arc::new(config))
}

fn server_name(h: &HostPort) -> Result<ServerName<'static>, Diagnosis> {
    ServerName::try_from(h.host.clone()).map_err(|e| {
        Diagnosis::new(
            Kind::InvalidConfig,
            format!("`{}` cannot be a TLS server name: {e}", h.host),
            "check the host",
        )
    })
}

fn tls_failure(h: &HostPort, e: &std::io::Error, ca_file: Option<&Path>) -> Diagnosis {
    use rustls::{AlertDescription, CertificateError, Error as TlsError};
    let access_list =
        "add this machine's public IP address to the project's IP access list (Atlas: \
        Security > Network Access; `atlas accessLists create --currentIp`), or connect through the \
        VPC peering or private endpoint the project uses";
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>());
    match inner {
        Some(TlsError::AlertReceived(AlertDescription::InternalError)) => Diagnosis::new(
            Kind::IpNotAllowed,
            format!("{h} answered the TLS handshake with the alert internal_error: this is how Atlas \
                     refuses an IP address that is not on the project's IP access list"),
            access_list,
        ),
        Some(TlsError::AlertReceived(alert)) => Diagnosis::new(
            Kind::TlsAlert,
            format!("{h} refused the TLS handshake with the alert {alert:?}"),
            "check the TLS settings of the client and the server (versions, client certificates)",
        ),
        Some(TlsError::InvalidCertificate(CertificateError::UnknownIssuer)) => Diagnosis::new(
            Kind::TlsUntrusted,
            format!("the certificate of {h} is signed by a CA this machine does not trust{}",
                ca_file.map(|p| format!(" (trusted: {})", p.display())).unwrap_or_default()),
            "give the right CA with --tls-ca-file (or tlsCAFile); a TLS-inspecting proxy in between \
             replaces Atlas's certificate with its own",
        ),
        Some(TlsError::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
            Diagnosis::new(Kind::TlsHostname,
                format!("the certificate of {h} is not valid for the name {}", h.host),
                "connect with the host name the certificate names (the one Atlas shows), not an IP address or alias")
        }
        Some(TlsError::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. })) => {
            Diagnosis::new(Kind::TlsExpired, format!("the certificate of {h} has expired, or this machine's clock is wrong"),
                "check this machine's date and time")
        }
        Some(other) => Diagnosis::new(Kind::TlsHandshake, format!("the TLS handshake with {h} failed: {other}"),
            "check the TLS settings (--tls-ca-file, tlsCAFile)"),
        None if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) && h.is_atlas() => {
            Diagnosis::new(Kind::IpNotAllowed,
                format!("{h} closed the connection during the TLS handshake ({e}): Atlas does this to IP \
                         addresses that are not on the project's IP access list"),
                access_list)
        }
        None => Diagnosis::new(Kind::TlsHandshake, format!("the TLS handshake with {h} failed: {e}"),
            "check that the port speaks TLS, and the TLS settings"),
    }
}

/// TLS and a hello over the connections the tcp stage opened.
pub(crate) async fn tls_stage(
    connections: Vec<(HostPort, TcpStream)>,
    tls: bool,
    ca_file: Option<&Path>,
    discovers: bool,
    budget: Duration,
) -> Result<Passed<()>, Diagnosis> {
    let config = if tls {
        Some(client_config(ca_file)?)
    } else {
        None
    };
    let ca = ca_file.map(Path::to_path_buf);
    let hosts: Vec<HostPort> = connections.iter().map(|(h, _)| h.clone()).collect();
    let streams = std::sync::Mutex::new(connections);
    each_host(&hosts, move |h| {
        let config = config.clone();
        let ca = ca.clone();
        let tcp = streams.lock().ok().and_then(|mut all| {
            let at = all.iter().position(|(host, _)| *host == h)?;
            Some(all.swap_remove(at).1)
        });
        async move {
            let started = Instant::now();
            let tcp = match tcp {
                Some(tcp) => tcp,
                None => connect(&h, budget).await?.stream,
            };
            let mut facts = HostFacts::new(h.to_string());
            match config {
                Some(config) => {
                    let name = server_name(&h)?;
                    let connector = tokio_rustls::TlsConnector::from(config);
                    let mut stream = match tokio::time::timeout(budget, connector.connect(name, tcp)).await {
                        Err(_) => return Err(Diagnosis::new(Kind::TlsTimeout,
                            format!("{h} did not complete the TLS handshake within {} ms", budget.as_millis()),
                            "the server accepts connections but does not speak TLS, or is overloaded")),
                        Ok(Err(e)) => return Err(tls_failure(&h, &e, ca.as_deref())),
                        Ok(Ok(s)) => s,
                    };
                    let session = stream.get_ref().1;
                    let version = session.protocol_version().map(tls_version).unwrap_or_default();
                    facts.tls_version = Some(version.trim_start_matches("TLS ").to_string()).filter(|v| !v.is_empty());
                    facts.cipher_suite = session.negotiated_cipher_suite().and_then(|c| c.suite().as_str()).map(str::to_string);
                    facts.certificate = session.peer_certificates().and_then(|chain| chain.first()).and_then(|c| certificate_facts(c));
                    facts.handshake_ms = Some(ms_f64(started));
                    let hello_started = Instant::now();
                    let (doc, server_version) = hello(&mut stream, budget).await.map_err(|e| hello_failure(&h, e, " over TLS", budget))?;
                    server_facts(&mut facts, &doc, server_version, hello_started);
                    let expires = facts.certificate.as_ref().map(|c| format!(" until {}", c.not_after)).unwrap_or_default();
                    Ok((format!("{h}: {version} in {} ms, certificate valid for {}{expires}; {}", ms(started), h.host, version_of(&doc)), facts))
                }
                None => {
                    let mut tcp = tcp;
                    let hello_started = Instant::now();
                    match hello(&mut tcp, budget).await {
                        Ok((doc, server_version)) => {
                            server_facts(&mut facts, &doc, server_version, hello_started);
                            Ok((format!("{h}: TLS off; {}", version_of(&doc)), facts))
                        }
                        Err(HelloError::Closed(e)) => {
                            if speaks_tls(&h, budget).await {
                                return Err(Diagnosis::new(Kind::PlaintextToTlsPort,
                                    format!("{h} speaks only TLS, and the connection string has TLS off: the \
                                             server closed the plaintext connection ({e})"),
                                    "add tls=true to the connection string (mongodb+srv turns it on by itself)"));
                            }
                            Err(hello_failure(&h, HelloError::Closed(e), "", budget))
                        }
                        Err(other) => Err(hello_failure(&h, other, "", budget)),
                    }
                }
            }
        }
    })
    .await
    .map(|passed| {
        let facts = Facts {
            hosts: passed.value.into_iter().map(|(_, f)| f).collect(),
            ..Default::default()
        };
        let unchecked = if discovers {
            unchecked_hosts(&hosts, &facts.hosts)
        } else {
            Vec::new()
        };
        let mut passed = Passed::new((), passed.detail)
            .warn(passed.warnings)
            .with_facts(facts);
        if !unchecked.is_empty() {
            passed = passed.warn([format!(
                "the server's hello names hosts no stage checked: {}; the driver connects and \
                 authenticates to them too, sending them the MONGODB-AWS proof: check that they \
                 are the cluster's members (directConnection=true keeps to the seed)",
                unchecked.join(", ")
            )]);
        }
        if tls {
            passed
        } else {
            passed.warn([
                "TLS is off: the MONGODB-AWS exchange (the signed STS request and any session \
                 token) crossed the network in cleartext; add tls=true"
                    .to_string(),
            ])
        }
    })
}

/// The server's version facts from its hello (and buildInfo).
fn server_facts(
    facts: &mut HostFacts,
    hello: &mongodb::bson::Document,
    server_version: Option<String>,
    started: Instant,
) {
    facts.hello_ms = Some(ms_f64(started));
    facts.wire_version = hello.get_i32("maxWireVersion").ok();
    facts.replica_set = hello
        .get_str("setName")
        .ok()
        .filter(|n| n.len() <= 256)
        .map(str::to_string);
    facts.server_version = server_version;
    let mut announced: Vec<String> = Vec::new();
    for field in ["hosts", "passives", "arbiters"] {
        if let Ok(list) = hello.get_array(field) {
            announced.extend(list.iter().filter_map(|h| h.as_str()).map(str::to_string));
        }
    }
    announced.extend(hello.get_str("primary").ok().map(str::to_string));
    announced.retain(|h| h.len() <= 300);
    announced
        .iter_mut()
        .for_each(|h| *h = h.to_ascii_lowercase());
    announced.sort();
    announced.dedup();
    announced.truncate(crate::uri::MAX_HOSTS);
    facts.announced_hosts = announced;
}

/// Hosts a hello names that no stage checked: the driver authenticates to them too (sending
/// them the MONGODB-AWS proof) unless the connection is direct or load-balanced.
fn unchecked_hosts(checked: &[HostPort], facts: &[HostFacts]) -> Vec<String> {
    let seen: Vec<String> = checked
        .iter()
        .map(|h| h.to_string().to_ascii_lowercase())
        .collect();
    let mut out: Vec<String> = facts
        .iter()
        .flat_map(|f| f.announced_hosts.iter())
        .filter(|h| !seen.contains(h))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The leaf certificate's subject, issuer, validity and DNS names; None when it does not parse
/// (rustls accepted it, so that would be a parser's limit, not the server's fault).
fn certificate_facts(der: &CertificateDer<'_>) -> Option<CertificateFacts> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let rfc3339 = |t: x509_parser::time::ASN1Time| {
        t.to_datetime()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(CertificateFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: rfc3339(cert.validity().not_before),
        not_after: rfc3339(cert.validity().not_after),
        dns_names,
    })
}

/// "TLS 1.3", as people write it (rustls says `TLSv1_3`).
fn tls_version(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
        other => format!("{other:?}")
            .replace("TLSv1_", "TLS 1.")
            .replace("TLSv", "TLS "),
    }
}

/// Whether the port completes a TLS handshake (any certificate accepted: only for diagnosis).
async fn speaks_tls(h: &HostPort, budget: Duration) -> bool {
    let (Some(config), Ok(name)) = (sniffing_config(), server_name(h)) else {
        return false;
    };
    let Ok(tcp) = connect(h, budget).await else {
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    matches!(
        tokio::time::timeout(budget, connector.connect(name, tcp.stream)).await,
        Ok(Ok(_))
    )
}
