//! The stage runner: the plan of a run, its one deadline, each stage's outcome recorded (passed,
//! warning, failed with a diagnosis, or cut by the deadline), every text scrubbed of known
//! secrets before it is stored, and the stages planned but not run marked skipped.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::diagnosis::{self, Diagnosis, Stage};
use crate::report::{CommandName, Facts, Report, StageResult, Status};
use crate::secret::Scrubber;

/// What a stage that passed hands on, and says about itself.
pub struct Passed<T> {
    pub value: T,
    pub detail: String,
    pub warnings: Vec<String>,
    /// Secrets the stage obtained, learnt by the scrubber before anything of the stage is
    /// stored: (value, whether it is an access key id, shown masked).
    pub secrets: Vec<(String, bool)>,
    /// What the stage found, as fields.
    pub facts: Facts,
}

impl<T> Passed<T> {
    pub fn new(value: T, detail: impl Into<String>) -> Self {
        Passed {
            value,
            detail: detail.into(),
            warnings: Vec::new(),
            secrets: Vec::new(),
            facts: Facts::default(),
        }
    }

    /// The value, and the rest of what the stage says (detail, warnings, secrets, facts).
    pub fn split(self) -> (T, Passed<()>) {
        let Passed {
            value,
            detail,
            warnings,
            secrets,
            facts,
        } = self;
        let rest = Passed {
            value: (),
            detail,
            warnings,
            secrets,
            facts,
        };
        (value, rest)
    }

    pub fn with_facts(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self
    }

    /// The stage obtained these credentials: scrub them from everything from here on.
    pub fn learn(mut self, creds: &aws_credential_types::Credentials) -> Self {
        self.secrets.push((creds.access_key_id().to_string(), true));
        self.secrets
            .push((creds.secret_access_key().to_string(), false));
        if let Some(t) = creds.session_token() {
            self.secrets.push((t.to_string(), false));
        }
        self
    }

    pub fn warn(mut self, warnings: impl IntoIterator<Item = String>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}

/// A stage's outcome and how long its work took.
pub(crate) type Timed<T> = (Result<Passed<T>, Diagnosis>, Duration);

/// Runs `work`, timing it.
pub(crate) async fn timed<T>(work: impl Future<Output = Result<Passed<T>, Diagnosis>>) -> Timed<T> {
    let started = Instant::now();
    let outcome = work.await;
    (outcome, started.elapsed())
}

/// Work started ahead of its turn on the runtime, cancelled when dropped: a stage that fails
/// earlier in the report ends the work of the later ones.
pub(crate) struct Speculative<T>(tokio::task::JoinHandle<T>);

impl<T: Send + 'static> Speculative<T> {
    pub(crate) fn spawn(work: impl Future<Output = T> + Send + 'static) -> Self {
        Speculative(tokio::spawn(work))
    }

    /// Its result; None when the work panicked or was cancelled.
    pub(crate) async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for Speculative<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Told when a stage starts and ends; the binary shows it on a terminal. The library itself
/// never writes to stdout or stderr.
pub trait Progress: Sync {
    fn started(&self, _stage: Stage) {}
    fn finished(&self, _stage: Stage) {}
    /// `--wait`: try `number` failed as `report` says; the next begins `after` from now.
    fn retrying(&self, _number: u32, _report: &crate::report::Report, _after: Duration) {}
    /// The stages the run plans (those not run are reported as skipped).
    fn planned(&self, _stages: &[Stage]) {}
    /// The report so far, after each stage is recorded.
    fn recorded(&self, _report: &crate::report::Report) {}
}

/// No progress shown.
pub struct Silent;

impl Progress for Silent {}

/// Runs stages in order under one deadline, recording each in the report.
pub(crate) struct Runner<'p> {
    /// Written only through the methods below, each of which scrubs what it writes.
    report: Report,
    plan: Vec<Stage>,
    deadline: Instant,
    pub scrubber: Scrubber,
    progress: &'p dyn Progress,
}

