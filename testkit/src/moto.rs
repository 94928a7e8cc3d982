//! moto_server (STS and IAM) on a free loopback port, and IAM provisioning. Signatures and
//! policies are enforced except while provisioning (moto's INITIAL_NO_AUTH_ACTION_COUNT,
//! reset through /moto-api/reset-auth).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
use serde::Serialize;

pub const ACCOUNT: &str = "123456789012";

#[derive(Clone, Debug, Serialize)]
pub struct Keys {
    pub id: String,
    pub secret: String,
}

/// Where moto_server is: MOTO_SERVER, the project's .venv, or PATH.
pub fn moto_server_path() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("moto_server");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "moto_server not found (MOTO_SERVER, {}, PATH): install it with `bash .ci/setup` \
         (python3 -m venv .venv && .venv/bin/pip install -r requirements-test.txt)",
        venv.display()
    )
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (Linux: /proc/net/tcp
/// and /proc/PID/fd). Elsewhere, a connection that succeeds is taken as proof.
fn listens(pid: u32, port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return true;
    };
    let local = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A"))
                .then(|| f.get(9).map(|i| format!("socket:[{i}]")))
                .flatten()
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|t| t.to_str().map(str::to_string))
            .is_some_and(|t| inodes.contains(&t))
    })
}

pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

/// Ends a moto when the process that started it ends, however it ends (a test binary's statics
/// are never dropped): a `sh` that waits for its stdin to close, then kills the server. Keep it
/// as long as the server is to run.
pub struct Watchdog {
    _stdin: std::process::ChildStdin,
    _child: Child,
}

impl Moto {
    /// A watchdog that kills this server once this process's end closes the pipe to it.
    pub fn watchdog(&self) -> anyhow::Result<Watchdog> {
        let mut child = Command::new("sh")
            .args(["-c", &format!("read _; kill {}", self.child.id())])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the watchdog shell")?;
        let stdin = child.stdin.take().context("the watchdog's stdin")?;
        Ok(Watchdog {
            _stdin: stdin,
            _child: child,
        })
    }

    pub fn start() -> anyhow::Result<Moto> {
        let exe = moto_server_path()?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let mut child = Command::new(&exe)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", "1000000")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                // The port answers, and it is our child that listens on it: another test may
                // have taken the port between free_port() and moto's bind.
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && listens(child.id(), port) {
                    let moto = Moto {
                        child,
                        port,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                    return Ok(moto);
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("moto_server exited with {status}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = format!("moto_server did not listen on port {port}");
            }
        }
        bail!("{last}")
    }

    fn reset_auth(&self, count: u64) -> anyhow::Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        let body = count.to_string();
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        if !out.starts_with("HTTP/1.1 200") && !out.starts_with("HTTP/1.0 200") {
            bail!("moto reset-auth failed: {out}");
        }
        Ok(())
    }

    /// Lets unsigned provisioning requests through.
    pub fn open(&self) -> anyhow::Result<()> {
        self.reset_auth(1_000_000)
    }

    /// Checks signatures and policies of every request from now on.
    pub fn enforce(&self) -> anyhow::Result<()> {
        self.reset_auth(0)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        let conf = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                "AKIAPROVISIONING0000",
                "provisioning-secret-provisioning-secret0",
                None,
                None,
                "local-atlas",
            ))
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }

    /// An IAM user with keys; its policy allows sts:AssumeRole on `assume_resource`, and
    /// iam:GetRole and sts:GetCallerIdentity everywhere.
    pub async fn create_user(&self, name: &str, assume_resource: &str) -> anyhow::Result<Keys> {
        let iam = self.iam();
        iam.create_user()
            .user_name(name)
            .send()
            .await
            .context("create user")?;
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": assume_resource},
                {"Effect": "Allow", "Action": ["iam:GetRole", "sts:GetCallerIdentity"], "Resource": "*"}
            ]
        });
        iam.put_user_policy()
            .user_name(name)
            .policy_name("local-atlas")
            .policy_document(policy.to_string())
            .send()
            .await
            .context("put user policy")?;
        let out = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .context("create access key")?;
        let key = out.access_key().context("no access key")?;
        Ok(Keys {
            id: key.access_key_id().to_string(),
            secret: key.secret_access_key().to_string(),
        })
    }

    /// Lets sessions of the role `name` call `actions` on any resource.
    pub async fn allow_role(&self, name: &str, actions: &[&str]) -> anyhow::Result<()> {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
        });
        self.iam()
            .put_role_policy()
            .role_name(name)
            .policy_name("local-atlas")
            .policy_document(policy.to_string())
            .send()
            .await
            .context("put role policy")?;
        Ok(())
    }

    /// A role whose trust policy names these principals; returns its ARN.
    pub async fn create_role(&self, name: &str, trusted: &[String]) -> anyhow::Result<String> {
        self.create_role_at("/", name, trusted).await
    }

    /// A role with an IAM path (`/svc/`): its ARN is `arn:aws:iam::ACCT:role/svc/NAME`.
    pub async fn create_role_at(
        &self,
        path: &str,
        name: &str,
        trusted: &[String],
    ) -> anyhow::Result<String> {
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}]
        });
        let out = self
            .iam()
            .create_role()
            .role_name(name)
            .path(path)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .context("create role")?;
        Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same secret with its first character changed: certainly wrong, same length.
pub fn mangle(secret: &str) -> String {
    let mut chars = secret.chars();
    let first = chars.next().unwrap_or('A');
    let other = if first == 'A' { 'B' } else { 'A' };
    format!("{other}{}", chars.as_str())
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_ours_only_when_our_process_listens_on_it() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert!(listens(std::process::id(), port));
        // pid 1 (init) does not listen on our port
        assert!(!listens(1, port));
        drop(listener);
        assert!(!listens(std::process::id(), port));
    }
}
