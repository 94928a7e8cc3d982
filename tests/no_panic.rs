//! Bad input of any kind is an error, never a panic: every parser atlas-iam applies to user
//! input or to a server's reply, fed arbitrary text and bytes.

use atlas_iam::config::parse_cluster;
use atlas_iam::identity::{caller_kind, RoleArn};
use atlas_iam::probe::HostPort;
use atlas_iam::uri::{self, ParsedUri};
use proptest::prelude::*;

/// Text biased toward what connection strings and ARNs are made of.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        "(mongodb(\\+srv)?://)?[a-zA-Z0-9:@/?&=%+,.\\[\\]$_-]{0,120}",
        "arn:[a-z-]{0,10}:[a-z]{0,4}:[a-z0-9-]{0,10}:[0-9]{0,13}:[a-z/_.-]{0,40}",
    ]
}

/// Env-file bytes biased toward what breaks the process environment: NUL bytes and line ends.
fn env_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(0u8),
            Just(b'\r'),
            Just(b'\n'),
            Just(b'='),
            Just(b'"'),
            b'A'..=b'Z',
            any::<u8>()
        ],
        0..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn uri_parsers_never_panic(s in texty()) {
        let redacted = uri::redact(&s);
        if let Ok(p) = ParsedUri::parse(&s) {
            // a password never survives redaction in the userinfo
            if let (Some(user), Some(pw)) = (&p.user, &p.password) {
                if !pw.is_empty() && pw != "(redacted)" && !user.contains(pw.as_str()) {
                    let before_query = |u: &str| u.split('?').next().unwrap_or_default().to_string();
                    let needle = format!(":{pw}@");
                    prop_assert!(!before_query(&p.redacted()).contains(&needle), "{} kept {pw}", p.redacted());
                    prop_assert!(!before_query(&redacted).contains(&needle), "{redacted} kept {pw}");
                }
            }
            prop_assert!(!p.hosts.is_empty());
            let _ = uri::findings(&p);
        }
        if let Err(d) = uri::check(&s) {
            prop_assert!(!d.cause.is_empty() && !d.hint.is_empty());
        }
    }

    #[test]
    fn arn_and_host_parsers_never_panic(s in texty()) {
        match RoleArn::parse(&s) {
            Ok(r) => prop_assert!(r.account.len() == 12 && !r.name.is_empty(), "{r:?}"),
            Err(d) => prop_assert!(!d.cause.is_empty()),
        }
        if let atlas_iam::identity::CallerKind::AssumedRole { role_arn, .. } = caller_kind(&s) {
            prop_assert!(role_arn.starts_with("arn:") && role_arn.contains(":role/"), "{role_arn}");
        }
        if let Ok(c) = parse_cluster(&s) {
            prop_assert!(!c.host.is_empty() && !c.host.contains(['/', '@', '?', ',']), "{c:?}");
        }
        if let Ok(h) = HostPort::parse(&s) {
            prop_assert!(h.port > 0 && !h.host.is_empty(), "{h:?}");
        }
        if let Ok(opts) = atlas_iam::probe::dns::parse_txt(&s) {
            prop_assert!(opts.iter().all(|(k, _)| ["authsource", "replicaset", "loadbalanced"]
                .contains(&k.to_ascii_lowercase().as_str())), "{opts:?}");
        }
    }

    #[test]
    fn trust_policies_never_panic(s in ".{0,300}", caller in texty()) {
        let v = atlas_iam::credentials::trust_verdict(&s, &caller);
        if serde_json::from_str::<serde_json::Value>(&s).is_err() {
            prop_assert_eq!(v.decision, atlas_iam::credentials::TrustDecision::Unreadable);
        }
    }

    #[test]
    fn env_files_never_panic(bytes in env_bytes()) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(".env");
        std::fs::write(&path, &bytes).expect("write");
        match atlas_iam::envfile::parse(&path) {
            // whatever it returns can be set in the process environment
            Ok(vars) => prop_assert!(vars.iter().all(|(k, v)| !k.is_empty()
                && !k.contains(['=', '\0']) && !v.contains('\0'))),
            Err(d) => prop_assert_eq!(d.kind, atlas_iam::diagnosis::Kind::EnvFile),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The BSON walk that guards the parser: any bytes give a verdict, never a panic.
    #[test]
    fn the_bson_walk_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = atlas_iam::probe::wire::check_bson(&bytes, atlas_iam::probe::wire::MAX_DEPTH);
    }

    /// Whatever a server answers to the hello of the tls stage, it is an error or a document.
    #[test]
    fn server_replies_never_panic(reply in proptest::collection::vec(any::<u8>(), 0..300), lie in any::<bool>()) {
        let mut reply = reply;
        if lie && reply.len() >= 16 {
            // a plausible header: the length of what follows, the OP_MSG opcode
            let len = reply.len() as i32;
            reply[..4].copy_from_slice(&len.to_le_bytes());
            reply[12..16].copy_from_slice(&2013i32.to_le_bytes());
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let (mut client, mut server) = tokio::io::duplex(8192);
            let answer = reply.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let _ = server.read(&mut buf).await;
                let _ = server.write_all(&answer).await;
            });
            let r = atlas_iam::probe::wire::hello(&mut client, std::time::Duration::from_millis(200)).await;
            // a document comes only from a reply long enough to hold a header and a body
            if r.is_ok() {
                assert!(reply.len() >= 21, "{reply:?}");
            }
        });
    }
}
