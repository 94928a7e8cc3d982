//! The binary: parse, load the env file, build the runtime, run, render, exit with the code of
//! the first failed stage.

use std::process::ExitCode;
use std::time::Duration;

use atlas_iam::cli::Cli;
use atlas_iam::config::Env;
use atlas_iam::{envfile, render, Progress, Silent};
use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // First pass: only to learn --env-file; a command-line error is reported the same way by
    // the second pass, which also sees the file's values.
    let first = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
    let env_file = envfile::load(first.global.env_file.as_deref());
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
    let env = Env::from_process();
    let (command, format) = (cli.command.name(), cli.global.format);
    render::set_color(
        cli.global.color,
        render::report_to_stderr(command, format),
        &env,
    );

    let report = match atlas_iam::configure(&cli, env_file, env) {
        Err(report) => *report,
        Ok(cfg) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("atlas-iam: cannot start the async runtime: {e}");
                    return ExitCode::from(1);
                }
            };
            let progress: &dyn Progress = if render::wants_progress(command, format) {
                &render::TerminalProgress
            } else {
                &Silent
            };
            let report = runtime.block_on(atlas_iam::run(&cfg, &cli.command, progress));
            // A blocking task (a hung DNS lookup inside the SDK) must not hold the exit.
            runtime.shutdown_timeout(Duration::from_millis(100));
            report
        }
    };
    render::emit(&report, format);
    ExitCode::from(u8::try_from(report.exit_code).unwrap_or(1))
}
