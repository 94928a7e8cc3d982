//! ping, list-collections, roundtrip: every stage, config to command.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::oneshot;

use super::{
    atlas_settle, atlas_work, credential_info, credentials_stages, identity_settle, identity_work,
    AtlasFetched, IdentityFound, IdentityMode, InUse,
};
use crate::cli::Repeat;
use crate::config::Config;
use crate::credentials;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::probe;
use crate::probe::auth::{IdentityFacts, ReadyAt, Session};
use crate::probe::command::{CommandFailure, ProbeCommand};
use crate::probe::dns::Seedlist;
use crate::probe::roundtrip::{self, Cleanup, Probe, CLEANUP_BUDGET};
use crate::probe::Destination;
use crate::report::{Leftover, Status};
use crate::runner::{timed, Passed, Runner, Speculative, Timed};

use crate::timing::{DRIVER_CONNECT_TIMEOUT, MARGIN};

/// ping, list-collections, roundtrip: every stage; returns None where a stage failed.
pub(crate) async fn run(
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
            .filter(|s| *s != Stage::Assume || cfg.role.is_some())
            .filter(|s| *s != Stage::Atlas || cfg.atlas.is_some()),
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
    // The Admin API needs nothing from AWS: it is read from the start, beside everything else.
    let atlas = atlas_work(runner, cfg, crate::atlas::Mode::Preflight);
    let (resolved, in_use) = credentials_stages(runner, cfg).await?;
    runner.set_credentials(credential_info(&in_use));
    // Without a role, STS is only a preflight here: the driver signs locally and Atlas calls
    // STS itself, so an STS this machine cannot reach is a warning, not a failure.
    let mode = if cfg.role.is_some() {
        IdentityMode::Answer
    } else {
        IdentityMode::Preflight
    };

    // Stages are a report order, not an execution order: the STS preflight, the network checks
    // and the driver's own connection all start now; each stage is reported in turn, and the
    // first that failed decides. Work not reported yet is cancelled when the run ends early
    // (`Speculative` aborts on drop).
    //
    // No fixed shares of --timeout: a connection gets what the drivers give it by default
    // (connectTimeoutMS, 10 s, for the connection, the TLS handshake and the hello), so that a
    // slow cluster the drivers reach is never failed (slow stages get a warning with their
    // time), and a silent one is named by its stage before the run's deadline.
    // Only a roundtrip has something to undo: it catches the signals itself (the run's own
    // handler leaves it alone), from before its speculative insert can start.
    let signals = crate::children::Signals::install(command == ProbeCommand::Roundtrip);
    let identity = Speculative::spawn(timed(identity_work(runner, cfg, &resolved, &in_use, mode)));
    let opts = probe::command::CommandOptions {
        command,
        collection: collection.to_string(),
        count: repeat.count,
        interval: Duration::from_secs_f64(repeat.interval),
    };
    let written = Probe::default();
    let session_slot: Arc<OnceLock<Session>> = Arc::default();
    let ready = ReadyAt::default();
    // told when the probe's own work is done: the Admin API then gets at most ATLAS_GRACE more
    let others_done = Arc::new(tokio::sync::Notify::new());
    let (tx, mut rx) = Channels::new();
    let network = Speculative::spawn(network(
        target.clone(),
        cfg.dns_server,
        in_use.creds.clone(),
        runner.deadline(),
        tx,
        opts.clone(),
        written.clone(),
        session_slot.clone(),
        ready.clone(),
        others_done.clone(),
    ));

    let reported = report_in_order(
        runner,
        cfg,
        &resolved,
        &in_use,
        identity,
        atlas,
        &target,
        &mut rx,
        &opts,
        &ready,
        signals,
        &others_done,
    )
    .await;
    // Nothing runs past the report: the network checks and the driver's command end here
    // (dropping a Speculative aborts it), before the cleanup reads what was written.
    drop(network);
    drop(rx);
    if command == ProbeCommand::Roundtrip {
        if let Some(session) = session_slot.get() {
            // A command goes only over an authenticated connection: when none was ever ready,
            // the insert was never sent, and there is nothing to clean up or wait for.
            if ready.get().is_some() {
                let done = roundtrip::cleanup(session, collection, &written, CLEANUP_BUDGET).await;
                report_cleanup(runner, &session.db, collection, done);
            }
        }
    }
    // The driver's client is released with the process, neither shut down nor dropped:
    // shutdown() waits one more round trip for endSessions, and dropping the last handle spawns
    // that exchange in the background, where it races the runtime's shutdown (the driver panics
    // when its pool goes away under a request). A leaked handle keeps the drop from spawning it.
    // The server expires idle sessions by itself (logicalSessionTimeoutMinutes), as for any
    // process that exits; atlas-iam runs one command per process.
    if let Some(session) = session_slot.get() {
        std::mem::forget(session.client.clone());
    }
    reported
}

