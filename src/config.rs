//! CLI + environment -> a validated `Config`, the only thing the run reads afterwards. The
//! environment is read once into `Env`; every later read (aliases, AWS_PROFILE, the config file
//! names, endpoint overrides) goes through it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::atlas::api::{ApiAuth, ApiConfig};
use crate::cli::GlobalArgs;
use crate::diagnosis::{Diagnosis, Kind};
use crate::envfile::{EnvFile, Origin};
use crate::identity::RoleArn;
use crate::secret::Secret;

/// Aliases read after the primary names that clap reads (ATLAS_IAM_CLUSTER, ATLAS_IAM_DB,
/// ATLAS_IAM_ROLE_ARN), in this order.
pub const CLUSTER_ALIASES: [&str; 2] = ["AWS_MONGO_CLUSTER_URL", "MONGODB_CLUSTER_NAME"];
pub const DB_ALIASES: [&str; 1] = ["AWS_MONGO_DATABASE"];
pub const ROLE_ARN_ALIASES: [&str; 1] = ["MONGODB_ACCESS_ROLE_ARN"];
pub const DEFAULT_DB: &str = "test";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterHost {
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Clone, Debug)]
pub enum Target {
    None,
    Cluster(ClusterHost),
    Uri(Secret<String>),
}

#[derive(Clone)]
pub struct RoleRequest {
    pub arn: RoleArn,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration: Option<i32>,
    pub mfa_serial: Option<String>,
    pub mfa_token: Option<String>,
}

impl fmt::Debug for RoleRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleRequest")
            .field("arn", &self.arn.arn)
            .field("session_name", &self.session_name)
            .field(
                "external_id",
                &self.external_id.as_ref().map(|_| "(redacted)"),
            )
            .field("duration", &self.duration)
            .field("mfa_serial", &self.mfa_serial)
            .finish_non_exhaustive()
    }
}

/// The environment as the run sees it: read once, after the env file was applied. Debug shows
/// the names only, never a value.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
    /// Names whose value is not Unicode (the values are never kept).
    not_unicode: Vec<String>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// The process environment (variables whose name or value is not Unicode are left out).
    pub fn from_process() -> Env {
        let mut env = Env::default();
        for (k, v) in std::env::vars_os() {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    env.vars.insert(k, v);
                }
                (Ok(k), Err(_)) => env.not_unicode.push(k),
                _ => {}
            }
        }
        env
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_unicode: Vec::new(),
        }
    }

    /// A variable's value; unset and blank are the same.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub target: Target,
    /// Where the target came from (None without one): a target from a `.env` found in the
    /// current directory is sent the MONGODB-AWS proof only when it is an Atlas host.
    pub target_origin: Option<Origin>,
    pub db: String,
    pub tls_ca_file: Option<PathBuf>,
    pub dns_server: Option<SocketAddr>,
    pub profile: Option<String>,
    pub region: Option<String>,
    pub role: Option<RoleRequest>,
    /// `--driver`: the application's driver, whose sources and rules the check follows.
    pub driver: Option<crate::drivers::Driver>,
    pub timeout: Duration,
    pub show_secrets: bool,
    /// The environment every later read goes through.
    pub env: Env,
    /// The env file loaded before the run, for the config stage's detail.
    pub env_file: EnvFile,
    /// The Admin API cross-check: None without --atlas; with it, what to call, or why it
    /// cannot be (diagnosed at the atlas stage, never at config).
    pub atlas: Option<Result<ApiConfig, Diagnosis>>,
    /// Where each value came from, for the config stage's detail.
    pub notes: Vec<String>,
    /// Things that are allowed but probably not meant.
    pub warnings: Vec<String>,
}

