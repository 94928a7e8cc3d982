//! One row per rule of the MongoDB specifications on connection strings (mongodb/specifications:
//! `connection-string/`, `uri-options/`, `auth/` for MONGODB-AWS, `load-balancers/`,
//! `socks5-support/`, `initial-dns-seedlist-discovery/`), written for this project from the
//! rules: what the specification says a driver does with the string, and what atlas-iam reports.

use super::*;
use crate::report::Severity;

enum Want {
    /// valid: the hosts (`Host::shown`), the decoded database, the options in force
    /// (`OptionValue::shown`) and the codes of the warnings, in order
    Valid {
        hosts: &'static [&'static str],
        db: Option<&'static str>,
        options: &'static [&'static str],
        warnings: &'static [&'static str],
    },
    /// valid, with these options in force and these warnings (hosts as in the string)
    Options(&'static [&'static str], &'static [&'static str]),
    /// refused: the cause names this
    Refused(&'static str),
}
use Want::*;

fn ok(options: &'static [&'static str]) -> Want {
    Options(options, &[])
}

fn warns(options: &'static [&'static str], warnings: &'static [&'static str]) -> Want {
    Options(options, warnings)
}

/// (what the rule is, the string, what drivers do with it)
type Row = (&'static str, &'static str, fn() -> Want);