impl<'p> Runner<'p> {
    pub(crate) fn new(
        command: CommandName,
        timeout: Duration,
        scrubber: Scrubber,
        progress: &'p dyn Progress,
    ) -> Self {
        Runner {
            report: Report::new(command),
            plan: vec![Stage::Config],
            deadline: Instant::now() + timeout,
            scrubber,
            progress,
        }
    }

    /// Adds stages to the plan: those not run are reported as skipped.
    pub(crate) fn plan(&mut self, stages: impl IntoIterator<Item = Stage>) {
        for s in stages {
            if !self.plan.contains(&s) {
                self.plan.push(s);
            }
        }
        self.progress.planned(&self.plan);
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn scrub_diagnosis(&self, d: Diagnosis) -> Diagnosis {
        d.map_text(|t| self.scrubber.clean(t))
    }

    /// Records a stage that was decided without work (the config stage).
    pub(crate) fn record(
        &mut self,
        stage: Stage,
        passed: Result<Passed<()>, Diagnosis>,
        elapsed_ms: u64,
    ) {
        let result = match passed {
            Ok(p) => StageResult {
                stage,
                status: if p.warnings.is_empty() {
                    Status::Passed
                } else {
                    Status::Warning
                },
                elapsed_ms,
                detail: self.scrubber.clean(&p.detail),
                warnings: p.warnings.iter().map(|w| self.scrubber.clean(w)).collect(),
                diagnosis: None,
                facts: p.facts.map_text(|t| self.scrubber.clean(t)),
            },
            Err(d) => StageResult {
                stage,
                status: Status::Failed,
                elapsed_ms,
                detail: String::new(),
                warnings: Vec::new(),
                diagnosis: Some(self.scrub_diagnosis(d)),
                facts: Facts::default(),
            },
        };
        self.report.stages.push(result);
        self.progress.recorded(&self.report);
    }

    /// Runs one stage within the deadline and records its outcome.
    pub(crate) async fn stage<T>(
        &mut self,
        stage: Stage,
        work: impl Future<Output = Result<Passed<T>, Diagnosis>>,
    ) -> Option<T> {
        self.settle(stage, timed(work)).await
    }

    /// Records a stage whose work may have started earlier (speculatively, beside other stages):
    /// `work` gives its outcome and how long the work itself took.
    pub(crate) async fn settle<T>(
        &mut self,
        stage: Stage,
        work: impl Future<Output = Timed<T>>,
    ) -> Option<T> {
        let waited = Instant::now();
        self.progress.started(stage);
        let outcome = tokio::time::timeout_at(self.deadline, work).await;
        self.progress.finished(stage);
        let (outcome, took) = match outcome {
            Ok((outcome, took)) => (outcome, took),
            Err(_) => (Err(diagnosis::timeout(stage)), waited.elapsed()),
        };
        let elapsed_ms = took.as_millis() as u64;
        let (outcome, value) = match outcome {
            Ok(p) => {
                let (value, mut rest) = p.split();
                for (secret, key_id) in std::mem::take(&mut rest.secrets) {
                    if key_id {
                        self.scrubber.add_key_id(&secret);
                    } else {
                        self.scrubber.add_secret(&secret);
                    }
                }
                if crate::timing::slow_threshold(stage).is_some_and(|limit| took > limit) {
                    rest.warnings.push(format!(
                        "slow: {} took {} ms (drivers wait up to 10 s to connect and 30 s to \
                         select a server by default, so this works, slowly)",
                        stage.name(),
                        took.as_millis()
                    ));
                }
                (Ok(rest), Some(value))
            }
            Err(d) => (Err(d), None),
        };
        self.record(stage, outcome, elapsed_ms);
        value
    }

    /// When the run ends.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Fails the config stage after the fact (a command's own precondition).
    pub(crate) fn fail_config(&mut self, d: Diagnosis) {
        self.fail_stage(Stage::Config, d);
    }

    /// Adds warnings to the config stage after the fact.
    pub(crate) fn warn_config(&mut self, warnings: Vec<String>) {
        for w in warnings {
            self.warn_stage(Stage::Config, w);
        }
    }

    /// Adds a warning to a stage already recorded (a failed stage stays failed).
    pub(crate) fn warn_stage(&mut self, stage: Stage, warning: String) {
        let warning = self.scrubber.clean(&warning);
        if let Some(s) = self.report.stage_mut(stage) {
            if s.status == Status::Passed {
                s.status = Status::Warning;
            }
            s.warnings.push(warning);
        }
    }

    /// Turns a failed stage into a warning that keeps its diagnosis: a check that explains but
    /// does not decide (the Admin API in a probe) never stops the run.
    pub(crate) fn soften(&mut self, stage: Stage, why: &str) {
        let why = self.scrubber.clean(why);
        if let Some(s) = self.report.stage_mut(stage) {
            if s.status == Status::Failed {
                s.status = Status::Warning;
                if let Some(d) = &s.diagnosis {
                    s.warnings.push(format!(
                        "{} ({}): {}; {why}",
                        d.cause,
                        d.kind.name(),
                        d.hint
                    ));
                }
            }
        }
    }

    /// Adds to the facts of a stage already recorded (what was learnt later about it), scrubbed
    /// like everything recorded.
    pub(crate) fn amend_facts(&mut self, stage: Stage, amend: impl FnOnce(&mut Facts)) {
        let Some(s) = self.report.stage_mut(stage) else {
            return;
        };
        let mut facts = std::mem::take(&mut s.facts);
        amend(&mut facts);
        let facts = facts.map_text(|t| self.scrubber.clean(t));
        if let Some(s) = self.report.stage_mut(stage) {
            s.facts = facts;
        }
    }

    /// Fails a stage already recorded, after the fact.
    pub(crate) fn fail_stage(&mut self, stage: Stage, d: Diagnosis) {
        let d = self.scrub_diagnosis(d);
        if let Some(s) = self.report.stage_mut(stage) {
            s.status = Status::Failed;
            s.diagnosis = Some(d);
        }
    }

    /// Appends to the detail of the last stage recorded.
    pub(crate) fn note_last(&mut self, note: String) {
        let note = self.scrubber.clean(&note);
        if let Some(last) = self.report.stages.last_mut() {
            if last.detail.is_empty() {
                last.detail = note;
            } else {
                last.detail.push_str(&format!("; {note}"));
            }
        }
    }

    /// The run was stopped by a signal: the first planned stage with no outcome yet fails with
    /// `interrupted`, and the rest are skipped.
    pub(crate) fn interrupt(&mut self, signal: &str) {
        let Some(stage) = self
            .plan
            .iter()
            .copied()
            .find(|s| self.report.stage(*s).is_none())
        else {
            return;
        };
        let d = Diagnosis::new(
            crate::diagnosis::Kind::Interrupted,
            format!(
                "interrupted by {signal} while the {} stage ran",
                stage.name()
            ),
            "run it again; what it started (a credential_process) was ended with it",
        );
        self.record(stage, Err(d), 0);
    }

    /// The report so far, to read.
    pub(crate) fn report(&self) -> &Report {
        &self.report
    }

    /// The target, shown redacted by the caller, and cleaned here.
    pub(crate) fn set_target(&mut self, target: Option<String>) {
        self.report.target = target.map(|t| self.scrubber.clean(&t));
    }

    pub(crate) fn set_driver(&mut self, driver: Option<String>) {
        self.report.driver = driver;
    }

    pub(crate) fn set_credentials(&mut self, mut c: crate::report::CredentialInfo) {
        c.source = self.scrubber.clean(&c.source);
        self.report.credentials = Some(c);
    }

    pub(crate) fn set_identity(&mut self, mut id: crate::report::Identity) {
        let clean = |t: &str| self.scrubber.clean(t);
        id.notes = id.notes.iter().map(|n| clean(n)).collect();
        id.arn = clean(&id.arn);
        id.account = clean(&id.account);
        id.user_id = clean(&id.user_id);
        if let Some(u) = id.atlas_user.as_mut() {
            u.arn = clean(&u.arn);
            u.create_command = clean(&u.create_command);
        }
        self.report.identity = Some(id);
    }

    /// The connection string's report: its texts scrubbed of every known secret (the string
    /// itself stays as the command chose it: redacted, or whole with --show-secrets).
    pub(crate) fn set_uri(&mut self, mut r: crate::report::UriReport) {
        let scrub = |t: &str| self.scrubber.scrub(t);
        r.options = r.options.iter().map(|o| scrub(o)).collect();
        for f in &mut r.findings {
            f.message = scrub(&f.message);
            f.hint = scrub(&f.hint);
        }
        self.report.uri = Some(r);
    }

    /// What the command writes to stdout besides the report (never serialised into it).
    pub(crate) fn set_payload(&mut self, payload: crate::secret::Secret<String>) {
        self.report.payload = Some(payload);
    }

    pub(crate) fn set_latency(&mut self, latency: Option<crate::report::Latency>) {
        self.report.latency = latency;
    }

    pub(crate) fn set_leftover(&mut self, leftover: crate::report::Leftover) {
        self.report.leftover = Some(leftover);
    }

    /// Adds warnings to the last stage recorded.
    pub(crate) fn warn_last(&mut self, warnings: Vec<String>) {
        let warnings: Vec<String> = warnings.iter().map(|w| self.scrubber.clean(w)).collect();
        if let Some(last) = self.report.stages.last_mut() {
            if !warnings.is_empty() {
                if last.status == Status::Passed {
                    last.status = Status::Warning;
                }
                last.warnings.extend(warnings);
            }
        }
    }

    /// Marks what was planned and not run as skipped, and sets the exit code.
    pub(crate) fn finish(mut self) -> Report {
        for stage in self.plan.clone() {
            if self.report.stage(stage).is_none() {
                self.report.stages.push(StageResult {
                    stage,
                    status: Status::Skipped,
                    elapsed_ms: 0,
                    detail: String::new(),
                    warnings: Vec::new(),
                    diagnosis: None,
                    facts: Facts::default(),
                });
            }
        }
        self.report.conclude();
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn speculative_work_ends_when_dropped_and_is_reported_in_order() {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let work = Speculative::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            flag.store(true, Ordering::SeqCst);
        });
        drop(work);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!finished.load(Ordering::SeqCst), "dropped work ran on");

