//! The `atlas` stage: what the Atlas Admin API shows of the project (opt-in with `--atlas`),
//! read beside the network stages and reported after identity. A probe uses it to explain; Atlas
//! itself still decides, so the API's own failures never stop a probe.

pub mod api;
pub mod explain;

use std::time::Duration;

pub use explain::{Analysis, Need};

use crate::diagnosis::{Diagnosis, Kind};
use crate::runner::Passed;
use api::{ApiConfig, Project};

/// How long the API may take in a probe (it never holds up the verdict longer).
pub const PREFLIGHT_BUDGET: Duration = Duration::from_secs(10);

/// The hint part that says the API would settle a question it was not asked.
pub const WOULD_SETTLE: &str = "--atlas (with a project API key in MONGODB_ATLAS_PUBLIC_API_KEY \
    and MONGODB_ATLAS_PRIVATE_API_KEY, and MONGODB_ATLAS_PROJECT_ID) would show what the project \
    has registered";

/// Reads the project (users, clusters, access list) within `budget`.
pub async fn fetch(
    cfg: Result<ApiConfig, Diagnosis>,
    budget: Duration,
) -> Result<(String, Project), Diagnosis> {
    let cfg = cfg?;
    let project_id = cfg.project_id.clone();
    let base = cfg.base_url.clone();
    let client = api::Client::new(cfg, budget)?;
    match tokio::time::timeout(budget, client.project()).await {
        Ok(project) => Ok((project_id, project?)),
        Err(_) => Err(Diagnosis::new(
            Kind::AtlasApiTimeout,
            format!(
                "the Admin API at {base} did not answer within {} ms",
                budget.as_millis()
            ),
            "check the network path to cloud.mongodb.com (a proxy: HTTPS_PROXY), or raise --timeout",
        )),
    }
}

/// Whether the stage is the answer (`whoami --atlas`: a missing user fails it) or explains a
/// probe (its findings are warnings; Atlas decides at auth).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Answer,
    Preflight,
}

/// The atlas stage's outcome from what was fetched and who the caller is.
pub fn stage(
    fetched: Result<(String, Project), Diagnosis>,
    atlas_arn: Option<&str>,
    targets: &[String],
    db: &str,
    need: Need,
    mode: Mode,
) -> Result<Passed<Analysis>, Diagnosis> {
    let (project_id, project) = fetched?;
    let analysis = Analysis::new(&project_id, project, atlas_arn, targets, db, need);
    let mut warnings: Vec<String> = analysis.project_mismatch().into_iter().collect();
    let line = |d: &Diagnosis| format!("{} ({}): {}", d.cause, d.kind.name(), d.hint);
    if let Some(d) = analysis.user_problem() {
        if mode == Mode::Answer {
            return Err(d);
        }
        warnings.push(line(&d));
    }
    for d in [analysis.roles_problem(), analysis.cluster_problem()]
        .into_iter()
        .flatten()
    {
        warnings.push(line(&d));
    }
    let detail = analysis.detail();
    let facts = crate::report::Facts {
        atlas: Some(analysis.facts()),
        ..Default::default()
    };
    Ok(Passed::new(analysis, detail)
        .warn(warnings)
        .with_facts(facts))
}

/// A failure of a later stage explained with the API's facts: the user as registered at auth,
/// the roles at the command, the cluster's state and the access list at the network stages.
/// Without the API, the hints that only it could settle say so.
pub fn explain(
    stage: crate::diagnosis::Stage,
    d: Diagnosis,
    atlas: Option<&Analysis>,
) -> Diagnosis {
    use crate::diagnosis::Stage;
    let Some(a) = atlas else {
        return match d.kind {
            Kind::AtlasUserMissing | Kind::AuthenticationFailed | Kind::NotAuthorized => {
                let hint = format!("{}; {WOULD_SETTLE}", d.hint);
                Diagnosis { hint, ..d }
            }
            Kind::IpNotAllowed => {
                let hint = format!(
                    "{}; --atlas would list the project's access list entries",
                    d.hint
                );
                Diagnosis { hint, ..d }
            }
            _ => d,
        };
    };
    match (stage, d.kind) {
        (Stage::Auth, Kind::MechanismUnavailable) => a
            .cluster_problem()
            .filter(|c| c.kind == Kind::AtlasVersionTooOld)
            .unwrap_or(d),
        (Stage::Auth, Kind::AtlasUserMissing | Kind::AuthenticationFailed) => {
            if let Some(cluster) = a.cluster_problem() {
                return cluster;
            }
            match a.user_problem() {
                Some(found) => Diagnosis {
                    cause: format!("Atlas refused the authentication, and {}", found.cause),
                    ..found
                },
                // registered right: the refusal is not about the user
                None if d.kind == Kind::AtlasUserMissing => d,
                None => Diagnosis {
                    cause: format!(
                        "{}; the Admin API shows the database user registered as Atlas looks it \
                         up, so the signature or the credentials were refused",
                        d.cause
                    ),
                    ..d
                },
            }
        }
        (Stage::Command, Kind::NotAuthorized) => a.roles_problem().unwrap_or(d),
        (Stage::Dns | Stage::Tcp | Stage::Tls | Stage::Auth, _) => {
            if let Some(c) = a
                .cluster_problem()
                .filter(|c| c.kind == Kind::AtlasClusterPaused)
            {
                if matches!(
                    d.kind,
                    Kind::TcpRefused
                        | Kind::TcpTimeout
                        | Kind::DnsNameNotFound
                        | Kind::ServerSelection
                        | Kind::ServerClosed
                        | Kind::IpNotAllowed
                ) {
                    return Diagnosis {
                        cause: format!("{}; {}", c.cause, d.cause),
                        ..c
                    };
                }
            }
            if d.kind == Kind::IpNotAllowed {
                let hint = format!("{}; {}", d.hint, a.access_list_text());
                return Diagnosis { hint, ..d };
            }
            d
        }
        _ => d,
    }
}
