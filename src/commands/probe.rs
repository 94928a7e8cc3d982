//! ping, list-collections, roundtrip: every stage, config to command, as one `ProbeRun`.
//!
//! Stages are a report order, not an execution order. The timeline of a run:
//!
//! ```text
//! config, target            in order, before anything else
//! ├─ atlas                  with --atlas: the Admin API's lists, spawned at once (needs no AWS)
//! credentials               in order (the chain decides everything after it)
//! ├─ identity               STS GetCallerIdentity (or AssumeRole then it), spawned
//! └─ network                spawned: dns, then beside each other
//!    ├─ tcp → tls           the network checks (probe::network), over the same connections
//!    └─ driver              connect, hello, MONGODB-AWS, then the command (--count times)
//! report                    identity, atlas, dns, tcp, tls, auth, command: each stage awaits
//!                           its own work; the first failure decides, later work is dropped
//! after a refusal           with --atlas: change status, access history, LDAP (timing::ATLAS_GRACE)
//! finish                    roundtrip's cleanup (timing::CLEANUP_BUDGET); the driver's client
//!                           is released with the process
//! ```
//!
//! Which stage reads what: identity's facts (the ARN Atlas looks up) feed the atlas stage's
//! judgement and auth's classification; the atlas stage's analysis explains the failures of dns,
//! tcp, tls, auth and command; the driver's ready time splits auth from command.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::{oneshot, Notify};

use super::{
    atlas_settle, atlas_work, credential_info, credentials_stages, identity_settle, identity_work,
    AtlasFetched, IdentityFound, IdentityMode, InUse,
};
use crate::children::Signals;
use crate::cli::Repeat;
use crate::config::Config;
use crate::credentials;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::probe;
use crate::probe::auth::{IdentityFacts, ReadyAt, Session};
use crate::probe::command::{CommandFailure, CommandOptions, ProbeCommand};
use crate::probe::dns::Seedlist;
use crate::probe::network::Network;
use crate::probe::roundtrip::{self, Probe};
use crate::runner::{Passed, Runner, Speculative, Timed};
use crate::timing::CLEANUP_BUDGET;

/// ping, list-collections, roundtrip: every stage; returns None where a stage failed.
pub(crate) async fn run(
    runner: &mut Runner<'_>,
    cfg: &Config,
    command: ProbeCommand,
    collection: &str,
    repeat: &Repeat,
) -> Option<()> {
    let mut run = ProbeRun::start(runner, cfg, command, collection, repeat).await?;
    let reported = run.report(runner).await;
    run.finish(runner).await;
    reported
}

/// What the concurrent work shares with the reporting: the driver's session once it is open,
/// when its first connection was ready, what a roundtrip wrote, and the signal that the probe's
/// own work is done (the Admin API then gets at most `ATLAS_GRACE` more).
#[derive(Clone, Default)]
struct Shared {
    session: Arc<OnceLock<Session>>,
    ready: ReadyAt,
    written: Probe,
    done: Arc<Notify>,
}

/// One probe: its configuration, the work it started, and what that work shares.
struct ProbeRun<'c> {
    cfg: &'c Config,
    opts: CommandOptions,
    network: Network,
    resolved: credentials::Resolved,
    in_use: InUse,
    shared: Shared,
    /// When the run began (epoch ms), to find its attempt in Atlas's access history.
    began_ms: u64,
    identity: Option<Speculative<Timed<IdentityFound>>>,
    atlas: Option<Speculative<AtlasFetched>>,
    /// The network checks and the driver; dropping it cancels what was not reported.
    work: Option<Speculative<()>>,
    rx: Receivers,
    signals: Option<Signals>,
}

