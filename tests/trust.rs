//! Trust: an env file never runs code or redirects credentials, no secret leaks in any
//! encoding, every file read and wait is bounded, weakened TLS is never silent, written files are
//! private. Each case was reproduced against the code before it was fixed.

use std::time::{Duration, Instant};

use crate::common::{atlas_iam, Stage, Test};

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+EXAMPLETOKEN";

/// Env without the harness's AWS_CONFIG_FILE, so that an env file's value could take effect.
fn bare() -> crate::common::Cli {
    atlas_iam()
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
}

// ---------------------------------------------------------------- 1. the env file

#[test]
fn an_implicit_env_file_cannot_run_code_or_redirect_credentials() {
    let cli = bare();
    let marker = cli.path("credential_process-ran");
    let config = cli.path("evil-config");
    let evil = format!(
        "[default]\ncredential_process = sh -c 'touch {}; echo {{}}'\n",
        marker.display()
    );
    let env = format!(
        "AWS_CONFIG_FILE={}\nAWS_ENDPOINT_URL_STS=http://127.0.0.1:9\nHTTPS_PROXY=http://127.0.0.1:9\n\
         AWS_REGION=eu-west-1\nPORT=8080\n",
        config.display()
    );
    let out = cli
        .write("evil-config", &evil)
        .write(".env", &env)
        .args(["whoami", "--format", "json", "--timeout", "5"])
        .run();
    assert!(
        !marker.exists(),
        "the implicit .env ran a credential_process"
    );
    let config_stage = out.stage(Stage::Config);
    let warnings = config_stage["warnings"].to_string();
    for refused in ["AWS_CONFIG_FILE", "AWS_ENDPOINT_URL_STS", "HTTPS_PROXY"] {
        assert!(
            warnings.contains(refused),
            "{refused} not named: {warnings}"
        );
    }
    let detail = config_stage["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("set AWS_REGION"), "{detail}");
    assert!(detail.contains("PORT"), "ignored names listed: {detail}");
    assert!(
        !detail.contains("8080") && !warnings.contains("127.0.0.1"),
        "values shown"
    );
    assert_eq!(
        crate::common::failure(&out.json()),
        ("credentials".into(), "no_credentials".into())
    );

    // named with --env-file, the same file is the user's choice and is honoured
    let cli = bare();
    let marker = cli.path("credential_process-ran");
    let config = cli.path("evil-config");
    let evil = format!(
        "[default]\ncredential_process = sh -c 'touch {}; exit 1'\n",
        marker.display()
    );
    let out = cli
        .write("evil-config", &evil)
        .write(
            "mine.env",
            &format!("AWS_CONFIG_FILE={}\n", config.display()),
        )
        .args(["whoami", "--format", "json", "--env-file", "mine.env"])
        .run();
    assert!(
        marker.exists(),
        "--env-file must be honoured: {}",
        out.all()
    );
    drop(out);
}

#[test]
fn an_implicit_env_file_may_not_copy_secrets_into_values() {
    let out = atlas_iam()
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .write(
            ".env",
            "MONGODB_URI=mongodb://h.example.net/?tls=true&appName=${AWS_SECRET_ACCESS_KEY}\n",
        )
        .args(["uri", "--format", "json"])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(
        crate::common::failure(&out.json()),
        ("config".into(), "env_file".into())
    );
    out.assert_absent(&[SECRET, KEY]);
}

#[test]
fn env_file_errors_never_quote_a_line() {
    for content in [
        format!("GOOD=1\n{SECRET}\n"),
        format!("AWS_SECRET_ACCESS_KEY {SECRET}\n"),
        format!("AWS_SESSION_TOKEN=\"{TOKEN}\n{TOKEN}\n"),
        format!("AWS_SECRET_ACCESS_KEY=\"{SECRET}\\q\"\n"),
        format!("AWS_SECRET_ACCESS_KEY='{SECRET}\n"),
        format!("X=${{{SECRET}\n"),
    ] {
        for format in ["human", "json"] {
            let out = atlas_iam()
                .write(".env", &content)
                .args(["whoami", "--format", format])
                .run();
            assert_eq!(out.code, 3, "{content:?}: {}", out.all());
            assert!(out.all().contains("env_file"), "{}", out.all());
            out.assert_absent(&[SECRET, TOKEN, &SECRET[..12], &TOKEN[..16]]);
        }
    }
}

// ---------------------------------------------------------------- 2. secrets in any encoding

#[test]
fn connection_string_secrets_are_hidden_in_every_spelling() {
    let base = "mongodb://h.example.net:27017/test?tls=true&authSource=%24external&authMechanism=MONGODB-AWS";
    let uris = [
        format!("{base}&authMechanismProperties=AWS_SESSION_TOKEN%3a{TOKEN}"),
        format!("{base}&authMechanismProperties=AWS%5FSESSION%5FTOKEN:{TOKEN}"),
        format!("{base}&authMechanismProperties=AWS_SESSION_TOKEN={TOKEN}"),
        format!("{base}&proxyPassword={TOKEN}"),
        format!("{base}&tlsCertificateKeyFilePassword={TOKEN}"),
        format!("mongodb://{KEY}:{SECRET}?x#y@h.example.net:27017/test?tls=true"),
        format!("mongodb://{KEY}:{TOKEN}@h.example.net:27017/?authMechanism=MONGODB-AWS"),
    ];
    let mut runs = 0;
    for uri in &uris {
        for args in [vec!["uri", "--uri", uri], vec!["whoami", "--uri", uri]] {
            for format in ["human", "json"] {
                let out = atlas_iam().args(&args).args(["--format", format]).run();
                out.assert_absent(&[TOKEN, SECRET, KEY, &format!("{SECRET}?x#y")]);
                runs += 1;
            }
        }
    }
    // a whole string given as the cluster, and one given without --uri
    let as_cluster = format!("mongodb+srv://{KEY}:{SECRET}@cluster0.ab12c.mongodb.net");
    let out = atlas_iam().args(["uri", "--cluster", &as_cluster]).run();
    assert_eq!(out.code, 3, "{}", out.all());
    out.assert_absent(&[KEY, SECRET]);
    let out = atlas_iam().args(["ping", &as_cluster]).run();
    assert_eq!(out.code, 2, "{}", out.all());
    out.assert_absent(&[KEY, SECRET]);
    println!("swept {runs} runs of connection strings");
}

#[test]
fn endpoint_userinfo_and_non_utf8_keys_are_never_echoed() {
    let out = atlas_iam()
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env(
            "AWS_ENDPOINT_URL_STS",
            "http://admin:hunter2hunter2@127.0.0.1:9",
        )
        .args(["whoami", "--timeout", "3"])
        .run();
    assert_eq!(out.code, 4, "{}", out.all());
    out.assert_absent(&["hunter2hunter2", KEY, SECRET]);

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let garbled = std::ffi::OsStr::from_bytes(b"AKIA\xffSECRETPARTOFKEY");
        let out = atlas_iam()
            .env("AWS_ACCESS_KEY_ID", garbled)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .args(["whoami", "--format", "json"])
            .run();
        assert_eq!(out.code, 3, "{}", out.all());
        assert!(out.stdout.contains("not valid UTF-8"), "{}", out.stdout);
        out.assert_absent(&["SECRETPARTOFKEY", SECRET]);
    }
}

