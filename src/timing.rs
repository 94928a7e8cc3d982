//! Every time budget of a run, in one place, and the millisecond helpers. README's Stages
//! section states these figures; a test checks it against this module.

use std::time::{Duration, Instant};

use crate::diagnosis::Stage;

/// `--timeout`'s default, in seconds: the bound on the whole run.
pub(crate) const DEFAULT_TIMEOUT_S: u64 = 30;
/// The drivers' default connectTimeoutMS: what dns, tcp, tls and the driver's connection each
/// get, never past the deadline.
pub(crate) const DRIVER_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Kept back from the run's deadline so that a stage's own bound fires first and names the
/// cause precisely.
pub(crate) const MARGIN: Duration = Duration::from_millis(300);
/// The most a preflight waits: STS when Atlas decides (the probe without a role), and the Admin
/// API in a probe (also at most half of what is left).
pub(crate) const PREFLIGHT_BUDGET: Duration = Duration::from_secs(10);
/// How long the Admin API may still take once a probe's own checks are done (the follow-up
/// reads after a refusal included).
pub(crate) const ATLAS_GRACE: Duration = Duration::from_secs(1);
/// With several hosts: how long the others are waited for once one has answered.
pub(crate) const STRAGGLER_GRACE: Duration = Duration::from_secs(2);
/// roundtrip's cleanup, past the deadline.
pub(crate) const CLEANUP_BUDGET: Duration = Duration::from_secs(10);
/// Between the tries of `--wait`.
pub(crate) const WAIT_INTERVAL: Duration = Duration::from_secs(5);
/// iam:GetRole for the caller's role path, after Atlas found no user (and never past the run).
pub(crate) const ROLE_PATH_BUDGET: Duration = Duration::from_secs(3);
/// Connecting to STS or IAM.
pub(crate) const STS_CONNECT: Duration = Duration::from_secs(5);

/// Beyond this a stage that passed gets a warning with its time (never a failure: a slow
/// cluster that the drivers' defaults reach is a working cluster).
pub(crate) fn slow_threshold(stage: Stage) -> Option<Duration> {
    match stage {
        Stage::Dns | Stage::Tcp => Some(Duration::from_secs(1)),
        Stage::Tls | Stage::Assume | Stage::Identity | Stage::Atlas | Stage::Command => {
            Some(Duration::from_secs(2))
        }
        // four round trips: the monitor's hello, then the connection's hello, saslStart and
        // saslContinue
        Stage::Auth => Some(Duration::from_secs(4)),
        Stage::Config | Stage::Credentials => None,
    }
}

/// Milliseconds with one decimal, as the report shows latencies.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// Whole milliseconds since `since`, for texts.
pub(crate) fn ms_since(since: Instant) -> u128 {
    since.elapsed().as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> u64 {
        d.as_secs()
    }

    /// README's Stages section says these figures; they must be this module's.
    #[test]
    fn readme_states_these_budgets() {
        let readme = include_str!("../README.md");
        let stages = readme
            .split("\n## Stages")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let slow = |s| slow_threshold(s).map_or(0, secs);
        let said = [
            format!("(default {DEFAULT_TIMEOUT_S} s)"),
            format!("connectTimeoutMS, {} s", secs(DRIVER_CONNECT_TIMEOUT)),
            format!(
                "over {} s for dns and tcp, {} s for tls, identity and the command, {} s for auth",
                slow(Stage::Dns),
                slow(Stage::Tls),
                slow(Stage::Auth)
            ),
            format!(
                "those that have not answered {} s after one did",
                secs(STRAGGLER_GRACE)
            ),
            format!(
                "cleanup has {} s of its own past the deadline",
                secs(CLEANUP_BUDGET)
            ),
            format!("({} s at most)", secs(PREFLIGHT_BUDGET)),
        ];
        for s in said {
            assert!(
                stages.contains(&s),
                "README's Stages section must say {s:?}"
            );
        }
        assert_eq!(slow(Stage::Tcp), slow(Stage::Dns));
        assert_eq!(slow(Stage::Identity), slow(Stage::Tls));
        assert_eq!(slow(Stage::Command), slow(Stage::Tls));
        assert_eq!(millis(Duration::from_micros(1_234_567)), 1234.6);
    }
}
