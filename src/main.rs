//! The binary: parse, load the env file, build the runtime, run, render, exit with the code of
//! the first failed stage.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use atlas_iam::cli::Cli;
use atlas_iam::config::Env;
use atlas_iam::secret;
use atlas_iam::{envfile, render, Progress, Silent};
use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // First pass: only to learn --env-file; a command-line error is reported the same way by
    // the second pass, which also sees the file's values.
    let first = Cli::try_parse_from(&args).unwrap_or_else(|e| usage_error(e));
    // completions and man: from the clap definition alone, before any env file is read
    if let Some(printed) = atlas_iam::cli::print_generated(&first.command) {
        return match printed {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => plumbing_failed(anyhow::Error::new(e).context("cannot write to stdout")),
        };
    }
    // The probes run in a worker process (see `worker`): decided before the env file is read,
    // so that the worker reads it as this process would have.
    if atlas_iam::worker::supervised(&first.command) && !atlas_iam::worker::is_worker() {
        return supervise(&args, &first);
    }
    let worker = atlas_iam::worker::is_worker();
    let mut env_file = envfile::load(first.global.env_file.as_deref());
    // what the command line gave before the file was read is the user's, whatever the file says
    env_file.confirm("MONGODB_URI", first.global.uri.is_some());
    env_file.confirm("ATLAS_IAM_CLUSTER", first.global.cluster.is_some());
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| usage_error(e));
    let env = Env::from_process();
    let (command, format) = (cli.command.name(), cli.global.format);
    if worker {
        let no_color = env.is_set("NO_COLOR") || env.get("TERM").is_some_and(|t| t == "dumb");
        atlas_iam::worker::emit_settings(
            format == atlas_iam::cli::Format::Json,
            no_color,
            cli.command.wait(),
        );
    }
    render::set_color(
        cli.global.color,
        render::report_to_stderr(command, format),
        &env,
    );

    let report = match atlas_iam::configure(&cli, env_file, env) {
        Err(report) => *report,
        Ok(cfg) => {
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(e) => return plumbing_failed(e),
            };
            let progress: &dyn Progress = if worker {
                &atlas_iam::worker::LineProgress
            } else if render::wants_progress(command, format) {
                &render::TerminalProgress
            } else {
                &Silent
            };
            let report = runtime.block_on(atlas_iam::run(&cfg, &cli.command, progress));
            // A blocking task (a hung DNS lookup inside the SDK) must not hold the exit.
            runtime.shutdown_timeout(Duration::from_millis(100));
            // A credential_process cut by --timeout is still running: end it with the run.
            atlas_iam::children::kill_descendants();
            report
        }
    };
    if worker {
        atlas_iam::worker::emit_report(&report);
    } else {
        render::emit(&report, format);
    }
    ExitCode::from(u8::try_from(report.exit_code).unwrap_or(1))
}

/// The parent of a probe's worker: starts it, shows its progress, renders its report (or the
/// report of its death), exits with its code.
fn supervise(args: &[std::ffi::OsString], cli: &Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
    {
        Ok(rt) => rt,
        Err(e) => return plumbing_failed(e),
    };
    let (command, format) = (cli.command.name(), cli.global.format);
    let progress: &dyn Progress = if render::wants_progress(command, format) {
        &render::TerminalProgress
    } else {
        &Silent
    };
    let (report, settings) = runtime.block_on(atlas_iam::worker::supervise(args, cli, progress));
    runtime.shutdown_timeout(Duration::from_millis(100));
    let format = match settings.json {
        Some(true) => atlas_iam::cli::Format::Json,
        Some(false) => atlas_iam::cli::Format::Human,
        None => format,
    };
    // NO_COLOR (or TERM=dumb) from the worker's env file counts as from the environment
    let color = match cli.global.color {
        atlas_iam::cli::ColorChoice::Auto if settings.no_color => {
            atlas_iam::cli::ColorChoice::Never
        }
        c => c,
    };
    render::set_color(
        color,
        render::report_to_stderr(command, format),
        &Env::from_process(),
    );
    render::emit(&report, format);
    ExitCode::from(u8::try_from(report.exit_code).unwrap_or(1))
}

/// The runtime the library runs on: two workers are plenty for one probe.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The binary's own plumbing failed (no report to give): say so, exit 1 (internal).
fn plumbing_failed(e: anyhow::Error) -> ExitCode {
    eprintln!("atlas-iam: {e:#}");
    ExitCode::from(1)
}

/// Prints clap's message and exits with its code (2 for usage errors). An error echoes what was
/// typed, which may be a connection string with credentials pasted without `--uri`: it is
/// scrubbed of userinfo and of anything that looks like a key or a token first.
fn usage_error(e: clap::Error) -> ! {
    if !e.use_stderr() {
        e.exit() // --help, --version
    }
    let env = Env::from_process();
    let scrubber = atlas_iam::credentials::env_scrubber(&env);
    let text = secret::redact_tokens(&scrubber.scrub(&e.render().to_string()));
    // args_os: an argument that is not UTF-8 must not panic here
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json")
        || args.iter().any(|a| a == "--format=json")
        || (!args.iter().any(|a| a.starts_with("--format"))
            && env.get("ATLAS_IAM_FORMAT").as_deref() == Some("json"));
    let command = args
        .iter()
        .find_map(|a| atlas_iam::report::CommandName::from_name(a));
    if atlas_iam::worker::is_worker() {
        let c = command.unwrap_or(atlas_iam::report::CommandName::Ping);
        atlas_iam::worker::emit_report(&atlas_iam::usage_report(c, &text));
        std::process::exit(e.exit_code());
    }
    match command {
        Some(c) if json => {
            let report = atlas_iam::usage_report(c, &text);
            render::emit(&report, atlas_iam::cli::Format::Json);
        }
        _ => eprint!("{text}"),
    }
    std::process::exit(e.exit_code())
}