/// The first alias that is set: its value and its name.
fn from_aliases(env: &Env, names: &[&'static str]) -> Option<(String, &'static str)> {
    names.iter().find_map(|n| env.get(n).map(|v| (v, *n)))
}

impl Config {
    /// Validates the command line against the environment; a failed env file fails here.
    pub fn from_args(args: &GlobalArgs, env_file: EnvFile, env: Env) -> Result<Config, Diagnosis> {
        if let EnvFile::Failed(d) = env_file {
            return Err(d);
        }
        let garbled: Vec<&str> = env
            .not_unicode
            .iter()
            .map(String::as_str)
            .filter(|n| {
                n.starts_with("AWS_") || n.starts_with("ATLAS_IAM_") || n.starts_with("MONGODB_")
            })
            .collect();
        if !garbled.is_empty() {
            return Err(Diagnosis::new(
                Kind::InvalidConfig,
                format!(
                    "{} {} not valid UTF-8 text (value not shown)",
                    garbled.join(", "),
                    if garbled.len() == 1 { "is" } else { "are" }
                ),
                "set it again from the original (a copy from a document may carry invisible \
                 bytes)",
            ));
        }
        let env_ref = &env;
        let mut notes = Vec::new();
        let mut warnings = env_file.warnings();

        let uri = args.uri.clone().filter(|u| !u.trim().is_empty());
        let cluster = match args.cluster.clone().filter(|c| !c.trim().is_empty()) {
            Some(c) => Some((c, "ATLAS_IAM_CLUSTER")),
            None => from_aliases(env_ref, &CLUSTER_ALIASES).map(|(v, name)| {
                notes.push(format!("cluster from {name}"));
                (v, name)
            }),
        };
        let origin =
            |name: &str, value: &str| env_file.origin(name, value, env_ref.get(name).as_deref());
        let (target, target_origin) = match (uri, cluster) {
            (Some(uri), cluster) => {
                if cluster.is_some() {
                    warnings.push("both a URI and a cluster are set: using the URI".to_string());
                }
                let from = origin("MONGODB_URI", &uri);
                (Target::Uri(Secret::new(uri.trim().to_string())), Some(from))
            }
            (None, Some((cluster, name))) => {
                let from = origin(name, &cluster);
                (Target::Cluster(parse_cluster(&cluster)?), Some(from))
            }
            (None, None) => (Target::None, None),
        };

        let db = match args.db.clone().filter(|d| !d.trim().is_empty()) {
            Some(db) => db,
            None => match from_aliases(env_ref, &DB_ALIASES) {
                Some((db, name)) => {
                    notes.push(format!("database from {name}"));
                    db
                }
                None => DEFAULT_DB.to_string(),
            },
        };
        validate_db(&db)?;

        let role_arn = match args.role_arn.clone().filter(|r| !r.trim().is_empty()) {
            Some(r) => Some(r),
            None => from_aliases(env_ref, &ROLE_ARN_ALIASES).map(|(v, name)| {
                notes.push(format!("role from {name}"));
                v
            }),
        };
        let role = match role_arn {
            Some(arn) => Some(RoleRequest {
                arn: RoleArn::parse(&arn)?,
                session_name: args
                    .role_session_name
                    .clone()
                    .unwrap_or_else(default_session_name),
                external_id: args.external_id.clone(),
                duration: args.duration,
                mfa_serial: args.mfa_serial.clone(),
                mfa_token: args.mfa_token.clone(),
            }),
            None => {
                let role_only = [
                    ("--role-session-name", args.role_session_name.is_some()),
                    ("--external-id", args.external_id.is_some()),
                    ("--duration", args.duration.is_some()),
                    ("--mfa-serial", args.mfa_serial.is_some()),
                ];
                let given: Vec<&str> = role_only
                    .iter()
                    .filter(|(_, g)| *g)
                    .map(|(n, _)| *n)
                    .collect();
                if !given.is_empty() {
                    return Err(Diagnosis::new(
                        Kind::InvalidConfig,
                        format!("{} given without a role to assume", given.join(", ")),
                        "add --role-arn ARN (or ATLAS_IAM_ROLE_ARN), or drop those flags",
                    ));
                }
                None
            }
        };

        if let Some(path) = &args.tls_ca_file {
            if !path.is_file() {
                return Err(Diagnosis::new(
                    Kind::InvalidConfig,
                    format!("--tls-ca-file {}: no such file", path.display()),
                    "give the path of a PEM file with the CA certificate(s) to trust",
                ));
            }
        }

        // --app: the application's manifest decides the driver unless --driver names one
        let mut driver = args.driver.clone();
        if let Some(dir) = &args.app {
            let scan = crate::app::scan(dir)?;
            if let Some(d) = scan.errors.into_iter().next() {
                return Err(d);
            }
            match (&driver, scan.driver, &scan.manifest) {
                (None, Some(found), Some(from)) => {
                    notes.push(format!("driver {} from {from}", found.id()));
                    driver = Some(found);
                }
                (Some(given), Some(found), Some(from)) => {
                    if given.name != found.name || given.version.is_some() {
                        warnings.push(format!(
                            "--driver {} is checked; {from} names {}",
                            given.id(),
                            found.label()
                        ));
                    }
                    // what the manifest knows of the add-ons holds for the same driver
                    if given.name == found.name {
                        driver = Some(crate::drivers::Driver {
                            sdk: found.sdk,
                            sso: found.sso,
                            process: found.process,
                            ..given.clone()
                        });
                    }
                }
                _ => {}
            }
            warnings.extend(scan.warnings);
            notes.extend(scan.notes);
        }

        Ok(Config {
            target,
            target_origin,
            db,
            tls_ca_file: args.tls_ca_file.clone(),
            dns_server: args.dns_server,
            profile: args.profile.clone().filter(|p| !p.trim().is_empty()),
            region: args.region.clone().filter(|r| !r.trim().is_empty()),
            role,
            driver,
            timeout: Duration::from_secs(args.timeout),
            show_secrets: args.show_secrets,
            atlas: args.atlas.then(|| atlas_config(args, env_ref)),
            env,
            env_file,
            notes,
            warnings,
        })
    }
}

/// The Admin API's settings from the flags, else the Atlas CLI's variables.
fn atlas_config(args: &GlobalArgs, env: &Env) -> Result<ApiConfig, Diagnosis> {
    let pick = |flag: &Option<String>, var: &str| {
        flag.clone()
            .or_else(|| env.get(var))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let not_configured = |what: String, hint: &str| {
        Diagnosis::new(Kind::AtlasApiNotConfigured, what, hint.to_string())
    };
    let project_id = pick(&args.atlas_project_id, "MONGODB_ATLAS_PROJECT_ID").ok_or_else(|| {
        not_configured(
            "--atlas needs a project id".into(),
            "set MONGODB_ATLAS_PROJECT_ID (or --atlas-project-id): the 24-hex-digit id in the \
             project's settings, or `atlas projects list`",
        )
    })?;
    if project_id.len() != 24 || !project_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_configured(
            format!(
                "the project id `{}` is not 24 hex digits",
                project_id.chars().take(40).collect::<String>()
            ),
            "copy it from the project's settings (Atlas: Project Settings > Project ID), or \
             `atlas projects list`",
        ));
    }
    let public = pick(&args.atlas_public_key, "MONGODB_ATLAS_PUBLIC_API_KEY");
    let private = pick(&args.atlas_private_key, "MONGODB_ATLAS_PRIVATE_API_KEY");
    let client_id = pick(&args.atlas_client_id, "MONGODB_ATLAS_CLIENT_ID");
    let client_secret = pick(&args.atlas_client_secret, "MONGODB_ATLAS_CLIENT_SECRET");
    let auth = match (public, private, client_id, client_secret) {
        (_, _, Some(client_id), Some(secret)) => ApiAuth::ServiceAccount {
            client_id,
            client_secret: Secret::new(secret),
        },
        (Some(public_key), Some(private), _, _) => ApiAuth::ApiKey {
            public_key,
            private_key: Secret::new(private),
        },
        (public, private, id, secret) => {
            let half = match (
                public.is_some(),
                private.is_some(),
                id.is_some(),
                secret.is_some(),
            ) {
                (true, false, _, _) => "a public API key without its private key",
                (false, true, _, _) => "a private API key without its public key",
                (_, _, true, false) => "a client id without its client secret",
                (_, _, false, true) => "a client secret without its client id",
                _ => "no API credentials",
            };
            return Err(not_configured(
                format!("--atlas found {half}"),
                "set MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY (a project API \
                 key), or MONGODB_ATLAS_CLIENT_ID and MONGODB_ATLAS_CLIENT_SECRET (a service \
                 account), with the Project Read Only role",
            ));
        }
    };
    let base_url = pick(&args.atlas_base_url, "ATLAS_IAM_ATLAS_BASE_URL")
        .unwrap_or_else(|| crate::atlas::api::DEFAULT_BASE_URL.to_string());
    check_base_url(&base_url).map_err(|why| {
        not_configured(
            format!("--atlas-base-url: {why}"),
            "give https://cloud.mongodb.com (the default), or an http:// address on this machine \
             for a test stand-in",
        )
    })?;
    Ok(ApiConfig {
        project_id,
        auth,
        base_url,
    })
}