        // a later stage's work finished first; each is recorded with its own time, in order
        let slow = Speculative::spawn(timed(async {
            tokio::time::sleep(Duration::from_millis(120)).await;
            Ok(Passed::new(1, "slow"))
        }));
        let fast = Speculative::spawn(timed(async { Ok(Passed::new(2, "fast")) }));
        let mut runner = Runner::new(
            CommandName::Ping,
            Duration::from_secs(5),
            Scrubber::new(),
            &Silent,
        );
        let none = || {
            (
                Err(Diagnosis::new(crate::diagnosis::Kind::Internal, "gone", "")),
                Duration::ZERO,
            )
        };
        let a = runner
            .settle(Stage::Dns, async { slow.join().await.unwrap_or_else(none) })
            .await;
        let b = runner
            .settle(Stage::Tcp, async { fast.join().await.unwrap_or_else(none) })
            .await;
        assert_eq!((a, b), (Some(1), Some(2)));
        let stages = &runner.report.stages;
        assert_eq!(stages[0].stage, Stage::Dns);
        assert!(stages[0].elapsed_ms >= 100, "{}", stages[0].elapsed_ms);
        assert!(
            stages[1].elapsed_ms < 50,
            "its own time, not the wait: {}",
            stages[1].elapsed_ms
        );
    }
}
