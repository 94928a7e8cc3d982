//! Bad input of every kind gets a clear error and its documented exit code, never a panic;
//! the env file and flag precedence; uri building and checking through the binary.

use crate::common::{atlas_iam, failure, Stage, Test};

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[test]
fn unknown_flag_values_are_usage_errors() {
    for args in [
        vec!["whoami", "--format", "xml"],
        vec!["whoami", "--color", "sometimes"],
        vec!["assume", "--output", "yaml"],
        vec!["assume", "--duration", "60"],
        vec!["assume", "--duration", "50000"],
        vec!["whoami", "--timeout", "0"],
        vec!["whoami", "--dns-server", "not-an-ip"],
        vec!["whoami", "--no-such-flag"],
        vec!["frobnicate"],
    ] {
        let out = atlas_iam().args(&args).run();
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        assert!(out.stderr.starts_with("error:"), "{args:?}: {}", out.stderr);
        out.assert_absent(&[]);
    }
}

#[test]
fn format_from_the_environment_is_validated_too() {
    let out = atlas_iam()
        .env("ATLAS_IAM_FORMAT", "xml")
        .args(["whoami"])
        .run();
    assert_eq!(out.code, 2, "{}", out.all());
    let ok = atlas_iam()
        .env("ATLAS_IAM_FORMAT", "json")
        .args(["uri", "--cluster", "c.example.net"])
        .run();
    assert_eq!(ok.code, 0, "{}", ok.all());
    assert_eq!(ok.json()["command"], "uri");
}

#[test]
fn malformed_role_arns_fail_the_config_stage() {
    for (arn, says) in [
        ("atlas-app", "not an ARN"),
        ("arn:aws:iam::123:role/app", "12 digits"),
        (
            "arn:aws:sts::123456789012:assumed-role/app/s",
            "session ARN",
        ),
    ] {
        Test::new(atlas_iam)
            .args(["whoami", "--role-arn", arn])
            .fails_at(Stage::Config, "invalid_arn")
            .exit(3)
            .says(says)
            .run();
    }
    // from the guides' variable name too
    Test::new(|| atlas_iam().env("MONGODB_ACCESS_ROLE_ARN", "nope"))
        .args(["whoami"])
        .fails_at(Stage::Config, "invalid_arn")
        .exit(3)
        .says("invalid_arn at config")
        .run();
}

#[test]
fn target_is_reported_from_wherever_the_cluster_came() {
    let out = atlas_iam()
        .env(
            "AWS_MONGO_CLUSTER_URL",
            "mongodb+srv://Guide.AB12C.mongodb.net/",
        )
        .args(["uri", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.json()["target"], "guide.ab12c.mongodb.net");
    let out = atlas_iam()
        .env(
            "MONGODB_URI",
            format!(
                "mongodb://{KEY}:{}@h.example.net/?authSource=%24external",
                SECRET.replace('/', "%2F")
            ),
        )
        .args(["uri", "--format", "json"])
        .run();
    assert!(
        out.json()["target"]
            .as_str()
            .is_some_and(|t| t.contains("AKIA…MPLE:(redacted)@h.example.net")),
        "{}",
        out.stdout
    );
    out.assert_absent(&[KEY, SECRET, &SECRET.replace('/', "%2F")]);
}

#[test]
fn assume_without_a_role_says_what_to_give() {
    let out = atlas_iam().args(["assume"]).run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout.is_empty(),
        "stdout is for credentials only: {}",
        out.stdout
    );
    assert!(out.stderr.contains("--role-arn"), "{}", out.stderr);
    let json = atlas_iam().args(["assume", "--format", "json"]).run();
    assert_eq!(
        failure(&json.json_stderr()),
        ("config".to_string(), "invalid_config".to_string())
    );
}