#[test]
fn a_failing_credential_process_is_excerpted_without_secrets() {
    let cli = atlas_iam();
    let config = cli.path("config");
    let out = cli
        .write(
            "config",
            &format!(
                "[profile vault]\ncredential_process = sh -c 'echo \"cannot parse {SECRET} for {KEY}\" >&2; exit 3'\n"
            ),
        )
        .env("AWS_CONFIG_FILE", &config)
        .args(["whoami", "--profile", "vault", "--format", "json"])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(
        crate::common::failure(&out.json()),
        ("credentials".into(), "credentials_error".into())
    );
    out.assert_absent(&[SECRET, KEY]);
}

// ---------------------------------------------------------------- 4. bounded waits and reads

#[test]
fn hostile_files_end_at_once_with_a_clear_error() {
    let cli = atlas_iam();
    let fifo = cli.path("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "mkfifo (coreutils) is needed"
    );
    let fifo = fifo.display().to_string();
    for (args, kind) in [
        (vec!["whoami", "--env-file", &fifo], "env_file"),
        (vec!["whoami", "--env-file", "/dev/zero"], "env_file"),
        (
            vec![
                "ping",
                "--uri",
                "mongodb://127.0.0.1:9/?tls=true&authSource=%24external&authMechanism=MONGODB-AWS&tlsCAFile=/dev/zero",
            ],
            "invalid_config",
        ),
        (
            vec![
                "ping",
                "--uri",
                &format!("mongodb://127.0.0.1:9/?tls=true&authSource=%24external&authMechanism=MONGODB-AWS&tlsCAFile={fifo}"),
            ],
            "invalid_config",
        ),
    ] {
        let started = Instant::now();
        let out = atlas_iam()
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .args(&args)
            .args(["--format", "json", "--timeout", "3"])
            .run();
        assert!(started.elapsed() < Duration::from_secs(3), "{args:?} hung");
        assert_eq!(out.code, 3, "{args:?}: {}", out.all());
        assert_eq!(
            crate::common::failure(&out.json()),
            ("config".into(), kind.into()),
            "{args:?}"
        );
    }

    // files the SDK or the driver would read to their end: checked before they are handed over
    let home = cli.path("home");
    std::fs::create_dir_all(home.join(".aws/sso/cache")).expect("sso cache dir");
    std::os::unix::fs::symlink("/dev/zero", home.join(".aws/sso/cache/0123abcd.json"))
        .expect("link");
    let web_identity = cli.path("web-identity-config");
    std::fs::write(
        &web_identity,
        "[default]\nrole_arn = arn:aws:iam::123456789012:role/app\nweb_identity_token_file = /dev/zero\n",
    )
    .expect("config");
    let sso = cli.path("sso-config");
    std::fs::write(
        &sso,
        "[profile dev]\nsso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = dev\n",
    )
    .expect("config");
    let home = home.display().to_string();
    let (web_identity, sso) = (
        web_identity.display().to_string(),
        sso.display().to_string(),
    );
    let key_file =
        "mongodb://127.0.0.1:9/?tls=true&authSource=%24external&authMechanism=MONGODB-AWS\
                    &tlsCertificateKeyFile=/dev/zero";
    for (env, args, at) in [
        (
            vec![("AWS_CONFIG_FILE", "/dev/zero")],
            vec!["whoami"],
            ("credentials", "profile_error"),
        ),
        (
            vec![("AWS_CONFIG_FILE", fifo.as_str())],
            vec!["whoami"],
            ("credentials", "profile_error"),
        ),
        (
            vec![("AWS_SHARED_CREDENTIALS_FILE", "/dev/zero")],
            vec!["whoami"],
            ("credentials", "profile_error"),
        ),
        (
            vec![("AWS_CONFIG_FILE", web_identity.as_str())],
            vec!["whoami"],
            ("credentials", "profile_error"),
        ),
        (
            vec![
                ("AWS_CONFIG_FILE", sso.as_str()),
                ("AWS_PROFILE", "dev"),
                ("HOME", home.as_str()),
            ],
            vec!["whoami"],
            ("credentials", "profile_error"),
        ),
        (
            vec![
                ("AWS_ACCESS_KEY_ID", KEY),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
            ],
            vec!["ping", "--uri", key_file],
            ("config", "invalid_config"),
        ),
    ] {
        let started = Instant::now();
        let mut c = bare();
        for (k, v) in &env {
            c = c.env(k, v);
        }
        let out = c
            .args(&args)
            .args(["--format", "json", "--timeout", "3"])
            .run();
        assert!(started.elapsed() < Duration::from_secs(4), "{env:?} hung");
        assert_eq!(out.code, 3, "{env:?}: {}", out.all());
        assert_eq!(
            crate::common::failure(&out.json()),
            (at.0.into(), at.1.into()),
            "{env:?}: {}",
            out.all()
        );
        assert!(out.all().contains("was not read"), "{env:?}: {}", out.all());
    }
}