/// Each stage's outcome as its work ends, sent to the reporter.
struct Channels {
    dns: oneshot::Sender<Timed<Seedlist>>,
    tcp: oneshot::Sender<Timed<()>>,
    tls: oneshot::Sender<Timed<()>>,
    driver: oneshot::Sender<Speculative<DriverRun>>,
}

struct Receivers {
    dns: oneshot::Receiver<Timed<Seedlist>>,
    tcp: oneshot::Receiver<Timed<()>>,
    tls: oneshot::Receiver<Timed<()>>,
    driver: oneshot::Receiver<Speculative<DriverRun>>,
}

impl Channels {
    fn new() -> (Channels, Receivers) {
        let (dns, dns_rx) = oneshot::channel();
        let (tcp, tcp_rx) = oneshot::channel();
        let (tls, tls_rx) = oneshot::channel();
        let (driver, driver_rx) = oneshot::channel();
        (
            Channels {
                dns,
                tcp,
                tls,
                driver,
            },
            Receivers {
                dns: dns_rx,
                tcp: tcp_rx,
                tls: tls_rx,
                driver: driver_rx,
            },
        )
    }
}

/// What the driver did: when it started, when its connection was authenticated, and how the
/// command went.
struct DriverRun {
    started: StdInstant,
    ready: Option<StdInstant>,
    outcome: Result<Passed<crate::report::Latency>, CommandFailure>,
    ended: Duration,
}

fn budget_until(deadline: tokio::time::Instant) -> Duration {
    deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .saturating_sub(MARGIN)
        .min(DRIVER_CONNECT_TIMEOUT)
}

/// Tells whoever waits that the probe's own work is done, however the driver's run ends.
struct Told(Arc<tokio::sync::Notify>);

impl Drop for Told {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// dns; then, at once, the driver's connection and command beside the tcp and tls checks (whose
/// connection is the one the tls stage uses: none is opened only to be closed).
#[allow(clippy::too_many_arguments)]
async fn network(
    target: Destination,
    dns_server: Option<std::net::SocketAddr>,
    creds: aws_credential_types::Credentials,
    deadline: tokio::time::Instant,
    tx: Channels,
    opts: probe::command::CommandOptions,
    written: Probe,
    session_slot: Arc<OnceLock<Session>>,
    ready: ReadyAt,
    done: Arc<tokio::sync::Notify>,
) {
    let dns = timed(probe::dns::stage(
        &target,
        dns_server,
        budget_until(deadline),
    ))
    .await;
    let seedlist = match &dns.0 {
        Ok(p) => p.value.clone(),
        Err(_) => {
            let _ = tx.dns.send(dns);
            done.notify_one();
            return;
        }
    };
    let _ = tx.dns.send(dns);

    let driver_budget = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .saturating_sub(MARGIN);
    let driver = Speculative::spawn({
        let target = target.clone();
        let seedlist = seedlist.clone();
        let done = done.clone();
        async move {
            let _told = Told(done);
            let started = StdInstant::now();
            let session =
                match probe::auth::open_client(&target, &seedlist, creds, driver_budget, &ready)
                    .await
                {
                    Ok(opened) => opened,
                    Err(d) => {
                        return DriverRun {
                            started,
                            ready: None,
                            outcome: Err(CommandFailure::Other(d)),
                            ended: started.elapsed(),
                        }
                    }
                };
            let session = session_slot.get_or_init(|| session);
            let outcome =
                probe::command::command_stage(session, &opts, started, &ready, &written).await;
            DriverRun {
                started,
                ready: ready.get(),
                outcome,
                ended: started.elapsed(),
            }
        }
    });
    if tx.driver.send(driver).is_err() {
        return;
    }

    let tcp = timed(probe::tcp::tcp_stage(
        &seedlist.hosts,
        budget_until(deadline),
    ))
    .await;
    let (tcp, connections) = match tcp {
        (Ok(p), took) => {
            let (connections, passed) = p.split();
            ((Ok(passed), took), Some(connections))
        }
        (Err(d), took) => ((Err(d), took), None),
    };
    let _ = tx.tcp.send(tcp);
    let Some(connections) = connections else {
        return;
    };
    // the driver follows the hello's hosts unless the connection is direct or load-balanced
    let txt_true = |name: &str| {
        seedlist
            .txt_options
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(name) && v.eq_ignore_ascii_case("true"))
    };
    let load_balanced = match target.uri_options.get("loadBalanced") {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => txt_true("loadBalanced"),
    };
    let discovers = !target.uri_options.is_true("directConnection") && !load_balanced;
    let tls = timed(probe::tls::tls_stage(
        connections,
        target.tls,
        target.ca_file.as_deref(),
        discovers,
        budget_until(deadline),
    ))
    .await;
    let _ = tx.tls.send(tls);
}

