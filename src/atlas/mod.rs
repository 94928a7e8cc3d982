//! The `atlas` stage: what the Atlas Admin API shows of the project (opt-in with `--atlas`),
//! read beside the network stages and reported after identity. A probe uses it to explain; Atlas
//! itself still decides, so the API's own failures never stop a probe.

pub(crate) mod api;
pub(crate) mod explain;
pub(crate) mod refusal;

use std::time::Duration;

pub(crate) use explain::{Analysis, Need};

use crate::diagnosis::{Diagnosis, Kind};
use crate::runner::Passed;
use api::{ApiConfig, Project};

/// The hint part that says the API would settle a question it was not asked.
pub(crate) const WOULD_SETTLE: &str =
    "--atlas (with a project API key in MONGODB_ATLAS_PUBLIC_API_KEY \
    and MONGODB_ATLAS_PRIVATE_API_KEY, and MONGODB_ATLAS_PROJECT_ID) would show what the project \
    has registered";

/// Reads the project (users, clusters, access list) within `budget`.
pub(crate) async fn fetch(
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
pub(crate) enum Mode {
    Answer,
    Preflight,
}

/// The atlas stage's outcome from what was fetched and who the caller is.
pub(crate) fn stage(
    fetched: Result<(String, Project), Diagnosis>,
    atlas_arn: Option<&str>,
    targets: &[String],
    db: &str,
    need: Need,
    mode: Mode,
) -> Result<Passed<Analysis>, Diagnosis> {
    let (project_id, mut project) = fetched?;
    let notices = std::mem::take(&mut project.notices);
    let analysis = Analysis::new(&project_id, project, atlas_arn, targets, db, need);
    let mut warnings: Vec<String> = notices;
    warnings.extend(analysis.project_mismatch());
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

/// What a probe knows from the Admin API: not asked (no `--atlas`), asked and not read (its
/// own failure is at the atlas stage), or read.
#[derive(Clone, Copy)]
pub(crate) enum View<'a> {
    NotAsked,
    Unavailable,
    Read(&'a Analysis),
}

/// A failure of a later stage explained with the API's facts: the user as registered at auth,
/// the roles at the command, the cluster's state and the access list at the network stages.
/// Not asked, the hints that only the API could settle say so.
pub(crate) fn explain(stage: crate::diagnosis::Stage, d: Diagnosis, view: View<'_>) -> Diagnosis {
    use crate::diagnosis::Stage;
    let a = match view {
        View::Read(a) => a,
        View::Unavailable => return d,
        View::NotAsked => {
            let would = match d.kind {
                Kind::AtlasUserMissing | Kind::AuthenticationFailed | Kind::NotAuthorized => {
                    WOULD_SETTLE
                }
                Kind::IpNotAllowed => "--atlas would list the project's access list entries",
                _ => return d,
            };
            let hint = format!("{}; {would}", d.hint);
            return Diagnosis { hint, ..d };
        }
    };
    match (stage, d.kind) {
        (Stage::Auth, Kind::MechanismUnavailable) => a
            .cluster_problem()
            .filter(|c| c.kind == Kind::AtlasVersionTooOld)
            .unwrap_or(d),
        (Stage::Auth, Kind::AtlasUserMissing | Kind::AuthenticationFailed) => {
            if let Some(found) = a.user_problem() {
                return Diagnosis {
                    cause: format!("Atlas refused the authentication, and {}", found.cause),
                    ..found
                };
            }
            if d.kind == Kind::AuthenticationFailed && a.user_registered_right() {
                let cause = format!(
                    "{}; the Admin API shows the database user registered as Atlas looks it up, \
                     so the signature or the credentials were refused",
                    d.cause
                );
                return Diagnosis { cause, ..d };
            }
            d
        }
        (Stage::Command, Kind::NotAuthorized) => a.roles_problem().unwrap_or(d),
        (Stage::Dns | Stage::Tcp | Stage::Tls | Stage::Auth, _) => {
            let paused = a
                .cluster_problem()
                .filter(|c| c.kind == Kind::AtlasClusterPaused);
            let unreachable = matches!(
                d.kind,
                Kind::TcpRefused
                    | Kind::TcpTimeout
                    | Kind::DnsNameNotFound
                    | Kind::ServerSelection
                    | Kind::ServerClosed
                    | Kind::IpNotAllowed
            );
            match paused {
                Some(c) if unreachable => Diagnosis {
                    cause: format!("{}; {}", c.cause, d.cause),
                    ..c
                },
                _ if d.kind == Kind::IpNotAllowed => {
                    let hint = format!("{}; {}", d.hint, a.access_list_text());
                    Diagnosis { hint, ..d }
                }
                _ => d,
            }
        }
        _ => d,
    }
}

/// A project with the one cluster `Cluster0` (`cluster0.ab12c.mongodb.net`) and these users.
#[cfg(test)]
pub(crate) fn fixture(users: Vec<api::ApiUser>) -> Project {
    Project {
        users,
        clusters: vec![api::ApiCluster {
            name: "Cluster0".into(),
            connection_strings: Some(api::ConnectionStrings {
                standard_srv: Some("mongodb+srv://cluster0.ab12c.mongodb.net".into()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        access_list: vec![],
        notices: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::Stage;

    fn refused() -> Diagnosis {
        Diagnosis::new(
            Kind::AuthenticationFailed,
            "Atlas answered `Authentication failed.`",
            "h",
        )
    }

    /// The Atlas CLI's commands that hints print, with the flags each accepts (read from its
    /// source, mongodb/mongodb-atlas-cli `internal/cli/dbusers/*.go`, `accesslists/create.go`,
    /// `clusters/start.go`, `projects/list.go`).
    const ATLAS_CLI: &[(&str, &[&str])] = &[
        (
            "dbusers create",
            &[
                "--username",
                "--password",
                "--role",
                "--scope",
                "--awsIAMType",
                "--x509Type",
                "--ldapType",
                "--oidcType",
                "--deleteAfter",
                "--desc",
                "--projectId",
                "--output",
            ],
        ),
        (
            "dbusers update",
            &[
                "--username",
                "--password",
                "--desc",
                "--authDB",
                "--role",
                "--scope",
                "--x509Type",
                "--projectId",
                "--output",
            ],
        ),
        ("dbusers delete", &["--authDB", "--force", "--projectId"]),
        ("dbusers describe", &["--authDB", "--projectId", "--output"]),
        (
            "accessLists create",
            &[
                "--type",
                "--comment",
                "--currentIp",
                "--deleteAfter",
                "--projectId",
                "--output",
            ],
        ),
        ("clusters start", &["--projectId", "--output"]),
        ("projects list", &["--orgId", "--output"]),
    ];

    /// Every `atlas …` command written in a hint, as the source spells it.
    fn hint_commands() -> Vec<String> {
        let sources = [
            include_str!("api.rs"),
            include_str!("explain.rs"),
            include_str!("refusal.rs"),
            include_str!("../config.rs"),
            include_str!("../identity.rs"),
            include_str!("../probe/auth.rs"),
            include_str!("../probe/command.rs"),
            include_str!("../probe/tls.rs"),
        ];
        let mut out = Vec::new();
        for src in sources {
            // a string continued over lines (`\` then indentation) is one command
            let joined = src
                .split("\\\n")
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("");
            for (i, _) in joined.match_indices("`atlas ") {
                let rest = &joined[i + 1..];
                if let Some(end) = rest.find('`') {
                    out.push(rest[..end].to_string());
                }
            }
            for (i, _) in joined.match_indices("\"atlas dbusers ") {
                let rest = &joined[i + 1..];
                if let Some(end) = rest.find('"') {
                    out.push(rest[..end].to_string());
                }
            }
        }
        out
    }

    #[test]
    fn every_atlas_cli_command_in_a_hint_is_runnable_as_printed() {
        let commands = hint_commands();
        assert!(commands.len() >= 8, "{commands:?}");
        for c in &commands {
            let words: Vec<&str> = c.split_whitespace().collect();
            let path = words.get(1..3).map(|w| w.join(" ")).unwrap_or_default();
            let Some((_, flags)) = ATLAS_CLI.iter().find(|(p, _)| *p == path) else {
                panic!("`{c}`: the Atlas CLI has no command `atlas {path}` in this table");
            };
            for w in words.iter().filter(|w| w.starts_with("--")) {
                assert!(flags.contains(w), "`{c}`: `atlas {path}` has no flag {w}");
            }
            // an IAM user lives in $external; the CLI's default for these is admin
            if ["dbusers update", "dbusers delete", "dbusers describe"].contains(&path.as_str()) {
                assert!(
                    c.contains("--authDB '$external'"),
                    "`{c}` misses --authDB '$external'"
                );
            }
        }
    }

    #[test]
    fn the_hint_names_the_api_only_when_it_was_not_asked() {
        let d = explain(Stage::Auth, refused(), View::NotAsked);
        assert!(d.hint.contains("--atlas (with"), "{d}");
        // asked and unavailable: its failure is at the atlas stage; no advice to use it
        assert_eq!(
            explain(Stage::Auth, refused(), View::Unavailable),
            refused()
        );
    }

    #[test]
    fn users_of_another_project_say_nothing_about_this_refusal() {
        let project = fixture(vec![]);
        let arn = "arn:aws:iam::123456789012:role/app";
        let elsewhere = Analysis::new(
            "p1",
            project.clone(),
            Some(arn),
            &["cluster7.zz00z.mongodb.net".to_string()],
            "test",
            Need::Nothing,
        );
        assert_eq!(
            explain(Stage::Auth, refused(), View::Read(&elsewhere)),
            refused()
        );
        // this project, no such user: the finding replaces Atlas's opaque answer
        let here = Analysis::new(
            "p1",
            project,
            Some(arn),
            &["cluster0.ab12c.mongodb.net".to_string()],
            "test",
            Need::Nothing,
        );
        let d = explain(Stage::Auth, refused(), View::Read(&here));
        assert_eq!(d.kind, Kind::AtlasUserMissing, "{d}");
        assert!(d.hint.contains("--projectId p1"), "{d}");
    }
}
