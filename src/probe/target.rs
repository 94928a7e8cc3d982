//! The probe's destination, from --cluster or --uri: the hosts (or the srv name), TLS, the CA
//! file, the database and the options handed to the driver. Credentials in the URI are never
//! used.

use std::path::PathBuf;

use crate::config::{Config, Target as ConfigTarget};
use crate::diagnosis::{Diagnosis, Kind};
use crate::envfile::Origin;
use crate::report::Severity;
use crate::uri::{self, Effect, HostKind, Options, ParsedUri};

pub const DEFAULT_PORT: u16 = 27017;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl HostPort {
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: unclosed ["))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (s.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{s}`: bad port"))?,
            None => DEFAULT_PORT,
        };
        if host.is_empty() {
            return Err(format!("`{s}`: empty host"));
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    pub fn is_atlas(&self) -> bool {
        let h = self.host.trim_end_matches('.');
        h.ends_with(".mongodb.net")
            || h.ends_with(".mongodb-dev.net")
            || h.ends_with(".mongodbgov.net")
    }

    /// What private network an Atlas host name belongs to: `cluster0-pl-0.…` (a private
    /// endpoint) or `cluster0-pri.…` (network peering); such names resolve to private addresses
    /// reachable only from inside that network.
    pub fn private_network(&self) -> Option<&'static str> {
        if !self.is_atlas() {
            return None;
        }
        let first = self.host.split('.').next().unwrap_or_default();
        // a member's name: cluster0-shard-00-00-pri, cluster0-pl-0-lb …
        let labels: Vec<&str> = first.split('-').collect();
        if labels.contains(&"pri") {
            return Some("network peering");
        }
        labels
            .windows(2)
            .any(|w| w[0] == "pl" && w[1].chars().all(|c| c.is_ascii_digit()) && !w[1].is_empty())
            .then_some("private endpoint")
    }
}

/// Where to connect and how, from --cluster or --uri. Credentials in the URI are never used.
#[derive(Clone, Debug)]
pub struct Destination {
    /// The mongodb+srv host, when there is one.
    pub srv: Option<String>,
    /// The SRV service name (`srvServiceName`, `mongodb` by default).
    pub srv_service: String,
    /// `srvMaxHosts`: how many SRV targets to keep at random (0: all).
    pub srv_max_hosts: u32,
    /// The hosts to connect to: from the URI, or from the SRV records after the dns stage.
    pub hosts: Vec<HostPort>,
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    pub db: String,
    /// The string's options as the specifications read them (for the rules that need DNS).
    pub uri_options: Options,
    /// The options handed to the driver: the specification's names and decoded values, less
    /// what atlas-iam reads itself and what its driver does not honour.
    pub options: Vec<(String, String)>,
}

/// The target of a probe and the warnings about it.
pub fn target(cfg: &Config) -> Result<(Destination, Vec<String>), Diagnosis> {
    let (parsed, findings) = match &cfg.target {
        ConfigTarget::None => {
            return Err(Diagnosis::new(
                Kind::MissingTarget,
                "no cluster to probe",
                "give --cluster HOST (or ATLAS_IAM_CLUSTER, AWS_MONGO_CLUSTER_URL, \
                 MONGODB_CLUSTER_NAME) or --uri URI (or MONGODB_URI)",
            ))
        }
        ConfigTarget::Cluster(c) => {
            let built = uri::build(c, &cfg.db, None);
            (ParsedUri::parse(&built)?, Vec::new())
        }
        ConfigTarget::Uri(u) => uri::check(u.expose())?,
    };
    let mut findings = findings;
    if let Some(driver) = &cfg.driver {
        uri::for_driver(&parsed, &mut findings, driver);
    }
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for f in findings {
        let credential = uri::is_credential_finding(&f.code);
        match (f.severity, credential) {
            // atlas-iam never uses credentials from the URI, so their pitfalls are warnings here
            (_, true) => warnings.push(format!("{}: {}", f.code, f.message)),
            (Severity::Warning, false) => warnings.push(format!("{}: {}", f.code, f.message)),
            (Severity::Error, false) => errors.push(f),
        }
    }
    if parsed.user.is_some() {
        warnings.push(
            "the connection string embeds credentials: atlas-iam ignores them and uses \
            the AWS credential chain, as current drivers do"
                .to_string(),
        );
    }
    if !errors.is_empty() {
        return Err(uri::pitfall(&errors));
    }
    let untrusted = match &cfg.target_origin {
        Some(from @ Origin::DotEnv(_)) => Some(from.describe()),
        _ => None,
    };
    if let Some(from) = &untrusted {
        confirm_target(&parsed, from)?;
    }
    // --db (or its variables) when set, else the string's path, else the default
    let db = (cfg.db != crate::config::DEFAULT_DB).then_some(cfg.db.as_str());
    let mut parsed = parsed;
    if let Some(from) = &untrusted {
        if let Some(w) = drop_trust_options(&mut parsed, from) {
            warnings.push(w);
        }
    }
    let (dest, more) = destination(&parsed, db, cfg.tls_ca_file.clone())?;
    warnings.extend(more);
    Ok((dest, warnings))
}

