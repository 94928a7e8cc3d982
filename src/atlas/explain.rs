//! Facts from the Admin API turned into verdicts: which database user Atlas has for the caller
//! (and in which form), whether it may run the command on the target cluster, the cluster's
//! state, and the access list. Pure functions: the API's answers in, texts out.

use super::api::{ApiAccessEntry, ApiCluster, ApiUser, Project};
use crate::diagnosis::{Diagnosis, Kind};
use crate::identity::{caller_kind, create_command, iam_type_of, CallerKind, RoleArn};
use crate::report::{AtlasClusterFacts, AtlasFacts, AtlasUserFacts};

/// MONGODB-AWS needs MongoDB 4.4 or later.
const MIN_VERSION: (u32, u32) = (4, 4);

/// What a command needs of the database user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// ping, whoami: authentication only.
    Nothing,
    /// listCollections on the database.
    Read,
    /// insert, find, delete (and create/drop of its collection) on the database.
    ReadWrite,
}

impl Need {
    pub(crate) fn role(self, db: &str) -> Option<String> {
        match self {
            Need::Nothing => None,
            Need::Read => Some(format!("read@{db}")),
            Need::ReadWrite => Some(format!("readWrite@{db}")),
        }
    }
}

/// How the caller's ARN is registered in the project.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Registered {
    /// As Atlas will look it up, with the right IAM type.
    Yes(ApiUser),
    /// The same ARN with the other IAM type.
    OtherType(ApiUser),
    /// The role's ARN with its path: session ARNs drop it, so Atlas looks up the one without.
    WithPath(ApiUser),
    /// A session ARN (`arn:aws:sts::…:assumed-role/…`) registered instead of the role.
    SessionArn(ApiUser),
    /// Not at all.
    No,
}

