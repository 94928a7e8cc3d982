//! The pitfalls of a MONGODB-AWS connection string, each a `Finding` with a code, a message and
//! a hint.

use super::parse::bad_percent;
use super::{decode, is_atlas_host, ParsedUri};
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{Finding, Severity};

fn finding(
    severity: Severity,
    code: &str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> Finding {
    Finding {
        severity,
        code: code.to_string(),
        message: message.into(),
        hint: hint.into(),
    }
}

/// The diagnosis of findings that break authentication: their messages as the cause, their
/// hints as what to do.
pub fn pitfall<'a>(errors: impl IntoIterator<Item = &'a Finding>) -> Diagnosis {
    let (causes, hints): (Vec<&str>, Vec<&str>) = errors
        .into_iter()
        .map(|f| (f.message.as_str(), f.hint.as_str()))
        .unzip();
    Diagnosis::new(Kind::UriPitfall, causes.join("; "), hints.join("; "))
}

/// Findings about credentials embedded in the string: moot where atlas-iam replaces or ignores
/// those credentials (`uri --embed-credentials`, the probe).
pub fn is_credential_finding(code: &str) -> bool {
    matches!(
        code,
        "embedded_credentials"
            | "unencoded_plus"
            | "unencoded_reserved"
            | "bad_percent_encoding"
            | "username_without_password"
            | "session_token_without_key"
    )
}

/// Characters that must be percent-encoded in the userinfo, besides `%` itself.
const USERINFO_RESERVED: [char; 5] = [':', '/', '?', '#', '@'];

/// The pitfalls of a MONGODB-AWS connection string.
pub fn findings(p: &ParsedUri) -> Vec<Finding> {
    use Severity::{Error, Warning};
    let mut out = Vec::new();
    let fix_hint = "build a correct one with `atlas-iam uri --cluster HOST`";

    match p.option("authMechanism") {
        None => out.push(finding(
            Error,
            "auth_mechanism_missing",
            "authMechanism is not set: drivers will not use AWS IAM authentication",
            "add authMechanism=MONGODB-AWS",
        )),
        Some(m) if m != "MONGODB-AWS" => out.push(finding(
            Error,
            "auth_mechanism_other",
            format!("authMechanism={m} is not AWS IAM authentication"),
            "use authMechanism=MONGODB-AWS",
        )),
        Some(_) => {}
    }
    match p.option("authSource").map(decode) {
        None if p.srv => out.push(finding(Error, "auth_source_missing",
            "authSource is not set: Atlas's DNS TXT record sets authSource=admin for mongodb+srv, \
             and IAM users live in $external",
            "add authSource=%24external")),
        None => out.push(finding(Warning, "auth_source_missing",
            "authSource is not set: drivers default to $external for MONGODB-AWS, but some tools do not",
            "add authSource=%24external")),
        Some(s) if s != "$external" => out.push(finding(Error, "auth_source_wrong",
            format!("authSource={s}: IAM database users live in $external"),
            "use authSource=%24external")),
        Some(_) => {}
    }

    if p.user.is_some() || p.password.is_some() {
        out.push(finding(
            Warning,
            "embedded_credentials",
            "the string embeds AWS credentials: since 2025-09-30 the MONGODB-AWS specification \
             says drivers must refuse credentials in the URI (the Node driver 7 and mongosh 2.7 \
             do; older drivers still read them, the Rust driver 3 with a warning), and embedded \
             temporary credentials stop working when they expire",
            "drop them and let the driver read AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and \
             AWS_SESSION_TOKEN or the AWS default chain",
        ));
    }
    if let Some(user) = &p.user {
        if p.password.is_none() {
            out.push(finding(
                Error,
                "username_without_password",
                "the string has a username (access key id) but no password (secret key)",
                "remove the userinfo, or give key:secret",
            ));
        }
        check_userinfo_part(&mut out, user, "access key id");
    }
    if let Some(pw) = &p.password {
        check_userinfo_part(&mut out, pw, "secret key");
    }
    if let Some(token) = p.session_token_raw() {
        if token.contains('+') {
            out.push(finding(
                Error,
                "unencoded_plus",
                "the session token has a raw `+`: drivers that decode the query as a form read it \
                 as a space, and STS answers 403",
                "percent-encode the token (+ is %2B, / is %2F, = is %3D)",
            ));
        }
        if bad_percent(token) {
            out.push(finding(
                Error,
                "bad_percent_encoding",
                "the session token has a `%` that is not followed by two hex digits",
                "percent-encode the token (% is %25)",
            ));
        }
        if p.user.is_none() {
            // the auth specification's tests refuse a token without its key
            out.push(finding(
                Error,
                "session_token_without_key",
                "AWS_SESSION_TOKEN is set in the string but no access key is: drivers ignore it \
                 or refuse the string",
                "give the token with its key through the environment instead",
            ));
        }
    }

    let tls_off = ["tls", "ssl"]
        .iter()
        .any(|k| p.option(k).is_some_and(|v| v.eq_ignore_ascii_case("false")));
    if tls_off && (p.srv || p.hosts.iter().any(|h| is_atlas_host(h))) {
        out.push(finding(
            Error,
            "tls_disabled",
            "TLS is switched off, and Atlas accepts only TLS connections",
            "remove tls=false / ssl=false",
        ));
    }
    let tls_on = ["tls", "ssl"]
        .iter()
        .any(|k| p.option(k).is_some_and(|v| v.eq_ignore_ascii_case("true")));
    let atlas = p.hosts.iter().any(|h| is_atlas_host(h));
    if !p.srv && !tls_on && !tls_off {
        out.push(finding(
            if atlas { Error } else { Warning },
            "tls_off",
            "TLS is off (mongodb:// without tls=true): the signed STS request and any session \
             token would travel in cleartext",
            "add tls=true (mongodb+srv turns it on by itself)",
        ));
    }
    for weakening in [
        "tlsInsecure",
        "tlsAllowInvalidCertificates",
        "tlsAllowInvalidHostnames",
        "sslAllowInvalidCertificates",
        "sslAllowInvalidHostnames",
        "tlsDisableOCSPEndpointCheck",
        "tlsDisableCertificateRevocationCheck",
    ] {
        if p.option(weakening)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            out.push(finding(
                Warning,
                "tls_weakened",
                format!(
                    "{weakening}=true: the driver accepts a certificate it cannot verify, so \
                     whoever is in between receives the signed STS request and the session token"
                ),
                format!("remove {weakening}; give the CA with tlsCAFile if the chain is private"),
            ));
        }
    }
    if p.srv {
        if p.hosts.len() > 1 {
            out.push(finding(
                Error,
                "srv_multiple_hosts",
                "a mongodb+srv string names one host: the cluster, whose members come from DNS",
                fix_hint,
            ));
        } else if p.hosts.iter().any(|h| h.contains(':') && !h.ends_with(']')) {
            out.push(finding(
                Error,
                "srv_with_port",
                "a mongodb+srv string must not have a port: the ports come from the SRV records",
                "remove the port, or use mongodb:// with every member host:port",
            ));
        }
    }
    out
}