/// Options that say where the MONGODB-AWS proof may go or whom to trust with it: files (CA,
/// client key), the TLS relaxations and the proxy. From a `.env` found in the current directory
/// they count as what they are, like `AWS_CA_BUNDLE`: not the user's.
const TRUST_OPTIONS: [&str; 12] = [
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsCertificateKeyFilePassword",
    "tlsInsecure",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
    "tlsDisableOCSPEndpointCheck",
    "tlsDisableCertificateRevocationCheck",
    "proxyHost",
    "proxyPort",
    "proxyUsername",
    "proxyPassword",
];

/// Takes the trust options out of a string from an implicit `.env`; the warning names them.
fn drop_trust_options(parsed: &mut ParsedUri, from: &str) -> Option<String> {
    let mut dropped = Vec::new();
    parsed.query.retain(|(k, _)| {
        let key = uri::decode(k);
        let name = uri::lookup(&key).map(uri::canonical_name);
        match name {
            Some(n) if TRUST_OPTIONS.contains(&n) => {
                if !dropped.contains(&n) {
                    dropped.push(n);
                }
                false
            }
            _ => true,
        }
    });
    (!dropped.is_empty()).then(|| {
        format!(
            "the connection string comes from {from}, which may arrive with a cloned \
             repository: {} not used, since they decide whom the MONGODB-AWS proof is trusted \
             to; if the string is yours, give it with --uri, in the environment, or with \
             --env-file",
            dropped.join(", ")
        )
    })
}

/// A target from an implicit `.env` is sent the MONGODB-AWS proof (a signed STS request and any
/// session token, good for any cluster) only when it is an Atlas host, reached over TLS verified
/// with the public roots; any other needs the user's say-so.
fn confirm_target(parsed: &ParsedUri, from: &str) -> Result<(), Diagnosis> {
    let atlas = !parsed.seeds.is_empty()
        && parsed
            .seeds
            .iter()
            .all(|h| h.kind == HostKind::Name && uri::is_atlas_host(&h.host));
    if atlas {
        return Ok(());
    }
    Err(Diagnosis::new(
        Kind::TargetNotConfirmed,
        format!(
            "the target comes from {from} and is no Atlas host (*.mongodb.net, \
             *.mongodbgov.net): a cloned repository's .env can point atlas-iam at a server that \
             relays your MONGODB-AWS proof to a real cluster, so nothing was sent"
        ),
        "if the target is yours, give the same value with --uri (or --cluster), in the \
         environment (MONGODB_URI=… atlas-iam …), or name the file with --env-file .env",
    ))
}