/// A stage's outcome from its channel; a closed channel (its work cancelled) is an internal
/// fault, never a pass.
async fn received<T>(rx: &mut oneshot::Receiver<Timed<T>>) -> Timed<T> {
    match rx.await {
        Ok(t) => t,
        Err(_) => (
            Err(Diagnosis::new(
                Kind::Internal,
                "the stage's work ended without an outcome",
                "report this",
            )),
            Duration::ZERO,
        ),
    }
}

/// A stage's failure explained with the Admin API's facts (see `atlas::explain`).
async fn explained<T>(
    stage: Stage,
    work: impl std::future::Future<Output = Timed<T>>,
    atlas: crate::atlas::View<'_>,
) -> Timed<T> {
    let (outcome, took) = work.await;
    (
        outcome.map_err(|d| crate::atlas::explain(stage, d, atlas)),
        took,
    )
}

/// Reports identity, atlas, dns, tcp, tls, auth and command in that order; None at the first
/// failure.
#[allow(clippy::too_many_arguments)]
async fn report_in_order(
    runner: &mut Runner<'_>,
    cfg: &Config,
    resolved: &credentials::Resolved,
    in_use: &InUse,
    identity: Speculative<Timed<IdentityFound>>,
    atlas: Option<Speculative<AtlasFetched>>,
    target: &Destination,
    rx: &mut Receivers,
    opts: &probe::command::CommandOptions,
    ready: &ReadyAt,
    signals: crate::children::Signals,
    others_done: &Arc<tokio::sync::Notify>,
) -> Option<()> {
    // when the run began, to find its attempt in Atlas's access history
    let run_began = crate::atlas::refusal::now_ms();
    let identity = async {
        identity.join().await.unwrap_or_else(|| {
            (
                Err(Diagnosis::new(
                    Kind::Internal,
                    "the identity check ended without an outcome",
                    "report this",
                )),
                Duration::ZERO,
            )
        })
    };
    let facts = identity_settle(runner, cfg, identity).await?;
    let analysis = match atlas {
        Some(work) => {
            let hosts: Vec<String> = target.hosts.iter().map(|h| h.to_string()).collect();
            let targets = crate::atlas::explain::target_hosts(target.srv.as_deref(), &hosts);
            let arn = facts.atlas_user_arn.clone();
            atlas_settle(
                runner,
                super::atlas_bounded(work, others_done.clone()),
                arn.as_deref(),
                &targets,
                &cfg.db,
                opts.command.need(),
                crate::atlas::Mode::Preflight,
            )
            .await
        }
        None => None,
    };
    let a = match (&analysis, cfg.atlas.is_some()) {
        (Some(analysis), _) => crate::atlas::View::Read(analysis),
        (None, true) => crate::atlas::View::Unavailable,
        (None, false) => crate::atlas::View::NotAsked,
    };
    runner
        .settle(Stage::Dns, explained(Stage::Dns, received(&mut rx.dns), a))
        .await?;
    runner
        .settle(Stage::Tcp, explained(Stage::Tcp, received(&mut rx.tcp), a))
        .await?;
    runner
        .settle(Stage::Tls, explained(Stage::Tls, received(&mut rx.tls), a))
        .await?;

    let Ok(driver) = (&mut rx.driver).await else {
        runner.record(
            Stage::Auth,
            Err(Diagnosis::new(
                Kind::Internal,
                "the driver was not started",
                "report this",
            )),
            0,
        );
        return None;
    };
    // The command runs until it ends, the deadline passes or a signal comes.
    let deadline = runner.deadline();
    let interrupted;
    let run = tokio::select! {
        run = tokio::time::timeout_at(deadline, driver.join()) => { interrupted = None; run.ok().flatten() }
        name = signals.received() => { interrupted = Some(name); None }
    };
    let Some(run) = run else {
        // Cut by the deadline or a signal: authentication passed if a connection was made
        // ready; the command did not end.
        let cut = |stage: Stage| match interrupted {
            Some(name) => Diagnosis::new(
                Kind::CommandFailed,
                format!("interrupted by {name} while the {} stage ran", stage.name()),
                "run it again; a roundtrip's probe document is deleted before atlas-iam exits",
            ),
            None => crate::diagnosis::timeout(stage),
        };
        if ready.get().is_none() {
            runner.record(Stage::Auth, Err(cut(Stage::Auth)), 0);
            return None;
        }
        runner.record(
            Stage::Auth,
            Ok(Passed::new(
                (),
                "MONGODB-AWS passed (a connection was authenticated)",
            )),
            0,
        );
        runner.record(Stage::Command, Err(cut(Stage::Command)), 0);
        return None;
    };
    let failure = match &run.outcome {
        Err(CommandFailure::Driver(f)) if run.ready.is_none() => Some(f),
        _ => None,
    };
    if let Err(CommandFailure::Other(d)) = &run.outcome {
        if run.ready.is_none() {
            runner.record(Stage::Auth, Err(d.clone()), run.ended.as_millis() as u64);
            return None;
        }
    }
    let role_path = role_path_lookup(resolved, in_use, &facts, runner.remaining());
    let auth = probe::auth::auth_outcome(
        run.started,
        run.ready,
        failure,
        run.ended,
        &facts,
        role_path,
    )
    .await;
    let (auth, took) = explained(Stage::Auth, async { auth }, a).await;
    let auth = match (auth, &analysis, &cfg.atlas) {
        (Err(d), Some(analysis), Some(Ok(api))) if refused(d.kind) => match &analysis.cluster {
            Some(cluster) => {
                let arn = analysis.expected.as_ref().map(|(arn, _)| arn.as_str());
                let budget = crate::timing::ATLAS_GRACE.min(runner.remaining());
                let f =
                    crate::atlas::refusal::read(api.clone(), cluster, arn, run_began, budget).await;
                runner.amend_facts(Stage::Atlas, |facts| {
                    if let Some(atlas) = facts.atlas.as_mut() {
                        atlas.refusal = Some(f.facts.clone());
                    }
                });
                for w in &f.warnings {
                    runner.warn_stage(Stage::Atlas, w.clone());
                }
                Err(crate::atlas::refusal::explain(d, &f, analysis))
            }
            None => Err(d),
        },
        (auth, _, _) => auth,
    };
    runner.settle(Stage::Auth, async { (auth, took) }).await?;
    let took = run.ready.map_or(run.ended, |r| {
        run.ended
            .saturating_sub(r.saturating_duration_since(run.started))
    });
    let outcome = run
        .outcome
        .map_err(|f| crate::atlas::explain(Stage::Command, f.classify(opts, &cfg.db, &facts), a));
    let latency = runner
        .settle(Stage::Command, async { (outcome, took) })
        .await;
    let done = latency.is_some();
    runner.set_latency(latency);
    done.then_some(())?;
    Some(())
}

