//! atlas-iam as an AWS Lambda function (runtime `provided.al2023`): this small `bootstrap`
//! loops on the Lambda Runtime API with the official runtime crate and, for each event, runs the
//! `atlas-iam` binary shipped beside it, so that the probe runs with the function's own role,
//! subnets and environment. The main binary keeps no Lambda code; the runtime crate is linked
//! into this one only.
//!
//! The event: `{"command": "ping" | "list-collections" | "roundtrip" | "whoami", "args": […]}`
//! with the command line's flags, or `{}` (ping with the function's environment). The response:
//! the JSON report (same schema), with `lambda` added. A failed check is a successful invocation
//! whose report says `ok: false`; only bad input or a fault of the function itself is an
//! invocation error.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// The commands an event may run: those that report and print no credentials.
const COMMANDS: [&str; 4] = ["ping", "list-collections", "roundtrip", "whoami"];

/// Flags an event may not give: the report is the response (its format is fixed), secrets are
/// never shown, and the function reads no file named by its caller.
const REFUSED_FLAGS: [&str; 6] = [
    "--show-secrets",
    "--format",
    "--color",
    "--env-file",
    "--tls-ca-file",
    "--app",
];

/// The most the report may hold (a report is a few kilobytes).
const MAX_REPORT: u64 = 4 << 20;

/// Invocations served by this process: the first is the cold start.
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let started = Instant::now();
    let number = INVOCATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    // the invocation's deadline (ms since the epoch, from the Runtime API)
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
    let event: Event = serde_json::from_value(event.payload).map_err(|e| {
        Error::from(format!(
            "the event is not {{\"command\": COMMAND, \"args\": [FLAGS…]}}: {e}"
        ))
    })?;
    let command = event.command.unwrap_or_else(|| "ping".to_string());
    if !COMMANDS.contains(&command.as_str()) {
        return Err(Error::from(format!(
            "command `{command}` is not one the function runs: {}",
            COMMANDS.join(", ")
        )));
    }
    let lambda = lambda_facts(number, &left);
    let mut report = match refused_flag(&event.args) {
        Some(flag) => usage_report(
            &command,
            &format!("{flag} is not taken in an event: the function answers with the JSON report, never shows secrets and reads no file its caller names"),
        ),
        None => run_cli(&command, &event.args, left).await?,
    };
    let elapsed = started.elapsed().as_millis() as u64;
    if let Some(obj) = report.as_object_mut() {
        let mut lambda = lambda;
        lambda["elapsed_ms"] = json!(elapsed);
        obj.insert("lambda".to_string(), lambda);
    }
    // the function's own log line: what ran and how it ended, never the report's texts
    println!(
        "atlas-iam {command}: invocation {number} ({}), exit code {}, {elapsed} ms",
        if number == 1 { "cold" } else { "warm" },
        report["exit_code"]
    );
    Ok(scrub(report))
}

fn refused_flag(args: &[String]) -> Option<&'static str> {
    REFUSED_FLAGS.iter().copied().find(|flag| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    })
}

/// What only a Lambda knows, from its environment (the Runtime API's documented variables).
fn lambda_facts(number: u64, left: &Duration) -> Value {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    json!({
        "function_name": var("AWS_LAMBDA_FUNCTION_NAME"),
        "function_version": var("AWS_LAMBDA_FUNCTION_VERSION"),
        "memory_mb": var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse::<u64>().ok()),
        "region": var("AWS_REGION"),
        "cold_start": number == 1,
        "invocation": number,
        // the template sets it from its subnets: Lambda's environment does not say
        "vpc": var("ATLAS_IAM_LAMBDA_VPC").map(|v| v == "true"),
        "time_left_ms": left.as_millis() as u64,
    })
}

/// The report of a refused flag, shaped as the binary's usage report (exit code 2).
fn usage_report(command: &str, cause: &str) -> Value {
    json!({
        "schema_version": 1,
        "command": command,
        "ok": false,
        "exit_code": 2,
        "target": null,
        "credentials": null,
        "identity": null,
        "stages": [{
            "stage": "config",
            "status": "failed",
            "elapsed_ms": 0,
            "detail": "",
            "diagnosis": {
                "kind": "usage_error",
                "cause": cause,
                "hint": "give the check's flags in `args` (--uri, --cluster, --role-arn, --db, --timeout, --atlas…); the report is the response",
            }
        }]
    })
}

/// The atlas-iam binary shipped beside this one (`ATLAS_IAM_LAMBDA_CLI` overrides it).
fn cli_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ATLAS_IAM_LAMBDA_CLI") {
        return p.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("atlas-iam")))
        .unwrap_or_else(|| "atlas-iam".into())
}

/// Runs the check within the invocation's time, and reads its report (bounded).
async fn run_cli(command: &str, args: &[String], left: Duration) -> Result<Value, Error> {
    let mut cmd = tokio::process::Command::new(cli_path());
    cmd.arg(command).args(args);
    // within the invocation's deadline, unless the event gave its own
    if !args
        .iter()
        .any(|a| a == "--timeout" || a.starts_with("--timeout="))
    {
        let secs = left
            .saturating_sub(Duration::from_secs(1))
            .as_secs()
            .clamp(1, 900);
        cmd.args(["--timeout", &secs.to_string()]);
    }
    cmd.env("ATLAS_IAM_FORMAT", "json")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::from(format!("cannot run {}: {e}", cli_path().display())))?;
    let mut out = Vec::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let read = async {
        stdout.take(MAX_REPORT).read_to_end(&mut out).await?;
        child.wait().await
    };
    let bound = left + Duration::from_secs(2);
    match tokio::time::timeout(bound, read).await {
        Err(_) => {
            return Err(Error::from(
                "atlas-iam did not end within the invocation's time",
            ))
        }
        Ok(Err(e)) => return Err(Error::from(format!("reading atlas-iam's report: {e}"))),
        Ok(Ok(_status)) => {}
    }
    serde_json::from_slice(&out)
        .map_err(|e| Error::from(format!("atlas-iam's output is not a report: {e}")))
}

/// The function's own secrets never leave it, whatever a text carries: the report is scrubbed
/// by atlas-iam, and again here for the execution role's keys.
fn scrub(report: Value) -> Value {
    let secrets: Vec<String> = [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    ]
    .iter()
    .filter_map(|n| std::env::var(n).ok())
    .filter(|v| v.len() >= 8)
    .collect();
    if secrets.is_empty() {
        return report;
    }
    let mut text = report.to_string();
    for s in &secrets {
        text = text.replace(s.as_str(), "[redacted]");
    }
    serde_json::from_str(&text).unwrap_or(report)
}
