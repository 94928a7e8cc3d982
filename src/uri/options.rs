//! The connection-string options as the MongoDB specifications define them, and what atlas-iam
//! does with each.
//!
//! Where each row comes from: the option table of `source/uri-options/uri-options.md` in
//! mongodb/specifications (names, types, ranges), `timeoutMS` from
//! `source/client-side-operations-timeout/`, the proxy options from `source/socks5-support/`,
//! `srvServiceName` and `srvMaxHosts` from `source/initial-dns-seedlist-discovery/`, and the
//! deprecated spellings (`ssl…`, `wtimeout`) that drivers still read. Which of them the bundled
//! Rust driver honours is not kept here: it is asked at run time (`honoured`), so the table
//! cannot drift from the driver.

/// What an option's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `true` or `false`
    Bool,
    /// an integer in this range, both ends included
    Int(i64, i64),
    /// maxStalenessSeconds: -1, or an integer of at least 90
    Staleness,
    /// any string
    Str,
    /// one of these words (case-insensitive)
    OneOf(&'static [&'static str]),
    /// a comma-separated list of these words
    ListOf(&'static [&'static str]),
    /// comma-separated `key:value` pairs
    Pairs,
    /// readPreferenceTags: pairs or empty; the key may repeat, each instance one tag set
    Tags,
    /// w: a non-negative integer or any string
    W,
    /// a service name of RFC 6335 (letters, digits, `-`; at most 62 characters here)
    ServiceName,
}

