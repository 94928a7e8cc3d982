//! Atlas's own reason for a refused authentication. Atlas answers the client only
//! `Authentication failed.`; its Admin API knows more. After a refusal, and only then, three
//! reads settle what the project's lists could not:
//! - the cluster's change status (`…/clusters/{name}/status`): a database user created a moment
//!   ago is refused until Atlas has deployed it (`PENDING`);
//! - the project's LDAP settings (`…/userSecurity`): with LDAP authorization on, AWS IAM users
//!   cannot authenticate at all (needs Project Owner; without it, nothing is said);
//! - the cluster's database access history (`…/dbAccessHistory/clusters/{name}`), filtered by
//!   the time of the run: the refused attempt with its `failureReason` and the server's log
//!   line (needs Project Monitoring Admin or Project Database Access Admin; not kept for M0 and
//!   Flex clusters).
//!
//! They run concurrently, after the probe's own work is done, within `timing::ATLAS_GRACE`.

use std::time::Duration;

use super::api::{AccessLog, ApiCluster, ApiConfig, Client};
use super::Analysis;
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::AtlasRefusalFacts;

/// Roles that may read the database access history (the operation's description).
pub(crate) const HISTORY_ROLES: &str = "Project Monitoring Admin or Project Database Access Admin";

/// How far before the run's start an attempt still counts: clocks differ, and the driver may
/// have authenticated a moment before the run's own clock started.
const SLACK_MS: u64 = 120_000;

/// What the follow-up reads found.
#[derive(Clone, Debug, Default)]
pub(crate) struct Followup {
    pub facts: AtlasRefusalFacts,
    /// What the atlas stage says of these reads (a role that could read the history).
    pub warnings: Vec<String>,
    pub cluster: String,
    pub project_id: String,
}

impl Followup {
    pub(crate) fn pending(&self) -> bool {
        self.facts.change_status.as_deref() == Some("PENDING")
    }
}

/// Whether Atlas keeps no access history for the cluster: an M0 (`TENANT`) or a Flex cluster.
fn shared_tier(c: &ApiCluster) -> bool {
    let tenant = |p: Option<&str>| matches!(p, Some("TENANT" | "FLEX"));
    c.replication_specs
        .iter()
        .flat_map(|s| &s.region_configs)
        .any(|r| tenant(r.provider_name.as_deref()))
        || c.provider_settings
            .as_ref()
            .is_some_and(|p| tenant(p.provider_name.as_deref()))
}

/// Now, in milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The milliseconds since the epoch of an ISO 8601 timestamp (`2026-12-01T12:00:00Z`, with or
/// without fractions); None when it is not one.
fn epoch_ms(ts: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The refused attempt of this run: the latest failed one since the run began (less the slack)
/// for the ARN Atlas looked up, or with no user when STS named none.
fn this_attempt<'a>(
    logs: &'a [AccessLog],
    arn: Option<&str>,
    since_ms: u64,
) -> Option<&'a AccessLog> {
    logs.iter()
        .filter(|l| l.auth_result == Some(false))
        .filter(|l| {
            l.timestamp
                .as_deref()
                .and_then(epoch_ms)
                .is_some_and(|t| t + SLACK_MS >= since_ms)
        })
        .filter(|l| match (l.username.as_deref(), arn) {
            (None | Some(""), _) => true,
            (Some(u), Some(a)) => u.eq_ignore_ascii_case(a),
            (Some(_), None) => false,
        })
        .max_by_key(|l| l.timestamp.as_deref().and_then(epoch_ms))
}

