//! The binary: load the env file, parse the command line, run, print, exit with the code of the
//! first failed stage.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use atlas_iam::cli::{Cli, ColorChoice, Format};
use atlas_iam::{envfile, render};
use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // First pass: only to learn --env-file; a command-line error is reported the same way by
    // the second pass, which also sees the file's values.
    let first = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
    let env_file = envfile::load(first.global.env_file.as_deref());
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());

    let to_stderr = render::report_to_stderr(cli.command.name(), cli.global.format);
    set_color(cli.global.color, to_stderr);

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
    let progress =
        cli.global.format == Format::Human && !to_stderr && std::io::stderr().is_terminal();
    let report = runtime.block_on(atlas_iam::run_with_progress(&cli, &env_file, progress));
    // A blocking task (a hung DNS lookup inside the SDK) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));

    let text = match cli.global.format {
        Format::Json => render::json::render(&report),
        Format::Human => render::human::render(&report),
    };
    let (mut report_out, mut payload_out): (Box<dyn Write>, Box<dyn Write>) = if to_stderr {
        (Box::new(std::io::stderr()), Box::new(std::io::stdout()))
    } else {
        (Box::new(std::io::stdout()), Box::new(std::io::stderr()))
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = report_out.write_all(text.as_bytes());
    let _ = report_out.flush();
    if let Some(payload) = &report.payload {
        if to_stderr {
            let mut p = payload.expose().clone();
            if !p.ends_with('\n') {
                p.push('\n');
            }
            let _ = payload_out.write_all(p.as_bytes());
            let _ = payload_out.flush();
        }
    }
    ExitCode::from(u8::try_from(report.exit_code).unwrap_or(1))
}

fn set_color(choice: ColorChoice, to_stderr: bool) {
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
            let tty = if to_stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
            !no_color && !dumb && tty
        }
    };
    colored::control::set_override(on);
}