fn check_userinfo_part(out: &mut Vec<Finding>, raw: &str, what: &str) {
    use Severity::Error;
    if raw.contains('+') {
        out.push(finding(
            Error,
            "unencoded_plus",
            format!(
                "the {what} in the string has a raw `+`: many drivers decode it as a space, \
                     and STS answers 403 SignatureDoesNotMatch"
            ),
            "percent-encode it (+ is %2B, / is %2F, = is %3D)",
        ));
    }
    if raw.contains(USERINFO_RESERVED) {
        out.push(finding(
            Error,
            "unencoded_reserved",
            format!("the {what} in the string has an unencoded reserved character (: / ? # @)"),
            "percent-encode it (/ is %2F, : is %3A, @ is %40)",
        ));
    }
    if bad_percent(raw) {
        out.push(finding(
            Error,
            "bad_percent_encoding",
            format!("the {what} in the string has a `%` that is not followed by two hex digits"),
            "percent-encode it (% is %25)",
        ));
    }
}

/// The findings as the application's driver sees the string: credentials in it refused where
/// that driver refuses them (Node 7, mongosh 2.7), and a mongodb+srv string without authSource
/// judged by how the driver treats the TXT record's `authSource=admin`.
pub fn for_driver(p: &ParsedUri, found: &mut Vec<Finding>, driver: &crate::drivers::Driver) {
    use crate::drivers::TxtAuthSource;
    use Severity::{Error, Warning};
    let label = driver.label();
    if p.user.is_some() || p.password.is_some() {
        if let Some(error) = driver.refuses_uri_credentials() {
            found.push(finding(
                Error,
                "driver_refuses_uri_credentials",
                format!("{label} refuses credentials in the string: `{error}`"),
                "drop the userinfo (and AWS_SESSION_TOKEN) from the string: the driver reads the \
                 AWS credentials from the environment or the AWS default chain",
            ));
        } else if driver.warns_uri_credentials() {
            found.push(finding(
                Warning,
                "driver_warns_uri_credentials",
                format!(
                    "{label} reads credentials in the string with a warning (the specification \
                     now says to refuse them)"
                ),
                "drop them from the string",
            ));
        }
    }
    if p.srv && p.option("authSource").is_none() {
        for f in found.iter_mut().filter(|f| f.code == "auth_source_missing") {
            match driver.txt_auth_source() {
                TxtAuthSource::Ignored => {
                    f.severity = Warning;
                    f.message = format!(
                        "authSource is not set: {label} ignores the TXT record's authSource for \
                         MONGODB-AWS and uses $external, so this string works with it; other \
                         drivers take authSource=admin from the TXT record and refuse it"
                    );
                }
                TxtAuthSource::Refused => {
                    f.message = format!(
                        "authSource is not set: {label} takes authSource=admin from Atlas's TXT \
                         record and refuses it for MONGODB-AWS (pymongo: `authentication source \
                         must be $external or None for MONGODB-AWS`)"
                    );
                }
            }
        }
    }
}

/// Checks a string as the specifications read it: the syntax and the options' verdict first
/// (what every driver refuses, and the warnings they give), then the MONGODB-AWS pitfalls. The
/// bundled driver's own parser has no say here: it refuses options other drivers accept.
pub fn check(uri: &str) -> Result<(ParsedUri, Vec<Finding>), Diagnosis> {
    let parsed = ParsedUri::parse(uri)?;
    let options = super::verdict(&parsed)?;
    let mut found = findings(&parsed);
    found.extend(options.warnings);
    Ok((parsed, found))
}