/// https anywhere, http only to a loopback address: a service account's secret is sent to the
/// token endpoint.
fn check_base_url(url: &str) -> Result<(), String> {
    let shown = crate::secret::redact_url_userinfo(url);
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{shown}` is not a URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("a user name or password in the URL is not allowed".into());
    }
    let Some(host) = parsed.host_str() else {
        return Err(format!("`{shown}` has no host"));
    };
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{shown}` is plain http to another machine: API credentials would cross the network \
             in the clear"
        )),
        other => Err(format!("`{shown}`: the scheme {other} is not http(s)")),
    }
}

fn default_session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("atlas-iam-{secs}")
}

/// A cluster host name, as Atlas shows it (`cluster0.ab12c.mongodb.net`), with an optional port
/// for clusters reached without SRV. A leading `mongodb+srv://` and a trailing `/` are forgiven.
pub fn parse_cluster(input: &str) -> Result<ClusterHost, Diagnosis> {
    let s = input.trim();
    let s = s
        .strip_prefix("mongodb+srv://")
        .or_else(|| s.strip_prefix("mongodb://"))
        .unwrap_or(s);
    let s = s.strip_suffix('/').unwrap_or(s);
    // Never echo userinfo: a whole connection string may have been given as the cluster.
    let shown = match s.rfind('@') {
        Some(at) => format!("{}@{}", crate::secret::REDACTED, &s[at + 1..]),
        None => s.to_string(),
    };
    let bad = |why: &str| {
        Diagnosis::new(
            Kind::InvalidConfig,
            format!("the cluster `{shown}` {why}"),
            "give the cluster's host name, e.g. cluster0.ab12c.mongodb.net; \
             use --uri for a whole connection string",
        )
    };
    if s.contains(['/', '?', '@', ',']) {
        return Err(bad("is not a host name (it has /, ?, @ or ,)"));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => {
            let port: u16 = p
                .parse()
                .map_err(|_| bad("has a port that is not a number"))?;
            if port == 0 {
                return Err(bad("has port 0"));
            }
            (h, Some(port))
        }
        None => (s, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(bad("is not a valid host name"));
    }
    Ok(ClusterHost {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// MongoDB database names: not empty, under 64 bytes, none of `/\. "$`.
fn validate_db(db: &str) -> Result<(), Diagnosis> {
    if db.is_empty() || db.len() >= 64 || db.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(Diagnosis::new(
            Kind::InvalidConfig,
            format!("`{db}` is not a valid database name"),
            "database names are 1 to 63 bytes without / \\ . space \" or $",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn config(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Diagnosis> {
        let mut argv = vec!["atlas-iam", "whoami"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("parses");
        Config::from_args(
            &cli.global,
            EnvFile::Absent,
            Env::from_pairs(env.iter().copied()),
        )
    }

    #[test]
    fn cluster_aliases_are_read_in_order() {
        let c = config(
            &[],
            &[
                ("MONGODB_CLUSTER_NAME", "b.example.net"),
                ("AWS_MONGO_CLUSTER_URL", "a.example.net"),
            ],
        )
        .expect("ok");
        match c.target {
            Target::Cluster(h) => assert_eq!(h.host, "a.example.net"),
            other => panic!("unexpected target {other:?}"),
        }
        assert!(c.notes.iter().any(|n| n.contains("AWS_MONGO_CLUSTER_URL")));
    }

    #[test]
    fn flags_win_over_aliases() {
        let c = config(
            &["--cluster", "flag.example.net", "--db", "orders"],
            &[
                ("AWS_MONGO_CLUSTER_URL", "a.example.net"),
                ("AWS_MONGO_DATABASE", "x"),
            ],
        )
        .expect("ok");
        assert!(matches!(c.target, Target::Cluster(ref h) if h.host == "flag.example.net"));
        assert_eq!(c.db, "orders");
    }

    #[test]
    fn database_defaults_to_test_and_alias_is_read() {
        assert_eq!(config(&[], &[]).expect("ok").db, "test");
        assert_eq!(
            config(&[], &[("AWS_MONGO_DATABASE", "shop")])
                .expect("ok")
                .db,
            "shop"
        );
        assert!(config(&["--db", "a.b"], &[]).is_err());
    }

    #[test]
    fn role_alias_is_validated() {
        let c = config(
            &[],
            &[(
                "MONGODB_ACCESS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/app",
            )],
        )
        .expect("ok");
        let role = c.role.expect("role");
        assert_eq!(role.arn.name, "app");
        assert!(role.session_name.starts_with("atlas-iam-"));
        let d = config(&[], &[("MONGODB_ACCESS_ROLE_ARN", "app")]).expect_err("bad arn");
        assert_eq!(d.kind, Kind::InvalidArn);
    }

    #[test]
    fn role_flags_need_a_role() {
        let d = config(&["--duration", "900"], &[]).expect_err("no role");
        assert!(d.cause.contains("--duration"), "{}", d.cause);
    }

    #[test]
    fn cluster_host_forms() {
        assert_eq!(
            parse_cluster("mongodb+srv://Cluster0.AB12C.mongodb.net/")
                .expect("ok")
                .host,
            "cluster0.ab12c.mongodb.net"
        );
        assert_eq!(
            parse_cluster("127.0.0.1:27017").expect("ok").port,
            Some(27017)
        );
        for bad in [
            "user:pw@host",
            "host/db",
            "a..b",
            "-a.b",
            "host:x",
            "host:0",
            "",
        ] {
            assert!(parse_cluster(bad).is_err(), "{bad} accepted");
        }
    }
}
