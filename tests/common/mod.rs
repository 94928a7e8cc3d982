//! Test helpers: a moto server (STS and IAM) provisioned like a small AWS account, and the
//! atlas-iam binary run with a clean environment.
#![allow(dead_code)] // each test binary uses a part of this module

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[allow(unused_imports)] // each test binary uses a part
pub(crate) use atlas_iam_testkit::moto::{Keys, ACCOUNT};

/// moto (STS and IAM) provisioned for the credential tests, killed when dropped: `alice` is
/// trusted by `role_arn` and may assume it (and only it); `mallory` may assume any role but is
/// not trusted by this one. Signatures and policies are enforced.
pub(crate) struct Moto {
    _moto: atlas_iam_testkit::moto::Moto,
    _watchdog: Option<atlas_iam_testkit::moto::Watchdog>,
    pub endpoint: String,
    pub alice: Keys,
    pub mallory: Keys,
    pub role_arn: String,
    pub alice_arn: String,
    pub mallory_arn: String,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        use atlas_iam_testkit::moto::{role_arn, user_arn};
        let moto = atlas_iam_testkit::moto::Moto::start().unwrap_or_else(|e| panic!("{e:#}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let role = role_arn("atlas-app");
        let (alice, mallory) = rt.block_on(async {
            let alice = moto.create_user("alice", &role).await.expect("alice");
            let mallory = moto.create_user("mallory", "*").await.expect("mallory");
            moto.create_role("atlas-app", &[user_arn("alice")])
                .await
                .expect("role");
            (alice, mallory)
        });
        moto.enforce().expect("enforce signatures");
        Moto {
            endpoint: moto.endpoint.clone(),
            _moto: moto,
            _watchdog: None,
            alice,
            mallory,
            role_arn: role,
            alice_arn: user_arn("alice"),
            mallory_arn: user_arn("mallory"),
        }
    }

    /// One moto for the whole test binary, for scenarios that only read it (whoami and assume as
    /// alice or mallory): started once, and ended by its watchdog when the binary exits.
    pub(crate) fn shared() -> &'static Moto {
        static SHARED: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            let mut moto = Moto::start();
            moto._watchdog = Some(
                moto._moto
                    .watchdog()
                    .unwrap_or_else(|e| panic!("moto's watchdog: {e:#}")),
            );
            moto
        })
    }

    /// The environment that points the AWS SDK at this moto.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_STS", self.endpoint.clone()),
            ("AWS_ENDPOINT_URL_IAM", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    }
}

pub(crate) fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The atlas-iam binary with a clean environment: no HOME config, no AWS_*, IMDS off, no colour,
/// run in an empty directory (so no .env is picked up).
pub(crate) struct Cli {
    cmd: Command,
    pub dir: tempfile::TempDir,
}

pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The run's directory, kept until the output is dropped (files the run wrote are there).
    pub dir: tempfile::TempDir,
    /// stdout parsed and checked against the schema, once.
    pub parsed: std::sync::OnceLock<serde_json::Value>,
}

/// Every report a test parses is checked against the shipped schema (the JSON contract).
pub(crate) fn conforms(report: serde_json::Value) -> serde_json::Value {
    static VALIDATOR: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(path).expect("schema/report.schema.json"),
        )
        .expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("a valid JSON Schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the report does not conform to schema/report.schema.json: {errors:?}\n{report:#}"
    );
    report
}

impl Output {
    /// stdout as one JSON report, parsed and checked against the schema on first use.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        self.parsed
            .get_or_init(|| {
                conforms(serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
                    panic!(
                        "stdout is not one JSON document ({e}):\n{}\n--- stderr\n{}",
                        self.stdout, self.stderr
                    )
                }))
            })
            .clone()
    }

    pub(crate) fn json_stderr(&self) -> serde_json::Value {
        conforms(
            serde_json::from_str(&self.stderr).unwrap_or_else(|e| {
                panic!("stderr is not one JSON document ({e}):\n{}", self.stderr)
            }),
        )
    }

    /// Neither stream holds any of these (secrets, full key ids), nor a panic: not raw, not
    /// percent-encoded in either case, not JSON-escaped.
    #[track_caller]
    pub(crate) fn assert_absent(&self, secrets: &[&str]) {
        let forms: Vec<String> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| encodings(s))
            .collect();
        for s in &forms {
            assert!(
                !self.stdout.contains(s),
                "secret {s:.6}… in stdout:\n{}",
                self.stdout
            );
            assert!(
                !self.stderr.contains(s),
                "secret {s:.6}… in stderr:\n{}",
                self.stderr
            );
        }
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
    }

    pub(crate) fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A secret as it may appear: raw, percent-encoded (upper and lower case hex), JSON-escaped.