#[test]
fn a_hung_credential_process_is_killed_with_the_run() {
    let cli = atlas_iam();
    let config = cli.path("config");
    let pidfile = cli.path("pid");
    let script = format!(
        "[profile slow]\ncredential_process = sh -c 'echo $$ > {}; exec sleep 60'\n",
        pidfile.display()
    );
    let started = Instant::now();
    let out = cli
        .write("config", &script)
        .env("AWS_CONFIG_FILE", &config)
        .args(["whoami", "--profile", "slow", "--timeout", "2"])
        .run();
    assert!(started.elapsed() < Duration::from_secs(4), "{}", out.all());
    assert_eq!(out.code, 3, "{}", out.all());
    let pid = std::fs::read_to_string(&pidfile).expect("the process ran");
    // gone, or a zombie waiting for init to reap it: either way no longer running. The SIGKILL
    // sent as the run ends may still be pending on a loaded machine: give it a moment.
    let state = || {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
        let running = status
            .lines()
            .find(|l| l.starts_with("State:"))
            .is_some_and(|l| !l.contains("Z (zombie)") && !l.contains("X (dead)"));
        (running, status)
    };
    let waited = Instant::now();
    let (mut running, mut status) = state();
    while running && waited.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        (running, status) = state();
    }
    assert!(
        !running,
        "credential_process {} outlived the run: {status}",
        pid.trim()
    );
}

// ---------------------------------------------------------------- 5. TLS weakened

#[test]
fn weakened_tls_is_never_silent() {
    let atlas = "mongodb://cluster0-shard-00-00.ab12c.mongodb.net.:27017/?authSource=%24external&authMechanism=MONGODB-AWS";
    Test::new(atlas_iam)
        .args(["uri", "--uri", atlas])
        .fails_at(Stage::Config, "uri_pitfall")
        .exit(3)
        .says("cleartext")
        .run();
    for weakening in ["tlsInsecure", "tlsAllowInvalidCertificates"] {
        let uri = format!(
            "mongodb+srv://c.example.net/?authSource=%24external&authMechanism=MONGODB-AWS&{weakening}=true"
        );
        let out = atlas_iam()
            .args(["uri", "--uri", &uri, "--format", "json"])
            .run();
        assert_eq!(out.code, 0, "{}", out.all());
        let findings = out.json()["uri"]["findings"].to_string();
        assert!(
            findings.contains("tls_weakened") && findings.contains(weakening),
            "{findings}"
        );
    }
    let plain = atlas_iam()
        .args([
            "uri",
            "--uri",
            "mongodb://db.internal:27017/?authSource=%24external&authMechanism=MONGODB-AWS",
            "--format",
            "json",
        ])
        .run();
    assert!(plain.stdout.contains("tls_off"), "{}", plain.stdout);
}

