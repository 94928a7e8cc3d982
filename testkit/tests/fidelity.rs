//! Proof of fidelity: real drivers (pymongo, the Node driver, the Rust driver) authenticate
//! against the local Atlas with moto-issued credentials from the environment, and are refused
//! with Atlas's texts where Atlas refuses them.

use crate::common::{assert_refused, node, pymongo, rust, Client, Creds};
use atlas_iam_testkit::moto::{user_arn, Keys};
use atlas_iam_testkit::{Mode, Role, Stack, StackOptions};
use serde_json::Value;

const CLIENTS: [(&str, Client); 3] = [("pymongo", pymongo), ("node", node), ("rust", rust)];

fn assert_full(who: &str, r: &Value) {
    assert_eq!(r["ok"], true, "{who}: {r}");
    assert_eq!(r["steps"]["found"], true, "{who}: {r}");
    assert_eq!(r["steps"]["deleted"], 1, "{who}: {r}");
    assert!(
        r["steps"]["collections"]
            .as_array()
            .is_some_and(|c| c.contains(&"fidelity".into())),
        "{who}: {r}"
    );
}

#[test]
fn every_driver_authenticates_with_user_keys_and_with_an_assumed_role() {
    let stack = Stack::start(StackOptions {
        tls: true,
        ..Default::default()
    })
    .expect("stack");
    let account = stack.account.clone().expect("account");
    // the IAM user is a database user too, so its long-term keys work
    stack.set_db_user(&account.client_arn, vec![Role::ReadWrite("test".into())]);
    let session = stack
        .assume(&account.client, &account.role_arn, "fidelity")
        .expect("assume");
    for (who, client) in CLIENTS {
        assert_full(
            &format!("{who} with user keys"),
            &client(&stack, &Creds::from(&account.client), "full"),
        );
        assert_full(
            &format!("{who} with a role session"),
            &client(&stack, &Creds::from(&session), "full"),
        );
    }
}

#[test]
fn dedicated_refusals_match_atlas() {
    let stack = Stack::start(StackOptions::default()).expect("stack");
    let account = stack.account.clone().expect("account");
    let session = stack
        .assume(&account.client, &account.role_arn, "fidelity")
        .expect("assume");
    let mut wrong = Creds::from(&session);
    wrong.secret = atlas_iam_testkit::moto::mangle(&wrong.secret);
    // an IAM user whose ARN is no database user
    let stranger = stack.create_iam_user("stranger", "*").expect("user");
    // a read-only database user
    let reader = stack.create_iam_user("reader", "*").expect("user");
    stack.set_db_user(&user_arn("reader"), vec![Role::Read("test".into())]);
    for (who, client) in CLIENTS {
        assert_refused(
            who,
            &client(&stack, &wrong, "ping"),
            18,
            "Authentication failed.",
        );
        assert_refused(
            who,
            &client(&stack, &Creds::from(&stranger), "ping"),
            18,
            "Authentication failed.",
        );
        assert_refused(
            who,
            &client(&stack, &Creds::from(&reader), "insert"),
            13,
            "not authorized on test to execute command",
        );
    }
}

#[test]
fn proxy_refusals_match_the_shared_tier() {
    let stack = Stack::start(StackOptions {
        mode: Mode::Proxy,
        ..Default::default()
    })
    .expect("stack");
    let account = stack.account.clone().expect("account");
    let mut wrong = Creds::from(&account.client);
    wrong.secret = atlas_iam_testkit::moto::mangle(&wrong.secret);
    let reader = stack.create_iam_user("reader", "*").expect("user");
    stack.set_db_user(&user_arn("reader"), vec![Role::Read("test".into())]);
    for (who, client) in CLIENTS {
        assert_refused(
            who,
            &client(&stack, &wrong, "ping"),
            8000,
            "bad auth : aws sts call has response 403",
        );
        assert_refused(
            who,
            &client(&stack, &Creds::from(&account.client), "ping"),
            8000,
            &format!("bad auth : user {} is not found", account.client_arn),
        );
        assert_refused(
            who,
            &client(&stack, &Creds::from(&reader), "insert"),
            8000,
            "user is not allowed to do action [insert] on [test.fidelity]",
        );
    }
}

#[test]
fn the_gate_expires_tokens_and_deactivates_keys_for_both_sides() {
    let stack = Stack::start(StackOptions::default()).expect("stack");
    let account = stack.account.clone().expect("account");
    let session = stack
        .assume(&account.client, &account.role_arn, "expiring")
        .expect("assume");
    assert_eq!(rust(&stack, &Creds::from(&session), "ping")["ok"], true);
    stack
        .gate
        .as_ref()
        .expect("gate")
        .expire_token(&session.token);
    assert_refused(
        "rust",
        &rust(&stack, &Creds::from(&session), "ping"),
        18,
        "Authentication failed.",
    );

    stack.set_db_user(&account.client_arn, vec![Role::ReadWrite("test".into())]);
    assert_eq!(
        rust(&stack, &Creds::from(&account.client), "ping")["ok"],
        true
    );
    stack
        .gate
        .as_ref()
        .expect("gate")
        .deactivate_key(&account.client.id);
    assert_refused(
        "rust",
        &rust(&stack, &Creds::from(&account.client), "ping"),
        18,
        "Authentication failed.",
    );
    let err = stack
        .assume(
            &Keys {
                id: account.client.id.clone(),
                secret: account.client.secret.clone(),
            },
            &account.role_arn,
            "x",
        )
        .expect_err("an inactive key cannot assume");
    assert!(
        format!("{err:?}").contains("InvalidClientTokenId"),
        "the SDK parsed the gate's error: {err:?}"
    );
}

#[test]
fn the_gate_turns_moto_auth_errors_into_parseable_sts_errors() {
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let stack = Stack::start(StackOptions::default()).expect("stack");
    let account = stack.account.clone().expect("account");
    let call = |endpoint: String| {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                &account.client.id,
                "x".repeat(40),
                None,
                None,
                "test",
            ))
            .build();
        stack
            .block_on(
                aws_sdk_sts::Client::from_conf(conf)
                    .get_caller_identity()
                    .send(),
            )
            .expect_err("a wrong secret is refused")
    };
    // moto's own answer cannot be parsed by the SDK: no code
    let direct = call(stack.moto.as_ref().expect("moto").endpoint.clone());
    assert_eq!(
        direct.code(),
        None,
        "moto answered with a parseable error now: {direct:?}"
    );
    // through the gate it is the STS error document
    let gated = call(stack.sts_endpoint.clone());
    assert_eq!(gated.code(), Some("SignatureDoesNotMatch"), "{gated:?}");
}