/// Reads what Atlas keeps of the refusal, within `budget`; `started_ms` is when the run began
/// (epoch milliseconds) and `arn` the ARN Atlas looks up.
pub(crate) async fn read(
    cfg: ApiConfig,
    cluster: &ApiCluster,
    arn: Option<&str>,
    started_ms: u64,
    budget: Duration,
) -> Followup {
    let mut out = Followup {
        cluster: cluster.name.clone(),
        project_id: cfg.project_id.clone(),
        ..Default::default()
    };
    let work = async {
        let mut client = Client::new(cfg, budget)?;
        client.sign_in().await?;
        let keeps_history = !shared_tier(cluster);
        let history = async {
            if keeps_history {
                Some(
                    client
                        .access_history(
                            &cluster.name,
                            started_ms.saturating_sub(SLACK_MS),
                            now_ms(),
                        )
                        .await,
                )
            } else {
                None
            }
        };
        Ok::<_, Diagnosis>(tokio::join!(
            client.change_status(&cluster.name),
            client.ldap_authorization(),
            history
        ))
    };
    let (status, ldap, history) = match tokio::time::timeout(budget, work).await {
        Ok(Ok(all)) => all,
        Ok(Err(_)) | Err(_) => {
            out.facts.access_history = "unavailable".into();
            return out;
        }
    };
    out.facts.change_status = status.ok().flatten();
    out.facts.ldap_authorization = ldap.ok().flatten();
    out.facts.access_history = match history {
        None => "not_kept".into(),
        Some(Ok(logs)) => {
            if let Some(a) = this_attempt(&logs, arn, started_ms) {
                out.facts.attempt_at = a.timestamp.clone();
                out.facts.attempt_ip = a.ip_address.clone();
                out.facts.failure_reason = a.failure_reason.clone();
                out.facts.log_line = a.log_line.clone();
            }
            "read".into()
        }
        Some(Err(d)) if d.kind == Kind::AtlasApiForbidden => {
            out.warnings.push(format!(
                "the database access history of {} would give Atlas's own reason for the \
                 refusal: it needs the {HISTORY_ROLES} role, which these API credentials lack",
                cluster.name
            ));
            "forbidden".into()
        }
        Some(Err(_)) => "unavailable".into(),
    };
    out
}

