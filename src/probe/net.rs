//! The tcp and tls stages. tcp: every host, concurrently, refused told apart from timed out.
//! tls: every host, concurrently: the handshake (chain, host name, version) when TLS is on, then
//! a hello over the connection, so that a silent server, one that closes, one that answers
//! something else, or a TLS-only port reached in plaintext, is named as such.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::HostPort;
use crate::diagnosis::{Diagnosis, Kind};
use crate::Passed;

const OP_REPLY: i32 = 1;
const OP_MSG: i32 = 2013;
const MAX_REPLY: usize = 48_000_000;

/// Runs `check` on every host concurrently; fails when every host fails, warns when some do.
async fn each_host<F, Fut>(hosts: &[HostPort], check: F) -> Result<Passed<()>, Diagnosis>
where
    F: Fn(HostPort) -> Fut,
    Fut: std::future::Future<Output = Result<String, Diagnosis>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for (i, h) in hosts.iter().enumerate() {
        let fut = check(h.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut results: Vec<(usize, Result<String, Diagnosis>)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results.sort_by_key(|(i, _)| *i);
    let (ok, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|(_, r)| r.is_ok());
    let details: Vec<String> = ok.into_iter().filter_map(|(_, r)| r.ok()).collect();
    let mut failures: Vec<Diagnosis> = failed.into_iter().filter_map(|(_, r)| r.err()).collect();
    if details.is_empty() {
        return Err(if failures.is_empty() {
            Diagnosis::new(Kind::Internal, "no host was checked", "report this")
        } else {
            failures.remove(0)
        });
    }
    let warnings = failures
        .into_iter()
        .map(|d| format!("{} ({})", d.cause, d.kind.name()))
        .collect::<Vec<_>>();
    Ok(Passed::new((), details.join("; ")).warn(warnings))
}

fn ms(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

async fn connect(h: &HostPort, budget: Duration) -> Result<TcpStream, Diagnosis> {
    let started = Instant::now();
    match tokio::time::timeout(budget, TcpStream::connect((h.host.as_str(), h.port))).await {
        Err(_) => Err(Diagnosis::new(
            Kind::TcpTimeout,
            format!(
                "{h} did not accept a connection within {} ms: packets are dropped on the way",
                ms(started)
            ),
            if h.is_atlas() {
                "outbound traffic to port 27017 is blocked here (firewall, security group, corporate \
                 network): allow it, or run from a network that can reach Atlas"
            } else {
                "check the host, the port and any firewall between"
            },
        )),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(Diagnosis::new(
            Kind::TcpRefused,
            format!(
                "{h} refused the connection: nothing listens on port {}",
                h.port
            ),
            "check the port; an Atlas cluster that is paused or deleted refuses connections too",
        )),
        Ok(Err(e)) => Err(Diagnosis::new(
            Kind::TcpUnreachable,
            format!("cannot connect to {h}: {e}"),
            "check the network route to the host",
        )),
        Ok(Ok(s)) => Ok(s),
    }
}

pub async fn tcp_stage(hosts: &[HostPort], budget: Duration) -> Result<Passed<()>, Diagnosis> {
    each_host(hosts, move |h| async move {
        let started = Instant::now();
        let s = connect(&h, budget).await?;
        let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        Ok(format!("{h} ({peer}) in {} ms", ms(started)))
    })
    .await
}

pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Diagnosis> {
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
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
            for cert in certs {
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
        rustls::crypto::ring::default_provider(),
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
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

fn hello_bytes() -> Vec<u8> {
    let mut body = Vec::new();
    let _ = doc! {"hello": 1, "helloOk": true, "$db": "admin", "client": {"application": {"name": "atlas-iam"}}}
        .to_writer(&mut body);
    let mut payload = vec![0u8, 0, 0, 0, 0];
    payload.extend(body);
    let mut msg = Vec::new();
    for v in [(16 + payload.len()) as i32, 1, 0, OP_MSG] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend(payload);
    msg
}

#[derive(Debug)]
pub enum HelloError {
    Closed(std::io::Error),
    Silent,
    BadReply(String),
}

/// Sends a hello and reads the reply document.
pub async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    budget: Duration,
) -> Result<Document, HelloError> {
    let exchange = async {
        s.write_all(&hello_bytes())
            .await
            .map_err(HelloError::Closed)?;
        s.flush().await.map_err(HelloError::Closed)?;
        let mut head = [0u8; 16];
        s.read_exact(&mut head).await.map_err(HelloError::Closed)?;
        let int = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let (len, op) = (int(0), int(12));
        let len = usize::try_from(len)
            .ok()
            .filter(|l| (21..=MAX_REPLY).contains(l))
            .ok_or_else(|| HelloError::BadReply(format!("a message length of {len}")))?;
        if op != OP_MSG && op != OP_REPLY {
            return Err(HelloError::BadReply(format!("opcode {op}")));
        }
        let mut body = vec![0u8; len - 16];
        s.read_exact(&mut body).await.map_err(HelloError::Closed)?;
        let skip = if op == OP_MSG { 5 } else { 20 };
        let doc = body
            .get(skip..)
            .and_then(|b| Document::from_reader(b).ok())
            .ok_or_else(|| HelloError::BadReply("a body that is not BSON".into()))?;
        Ok(doc)
    };
    tokio::time::timeout(budget, exchange)
        .await
        .map_err(|_| HelloError::Silent)?
}

fn hello_failure(h: &HostPort, e: HelloError, over: &str, budget: Duration) -> Diagnosis {
    match e {
        HelloError::Silent => Diagnosis::new(
            Kind::ServerSilent,
            format!("{h} accepted the connection{over} but did not answer a hello within {} ms", budget.as_millis()),
            "the server is overloaded or is not a MongoDB server (a proxy or load balancer that holds \
             connections?): check the host and port",
        ),
        HelloError::Closed(e) => Diagnosis::new(
            Kind::ServerClosed,
            format!("{h} closed the connection{over} without answering a hello ({e})"),
            "the port is not a MongoDB server, or it refuses this client: check the host and port",
        ),
        HelloError::BadReply(what) => Diagnosis::new(
            Kind::BadReply,
            format!("{h} answered a hello{over} with something that is not a MongoDB reply ({what})"),
            "another service listens on this port: check the host and port",
        ),
    }
}

fn version_of(doc: &Document) -> String {
    let wire = doc
        .get_i32("maxWireVersion")
        .map(|v| format!("wire version {v}"))
        .unwrap_or_default();
    let kind = if doc.get_str("setName").is_ok() {
        "replica set member"
    } else {
        "server"
    };
    format!("{kind}, {wire}")
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

pub async fn tls_stage(
    hosts: &[HostPort],
    tls: bool,
    ca_file: Option<&Path>,
    budget: Duration,
) -> Result<Passed<()>, Diagnosis> {
    let config = if tls {
        Some(client_config(ca_file)?)
    } else {
        None
    };
    let ca = ca_file.map(Path::to_path_buf);
    each_host(hosts, move |h| {
        let config = config.clone();
        let ca = ca.clone();
        async move {
            let started = Instant::now();
            let tcp = connect(&h, budget).await?;
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
                    let version = stream.get_ref().1.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
                    let handshake = ms(started);
                    let doc = hello(&mut stream, budget).await.map_err(|e| hello_failure(&h, e, " over TLS", budget))?;
                    Ok(format!("{h}: {version} in {handshake} ms, certificate valid for {}; {}", h.host, version_of(&doc)))
                }
                None => {
                    let mut tcp = tcp;
                    match hello(&mut tcp, budget).await {
                        Ok(doc) => Ok(format!("{h}: TLS off; {}", version_of(&doc))),
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
        tokio::time::timeout(budget, connector.connect(name, tcp)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_is_a_well_formed_op_msg() {
        let b = hello_bytes();
        assert_eq!(
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        assert_eq!(i32::from_le_bytes([b[12], b[13], b[14], b[15]]), OP_MSG);
        let doc = Document::from_reader(&b[21..]).expect("bson");
        assert_eq!(doc.get_i32("hello").ok(), Some(1));
    }

    #[tokio::test]
    async fn garbage_replies_are_named() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let _ = server.read(&mut buf).await;
            let _ = server.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        match hello(&mut client, Duration::from_secs(2)).await {
            Err(HelloError::BadReply(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn silence_is_bounded() {
        let (mut client, _server) = tokio::io::duplex(4096);
        assert!(matches!(
            hello(&mut client, Duration::from_millis(50)).await,
            Err(HelloError::Silent)
        ));
    }
}