// ---------------------------------------------------------------- 6. written files

#[test]
fn assume_out_writes_a_private_file_and_never_follows_a_link() {
    let moto = crate::common::Moto::shared();
    let role = moto.role_arn.clone();
    let run = |c: crate::common::Cli, extra: &[&str]| {
        c.envs(moto.env())
            .keys(&moto.alice)
            .args(["assume", "--role-arn", &role, "--output", "dotenv"])
            .args(extra)
            .run()
    };
    let keep = tempfile::tempdir().expect("dir");
    let dir = keep.path();
    let file = dir.join("creds.env");
    let out = run(atlas_iam(), &["--out", &file.display().to_string()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.is_empty(), "credentials went to the file only");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("AWS_SESSION_TOKEN="), "{text}");

    // exists: refused without --force, replaced (still 0600) with it
    let again = run(atlas_iam(), &["--out", &file.display().to_string()]);
    assert_eq!(again.code, 3, "{}", again.all());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let forced = run(
        atlas_iam(),
        &["--out", &file.display().to_string(), "--force"],
    );
    assert_eq!(forced.code, 0, "{}", forced.all());
    let mode = std::fs::metadata(&file)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o} after --force");

    // a symlink is refused, even with --force, and its target is untouched
    let target = dir.join("target");
    std::fs::write(&target, "keep").expect("write");
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = run(
        atlas_iam(),
        &["--out", &link.display().to_string(), "--force"],
    );
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep");
}

#[test]
fn a_silent_instance_metadata_or_container_endpoint_is_bounded() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent = format!("http://{}", listener.local_addr().expect("addr"));
    for (name, vars) in [
        (
            "IMDS",
            vec![
                ("AWS_EC2_METADATA_DISABLED", "false".to_string()),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", silent.clone()),
            ],
        ),
        (
            "container",
            vec![(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{silent}/creds"),
            )],
        ),
    ] {
        let mut c = atlas_iam();
        for (k, v) in &vars {
            c = c.env(k, v);
        }
        let started = Instant::now();
        let out = c
            .args(["whoami", "--timeout", "2", "--format", "json"])
            .run();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert_eq!(out.code, 3, "{name}: {}", out.all());
        assert_eq!(
            crate::common::failure(&out.json()).0,
            "credentials",
            "{name}: {}",
            out.stdout
        );
    }
    drop(listener);
}

// ---------------------------------------------------------------- 7. the relay

/// A cloned repository's `.env` names a server of its own, with its own CA in the repository:
/// such a server could relay the MONGODB-AWS proof to a real cluster. Nothing is sent to it
/// until the user gives the target themselves.
#[test]
fn an_implicit_env_file_cannot_point_the_proof_at_its_own_server() {
    use atlas_iam_testkit::{Stack, StackOptions};
    let s = Stack::start(StackOptions {
        tls: true,
        ..Default::default()
    })
    .expect("local Atlas stack (moto from `bash .ci/setup`)");
    let account = s.account.clone().expect("account");
    let target = s.uri();
    assert!(target.contains("tlsCAFile="), "{target}");
    let dotenv = format!(
        "MONGODB_URI={target}\nATLAS_IAM_ROLE_ARN={}\n",
        account.role_arn
    );
    let cli = || {
        let mut c = atlas_iam();
        for (k, v) in s.env() {
            c = c.env(&k, v);
        }
        c.write(".env", &dotenv)
    };
    let before = s.atlas.counters().0;
    let out = Test::new(cli)
        .args(["ping", "--timeout", "10"])
        .fails_at(Stage::Config, "target_not_confirmed")
        .exit(3)
        .says("--env-file")
        .run();
    assert_eq!(
        s.atlas.counters().0,
        before,
        "the .env's server was contacted"
    );
    let detail = out.stage(Stage::Config)["detail"].to_string();
    assert!(
        detail.contains("found in the current directory"),
        "{detail}"
    );

    // the user's say-so: the file named, the same value by flag, or in the environment
    for (args, env) in [
        (vec!["ping", "--env-file", ".env"], None),
        (vec!["ping", "--uri", target.as_str()], None),
        (vec!["ping"], Some(target.as_str())),
    ] {
        let out = Test::new(|| match env {
            Some(v) => cli().env("MONGODB_URI", v),
            None => cli(),
        })
        .args(args.clone())
        .passes()
        .run();
        let detail = out.stage(Stage::Config)["detail"].to_string();
        let from = if args.contains(&"--env-file") {
            "from --env-file"
        } else if env.is_some() {
            "from environment"
        } else {
            "from flag"
        };
        assert!(detail.contains(from), "{args:?}: {detail}");
    }
}