const ROWS: &[Row] = &[
    // ---- connection-string: scheme and hosts
    ("empty string", "", || Refused("no scheme")),
    ("other scheme", "mongo://localhost:27017", || Refused("unsupported scheme")),
    ("no host", "mongodb://", || Refused("no host")),
    ("double colon", "mongodb://localhost::27017", || Refused("more than one `:`")),
    ("double colon, second host", "mongodb://localhost::27017,abc", || Refused("`localhost::27017`")),
    ("negative port", "mongodb://localhost:-1", || Refused("not a number")),
    ("port zero", "mongodb://localhost:0/", || Refused("outside 1..65535")),
    ("port too large", "mongodb://[::1]:65536/", || Refused("outside 1..65535")),
    ("port not a number", "mongodb://[::1]:foo", || Refused("not a number")),
    ("unencoded socket path", "mongodb:///tmp/mongodb-27017.sock/", || Refused("no host")),
    ("socket path not ending in .sock", "mongodb://%2Ftmp%2Fmongodb", || Refused(".sock")),
    ("mixed hosts", "mongodb://127.0.0.1,[::1]:27018,example.com:27019", || Valid {
        hosts: &["127.0.0.1", "[::1]:27018", "example.com:27019"],
        db: None, options: &[], warnings: &[],
    }),
    ("utf-8 hosts", "mongodb://bücher.example.com,umläut.example.com/", || Valid {
        hosts: &["bücher.example.com", "umläut.example.com"], db: None, options: &[], warnings: &[],
    }),
    ("a name resembling IPv4", "mongodb://256.0.0.1", || Valid {
        hosts: &["256.0.0.1"], db: None, options: &[], warnings: &[],
    }),
    ("unix domain sockets", "mongodb://%2Ftmp%2Fmongodb-27017.sock,rel%2F%20%2Fm.sock/admin.sock", || Valid {
        hosts: &["/tmp/mongodb-27017.sock", "rel/ /m.sock"], db: Some("admin.sock"), options: &[], warnings: &[],
    }),
    ("no slash before the options", "mongodb://example.com?tls=true", || Valid {
        hosts: &["example.com"], db: None, options: &["tls=true"], warnings: &[],
    }),
    ("a raw / in an option value before any path", "mongodb://h?tlsCAFile=/etc/ca.pem", || Valid {
        hosts: &["h"], db: None, options: &["tlsCAFile=/etc/ca.pem"], warnings: &[],
    }),
    // ---- connection-string: userinfo
    ("userinfo on IP literal", "mongodb://bob:bar@[::1]:27018/admin", || Valid {
        hosts: &["[::1]:27018"], db: Some("admin"), options: &[], warnings: &[],
    }),
    ("sub-delimiters need no escaping", "mongodb://!$&'()*+,;=:!$&'()*+,;=@127.0.0.1/admin?authMechanism=PLAIN", || Valid {
        hosts: &["127.0.0.1"], db: Some("admin"), options: &["authMechanism=PLAIN"], warnings: &[],
    }),
    ("a raw = in the password", "mongodb://alice:pa=ss@db.example.com/test", || Valid {
        hosts: &["db.example.com"], db: Some("test"), options: &[], warnings: &[],
    }),
    ("escaped userinfo and database", "mongodb://%40l%3Ace%2F%3D@example.com/my%3Ddb", || Valid {
        hosts: &["example.com"], db: Some("my=db"), options: &[], warnings: &[],
    }),
    ("@ in an option value", "mongodb://alice:secret@example.com/admin?replicaset=my@replicaset", || Valid {
        hosts: &["example.com"], db: Some("admin"), options: &["replicaSet=my@replicaset"], warnings: &[],
    }),
    ("@ in an option value, no slash", "mongodb://h.example.net?appName=me@x", || Valid {
        hosts: &["h.example.net"], db: None, options: &["appName=me@x"], warnings: &[],
    }),
    ("two colons in userinfo", "mongodb://alice:foo:bar@127.0.0.1", || Refused("unescaped `:`")),
    ("@ in the username", "mongodb://alice@@127.0.0.1", || Refused("unescaped `@`")),
    ("@ in username and password", "mongodb://alice@foo:bar@127.0.0.1", || Refused("unescaped `@`")),
    ("/ in the username", "mongodb://alice/@localhost/db", || Refused("unescaped `/`")),
    ("/ in the username, with password", "mongodb://alice/bob:foo@localhost/db", || Refused("unescaped `/`")),
    ("/ in the password", "mongodb://alice:foo/bar@localhost/db", || Refused("unescaped `/`")),
    ("bare % in userinfo", "mongodb://alice%foo:bar@127.0.0.1", || Refused("`%`")),
    ("escaped and bare %", "mongodb://user%20%:password@localhost", || Refused("`%`")),
    ("% before a non-hex digit", "mongodb://user%w:password@localhost", || Refused("`%`")),
    // ---- connection-string: database and options
    ("database with commas", "mongodb+srv://test1.test.build.10gen.cc/some,db", || Valid {
        hosts: &["test1.test.build.10gen.cc"], db: Some("some,db"), options: &[], warnings: &[],
    }),
    ("$ in the database", "mongodb://h/$external?authMechanism=MONGODB-AWS", || Refused("`$`")),
    ("option without =", "mongodb://example.com/?w", || Refused("has no `=`")),
    ("keys are compared without case", "mongodb://example.com/?AUTHMechanism=PLAIN&APPNAME=a", || ok(&["authMechanism=PLAIN", "appName=a"])),
    ("values are decoded", "mongodb://h/?appName=a%26b%3Dc", || ok(&["appName=a&b=c"])),
    ("key:value with a raw colon", "mongodb://h/?authMechanism=MONGODB-OIDC&authMechanismProperties=TOKEN_RESOURCE:mongodb://test-cluster,ENVIRONMENT:azure",
        || ok(&["authMechanism=MONGODB-OIDC", "authMechanismProperties=TOKEN_RESOURCE:mongodb://test-cluster,ENVIRONMENT:azure"])),
    ("unknown key", "mongodb://example.com/?foo=bar", || warns(&[], &["option_unknown"])),
    ("unknown value of an unknown key", "mongodb://example.com/?fsync=ifPossible", || warns(&[], &["option_unknown"])),
    ("repeated key", "mongodb://example.com/?replicaSet=a&replicaSet=b", || warns(&["replicaSet=b"], &["option_repeated"])),
    ("deprecated key with its replacement", "mongodb://example.com/?wtimeout=5&wtimeoutMS=10", || warns(&["wTimeoutMS=10"], &["option_deprecated"])),
    ("deprecated key alone", "mongodb://example.com/?sslCAFile=ca.pem", || warns(&["tlsCAFile=ca.pem"], &["option_deprecated"])),
    ("empty integer", "mongodb://localhost/?maxIdleTimeMS=", || warns(&[], &["option_invalid_value"])),
    ("empty boolean", "mongodb://localhost/?journal=", || warns(&[], &["option_invalid_value"])),
    ("comma inside a key:value value", "mongodb://localhost?authMechanism=MONGODB-OIDC&authMechanismProperties=TOKEN_RESOURCE:mongodb://host1%2Chost2,ENVIRONMENT:azure",
        || warns(&["authMechanism=MONGODB-OIDC"], &["option_invalid_value"])),
    ("boolean not true/false", "mongodb://example.com/?retryWrites=invalid", || warns(&[], &["option_invalid_value"])),
    ("legacy boolean", "mongodb://example.com/?loadBalanced=1", || warns(&[], &["option_invalid_value"])),
    ("negative timeout", "mongodb://example.com/?connectTimeoutMS=-2", || warns(&[], &["option_invalid_value"])),
    ("timeoutMS not a number", "mongodb://example.com/?timeoutMS=invalid", || warns(&[], &["option_invalid_value"])),
    ("heartbeat below 500", "mongodb://example.com/?heartbeatFrequencyMS=-2", || warns(&[], &["option_invalid_value"])),
    ("zlib level out of range", "mongodb://example.com/?compressors=zlib&zlibCompressionLevel=10", || warns(&["compressors=zlib"], &["option_invalid_value"])),
    ("staleness below 90", "mongodb://example.com/?maxStalenessSeconds=-2", || warns(&[], &["option_invalid_value"])),
    ("maxConnecting zero", "mongodb://example.com/?maxConnecting=0", || warns(&[], &["option_invalid_value"])),
    ("tags not key:value", "mongodb://example.com/?readPreferenceTags=invalid", || warns(&[], &["option_invalid_value"])),
    ("monitoring mode", "mongodb://example.com/?serverMonitoringMode=invalid", || warns(&[], &["option_invalid_value"])),
    ("tlsInsecure not a boolean", "mongodb://example.com/?tlsInsecure=invalid", || warns(&[], &["option_invalid_value"])),
    ("srvMaxHosts negative", "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=-1", || warns(&[], &["option_invalid_value"])),
    // ---- options every driver accepts (atlas-iam's own driver refuses some of them)
    ("compression", "mongodb://h/?compressors=zstd,snappy&zlibCompressionLevel=9", || ok(&["compressors=zstd,snappy", "zlibCompressionLevel=9"])),
    ("timeoutMS", "mongodb://h/?timeoutMS=100", || ok(&["timeoutMS=100"])),
    ("lax TLS, one at a time", "mongodb://h/?tlsAllowInvalidHostnames=true&serverSelectionTryOnce=false", || ok(&["tlsAllowInvalidHostnames=true", "serverSelectionTryOnce=false"])),
    ("OCSP off", "mongodb://h/?tlsDisableOCSPEndpointCheck=true", || ok(&["tlsDisableOCSPEndpointCheck=true"])),
    ("revocation off", "mongodb://h/?tlsDisableCertificateRevocationCheck=true", || ok(&["tlsDisableCertificateRevocationCheck=true"])),
    ("SOCKS5 proxy", "mongodb://h/?proxyHost=localhost&proxyPort=1080&proxyUsername=u&proxyPassword=p",
        || ok(&["proxyHost=localhost", "proxyPort=1080", "proxyUsername=u", "proxyPassword=(redacted)"])),
    ("key file password", "mongodb://h/?tls=true&tlsCertificateKeyFile=c.pem&tlsCertificateKeyFilePassword=hunter2",
        || ok(&["tls=true", "tlsCertificateKeyFile=c.pem", "tlsCertificateKeyFilePassword=(redacted)"])),
    ("tls and ssl agreeing", "mongodb://example.com/?tls=true&ssl=true", || ok(&["tls=true"])),
    ("tags may repeat", "mongodb://h/?readPreference=secondary&readPreferenceTags=dc:ny,rack:1&readPreferenceTags=",
        || ok(&["readPreference=secondary", "readPreferenceTags=dc:ny,rack:1", "readPreferenceTags="])),
    // ---- uri-options: conflicts
    ("tls against ssl", "mongodb://example.com/?tls=true&ssl=false", || Refused("`tls` and `ssl`")),
    ("tlsInsecure and invalid certificates", "mongodb://example.com/?tlsInsecure=true&tlsAllowInvalidCertificates=true", || Refused("`tlsInsecure` and `tlsAllowInvalidCertificates`")),
    ("tlsInsecure and invalid hostnames, even false", "mongodb://example.com/?tlsInsecure=false&tlsAllowInvalidHostnames=false", || Refused("`tlsAllowInvalidHostnames`")),
    ("tlsInsecure and OCSP", "mongodb://example.com/?tlsDisableOCSPEndpointCheck=true&tlsInsecure=false", || Refused("`tlsDisableOCSPEndpointCheck`")),
    ("tlsInsecure and revocation", "mongodb://example.com/?tlsInsecure=true&tlsDisableCertificateRevocationCheck=true", || Refused("`tlsDisableCertificateRevocationCheck`")),
    ("invalid certificates and revocation", "mongodb://example.com/?tlsAllowInvalidCertificates=false&tlsDisableCertificateRevocationCheck=false", || Refused("`tlsAllowInvalidCertificates`")),
    ("invalid certificates and OCSP", "mongodb://example.com/?tlsAllowInvalidCertificates=true&tlsDisableOCSPEndpointCheck=true", || Refused("`tlsDisableOCSPEndpointCheck`")),
    ("OCSP and revocation", "mongodb://example.com/?tlsDisableOCSPEndpointCheck=true&tlsDisableCertificateRevocationCheck=false", || Refused("`tlsDisableCertificateRevocationCheck`")),
    ("deprecated spelling in a conflict", "mongodb://example.com/?tlsInsecure=true&sslAllowInvalidCertificates=true", || Refused("`tlsAllowInvalidCertificates`")),
    ("directConnection with two hosts", "mongodb://example1.com,example2.com/?directConnection=true", || Refused("`directConnection=true` with 2 hosts")),
    ("directConnection with srv", "mongodb+srv://test3.test.build.10gen.cc/?directConnection=true", || Refused("mongodb+srv")),
    ("directConnection=false with srv", "mongodb+srv://test3.test.build.10gen.cc/?directConnection=false", || ok(&["directConnection=false"])),
    ("directConnection with one host", "mongodb://example.com/?directConnection=true", || ok(&["directConnection=true"])),
    // ---- load-balancers
    ("loadBalanced with two hosts", "mongodb://example1,example2/?loadBalanced=true", || Refused("`loadBalanced=true` with 2 hosts")),
    ("loadBalanced and directConnection", "mongodb://example.com/?loadBalanced=true&directConnection=true", || Refused("`directConnection=true`")),
    ("loadBalanced and replicaSet", "mongodb://example.com/?loadBalanced=true&replicaSet=replset", || Refused("`replicaSet`")),
    ("loadBalanced alone", "mongodb://example.com/?loadBalanced=true", || ok(&["loadBalanced=true"])),
    // ---- initial-dns-seedlist-discovery
    ("srvServiceName without srv", "mongodb://example.com/?srvServiceName=customname", || Refused("`srvServiceName` in a mongodb:// string")),
    ("srvMaxHosts without srv", "mongodb://example.com/?srvMaxHosts=2", || Refused("`srvMaxHosts` in a mongodb:// string")),
    ("srvMaxHosts and replicaSet", "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=2&replicaSet=foo", || Refused("`srvMaxHosts` with `replicaSet`")),
    ("srvMaxHosts and loadBalanced", "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=2&loadBalanced=true", || Refused("`srvMaxHosts` with `loadBalanced=true`")),
    ("srvMaxHosts zero and replicaSet", "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=0&replicaSet=foo", || ok(&["srvMaxHosts=0", "replicaSet=foo"])),
    ("srv options with srv", "mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname&srvMaxHosts=1", || ok(&["srvServiceName=customname", "srvMaxHosts=1"])),
    ("srv with few parts", "mongodb+srv://localhost", || ok(&[])),
    // ---- socks5-support
    ("proxyPort alone", "mongodb://localhost/?proxyPort=1080", || Refused("`proxyPort` without `proxyHost`")),
    ("proxyUsername alone", "mongodb://localhost/?proxyUsername=abc", || Refused("without `proxyHost`")),
    ("proxyPassword alone", "mongodb://localhost/?proxyPassword=def", || Refused("without `proxyHost`")),
    ("proxy user without password", "mongodb://localhost/?proxyHost=localhost&proxyUsername=abc", || Refused("must come together")),
    ("proxy password without user", "mongodb://localhost/?proxyHost=localhost&proxyPassword=def", || Refused("must come together")),
    ("proxyHost twice", "mongodb://localhost/?proxyHost=localhost&proxyHost=localhost2", || Refused("`proxyHost` is given more than once")),
    ("proxyPassword twice", "mongodb://localhost/?proxyHost=localhost&proxyUsername=abc&proxyPassword=123&proxyPassword=456", || Refused("`proxyPassword` is given more than once")),
];

