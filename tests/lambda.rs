//! atlas-iam as a Lambda function, run under cargo-lambda's Runtime API emulator (`cargo lambda
//! watch --only-lambda-apis`, from PyPI's cargo-lambda in .venv) against the local Atlas: the
//! `bootstrap` binary polls the emulator, and `cargo lambda invoke` sends the events.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{conforms, project_root};
use atlas_iam_testkit::moto::Keys;
use atlas_iam_testkit::stack::SessionKeys;
use atlas_iam_testkit::{Role, Stack, StackOptions};

fn cargo_lambda() -> PathBuf {
    let path = project_root().join(".venv/bin/cargo-lambda");
    assert!(
        path.exists(),
        "the Lambda tests need cargo-lambda's emulator: run `bash .ci/setup` (it installs \
         cargo-lambda from requirements-test.txt into .venv), or `pip install cargo-lambda`"
    );
    path
}

/// A child ended (by its id) when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The emulator on 127.0.0.1, and the function polling it with `env`.
struct Function {
    port: u16,
    _emulator: Running,
    function: Option<Running>,
    logs: tempfile::NamedTempFile,
    _dir: tempfile::TempDir,
}

impl Function {
    fn start(env: &[(String, String)]) -> Function {
        let port = free_port();
        let dir = tempfile::tempdir().expect("dir");
        // the emulator reads `cargo metadata` where it starts: a package with no dependencies
        std::fs::create_dir(dir.path().join("src")).expect("src");
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").expect("main.rs");
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"function\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
        )
        .expect("Cargo.toml");
        let emulator = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch");
        let emulator = Running(emulator);
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "the emulator did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let logs = tempfile::NamedTempFile::new().expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("ATLAS_IAM_LAMBDA_VPC", "false")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(logs.reopen().expect("log"))
            .stderr(logs.reopen().expect("log"));
        let function = Running(cmd.spawn().expect("bootstrap"));
        Function {
            port,
            _emulator: emulator,
            function: Some(function),
            logs,
            _dir: dir,
        }
    }

    /// Sends one event; Ok(the response) or Err(the invocation error's text).
    fn invoke(&self, event: &serde_json::Value) -> Result<serde_json::Value, String> {
        let out = Command::new(cargo_lambda())
            .args(["lambda", "invoke", "-A", "127.0.0.1", "-P"])
            .arg(self.port.to_string())
            .args(["--output-format", "json", "--data-ascii"])
            .arg(event.to_string())
            .arg("_")
            .stdin(Stdio::null())
            .output()
            .expect("cargo lambda invoke");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            return Err(format!("{stdout}{stderr}"));
        }
        serde_json::from_str(&stdout).map_err(|e| format!("not JSON ({e}): {stdout}{stderr}"))
    }

    /// The function's own output (its log), once it has been stopped.
    fn stop(mut self) -> String {
        drop(self.function.take());
        let mut text = String::new();
        let _ = std::fs::File::open(self.logs.path()).and_then(|mut f| f.read_to_string(&mut text));
        text
    }
}

fn stack() -> Stack {
    Stack::start(StackOptions::default()).expect("local Atlas stack (moto from `bash .ci/setup`)")
}

/// The function's environment: its execution role's temporary keys, as Lambda sets them, and
/// the stack's endpoints.
fn function_env(s: &Stack, session: &SessionKeys) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = s
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("AWS_ACCESS_KEY_ID".into(), session.id.clone()));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), session.secret.clone()));
    env.push(("AWS_SESSION_TOKEN".into(), session.token.clone()));
    env
}

fn session(s: &Stack) -> (SessionKeys, String) {
    let account = s.account.clone().expect("account");
    let client: Keys = account.client.clone();
    let session = s
        .assume(&client, &account.role_arn, "lambda-exec")
        .expect("assume");
    (session, account.role_arn)
}

fn saslstarts(s: &Stack) -> usize {
    s.atlas
        .commands()
        .iter()
        .filter(|c| c.as_str() == "saslstart")
        .count()
}