/// An Atlas host from an implicit `.env` may be probed, but never with the file's own trust
/// options: the CA, a client key, TLS relaxations and a proxy are named and left out.
#[test]
fn an_implicit_env_file_cannot_choose_whom_to_trust() {
    let uri = "mongodb+srv://cluster0.ab12c.mongodb.net/?authSource=%24external\
               &authMechanism=MONGODB-AWS&tlsCAFile=certs/ca.pem&tlsCertificateKeyFile=certs/k.pem\
               &tlsAllowInvalidHostnames=true&proxyHost=relay.example&appName=app";
    let out = atlas_iam()
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .write(".env", &format!("MONGODB_URI={uri}\n"))
        .args([
            "ping",
            "--format",
            "json",
            "--timeout",
            "3",
            "--dns-server",
            "127.0.0.1:9",
        ])
        .run();
    let config = out.stage(Stage::Config);
    let warnings = config["warnings"].to_string();
    for name in [
        "tlsCAFile",
        "tlsCertificateKeyFile",
        "tlsAllowInvalidHostnames",
        "proxyHost",
    ] {
        assert!(
            warnings.contains(name) && warnings.contains("not used"),
            "{name}: {warnings}"
        );
    }
    assert!(
        !warnings.contains("option_not_honoured: proxyHost"),
        "the proxy was not left out as the file's: {warnings}"
    );
    assert_ne!(config["status"], "failed", "{config}");
}

// ---------------------------------------------------------------- 8. crashes

/// A NUL byte in an env-file value cannot be put in the environment: refused, unquoted, never a
/// panic that prints the value.
#[test]
fn a_nul_byte_in_an_env_file_is_refused_without_quoting_it() {
    let content = format!("AWS_ACCESS_KEY_ID={KEY}\nAWS_SECRET_ACCESS_KEY=wJalr\0{SECRET}\n");
    for explicit in [false, true] {
        let mut cli = bare().write(".env", &content);
        if explicit {
            cli = cli.args(["--env-file", ".env"]);
        }
        let out = cli.args(["whoami", "--format", "json"]).run();
        assert_eq!(out.code, 3, "{}", out.all());
        assert_eq!(
            crate::common::failure(&out.json()),
            ("config".to_string(), "env_file".to_string())
        );
        assert!(out.all().contains("NUL"), "{}", out.all());
        out.assert_absent(&[SECRET, KEY]);
    }
}

/// A CR, LF or DEL in a key (a file saved with Windows line endings) is named with its
/// position, exit 3, from every source: the environment, a quoted .env value, credential_process.
#[test]
fn a_mangled_key_is_named_never_a_crash() {
    let helper_json =
        format!("{{\"Version\":1,\"AccessKeyId\":\"{KEY}\\r\",\"SecretAccessKey\":\"{SECRET}\"}}");
    for (what, mangled) in [
        ("CR", format!("{KEY}\r")),
        ("LF", "AKIA\nIOSFODNN7EXAMPLE".to_string()),
        ("DEL", format!("{KEY}\u{7f}")),
    ] {
        for cmd in ["whoami", "assume", "ping"] {
            let mut args = vec![cmd, "--format", "json", "--timeout", "5"];
            if cmd == "assume" {
                args.extend(["--role-arn", "arn:aws:iam::123456789012:role/app"]);
            }
            if cmd == "ping" {
                args.extend(["--uri", "mongodb://127.0.0.1:9/?authMechanism=MONGODB-AWS"]);
            }
            let sources = [
                (
                    "environment",
                    bare()
                        .env("AWS_ACCESS_KEY_ID", &mangled)
                        .env("AWS_SECRET_ACCESS_KEY", SECRET),
                ),
                (
                    ".env",
                    bare().write(
                        ".env",
                        &format!(
                            "AWS_ACCESS_KEY_ID=\"{}\"\nAWS_SECRET_ACCESS_KEY={SECRET}\n",
                            mangled.replace('\n', "\\n")
                        ),
                    ),
                ),
            ];
            for (source, cli) in sources {
                let out = cli.args(args.clone()).run();
                assert_eq!(out.code, 3, "{what} from {source}, {cmd}: {}", out.all());
                let r = if cmd == "assume" {
                    out.json_stderr()
                } else {
                    out.json()
                };
                assert_eq!(
                    crate::common::failure(&r).1,
                    "credentials_error",
                    "{what} from {source}, {cmd}: {r}"
                );
                assert!(
                    out.all().contains("access key id") && out.all().contains("position"),
                    "{what} from {source}, {cmd}: {}",
                    out.all()
                );
                out.assert_absent(&[SECRET]);
            }
        }
    }
    // credential_process JSON with a CR in its key
    let cli = bare();
    let helper = cli.path("helper.sh");
    let config = cli.path("config");
    let cli = cli
        .write(
            "helper.sh",
            &format!("#!/bin/sh\ncat <<'EOF'\n{helper_json}\nEOF\n"),
        )
        .write(
            "config",
            &format!("[default]\ncredential_process = sh {}\n", helper.display()),
        )
        .env("AWS_CONFIG_FILE", config.display().to_string());
    let out = cli.args(["whoami", "--format", "json"]).run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.all()
            .contains("carriage return (CR) at position 21 of 21"),
        "{}",
        out.all()
    );
}