#[test]
fn connection_strings_by_the_specifications() {
    let mut failures = Vec::new();
    for (what, uri, want) in ROWS {
        let got = ParsedUri::parse(uri).and_then(|p| verdict(&p).map(|o| (p, o)));
        let problem = match (want(), got) {
            (Refused(text), Err(d)) => (!d.cause.contains(text))
                .then(|| format!("refused, but the cause does not say `{text}`: {}", d.cause)),
            (Refused(_), Ok((_, o))) => Some(format!("accepted ({:?})", o.values)),
            (_, Err(d)) => Some(format!("refused: {}", d.cause)),
            (
                Valid {
                    hosts,
                    db,
                    options,
                    warnings,
                },
                Ok((p, o)),
            ) => {
                let got_hosts: Vec<String> = p.seeds.iter().map(Host::shown).collect();
                let got_db = p.db.as_deref().map(decode);
                compare(&o, options, warnings).or_else(|| {
                    (got_hosts != *hosts || got_db.as_deref() != db)
                        .then(|| format!("hosts {got_hosts:?}, database {got_db:?}"))
                })
            }
            (Options(options, warnings), Ok((_, o))) => compare(&o, options, warnings),
        };
        if let Some(p) = problem {
            failures.push(format!("{what} ({uri}): {p}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn compare(o: &super::Options, options: &[&str], warnings: &[&str]) -> Option<String> {
    let got: Vec<String> = o.values.iter().map(OptionValue::shown).collect();
    let codes: Vec<&str> = o.warnings.iter().map(|w| w.code.as_str()).collect();
    (got != options || codes != warnings).then(|| format!("options {got:?}, warnings {codes:?}"))
}

/// Decoded userinfo, as the connection-string tests give it.
#[test]
fn userinfo_is_split_at_the_last_at_and_decoded() {
    for (uri, user, password) in [
        ("mongodb://alice:foo@127.0.0.1", "alice", Some("foo")),
        ("mongodb://alice:@127.0.0.1", "alice", Some("")),
        ("mongodb://alice@127.0.0.1", "alice", None),
        (
            "mongodb://%40l%3Ace%2F%3D@example.com/my%3Ddb",
            "@l:ce/=",
            None,
        ),
        (
            "mongodb://!$&'()*+,;=:!$&'()*+,;=@127.0.0.1/admin",
            "!$&'()*+,;=",
            Some("!$&'()*+,;="),
        ),
        (
            "mongodb+srv://b*b%40f3tt%3D:%244to%40L8%3DMC@test3.test.build.10gen.cc/mydb%3F",
            "b*b@f3tt=",
            Some("$4to@L8=MC"),
        ),
    ] {
        let p = ParsedUri::parse(uri).expect(uri);
        assert_eq!(
            p.user.as_deref().map(decode).as_deref(),
            Some(user),
            "{uri}"
        );
        assert_eq!(
            p.password.as_deref().map(decode).as_deref(),
            password,
            "{uri}"
        );
    }
}

/// The MONGODB-AWS section of the auth specification, and the pitfalls atlas-iam flags on
/// purpose: each is a named finding, never a parse error.
#[test]
fn mongodb_aws_by_the_auth_specification() {
    let aws = "authMechanism=MONGODB-AWS";
    for (uri, errors, warnings) in [
        // $external is the default source: valid
        (format!("mongodb://localhost/?{aws}&tls=true"), vec![], vec!["auth_source_missing"]),
        (format!("mongodb://localhost/?{aws}&authSource=$external&tls=true"), vec![], vec![]),
        // a username without a password is invalid
        (
            format!("mongodb://user@localhost/?{aws}&authSource=%24external&tls=true"),
            vec!["username_without_password"],
            vec!["embedded_credentials"],
        ),
        // a session token without the key is invalid
        (
            format!("mongodb://localhost/?{aws}&authSource=%24external&tls=true&authMechanismProperties=AWS_SESSION_TOKEN:token"),
            vec!["session_token_without_key"],
            vec![],
        ),
        // credentials in the URI: the current specification says refuse; flagged on purpose
        (
            format!("mongodb://user:pass@localhost/?{aws}&authSource=%24external&tls=true"),
            vec![],
            vec!["embedded_credentials"],
        ),
        // the pitfalls: another source, another mechanism, TLS off for Atlas
        (
            format!("mongodb://localhost/?{aws}&authSource=admin&tls=true"),
            vec!["auth_source_wrong"],
            vec![],
        ),
        (
            "mongodb://localhost/?authMechanism=SCRAM-SHA-256&authSource=%24external&tls=true".to_string(),
            vec!["auth_mechanism_other"],
            vec![],
        ),
        (
            format!("mongodb+srv://c0.ab.mongodb.net/?{aws}&authSource=%24external&tls=false"),
            vec!["tls_disabled"],
            vec![],
        ),
    ] {
        let (_, found) = check(&uri).unwrap_or_else(|d| panic!("{uri}: {}", d.cause));
        let of = |s: Severity| -> Vec<&str> {
            found
                .iter()
                .filter(|f| f.severity == s)
                .map(|f| f.code.as_str())
                .collect()
        };
        assert_eq!(of(Severity::Error), errors, "{uri}");
        assert_eq!(of(Severity::Warning), warnings, "{uri}");
    }
}

/// Whatever the userinfo holds, neither the redacted string nor the report's hosts show it.
#[test]
fn userinfo_is_never_shown() {
    for pw in ["pa=ss", "!$&'()*+,;=", "a,b", "x;y=z", "a(b)c*", "se+cr=et"] {
        for host in ["db.example.com", "c0.ab12c.mongodb.net"] {
            for scheme in ["mongodb", "mongodb+srv"] {
                let uri = format!(
                    "{scheme}://AKIAIOSFODNN7EXAMPLE:{pw}@{host}/?authSource=%24external&authMechanism=MONGODB-AWS"
                );
                let p = ParsedUri::parse(&uri).expect(&uri);
                assert_eq!(p.hosts, [host], "{uri}");
                let shown = redact(&uri);
                assert!(!shown.contains(pw), "{uri} -> {shown}");
                let (_, found) = check(&uri).expect(&uri);
                assert!(
                    found.iter().all(|f| f.code != "srv_with_port"),
                    "{uri}: {found:?}"
                );
            }
        }
    }
    // userinfo that is no key id is hidden whole, not masked
    assert_eq!(
        redact("mongodb://CN%3Dme%2COU%3Dunit@h/?authMechanism=MONGODB-X509"),
        "mongodb://(redacted)@h/?authMechanism=MONGODB-X509"
    );
}

/// A host list has a bound: every host is checked at once.
#[test]
fn a_host_list_has_a_bound() {
    let hosts = |n: usize| {
        (0..n)
            .map(|i| format!("h{i}.example.net"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(ParsedUri::parse(&format!("mongodb://{}/", hosts(MAX_HOSTS))).is_ok());
    let d = ParsedUri::parse(&format!("mongodb://{}/", hosts(5000))).expect_err("5000 hosts");
    assert!(d.cause.contains("5000 hosts"), "{}", d.cause);
}
