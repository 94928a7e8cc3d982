//! The probe in a worker process. The official driver parses what the server sends with no bound
//! of its own: a reply nested far deeper than MongoDB allows overflows its stack, and one with a
//! huge message makes it allocate that much. A hostile server must not take atlas-iam down with
//! it, so `ping`, `list-collections` and `roundtrip` run in a child process of the same binary,
//! with a bound on its memory (`prlimit --data`, where util-linux has it). The child streams its
//! progress and its report as JSON lines on stdout; the parent renders them, and when the child
//! dies instead (a stack overflow, an allocation refused by the bound, a signal), the parent
//! reports it: `bad_reply` at the stage whose work was under way, with every stage recorded so
//! far.
//!
//! The decision is made before anything else, before the env file is read, so that the child sees
//! the environment exactly as the parent got it (an implicit `.env` stays implicit for it).

use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::cli::{Cli, Command};
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::report::{Report, StageResult, Status};
use crate::runner::Progress;

/// Set (to 1) in the worker's environment.
pub const WORKER_ENV: &str = "ATLAS_IAM_WORKER";
/// The worker's bound on its data (heap and stacks): a probe needs about 40 MiB; the driver's
/// largest legitimate reply is far smaller than what is left.
pub const WORKER_DATA_LIMIT: u64 = 80 << 20;
/// The longest line read from the worker, and the most read in all.
const MAX_LINE: usize = 16 << 20;
const MAX_OUTPUT: usize = 64 << 20;
/// What is kept of the worker's stderr (the Rust runtime's last words).
const STDERR_TAIL: usize = 8 << 10;

/// Whether this process is a worker (its parent reads its stdout).
pub fn is_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some_and(|v| v == "1")
}

/// Whether a command runs in a worker: the probes, which hand server replies to the driver.
pub fn supervised(command: &Command) -> bool {
    matches!(
        command,
        Command::Ping { .. } | Command::ListCollections { .. } | Command::Roundtrip { .. }
    )
}

/// One line of the worker's stdout.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    /// What the worker read that the parent could not (an env file's ATLAS_IAM_FORMAT, NO_COLOR).
    Settings {
        json: bool,
        no_color: bool,
        /// `--wait`, in seconds, as the worker read it (an env file may set it).
        #[serde(default)]
        wait_s: u64,
    },
    Plan(Vec<Stage>),
    Started(Stage),
    Finished(Stage),
    /// The report so far, after a stage was recorded.
    Partial(Box<Report>),
    /// `--wait`: a try failed, the next begins after this many milliseconds.
    Retry {
        number: u32,
        after_ms: u64,
    },
    /// The driver's work: `started`, `ready` (a connection authenticated), `ended`.
    Driver(String),
    /// The finished report.
    Report(Box<Report>),
}

