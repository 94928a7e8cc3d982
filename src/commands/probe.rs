//! ping, list-collections, roundtrip: every stage, config to command.

use std::time::{Duration, Instant as StdInstant};

use super::{credential_info, credentials_stages, identity_stage, IdentityMode, InUse};
use crate::cli::Repeat;
use crate::config::Config;
use crate::credentials;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::probe;
use crate::probe::auth::IdentityFacts;
use crate::probe::command::ProbeCommand;
use crate::probe::roundtrip::{self, Cleanup, Probe, CLEANUP_BUDGET};
use crate::report::{Leftover, Status};
use crate::runner::{Passed, Runner};

/// The drivers' default connectTimeoutMS.
const DRIVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Kept back from the run's deadline so that a stage's own bound fires first and names the
/// cause precisely.
const MARGIN: Duration = Duration::from_millis(300);

fn connection_budget(runner: &Runner<'_>) -> Duration {
    runner
        .remaining()
        .saturating_sub(MARGIN)
        .min(DRIVER_CONNECT_TIMEOUT)
}

/// ping, list-collections, roundtrip: every stage; returns None where a stage failed.
pub async fn run(
    runner: &mut Runner<'_>,
    cfg: &Config,
    command: ProbeCommand,
    collection: &str,
    repeat: &Repeat,
) -> Option<()> {
    let timeout_secs = cfg.timeout.as_secs();
    // every stage; assume only with a role
    runner.plan(
        Stage::ALL
            .into_iter()
            .filter(|s| *s != Stage::Assume || cfg.role.is_some()),
    );
    let needed = repeat.interval * f64::from(repeat.count.saturating_sub(1));
    if needed >= timeout_secs as f64 {
        runner.fail_config(Diagnosis::new(
            Kind::InvalidConfig,
            format!("--count {} with --interval {} needs about {needed:.0} s, and --timeout is {timeout_secs} s",
                repeat.count, repeat.interval),
            format!("raise --timeout above {:.0}", needed + 30.0),
        ));
        return None;
    }
    let target = match probe::target(cfg) {
        Ok((t, warnings)) => {
            runner.warn_config(warnings);
            t
        }
        Err(d) => {
            runner.fail_config(d);
            return None;
        }
    };
    let (resolved, in_use) = credentials_stages(runner, cfg).await?;
    runner.report.credentials = Some(credential_info(&in_use));
    // Without a role, STS is only a preflight here: the driver signs locally and Atlas calls
    // STS itself, so an STS this machine cannot reach is a warning, not a failure.
    let mode = if cfg.role.is_some() {
        IdentityMode::Answer
    } else {
        IdentityMode::Preflight
    };
    let facts = identity_stage(runner, cfg, &resolved, &in_use, mode).await?;

    // No fixed shares of --timeout: a connection gets what the drivers give it by default
    // (connectTimeoutMS, 10 s, for the connection, the TLS handshake and the hello), so that a
    // slow cluster the drivers reach is never failed (slow stages get a warning with their
    // time), and a silent one is named by its stage before the run's deadline.
    let budget = connection_budget(runner);
    let hosts = runner
        .stage(
            Stage::Dns,
            probe::dns::stage(&target, cfg.dns_server, budget),
        )
        .await?;
    let budget = connection_budget(runner);
    runner
        .stage(Stage::Tcp, probe::tcp::tcp_stage(&hosts.hosts, budget))
        .await?;
    let budget = connection_budget(runner);
    runner
        .stage(
            Stage::Tls,
            probe::tls::tls_stage(&hosts.hosts, target.tls, target.ca_file.as_deref(), budget),
        )
        .await?;
    let budget = runner.remaining().saturating_sub(MARGIN);
    let started = StdInstant::now();
    let role_path = role_path_lookup(&resolved, &in_use, &facts);
    let session = runner
        .stage(
            Stage::Auth,
            probe::auth::auth_stage(
                &target,
                &hosts,
                in_use.creds.clone(),
                &facts,
                budget,
                role_path,
            ),
        )
        .await?;
    let cold = started.elapsed();
    let opts = probe::command::CommandOptions {
        command,
        collection: collection.to_string(),
        count: repeat.count,
        interval: Duration::from_secs_f64(repeat.interval),
    };
    let written = Probe::default();
    // Only a roundtrip has something to undo: only it takes over SIGINT and SIGTERM.
    let signals = Signals::install(command == ProbeCommand::Roundtrip);
    let latency = runner
        .stage(
            Stage::Command,
            interruptible(
                probe::command::command_stage(&session, &opts, cold, &facts, &written),
                signals,
            ),
        )
        .await;
    runner.report.latency = latency;
    if command == ProbeCommand::Roundtrip {
        let done = roundtrip::cleanup(&session, collection, &written, CLEANUP_BUDGET).await;
        report_cleanup(runner, &session.db, collection, done);
    }
    // Close the driver's connections within the bound; what does not close is dropped.
    let _ = tokio::time::timeout(Duration::from_millis(500), session.client.shutdown()).await;
    Some(())
}

