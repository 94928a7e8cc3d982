//! The embedded-credentials URI read back by the `mongodb` crate's own parser gives exactly the
//! key id, secret and token that went in, over the whole base64 alphabet.

use mongodb::options::ConnectionString;
use proptest::prelude::*;

const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

fn b64(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(B64.chars().collect::<Vec<_>>()),
        min..=max,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn read_back(uri: &str) -> (String, String, String) {
    let cs = ConnectionString::parse(uri).unwrap_or_else(|e| panic!("driver refused {uri}: {e}"));
    let cred = cs.credential.expect("credential");
    let token = cred
        .mechanism_properties
        .as_ref()
        .and_then(|p| p.get_str("AWS_SESSION_TOKEN").ok())
        .expect("AWS_SESSION_TOKEN")
        .to_string();
    (
        cred.username.expect("username"),
        cred.password.expect("password"),
        token,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn library_embed_round_trips(key in b64(16, 128), secret in b64(1, 80), token in b64(1, 600)) {
        let cluster = atlas_iam::config::parse_cluster("cluster0.ab12c.mongodb.net").expect("cluster");
        let uri = atlas_iam::uri::build(&cluster, "test", Some(&atlas_iam::uri::Embedded {
            key_id: &key, secret: &secret, token: Some(&token),
        }));
        prop_assert_eq!(read_back(&uri), (key, secret, token));
    }
}

proptest! {
    // Each case runs the binary: fewer, still over the whole alphabet.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn binary_embed_round_trips(key in b64(16, 40), secret in b64(40, 40), token in b64(100, 400)) {
        let out = crate::common::atlas_iam()
            .env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_SESSION_TOKEN", &token)
            .args(["uri", "--cluster", "cluster0.ab12c.mongodb.net", "--embed-credentials", "--show-secrets"])
            .run();
        prop_assert_eq!(out.code, 0, "{}", out.all());
        prop_assert_eq!(read_back(out.stdout.trim()), (key, secret, token));
    }
}