/// Where a parsed string leads, as the specifications read it, with the warnings about what
/// atlas-iam's own driver leaves out; `db` and `ca_file` override the string's.
pub fn destination(
    parsed: &ParsedUri,
    db: Option<&str>,
    ca_file: Option<PathBuf>,
) -> Result<(Destination, Vec<String>), Diagnosis> {
    let opts = uri::verdict(parsed)?;
    let tls = opts
        .get("tls")
        .map(|v| v.eq_ignore_ascii_case("true"))
        .unwrap_or(parsed.srv);
    let ca_file = ca_file.or_else(|| opts.get("tlsCAFile").map(PathBuf::from));
    // the driver reads the client key file to its end: bounded first, like every file named
    if let Some(file) = opts.get("tlsCertificateKeyFile") {
        if let Some(why) =
            crate::files::unsafe_to_read(std::path::Path::new(file), crate::files::MAX_FILE_BYTES)
        {
            return Err(Diagnosis::new(
                Kind::InvalidConfig,
                format!("tlsCertificateKeyFile {file} was not read: {why}"),
                "give the path of the PEM file with the client certificate and key",
            ));
        }
    }
    let (options, warnings) = driver_options(&opts);
    if tls {
        super::tls::client_config(ca_file.as_deref())?;
    }
    let db = match db {
        Some(d) => d.to_string(),
        None => parsed
            .db
            .as_deref()
            .map(uri::decode)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| crate::config::DEFAULT_DB.to_string()),
    };
    let (srv, hosts) = if parsed.srv {
        (parsed.seeds.first().map(|h| h.host.clone()), Vec::new())
    } else {
        let mut hosts = Vec::new();
        for (i, h) in parsed.seeds.iter().enumerate() {
            if h.kind == HostKind::Unix {
                return Err(Diagnosis::new(
                    Kind::InvalidConfig,
                    format!(
                        "host number {} is a unix domain socket: the string is valid, but \
                         atlas-iam checks hosts over TCP",
                        i + 1
                    ),
                    "give the server's host:port, or run the check where the socket is a TCP port",
                ));
            }
            hosts.push(HostPort {
                host: h.host.clone(),
                port: h.port.unwrap_or(DEFAULT_PORT),
            });
        }
        (None, hosts)
    };
    Ok((
        Destination {
            srv,
            srv_service: opts.get("srvServiceName").unwrap_or("mongodb").to_string(),
            srv_max_hosts: opts.srv_max_hosts(),
            hosts,
            tls,
            ca_file,
            db,
            uri_options: opts,
            options,
        },
        warnings,
    ))
}

/// The options to hand the bundled driver, and a warning for each it does not honour: it is left
/// out, with what that does to the verdict.
fn driver_options(opts: &Options) -> (Vec<(String, String)>, Vec<String>) {
    let mut handed = Vec::new();
    let mut warnings = Vec::new();
    for o in &opts.values {
        let Some(spec) = uri::lookup(o.name) else {
            continue;
        };
        let effect = match spec.effect {
            Effect::Own => continue,
            Effect::Same(why) => format!("this cannot change the verdict: {why}"),
            Effect::Differs(how) => format!("this can change the verdict: {how}"),
        };
        if uri::honoured(o.name, &uri::encode_component(&o.value)) {
            handed.push((o.name.to_string(), o.value.clone()));
        } else {
            warnings.push(format!(
                "option_not_honoured: {} is valid, and the application's driver may read it, \
                 but atlas-iam's own driver does not, so the check ran without it; {effect}",
                o.shown()
            ));
        }
    }
    (handed, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_network_host_names() {
        let net = |h: &str| {
            HostPort {
                host: h.into(),
                port: 27017,
            }
            .private_network()
        };
        assert_eq!(
            net("cluster0-pl-0.ab12c.mongodb.net"),
            Some("private endpoint")
        );
        assert_eq!(
            net("cluster0-shard-00-00-pl-1.ab12c.mongodb.net"),
            Some("private endpoint")
        );
        assert_eq!(
            net("cluster0-pri.ab12c.mongodb.net"),
            Some("network peering")
        );
        assert_eq!(
            net("cluster0-shard-00-01-pri.ab12c.mongodbgov.net"),
            Some("network peering")
        );
        assert_eq!(net("cluster0.ab12c.mongodb.net"), None);
        assert_eq!(net("cluster0-shard-00-00.ab12c.mongodb.net"), None);
        assert_eq!(net("apl-0.example.net"), None);
        assert_eq!(net("my-pri.example.net"), None);
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            HostPort::parse("a.b:1").expect("ok"),
            HostPort {
                host: "a.b".into(),
                port: 1
            }
        );
        assert_eq!(HostPort::parse("A.b").expect("ok").port, 27017);
        assert_eq!(HostPort::parse("[::1]:5").expect("ok").host, "::1");
        assert!(HostPort::parse("a:0").is_err());
        assert!(HostPort::parse(":1").is_err());
        assert_eq!(
            HostPort {
                host: "::1".into(),
                port: 5
            }
            .to_string(),
            "[::1]:5"
        );
    }
}
