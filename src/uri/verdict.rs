//! The verdict the specifications give on a connection string's options: which are read, which
//! drivers warn about and ignore, and which combinations they must refuse.
//!
//! Rules and where they are written (mongodb/specifications, `source/…`):
//! - keys are compared without ASCII case; an unknown key, a repeated key and a value of the
//!   wrong type or range are warnings, and that option is ignored (`connection-string/`,
//!   "Keys", "Values", "Repeated Keys"; the `warning: true` cases of the tests);
//! - a deprecated spelling is read as its replacement, and ignored when the replacement is also
//!   given (`connection-string/`, "Deprecated Key Value Pairs");
//! - the TLS options that must not be combined, and `tls` against `ssl` (`uri-options/`,
//!   "Conflicting TLS options");
//! - `directConnection=true` with several hosts or with mongodb+srv (`uri-options/`);
//! - `loadBalanced=true` with several hosts, with `directConnection=true` or with `replicaSet`
//!   (`load-balancers/`, "URI Validation");
//! - `srvServiceName` and `srvMaxHosts` only with mongodb+srv, and `srvMaxHosts` not with
//!   `replicaSet` or `loadBalanced=true`, TXT options included (`initial-dns-seedlist-discovery/`,
//!   "URI Validation");
//! - `proxyPort`, `proxyUsername`, `proxyPassword` need `proxyHost`, the username and password
//!   come together, and none of them may repeat (`socks5-support/`, and the proxy tests).

use super::options::{self, canonical, Spec, Ty};
use super::{decode, ParsedUri};
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{Finding, Severity};
use crate::secret::REDACTED;

/// One option as drivers read it: the specification's name and the decoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionValue {
    pub name: &'static str,
    pub value: String,
    pub secret: bool,
}

impl OptionValue {
    /// `name=value`, the value redacted when it is a secret.
    pub fn shown(&self) -> String {
        if self.name == "authMechanismProperties" {
            // other mechanisms' properties are readable; any other value may be a token
            let props: Vec<String> = super::split_props(&self.value)
                .into_iter()
                .map(|(k, sep, v)| {
                    if super::is_plain_property(k) {
                        format!("{k}{sep}{v}")
                    } else {
                        format!("{k}{sep}{REDACTED}")
                    }
                })
                .collect();
            return format!("{}={}", self.name, props.join(","));
        }
        let v = if self.secret { REDACTED } else { &self.value };
        format!("{}={v}", self.name)
    }
}

/// The options in force, in the string's order (a repeated one where it was last given), and
/// the warnings drivers give about the others.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub values: Vec<OptionValue>,
    pub warnings: Vec<Finding>,
}

