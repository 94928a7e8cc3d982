//! ping, list-collections, roundtrip: every stage, config to command.

use std::time::{Duration, Instant as StdInstant};

use super::{credential_info, credentials_stages, identity_stage};
use crate::cli::Repeat;
use crate::config::Config;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::probe;
use crate::probe::command::ProbeCommand;
use crate::runner::Runner;

/// A network stage's share of the run: a quarter of --timeout, at least 2 s, never past the end.
fn share(runner: &Runner<'_>, timeout: Duration) -> Duration {
    let quarter = timeout.div_f64(4.0).max(Duration::from_secs(2));
    quarter.min(runner.remaining())
}

/// ping, list-collections, roundtrip: every stage; returns None where a stage failed.
pub async fn run(
    runner: &mut Runner<'_>,
    cfg: &Config,
    command: ProbeCommand,
    collection: &str,
    repeat: &Repeat,
) -> Option<()> {
    let timeout = cfg.timeout;
    let timeout_secs = timeout.as_secs();
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
    let facts = identity_stage(runner, cfg, &resolved, &in_use).await?;

    let budget = share(runner, timeout);
    let hosts = runner
        .stage(
            Stage::Dns,
            probe::dns::stage(&target, cfg.dns_server, budget),
        )
        .await?;
    let budget = share(runner, timeout);
    runner
        .stage(Stage::Tcp, probe::tcp::tcp_stage(&hosts.hosts, budget))
        .await?;
    let budget = share(runner, timeout);
    runner
        .stage(
            Stage::Tls,
            probe::tls::tls_stage(&hosts.hosts, target.tls, target.ca_file.as_deref(), budget),
        )
        .await?;
    let budget = runner.remaining();
    let started = StdInstant::now();
    let session = runner
        .stage(
            Stage::Auth,
            probe::auth::auth_stage(&target, &hosts, in_use.creds.clone(), &facts, budget),
        )
        .await?;
    let cold = started.elapsed();
    let opts = probe::command::CommandOptions {
        command,
        collection: collection.to_string(),
        count: repeat.count,
        interval: Duration::from_secs_f64(repeat.interval),
    };
    let latency = runner
        .stage(
            Stage::Command,
            probe::command::command_stage(&session, &opts, cold, &facts),
        )
        .await;
    runner.report.latency = latency;
    // Close the driver's connections within the bound; what does not close is dropped.
    let _ = tokio::time::timeout(Duration::from_millis(500), session.client.shutdown()).await;
    Some(())
}
