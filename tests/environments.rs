//! Where applications run: credentials from instance metadata (IMDSv2), the container endpoint
//! and web identity, against stand-ins on 127.0.0.1; the failures each has in the field (the
//! IMDSv2 hop limit, no role attached, a refusing endpoint, an expired token) and the successes
//! (a probe that authenticates with those credentials at the local Atlas).

use crate::common::{atlas_iam, Cli, Stage, Test};
use atlas_iam_testkit::metadata::{MetadataFault, MetadataServer};
use atlas_iam_testkit::moto::Keys;
use atlas_iam_testkit::stack::SessionKeys;
use atlas_iam_testkit::{Stack, StackOptions};
use base64::Engine;

fn stack() -> Stack {
    Stack::start(StackOptions::default()).expect("local Atlas stack (moto from `bash .ci/setup`)")
}

/// The binary pointed at the stack's STS, with no keys of its own.
fn cli(s: &Stack) -> Cli {
    let mut c = atlas_iam();
    for (k, v) in s.env() {
        if !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET") {
            c = c.env(&k, v);
        }
    }
    c
}

fn session(s: &Stack) -> SessionKeys {
    let account = s.account.clone().expect("account");
    s.assume(&account.client, &account.role_arn, "where-it-runs")
        .expect("assume")
}

fn metadata(s: &Stack, fault: Option<MetadataFault>, auth: Option<&str>) -> MetadataServer {
    s.block_on(MetadataServer::start(
        session(s),
        fault,
        auth.map(str::to_string),
    ))
    .expect("metadata server")
}

fn jwt(exp: i64) -> String {
    let e = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.c2ln",
        e(r#"{"alg":"RS256","typ":"JWT"}"#),
        e(&format!(
            r#"{{"iss":"https://oidc.eks.local","sub":"system:serviceaccount:app:api","aud":"sts.amazonaws.com","exp":{exp}}}"#
        ))
    )
}

#[test]
fn a_probe_authenticates_with_instance_metadata_credentials() {
    let s = stack();
    let imds = metadata(&s, None, None);
    let k = session(&s);
    let out = Test::new(|| {
        cli(&s)
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
    })
    .args(["ping", "--uri", &s.uri()])
    .passes()
    .says("instance metadata (IMDS)")
    .hides(&[&k.secret, &k.token])
    .run();
    assert_eq!(
        out.json()["credentials"]["source"],
        "instance metadata (IMDS)"
    );
}

#[test]
fn the_imdsv2_hop_limit_is_named_with_its_fix() {
    let s = stack();
    let imds = metadata(&s, Some(MetadataFault::HoldToken), None);
    Test::new(|| {
        cli(&s)
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
    })
    .args(["whoami", "--timeout", "25"])
    .fails_at(Stage::Credentials, "imds_hop_limit")
    .exit(3)
    .says("http-put-response-hop-limit 2")
    .run();
}

#[test]
fn an_instance_without_a_role_is_named() {
    let s = stack();
    let imds = metadata(&s, Some(MetadataFault::NoRole), None);
    Test::new(|| {
        cli(&s)
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
    })
    .args(["whoami", "--timeout", "25"])
    .fails_at(Stage::Credentials, "imds_no_role")
    .exit(3)
    .says("no IAM role")
    .run();
}

#[test]
fn a_probe_authenticates_with_container_credentials_and_a_refusal_is_named() {
    let s = stack();
    let server = metadata(&s, None, Some("pod-identity-token"));
    let k = session(&s);
    let full_uri = format!("{}/creds", server.url());
    Test::new(|| {
        cli(&s)
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-identity-token")
    })
    .args(["ping", "--uri", &s.uri()])
    .passes()
    .says("container (ECS)")
    .hides(&[&k.secret, &k.token, "pod-identity-token"])
    .run();

    // a wrong token: the endpoint refuses, and the diagnosis says where to look
    Test::new(|| {
        cli(&s)
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale-token")
    })
    .args(["whoami"])
    .fails_at(Stage::Credentials, "container_credentials_error")
    .exit(3)
    .says("refused")
    .hides(&["stale-token"])
    .run();

    // a token file that is not there
    Test::new(|| {
        cli(&s)
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri)
            .env(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                "/nonexistent/eks-pod-identity-token",
            )
    })
    .args(["whoami"])
    .fails_at(Stage::Credentials, "container_credentials_error")
    .exit(3)
    .says("cannot be read")
    .run();
}