impl<'c> ProbeRun<'c> {
    /// config, target and credentials, in order; then everything else starts at once. None when
    /// one of those failed (recorded).
    async fn start(
        runner: &mut Runner<'_>,
        cfg: &'c Config,
        command: ProbeCommand,
        collection: &str,
        repeat: &Repeat,
    ) -> Option<ProbeRun<'c>> {
        let began_ms = crate::atlas::refusal::now_ms();
        let timeout_secs = cfg.timeout.as_secs();
        // every stage; assume only with a role, atlas only with --atlas
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
        // No fixed shares of --timeout: a connection gets what the drivers give it by default
        // (connectTimeoutMS, 10 s, for the connection, the TLS handshake and the hello), so that
        // a slow cluster the drivers reach is never failed (slow stages get a warning with their
        // time), and a silent one is named by its stage before the run's deadline.
        // Only a roundtrip has something to undo: it catches the signals itself (the run's own
        // handler leaves it alone), from before its speculative insert can start.
        let signals = Signals::install(command == ProbeCommand::Roundtrip);
        let identity = Speculative::spawn(crate::runner::timed(identity_work(
            runner, cfg, &resolved, &in_use, mode,
        )));
        let opts = CommandOptions {
            command,
            collection: collection.to_string(),
            count: repeat.count,
            interval: Duration::from_secs_f64(repeat.interval),
        };
        let network = Network {
            target,
            dns_server: cfg.dns_server,
            deadline: runner.deadline(),
        };
        let shared = Shared::default();
        let (tx, rx) = Channels::new();
        let work = Speculative::spawn(network_and_driver(
            network.clone(),
            in_use.creds.clone(),
            tx,
            opts.clone(),
            shared.clone(),
        ));
        Some(ProbeRun {
            cfg,
            opts,
            network,
            resolved,
            in_use,
            shared,
            began_ms,
            identity: Some(identity),
            atlas,
            work: Some(work),
            rx,
            signals: Some(signals),
        })
    }

    /// Reports identity, atlas, dns, tcp, tls, auth and command in that order; None at the
    /// first failure.
    async fn report(&mut self, runner: &mut Runner<'_>) -> Option<()> {
        let cfg = self.cfg;
        let identity = self.identity.take();
        let identity = async {
            match identity {
                Some(work) => work.join().await,
                None => None,
            }
            .unwrap_or_else(|| {
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
        let analysis = match self.atlas.take() {
            Some(work) => {
                let target = &self.network.target;
                let hosts: Vec<String> = target.hosts.iter().map(|h| h.to_string()).collect();
                let targets = crate::atlas::explain::target_hosts(target.srv.as_deref(), &hosts);
                let arn = facts.atlas_user_arn.clone();
                atlas_settle(
                    runner,
                    super::atlas_bounded(work, self.shared.done.clone()),
                    arn.as_deref(),
                    &targets,
                    &cfg.db,
                    self.opts.command.need(),
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
        let rx = &mut self.rx;
        runner
            .settle(Stage::Dns, explained(Stage::Dns, received(&mut rx.dns), a))
            .await?;
        runner
            .settle(Stage::Tcp, explained(Stage::Tcp, received(&mut rx.tcp), a))
            .await?;
        runner
            .settle(Stage::Tls, explained(Stage::Tls, received(&mut rx.tls), a))
            .await?;
        self.report_driver(runner, &facts, analysis.as_ref(), a)
            .await
    }

    /// auth and command, from the driver's run; after a refusal, what Atlas keeps of it.
    async fn report_driver(
        &mut self,
        runner: &mut Runner<'_>,
        facts: &IdentityFacts,
        analysis: Option<&crate::atlas::Analysis>,
        a: crate::atlas::View<'_>,
    ) -> Option<()> {
        let cfg = self.cfg;
        let Ok(driver) = (&mut self.rx.driver).await else {
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
        let signals = self
            .signals
            .take()
            .unwrap_or_else(|| Signals::install(false));
        let interrupted;
        let run = tokio::select! {
            run = tokio::time::timeout_at(deadline, driver.join()) => { interrupted = None; run.ok().flatten() }
            name = signals.received() => { interrupted = Some(name); None }
        };
        let ready = &self.shared.ready;
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
        let role_path = role_path_lookup(&self.resolved, &self.in_use, facts, runner.remaining());
        let auth =
            probe::auth::auth_outcome(run.started, run.ready, failure, run.ended, facts, role_path)
                .await;
        let (auth, took) = explained(Stage::Auth, async { auth }, a).await;
        let auth = match (auth, analysis, &cfg.atlas) {
            (Err(d), Some(analysis), Some(Ok(api))) if refused(d.kind) => {
                Err(self.atlas_reason(runner, d, analysis, api).await)
            }
            (auth, _, _) => auth,
        };
        runner.settle(Stage::Auth, async { (auth, took) }).await?;
        if self.shared.session.get().is_some_and(|s| s.reused) {
            runner.note_last(
                "over the driver's client of an earlier invocation, kept by this warm process: \
                 its connections were authenticated then"
                    .to_string(),
            );
        }
        let took = run.ready.map_or(run.ended, |r| {
            run.ended
                .saturating_sub(r.saturating_duration_since(run.started))
        });
        let outcome = run.outcome.map_err(|f| {
            crate::atlas::explain(Stage::Command, f.classify(&self.opts, &cfg.db, facts), a)
        });
        let latency = runner
            .settle(Stage::Command, async { (outcome, took) })
            .await;
        let done = latency.is_some();
        runner.set_latency(latency);
        done.then_some(())
    }

    /// A refusal explained by what Atlas keeps of it (read after the fact, within the grace the
    /// API has left), its facts added to the atlas stage.
    async fn atlas_reason(
        &self,
        runner: &mut Runner<'_>,
        d: Diagnosis,
        analysis: &crate::atlas::Analysis,
        api: &crate::atlas::api::ApiConfig,
    ) -> Diagnosis {
        let Some(cluster) = &analysis.cluster else {
            return d;
        };
        let arn = analysis.expected.as_ref().map(|(arn, _)| arn.as_str());
        let budget = crate::timing::ATLAS_GRACE.min(runner.remaining());
        let f = crate::atlas::refusal::read(api.clone(), cluster, arn, self.began_ms, budget).await;
        runner.amend_facts(Stage::Atlas, |facts| {
            if let Some(atlas) = facts.atlas.as_mut() {
                atlas.refusal = Some(f.facts.clone());
            }
        });
        for w in &f.warnings {
            runner.warn_stage(Stage::Atlas, w.clone());
        }
        crate::atlas::refusal::explain(d, &f, analysis)
    }

    /// Nothing runs past the report: the network checks and the driver's command end here,
    /// before the cleanup reads what was written.
    async fn finish(mut self, runner: &mut Runner<'_>) {
        drop(self.work.take());
        let shared = &self.shared;
        if self.opts.command == ProbeCommand::Roundtrip
            && shared.ready.get().is_none()
            && runner.report().first_failure().is_some()
        {
            runner.note_last(
                "no connection was authenticated, so no probe document was written and the \
                 cleanup has nothing to delete"
                    .to_string(),
            );
        }
        if self.opts.command == ProbeCommand::Roundtrip {
            if let Some(session) = shared.session.get() {
                // A command goes only over an authenticated connection: when none was ever
                // ready, the insert was never sent, and there is nothing to clean up or wait for.
                if shared.ready.get().is_some() {
                    let done = roundtrip::cleanup(
                        session,
                        &self.opts.collection,
                        &shared.written,
                        CLEANUP_BUDGET,
                    )
                    .await;
                    roundtrip::report_cleanup(runner, &session.db, &self.opts.collection, done);
                }
            }
        }
        // The driver's client is released with the process, neither shut down nor dropped:
        // shutdown() waits one more round trip for endSessions, and dropping the last handle
        // spawns that exchange in the background, where it races the runtime's shutdown (the
        // driver panics when its pool goes away under a request). A leaked handle keeps the drop
        // from spawning it. The server expires idle sessions by itself
        // (logicalSessionTimeoutMinutes), as for any process that exits.
        if let Some(session) = shared.session.get() {
            std::mem::forget(session.client.clone());
        }
    }
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

/// Tells whoever waits that the probe's own work is done, however the driver's run ends.
struct Told(Arc<Notify>);

impl Drop for Told {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// dns; then, at once, the driver's connection and command beside the tcp and tls checks (whose
/// connection is the one the tls stage uses: none is opened only to be closed).
async fn network_and_driver(
    network: Network,
    creds: aws_credential_types::Credentials,
    tx: Channels,
    opts: CommandOptions,
    shared: Shared,
) {
    let dns = network.dns().await;
    let seedlist = match &dns.0 {
        Ok(p) => p.value.clone(),
        Err(_) => {
            let _ = tx.dns.send(dns);
            shared.done.notify_one();
            return;
        }
    };
    let _ = tx.dns.send(dns);

    let driver = Speculative::spawn(driver(
        network.target.clone(),
        seedlist.clone(),
        creds,
        network.left(),
        opts,
        shared,
    ));
    if tx.driver.send(driver).is_err() {
        return;
    }
    let (tcp, connections) = network.tcp(&seedlist).await;
    let _ = tx.tcp.send(tcp);
    let Some(connections) = connections else {
        return;
    };
    let tls = network.tls(&seedlist, connections).await;
    let _ = tx.tls.send(tls);
}

/// The official driver: its connection, MONGODB-AWS and the command.
async fn driver(
    target: probe::Destination,
    seedlist: Seedlist,
    creds: aws_credential_types::Credentials,
    budget: Duration,
    opts: CommandOptions,
    shared: Shared,
) -> DriverRun {
    let _told = Told(shared.done.clone());
    crate::worker::note_driver("started");
    let started = StdInstant::now();
    let session =
        match probe::auth::open_client(&target, &seedlist, creds, budget, &shared.ready).await {
            Ok(opened) => opened,
            Err(d) => {
                crate::worker::note_driver("ended");
                return DriverRun {
                    started,
                    ready: None,
                    outcome: Err(CommandFailure::Other(d)),
                    ended: started.elapsed(),
                };
            }
        };
    let session = shared.session.get_or_init(|| session);
    let outcome =
        probe::command::command_stage(session, &opts, started, &shared.ready, &shared.written)
            .await;
    crate::worker::note_driver("ended");
    DriverRun {
        started,
        ready: shared.ready.get(),
        outcome,
        ended: started.elapsed(),
    }
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