/// What leaving an option out of atlas-iam's own connection does to the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// atlas-iam reads it itself (authentication, TLS, SRV): never handed to its driver as such.
    Own,
    /// Leaving it out cannot change whether the application connects and authenticates; the
    /// text says why.
    Same(&'static str),
    /// Leaving it out can change the verdict; the text says how.
    Differs(&'static str),
}

pub struct Spec {
    /// The name as the specification spells it.
    pub name: &'static str,
    pub ty: Ty,
    /// Its value is a secret: shown redacted, scrubbed from every text.
    pub secret: bool,
    pub effect: Effect,
    /// A deprecated spelling: the name that replaces it.
    pub replaced_by: Option<&'static str>,
}

const fn spec(name: &'static str, ty: Ty, effect: Effect) -> Spec {
    Spec {
        name,
        ty,
        secret: false,
        effect,
        replaced_by: None,
    }
}

const fn secret(name: &'static str, effect: Effect) -> Spec {
    Spec {
        name,
        ty: Ty::Str,
        secret: true,
        effect,
        replaced_by: None,
    }
}

const fn alias(name: &'static str, ty: Ty, replaced_by: &'static str) -> Spec {
    Spec {
        name,
        ty,
        secret: false,
        effect: Effect::Own,
        replaced_by: Some(replaced_by),
    }
}

const I32: i64 = i32::MAX as i64;
const NONNEG: Ty = Ty::Int(0, I32);
const SAME_POOL: Effect = Effect::Same(
    "a pool or monitoring setting: it does not change how one connection authenticates",
);
const SAME_CONCERN: Effect =
    Effect::Same("a read or write setting: it does not change whether a connection authenticates");
const SAME_COMPRESSION: Effect = Effect::Same(
    "compression is agreed in the hello, before authentication, and does not change it",
);
const SAME_TIMEOUT: Effect = Effect::Same(
    "atlas-iam bounds each stage with --timeout instead; a shorter timeout in the application \
     can still make it give up sooner",
);
const PROXY: Effect = Effect::Differs(
    "the check went straight to the cluster, not through the SOCKS5 proxy the application uses: \
     a proxy that cannot reach the cluster fails the application and not this check",
);
const LAX_TLS: Effect = Effect::Differs(
    "the check verified what the application would not: a certificate that fails here may pass \
     in the application (which is then open to whoever is in between)",
);
const NO_REVOCATION: Effect =
    Effect::Same("atlas-iam does no revocation check, so leaving it out changes nothing");
const CLIENT_CERT: Effect = Effect::Differs(
    "the check presented no client certificate: a server that requires one refuses this check \
     and not the application",
);

/// Every option the specifications define, with the deprecated spellings drivers still read.
pub(super) static OPTIONS: &[Spec] = &[
    spec(
        "appName",
        Ty::Str,
        Effect::Same("the name shown in the server's logs"),
    ),
    spec("authMechanism", Ty::Str, Effect::Own),
    spec("authMechanismProperties", Ty::Pairs, Effect::Own),
    spec("authSource", Ty::Str, Effect::Own),
    spec(
        "compressors",
        Ty::ListOf(&["snappy", "zlib", "zstd"]),
        SAME_COMPRESSION,
    ),
    spec("connectTimeoutMS", NONNEG, SAME_TIMEOUT),
    spec(
        "directConnection",
        Ty::Bool,
        Effect::Differs("the topology decides which hosts the driver authenticates to"),
    ),
    spec("enableOverloadRetargeting", Ty::Bool, SAME_POOL),
    spec("heartbeatFrequencyMS", Ty::Int(500, I32), SAME_POOL),
    spec("journal", Ty::Bool, SAME_CONCERN),
    spec(
        "loadBalanced",
        Ty::Bool,
        Effect::Differs("load-balanced mode changes the handshake"),
    ),
    spec("localThresholdMS", NONNEG, SAME_POOL),
    spec("maxAdaptiveRetries", NONNEG, SAME_POOL),
    spec("maxConnecting", Ty::Int(1, I32), SAME_POOL),
    spec("maxIdleTimeMS", NONNEG, SAME_POOL),
    spec("maxPoolSize", NONNEG, SAME_POOL),
    spec("maxStalenessSeconds", Ty::Staleness, SAME_CONCERN),
    spec("minPoolSize", NONNEG, SAME_POOL),
    spec("proxyHost", Ty::Str, PROXY),
    spec("proxyPort", Ty::Int(0, 65535), PROXY),
    spec("proxyUsername", Ty::Str, PROXY),
    secret("proxyPassword", PROXY),
    spec("readConcernLevel", Ty::Str, SAME_CONCERN),
    spec(
        "readPreference",
        Ty::OneOf(&[
            "primary",
            "primaryPreferred",
            "secondary",
            "secondaryPreferred",
            "nearest",
        ]),
        SAME_CONCERN,
    ),
    spec("readPreferenceTags", Ty::Tags, SAME_CONCERN),
    spec(
        "replicaSet",
        Ty::Str,
        Effect::Differs("the replica set's name decides which members the driver accepts"),
    ),
    spec("retryReads", Ty::Bool, SAME_CONCERN),
    spec("retryWrites", Ty::Bool, SAME_CONCERN),
    spec(
        "serverMonitoringMode",
        Ty::OneOf(&["stream", "poll", "auto"]),
        SAME_POOL,
    ),
    spec("serverSelectionTimeoutMS", NONNEG, SAME_TIMEOUT),
    spec(
        "serverSelectionTryOnce",
        Ty::Bool,
        Effect::Same("single-threaded drivers only; it does not change authentication"),
    ),
    spec("socketTimeoutMS", NONNEG, SAME_TIMEOUT),
    spec("srvMaxHosts", NONNEG, Effect::Own),
    spec("srvServiceName", Ty::ServiceName, Effect::Own),
    spec("ssl", Ty::Bool, Effect::Own),
    spec("timeoutMS", NONNEG, SAME_TIMEOUT),
    spec("tls", Ty::Bool, Effect::Own),
    spec("tlsAllowInvalidCertificates", Ty::Bool, LAX_TLS),
    spec("tlsAllowInvalidHostnames", Ty::Bool, LAX_TLS),
    spec("tlsCAFile", Ty::Str, Effect::Own),
    spec("tlsCertificateKeyFile", Ty::Str, CLIENT_CERT),
    secret("tlsCertificateKeyFilePassword", CLIENT_CERT),
    spec(
        "tlsDisableCertificateRevocationCheck",
        Ty::Bool,
        NO_REVOCATION,
    ),
    spec("tlsDisableOCSPEndpointCheck", Ty::Bool, NO_REVOCATION),
    spec("tlsInsecure", Ty::Bool, LAX_TLS),
    spec(
        "uuidRepresentation",
        Ty::OneOf(&[
            "unspecified",
            "standard",
            "csharpLegacy",
            "javaLegacy",
            "pythonLegacy",
        ]),
        Effect::Same("how UUIDs are encoded (the Java, C# and Python drivers)"),
    ),
    spec("w", Ty::W, SAME_CONCERN),
    spec("waitQueueTimeoutMS", Ty::Int(1, I32), SAME_POOL),
    spec("wTimeoutMS", Ty::Int(0, i64::MAX), SAME_CONCERN),
    spec("zlibCompressionLevel", Ty::Int(-1, 9), SAME_COMPRESSION),
    // the deprecated spellings: read as their replacement, with a warning
    alias(
        "sslAllowInvalidCertificates",
        Ty::Bool,
        "tlsAllowInvalidCertificates",
    ),
    alias(
        "sslAllowInvalidHostnames",
        Ty::Bool,
        "tlsAllowInvalidHostnames",
    ),
    alias("sslCAFile", Ty::Str, "tlsCAFile"),
    alias("sslPEMKeyFile", Ty::Str, "tlsCertificateKeyFile"),
    Spec {
        name: "sslPEMKeyPassword",
        ty: Ty::Str,
        secret: true,
        effect: Effect::Own,
        replaced_by: Some("tlsCertificateKeyFilePassword"),
    },
    alias("wtimeout", Ty::Int(0, i64::MAX), "wTimeoutMS"),
];

/// The option of a key, compared as the connection-string specification says: ASCII case
/// ignored.
pub fn lookup(key: &str) -> Option<&'static Spec> {
    OPTIONS.iter().find(|s| s.name.eq_ignore_ascii_case(key))
}