#[test]
fn web_identity_authenticates_and_an_expired_token_is_named() {
    let s = stack();
    let role = s.account.clone().expect("account").role_arn;
    let dir = tempfile::tempdir().expect("dir");
    let fresh = dir.path().join("fresh-token");
    std::fs::write(&fresh, jwt(4_000_000_000)).expect("write");
    let stale = dir.path().join("stale-token");
    std::fs::write(&stale, jwt(1_700_000_000)).expect("write");
    let with_token = |file: &std::path::Path| {
        cli(&s)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", file)
            .env("AWS_ROLE_ARN", &role)
            .env("AWS_ROLE_SESSION_NAME", "pod")
    };
    let out = Test::new(|| with_token(&fresh))
        .args(["ping", "--uri", &s.uri()])
        .passes()
        .says("web identity")
        .run();
    assert_eq!(out.json()["credentials"]["source"], "web identity");
    // GovCloud has no global STS endpoint: the drivers that call it themselves are named (the
    // credentials stage only: moto keeps GovCloud's sessions apart from its identity calls)
    let out = with_token(&fresh)
        .env("AWS_REGION", "us-gov-west-1")
        .args(["whoami", "--format", "json"])
        .run();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json report");
    let creds = &report["stages"][1];
    assert_eq!(creds["stage"], "credentials", "{creds}");
    assert_eq!(creds["status"], "warning", "{creds}");
    let warned = creds["warnings"].as_array().is_some_and(|w| {
        w.iter().filter_map(|w| w.as_str()).any(|w| {
            w.contains("the Go driver and libmongoc")
                && w.contains("https://sts.us-gov-west-1.amazonaws.com")
        })
    });
    assert!(warned, "{creds}");
    Test::new(|| with_token(&stale))
        .args(["whoami"])
        .fails_at(Stage::Credentials, "web_identity_error")
        .exit(3)
        .says("expired")
        .run();
    // a role whose trust policy does not let this identity in
    let untrusting = s.create_role("not-for-pods", &[]).expect("role");
    Test::new(|| {
        cli(&s)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &fresh)
            .env("AWS_ROLE_ARN", &untrusting)
    })
    .args(["whoami"])
    .fails_at(Stage::Credentials, "web_identity_error")
    .exit(3)
    .says("STS refused AssumeRoleWithWebIdentity")
    .run();
}

#[test]
fn leftover_keys_shadowing_the_pod_role_are_named_and_expiry_is_read() {
    let s = stack();
    let k = session(&s);
    let with_keys = || {
        cli(&s)
            .env("AWS_ACCESS_KEY_ID", &k.id)
            .env("AWS_SECRET_ACCESS_KEY", &k.secret)
            .env("AWS_SESSION_TOKEN", &k.token)
    };
    let out = Test::new(|| {
        with_keys()
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks/token")
            .env("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z")
    })
    .args(["whoami"])
    .passes()
    .says("shadowed web identity")
    .hides(&[&k.secret, &k.token])
    .run();
    assert_eq!(
        out.json()["credentials"]["expiration"],
        "2099-01-01T00:00:00Z"
    );
    Test::new(|| with_keys().env("AWS_CREDENTIAL_EXPIRATION", "2020-01-01T00:00:00Z"))
        .args(["whoami"])
        .fails_at(Stage::Credentials, "credentials_expired")
        .exit(3)
        .says("expired at 2020-01-01T00:00:00Z")
        .run();
}