/// A refusal by Atlas itself, which its own records may explain (not a mechanism or protocol
/// fault of the client).
fn refused(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::AuthenticationFailed
            | Kind::AtlasUserMissing
            | Kind::AtlasStsRejected
            | Kind::AtlasUserWrongType
            | Kind::AtlasUserOtherClusters
    )
}

/// The caller's role with its IAM path, read with iam:GetRole (bounded by 3 s and by what is
/// left of the run, the SDK's set-up included): asked only after Atlas found no user for an
/// assumed role. Callers without iam:GetRole get None, and the hint says only that paths are
/// dropped.
async fn role_path_lookup(
    resolved: &credentials::Resolved,
    in_use: &InUse,
    facts: &IdentityFacts,
    left: Duration,
) -> Option<String> {
    let budget = crate::timing::ROLE_PATH_BUDGET.min(left);
    let role = facts.atlas_user_arn.clone()?;
    let lookup = async {
        let sdk = credentials::sdk_config(resolved, in_use.creds.clone(), budget).await;
        credentials::role_with_path(&sdk, &role).await
    };
    tokio::time::timeout(budget, lookup).await.ok().flatten()
}

/// Says in the report what the cleanup did, and fails the command stage when a probe document
/// may remain.
fn report_cleanup(runner: &mut Runner<'_>, db: &str, coll: &str, done: Cleanup) {
    // The command stage, or the earlier stage whose failure stopped the run before it (the
    // driver's insert may have run speculatively all the same).
    let failed_at = match runner.report().stage(Stage::Command) {
        Some(s) if s.status != Status::Failed => None,
        Some(_) => Some(Stage::Command),
        None => runner.report().first_failure().map(|s| s.stage),
    };
    let failed = failed_at.is_some();
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
    runner.set_leftover(Leftover {
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
    if let Some(stage) = failed_at {
        runner.warn_stage(stage, text);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CommandName;
    use crate::runner::Silent;
    use mongodb::bson::oid::ObjectId;

    fn runner_failed_at(stage: Stage) -> Runner<'static> {
        let mut r = Runner::new(
            CommandName::Roundtrip,
            Duration::from_secs(5),
            crate::secret::Scrubber::new(),
            &Silent,
        );
        r.record(Stage::Config, Ok(Passed::new((), "")), 0);
        r.record(
            stage,
            Err(Diagnosis::new(Kind::TcpRefused, "refused", "check")),
            0,
        );
        r
    }

    #[test]
    fn a_document_left_by_speculative_work_is_reported_at_the_stage_that_failed() {
        let mut r = runner_failed_at(Stage::Tcp);
        let id = ObjectId::new();
        let done = Cleanup {
            remaining: vec![id],
            deleted: 0,
            dropped_collection: false,
            error: Some("connection lost".into()),
        };
        report_cleanup(&mut r, "test", "atlas_iam_probe", done);
        let tcp = r.report().stage(Stage::Tcp).expect("tcp");
        assert_eq!(
            tcp.status,
            Status::Failed,
            "the first failure still decides"
        );
        assert!(
            tcp.warnings.iter().any(|w| w.contains(&id.to_hex())),
            "{:?}",
            tcp.warnings
        );
        assert_eq!(
            r.report().leftover.as_ref().map(|l| l.ids.clone()),
            Some(vec![id.to_hex()])
        );

        // deleted after the failure: said where the run stopped
        let mut r = runner_failed_at(Stage::Identity);
        let done = Cleanup {
            remaining: vec![],
            deleted: 1,
            dropped_collection: false,
            error: None,
        };
        report_cleanup(&mut r, "test", "atlas_iam_probe", done);
        let identity = r.report().stage(Stage::Identity).expect("identity");
        assert!(
            identity.detail.contains("deleted after the failure"),
            "{}",
            identity.detail
        );
    }
}
