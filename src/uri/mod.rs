//! Connection strings: building the MONGODB-AWS form, embedding credentials for older drivers,
//! reading an existing string as drivers split it, redacting it, and finding its pitfalls.

mod findings;
mod options;
mod parse;
#[cfg(test)]
mod spec_tests;
mod verdict;

pub use crate::secret::encode_component;
pub use findings::{check, findings, for_driver, is_credential_finding, pitfall};
pub use options::{canonical_name, honoured, lookup, Effect, Spec};
pub use parse::{Host, HostKind, MAX_HOSTS};
pub use verdict::{seedlist_rules, verdict, OptionValue, Options};

use percent_encoding::percent_decode_str;

use crate::config::ClusterHost;
use crate::diagnosis::Diagnosis;
use crate::secret::{mask_key_id, REDACTED};

/// The options every MONGODB-AWS string carries.
pub const AUTH_OPTIONS: &str = "authSource=%24external&authMechanism=MONGODB-AWS";
/// The options atlas-iam adds to the strings it builds, as Atlas's own examples do.
pub const COMMON_OPTIONS: &str = "retryWrites=true&w=majority&appName=atlas-iam";

/// Credentials to embed in the legacy form.
pub struct Embedded<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
}

pub fn is_atlas_host(host: &str) -> bool {
    let h = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    // a trailing dot (a fully qualified name) is the same host
    let h = h.trim_end_matches('.');
    h.ends_with(".mongodb.net") || h.ends_with(".mongodb-dev.net") || h.ends_with(".mongodbgov.net")
}

/// The string for a cluster host: `mongodb+srv://HOST/DB?…` without a port, `mongodb://HOST:PORT`
/// with one (and `tls=true` for Atlas hosts, which srv implies).
pub fn build(cluster: &ClusterHost, db: &str, creds: Option<&Embedded>) -> String {
    let (scheme, host, tls) = match cluster.port {
        None => ("mongodb+srv", cluster.host.clone(), false),
        Some(p) => (
            "mongodb",
            format!("{}:{p}", cluster.host),
            is_atlas_host(&cluster.host),
        ),
    };
    let parsed = ParsedUri {
        srv: scheme == "mongodb+srv",
        user: None,
        password: None,
        hosts: vec![host],
        seeds: Vec::new(),
        db: Some(encode_component(db)),
        query: format!(
            "{AUTH_OPTIONS}{}&{COMMON_OPTIONS}",
            if tls { "&tls=true" } else { "" }
        )
        .split('&')
        .map(split_pair)
        .collect(),
    };
    match creds {
        Some(c) => embed(&parsed, c),
        None => parsed.to_string_with(|_, v| v.to_string()),
    }
}

/// A connection string split the way drivers split it, with every part still as written
/// (not percent-decoded), so that encoding mistakes stay visible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUri {
    pub srv: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub hosts: Vec<String>,
    /// The hosts as drivers read them: decoded, typed, with their port if given.
    pub seeds: Vec<Host>,
    pub db: Option<String>,
    /// Options in order, keys and values as written.
    pub query: Vec<(String, String)>,
}

fn split_pair(pair: &str) -> (String, String) {
    match pair.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (pair.to_string(), String::new()),
    }
}

pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl ParsedUri {
    /// Splits a connection string as the connection-string specification says (its reference
    /// steps, pymongo's `uri_parser`): the host section ends at the first `/` (or at a `?` when
    /// no `@` lies between it and that `/`, so that a raw `/` in an option value stays there);
    /// the userinfo ends at the last `@` of the host section; hosts are split at `,`; options
    /// at `&`. Errors never quote the string: its userinfo may hold a secret in any shape.
    pub fn parse(uri: &str) -> Result<ParsedUri, Diagnosis> {
        parse::parse(uri)
    }

    /// The value of an option, keys decoded and compared without case as drivers do.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| decode(k).eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The session token in authMechanismProperties, as written, whatever the spelling of its
    /// name and separator (`AWS_SESSION_TOKEN:`, `%3a`, `AWS%5FSESSION%5FTOKEN`, `=`).
    pub(crate) fn session_token_raw(&self) -> Option<&str> {
        let props = self.option("authMechanismProperties")?;
        split_props(props)
            .into_iter()
            .find(|(k, _, _)| decode(k).eq_ignore_ascii_case("AWS_SESSION_TOKEN"))
            .map(|(_, _, v)| v)
    }

    /// Every secret value the options carry, as written: session tokens and other
    /// authMechanismProperties values, and the password options.
    fn secret_options(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for (k, v) in &self.query {
            let key = decode(k);
            if key.eq_ignore_ascii_case("authMechanismProperties") {
                out.extend(
                    split_props(v)
                        .into_iter()
                        .filter(|(pk, _, _)| !is_plain_property(pk))
                        .map(|(_, _, pv)| pv),
                );
            } else if is_secret_option(&key) {
                out.push(v.as_str());
            }
        }
        out
    }

    /// The secrets the string carries (password and session token), as written and decoded:
    /// what must be scrubbed from any text that may echo them.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let options = self.secret_options();
        for raw in self
            .password
            .as_deref()
            .into_iter()
            .chain(options)
            .filter(|v| !v.is_empty())
        {
            out.push(raw.to_string());
            out.push(decode(raw));
        }
        out
    }

    /// Rebuilds the string, passing every option value through `value`.
    fn to_string_with(&self, value: impl Fn(&str, &str) -> String) -> String {
        let mut s = String::from(if self.srv {
            "mongodb+srv://"
        } else {
            "mongodb://"
        });
        if let Some(user) = &self.user {
            s.push_str(user);
            if let Some(pw) = &self.password {
                s.push(':');
                s.push_str(pw);
            }
            s.push('@');
        }
        s.push_str(&self.hosts.join(","));
        s.push('/');
        if let Some(db) = &self.db {
            s.push_str(db);
        }
        if !self.query.is_empty() {
            s.push('?');
            let pairs: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", value(k, v)))
                .collect();
            s.push_str(&pairs.join("&"));
        }
        s
    }

    /// The string with the key id masked, the secret and the session token redacted.
    pub fn redacted(&self) -> String {
        let mut copy = self.clone();
        if let Some(user) = &copy.user {
            // an access key id is shown masked, as everywhere; any other userinfo not at all
            let user = decode(user);
            copy.user = Some(if is_key_id(&user) {
                mask_key_id(&user)
            } else {
                REDACTED.to_string()
            });
        }
        if copy.password.is_some() {
            copy.password = Some(REDACTED.to_string());
        }
        copy.to_string_with(|k, v| {
            let key = decode(k);
            if key.eq_ignore_ascii_case("authMechanismProperties") {
                split_props(v)
                    .into_iter()
                    .map(|(pk, sep, pv)| {
                        if is_plain_property(pk) {
                            format!("{pk}{sep}{pv}")
                        } else {
                            format!("{pk}{sep}{REDACTED}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            } else if is_secret_option(&key) || options::lookup(&key).is_none() {
                // an option no specification defines may hold anything: its value is not shown
                REDACTED.to_string()
            } else {
                v.to_string()
            }
        })
    }
}

/// An AWS access key id: four capitals (AKIA, ASIA…) and sixteen more capitals or digits.
fn is_key_id(s: &str) -> bool {
    s.len() == 20
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// What must be scrubbed from any text a run prints for this string: its secrets when it
/// parses; when it does not, every piece of whatever stands where userinfo would (before the
/// last `@`), split at `:`, as written and decoded.
pub fn secrets_of(uri: &str) -> Vec<String> {
    if let Ok(p) = ParsedUri::parse(uri) {
        return p.secrets();
    }
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let Some(at) = rest.rfind('@') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for piece in std::iter::once(&rest[..at]).chain(rest[..at].split(':')) {
        if !piece.is_empty() {
            out.push(piece.to_string());
            out.push(decode(piece));
        }
    }
    out
}

/// Options whose value is a secret: drivers' password options.
fn is_secret_option(decoded_key: &str) -> bool {
    [
        "proxyPassword",
        "tlsCertificateKeyFilePassword",
        "sslPEMKeyPassword",
        "password",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(decoded_key))
}

/// authMechanismProperties that are not secrets (those of other mechanisms); any other
/// property's value is treated as one.
fn is_plain_property(raw_key: &str) -> bool {
    [
        "SERVICE_NAME",
        "CANONICALIZE_HOST_NAME",
        "SERVICE_REALM",
        "SERVICE_HOST",
        "ENVIRONMENT",
        "TOKEN_RESOURCE",
        "ALLOWED_HOSTS",
    ]
    .iter()
    .any(|p| p.eq_ignore_ascii_case(&decode(raw_key)))
}

/// authMechanismProperties split into (name, separator, value) as written: the separator is
/// the first `:`, `%3A` (either case) or `=`, whichever comes first.
fn split_props(props: &str) -> Vec<(&str, &str, &str)> {
    props
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lower = p.to_ascii_lowercase();
            let seps = [
                (lower.find(':'), 1),
                (lower.find("%3a"), 3),
                (lower.find('='), 1),
            ];
            match seps
                .iter()
                .filter_map(|(at, len)| at.map(|a| (a, *len)))
                .min_by_key(|(a, _)| *a)
            {
                Some((at, len)) => (&p[..at], &p[at..at + len], &p[at + len..]),
                // no name: the whole part is a value, and may be a secret
                None => ("", "", p),
            }
        })
        .collect()
}

/// The string with the key, secret and token put in: the legacy form for older drivers.
pub fn embed(parsed: &ParsedUri, creds: &Embedded) -> String {
    let mut copy = parsed.clone();
    copy.user = Some(encode_component(creds.key_id));
    copy.password = Some(encode_component(creds.secret));
    copy.query
        .retain(|(k, _)| !k.eq_ignore_ascii_case("authMechanismProperties"));
    if let Some(token) = creds.token {
        let at = copy
            .query
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case("authMechanism"))
            .map(|i| i + 1)
            .unwrap_or(copy.query.len());
        copy.query.insert(
            at,
            (
                "authMechanismProperties".to_string(),
                format!("AWS_SESSION_TOKEN:{}", encode_component(token)),
            ),
        );
    }
    copy.to_string_with(|_, v| v.to_string())
}

/// Redacts any string that may be a connection string; what cannot be parsed is hidden whole
/// after its scheme.
pub fn redact(uri: &str) -> String {
    match ParsedUri::parse(uri) {
        Ok(p) => p.redacted(),
        Err(_) => match uri.split_once("://") {
            Some((scheme, _)) if scheme.len() < 20 => format!("{scheme}://{REDACTED}"),
            _ => REDACTED.to_string(),
        },
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Kind;

    fn cluster(host: &str, port: Option<u16>) -> ClusterHost {
        ClusterHost {
            host: host.into(),
            port,
        }
    }

    fn codes(uri: &str) -> Vec<String> {
        let p = ParsedUri::parse(uri).expect("parses");
        findings(&p).into_iter().map(|f| f.code).collect()
    }

    #[test]
    fn builds_the_credential_free_srv_form() {
        assert_eq!(
            build(&cluster("cluster0.ab12c.mongodb.net", None), "test", None),
            "mongodb+srv://cluster0.ab12c.mongodb.net/test?authSource=%24external&\
             authMechanism=MONGODB-AWS&retryWrites=true&w=majority&appName=atlas-iam"
        );
    }

    #[test]
    fn builds_a_direct_form_with_port() {
        let uri = build(&cluster("node.ab12c.mongodb.net", Some(27017)), "db", None);
        assert!(
            uri.starts_with("mongodb://node.ab12c.mongodb.net:27017/db?"),
            "{uri}"
        );
        assert!(uri.contains("&tls=true"), "{uri}");
        let local = build(&cluster("127.0.0.1", Some(27017)), "db", None);
        assert!(!local.contains("tls="), "{local}");
    }

    #[test]
    fn the_built_form_has_no_findings_and_the_driver_reads_it() {
        let uri = build(&cluster("cluster0.ab12c.mongodb.net", None), "test", None);
        let (_, found) = check(&uri).expect("valid");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn embedding_encodes_every_reserved_character() {
        let uri = build(
            &cluster("c.example.net", None),
            "test",
            Some(&Embedded {
                key_id: "ASIAXXXXXXXXXXXXWXYZ",
                secret: "a+b/c=d",
                token: Some("t+o/k="),
            }),
        );
        assert!(uri.contains("ASIAXXXXXXXXXXXXWXYZ:a%2Bb%2Fc%3Dd@"), "{uri}");
        assert!(
            uri.contains("authMechanismProperties=AWS_SESSION_TOKEN:t%2Bo%2Fk%3D"),
            "{uri}"
        );
    }

    #[test]
    fn redaction_hides_secret_token_and_key() {
        let uri = "mongodb+srv://ASIAXXXXXXXXXXXXWXYZ:se%2Bcret@c.example.net/test?authSource=%24external\
                   &authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok%2Ben";
        let r = redact(uri);
        assert_eq!(
            r,
            "mongodb+srv://ASIA…WXYZ:(redacted)@c.example.net/test?authSource=%24external\
             &authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:(redacted)"
        );
        assert_eq!(redact("http://user:pw@x"), "http://(redacted)");
    }

    /// Every spelling the issue reproduced, redacted by meaning, and every secret listed for the
    /// scrubber.
    #[test]
    fn redaction_works_on_meaning_not_spelling() {
        let tok = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";
        let base = "mongodb://h.example.net/?authMechanism=MONGODB-AWS&";
        for props in [
            format!("authMechanismProperties=AWS_SESSION_TOKEN%3a{tok}"),
            format!("authMechanismProperties=AWS_SESSION_TOKEN%3A{tok}"),
            format!("authMechanismProperties=AWS%5FSESSION%5FTOKEN:{tok}"),
            format!("authMechanismProperties=AWS_SESSION_TOKEN={tok}"),
            format!("authMechanismProperties={tok}"),
            format!("authMechanism%50roperties=AWS_SESSION_TOKEN:{tok}"),
            format!("proxyPassword={tok}"),
            format!("tlsCertificateKeyFilePassword={tok}"),
            format!("PROXYPASSWORD={tok}"),
        ] {
            let uri = format!("{base}{props}");
            let r = redact(&uri);
            assert!(!r.contains(tok), "{props} -> {r}");
            let p = ParsedUri::parse(&uri).expect("parses");
            assert!(p.secrets().iter().any(|s| s == tok), "{props}: not listed");
        }
        let key = "AKIAIOSFODNN7EXAMPLE";
        // sub-delimiters are legal in userinfo; `?` and `#` are read as pymongo reads them
        for pw in ["ab?cd+ef", "pa=ss", "!$&'()*+,;=", "x#y"] {
            let uri = format!("mongodb://{key}:{pw}@h.example.net/test?authSource=%24external");
            let r = redact(&uri);
            assert!(!r.contains(key) && !r.contains(pw), "{uri} -> {r}");
            let p = ParsedUri::parse(&uri).expect("parses");
            assert_eq!(p.hosts, ["h.example.net"], "{uri}");
            assert!(p.secrets().iter().any(|s| s == pw), "{pw} not listed");
        }
        // a raw `/` is refused, and whatever stands before the last `@` is still hidden
        for pw in ["ab#cd/ef", "a/b?c#d"] {
            let uri = format!("mongodb://{key}:{pw}@h.example.net/test?authSource=%24external");
            let d = check(&uri).expect_err(pw);
            assert!(
                !d.cause.contains(pw) && !d.cause.contains(key),
                "{}",
                d.cause
            );
            assert!(!redact(&uri).contains(pw), "{uri}");
            assert!(secrets_of(&uri).iter().any(|s| s.contains(pw)), "{pw}");
        }
        // an @ in an option value is not userinfo
        let p = ParsedUri::parse("mongodb://h.example.net/?appName=me@x").expect("parses");
        assert_eq!((p.user, p.hosts), (None, vec!["h.example.net".to_string()]));
        // other mechanisms' properties stay readable
        assert!(
            redact("mongodb://h/?authMechanismProperties=SERVICE_NAME:mongodb")
                .contains("SERVICE_NAME:mongodb")
        );
    }

    #[test]
    fn finds_each_pitfall() {
        let base = "authMechanism=MONGODB-AWS&authSource=%24external";
        assert_eq!(
            codes("mongodb+srv://c.example.net/?authMechanism=MONGODB-AWS"),
            ["auth_source_missing"]
        );
        assert_eq!(
            codes(&format!(
                "mongodb+srv://c.example.net/?{base}&authSource=admin"
            )),
            ["auth_source_wrong"]
        );
        assert_eq!(
            codes("mongodb+srv://c.example.net/?authSource=%24external"),
            ["auth_mechanism_missing"]
        );
        assert_eq!(
            codes(
                "mongodb+srv://c.example.net/?authSource=%24external&authMechanism=SCRAM-SHA-256"
            ),
            ["auth_mechanism_other"]
        );
        assert_eq!(
            codes(&format!(
                "mongodb+srv://AKIAXXXXXXXXXXXXXXXX:a+b@c.example.net/?{base}"
            )),
            ["embedded_credentials", "unencoded_plus"]
        );
        assert_eq!(
            codes(&format!(
                "mongodb+srv://AKIAXXXXXXXXXXXXXXXX@c.example.net/?{base}"
            )),
            ["embedded_credentials", "username_without_password"]
        );
        assert_eq!(
            check(&format!(
                "mongodb+srv://AKIAXXXXXXXXXXXXXXXX:a%zz@c.example.net/?{base}"
            ))
            .expect_err("a bare % is refused")
            .kind,
            Kind::InvalidUri
        );
        assert_eq!(
            codes(&format!("mongodb+srv://c.example.net/?{base}&tls=false")),
            ["tls_disabled"]
        );
        assert_eq!(
            codes(&format!(
                "mongodb://h.ab.mongodb.net:27017/?{base}&ssl=false"
            )),
            ["tls_disabled"]
        );
        assert!(codes(&format!("mongodb://127.0.0.1:27017/?{base}&tls=false")).is_empty());
        assert_eq!(
            codes(&format!("mongodb+srv://c.example.net:27017/?{base}")),
            ["srv_with_port"]
        );
        assert_eq!(
            codes(&format!(
                "mongodb+srv://a.example.net,b.example.net/?{base}"
            )),
            ["srv_multiple_hosts"]
        );
        assert_eq!(
            codes(&format!(
                "mongodb+srv://AKIAXXXXXXXXXXXXXXXX:s@c.example.net/?{base}\
            &authMechanismProperties=AWS_SESSION_TOKEN:a+b"
            )),
            ["embedded_credentials", "unencoded_plus"]
        );
    }

    #[test]
    fn secrets_are_listed_as_written_and_decoded() {
        let p = ParsedUri::parse("mongodb://AKIAXXXXXXXXXXXXXXXX:a%2Bb@h/?authMechanismProperties=AWS_SESSION_TOKEN:t%2Fk")
            .expect("parses");
        assert_eq!(p.secrets(), vec!["a%2Bb", "a+b", "t%2Fk", "t/k"]);
        assert!(ParsedUri::parse("mongodb://h/")
            .expect("parses")
            .secrets()
            .is_empty());
    }

    #[test]
    fn malformed_strings_are_invalid_uri() {
        for bad in [
            "cluster0.example.net",
            "http://x",
            "mongodb://",
            "mongodb://a,,b/",
        ] {
            let d = check(bad).expect_err(bad);
            assert_eq!(d.kind, Kind::InvalidUri, "{bad}");
        }
    }

    #[test]
    fn a_bad_value_is_a_warning_and_the_proxy_rules_hold() {
        let uri = "mongodb://h:1/?authSource=%24external&authMechanism=MONGODB-AWS\
                   &connectTimeoutMS=abc&proxyHost=p&proxyUsername=u&proxyPassword=&proxyPort=x";
        // an empty proxyPassword is ignored, so the username stands alone: refused
        let d = check(uri).expect_err("proxyUsername without proxyPassword");
        assert!(d.cause.contains("proxyPassword"), "{}", d.cause);
        let uri = "mongodb://h:1/?authSource=%24external&authMechanism=MONGODB-AWS\
                   &connectTimeoutMS=abc&maxPoolSize=-1";
        let (_, found) = check(uri).expect("valid, with warnings");
        let bad: Vec<&str> = found
            .iter()
            .filter(|f| f.code == "option_invalid_value")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(bad.len(), 2, "{found:?}");
        assert!(bad[0].contains("connectTimeoutMS=abc"), "{bad:?}");
        // a malformed property list is warned about without echoing it (it may be a token), and
        // a token pasted as an option's name is masked
        let (_, found) = check(
            "mongodb://h/?authMechanismProperties=IQoJb3JpZ2luX2VjEXAMPLETOKEN&AKIAIOSFODNN7EXAMPLE=x",
        )
        .expect("valid, with warnings");
        let text = format!("{found:?}");
        assert!(
            !text.contains("IQoJb3JpZ2lu") && !text.contains("AKIAIOSFODNN7EXAMPLE"),
            "{text}"
        );
        assert!(
            text.contains("option_invalid_value") && text.contains("option_unknown"),
            "{text}"
        );
    }
}