/// The caller's role with its IAM path, read with iam:GetRole (bounded by 3 s): asked only after
/// Atlas found no user for an assumed role. Callers without iam:GetRole get None, and the hint
/// says only that paths are dropped.
async fn role_path_lookup(
    resolved: &credentials::Resolved,
    in_use: &InUse,
    facts: &IdentityFacts,
) -> Option<String> {
    const LOOKUP_BUDGET: Duration = Duration::from_secs(3);
    let role = facts.atlas_user_arn.clone()?;
    let sdk = credentials::sdk_config(resolved, in_use.creds.clone(), LOOKUP_BUDGET).await;
    tokio::time::timeout(LOOKUP_BUDGET, credentials::role_with_path(&sdk, &role))
        .await
        .ok()
        .flatten()
}

/// SIGINT and SIGTERM, caught while the command runs, so that a roundtrip interrupted after its
/// insert still deletes its document.
struct Signals {
    on: bool,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install(on: bool) -> Signals {
        Signals {
            on,
            #[cfg(unix)]
            term: if on {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
            } else {
                None
            },
        }
    }

    async fn received(mut self) -> &'static str {
        if !self.on {
            return std::future::pending().await;
        }
        #[cfg(unix)]
        {
            let term = async {
                match self.term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

async fn interruptible<T>(
    work: impl std::future::Future<Output = Result<Passed<T>, Diagnosis>>,
    signals: Signals,
) -> Result<Passed<T>, Diagnosis> {
    tokio::select! {
        done = work => done,
        name = signals.received() => Err(Diagnosis::new(
            Kind::CommandFailed,
            format!("interrupted by {name} while the command ran"),
            "run it again; a roundtrip's probe document is deleted before atlas-iam exits",
        )),
    }
}

/// Says in the report what the cleanup did, and fails the command stage when a probe document
/// may remain.
fn report_cleanup(runner: &mut Runner<'_>, db: &str, coll: &str, done: Cleanup) {
    let failed = runner
        .report
        .stage(Stage::Command)
        .is_some_and(|s| s.status == Status::Failed);
    if done.remaining.is_empty() {
        let mut notes = Vec::new();
        if failed && done.deleted > 0 {
            notes.push(format!(
                "the probe document was deleted after the failure ({} deleted)",
                done.deleted
            ));
        }
        if done.dropped_collection {
            notes.push(format!(
                "{db}.{coll} was created by this run and is empty again: dropped"
            ));
        }
        for n in notes {
            runner.note_last(n);
        }
        return;
    }
    let ids: Vec<String> = done.remaining.iter().map(|id| id.to_hex()).collect();
    runner.report.leftover = Some(Leftover {
        database: db.to_string(),
        collection: coll.to_string(),
        ids: ids.clone(),
    });
    let why = done
        .error
        .map(|e| format!(": {e}"))
        .unwrap_or_else(|| ": the delete removed nothing".to_string());
    let text = format!(
        "a probe document may remain in {db}.{coll}, _id ObjectId(\"{}\"){why}",
        ids.join("\"), ObjectId(\"")
    );
    if failed {
        runner.warn_stage(Stage::Command, text);
    } else {
        runner.fail_stage(
            Stage::Command,
            Diagnosis::new(
                Kind::CommandFailed,
                text,
                format!("delete it by hand: db.{coll}.deleteMany({{atlas_iam_probe: {{$exists: true}}}})"),
            ),
        );
    }
}