/// The specification an option of this name belongs to (its replacement's, for a deprecated one).
pub(super) fn canonical(spec: &'static Spec) -> &'static Spec {
    spec.replaced_by.and_then(lookup).unwrap_or(spec)
}

/// The specification's name of an option (its replacement's, for a deprecated spelling).
pub fn canonical_name(spec: &'static Spec) -> &'static str {
    canonical(spec).name
}

/// Why a value is not one the specification accepts, or None when it is.
pub(super) fn bad_value(ty: Ty, value: &str) -> Option<String> {
    let int = |v: &str| v.parse::<i64>().ok();
    match ty {
        Ty::Str => None,
        Ty::Bool => (!(value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")))
            .then(|| "is not true or false".to_string()),
        Ty::Int(min, max) => match int(value) {
            None => Some("is not an integer".into()),
            Some(n) if n < min || n > max => Some(if max == I32 || max == i64::MAX {
                format!("is below {min}")
            } else {
                format!("is not between {min} and {max}")
            }),
            Some(_) => None,
        },
        Ty::Staleness => match int(value) {
            None => Some("is not an integer".into()),
            Some(n) if n == -1 || (90..=I32).contains(&n) => None,
            Some(_) => Some("must be -1 or at least 90".into()),
        },
        Ty::OneOf(words) => (!words.iter().any(|w| w.eq_ignore_ascii_case(value)))
            .then(|| format!("is not one of {}", words.join(", "))),
        Ty::ListOf(words) => value
            .split(',')
            .find(|item| !words.iter().any(|w| w.eq_ignore_ascii_case(item)))
            .map(|_| format!("names a compressor other than {}", words.join(", "))),
        Ty::Pairs => bad_pairs(value),
        Ty::Tags if value.is_empty() => None,
        Ty::Tags => bad_pairs(value),
        Ty::W => match int(value) {
            Some(n) if n < 0 => Some("is a negative number".into()),
            _ => None,
        },
        Ty::ServiceName => {
            let ok = !value.is_empty()
                && value.len() <= 62
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && value.chars().any(|c| c.is_ascii_alphabetic())
                && !value.starts_with('-')
                && !value.ends_with('-')
                && !value.contains("--");
            (!ok).then(|| "is not a service name (RFC 6335: letters, digits and -)".to_string())
        }
    }
}

/// Comma-separated `key:value` pairs; a value may hold a `:` but not a `,` (the
/// connection-string specification's key-value type).
fn bad_pairs(value: &str) -> Option<String> {
    value
        .split(',')
        .find(|p| p.split_once(':').is_none_or(|(k, _)| k.is_empty()))
        .map(|_| "is not a list of key:value pairs (a value must not contain a comma)".to_string())
}

/// Whether the bundled driver accepts this option: its own parser is asked, on a string that
/// holds nothing else. Options it refuses are left out of atlas-iam's connection (with a warning);
/// the application's driver may well honour them.
pub fn honoured(name: &str, encoded_value: &str) -> bool {
    let probe = format!("mongodb://localhost/?{name}={encoded_value}");
    mongodb::options::ConnectionString::parse(probe).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_found_without_case() {
        for s in OPTIONS {
            assert_eq!(
                OPTIONS
                    .iter()
                    .filter(|o| o.name.eq_ignore_ascii_case(s.name))
                    .count(),
                1,
                "{}",
                s.name
            );
            assert!(std::ptr::eq(
                lookup(&s.name.to_ascii_uppercase()).expect("found"),
                s
            ));
            if let Some(r) = s.replaced_by {
                assert!(lookup(r).is_some_and(|r| r.replaced_by.is_none()), "{r}");
            }
        }
    }

    /// One row per value rule of the URI Options specification's table.
    #[test]
    fn values_by_the_table() {
        let rows: &[(&str, &str, bool)] = &[
            ("retryWrites", "true", true),
            ("retryWrites", "FALSE", true),
            ("retryWrites", "invalid", false),
            ("loadBalanced", "1", false),
            ("connectTimeoutMS", "0", true),
            ("connectTimeoutMS", "-2", false),
            ("connectTimeoutMS", "invalid", false),
            ("heartbeatFrequencyMS", "499", false),
            ("heartbeatFrequencyMS", "500", true),
            ("maxConnecting", "0", false),
            ("zlibCompressionLevel", "-1", true),
            ("zlibCompressionLevel", "9", true),
            ("zlibCompressionLevel", "10", false),
            ("zlibCompressionLevel", "-2", false),
            ("maxStalenessSeconds", "-1", true),
            ("maxStalenessSeconds", "120", true),
            ("maxStalenessSeconds", "-2", false),
            ("maxStalenessSeconds", "30", false),
            ("readPreference", "secondaryPreferred", true),
            ("readPreference", "any", false),
            ("readPreferenceTags", "dc:ny,rack:1", true),
            ("readPreferenceTags", "", true),
            ("readPreferenceTags", "invalid", false),
            ("compressors", "snappy,zlib", true),
            ("compressors", "zstd", true),
            ("compressors", "lz4", false),
            ("w", "majority", true),
            ("w", "5", true),
            ("w", "-1", false),
            ("wTimeoutMS", "-2", false),
            ("srvServiceName", "customname", true),
            ("srvServiceName", "bad_name", false),
            ("srvMaxHosts", "-1", false),
            ("srvMaxHosts", "foo", false),
            ("serverMonitoringMode", "poll", true),
            ("serverMonitoringMode", "invalid", false),
            ("proxyPort", "1080", true),
            ("proxyPort", "70000", false),
            (
                "authMechanismProperties",
                "TOKEN_RESOURCE:mongodb://foo",
                true,
            ),
            ("authMechanismProperties", "AWS_SESSION_TOKEN", false),
        ];
        for (name, value, ok) in rows {
            let spec = lookup(name).expect(name);
            assert_eq!(
                bad_value(spec.ty, value).is_none(),
                *ok,
                "{name}={value}: {:?}",
                bad_value(spec.ty, value)
            );
        }
    }

    #[test]
    fn the_driver_is_asked_what_it_honours() {
        assert!(honoured("retryWrites", "true"));
        assert!(honoured("appName", "x"));
        // the bundled driver has no compression compiled in and no SOCKS5 support
        assert!(!honoured("compressors", "zstd"));
        assert!(!honoured("proxyHost", "localhost"));
    }
}
