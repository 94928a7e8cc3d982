//! atlas-iam as a library. `configure` validates the command line and the environment into a
//! `Config` (or a report of why it cannot); `run` takes that config and a command through their
//! stages to a `Report`, which the renderers print. Failures are data: a failed stage carries a
//! diagnosis, later stages are skipped, and the exit code follows the first failed stage. The
//! library never writes to stdout or stderr; progress is a callback the caller supplies.

// The library's surface is what the binary and the integration tests use: the `pub` modules
// below, `configure`, `run`, `usage_report` and the runner's `Passed`, `Progress` and `Silent`.
// The private modules are the engine; the `unreachable_pub` lint keeps their items `pub(crate)`.
pub mod app;
mod atlas;
pub mod children;
pub mod cli;
mod commands;
pub mod config;
pub mod credentials;
pub mod diagnosis;
pub mod drivers;
pub mod envfile;
mod files;
pub mod identity;
pub mod probe;
pub mod render;
pub mod report;
mod runner;
pub mod secret;
mod timing;
pub mod uri;
mod variables;
pub mod worker;

use std::time::Instant;

use crate::cli::{Cli, Command, Repeat};
use crate::config::{Config, Env};
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::envfile::EnvFile;
pub use crate::probe::auth::keep_clients;
use crate::probe::command::ProbeCommand;
use crate::report::Report;
use crate::runner::Runner;
pub use crate::runner::{Passed, Progress, Silent};

/// The command line and the environment as a validated `Config`; when they cannot make one, the
/// finished report of the failed config stage (the URI, if any, shown redacted).
pub fn configure(cli: &Cli, env_file: EnvFile, env: Env) -> Result<Config, Box<Report>> {
    let started = Instant::now();
    let uri = cli.global.uri.as_deref();
    let mut scrubber = commands::initial_scrubber(&env, uri);
    for flag in [
        &cli.global.atlas_private_key,
        &cli.global.atlas_client_secret,
    ]
    .into_iter()
    .flatten()
    {
        scrubber.add_secret(flag.trim());
    }
    match Config::from_args(&cli.global, env_file, env) {
        Ok(cfg) => Ok(cfg),
        Err(d) => {
            let mut runner = Runner::new(cli.command.name(), cli.timeout(), scrubber, &Silent);
            runner.set_target(uri.map(uri::redact));
            runner.record(Stage::Config, Err(d), started.elapsed().as_millis() as u64);
            Err(Box::new(runner.finish()))
        }
    }
}

/// The report of a command line clap refused (exit 2), for `--format json`: a CI job that parses
/// stdout gets a document here too. `message` must already be scrubbed.
pub fn usage_report(command: report::CommandName, message: &str) -> Report {
    let mut runner = Runner::new(
        command,
        std::time::Duration::from_secs(1),
        secret::Scrubber::new(),
        &Silent,
    );
    let text: String = message
        .lines()
        .map(|l| l.trim())
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.trim_start_matches("error: ").to_string();
    let d = Diagnosis::new(
        Kind::UsageError,
        text,
        "see `atlas-iam --help` (or `atlas-iam COMMAND --help`)",
    );
    runner.record(Stage::Config, Err(d), 0);
    runner.finish()
}

/// Runs one command to its report. Never panics on bad input; every failure is a stage. Meant
/// once per process: a probe's driver client is released with the process (its runtime), not
/// shut down (see `commands::probe`). With `--wait`, a probe is tried again every
/// `WAIT_INTERVAL` until it passes, trying again cannot help, or the time is up: the report is
/// the last try's, with every try listed. Each try's client is released the same way, with the
/// process: at most one a try, each idle after its run (an idle client only monitors, it never
/// authenticates again).
pub async fn run(cfg: &Config, command: &Command, progress: &dyn Progress) -> Report {
    let Some(wait) = command.wait() else {
        return run_once(cfg, command, progress).await;
    };
    let began = Instant::now();
    let mut tries = Vec::new();
    loop {
        let start = began.elapsed();
        let mut report = run_once(cfg, command, progress).await;
        let t = report::Try::of(&report, tries.len() as u32 + 1, start, began.elapsed());
        let again = worth_another(&report, &t);
        tries.push(t);
        let time_left = began.elapsed() + timing::WAIT_INTERVAL < wait;
        if report.ok || again.is_err() || !time_left {
            if let (false, Err(why)) = (report.ok, &again) {
                report.note_tries(why);
            } else if !report.ok && !time_left {
                report.note_tries(&format!(
                    "--wait {} s ran out after {} tries",
                    wait.as_secs(),
                    tries.len()
                ));
            }
            report.tries = Some(tries);
            return report;
        }
        progress.retrying(tries.len() as u32, &report, timing::WAIT_INTERVAL);
        let signals = children::Signals::install(true);
        tokio::select! {
            () = tokio::time::sleep(timing::WAIT_INTERVAL) => {}
            name = signals.received() => {
                report.note_tries(&format!("--wait stopped by {name} after {} tries", tries.len()));
                report.tries = Some(tries);
                return report;
            }
        }
    }
}