/// The verdicts of the atlas stage.
#[derive(Clone, Debug)]
pub(crate) struct Analysis {
    pub project_id: String,
    /// The ARN Atlas looks up and the IAM type it must have (None: the caller maps to no user).
    pub expected: Option<(String, &'static str)>,
    pub registered: Registered,
    /// The cluster the target belongs to, when the target matched one.
    pub cluster: Option<ApiCluster>,
    /// A target was given and no cluster of the project has its hosts: the project's users may
    /// not be the ones the target's Atlas reads, so they are shown and not judged.
    pub other_project: bool,
    pub project: Project,
    pub db: String,
    pub need: Need,
}

fn is_iam(u: &ApiUser) -> bool {
    u.database_name == "$external"
        && u.aws_iam_type
            .as_deref()
            .is_some_and(|t| t == "USER" || t == "ROLE")
}

/// The target's names as clusters' connection strings are matched against them: the SRV name
/// and each `host:port`, lower case.
pub(crate) fn target_hosts(srv: Option<&str>, hosts: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(s) = srv {
        out.push(s.trim_end_matches('.').to_ascii_lowercase());
    }
    for h in hosts {
        out.push(h.trim_end_matches('.').to_ascii_lowercase());
    }
    out
}

/// The hosts (host or host:port) of a connection string, lower case.
fn string_hosts(s: &str) -> Vec<String> {
    crate::uri::ParsedUri::parse(s)
        .map(|p| {
            p.hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

/// The cluster whose connection strings name one of `targets` (host or host:port).
pub(crate) fn cluster_of<'a>(
    clusters: &'a [ApiCluster],
    targets: &[String],
) -> Option<&'a ApiCluster> {
    let strip_port = |h: &str| {
        h.rsplit_once(':')
            .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            .map_or(h.to_string(), |(host, _)| host.to_string())
    };
    clusters.iter().find(|c| {
        let Some(cs) = &c.connection_strings else {
            return false;
        };
        let mut hosts = Vec::new();
        let endpoints = cs.private_endpoint.iter().flat_map(|e| {
            [
                &e.connection_string,
                &e.srv_connection_string,
                &e.srv_shard_optimized_connection_string,
            ]
        });
        for s in [&cs.standard, &cs.standard_srv, &cs.private, &cs.private_srv]
            .into_iter()
            .chain(endpoints)
            .flatten()
        {
            hosts.extend(string_hosts(s));
        }
        // with a port on both sides the ports must agree too
        let same = |h: &str, t: &str| match (strip_port(h) != h, strip_port(t) != t) {
            (true, true) => h == t,
            _ => strip_port(h) == strip_port(t),
        };
        targets.iter().any(|t| hosts.iter().any(|h| same(h, t)))
    })
}

/// How `expected` (ARN, type) is registered among `users`.
pub(crate) fn registered(users: &[ApiUser], arn: &str, iam_type: &str) -> Registered {
    let iam: Vec<&ApiUser> = users.iter().filter(|u| is_iam(u)).collect();
    if let Some(u) = iam.iter().find(|u| u.username == arn) {
        return if u.aws_iam_type.as_deref() == Some(iam_type) {
            Registered::Yes((*u).clone())
        } else {
            Registered::OtherType((*u).clone())
        };
    }
    if let Ok(role) = RoleArn::parse(arn) {
        let same_role = |other: &RoleArn| {
            (&other.partition, &other.account, &other.name)
                == (&role.partition, &role.account, &role.name)
        };
        if let Some(u) = iam
            .iter()
            .find(|u| u.username != arn && RoleArn::parse(&u.username).is_ok_and(|r| same_role(&r)))
        {
            return Registered::WithPath((*u).clone());
        }
        if let Some(u) = iam.iter().find(|u| {
            matches!(caller_kind(&u.username), CallerKind::AssumedRole { role_arn, .. } if role_arn == arn)
        }) {
            return Registered::SessionArn((*u).clone());
        }
    }
    Registered::No
}

/// Whether a role grants `need` on `db`: Some(true/false) for built-in roles, None for a custom
/// role (atlas-iam cannot tell what it grants, and says nothing).
fn grants(role: &super::api::ApiRole, need: Need, db: &str) -> Option<bool> {
    let on_db = role.database_name == db && role.collection_name.is_none();
    let any = role.database_name == "admin";
    let r = role.role_name.as_str();
    Some(match (need, r) {
        (Need::Nothing, _) => true,
        (_, "atlasAdmin") => true,
        (_, "readWriteAnyDatabase") => any,
        (Need::Read, "readAnyDatabase" | "dbAdminAnyDatabase") => any,
        (Need::Read, "read" | "readWrite" | "dbAdmin" | "dbOwner") => on_db,
        (Need::ReadWrite, "readWrite" | "dbOwner") => on_db,
        (
            Need::Read | Need::ReadWrite,
            "read" | "dbAdmin" | "readAnyDatabase" | "dbAdminAnyDatabase" | "clusterMonitor"
            | "backup" | "enableSharding",
        ) => false,
        _ => return None,
    })
}

fn role_text(r: &super::api::ApiRole) -> String {
    match &r.collection_name {
        Some(c) => format!("{}@{}.{c}", r.role_name, r.database_name),
        None => format!("{}@{}", r.role_name, r.database_name),
    }
}

fn version_below_min(v: &str) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < MIN_VERSION,
        (Some(major), None) => major < MIN_VERSION.0,
        _ => false,
    }
}

fn provider(c: &ApiCluster) -> Option<String> {
    c.replication_specs
        .iter()
        .flat_map(|s| &s.region_configs)
        .find_map(|r| {
            match (
                r.provider_name.as_deref(),
                r.backing_provider_name.as_deref(),
            ) {
                (Some("TENANT"), Some(b)) | (Some("FLEX"), Some(b)) => Some(b.to_string()),
                (Some(p), _) => Some(p.to_string()),
                _ => None,
            }
        })
        .or_else(|| {
            // the legacy shape: an M0's cloud is its backing provider under `TENANT`
            let p = c.provider_settings.as_ref()?;
            match (
                p.provider_name.as_deref(),
                p.backing_provider_name.as_deref(),
            ) {
                (Some("TENANT" | "FLEX"), Some(b)) => Some(b.to_string()),
                _ => p.provider_name.clone(),
            }
        })
}

