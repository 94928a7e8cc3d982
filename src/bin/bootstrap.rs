//! atlas-iam as an AWS Lambda function (runtime `provided.al2023`): `bootstrap` loops on the
//! Lambda Runtime API with the official runtime crate and runs the probe in its own process for
//! each event, with the function's own role, subnets and environment. The driver's client is kept
//! between the invocations of a warm execution environment, as the function's authors are told
//! to keep theirs, so that the first (cold) invocation and the next (warm) ones show what a
//! function pays for each. The main binary keeps no Lambda code; the runtime crate is linked into
//! this one only.
//!
//! The event: `{"command": "ping" | "list-collections" | "roundtrip" | "whoami", "args": […]}`
//! with the command line's flags, or `{}` (ping with the function's environment). The response:
//! the JSON report (same schema), with `lambda` added. A failed check is a successful invocation
//! whose report says `ok: false`; only bad input or a fault of the function itself is an
//! invocation error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

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

#[tokio::main]
async fn main() -> Result<(), Error> {
    atlas_iam::keep_clients();
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
    // the errors name the event's shape, never its values: an event may carry a connection
    // string with credentials in it, and the runtime logs invocation errors
    let event: Event = serde_json::from_value(event.payload).map_err(|_| {
        Error::from(
            "the event is not {\"command\": COMMAND, \"args\": [FLAG, …]}: `command` is a \
             string, `args` an array of strings, and no other field is taken",
        )
    })?;
    let command = event.command.unwrap_or_else(|| "ping".to_string());
    if !COMMANDS.contains(&command.as_str()) {
        return Err(Error::from(format!(
            "`command` is not one the function runs: {}",
            COMMANDS.join(", ")
        )));
    }
    let lambda = lambda_facts(number, &left);
    let mut report = match refused_flag(&event.args) {
        Some(flag) => {
            let refused = atlas_iam::usage_report(
                command_name(&command),
                &format!(
                    "{flag} is not taken in an event: the function answers with the JSON report, \
                     never shows secrets and reads no file its caller names"
                ),
            );
            serde_json::to_value(&refused).map_err(|e| Error::from(format!("the report: {e}")))?
        }
        None => Box::pin(run_check(&command, &event.args, left)).await?,
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

/// The command line of an event, parsed as the binary parses its own.
fn command_name(command: &str) -> atlas_iam::report::CommandName {
    atlas_iam::report::CommandName::from_name(command)
        .unwrap_or(atlas_iam::report::CommandName::Ping)
}

/// Runs the check in this process, within the invocation's time.
async fn run_check(command: &str, args: &[String], left: Duration) -> Result<Value, Error> {
    let mut argv = vec!["atlas-iam".to_string(), command.to_string()];
    argv.extend(args.iter().cloned());
    // within the invocation's deadline, unless the event gave its own
    if !args
        .iter()
        .any(|a| a == "--timeout" || a.starts_with("--timeout="))
    {
        let secs = left
            .saturating_sub(Duration::from_secs(1))
            .as_secs()
            .clamp(1, 900);
        argv.extend(["--timeout".to_string(), secs.to_string()]);
    }
    argv.extend(["--format".to_string(), "json".to_string()]);
    let env = atlas_iam::config::Env::from_process();
    let report = match atlas_iam::cli::Cli::try_parse_from(&argv) {
        Err(e) => {
            let scrubber = atlas_iam::credentials::env_scrubber(&env);
            let text = atlas_iam::secret::redact_tokens(&scrubber.scrub(&e.render().to_string()));
            atlas_iam::usage_report(command_name(command), text.trim())
        }
        Ok(cli) => {
            // the function's environment is its configuration: no env file is read
            let env_file = atlas_iam::envfile::EnvFile::Absent;
            match atlas_iam::configure(&cli, env_file, env) {
                Err(report) => *report,
                Ok(cfg) => Box::pin(atlas_iam::run(&cfg, &cli.command, &atlas_iam::Silent)).await,
            }
        }
    };
    serde_json::to_value(&report).map_err(|e| Error::from(format!("the report: {e}")))
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