#[test]
fn an_sso_profile_without_a_valid_login_says_aws_sso_login() {
    const CONFIG: &str = "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
        sso_role_name = Dev\nregion = us-east-1\n\n[sso-session corp]\n\
        sso_start_url = https://corp.awsapps.example/start\nsso_region = us-east-1\n\n\
        [profile legacy]\nsso_start_url = https://corp.awsapps.example/start\n\
        sso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = Dev\n";
    for (profile, expired) in [("dev", false), ("legacy", false), ("dev", true)] {
        let c = atlas_iam();
        let config = c.path("config");
        let c = c.write("config", CONFIG).env("AWS_CONFIG_FILE", &config);
        if expired {
            // the SDK's cache file for the session `corp`: sha1("corp")
            let cache = c.path(".aws/sso/cache");
            std::fs::create_dir_all(&cache).expect("cache dir");
            std::fs::write(
                cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
                r#"{"accessToken":"expired-sso-token","expiresAt":"2020-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://corp.awsapps.example/start"}"#,
            )
            .expect("cache file");
        }
        let out = c
            .args(["whoami", "--profile", profile, "--format", "json"])
            .run();
        assert_eq!(out.code, 3, "{profile}: {}", out.all());
        assert_eq!(
            crate::common::failure(&out.json()),
            ("credentials".into(), "sso_login_needed".into()),
            "{profile}"
        );
        assert!(
            out.stdout
                .contains(&format!("aws sso login --profile {profile}")),
            "{}",
            out.stdout
        );
        if expired {
            assert!(out.stdout.contains("has expired"), "{}", out.stdout);
        }
        out.assert_absent(&["expired-sso-token"]);
    }
}

/// `role_arn` with `credential_source`: the role is assumed from the named source, and a source
/// that gives nothing, a misspelt source, or one beside `source_profile` is named as such.
#[test]
fn credential_source_profiles_assume_their_role_and_name_their_source() {
    let s = stack();
    let account = s.account.clone().expect("account");
    let imds = metadata(&s, Some(MetadataFault::HoldToken), None);
    let config = format!(
        "[profile app]\nrole_arn = {role}\ncredential_source = Environment\nregion = us-east-1\n\n\
         [profile typo]\nrole_arn = {role}\ncredential_source = Ec2Instance\n\n\
         [profile both]\nrole_arn = {role}\ncredential_source = Environment\nsource_profile = app\n\n\
         [profile instance]\nrole_arn = {role}\ncredential_source = Ec2InstanceMetadata\n\n\
         [profile task]\nrole_arn = {role}\ncredential_source = EcsContainer\n",
        role = account.role_arn
    );
    let with_config = || {
        let c = cli(&s);
        let path = c.path("config");
        c.write("config", &config).env("AWS_CONFIG_FILE", &path)
    };
    let out = Test::new(|| {
        with_config()
            .env("AWS_ACCESS_KEY_ID", &account.client.id)
            .env("AWS_SECRET_ACCESS_KEY", &account.client.secret)
    })
    .args(["ping", "--profile", "app", "--uri", &s.uri()])
    .passes()
    .says("credential_source Environment")
    .hides(&[&account.client.secret])
    .run();
    let json = out.json();
    assert!(
        json["identity"]["arn"]
            .as_str()
            .is_some_and(|a| a.contains(":assumed-role/")),
        "{json}"
    );
    assert!(
        !out.all().contains("AWS_ACCESS_KEY_ID is set too"),
        "the profile draws on those keys: no shadowing warning\n{}",
        out.all()
    );

    // keys in the environment win over AWS_PROFILE in the default chain: a broken profile that
    // the application would never ask is no failure
    Test::new(|| {
        with_config()
            .env("AWS_PROFILE", "typo")
            .env("AWS_ACCESS_KEY_ID", &account.client.id)
            .env("AWS_SECRET_ACCESS_KEY", &account.client.secret)
    })
    .args(["whoami"])
    .passes()
    .says("shadowed the profile named by AWS_PROFILE")
    .run();

    Test::new(with_config)
        .args(["whoami", "--profile", "app"])
        .fails_at(Stage::Credentials, "credential_source_error")
        .exit(3)
        .says("AWS_ACCESS_KEY_ID")
        .run();
    Test::new(with_config)
        .args(["whoami", "--profile", "typo"])
        .fails_at(Stage::Credentials, "credential_source_error")
        .exit(3)
        .says("Ec2InstanceMetadata")
        .run();
    Test::new(with_config)
        .args(["whoami", "--profile", "both"])
        .fails_at(Stage::Credentials, "credential_source_error")
        .exit(3)
        .says("source_profile")
        .run();
    Test::new(|| {
        with_config()
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
    })
    .args(["whoami", "--profile", "instance", "--timeout", "25"])
    .fails_at(Stage::Credentials, "imds_hop_limit")
    .exit(3)
    .says("http-put-response-hop-limit 2")
    .run();
    Test::new(with_config)
        .args(["whoami", "--profile", "task"])
        .fails_at(Stage::Credentials, "credential_source_error")
        .exit(3)
        .says("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .run();
}

/// A shared credentials file whose `default` profile holds `keys`.
fn default_profile(keys: &Keys) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            keys.id, keys.secret
        ),
    )
    .expect("credentials file");
    (dir, file)
}