/// A refused authentication explained with what Atlas keeps of it: LDAP authorization on, a
/// change not yet deployed, and Atlas's own reason from the access history.
pub(crate) fn explain(d: Diagnosis, f: &Followup, a: &Analysis) -> Diagnosis {
    let project = &f.project_id;
    if f.facts.ldap_authorization == Some(true) {
        return Diagnosis::new(
            Kind::AtlasLdapAuthorization,
            format!(
                "project {project} has LDAP authorization on, and Atlas cannot authenticate AWS IAM \
                 database users while it is ({})",
                d.cause
            ),
            "turn LDAP authorization off for the project (Atlas: Security > Advanced > LDAP \
             Authorization), or use a project without it for IAM database users",
        );
    }
    let reason = f.facts.failure_reason.as_deref().map(|r| {
        let at = f.facts.attempt_at.as_deref().unwrap_or("?");
        let ip = f.facts.attempt_ip.as_deref().unwrap_or("?");
        format!(
            "; Atlas's access history of {} records the refusal at {at} from {ip}: {r}",
            f.cluster
        )
    });
    let with_reason = |d: Diagnosis| match &reason {
        Some(r) => Diagnosis {
            cause: format!("{}{r}", d.cause),
            ..d
        },
        None => d,
    };
    if f.pending() && a.user_registered_right() {
        return with_reason(Diagnosis::new(
            Kind::AtlasChangePending,
            format!(
                "{}; the database user is registered as Atlas looks it up, but the project's last \
                 change is not yet deployed to {} (changeStatus PENDING): a user created or \
                 changed a moment ago is refused until it is",
                d.cause, f.cluster
            ),
            "wait for Atlas to apply the change (a minute or two) and run again; in CI right \
             after provisioning, --wait 300 runs the check again until it passes or the change \
             is applied",
        ));
    }
    // Atlas's reason names the cause the client's text could not
    let named = match f.facts.failure_reason.as_deref() {
        Some(r) if d.kind == Kind::AuthenticationFailed && r.starts_with("UserNotFound") => {
            let arn = a
                .expected
                .as_ref()
                .map_or("the ARN", |(arn, _)| arn.as_str());
            Diagnosis::new(
                Kind::AtlasUserMissing,
                d.cause,
                format!(
                    "Atlas found no database user for the ARN it looked up on {}: compare it with `atlas dbusers describe {arn} --authDB '$external' --projectId {project}` (its type, and its scopes)",
                    f.cluster
                ),
            )
        }
        _ => d,
    };
    with_reason(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(ok: bool, ts: &str, user: &str, reason: &str) -> AccessLog {
        AccessLog {
            auth_result: Some(ok),
            failure_reason: (!reason.is_empty()).then(|| reason.to_string()),
            ip_address: Some("198.51.100.4".into()),
            log_line: Some("{}".into()),
            timestamp: Some(ts.into()),
            username: Some(user.into()),
        }
    }

    fn analysis(registered: bool) -> Analysis {
        use super::super::api::ApiUser;
        let arn = "arn:aws:iam::123456789012:role/app";
        let users = if registered {
            vec![ApiUser {
                username: arn.into(),
                database_name: "$external".into(),
                aws_iam_type: Some("ROLE".into()),
                roles: vec![],
                scopes: vec![],
            }]
        } else {
            vec![]
        };
        let project = super::super::fixture(users);
        Analysis::new(
            "p1",
            project,
            Some(arn),
            &["cluster0.ab12c.mongodb.net".to_string()],
            "test",
            super::super::Need::Nothing,
        )
    }

    fn refused() -> Diagnosis {
        Diagnosis::new(
            Kind::AuthenticationFailed,
            "Atlas answered `Authentication failed.`",
            "h",
        )
    }

    fn followup(change: &str, ldap: Option<bool>, reason: Option<&str>) -> Followup {
        Followup {
            facts: AtlasRefusalFacts {
                change_status: Some(change.into()),
                ldap_authorization: ldap,
                access_history: "read".into(),
                attempt_at: reason.map(|_| "2026-12-01T12:00:01Z".into()),
                attempt_ip: reason.map(|_| "198.51.100.4".into()),
                failure_reason: reason.map(str::to_string),
                log_line: None,
            },
            warnings: vec![],
            cluster: "Cluster0".into(),
            project_id: "p1".into(),
        }
    }

    #[test]
    fn each_record_names_its_cause() {
        let a = analysis(true);
        let d = explain(refused(), &followup("PENDING", None, None), &a);
        assert_eq!(d.kind, Kind::AtlasChangePending, "{d}");
        assert!(d.hint.contains("--wait"), "{d}");
        // applied: the refusal stays what it was, with Atlas's own reason when recorded
        let d = explain(refused(), &followup("APPLIED", None, None), &a);
        assert_eq!(d, refused());
        let d = explain(
            refused(),
            &followup(
                "APPLIED",
                Some(false),
                Some("UserNotFound: Could not find user"),
            ),
            &a,
        );
        assert_eq!(d.kind, Kind::AtlasUserMissing, "{d}");
        assert!(
            d.cause.contains("198.51.100.4") && d.hint.contains("--authDB '$external'"),
            "{d}"
        );
        // LDAP authorization on: the cause, whatever else
        let d = explain(refused(), &followup("PENDING", Some(true), None), &a);
        assert_eq!(d.kind, Kind::AtlasLdapAuthorization, "{d}");
        // a user not registered: pending says nothing of it
        let d = explain(
            refused(),
            &followup("PENDING", None, None),
            &analysis(false),
        );
        assert_eq!(d.kind, Kind::AuthenticationFailed, "{d}");
    }

    #[test]
    fn the_attempt_is_this_runs_refusal_for_this_arn() {
        let arn = "arn:aws:iam::123456789012:role/app";
        let since = epoch_ms("2026-12-01T12:00:00Z").expect("ts");
        let logs = vec![
            log(false, "2026-12-01T11:00:00Z", arn, "old"),
            log(true, "2026-12-01T12:00:05Z", arn, ""),
            log(
                false,
                "2026-12-01T12:00:06Z",
                "arn:aws:iam::123456789012:role/other",
                "other",
            ),
            log(
                false,
                "2026-12-01T12:00:07.250Z",
                arn,
                "UserNotFound: this one",
            ),
            log(false, "2026-12-01T11:59:30Z", arn, "within the slack"),
        ];
        let a = this_attempt(&logs, Some(arn), since).expect("attempt");
        assert_eq!(a.failure_reason.as_deref(), Some("UserNotFound: this one"));
        assert!(this_attempt(&logs[..3], Some(arn), since).is_none());
        // STS named nobody: an attempt with no user counts
        let anonymous = vec![log(
            false,
            "2026-12-01T12:00:01Z",
            "",
            "AuthenticationFailed: sts",
        )];
        assert!(this_attempt(&anonymous, Some(arn), since).is_some());
        assert!(this_attempt(&[log(false, "not a date", arn, "x")], Some(arn), since).is_none());
    }
}