fn is_paused(c: &ApiCluster) -> bool {
    c.paused == Some(true)
}

impl Analysis {
    pub(crate) fn new(
        project_id: &str,
        project: Project,
        atlas_arn: Option<&str>,
        targets: &[String],
        db: &str,
        need: Need,
    ) -> Analysis {
        let expected = atlas_arn.map(|arn| (arn.to_string(), iam_type_of(arn)));
        let registered = match &expected {
            Some((arn, t)) => registered(&project.users, arn, t),
            None => Registered::No,
        };
        let cluster = cluster_of(&project.clusters, targets).cloned();
        Analysis {
            project_id: project_id.to_string(),
            expected,
            registered,
            other_project: !targets.is_empty() && cluster.is_none(),
            cluster,
            project,
            db: db.to_string(),
            need,
        }
    }

    /// The user Atlas will find, when it is registered right.
    fn user(&self) -> Option<&ApiUser> {
        match &self.registered {
            Registered::Yes(u) => Some(u),
            _ => None,
        }
    }

    /// Whether the user's scopes leave out the target's cluster.
    fn scoped_out(&self) -> Option<(&ApiUser, &ApiCluster)> {
        let (u, c) = (self.user()?, self.cluster.as_ref()?);
        let clusters: Vec<&str> = u
            .scopes
            .iter()
            .filter(|s| s.kind.is_empty() || s.kind == "CLUSTER")
            .map(|s| s.name.as_str())
            .collect();
        (!u.scopes.is_empty() && !clusters.contains(&c.name.as_str())).then_some((u, c))
    }

