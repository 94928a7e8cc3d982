//! A profile's `credential_process`, run by atlas-iam rather than the SDK, under the rules every
//! child and every reply follows here: its output read with a cap, asynchronously, within the
//! run's time; its whole process group ended when it is done (a helper that exits but leaves a
//! grandchild holding its stdout is neither waited for nor left running).
//!
//! The output is the SDK's documented format: `{"Version": 1, "AccessKeyId", "SecretAccessKey",
//! "SessionToken"?, "Expiration"?}` (the AWS CLI's "Sourcing credentials with an external
//! process").

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{self, error::CredentialsError, ProvideCredentials};
use aws_credential_types::Credentials;
use tokio::io::{AsyncRead, AsyncReadExt};

/// What the helper may print: credentials are a few kilobytes.
pub(super) const MAX_STDOUT: usize = 64 * 1024;
/// What is kept of its stderr, for the diagnosis.
pub(super) const MAX_STDERR: usize = 16 * 1024;
/// How long output may still come once the helper itself has exited.
const AFTER_EXIT: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(super) struct CredentialProcess {
    command: String,
    budget: Duration,
}

impl CredentialProcess {
    pub(super) fn new(command: &str, budget: Duration) -> CredentialProcess {
        CredentialProcess {
            command: command.to_string(),
            budget,
        }
    }
}

impl ProvideCredentials for CredentialProcess {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(run(&self.command, self.budget))
    }
}

/// Kills the helper's process group when dropped: on success, on failure, and when the run's
/// deadline drops the future.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // `kill -KILL -- -PGID` through kill(1): no unsafe code in this crate
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Reads into `into` until end of file or `cap` bytes; what was read stays there whatever
/// happens to the task.
async fn collect(mut r: impl AsyncRead + Unpin, cap: usize, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let Ok(mut v) = into.lock() else { return };
                let room = (cap + 1).saturating_sub(v.len());
                v.extend_from_slice(&buf[..n.min(room)]);
                if v.len() > cap {
                    return;
                }
            }
        }
    }
}

fn taken(b: &Arc<Mutex<Vec<u8>>>) -> Vec<u8> {
    b.lock().map(|v| v.clone()).unwrap_or_default()
}

async fn run(command: &str, budget: Duration) -> provider::Result {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        CredentialsError::provider_error(format!("credential_process could not be started: {e}"))
    })?;
    let _group = Group(child.id());
    let (out, err) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(collect(s, MAX_STDOUT, out.clone()))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(collect(s, MAX_STDERR, err.clone()))),
    ];
    let status = match tokio::time::timeout(budget, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            return Err(CredentialsError::provider_error(format!(
                "credential_process could not be waited for: {e}"
            )))
        }
        Err(_) => {
            return Err(CredentialsError::provider_timed_out(budget));
        }
    };
    // Output still in the pipes comes at once; a grandchild that holds them is not waited for.
    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        if tokio::time::timeout(AFTER_EXIT, reader).await.is_err() {
            abort.abort();
        }
    }
    let (stdout, stderr) = (taken(&out), taken(&err));
    let said = String::from_utf8_lossy(&stderr[..stderr.len().min(MAX_STDERR)]).into_owned();
    if !status.success() {
        let code = status
            .code()
            .map_or("a signal".to_string(), |c| format!("status {c}"));
        return Err(CredentialsError::provider_error(format!(
            "credential_process exited with {code}: {}",
            said.trim()
        )));
    }
    if stdout.len() > MAX_STDOUT {
        return Err(CredentialsError::provider_error(format!(
            "credential_process printed more than {MAX_STDOUT} bytes: not credentials"
        )));
    }
    parse(&stdout)
}

/// The helper's JSON, as the SDK reads it.
pub(super) fn parse(stdout: &[u8]) -> provider::Result {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        version: Option<i64>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        session_token: Option<String>,
        expiration: Option<String>,
    }
    let bad = |why: &str| {
        CredentialsError::provider_error(format!(
            "credential_process printed no credentials: {why}"
        ))
    };
    let o: Output = serde_json::from_slice(stdout).map_err(|_| bad("not a JSON object"))?;
    if o.version != Some(1) {
        return Err(bad("its Version is not 1"));
    }
    let (Some(id), Some(secret)) = (o.access_key_id, o.secret_access_key) else {
        return Err(bad("AccessKeyId or SecretAccessKey is missing"));
    };
    let expiry = match o.expiration {
        None => None,
        Some(at) => Some(
            aws_smithy_types::DateTime::from_str(
                at.trim(),
                aws_smithy_types::date_time::Format::DateTime,
            )
            .ok()
            .and_then(|t| SystemTime::try_from(t).ok())
            .ok_or_else(|| bad("its Expiration is not an RFC 3339 time"))?,
        ),
    };
    Ok(Credentials::new(
        id,
        secret,
        o.session_token,
        expiry,
        "CredentialProcess",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_output_is_read() {
        let c = parse(br#"{"Version":1,"AccessKeyId":"AKIAX","SecretAccessKey":"s","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z"}"#)
            .expect("credentials");
        assert_eq!((c.access_key_id(), c.session_token()), ("AKIAX", Some("t")));
        assert!(c.expiry().is_some());
        for bad in [
            &b"not json"[..],
            br#"{"Version":2,"AccessKeyId":"a","SecretAccessKey":"b"}"#,
            br#"{"Version":1,"AccessKeyId":"a"}"#,
            br#"{"Version":1,"AccessKeyId":"a","SecretAccessKey":"b","Expiration":"soon"}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