#[test]
fn an_unreadable_env_file_is_a_config_error() {
    let out = atlas_iam()
        .args([
            "whoami",
            "--env-file",
            "/nonexistent/x.env",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(
        failure(&out.json()),
        ("config".to_string(), "env_file".to_string())
    );

    let bad = atlas_iam()
        .write(
            ".env",
            "GOOD=1\nAWS_SECRET_ACCESS_KEY='never-closed-secret\n",
        )
        .args(["whoami"])
        .run();
    assert_eq!(bad.code, 3, "{}", bad.all());
    assert!(bad.stdout.contains("env_file at config"), "{}", bad.stdout);
    bad.assert_absent(&["never-closed-secret"]);
}

#[test]
fn env_file_values_are_used_and_the_environment_and_flags_win() {
    let file = "ATLAS_IAM_CLUSTER=fromfile.example.net\nAWS_MONGO_DATABASE=filedb\nATLAS_IAM_FORMAT=json\n";
    // from the file
    let out = atlas_iam().write(".env", file).args(["uri"]).run();
    assert_eq!(out.code, 0, "{}", out.all());
    let r = out.json();
    assert_eq!(r["uri"]["hosts"][0], "fromfile.example.net");
    assert_eq!(r["uri"]["database"], "filedb");
    // the real environment wins over the file
    let out = atlas_iam()
        .write(".env", file)
        .env("ATLAS_IAM_CLUSTER", "fromenv.example.net")
        .args(["uri"])
        .run();
    assert_eq!(out.json()["uri"]["hosts"][0], "fromenv.example.net");
    // flags win over both
    let out = atlas_iam()
        .write(".env", file)
        .env("ATLAS_IAM_CLUSTER", "fromenv.example.net")
        .args(["uri", "--cluster", "fromflag.example.net", "--db", "flagdb"])
        .run();
    let r = out.json();
    assert_eq!(r["uri"]["hosts"][0], "fromflag.example.net");
    assert_eq!(r["uri"]["database"], "flagdb");
    // --env-file names another file
    let cli = atlas_iam();
    let other = cli.path("other.env");
    let out = cli
        .write("other.env", "ATLAS_IAM_CLUSTER=other.example.net\n")
        .args(["uri", "--format", "json", "--env-file"])
        .args([&other])
        .run();
    assert_eq!(out.json()["uri"]["hosts"][0], "other.example.net");
}

#[test]
fn uri_builds_the_credential_free_form() {
    let out = atlas_iam()
        .args([
            "uri",
            "--cluster",
            "cluster0.ab12c.mongodb.net",
            "--db",
            "orders",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.stdout,
        "mongodb+srv://cluster0.ab12c.mongodb.net/orders?authSource=%24external&\
         authMechanism=MONGODB-AWS&retryWrites=true&w=majority&appName=atlas-iam\n"
    );
    assert!(
        out.stderr.contains("config"),
        "the stages go to stderr: {}",
        out.stderr
    );
    // the names the common guides use
    let out = atlas_iam()
        .env("AWS_MONGO_CLUSTER_URL", "guide.ab12c.mongodb.net")
        .args(["uri"])
        .run();
    assert!(
        out.stdout
            .starts_with("mongodb+srv://guide.ab12c.mongodb.net/test?"),
        "{}",
        out.stdout
    );
    let out = atlas_iam()
        .env("MONGODB_CLUSTER_NAME", "other.ab12c.mongodb.net")
        .args(["uri"])
        .run();
    assert!(
        out.stdout
            .starts_with("mongodb+srv://other.ab12c.mongodb.net/test?"),
        "{}",
        out.stdout
    );
}

#[test]
fn uri_without_a_target_or_with_a_bad_one() {
    let out = atlas_iam().args(["uri", "--format", "json"]).run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(
        failure(&out.json()),
        ("config".to_string(), "missing_target".to_string())
    );
    let out = atlas_iam()
        .args(["uri", "--cluster", "user:pw@host/db"])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    for bad in ["cluster0.example.net", "http://x.example.net", "mongodb://"] {
        let out = atlas_iam()
            .args(["uri", "--format", "json", "--uri", bad])
            .run();
        assert_eq!(out.code, 3, "{bad}: {}", out.all());
        assert_eq!(
            failure(&out.json()),
            ("config".to_string(), "invalid_uri".to_string()),
            "{bad}"
        );
    }
}

#[test]
fn uri_check_reports_pitfalls_and_redacts() {
    let token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN+with/slash=";
    let uri = format!(
        "mongodb+srv://{KEY}:{}@cluster0.ab12c.mongodb.net/test?authMechanism=MONGODB-AWS\
         &authMechanismProperties=AWS_SESSION_TOKEN:{token}",
        SECRET.replace('/', "%2F")
    );
    let out = atlas_iam()
        .args(["uri", "--format", "json", "--uri", &uri])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    let r = out.json();
    assert_eq!(
        failure(&r),
        ("config".to_string(), "uri_pitfall".to_string())
    );
    let codes: Vec<&str> = r["uri"]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().unwrap_or_default())
        .collect();
    for code in [
        "auth_source_missing",
        "embedded_credentials",
        "unencoded_plus",
    ] {
        assert!(codes.contains(&code), "{code} not in {codes:?}");
    }
    assert!(
        r["target"]
            .as_str()
            .unwrap_or_default()
            .contains("AKIA…MPLE:(redacted)@"),
        "{r}"
    );
    out.assert_absent(&[KEY, SECRET, &SECRET.replace('/', "%2F"), token]);

    let human = atlas_iam().args(["uri", "--uri", &uri]).run();
    assert_eq!(human.code, 3);
    assert!(
        human.stderr.contains("auth_source_missing"),
        "{}",
        human.stderr
    );
    human.assert_absent(&[KEY, SECRET, token]);

    // a good string: warnings only, exit 0
    let good = "mongodb+srv://cluster0.ab12c.mongodb.net/test?authSource=%24external&authMechanism=MONGODB-AWS";
    let out = atlas_iam()
        .args(["uri", "--format", "json", "--uri", good])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.json()["uri"]["findings"], serde_json::json!([]));
    // from MONGODB_URI, with a pitfall that is only a warning
    let warn = "mongodb://127.0.0.1:27017/test?authMechanism=MONGODB-AWS";
    let out = atlas_iam()
        .env("MONGODB_URI", warn)
        .args(["uri", "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.json()["stages"][0]["status"], "warning");
}

#[test]
fn embed_credentials_is_redacted_unless_show_secrets() {
    let token = "FQoGZXIvYXdzEXAMPLE+TOKEN/with=";
    let tmp_key = "ASIAIOSFODNN7EXAMPLE";
    let run = |show: bool| {
        let mut args = vec![
            "uri",
            "--cluster",
            "cluster0.ab12c.mongodb.net",
            "--embed-credentials",
        ];
        if show {
            args.push("--show-secrets");
        }
        atlas_iam()
            .env("AWS_ACCESS_KEY_ID", tmp_key)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_SESSION_TOKEN", token)
            .args(args)
            .run()
    };
    let hidden = run(false);
    assert_eq!(hidden.code, 0, "{}", hidden.all());
    assert!(
        hidden.stdout.contains("ASIA…MPLE:(redacted)@"),
        "{}",
        hidden.stdout
    );
    assert!(
        hidden.stderr.contains("current drivers reject credentials"),
        "{}",
        hidden.stderr
    );
    assert!(
        hidden.stderr.contains("--show-secrets"),
        "{}",
        hidden.stderr
    );
    hidden.assert_absent(&[tmp_key, SECRET, token]);

    let shown = run(true);
    assert_eq!(shown.code, 0, "{}", shown.all());
    let uri = shown.stdout.trim();
    assert!(
        uri.contains(&format!(
            "{tmp_key}:wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY@"
        )),
        "{uri}"
    );
    assert!(
        uri.contains("AWS_SESSION_TOKEN:FQoGZXIvYXdzEXAMPLE%2BTOKEN%2Fwith%3D"),
        "{uri}"
    );
}

#[test]
fn help_teaches_env_names_and_exit_codes() {
    let out = atlas_iam().args(["--help"]).run();
    assert_eq!(out.code, 0);
    for text in [
        "MONGODB_URI",
        "ATLAS_IAM_CLUSTER",
        "AWS_MONGO_CLUSTER_URL",
        "MONGODB_CLUSTER_NAME",
        "AWS_MONGO_DATABASE",
        "ATLAS_IAM_ROLE_ARN",
        "MONGODB_ACCESS_ROLE_ARN",
        "ATLAS_IAM_FORMAT",
        "AWS_PROFILE",
        "AWS_REGION",
        "Exit codes",
        "4  STS",
        "--show-secrets",
    ] {
        assert!(out.stdout.contains(text), "{text} missing from --help");
    }
    // env values are never shown in help (MONGODB_URI may hold a secret)
    let out = atlas_iam()
        .env("MONGODB_URI", "mongodb://AKIA:topsecretvalue@h/")
        .args(["--help"])
        .run();
    out.assert_absent(&["topsecretvalue"]);
}

/// A usage error is a JSON report too when JSON is asked for, by flag or by ATLAS_IAM_FORMAT:
/// a CI job that parses stdout always gets a document. It never echoes a pasted secret.
#[test]
fn usage_errors_follow_the_format() {
    for (args, env) in [
        (vec!["ping", "--format", "json", "--bogus"], None),
        (vec!["whoami", "--timeout", "abc"], Some("json")),
        (
            vec![
                "uri",
                "--format=json",
                "--cluster",
                "c.example.net",
                "AKIAIOSFODNN7EXAMPLE",
            ],
            None,
        ),
    ] {
        let mut cli = atlas_iam().args(args.clone());
        if let Some(f) = env {
            cli = cli.env("ATLAS_IAM_FORMAT", f);
        }
        let out = cli.run();
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        let r = out.json();
        assert_eq!(r["exit_code"], 2, "{r}");
        assert_eq!(
            failure(&r),
            ("config".to_string(), "usage_error".to_string())
        );
        out.assert_absent(&["AKIAIOSFODNN7EXAMPLE"]);
    }
    // human output stays clap's text
    let out = atlas_iam().args(["ping", "--bogus"]).run();
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--bogus") && out.stdout.is_empty(),
        "{}",
        out.all()
    );
}

/// An argument that is not UTF-8 is a usage error, never a panic, in either format.
#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"--cluster=\xff\xfe");
    for format in ["human", "json"] {
        let out = atlas_iam()
            .args([
                std::ffi::OsStr::new("uri"),
                std::ffi::OsStr::new("--format"),
                std::ffi::OsStr::new(format),
                bad,
            ])
            .run();
        assert_eq!(out.code, 2, "{format}: {}", out.all());
    }
}

/// Role session names are checked as STS checks them, before any call, naming the character and
/// the rule: the flag (a usage error), AWS_ROLE_SESSION_NAME with web identity, a profile's
/// role_session_name.
#[test]
fn role_session_names_sts_refuses_are_named() {
    let out = atlas_iam()
        .args([
            "whoami",
            "--role-arn",
            "arn:aws:iam::123456789012:role/app",
            "--role-session-name",
            "dependabot[bot]",
        ])
        .run();
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("`[` at position 11"), "{}", out.stderr);

    let cli = atlas_iam();
    let token = cli.path("token");
    let cli = cli.write("token", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    Test::new(|| {
        atlas_iam()
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app")
            .env("AWS_ROLE_SESSION_NAME", "team/user")
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    })
    .args(["whoami"])
    .fails_at(Stage::Credentials, "invalid_config")
    .exit(3)
    .says("`/` at position 5")
    .run();
    drop(cli);

    let cli = atlas_iam();
    let config = cli.path("config");
    let cli = cli.write(
        "config",
        "[profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\n\
         role_session_name = dependabot[bot]\n[profile base]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
         aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n",
    );
    Test::new(|| {
        atlas_iam()
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    })
    .args(["whoami", "--profile", "app"])
    .fails_at(Stage::Credentials, "profile_error")
    .exit(3)
    .says("role_session_name `dependabot[bot]` of profile app")
    .run();
    drop(cli);
}

/// Variables under names the SDKs do not read are named, with the right name; their values are
/// never shown.
#[test]
fn misnamed_variables_are_named() {
    let token = "IQoJb3JpZ2luX2VjEMISNAMEDTOKENVALUE0123456789";
    let out = atlas_iam()
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_SECURITY_TOKEN", token)
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .args(["whoami", "--format", "json", "--timeout", "3"])
        .run();
    let credentials = out.stage(Stage::Credentials);
    let warnings = credentials["warnings"].to_string();
    assert!(
        warnings.contains("AWS_SECURITY_TOKEN is set") && warnings.contains("rename it"),
        "{}",
        out.all()
    );
    out.assert_absent(&[token, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"]);
}

/// Credentials with a known expiry show the time left; under 15 minutes a warning says the
/// drivers will soon count them expired; temporary keys in static environment variables get a
/// warning that nothing refreshes them.
#[test]
fn expiring_and_unrefreshed_credentials_are_told() {
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 60);
    let soon = mongodb::bson::DateTime::from_system_time(soon)
        .try_to_rfc3339_string()
        .expect("rfc3339");
    let out = atlas_iam()
        .env("AWS_ACCESS_KEY_ID", "ASIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env(
            "AWS_SESSION_TOKEN",
            "IQoJb3JpZ2luX2VjEXPIRINGTOKEN0123456789",
        )
        .env("AWS_CREDENTIAL_EXPIRATION", &soon)
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .args(["whoami", "--format", "json", "--timeout", "3"])
        .run();
    let credentials = out.stage(Stage::Credentials);
    let detail = credentials["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("min left"), "{credentials}");
    let warnings = credentials["warnings"].to_string();
    assert!(warnings.contains("expire in 9 min"), "{credentials}");
    assert!(
        warnings.contains("temporary keys in environment variables"),
        "{credentials}"
    );
}