// ---------------------------------------------------------------- 9. unbounded replies

/// An HTTP server on 127.0.0.1 that answers every request with 200 and a 512 MB body, streamed
/// until the client stops reading; it stops with the test.
fn flooding_server() -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            match listener.accept() {
                Ok((mut c, _)) => {
                    std::thread::spawn(move || {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_read_timeout(Some(Duration::from_millis(300)));
                        let mut buf = [0u8; 8192];
                        let _ = c.read(&mut buf);
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                    Content-Length: 536870912\r\n\r\n";
                        if c.write_all(head.as_bytes()).is_err() {
                            return;
                        }
                        let chunk = vec![b' '; 1 << 16];
                        for _ in 0..8192 {
                            if c.write_all(&chunk).is_err() {
                                return;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (addr, handle)
}

/// Runs the binary and follows its peak resident memory (VmHWM) until it exits.
fn peak_rss_mb(mut cli: crate::common::Cli, args: &[&str]) -> (f64, Duration, i32) {
    let started = Instant::now();
    cli = cli.args(args);
    let (mut child, _dir) = cli.spawn();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Ok(Some(s)) = child.try_wait() {
            break s.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (peak_kb as f64 / 1024.0, started.elapsed(), code)
}

/// STS, the instance metadata service and the container endpoint answering with half a gigabyte:
/// each reply is read to 1 MiB and refused; memory stays small and the run ends in its time.
#[test]
fn floods_from_aws_endpoints_are_cut_short() {
    let (addr, _server) = flooding_server();
    let url = format!("http://{addr}");
    let cases: Vec<(&str, crate::common::Cli)> = vec![
        (
            "STS",
            bare()
                .env("AWS_ACCESS_KEY_ID", KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL_STS", &url),
        ),
        (
            "instance metadata",
            bare()
                .env_remove("AWS_EC2_METADATA_DISABLED")
                .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url),
        ),
        (
            "container endpoint",
            bare().env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{url}/credentials"),
            ),
        ),
    ];
    for (what, cli) in cases {
        let (peak, took, code) =
            peak_rss_mb(cli, &["whoami", "--format", "json", "--timeout", "6"]);
        println!(
            "{what}: peak RSS {peak:.1} MB, {} ms, exit {code}",
            took.as_millis()
        );
        assert!(peak < 100.0, "{what}: peak RSS {peak:.1} MB");
        assert!(took < Duration::from_secs(7), "{what}: {took:?}");
        assert!([3, 4].contains(&code), "{what}: exit {code}");
    }
}

/// A credential_process that floods stderr is read to a cap and ends in its time; one that prints
/// valid credentials and leaves a grandchild holding its stdout is taken at its word, and the
/// grandchild does not outlive the run.
#[test]
fn a_credential_process_is_bounded_and_leaves_no_descendant() {
    let cli = bare();
    let config = cli.path("config");
    let pidfile = cli.path("grandchild");
    let creds = format!(r#"{{"Version":1,"AccessKeyId":"{KEY}","SecretAccessKey":"{SECRET}"}}"#);
    let script = format!(
        "[profile flood]\ncredential_process = sh -c 'head -c 1000000000 /dev/zero >&2; exit 1'\n\
         [profile lingering]\ncredential_process = sh -c 'cat {}; (sleep 60 & echo $! > {}; wait) &'\n",
        cli.path("creds.json").display(),
        pidfile.display()
    );
    let cli = cli.write("config", &script).write("creds.json", &creds);
    let config = config.display().to_string();
    let (peak, took, code) = peak_rss_mb(
        bare().env("AWS_CONFIG_FILE", &config),
        &[
            "whoami",
            "--profile",
            "flood",
            "--format",
            "json",
            "--timeout",
            "4",
        ],
    );
    println!(
        "flooding credential_process: peak RSS {peak:.1} MB, {} ms",
        took.as_millis()
    );
    assert!(peak < 100.0, "peak RSS {peak:.1} MB");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(code, 3);

    let started = Instant::now();
    let out = bare()
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .args([
            "whoami",
            "--profile",
            "lingering",
            "--format",
            "json",
            "--timeout",
            "5",
        ])
        .run();
    let credentials = out.stage(Stage::Credentials);
    // passed, or a warning that drivers without the SDK's chain cannot run a credential_process
    assert_ne!(credentials["status"], "failed", "{}", out.all());
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
    let pid = pid.trim();
    assert!(!pid.is_empty(), "the grandchild never started");
    assert!(gone_soon(pid), "the grandchild {pid} outlived the run");
    drop(cli);
}

/// A signal during the credentials stage ends the run with its report, and the credential
/// process with it.
#[test]
fn a_signal_during_the_credentials_stage_ends_the_helper_and_reports() {
    for signal in ["INT", "TERM", "HUP"] {
        let cli = bare();
        let config = cli.path("config");
        let pidfile = cli.path("pid");
        let script = format!(
            "[profile slow]\ncredential_process = sh -c 'echo $$ > {}; exec sleep 60'\n",
            pidfile.display()
        );
        let (child, _dir) = cli
            .write("config", &script)
            .env("AWS_CONFIG_FILE", &config)
            .args([
                "whoami",
                "--profile",
                "slow",
                "--timeout",
                "30",
                "--format",
                "json",
            ])
            .spawn();
        let started = Instant::now();
        while !pidfile.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the helper never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()));
        let out = child.wait_with_output().expect("wait");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIG{signal} did not end the run"
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "SIG{signal}: no report: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            crate::common::failure(&report),
            ("credentials".to_string(), "interrupted".to_string()),
            "{report}"
        );
        assert_eq!(out.status.code(), Some(3));
        let pid = std::fs::read_to_string(&pidfile).expect("pid");
        assert!(
            gone_soon(pid.trim()),
            "SIG{signal}: the helper {} survived",
            pid.trim()
        );
    }
}

/// Whether the process is gone (or a zombie waiting to be reaped) within 2 s: a SIGKILL sent as
/// a run ends may still be pending on a loaded machine.
fn gone_soon(pid: &str) -> bool {
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("State:"))
            .is_some_and(|l| !l.contains("Z (zombie)") && !l.contains("X (dead)"))
    };
    let waited = Instant::now();
    while running() && waited.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
    }
    !running()
}

