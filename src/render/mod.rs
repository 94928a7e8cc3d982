//! Renderers: both read the one `Report`, so text and JSON cannot disagree. This module also
//! decides where output goes (`emit`), whether it has colour, and shows progress on a terminal.

pub mod human;
pub mod json;

use std::io::{IsTerminal, Write};

use crate::cli::{ColorChoice, Format};
use crate::config::Env;
use crate::diagnosis::Stage;
use crate::report::{CommandName, Report};
use crate::runner::Progress;

/// Whether the report goes to stderr: when the command's product (credentials, a connection
/// string) owns stdout. `assume` always keeps stdout for credentials, so that
/// `eval "$(atlas-iam assume)"` never runs report text; `uri` does so in human mode.
pub fn report_to_stderr(command: CommandName, format: Format) -> bool {
    match command.facts().stream {
        crate::report::ReportStream::Stdout => false,
        crate::report::ReportStream::Stderr => true,
        crate::report::ReportStream::StderrUnlessJson => format == Format::Human,
    }
}

/// Colour on or off, decided once: --color, then NO_COLOR, TERM=dumb and whether the report's
/// stream is a terminal.
pub fn set_color(choice: ColorChoice, to_stderr: bool, env: &Env) {
    let on = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = env.is_set("NO_COLOR");
            let dumb = env.get("TERM").is_some_and(|t| t == "dumb");
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

/// The stage under way, on stderr, erased when it ends: only for a terminal.
pub struct TerminalProgress;

impl Progress for TerminalProgress {
    fn started(&self, stage: Stage) {
        eprint!("\r  … {:<12}", stage.name());
    }
    fn finished(&self, _stage: Stage) {
        eprint!("\r\x1b[2K");
    }
    fn retrying(&self, number: u32, report: &crate::report::Report, after: std::time::Duration) {
        let why = report
            .first_failure()
            .and_then(|s| s.diagnosis.as_ref().map(|d| (s.stage, d.kind)))
            .map(|(stage, kind)| format!("{} at {}", kind.name(), stage.name()))
            .unwrap_or_else(|| "failed".into());
        eprintln!(
            "  try {number}: {why}; trying again in {} s (--wait)",
            after.as_secs()
        );
    }
}

/// Whether to show progress: human output on stdout, stderr a terminal.
pub fn wants_progress(command: CommandName, format: Format) -> bool {
    format == Format::Human && !report_to_stderr(command, format) && std::io::stderr().is_terminal()
}

/// Writes the report to its stream, and the command's product (credentials, a connection
/// string) to stdout when the report went to stderr.
pub fn emit(report: &Report, format: Format) {
    let text = match format {
        Format::Json => json::render(report),
        Format::Human => human::render(report),
    };
    let to_stderr = report_to_stderr(report.command, format);
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
            // the payload is a connection string or credentials: printable text by now, made
            // terminal-safe all the same, line by line
            let mut p: String = payload
                .expose()
                .lines()
                .map(|l| crate::secret::sanitize_terminal(l) + "\n")
                .collect();
            if p.is_empty() {
                p.push('\n');
            }
            let _ = payload_out.write_all(p.as_bytes());
            let _ = payload_out.flush();
        }
    }
}
