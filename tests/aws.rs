//! whoami and assume against moto: the credential sources and the AssumeRole refusals. The key
//! refusals (wrong secret, unknown key, missing token, no credentials, unknown profile, a silent
//! STS) are tested once, through the probe, in tests/probe.rs.

use crate::common::{atlas_iam, stage_of, Moto, Stage, Test, ACCOUNT};

#[test]
fn whoami_with_environment_keys_maps_the_iam_user() {
    let moto = Moto::shared();
    let out = atlas_iam()
        .envs(moto.env())
        .keys(&moto.alice)
        .args(["whoami", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let r = out.json();
    assert_eq!(r["ok"], true);
    assert_eq!(r["identity"]["arn"], moto.alice_arn);
    assert_eq!(r["identity"]["account"], ACCOUNT);
    assert_eq!(r["identity"]["atlas_user"]["arn"], moto.alice_arn);
    assert_eq!(r["identity"]["atlas_user"]["iam_type"], "USER");
    assert_eq!(r["credentials"]["source"], "environment");
    assert_eq!(r["credentials"]["temporary"], false);
    let masked = format!("{}…{}", &moto.alice.id[..4], &moto.alice.id[16..]);
    assert_eq!(r["credentials"]["access_key_id"], masked);
    let stages: Vec<&str> = r["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["stage"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(stages, ["config", "credentials", "identity"]);
    out.assert_absent(&[&moto.alice.secret, &moto.alice.id]);

    let human = atlas_iam()
        .envs(moto.env())
        .keys(&moto.alice)
        .args(["whoami"])
        .run();
    assert_eq!(human.code, 0, "{}", human.all());
    assert!(
        human.stdout.contains("--awsIAMType USER"),
        "{}",
        human.stdout
    );
    human.assert_absent(&[&moto.alice.secret, &moto.alice.id]);
}

#[test]
fn whoami_with_role_arn_maps_the_session_to_the_role() {
    let moto = Moto::shared();
    let out = atlas_iam()
        .envs(moto.env())
        .keys(&moto.alice)
        .args([
            "whoami",
            "--format",
            "json",
            "--role-arn",
            &moto.role_arn,
            "--role-session-name",
            "ci-smoke",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let r = out.json();
    assert_eq!(
        r["identity"]["arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/atlas-app/ci-smoke")
    );
    assert_eq!(r["identity"]["atlas_user"]["arn"], moto.role_arn);
    assert_eq!(r["identity"]["atlas_user"]["iam_type"], "ROLE");
    assert!(r["identity"]["atlas_user"]["create_command"]
        .as_str()
        .unwrap_or_default()
        .contains("--awsIAMType ROLE"));
    assert_eq!(r["credentials"]["temporary"], true);
    assert!(r["credentials"]["expiration"].is_string());
    let stages: Vec<&str> = r["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["stage"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(stages, ["config", "credentials", "assume", "identity"]);
    out.assert_absent(&[&moto.alice.secret, &moto.alice.id]);
}

#[test]
fn whoami_through_a_profile_with_role_arn_and_source_profile() {
    let moto = Moto::shared();
    let cli = atlas_iam();
    let config = cli.path("aws-config");
    let cli = cli.write(
        "aws-config",
        &format!(
        "[profile app]\nrole_arn = {}\nsource_profile = base\nrole_session_name = via-profile\n\n\
         [profile base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        moto.role_arn, moto.alice.id, moto.alice.secret),
    );
    let out = cli
        .envs(moto.env())
        .env("AWS_CONFIG_FILE", &config)
        .args(["whoami", "--profile", "app", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let r = out.json();
    assert_eq!(
        r["identity"]["arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/atlas-app/via-profile")
    );
    assert_eq!(r["identity"]["atlas_user"]["arn"], moto.role_arn);
    let source = r["credentials"]["source"].as_str().unwrap_or_default();
    assert!(
        source.contains("profile app") && source.contains("source_profile base"),
        "{source}"
    );
    out.assert_absent(&[&moto.alice.secret, &moto.alice.id]);
}

#[test]
fn assume_prints_working_credentials_in_each_shape() {
    let moto = Moto::shared();
    let json = atlas_iam()
        .envs(moto.env())
        .keys(&moto.alice)
        .args([
            "assume",
            "--role-arn",
            &moto.role_arn,
            "--output",
            "json",
            "--duration",
            "900",
        ])
        .run();
    assert_eq!(json.code, 0, "{}", json.all());
    let creds: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("credential_process JSON");
    assert_eq!(creds["Version"], 1);
    for field in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            creds[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {creds}"
        );
    }
    let key = creds["AccessKeyId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secret = creds["SecretAccessKey"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = creds["SessionToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The summary on stderr names the identity but none of the secrets.
    assert!(
        json.stderr.contains("assumed-role/atlas-app"),
        "{}",
        json.stderr
    );
    for s in [&secret, &token, &key] {
        assert!(
            !json.stderr.contains(s.as_str()),
            "secret in the summary: {}",
            json.stderr
        );
    }

    // The printed credentials work: whoami with them is the role's session.
    let who = atlas_iam()
        .envs(moto.env())
        .env("AWS_ACCESS_KEY_ID", &key)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .env("AWS_SESSION_TOKEN", &token)
        .args(["whoami", "--format", "json"])
        .run();
    assert_eq!(who.code, 0, "{}", who.all());
    assert_eq!(who.json()["identity"]["atlas_user"]["arn"], moto.role_arn);
    who.assert_absent(&[&secret, &token, &key]);

    let env = atlas_iam()
        .envs(moto.env())
        .keys(&moto.alice)
        .args(["assume", "--role-arn", &moto.role_arn])
        .run();
    assert_eq!(env.code, 0, "{}", env.all());
    let lines: Vec<&str> = env.stdout.lines().collect();
    assert!(
        lines[0].starts_with("export AWS_ACCESS_KEY_ID='ASIA"),
        "{}",
        env.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("export AWS_SESSION_TOKEN='")),
        "{}",
        env.stdout
    );

    let dotenv = atlas_iam()
        .envs(moto.env())
        .keys(&moto.alice)
        .args(["assume", "--role-arn", &moto.role_arn, "--output", "dotenv"])
        .run();
    assert_eq!(dotenv.code, 0, "{}", dotenv.all());
    assert!(
        dotenv
            .stdout
            .lines()
            .any(|l| l.starts_with("AWS_SECRET_ACCESS_KEY='")),
        "{}",
        dotenv.stdout
    );
    // Sourced by a shell, it gives the values as they are.
    let sourced = std::process::Command::new("sh")
        .args(["-c", ". /dev/stdin; printf %s \"$AWS_SESSION_TOKEN\""])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(dotenv.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .expect("sh");
    let token = dotenv
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("AWS_SESSION_TOKEN='"))
        .and_then(|t| t.strip_suffix('\''))
        .expect("a token line");
    assert_eq!(String::from_utf8_lossy(&sourced.stdout), token);
    // The dotenv output is a valid env file for atlas-iam itself.
    let again = atlas_iam()
        .envs(moto.env())
        .write(".env", &dotenv.stdout)
        .args(["whoami", "--format", "json"])
        .run();
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.json()["identity"]["atlas_user"]["arn"], moto.role_arn);
}

#[test]
fn assume_denied_by_the_trust_policy_names_caller_and_role() {
    let moto = Moto::shared();
    let out = Test::new(|| atlas_iam().envs(moto.env()).keys(&moto.mallory))
        .args(["assume", "--role-arn", &moto.role_arn])
        .fails_at(Stage::Assume, "assume_role_denied")
        .exit(4)
        .says("assume_role_denied")
        .says("trust policy")
        .hides(&[&moto.mallory.secret, &moto.mallory.id])
        .run();
    let assume = stage_of(&out.json_stderr(), Stage::Assume);
    let cause = assume["diagnosis"]["cause"].as_str().unwrap_or_default();
    assert!(cause.contains(&moto.mallory_arn), "{cause}");
    assert!(cause.contains("does not name"), "{cause}");
    assert!(
        cause.contains(&moto.alice_arn),
        "the trusted principal is listed: {cause}"
    );
}

#[test]
fn assume_of_a_role_that_does_not_exist() {
    let moto = Moto::shared();
    let missing = format!("arn:aws:iam::{ACCOUNT}:role/no-such-role");
    Test::new(|| atlas_iam().envs(moto.env()).keys(&moto.alice))
        .args(["assume", "--role-arn", &missing])
        .fails_at(Stage::Assume, "role_not_found")
        .exit(4)
        .says("does not exist")
        .run();
}

/// A role chain whose base is a credential_process: atlas-iam runs the process itself and assumes
/// the role on top, as the SDK's profile provider does (role_session_name kept).
#[test]
fn whoami_through_a_role_chain_on_a_credential_process() {
    let moto = Moto::shared();
    let cli = atlas_iam();
    let config = cli.path("aws-config");
    let creds = cli.path("creds.json");
    let json = format!(
        r#"{{"Version":1,"AccessKeyId":"{}","SecretAccessKey":"{}"}}"#,
        moto.alice.id, moto.alice.secret
    );
    let cli = cli.write("creds.json", &json).write(
        "aws-config",
        &format!(
            "[profile app]\nrole_arn = {}\nsource_profile = base\nrole_session_name = via-process\n\n\
             [profile base]\ncredential_process = cat {}\n",
            moto.role_arn,
            creds.display()
        ),
    );
    let out = cli
        .envs(moto.env())
        .env("AWS_CONFIG_FILE", &config)
        .args(["whoami", "--profile", "app", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let r = out.json();
    assert_eq!(
        r["identity"]["arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/atlas-app/via-process")
    );
    out.assert_absent(&[&moto.alice.secret, &moto.alice.id]);
}

/// A long-term key sent with a session token left over from an earlier session: STS refuses it
/// (InvalidClientTokenId), and the report names the stale token, not the key.
#[test]
fn a_long_term_key_with_a_leftover_session_token() {
    let moto = Moto::shared();
    Test::new(|| {
        atlas_iam().envs(moto.env()).keys(&moto.alice).env(
            "AWS_SESSION_TOKEN",
            "IQoJb3JpZ2luX2VjEOLDTOKENFROMANEARLIERSESSION",
        )
    })
    .args(["whoami"])
    .fails_at(Stage::Identity, "invalid_key")
    .exit(4)
    .says("unset AWS_SESSION_TOKEN")
    .hides(&[
        &moto.alice.secret,
        "IQoJb3JpZ2luX2VjEOLDTOKENFROMANEARLIERSESSION",
    ])
    .run();
}

/// A role profile with `mfa_serial`: the SDKs and drivers cannot ask for the code, so they assume
/// the role without it. A warning says so when the role is assumed anyway; a refusal names the
/// missing code as the likely cause, with the ways to give it.
#[test]
fn an_mfa_profile_is_named() {
    let moto = Moto::shared();
    for (who, keys, code) in [("alice", &moto.alice, 0), ("mallory", &moto.mallory, 3)] {
        let cli = atlas_iam();
        let config = cli.path("aws-config");
        let cli = cli.write(
            "aws-config",
            &format!(
                "[profile app]\nrole_arn = {}\nsource_profile = base\n\
                 mfa_serial = arn:aws:iam::{ACCOUNT}:mfa/{who}\n\n\
                 [profile base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                moto.role_arn, keys.id, keys.secret
            ),
        );
        let out = cli
            .envs(moto.env())
            .env("AWS_CONFIG_FILE", &config)
            .args(["whoami", "--profile", "app", "--format", "json"])
            .run();
        assert_eq!(out.code, code, "{who}: {}", out.all());
        let text = out.stdout.clone();
        assert!(text.contains("mfa_serial"), "{who}: {text}");
        assert!(text.contains("--mfa-token"), "{who}: {text}");
        out.assert_absent(&[&keys.secret, &keys.id]);
    }
}