/// Whether another try of `--wait` may pass: not after a config, credentials or usage error
/// (the same input fails the same way), an interruption, a probe document left behind, or a
/// refusal while Atlas says every change of the project is applied.
fn worth_another(report: &Report, t: &report::Try) -> Result<(), String> {
    let Some(stage) = t.failed_stage else {
        return Ok(());
    };
    if matches!(stage, Stage::Config | Stage::Credentials)
        || t.kind
            .is_some_and(|k| matches!(k, Kind::Interrupted | Kind::UsageError))
    {
        return Err(format!(
            "not tried again: the {} stage fails the same way each time",
            stage.name()
        ));
    }
    if report.leftover.is_some() {
        return Err("not tried again: a probe document may remain".into());
    }
    if stage == Stage::Auth && t.change_status.as_deref() == Some("APPLIED") {
        return Err(
            "not tried again: Atlas says every change of the project is applied, so the refusal is not one that waiting ends"
                .into(),
        );
    }
    Ok(())
}

async fn run_once(cfg: &Config, command: &Command, progress: &dyn Progress) -> Report {
    let uri = match &cfg.target {
        config::Target::Uri(u) => Some(u.expose().as_str()),
        _ => None,
    };
    let mut scrubber = commands::initial_scrubber(&cfg.env, uri);
    if let Some(Ok(api)) = &cfg.atlas {
        match &api.auth {
            atlas::api::ApiAuth::ApiKey { private_key, .. } => {
                scrubber.add_secret(private_key.expose())
            }
            atlas::api::ApiAuth::ServiceAccount { client_secret, .. } => {
                scrubber.add_secret(client_secret.expose())
            }
        }
    }
    let mut runner = Runner::new(command.name(), cfg.timeout, scrubber, progress);
    runner.set_target(commands::target_shown(cfg));
    runner.set_driver(cfg.driver.as_ref().map(drivers::Driver::id));
    let config_stage = Passed::new((), commands::describe(cfg)).warn(cfg.warnings.clone());
    runner.record(Stage::Config, Ok(config_stage), 0);
    // A signal ends the run with its report (a credential_process's group ended as its future
    // is dropped); a roundtrip catches signals itself, to delete its document first.
    let signals = children::Signals::install(!matches!(command, Command::Roundtrip { .. }));
    let work = execute(&mut runner, cfg, command);
    let interrupted = tokio::select! {
        () = work => None,
        name = signals.received() => Some(name),
    };
    if let Some(name) = interrupted {
        runner.interrupt(name);
    }
    runner.finish()
}

async fn execute(runner: &mut Runner<'_>, cfg: &Config, command: &Command) {
    let probe_collection = "atlas_iam_probe";
    let once = Repeat {
        count: 1,
        interval: 0.0,
    };
    match command {
        Command::Whoami => commands::whoami::run(runner, cfg).await,
        Command::Assume { output, out, force } => {
            let to = out.as_deref().map(|path| commands::assume::OutFile {
                path,
                force: *force,
            });
            commands::assume::run(runner, cfg, *output, to).await
        }
        Command::Uri { embed_credentials } => {
            commands::uri::run(runner, cfg, *embed_credentials).await
        }
        Command::Ping { repeat, .. } => {
            let c = ProbeCommand::Ping;
            commands::probe::run(runner, cfg, c, probe_collection, repeat).await;
        }
        Command::ListCollections { .. } => {
            let c = ProbeCommand::ListCollections;
            commands::probe::run(runner, cfg, c, probe_collection, &once).await;
        }
        Command::Roundtrip {
            collection, repeat, ..
        } => {
            let c = ProbeCommand::Roundtrip;
            commands::probe::run(runner, cfg, c, collection, repeat).await;
        }
        Command::Completions { .. } | Command::Man => runner.fail_config(Diagnosis::new(
            Kind::Internal,
            "completions and man are printed from the command-line definition, not run",
            "run `atlas-iam completions SHELL` or `atlas-iam man`",
        )),
    }
}