#[test]
fn the_function_answers_with_the_report_cold_then_warm() {
    let s = stack();
    let (session, role) = session(&s);
    s.remove_db_user(&role);
    let f = Function::start(&function_env(&s, &session));
    let uri = s.uri();
    let ping = serde_json::json!({"command": "ping", "args": ["--uri", uri]});
    // no database user yet: the refusal is the diagnosis, in a successful invocation
    let refused = conforms(f.invoke(&ping).expect("a refused ping is still a response"));
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["exit_code"], 6, "{refused:#}");
    let (stage, kind) = crate::common::failure(&refused);
    assert_eq!(
        (stage.as_str(), kind.as_str()),
        ("auth", "atlas_user_missing"),
        "{refused:#}"
    );
    assert_eq!(refused["lambda"]["cold_start"], true, "{refused:#}");
    assert_eq!(refused["lambda"]["function_name"], "_");
    assert_eq!(refused["lambda"]["memory_mb"], 512);
    assert_eq!(refused["lambda"]["vpc"], false);
    // the user registered: the same instance, warm, authenticates and passes
    s.set_db_user(&role, vec![Role::ReadWrite("test".into())]);
    let before = saslstarts(&s);
    let first = conforms(f.invoke(&ping).expect("a passing ping"));
    assert_eq!(first["ok"], true, "{first:#}");
    assert_eq!(first["lambda"]["cold_start"], false, "{first:#}");
    assert_eq!(first["lambda"]["invocation"], 2);
    assert_eq!(saslstarts(&s) - before, 1, "{:?}", s.atlas.commands());
    // and the next invocation reuses the client's authenticated connection: no new login
    let before = saslstarts(&s);
    let second = conforms(f.invoke(&ping).expect("a second ping"));
    assert_eq!(second["ok"], true, "{second:#}");
    assert_eq!(saslstarts(&s), before, "{:?}", s.atlas.commands());
    let auth = crate::common::stage_of(&second, crate::common::Stage::Auth);
    assert!(
        auth["detail"]
            .as_str()
            .is_some_and(|d| d.contains("kept by this warm process")),
        "{auth}"
    );
    // bad args: a report with exit code 2; a flag the function refuses, too
    for args in [vec!["--bogus"], vec!["--uri", &uri, "--show-secrets"]] {
        let bad = conforms(
            f.invoke(&serde_json::json!({"command": "whoami", "args": args}))
                .expect("a usage error is a response"),
        );
        assert_eq!(bad["exit_code"], 2, "{bad:#}");
        assert_eq!(
            bad["stages"][0]["diagnosis"]["kind"], "usage_error",
            "{bad:#}"
        );
    }
    // bad input is an invocation error
    let wrong = f.invoke(&serde_json::json!({"command": "assume"}));
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("not one the function runs")),
        "{wrong:?}"
    );
    // an event of another shape: its values are not echoed (a string may carry credentials)
    let embedded = "mongodb://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY@h/";
    let shaped = f.invoke(&serde_json::json!({"command": "ping", "args": embedded}));
    assert!(
        shaped
            .as_ref()
            .is_err_and(|e| e.contains("an array of strings") && !e.contains("wJalrXUtnFEMI")),
        "{shaped:?}"
    );
    let responses = [first, second, refused].map(|r| r.to_string()).join("\n");
    let logs = f.stop();
    assert!(logs.contains("invocation 1 (cold)"), "{logs}");
    // the function's own secrets, planted as Lambda plants them, in no response and no log
    for secret in [&session.secret, &session.token] {
        for text in [&responses, &logs] {
            assert!(!text.contains(secret.as_str()), "a secret leaked: {text}");
        }
    }
    assert!(
        !responses.contains(&session.id) && !logs.contains(&session.id),
        "the full access key id leaked"
    );
}

/// `{}` runs ping with the function's own environment (ATLAS_IAM_CLUSTER, MONGODB_URI…).
#[test]
fn an_empty_event_pings_with_the_functions_environment() {
    let s = stack();
    let (session, role) = session(&s);
    s.set_db_user(&role, vec![Role::ReadWrite("test".into())]);
    let mut env = function_env(&s, &session);
    env.push(("MONGODB_URI".into(), s.uri()));
    let f = Function::start(&env);
    let report = conforms(f.invoke(&serde_json::json!({})).expect("a response"));
    assert_eq!(report["command"], "ping");
    assert_eq!(report["ok"], true, "{report:#}");
    let logs = f.stop();
    let mut lines = BufReader::new(logs.as_bytes()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("atlas-iam ping: invocation 1"))),
        "{logs}"
    );
}