/// Runs the binary and follows the peak resident memory (VmHWM) of it and of every process it
/// starts, summed (a conservative bound on what the run held at once), until it exits.
fn peak_tree_rss_mb(mut cli: crate::common::Cli, args: &[&str]) -> (f64, Duration, i32, String) {
    use std::collections::HashMap;
    let started = Instant::now();
    cli = cli.args(args);
    let (mut child, _dir) = cli.spawn();
    let mut peaks: HashMap<u32, u64> = HashMap::new();
    let hwm = |pid: u32| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    let children = |pid: u32| -> Vec<u32> {
        let mut out = Vec::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                    out.extend(
                        text.split_whitespace()
                            .filter_map(|p| p.parse::<u32>().ok()),
                    );
                }
            }
        }
        out
    };
    let status = loop {
        let mut todo = vec![child.id()];
        while let Some(pid) = todo.pop() {
            if let Some(kb) = hwm(pid) {
                let e = peaks.entry(pid).or_default();
                *e = (*e).max(kb);
            }
            todo.extend(children(pid));
        }
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut stdout);
    }
    let total: u64 = peaks.values().sum();
    (
        total as f64 / 1024.0,
        started.elapsed(),
        status.code().unwrap_or(-1),
        stdout,
    )
}

/// A server whose reply to the driver's saslStart is nested far deeper than MongoDB allows, or
/// holds a 100 MB errmsg: the driver's own parser is not bounded, so atlas-iam runs it in a
/// worker process with a memory bound. Either way the run ends with its report (`bad_reply` at
/// auth), in its time, and memory stays small.
#[test]
fn a_hostile_reply_to_the_driver_ends_in_a_report() {
    use atlas_iam_testkit::{Fault, Stack, StackOptions};
    assert!(
        ["/usr/bin/prlimit", "/bin/prlimit"]
            .iter()
            .any(|p| std::path::Path::new(p).is_file()),
        "the worker's memory bound needs prlimit: install util-linux"
    );
    for (fault, says) in [
        (Fault::DeepSaslReply, "nested"),
        (Fault::HugeSaslReply, "memory"),
    ] {
        let s = Stack::start(StackOptions {
            fault: Some(fault),
            ..Default::default()
        })
        .expect("local Atlas stack (moto from `bash .ci/setup`)");
        let keys = s.account.clone().expect("account").client;
        let mut cli = atlas_iam();
        for (k, v) in s.env() {
            cli = cli.env(&k, v);
        }
        let cli = cli.keys(&keys);
        let (peak, took, code, stdout) = peak_tree_rss_mb(
            cli,
            &[
                "ping",
                "--uri",
                &s.uri(),
                "--format",
                "json",
                "--timeout",
                "10",
            ],
        );
        println!(
            "{fault:?}: peak RSS {peak:.1} MB (every process), {} ms, exit {code}",
            took.as_millis()
        );
        let report: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{fault:?}: no report ({e}): {stdout}"));
        assert_eq!(
            crate::common::failure(&report),
            ("auth".to_string(), "bad_reply".to_string()),
            "{fault:?}: {report:#}"
        );
        assert!(report.to_string().contains(says), "{fault:?}: {report:#}");
        assert_eq!(code, 6, "{fault:?}: {report:#}");
        assert!(peak < 100.0, "{fault:?}: peak RSS {peak:.1} MB");
        assert!(took < Duration::from_secs(11), "{fault:?}: {took:?}");
        // what was recorded before still counts; what was not is skipped, never a pass
        assert_eq!(
            crate::common::stage_of(&report, Stage::Config)["status"],
            "warning",
            "{report:#}"
        );
        let after: Vec<String> = report["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .skip_while(|s| s["stage"] != "auth")
            .skip(1)
            .map(|s| s["status"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(after.iter().all(|s| s == "skipped"), "{report:#}");
    }
}

/// A credential_process at the base of a role chain (`role_arn` + `source_profile`) is run by
/// atlas-iam too: its output read with a cap, within the run's time.
#[test]
fn a_credential_process_at_the_base_of_a_role_chain_is_bounded() {
    let cli = bare();
    let config = cli.path("config");
    let script =
        "[profile flood]\ncredential_process = sh -c 'head -c 1000000000 /dev/zero >&2; exit 1'\n\
         [profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = flood\n\
         [profile top]\nrole_arn = arn:aws:iam::123456789012:role/top\nsource_profile = app\n";
    let _cli = cli.write("config", script);
    let config = config.display().to_string();
    for profile in ["app", "top"] {
        let (peak, took, code) = peak_rss_mb(
            bare().env("AWS_CONFIG_FILE", &config),
            &[
                "whoami",
                "--profile",
                profile,
                "--format",
                "json",
                "--timeout",
                "4",
            ],
        );
        println!(
            "flooding credential_process under {profile}: peak RSS {peak:.1} MB, {} ms",
            took.as_millis()
        );
        assert!(peak < 100.0, "{profile}: peak RSS {peak:.1} MB");
        assert!(took < Duration::from_secs(5), "{profile}: {took:?}");
        assert_eq!(code, 3, "{profile}");
    }
}

/// An Admin API whose every page is full and whose total is never reached, and a connection
/// string with 5,000 hosts: each refused with its bound, in its time, memory small.
#[test]
fn hostile_lists_stay_small() {
    use atlas_iam_testkit::admin::AdminFault;
    use atlas_iam_testkit::{Stack, StackOptions};
    let hosts: Vec<String> = (0..5_000).map(|i| format!("h{i}.example.net")).collect();
    let uri = format!("mongodb://{}/?authMechanism=MONGODB-AWS", hosts.join(","));
    let (peak, took, code, stdout) = peak_tree_rss_mb(
        bare(),
        &["ping", "--uri", &uri, "--format", "json", "--timeout", "5"],
    );
    println!(
        "5,000 hosts: peak RSS {peak:.1} MB, {} ms",
        took.as_millis()
    );
    assert_eq!(code, 3, "{stdout}");
    assert!(
        peak < 100.0 && took < Duration::from_secs(6),
        "{peak} MB, {took:?}"
    );

    let s = Stack::start(StackOptions {
        admin: true,
        ..Default::default()
    })
    .expect("local Atlas stack (moto from `bash .ci/setup`)");
    s.admin_update(|a| a.fault = Some(AdminFault::EndlessPages));
    let keys = s.account.clone().expect("account").client;
    let mut cli = atlas_iam();
    for (k, v) in s.env() {
        cli = cli.env(&k, v);
    }
    for (k, v) in s.admin_env() {
        cli = cli.env(k, v);
    }
    let role = s.account.clone().expect("account").role_arn;
    let (peak, took, code, stdout) = peak_tree_rss_mb(
        cli.keys(&keys),
        &[
            "ping",
            "--atlas",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role,
            "--format",
            "json",
            "--timeout",
            "10",
        ],
    );
    println!(
        "endless Admin API pages: peak RSS {peak:.1} MB, {} ms, report {} bytes",
        took.as_millis(),
        stdout.len()
    );
    assert!(peak < 100.0, "peak RSS {peak:.1} MB");
    assert!(took < Duration::from_secs(11), "{took:?}");
    assert!(
        stdout.len() < 64 << 10,
        "the report holds {} bytes",
        stdout.len()
    );
    assert!(stdout.contains("atlas_api_error"), "{stdout}");
    assert_eq!(code, 0, "the API's failure never stops a probe: {stdout}");
}