/// Credentials in a profile only: the SDK-based drivers read them, Go, libmongoc, Java's
/// built-in supplier and Node 6 without its add-on do not. Without --driver the sources present
/// are listed and the families that would miss them named; with --driver the check reads as that
/// driver does.
#[test]
fn each_driver_reads_its_own_credential_sources() {
    let s = stack();
    let account = s.account.clone().expect("account");
    let (_dir, file) = default_profile(&account.client);
    let with_profile = || cli(&s).env("AWS_SHARED_CREDENTIALS_FILE", &file);
    let out = Test::new(with_profile)
        .args(["whoami"])
        .passes()
        .says("Go would find none")
        .says("Node 6 without @aws-sdk/credential-providers would find none")
        .hides(std::slice::from_ref(&account.client.secret))
        .run();
    let creds = out.stage(Stage::Credentials);
    assert_eq!(creds["status"], "warning", "{creds}");
    assert_eq!(
        out.json()["credentials"]["present"],
        serde_json::json!(["a profile of the shared files"]),
        "{}",
        out.json()
    );
    // the Go driver reads no profiles: no credentials for it, and the fix named
    let out = Test::new(with_profile)
        .args(["whoami", "--driver", "go"])
        .fails_at(Stage::Credentials, "no_credentials")
        .exit(3)
        .says("the Go driver would find no AWS credentials here")
        .says("profile default")
        .says("custom AWS credential provider")
        .hides(std::slice::from_ref(&account.client.secret))
        .run();
    assert_eq!(out.json()["driver"], "go", "{}", out.json());
    // Node 6 without the add-on: the same, with the add-on's install command
    Test::new(|| with_profile().env("ATLAS_IAM_DRIVER", "node@6.9"))
        .args(["whoami"])
        .fails_at(Stage::Credentials, "no_credentials")
        .exit(3)
        .says("npm install @aws-sdk/credential-providers")
        .run();
    // pymongo reads the SDK's chain: it passes, and the report names the driver emulated
    let out = Test::new(with_profile)
        .args(["whoami", "--driver", "python"])
        .passes()
        .run();
    assert_eq!(
        out.json()["credentials"]["driver"],
        "pymongo",
        "{}",
        out.json()
    );
    // keys in the environment beside the profile: Go reads those, and says what it skipped
    let k = &account.client;
    let out = Test::new(|| with_profile().keys(k))
        .args(["whoami", "--driver", "go"])
        .passes()
        .run();
    assert_eq!(out.json()["credentials"]["source"], "environment");
    // an unknown driver is a usage error that lists the names
    let out = Test::new(with_profile)
        .args(["whoami", "--driver", "ruby"])
        .fails_at(Stage::Config, "usage_error")
        .exit(2)
        .run();
    let cause = &out.stage(Stage::Config)["diagnosis"]["cause"];
    assert!(
        cause
            .as_str()
            .is_some_and(|c| c.contains("node, python, java, go, csharp, rust, c, php, mongosh")),
        "{cause}"
    );
}