fn write_line(line: &Line) {
    if let Ok(mut text) = serde_json::to_string(line) {
        text.push('\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

/// In a worker: says what the driver is doing, so that a crash is told at the right stage.
pub(crate) fn note_driver(event: &str) {
    if is_worker() {
        write_line(&Line::Driver(event.to_string()));
    }
}

/// In a worker: the output settings it resolved (after its env file), first.
pub fn emit_settings(json: bool, no_color: bool, wait: Option<Duration>) {
    write_line(&Line::Settings {
        json,
        no_color,
        wait_s: wait.map_or(0, |w| w.as_secs()),
    });
}

/// In a worker: the finished report, as the last line.
pub fn emit_report(report: &Report) {
    write_line(&Line::Report(Box::new(report.clone())));
}

/// A worker's progress: every event a line on stdout.
pub struct LineProgress;

impl Progress for LineProgress {
    fn started(&self, stage: Stage) {
        write_line(&Line::Started(stage));
    }
    fn finished(&self, stage: Stage) {
        write_line(&Line::Finished(stage));
    }
    fn retrying(&self, number: u32, _report: &Report, after: Duration) {
        write_line(&Line::Retry {
            number,
            after_ms: after.as_millis() as u64,
        });
    }
    fn planned(&self, stages: &[Stage]) {
        write_line(&Line::Plan(stages.to_vec()));
    }
    fn recorded(&self, report: &Report) {
        write_line(&Line::Partial(Box::new(report.clone())));
    }
}

/// What the parent learnt from the worker's lines.
#[derive(Default)]
struct Seen {
    settings: Option<(bool, bool)>,
    /// The worker's --wait, which bounds how long it may take.
    wait: std::sync::Arc<std::sync::atomic::AtomicU64>,
    plan: Vec<Stage>,
    partial: Option<Report>,
    report: Option<Report>,
    driver_started: bool,
    driver_ready: bool,
    driver_ended: bool,
    /// A line that was not the protocol's (too long, or not JSON).
    garbled: bool,
}

impl Seen {
    fn take(&mut self, line: &[u8], progress: &dyn Progress) {
        let Ok(line) = serde_json::from_slice::<Line>(line) else {
            self.garbled = true;
            return;
        };
        match line {
            Line::Settings {
                json,
                no_color,
                wait_s,
            } => {
                self.settings = Some((json, no_color));
                self.wait
                    .store(wait_s, std::sync::atomic::Ordering::Relaxed);
            }
            Line::Plan(p) => self.plan = p,
            Line::Started(s) => progress.started(s),
            Line::Finished(s) => progress.finished(s),
            Line::Partial(r) => self.partial = Some(*r),
            Line::Retry { number, after_ms } => {
                if let Some(r) = self.partial.take() {
                    progress.retrying(number, &r, Duration::from_millis(after_ms));
                }
                self.driver_started = false;
                self.driver_ready = false;
                self.driver_ended = false;
            }
            Line::Driver(e) => match e.as_str() {
                "started" => self.driver_started = true,
                "ready" => self.driver_ready = true,
                "ended" => self.driver_ended = true,
                _ => {}
            },
            Line::Report(r) => self.report = Some(*r),
        }
    }
}

/// Reads a stream to its end: each complete line to `each`, at most `MAX_LINE` a line and
/// `MAX_OUTPUT` in all (past that, the rest is read and dropped).
async fn read_lines(mut from: impl AsyncRead + Unpin, mut each: impl FnMut(&[u8], bool)) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut total = 0usize;
    let mut overlong = false;
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n;
        if total > MAX_OUTPUT {
            continue;
        }
        for &b in &chunk[..n] {
            if b == b'\n' {
                each(&buf, overlong);
                buf.clear();
                overlong = false;
            } else if buf.len() < MAX_LINE {
                buf.push(b);
            } else {
                overlong = true;
            }
        }
    }
    if !buf.is_empty() {
        each(&buf, overlong);
    }
}

/// The command that starts the worker: this binary with the same arguments, under `prlimit`
/// when it is there.
fn worker_command(args: &[OsString]) -> Option<(tokio::process::Command, bool)> {
    let exe = std::env::current_exe().ok()?;
    let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file());
    let mut cmd = match &prlimit {
        Some(p) => {
            let mut c = tokio::process::Command::new(p);
            c.arg(format!("--data={WORKER_DATA_LIMIT}:{WORKER_DATA_LIMIT}"))
                .arg("--")
                .arg(&exe);
            c
        }
        None => tokio::process::Command::new(&exe),
    };
    cmd.args(args.iter().skip(1))
        .env(WORKER_ENV, "1")
        // fewer malloc arenas: the bound is on reserved data, not only on what is used
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    Some((cmd, prlimit.is_some()))
}

/// What the worker resolved for the output: JSON, and whether NO_COLOR (or TERM=dumb) was set
/// where the parent could not see it (its env file).
pub struct Settings {
    pub json: Option<bool>,
    pub no_color: bool,
}

/// Runs the probe in a worker and returns its report (or the report of its death), with the
/// output settings it resolved.
pub async fn supervise(
    args: &[OsString],
    cli: &Cli,
    progress: &dyn Progress,
) -> (Report, Settings) {
    let mut settings = Settings {
        json: None,
        no_color: false,
    };
    let report = supervise_run(args, cli, progress, &mut settings).await;
    (report, settings)
}