impl Options {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .map(|o| o.value.as_str())
    }

    pub fn is_true(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// srvMaxHosts, 0 (no limit) when not given.
    pub fn srv_max_hosts(&self) -> u32 {
        self.get("srvMaxHosts")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn warning(code: &str, message: String, hint: &str) -> Finding {
    Finding {
        severity: Severity::Warning,
        code: code.to_string(),
        message,
        hint: hint.to_string(),
    }
}

fn refuse(message: String, rule: &str) -> Diagnosis {
    Diagnosis::new(
        Kind::InvalidUri,
        format!("{message}: drivers refuse this string ({rule})"),
        "remove one of the options, or build the string with `atlas-iam uri --cluster HOST`",
    )
}

/// The options of a parsed string by the specifications: the ones in force and the warnings, or
/// the rule the string breaks.
pub fn verdict(p: &ParsedUri) -> Result<Options, Diagnosis> {
    let mut out = Options::default();
    // every key as given (canonical names), valid or not: the conflict rules look at presence
    let mut given: Vec<&'static str> = Vec::new();
    let mut tls_values: Vec<String> = Vec::new();
    let written: Vec<(String, String)> = p
        .query
        .iter()
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    for (key, value) in &written {
        let Some(spec) = options::lookup(key) else {
            // a token pasted where a key goes is masked
            let key: String =
                crate::secret::redact_tokens(&key.chars().take(40).collect::<String>());
            out.warnings.push(warning(
                "option_unknown",
                format!(
                    "`{key}` is no connection-string option: drivers warn and ignore it (its value \
                     is not shown, as it may be a secret)"
                ),
                "check the spelling against the driver's list of options, or remove it",
            ));
            continue;
        };
        let target: &'static Spec = canonical(spec);
        if let Some(new) = spec.replaced_by {
            let replacement_given = written.iter().any(|(k, _)| k.eq_ignore_ascii_case(new));
            out.warnings.push(warning(
                "option_deprecated",
                if replacement_given {
                    format!(
                        "`{}` is deprecated and ignored, as `{new}` is also given",
                        spec.name
                    )
                } else {
                    format!("`{}` is deprecated: drivers read it as `{new}`", spec.name)
                },
                &format!("use {new}"),
            ));
            if replacement_given {
                continue;
            }
        }
        given.push(target.name);
        if matches!(target.name, "tls" | "ssl") {
            tls_values.push(value.to_ascii_lowercase());
        }
        let shown = |v: &str| -> String {
            // a property list may hold a session token: never echoed
            if spec.secret || target.name == "authMechanismProperties" {
                REDACTED.to_string()
            } else {
                v.chars().take(60).collect()
            }
        };
        if value.is_empty() && !matches!(target.ty, Ty::Str | Ty::Tags) {
            out.warnings.push(warning(
                "option_invalid_value",
                format!("`{}` is empty: drivers warn and ignore it", spec.name),
                &format!("give {} a value, or remove it", spec.name),
            ));
            continue;
        }
        if let Some(why) = options::bad_value(target.ty, value) {
            out.warnings.push(warning(
                "option_invalid_value",
                format!(
                    "`{}={}` {why}: drivers warn and ignore it",
                    spec.name,
                    shown(value)
                ),
                &format!("fix the value of {}, or remove it", spec.name),
            ));
            continue;
        }
        let repeated = out.values.iter().position(|o| o.name == target.name);
        if let Some(at) = repeated {
            if target.ty != Ty::Tags && !matches!(target.name, "tls" | "ssl") {
                if target.name.starts_with("proxy") {
                    return Err(refuse(
                        format!("`{}` is given more than once", target.name),
                        "the SOCKS5 options are set once per client",
                    ));
                }
                out.warnings.push(warning(
                    "option_repeated",
                    format!(
                        "`{}` is given more than once: which one drivers use is not defined \
                         (atlas-iam takes the last)",
                        target.name
                    ),
                    &format!("give {} once", target.name),
                ));
                out.values.remove(at);
            }
        }
        // `ssl` is `tls` by another name
        let name = if target.name == "ssl" {
            "tls"
        } else {
            target.name
        };
        if name == "tls" {
            out.values.retain(|o| o.name != "tls");
        }
        out.values.push(OptionValue {
            name,
            value: value.clone(),
            secret: target.secret,
        });
    }
    conflicts(p, &out, &given, &tls_values)?;
    Ok(out)
}

fn conflicts(
    p: &ParsedUri,
    o: &Options,
    given: &[&str],
    tls_values: &[String],
) -> Result<(), Diagnosis> {
    let has = |name: &str| given.contains(&name);
    if tls_values.windows(2).any(|w| w[0] != w[1]) {
        return Err(refuse(
            "`tls` and `ssl` are given with different values".into(),
            "URI Options specification, conflicting TLS options",
        ));
    }
    for (a, b) in [
        ("tlsInsecure", "tlsAllowInvalidCertificates"),
        ("tlsInsecure", "tlsAllowInvalidHostnames"),
        ("tlsInsecure", "tlsDisableOCSPEndpointCheck"),
        ("tlsInsecure", "tlsDisableCertificateRevocationCheck"),
        ("tlsAllowInvalidCertificates", "tlsDisableOCSPEndpointCheck"),
        (
            "tlsAllowInvalidCertificates",
            "tlsDisableCertificateRevocationCheck",
        ),
        (
            "tlsDisableOCSPEndpointCheck",
            "tlsDisableCertificateRevocationCheck",
        ),
    ] {
        if has(a) && has(b) {
            return Err(refuse(
                format!("`{a}` and `{b}` are both given"),
                "URI Options specification, conflicting TLS options",
            ));
        }
    }
    let hosts = p.seeds.len();
    if o.is_true("directConnection") && (hosts > 1 || p.srv) {
        return Err(refuse(
            if p.srv {
                "`directConnection=true` with mongodb+srv, whose name may stand for several hosts"
                    .to_string()
            } else {
                format!("`directConnection=true` with {hosts} hosts")
            },
            "URI Options specification: a direct connection has one seed",
        ));
    }
    load_balanced(o, o.get("replicaSet").is_some(), hosts)?;
    for srv_only in ["srvServiceName", "srvMaxHosts"] {
        if !p.srv && has(srv_only) {
            return Err(refuse(
                format!("`{srv_only}` in a mongodb:// string"),
                "Initial DNS Seedlist Discovery specification: it belongs to mongodb+srv",
            ));
        }
    }
    srv_max_hosts(o, o.get("replicaSet").is_some(), o.is_true("loadBalanced"))?;
    if !has("proxyHost") {
        if let Some(other) = ["proxyPort", "proxyUsername", "proxyPassword"]
            .into_iter()
            .find(|n| has(n))
        {
            return Err(refuse(
                format!("`{other}` without `proxyHost`"),
                "SOCKS5 support specification",
            ));
        }
    }
    let user = o.get("proxyUsername").is_some_and(|v| !v.is_empty());
    let pass = o.get("proxyPassword").is_some_and(|v| !v.is_empty());
    if user != pass {
        return Err(refuse(
            "`proxyUsername` and `proxyPassword` must come together".into(),
            "SOCKS5 support specification",
        ));
    }
    Ok(())
}

fn load_balanced(o: &Options, replica_set: bool, hosts: usize) -> Result<(), Diagnosis> {
    if !o.is_true("loadBalanced") {
        return Ok(());
    }
    let rule = "Load Balancer specification, URI validation";
    if hosts > 1 {
        return Err(refuse(
            format!("`loadBalanced=true` with {hosts} hosts"),
            rule,
        ));
    }
    if o.is_true("directConnection") {
        return Err(refuse(
            "`loadBalanced=true` with `directConnection=true`".into(),
            rule,
        ));
    }
    if replica_set {
        return Err(refuse("`loadBalanced=true` with `replicaSet`".into(), rule));
    }
    Ok(())
}

fn srv_max_hosts(o: &Options, replica_set: bool, load_balanced: bool) -> Result<(), Diagnosis> {
    if o.srv_max_hosts() == 0 {
        return Ok(());
    }
    let rule = "Initial DNS Seedlist Discovery specification, URI validation";
    if replica_set {
        return Err(refuse("`srvMaxHosts` with `replicaSet`".into(), rule));
    }
    if load_balanced {
        return Err(refuse(
            "`srvMaxHosts` with `loadBalanced=true`".into(),
            rule,
        ));
    }
    Ok(())
}

/// The rules that can be checked only once DNS has answered: the TXT options merged under the
/// string's (the string wins), and the number of hosts the SRV records gave. The diagnosis says
/// which option came from where.
pub fn seedlist_rules(
    uri: &Options,
    txt: &[(String, String)],
    srv_hosts: usize,
) -> Result<(), Diagnosis> {
    let from_txt = |name: &str| {
        txt.iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let replica_set = uri.get("replicaSet").or(from_txt("replicaSet"));
    let lb_value = uri.get("loadBalanced").or(from_txt("loadBalanced"));
    let lb = lb_value.is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let whence = |name: &str| {
        if uri.get(name).is_some() {
            "the string"
        } else {
            "the TXT record"
        }
    };
    let dns = |d: Diagnosis| {
        Diagnosis::new(Kind::DnsTxtInvalid, d.cause, {
            "drivers refuse the cluster with these records: fix the string or the cluster's \
             TXT record"
        })
    };
    if lb {
        let rule = "Load Balancer specification, URI validation";
        if replica_set.is_some() {
            return Err(dns(refuse(
                format!(
                    "`loadBalanced=true` (from {}) with `replicaSet` (from {})",
                    whence("loadBalanced"),
                    whence("replicaSet")
                ),
                rule,
            )));
        }
        if srv_hosts > 1 {
            return Err(dns(refuse(
                format!(
                    "`loadBalanced=true` (from {}) with {srv_hosts} SRV hosts",
                    whence("loadBalanced")
                ),
                rule,
            )));
        }
    }
    if uri.srv_max_hosts() > 0 && (replica_set.is_some() || lb) {
        let other = if replica_set.is_some() {
            format!("`replicaSet` (from {})", whence("replicaSet"))
        } else {
            format!("`loadBalanced=true` (from {})", whence("loadBalanced"))
        };
        return Err(dns(refuse(
            format!("`srvMaxHosts` with {other}"),
            "Initial DNS Seedlist Discovery specification, URI validation",
        )));
    }
    Ok(())
}