    /// Some(false) when the user's built-in roles do not grant what the command needs; None when
    /// a custom role might.
    fn roles_suffice(&self) -> Option<bool> {
        let u = self.user()?;
        let mut unknown = false;
        for r in &u.roles {
            match grants(r, self.need, &self.db) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => unknown = true,
            }
        }
        if unknown {
            None
        } else {
            Some(self.need == Need::Nothing)
        }
    }

    fn create(&self, arn: &str, t: &str) -> String {
        format!(
            "{} --projectId {}",
            create_command(arn, t, &self.db),
            self.project_id
        )
    }

    /// Whether the API shows the caller's user as Atlas looks it up, for this cluster: an
    /// authentication refused then is not about the user.
    pub(crate) fn user_registered_right(&self) -> bool {
        !self.other_project && self.user().is_some() && self.scoped_out().is_none()
    }

    /// The user problem that stops authentication, as a diagnosis (None: Atlas has the user in
    /// the form it looks up, for this cluster).
    pub(crate) fn user_problem(&self) -> Option<Diagnosis> {
        let Some((arn, t)) = &self.expected else {
            return None;
        };
        if self.other_project {
            return None;
        }
        let project = &self.project_id;
        let registered_list = || {
            let arns: Vec<String> = self
                .project
                .users
                .iter()
                .filter(|u| is_iam(u))
                .take(8)
                .map(|u| {
                    format!(
                        "{} ({})",
                        u.username,
                        u.aws_iam_type.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            if arns.is_empty() {
                "no AWS IAM database user at all".to_string()
            } else {
                format!("AWS IAM users: {}", arns.join(", "))
            }
        };
        let delete = |u: &ApiUser| {
            format!(
                "atlas dbusers delete {} --authDB '$external' --projectId {project}",
                u.username
            )
        };
        Some(match &self.registered {
            Registered::Yes(_) => {
                let (u, c) = self.scoped_out()?;
                let scopes: Vec<&str> = u.scopes.iter().map(|s| s.name.as_str()).collect();
                Diagnosis::new(
                    Kind::AtlasUserOtherClusters,
                    format!(
                        "the Admin API shows the database user {arn} scoped to {} only, not to the \
                         cluster {} this target belongs to",
                        scopes.join(", "),
                        c.name
                    ),
                    format!(
                        "add the cluster to its scopes (Atlas: Database Access > Edit > Restrict \
                         Access to Specific Clusters), or `atlas dbusers update {arn} --authDB '$external' \
                         --scope {} --projectId {project}` (list every cluster it needs)",
                        c.name
                    ),
                )
            }
            Registered::OtherType(u) => {
                let other = u.aws_iam_type.as_deref().unwrap_or("?");
                Diagnosis::new(
                    Kind::AtlasUserWrongType,
                    format!(
                        "the Admin API shows {arn} registered with the other IAM type: {other}, \
                         where the caller needs {t}{}",
                        if *t == "ROLE" {
                            " (an assumed role's session maps to an IAM role)"
                        } else {
                            " (long-term keys belong to an IAM user)"
                        }
                    ),
                    format!(
                        "recreate it with the right type: `{}`, then `{}`",
                        delete(u),
                        self.create(arn, t)
                    ),
                )
            }
            Registered::WithPath(u) => Diagnosis::new(
                Kind::AtlasUserMissing,
                format!(
                    "the Admin API shows the role registered with its path, as {}; STS session \
                     ARNs drop the path, so Atlas looks up {arn}",
                    u.username
                ),
                format!(
                    "register the ARN without the path: `{}` (and `{}` once nothing uses it)",
                    self.create(arn, t),
                    delete(u)
                ),
            ),
            Registered::SessionArn(u) => Diagnosis::new(
                Kind::AtlasUserMissing,
                format!(
                    "the Admin API shows a session ARN registered, {}; Atlas maps every session \
                     of the role to {arn}, and a session ARN never matches",
                    u.username
                ),
                format!("register the role's ARN: `{}`", self.create(arn, t)),
            ),
            Registered::No => Diagnosis::new(
                Kind::AtlasUserMissing,
                format!(
                    "the Admin API shows no database user {arn} in project {project} ({})",
                    registered_list()
                ),
                format!("create it: `{}`", self.create(arn, t)),
            ),
        })
    }

    /// The roles problem of the command (None: the roles suffice, or a custom role may).
    pub(crate) fn roles_problem(&self) -> Option<Diagnosis> {
        if self.other_project || self.roles_suffice() != Some(false) {
            return None;
        }
        let u = self.user()?;
        let need = self.need.role(&self.db)?;
        let has: Vec<String> = u.roles.iter().map(role_text).collect();
        let has = if has.is_empty() {
            "no role".to_string()
        } else {
            has.join(", ")
        };
        Some(Diagnosis::new(
            Kind::NotAuthorized,
            format!(
                "the Admin API shows the database user {} with {has}, which does not grant {need}",
                u.username
            ),
            format!(
                "give it {need}: `atlas dbusers update {} --authDB '$external' --role {need} --projectId {}` (the \
                 list replaces its roles: name the ones it keeps too)",
                u.username, self.project_id
            ),
        ))
    }

    /// The cluster's own problem: paused, or too old for MONGODB-AWS.
    pub(crate) fn cluster_problem(&self) -> Option<Diagnosis> {
        let c = self.cluster.as_ref()?;
        if is_paused(c) {
            return Some(Diagnosis::new(
                Kind::AtlasClusterPaused,
                format!("the Admin API shows the cluster {} paused", c.name),
                format!(
                    "resume it (Atlas: Clusters > ... > Resume Cluster, or `atlas clusters start {} \
                     --projectId {}`)",
                    c.name, self.project_id
                ),
            ));
        }
        let v = c.mongodb_version.as_deref()?;
        version_below_min(v).then(|| {
            Diagnosis::new(
                Kind::AtlasVersionTooOld,
                format!(
                    "the Admin API shows the cluster {} on MongoDB {v}; MONGODB-AWS needs 4.4 or later",
                    c.name
                ),
                "upgrade the cluster to MongoDB 4.4 or later (Atlas: Edit Configuration > MongoDB version)",
            )
        })
    }

    /// Why nothing is judged: the target is not one of the project's clusters.
    pub(crate) fn project_mismatch(&self) -> Option<String> {
        self.other_project.then(|| {
            let names: Vec<&str> = self
                .project
                .clusters
                .iter()
                .map(|c| c.name.as_str())
                .take(8)
                .collect();
            format!(
                "no cluster of project {} has this target's hosts (its clusters: {}): the database \
                 users shown may not be the target's, so atlas-iam does not judge them; check \
                 MONGODB_ATLAS_PROJECT_ID",
                self.project_id,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )
        })
    }

    /// The access list as Atlas shows it: `1.2.3.4/32 (office)`.
    pub(crate) fn access_list_text(&self) -> String {
        let entries: Vec<String> = self
            .project
            .access_list
            .iter()
            .take(12)
            .map(ApiAccessEntry::shown)
            .collect();
        if entries.is_empty() {
            "the project's IP access list is empty".into()
        } else {
            let more = self.project.access_list.len().saturating_sub(entries.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "the project's IP access list has {}{more}",
                entries.join(", ")
            )
        }
    }

    /// The stage's facts.
    pub(crate) fn facts(&self) -> AtlasFacts {
        AtlasFacts {
            project_id: self.project_id.clone(),
            database_users: self
                .project
                .users
                .iter()
                .filter(|u| is_iam(u))
                .map(|u| AtlasUserFacts {
                    arn: u.username.clone(),
                    iam_type: u.aws_iam_type.clone().unwrap_or_default(),
                    roles: u.roles.iter().map(role_text).collect(),
                    scopes: u.scopes.iter().map(|s| s.name.clone()).collect(),
                })
                .collect(),
            matched_user: self.user().map(|u| u.username.clone()),
            cluster: self.cluster.as_ref().map(|c| AtlasClusterFacts {
                name: c.name.clone(),
                state: c.state_name.clone(),
                paused: is_paused(c),
                mongodb_version: c.mongodb_version.clone(),
                provider: provider(c),
            }),
            access_list: self
                .project
                .access_list
                .iter()
                .map(ApiAccessEntry::shown)
                .collect(),
            refusal: None,
        }
    }

    /// The stage's detail.
    pub(crate) fn detail(&self) -> String {
        let users = self.project.users.iter().filter(|u| is_iam(u)).count();
        let mut parts = vec![format!(
            "project {}: {users} AWS IAM database user{}",
            self.project_id,
            if users == 1 { "" } else { "s" }
        )];
        if let Some(u) = self.user() {
            let roles: Vec<String> = u.roles.iter().map(role_text).collect();
            parts.push(format!(
                "{} registered ({}; {})",
                u.username,
                u.aws_iam_type.as_deref().unwrap_or("?"),
                if roles.is_empty() {
                    "no role".to_string()
                } else {
                    roles.join(", ")
                }
            ));
        }
        match &self.cluster {
            Some(c) => parts.push(format!(
                "cluster {} ({}{}{})",
                c.name,
                if is_paused(c) {
                    "paused".to_string()
                } else {
                    c.state_name
                        .clone()
                        .unwrap_or_else(|| "state unknown".into())
                },
                c.mongodb_version
                    .as_ref()
                    .map(|v| format!(", MongoDB {v}"))
                    .unwrap_or_default(),
                provider(c).map(|p| format!(", {p}")).unwrap_or_default()
            )),
            None if !self.project.clusters.is_empty() => parts.push(format!(
                "no cluster of the project has this target's hosts ({} cluster{})",
                self.project.clusters.len(),
                if self.project.clusters.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )),
            None => {}
        }
        parts.push(format!(
            "{} access list entr{}",
            self.project.access_list.len(),
            if self.project.access_list.len() == 1 {
                "y"
            } else {
                "ies"
            }
        ));
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::api::{ApiRole, ApiScope, ConnectionStrings};
    use super::*;

    /// The cloud of a cluster: under `TENANT` (an M0) or `FLEX`, the backing provider, in the
    /// current shape (regionConfigs) and in the legacy one (providerSettings).
    #[test]
    fn the_real_cloud_of_shared_clusters() {
        let legacy: ApiCluster = serde_json::from_str(
            r#"{"name":"c","providerSettings":{"providerName":"TENANT","backingProviderName":"GCP"}}"#,
        )
        .expect("legacy");
        assert_eq!(provider(&legacy).as_deref(), Some("GCP"));
        let current: ApiCluster = serde_json::from_str(
            r#"{"name":"c","replicationSpecs":[{"regionConfigs":[{"providerName":"TENANT","backingProviderName":"AZURE"}]}]}"#,
        )
        .expect("current");
        assert_eq!(provider(&current).as_deref(), Some("AZURE"));
        let dedicated: ApiCluster =
            serde_json::from_str(r#"{"name":"c","providerSettings":{"providerName":"AWS"}}"#)
                .expect("dedicated");
        assert_eq!(provider(&dedicated).as_deref(), Some("AWS"));
    }

    fn user(arn: &str, t: &str, roles: &[(&str, &str)], scopes: &[&str]) -> ApiUser {
        ApiUser {
            username: arn.into(),
            database_name: "$external".into(),
            aws_iam_type: Some(t.into()),
            roles: roles
                .iter()
                .map(|(r, d)| ApiRole {
                    role_name: r.to_string(),
                    database_name: d.to_string(),
                    collection_name: None,
                })
                .collect(),
            scopes: scopes
                .iter()
                .map(|s| ApiScope {
                    name: s.to_string(),
                    kind: "CLUSTER".into(),
                })
                .collect(),
        }
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/app";

    fn analysis(users: Vec<ApiUser>, need: Need) -> Analysis {
        let cluster = ApiCluster {
            name: "Cluster0".into(),
            mongodb_version: Some("7.0.12".into()),
            connection_strings: Some(ConnectionStrings {
                standard_srv: Some("mongodb+srv://cluster0.ab12c.mongodb.net".into()),
                standard: Some("mongodb://ac-1-shard-00-00.ab12c.mongodb.net:27017,ac-1-shard-00-01.ab12c.mongodb.net:27017/?ssl=true".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        Analysis::new(
            "p1",
            Project {
                users,
                clusters: vec![cluster],
                access_list: vec![],
                notices: vec![],
            },
            Some(ROLE),
            &target_hosts(Some("cluster0.ab12c.mongodb.net"), &[]),
            "test",
            need,
        )
    }

    #[test]
    fn each_registration_is_told_apart() {
        let kind = |users: Vec<ApiUser>| {
            analysis(users, Need::Nothing)
                .user_problem()
                .map(|d| d.kind)
        };
        assert_eq!(kind(vec![user(ROLE, "ROLE", &[], &[])]), None);
        assert_eq!(
            kind(vec![user(ROLE, "USER", &[], &[])]),
            Some(Kind::AtlasUserWrongType)
        );
        let a = analysis(
            vec![user(
                "arn:aws:iam::123456789012:role/team/app",
                "ROLE",
                &[],
                &[],
            )],
            Need::Nothing,
        );
        assert_eq!(
            a.registered,
            Registered::WithPath(a.project.users[0].clone())
        );
        let a = analysis(
            vec![user(
                "arn:aws:sts::123456789012:assumed-role/app/s1",
                "ROLE",
                &[],
                &[],
            )],
            Need::Nothing,
        );
        assert!(matches!(a.registered, Registered::SessionArn(_)));
        assert_eq!(kind(vec![]), Some(Kind::AtlasUserMissing));
        assert_eq!(
            kind(vec![user(ROLE, "ROLE", &[], &["Cluster1"])]),
            Some(Kind::AtlasUserOtherClusters)
        );
        assert_eq!(kind(vec![user(ROLE, "ROLE", &[], &["Cluster0"])]), None);
    }

    #[test]
    fn a_target_outside_the_project_is_not_judged() {
        let a = Analysis::new(
            "p1",
            Project {
                users: vec![],
                clusters: analysis(vec![], Need::Nothing).project.clusters,
                access_list: vec![],
                notices: vec![],
            },
            Some(ROLE),
            &target_hosts(Some("cluster7.zz00z.mongodb.net"), &[]),
            "test",
            Need::ReadWrite,
        );
        assert!(a.other_project);
        assert_eq!(
            a.user_problem(),
            None,
            "no user of another project is missing"
        );
        assert!(a.project_mismatch().is_some_and(|m| m.contains("Cluster0")));
        // private endpoint strings name a cluster too
        let mut clusters = a.project.clusters.clone();
        if let Some(cs) = clusters[0].connection_strings.as_mut() {
            cs.private_endpoint = vec![super::super::api::PrivateEndpointStrings {
                srv_connection_string: Some("mongodb+srv://cluster0-pl-0.ab12c.mongodb.net".into()),
                ..Default::default()
            }];
        }
        assert!(cluster_of(
            &clusters,
            &target_hosts(Some("cluster0-pl-0.ab12c.mongodb.net"), &[])
        )
        .is_some());
    }

    #[test]
    fn roles_against_the_command() {
        let problem = |roles: &[(&str, &str)], need| {
            analysis(vec![user(ROLE, "ROLE", roles, &[])], need)
                .roles_problem()
                .is_some()
        };
        assert!(!problem(&[], Need::Nothing));
        assert!(problem(&[], Need::Read));
        assert!(!problem(&[("read", "test")], Need::Read));
        assert!(problem(&[("read", "test")], Need::ReadWrite));
        assert!(problem(&[("readWrite", "other")], Need::ReadWrite));
        assert!(!problem(
            &[("readWriteAnyDatabase", "admin")],
            Need::ReadWrite
        ));
        assert!(!problem(&[("atlasAdmin", "admin")], Need::ReadWrite));
        assert!(!problem(&[("readAnyDatabase", "admin")], Need::Read));
        // a custom role may grant it: no verdict
        assert!(!problem(&[("myCustomRole", "admin")], Need::ReadWrite));
    }

    #[test]
    fn clusters_are_matched_by_their_hosts_and_judged() {
        let mut a = analysis(vec![], Need::Nothing);
        assert_eq!(
            a.cluster.as_ref().map(|c| c.name.as_str()),
            Some("Cluster0")
        );
        assert_eq!(a.cluster_problem(), None);
        let other = cluster_of(
            &a.project.clusters,
            &target_hosts(None, &["ac-1-shard-00-01.ab12c.mongodb.net:27017".into()]),
        );
        assert!(other.is_some());
        assert!(cluster_of(
            &a.project.clusters,
            &target_hosts(None, &["elsewhere:27017".into()])
        )
        .is_none());
        if let Some(c) = a.cluster.as_mut() {
            c.mongodb_version = Some("4.2.24".into());
        }
        assert_eq!(
            a.cluster_problem().map(|d| d.kind),
            Some(Kind::AtlasVersionTooOld)
        );
        if let Some(c) = a.cluster.as_mut() {
            c.paused = Some(true);
        }
        assert_eq!(
            a.cluster_problem().map(|d| d.kind),
            Some(Kind::AtlasClusterPaused)
        );
        assert!(
            !version_below_min("4.4.0") && !version_below_min("8.0") && version_below_min("4.2")
        );
    }
}