/// The URI rules follow the driver: Node 7 refuses credentials in the string, Node 6 reads them.
#[test]
fn the_uri_rules_follow_the_driver() {
    let uri = "mongodb+srv://AKIAIOSFODNN7EXAMPLE:secret@cluster0.ab12c.mongodb.net/?authSource=%24external&authMechanism=MONGODB-AWS";
    Test::new(atlas_iam)
        .args(["uri", "--uri", uri, "--driver", "node@7.1"])
        .fails_at(Stage::Config, "uri_pitfall")
        .exit(3)
        .says("username and password cannot be provided when using MONGODB-AWS")
        .run();
    let out = atlas_iam()
        .args([
            "uri", "--uri", uri, "--driver", "node@6.9", "--format", "json",
        ])
        .run();
    assert_ne!(out.code, 3, "{}", out.all());
    // no authSource in an srv string: Node ignores the TXT record's admin, the others refuse it
    let bare = "mongodb+srv://cluster0.ab12c.mongodb.net/?authMechanism=MONGODB-AWS";
    let node = atlas_iam()
        .args(["uri", "--uri", bare, "--driver", "node", "--format", "json"])
        .run();
    assert_eq!(node.code, 0, "{}", node.all());
    assert!(
        node.stderr.contains("ignores the TXT record's authSource")
            || node.stdout.contains("ignores the TXT record's authSource"),
        "{}",
        node.all()
    );
    Test::new(atlas_iam)
        .args(["uri", "--uri", bare, "--driver", "python"])
        .fails_at(Stage::Config, "uri_pitfall")
        .exit(3)
        .says("authentication source must be $external or None for MONGODB-AWS")
        .run();
}

/// `--app DIR`: the application's manifest decides the driver, and a missing MONGODB-AWS add-on
/// is named with its install command before anything else runs.
#[test]
fn the_applications_manifest_decides_the_driver() {
    let s = stack();
    let account = s.account.clone().expect("account");
    let (_dir, file) = default_profile(&account.client);
    let app = |files: &[(&str, &str)]| {
        let d = tempfile::tempdir().expect("app dir");
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).expect("manifest");
        }
        d
    };
    let with_profile = || cli(&s).env("AWS_SHARED_CREDENTIALS_FILE", &file);
    // a Node 7 application without @aws-sdk/credential-providers fails before any network
    let node = app(&[("package.json", r#"{"dependencies":{"mongodb":"^7.1.0"}}"#)]);
    let out = Test::new(|| with_profile().env("ATLAS_IAM_APP", node.path()))
        .args(["whoami"])
        .fails_at(Stage::Config, "driver_addon_missing")
        .exit(3)
        .says("npm install @aws-sdk/credential-providers")
        .says("dependency pruners")
        .run();
    // nothing ran after the config stage: no credentials were read, no STS call made
    assert_eq!(out.json()["stages"].as_array().map(Vec::len), Some(1));
    // a Go application: the driver reads no profiles
    let go = app(&[(
        "go.mod",
        "module example.com/api\n\nrequire go.mongodb.org/mongo-driver v1.17.1\n",
    )]);
    Test::new(with_profile)
        .args(["whoami", "--app", &go.path().display().to_string()])
        .fails_at(Stage::Credentials, "no_credentials")
        .exit(3)
        .says("the Go driver 1.17 would find no AWS credentials here")
        .run();
    // pymongo with its aws extra reads the profile, as the SDK does
    let py = app(&[("requirements.txt", "pymongo[aws]==4.10.1\n")]);
    let out = Test::new(with_profile)
        .args(["whoami", "--app", &py.path().display().to_string()])
        .passes()
        .says("driver python@4.10 from requirements.txt")
        .run();
    assert_eq!(out.json()["credentials"]["driver"], "pymongo 4.10");
    // and without the extra, pymongo's own words and the fix
    let bare = app(&[("requirements.txt", "pymongo==4.10.1\n")]);
    Test::new(with_profile)
        .args(["whoami", "--app", &bare.path().display().to_string()])
        .fails_at(Stage::Config, "driver_addon_missing")
        .exit(3)
        .says("python -m pip install 'pymongo[aws]'")
        .run();
}