async fn supervise_run(
    args: &[OsString],
    cli: &Cli,
    progress: &dyn Progress,
    settings: &mut Settings,
) -> Report {
    let command = cli.command.name();
    let Some((mut cmd, bounded)) = worker_command(args) else {
        return died(
            cli,
            &Seen::default(),
            Diagnosis::new(
                Kind::Internal,
                "cannot find atlas-iam's own executable to start its worker",
                "report this",
            ),
        );
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return died(
                cli,
                &Seen::default(),
                Diagnosis::new(
                    Kind::Internal,
                    format!("cannot start atlas-iam's worker process: {e}"),
                    "report this",
                ),
            )
        }
    };
    let pid = child.id();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut seen = Seen::default();
    let mut tail: Vec<u8> = Vec::new();
    // the worker ends by its own --timeout (and --wait, as it read it), the cleanup's budget and a
    // margin
    let began = tokio::time::Instant::now();
    let wait_s = seen.wait.clone();
    wait_s.store(
        cli.command.wait().unwrap_or_default().as_secs(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let bound = cli.timeout() + crate::timing::CLEANUP_BUDGET + Duration::from_secs(5);
    let over = move || {
        let wait = Duration::from_secs(wait_s.load(std::sync::atomic::Ordering::Relaxed));
        began.elapsed() > bound + wait
    };
    let signals = crate::children::Signals::install(true);
    let status = {
        let work = async {
            let out = async {
                if let Some(out) = stdout {
                    read_lines(out, |line, overlong| {
                        if overlong {
                            seen.garbled = true;
                        } else {
                            seen.take(line, progress);
                        }
                    })
                    .await;
                }
            };
            let err = async {
                if let Some(err) = stderr {
                    read_lines(err, |line, _| {
                        tail.extend_from_slice(line);
                        tail.push(b'\n');
                        if tail.len() > STDERR_TAIL {
                            tail.drain(..tail.len() - STDERR_TAIL);
                        }
                    })
                    .await;
                }
            };
            tokio::join!(out, err);
            child.wait().await.ok()
        };
        tokio::pin!(work);
        let mut signals = std::pin::pin!(signals.received());
        let status = loop {
            tokio::select! {
                status = &mut work => break status,
                name = &mut signals => {
                    // passed on to the worker, which ends its run (a roundtrip deletes its document)
                    // and still reports
                    if let Some(pid) = pid {
                        forward(name, pid);
                    }
                    signals.set(crate::children::Signals::install(true).received());
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if over() {
                        break None;
                    }
                }
            }
        };
        status
    };
    if let Some((json, no_color)) = seen.settings {
        settings.json = Some(json);
        settings.no_color = no_color;
    }
    if let Some(report) = seen.report.take() {
        return report;
    }
    let tail = String::from_utf8_lossy(&tail).into_owned();
    let d = death(status, &tail, bounded, command.name());
    let _ = command;
    died(cli, &seen, d)
}

/// Passes a signal on to the worker (kill(1), as `children` does: no unsafe code).
fn forward(signal: &str, pid: u32) {
    let _ = std::process::Command::new("kill")
        .args([
            format!("-{}", signal.trim_start_matches("SIG")),
            pid.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Why the worker ended without a report, from how it ended and its last words.
fn death(
    status: Option<std::process::ExitStatus>,
    stderr: &str,
    bounded: bool,
    command: &str,
) -> Diagnosis {
    use std::os::unix::process::ExitStatusExt;
    let how = match status {
        None => "did not end in time and was stopped".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (_, Some(sig)) => format!("was ended by signal {sig}"),
            (Some(c), None) => format!("exited with code {c}"),
            _ => "ended".to_string(),
        },
    };
    if stderr.contains("overflowed its stack") {
        return Diagnosis::new(
            Kind::BadReply,
            format!(
                "a reply nested deeper than the driver can parse overflowed its stack (MongoDB \
                 nests documents at most 100 levels deep): the server is not a MongoDB server, or \
                 a hostile one; the {command} worker {how}"
            ),
            "check the target: this is not what Atlas sends",
        );
    }
    if stderr.contains("memory allocation of") || stderr.contains("out of memory") {
        return Diagnosis::new(
            Kind::BadReply,
            format!(
                "a reply larger than the driver's memory bound ({} MiB) made it allocate past \
                 it: the server is not a MongoDB server, or a hostile one; the {command} worker \
                 {how}",
                WORKER_DATA_LIMIT >> 20
            ),
            "check the target: this is not what Atlas sends",
        );
    }
    let bound = if bounded {
        format!(" (its memory is bound to {} MiB)", WORKER_DATA_LIMIT >> 20)
    } else {
        String::new()
    };
    // its last words, scrubbed of the environment's secrets and of anything token-shaped
    let scrubber = crate::credentials::env_scrubber(&crate::config::Env::from_process());
    let said = crate::secret::redact_tokens(
        &scrubber.scrub(&crate::secret::sanitize_terminal(stderr.trim())),
    );
    let said: String = said
        .chars()
        .rev()
        .take(300)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    Diagnosis::new(
        Kind::Internal,
        format!("atlas-iam's {command} worker {how} without a report{bound}{said}"),
        "report this, with the command line (its secrets removed)",
    )
}

/// The report of a worker that died: what it had recorded, and the failure at the stage whose
/// work was under way (the driver's, when it was running), the rest skipped.
fn died(cli: &Cli, seen: &Seen, d: Diagnosis) -> Report {
    let mut report = seen
        .partial
        .clone()
        .unwrap_or_else(|| Report::new(cli.command.name()));
    let recorded = |r: &Report, s: Stage| r.stage(s).is_some();
    let stage = if seen.driver_started && !seen.driver_ready && !seen.driver_ended {
        Stage::Auth
    } else if seen.driver_ready && !seen.driver_ended {
        Stage::Command
    } else {
        seen.plan
            .iter()
            .copied()
            .find(|s| !recorded(&report, *s))
            .unwrap_or(Stage::Config)
    };
    let stage = if recorded(&report, stage) {
        // never over a stage already decided
        seen.plan
            .iter()
            .copied()
            .find(|s| !recorded(&report, *s))
            .unwrap_or(stage)
    } else {
        stage
    };
    let clean = |t: &str| crate::secret::sanitize_terminal(t);
    let d = d.map_text(clean);
    let mut plan = seen.plan.clone();
    if plan.is_empty() {
        plan = vec![Stage::Config];
    }
    if !plan.contains(&stage) {
        plan.push(stage);
    }
    plan.sort();
    for s in plan {
        if recorded(&report, s) {
            continue;
        }
        let failed = s == stage;
        report.stages.push(StageResult {
            stage: s,
            status: if failed {
                Status::Failed
            } else {
                Status::Skipped
            },
            elapsed_ms: 0,
            detail: String::new(),
            warnings: if failed || s > stage {
                Vec::new()
            } else {
                vec!["not reported: the worker ended first".to_string()]
            },
            diagnosis: failed.then(|| d.clone()),
            facts: Default::default(),
        });
    }
    report.stages.sort_by_key(|s| s.stage);
    report.conclude();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli() -> Cli {
        Cli::try_parse_from(["atlas-iam", "ping", "--uri", "mongodb://h/"]).expect("cli")
    }

    #[test]
    fn a_crash_is_told_at_the_stage_whose_work_was_under_way() {
        let mut seen = Seen {
            plan: vec![
                Stage::Config,
                Stage::Credentials,
                Stage::Identity,
                Stage::Dns,
                Stage::Tcp,
                Stage::Tls,
                Stage::Auth,
                Stage::Command,
            ],
            ..Default::default()
        };
        let mut partial = Report::new(crate::report::CommandName::Ping);
        for s in [Stage::Config, Stage::Credentials] {
            partial.stages.push(StageResult {
                stage: s,
                status: Status::Passed,
                elapsed_ms: 1,
                detail: String::new(),
                warnings: vec![],
                diagnosis: None,
                facts: Default::default(),
            });
        }
        seen.partial = Some(partial);
        seen.driver_started = true;
        let d = death(None, "thread 'x' has overflowed its stack\n", true, "ping");
        assert_eq!(d.kind, Kind::BadReply);
        let r = died(&cli(), &seen, d);
        assert_eq!(r.exit_code, 6, "{r:?}");
        let auth = r.stage(Stage::Auth).expect("auth");
        assert_eq!(auth.status, Status::Failed);
        assert_eq!(
            r.stage(Stage::Identity).map(|s| s.status),
            Some(Status::Skipped)
        );
        assert_eq!(
            r.stage(Stage::Command).map(|s| s.status),
            Some(Status::Skipped)
        );
        // stage order kept
        let order: Vec<Stage> = r.stages.iter().map(|s| s.stage).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);

        let d = death(
            None,
            "memory allocation of 104857600 bytes failed\n",
            true,
            "ping",
        );
        assert!(d.cause.contains("memory bound"), "{d}");
        let d = death(None, "", true, "ping");
        assert_eq!(d.kind, Kind::Internal);
        let d = death(
            None,
            "thread 'main' panicked at src/x.rs:1:1:\nboom\n",
            true,
            "ping",
        );
        assert!(d.cause.ends_with("boom"), "{d}");
        // no driver yet: the first stage not recorded
        seen.driver_started = false;
        let r = died(&cli(), &seen, death(None, "", true, "ping"));
        assert_eq!(r.first_failure().map(|s| s.stage), Some(Stage::Identity));
        assert_eq!(r.exit_code, 1);
    }

    #[test]
    fn lines_round_trip_and_garbage_is_noticed() {
        let mut seen = Seen::default();
        let line = serde_json::to_vec(&Line::Driver("started".into())).expect("json");
        seen.take(&line, &crate::runner::Silent);
        assert!(seen.driver_started);
        seen.take(b"{not json", &crate::runner::Silent);
        assert!(seen.garbled);
    }
}
