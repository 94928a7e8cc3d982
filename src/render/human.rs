use std::fmt::Write;

use colored::Colorize;

use crate::report::{CommandName, Report, Severity, Status};
use crate::secret::sanitize_terminal as clean;

fn mark(status: Status) -> String {
    match status {
        Status::Passed => "✔".green().to_string(),
        Status::Warning => "!".yellow().to_string(),
        Status::Failed => "✖".red().to_string(),
        Status::Skipped => "-".dimmed().to_string(),
    }
}

/// A line per stage (mark, stage, time, detail), then what the command found, then the
/// diagnosis of the first failure with its hint.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", format!("atlas-iam {}", report.command).bold());
    for s in &report.stages {
        let time = match s.status {
            Status::Skipped => "skipped".dimmed().to_string(),
            _ => format!("{:>6} ms", s.elapsed_ms),
        };
        let detail = if s.detail.is_empty() {
            String::new()
        } else {
            format!("  {}", clean(&s.detail))
        };
        let _ = writeln!(
            out,
            "  {} {:<12}{:>10}{detail}",
            mark(s.status),
            s.stage.name(),
            time
        );
        for w in &s.warnings {
            let _ = writeln!(out, "      {} {}", "!".yellow(), clean(w));
        }
    }

    if let Some(id) = &report.identity {
        if report.command == CommandName::Whoami || report.command == CommandName::Assume {
            let _ = writeln!(out, "\n{}", "Identity".bold());
            if !id.account.is_empty() {
                let _ = writeln!(out, "  account      {}", clean(&id.account));
            }
            let _ = writeln!(out, "  arn          {}", clean(&id.arn));
            if let Some(u) = &id.atlas_user {
                let _ = writeln!(
                    out,
                    "  atlas user   {} ({})",
                    clean(&u.arn).bold(),
                    u.iam_type
                );
                if report.command == CommandName::Whoami {
                    let _ = writeln!(out, "  create it    {}", clean(&u.create_command));
                }
            }
            for n in &id.notes {
                let _ = writeln!(out, "  note         {}", clean(n));
            }
        }
    }
    if let Some(c) = &report.credentials {
        if report.command == CommandName::Assume {
            let exp = c.expiration.as_deref().unwrap_or("never");
            let _ = writeln!(out, "  key          {} (expires {exp})", c.access_key_id);
        }
    }
    if let Some(u) = &report.uri {
        if !u.options.is_empty() {
            let _ = writeln!(out, "\n{}", "Options in force".bold());
            for o in &u.options {
                let _ = writeln!(out, "  {}", clean(o));
            }
        }
        if !u.findings.is_empty() {
            let _ = writeln!(out, "\n{}", "Findings".bold());
            for f in &u.findings {
                let m = match f.severity {
                    Severity::Error => "✖".red().to_string(),
                    Severity::Warning => "!".yellow().to_string(),
                };
                let _ = writeln!(out, "  {m} {}: {}", f.code, clean(&f.message));
                let _ = writeln!(out, "      → {}", clean(&f.hint));
            }
        }
    }

    if let Some(tries) = report.tries.as_ref().filter(|t| t.len() > 1) {
        let _ = writeln!(
            out,
            "\n{}",
            format!("Tries (--wait): {}", tries.len()).bold()
        );
        for t in tries {
            let outcome = match (t.failed_stage, t.kind) {
                (Some(stage), Some(kind)) => format!("{} at {}", kind.name(), stage.name()),
                _ => "passed".to_string(),
            };
            let change = t
                .change_status
                .as_deref()
                .map(|c| format!(" (change {c})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:>3}  +{:>6.1} s  {outcome}{}",
                t.number,
                t.started_ms as f64 / 1000.0,
                clean(&change)
            );
        }
    }

    if let Some(failed) = report.first_failure() {
        if let Some(d) = &failed.diagnosis {
            let _ = writeln!(
                out,
                "\n{} {} at {}: {}",
                "✖".red(),
                d.kind.name().red().bold(),
                failed.stage.name(),
                clean(&d.cause)
            );
            let _ = writeln!(out, "  → {}", clean(&d.hint));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Diagnosis, Kind};
    use crate::report::{Stage, StageResult};

    fn stage(stage: Stage, status: Status, diagnosis: Option<Diagnosis>) -> StageResult {
        StageResult {
            stage,
            status,
            elapsed_ms: 12,
            detail: "detail text".into(),
            warnings: vec!["a warning".into()],
            diagnosis,
            facts: Default::default(),
        }
    }

    #[test]
    fn server_text_cannot_drive_the_terminal() {
        colored::control::set_override(false);
        let mut r = Report::new(CommandName::Ping);
        r.stages.push(stage(
            Stage::Auth,
            Status::Failed,
            Some(Diagnosis::new(
                Kind::AuthenticationFailed,
                "errmsg \u{1b}[2J\u{1b}]0;owned\u{7}boom",
                "hint\r\u{1b}[1Afake",
            )),
        ));
        r.conclude();
        let text = render(&r);
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(text.contains("errmsg boom"), "{text}");
    }

    #[test]
    fn every_try_of_wait_is_listed() {
        colored::control::set_override(false);
        let mut r = Report::new(CommandName::Ping);
        r.stages.push(stage(Stage::Config, Status::Passed, None));
        r.conclude();
        let try_ = |number, ok, kind: Option<Kind>| crate::report::Try {
            number,
            started_ms: u64::from(number - 1) * 5_000,
            elapsed_ms: 300,
            ok,
            exit_code: if ok { 0 } else { 6 },
            failed_stage: kind.map(|_| Stage::Auth),
            kind,
            change_status: kind.map(|_| "PENDING".to_string()),
        };
        r.tries = Some(vec![
            try_(1, false, Some(Kind::AtlasChangePending)),
            try_(2, true, None),
        ]);
        let text = render(&r);
        assert!(text.contains("Tries (--wait): 2"), "{text}");
        assert!(
            text.contains("atlas_change_pending at auth (change PENDING)"),
            "{text}"
        );
        assert!(text.contains("+   5.0 s  passed"), "{text}");
    }

    #[test]
    fn renders_stages_and_the_diagnosis() {
        colored::control::set_override(false);
        let mut r = Report::new(CommandName::Whoami);
        r.stages.push(stage(Stage::Config, Status::Passed, None));
        r.stages.push(stage(
            Stage::Credentials,
            Status::Failed,
            Some(Diagnosis::new(
                Kind::NoCredentials,
                "no AWS credentials found",
                "set them",
            )),
        ));
        r.stages.push(stage(Stage::Identity, Status::Skipped, None));
        r.conclude();
        let text = render(&r);
        assert!(text.contains("✔ config"), "{text}");
        assert!(text.contains("✖ credentials"), "{text}");
        assert!(text.contains("- identity"), "{text}");
        assert!(
            text.contains("no_credentials at credentials: no AWS credentials found"),
            "{text}"
        );
        assert!(text.contains("→ set them"), "{text}");
        assert!(text.contains("! a warning"), "{text}");
        assert_eq!(r.exit_code, 3);
    }
}