pub(crate) fn encodings(secret: &str) -> Vec<String> {
    let encoded: String = secret
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let mut forms = vec![
        secret.to_string(),
        encoded.clone(),
        encoded.to_ascii_lowercase(),
        json.trim_matches('"').to_string(),
    ];
    forms.sort();
    forms.dedup();
    forms
}

pub(crate) fn atlas_iam() -> Cli {
    atlas_iam_via(&[])
}

/// The binary run through a wrapper (faketime, unshare), which must be installed.
pub(crate) fn atlas_iam_via(prefix: &[&str]) -> Cli {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_atlas-iam");
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-aws-credentials"),
        )
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdin(Stdio::null());
    Cli { cmd, dir }
}

impl Cli {
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub(crate) fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Runs the binary as a child process the test controls (for signals).
    pub(crate) fn spawn(mut self) -> (std::process::Child, tempfile::TempDir) {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = self.cmd.spawn().expect("spawn atlas-iam");
        (child, self.dir)
    }

    pub(crate) fn envs(mut self, vars: Vec<(&'static str, String)>) -> Self {
        self.cmd.envs(vars);
        self
    }

    pub(crate) fn keys(self, keys: &Keys) -> Self {
        self.env("AWS_ACCESS_KEY_ID", &keys.id)
            .env("AWS_SECRET_ACCESS_KEY", &keys.secret)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(self, name: &str, content: &str) -> Self {
        std::fs::write(self.dir.path().join(name), content).expect("write file");
        self
    }

    pub(crate) fn run(mut self) -> Output {
        let program = self.cmd.get_program().to_string_lossy().into_owned();
        let out = self.cmd.output().unwrap_or_else(|e| {
            panic!(
                "cannot run {program}: {e} (is it installed? `bash .ci/setup` installs faketime)"
            )
        });
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
            parsed: Default::default(),
        }
    }
}

/// The failed stage and diagnosis of a JSON report.
pub(crate) fn failure(report: &serde_json::Value) -> (String, String) {
    let stages = report["stages"].as_array().expect("stages");
    let failed = stages
        .iter()
        .find(|s| s["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed stage in {report:#}"));
    (
        failed["stage"].as_str().unwrap_or_default().to_string(),
        failed["diagnosis"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

pub(crate) use atlas_iam::diagnosis::Stage;

impl Output {
    /// A stage of the JSON report, looked up by name.
    #[track_caller]
    pub(crate) fn stage(&self, stage: Stage) -> serde_json::Value {
        stage_of(&self.json(), stage)
    }

    /// The (stage, status) pairs of the JSON report, in order.
    pub(crate) fn statuses(&self) -> Vec<(String, String)> {
        self.json()["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .map(|s| {
                (
                    s["stage"].as_str().unwrap_or_default().to_string(),
                    s["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

/// A stage of a JSON report, looked up by name.
pub(crate) fn stage_of(report: &serde_json::Value, stage: Stage) -> serde_json::Value {
    report["stages"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["stage"] == stage.name()).cloned())
        .unwrap_or_else(|| panic!("no stage {} in {report:#}", stage.name()))
}

/// One scenario, run as JSON (and as text when it must say or hide something), with its expectations stated up front, in
/// the style of casey/just's `Test`: `Test::new(|| cli).args([..]).fails_at(Stage::Identity,
/// "signature_mismatch").exit(4).says("…").hides(&secrets).run()`. JSON gives the failing stage,
/// the kind, the exit code and that later stages were skipped; the text must say what `says`
/// names; neither stream may hold a hidden value or a panic. Returns the JSON run's output.
#[must_use = "a Test checks nothing until .run()"]
pub(crate) struct Test<'a> {
    make: Box<dyn Fn() -> Cli + 'a>,
    args: Vec<String>,
    failure: Option<(Stage, String)>,
    exit: Option<i32>,
    says: Vec<String>,
    hides: Vec<String>,
}

impl<'a> Test<'a> {
    pub(crate) fn new(make: impl Fn() -> Cli + 'a) -> Self {
        Test {
            make: Box::new(make),
            args: Vec::new(),
            failure: None,
            exit: None,
            says: Vec::new(),
            hides: Vec::new(),
        }
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Every stage passes (or warns), exit 0.
    pub(crate) fn passes(mut self) -> Self {
        self.exit = Some(0);
        self
    }

    pub(crate) fn fails_at(mut self, stage: Stage, kind: &str) -> Self {
        self.failure = Some((stage, kind.to_string()));
        self
    }

    pub(crate) fn exit(mut self, code: i32) -> Self {
        self.exit = Some(code);
        self
    }

    /// The human output says this (on the report's stream).
    pub(crate) fn says(mut self, text: &str) -> Self {
        self.says.push(text.to_string());
        self
    }

    /// Neither stream of either run holds any of these.
    pub(crate) fn hides<S: AsRef<str>>(mut self, secrets: &[S]) -> Self {
        self.hides
            .extend(secrets.iter().map(|s| s.as_ref().to_string()));
        self
    }

    #[track_caller]
    pub(crate) fn run(self) -> Output {
        let exit = self
            .exit
            .unwrap_or_else(|| panic!("state .exit(N) or .passes() for {:?}", self.args));
        let hidden: Vec<&str> = self.hides.iter().map(String::as_str).collect();
        let json = (self.make)()
            .args(&self.args)
            .args(["--format", "json"])
            .run();
        assert_eq!(
            json.code,
            exit,
            "exit code of {:?}:\n{}",
            self.args,
            json.all()
        );
        // assume keeps stdout for the credentials: its JSON report is on stderr
        let assume = self.args.first().map(String::as_str) == Some("assume");
        let report = if assume {
            assert!(
                exit == 0 || json.stdout.is_empty(),
                "a failed assume prints no credentials: {}",
                json.stdout
            );
            json.json_stderr()
        } else {
            json.json()
        };
        let text = report.to_string();
        assert_eq!(report["exit_code"], exit, "{text}");
        assert_eq!(report["ok"], exit == 0, "{text}");
        let statuses: Vec<(String, String)> = report["stages"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|s| {
                        (
                            s["stage"].as_str().unwrap_or_default().to_string(),
                            s["status"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        match &self.failure {
            None => assert!(
                statuses
                    .iter()
                    .all(|(_, st)| st == "passed" || st == "warning"),
                "every stage must pass:\n{text}"
            ),
            Some((stage, kind)) => {
                assert_eq!(
                    failure(&report),
                    (stage.name().to_string(), kind.clone()),
                    "{text}"
                );
                let after: Vec<&(String, String)> = statuses
                    .iter()
                    .skip_while(|(s, _)| s != stage.name())
                    .skip(1)
                    .collect();
                assert!(
                    after.iter().all(|(_, st)| st == "skipped"),
                    "stages after {} must be skipped: {after:?}",
                    stage.name()
                );
            }
        }
        json.assert_absent(&hidden);
        // the text run only when there is something to read in it
        if self.says.is_empty() && self.hides.is_empty() {
            return json;
        }
        let human = (self.make)().args(&self.args).run();
        assert_eq!(human.code, exit, "{}", human.all());
        // assume and uri keep stdout for their product: their report is on stderr
        let on_stderr = matches!(
            self.args.first().map(String::as_str),
            Some("assume" | "uri")
        );
        let report_text = if on_stderr {
            &human.stderr
        } else {
            &human.stdout
        };
        for text in &self.says {
            assert!(
                report_text.contains(text.as_str()),
                "human output does not say `{text}`:\n{}",
                human.all()
            );
        }
        human.assert_absent(&hidden);
        json
    }
}
