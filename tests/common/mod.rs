//! Test helpers: a moto server (STS and IAM) provisioned like a small AWS account, and the
//! atlas-iam binary run with a clean environment.
#![allow(dead_code)] // each test binary uses a part of this module

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};

pub const ACCOUNT: &str = "123456789012";

#[derive(Clone, Debug)]
pub struct Keys {
    pub id: String,
    pub secret: String,
}

/// A moto_server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// Trusted by `role_arn`; its own policy allows sts:AssumeRole on that role only.
    pub alice: Keys,
    /// Not trusted by the role; its own policy allows sts:AssumeRole on every role.
    pub mallory: Keys,
    pub role_arn: String,
    pub alice_arn: String,
    pub mallory_arn: String,
}

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// moto_server from the project's virtualenv, or MOTO_SERVER; a clear failure otherwise.
pub fn moto_server_path() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let p = project_root().join(".venv/bin/moto_server");
    assert!(
        p.exists(),
        "moto_server not found at {}: install it with `python3 -m venv .venv && \
         .venv/bin/pip install 'moto[server]>=5,<6'` (or run `bash .ci/setup`)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn http_post(port: u16, path: &str, body: &str) -> String {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

impl Moto {
    pub fn start() -> Moto {
        let exe = moto_server_path();
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // signatures and policies are checked once provisioning is done
                .env("INITIAL_NO_AUTH_ACTION_COUNT", "1000000")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            if wait_for_port(port, &mut child) {
                return Moto::provision(child, port);
            }
            let _ = child.kill();
            let _ = child.wait();
            last_error = format!("moto_server did not listen on port {port}");
        }
        panic!("{last_error}");
    }

    fn provision(child: Child, port: u16) -> Moto {
        let endpoint = format!("http://127.0.0.1:{port}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (alice, mallory, role_arn) = rt.block_on(async {
            let conf = aws_sdk_iam::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .endpoint_url(&endpoint)
                .credentials_provider(Credentials::new(
                    "AKIAPROVISIONING0000",
                    "provisioning-secret-provisioning-secret0",
                    None,
                    None,
                    "test",
                ))
                .build();
            let iam = aws_sdk_iam::Client::from_conf(conf);
            let role_name = "atlas-app";
            let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/{role_name}");
            let trust = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/alice"}},"Action":"sts:AssumeRole"}}]}}"#
            );
            iam.create_role()
                .role_name(role_name)
                .assume_role_policy_document(trust)
                .send()
                .await
                .expect("create role");
            let mut keys = Vec::new();
            for (user, resource) in [("alice", role_arn.as_str()), ("mallory", "*")] {
                iam.create_user().user_name(user).send().await.expect("create user");
                let policy = format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{resource}"}},{{"Effect":"Allow","Action":["iam:GetRole","sts:GetCallerIdentity"],"Resource":"*"}}]}}"#
                );
                iam.put_user_policy()
                    .user_name(user)
                    .policy_name("atlas-iam-test")
                    .policy_document(policy)
                    .send()
                    .await
                    .expect("put user policy");
                let key = iam
                    .create_access_key()
                    .user_name(user)
                    .send()
                    .await
                    .expect("create access key");
                let key = key.access_key().expect("access key");
                keys.push(Keys {
                    id: key.access_key_id().to_string(),
                    secret: key.secret_access_key().to_string(),
                });
            }
            let mallory = keys.pop().expect("mallory");
            let alice = keys.pop().expect("alice");
            (alice, mallory, role_arn)
        });
        let reply = http_post(port, "/moto-api/reset-auth", "0");
        assert!(reply.contains("200"), "moto reset-auth failed: {reply}");
        Moto {
            child,
            endpoint,
            alice,
            mallory,
            role_arn,
            alice_arn: format!("arn:aws:iam::{ACCOUNT}:user/alice"),
            mallory_arn: format!("arn:aws:iam::{ACCOUNT}:user/mallory"),
        }
    }

    /// The environment that points the AWS SDK at this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_STS", self.endpoint.clone()),
            ("AWS_ENDPOINT_URL_IAM", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The atlas-iam binary with a clean environment: no HOME config, no AWS_*, IMDS off, no colour,
/// run in an empty directory (so no .env is picked up).
pub struct Cli {
    cmd: Command,
    pub dir: tempfile::TempDir,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn json_stderr(&self) -> serde_json::Value {
        serde_json::from_str(&self.stderr)
            .unwrap_or_else(|e| panic!("stderr is not one JSON document ({e}):\n{}", self.stderr))
    }

    /// Neither stream holds any of these (secrets, full key ids), nor a panic.
    pub fn assert_absent(&self, secrets: &[&str]) {
        for s in secrets {
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

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn atlas_iam() -> Cli {
    atlas_iam_via(&[])
}

/// The binary run through a wrapper (faketime, unshare), which must be installed.
pub fn atlas_iam_via(prefix: &[&str]) -> Cli {
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
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    pub fn envs(mut self, vars: Vec<(&'static str, String)>) -> Self {
        self.cmd.envs(vars);
        self
    }

    pub fn keys(self, keys: &Keys) -> Self {
        self.env("AWS_ACCESS_KEY_ID", &keys.id)
            .env("AWS_SECRET_ACCESS_KEY", &keys.secret)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(self, name: &str, content: &str) -> Self {
        std::fs::write(self.dir.path().join(name), content).expect("write file");
        self
    }

    pub fn run(mut self) -> Output {
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
        }
    }
}

/// The failed stage and diagnosis of a JSON report.
pub fn failure(report: &serde_json::Value) -> (String, String) {
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
