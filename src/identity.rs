//! Identities: ARN parsing (the role to assume, the caller STS reports) and the mapping of the
//! caller to the Atlas database user that Atlas will look up.

use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{AtlasUser, Identity};

/// A role ARN: `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    pub arn: String,
    pub partition: String,
    pub account: String,
    pub name: String,
}

const ARN_HINT: &str = "a role ARN looks like arn:aws:iam::123456789012:role/NAME (copy it from \
the IAM console or `aws iam get-role --role-name NAME`)";

fn split(arn: &str) -> Option<(&str, &str, &str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some((partition, service, region, account, resource))
}

fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())
}

impl RoleArn {
    pub fn parse(arn: &str) -> Result<RoleArn, Diagnosis> {
        let arn = arn.trim();
        let bad = |cause: String| Diagnosis::new(Kind::InvalidArn, cause, ARN_HINT);
        let Some((partition, service, region, account, resource)) = split(arn) else {
            return Err(bad(format!("`{arn}` is not an ARN")));
        };
        if service == "sts" {
            if let Some(rest) = resource.strip_prefix("assumed-role/") {
                let role = rest.split('/').next().unwrap_or_default();
                return Err(Diagnosis::new(
                    Kind::InvalidArn,
                    format!("`{arn}` is an assumed-role session ARN, not a role ARN"),
                    format!(
                        "AssumeRole takes the role ARN: arn:{partition}:iam::{account}:role/{role}"
                    ),
                ));
            }
        }
        if service != "iam" || !region.is_empty() {
            return Err(bad(format!(
                "`{arn}` is not an IAM role ARN (service `{service}`)"
            )));
        }
        if !valid_account(account) {
            return Err(bad(format!(
                "`{arn}`: the account `{account}` is not 12 digits"
            )));
        }
        if resource.starts_with("user/") {
            return Err(bad(format!(
                "`{arn}` is an IAM user, not a role: users cannot be assumed"
            )));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(bad(format!(
                "`{arn}` is not a role ARN (resource `{resource}`)"
            )));
        };
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !name_ok {
            return Err(bad(format!("`{arn}`: the role name `{name}` is not valid")));
        }
        Ok(RoleArn {
            arn: arn.to_string(),
            partition: partition.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }
}

/// What Atlas does with the ARN STS returns for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerKind {
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`: Atlas looks up the role.
    AssumedRole {
        role_arn: String,
        role: String,
        session: String,
    },
    /// `arn:aws:iam::ACCT:user/[PATH/]NAME`: Atlas looks up the ARN as is.
    User { user_arn: String },
    /// Root, federated users and anything else: no Atlas database user can match.
    Other,
}

/// STS's rule for a role session name (RoleSessionName): 2 to 64 characters of `[\w+=,.@-]`.
/// Err names the first character it refuses, with its position, or the length: what STS's own
/// `ValidationError` leaves out.
pub fn check_session_name(name: &str) -> Result<(), String> {
    const RULE: &str =
        "2 to 64 characters of letters, digits and _+=,.@- (STS's pattern [\\w+=,.@-]*)";
    if let Some((i, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c)))
    {
        let shown = if c.is_control() || c.is_whitespace() {
            format!("U+{:04X}", c as u32)
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "{shown} at position {} is not allowed: {RULE}",
            i + 1
        ));
    }
    let n = name.chars().count();
    if !(2..=64).contains(&n) {
        return Err(format!("{n} characters: {RULE}"));
    }
    Ok(())
}

/// Maps the caller ARN from GetCallerIdentity to the ARN of the Atlas database user.
pub fn caller_kind(arn: &str) -> CallerKind {
    let Some((partition, service, _, account, resource)) = split(arn) else {
        return CallerKind::Other;
    };
    match service {
        "sts" => {
            if let Some(rest) = resource.strip_prefix("assumed-role/") {
                if let Some((role, session)) = rest.split_once('/') {
                    return CallerKind::AssumedRole {
                        role_arn: format!("arn:{partition}:iam::{account}:role/{role}"),
                        role: role.to_string(),
                        session: session.to_string(),
                    };
                }
            }
            CallerKind::Other
        }
        "iam" if resource.starts_with("user/") => CallerKind::User {
            user_arn: arn.to_string(),
        },
        _ => CallerKind::Other,
    }
}

/// What a caller Atlas can never map is (ATLAS.md: the server refuses federated users and root
/// with codes 51279/51280, the client sees only `Authentication failed.`).
pub fn unmappable(arn: &str) -> Option<&'static str> {
    let (_, service, _, _, resource) = split(arn)?;
    match (service, resource) {
        ("sts", r) if r.starts_with("federated-user/") => {
            Some("a federated user (GetFederationToken credentials)")
        }
        ("iam", "root") => Some("the account's root user"),
        _ => None,
    }
}

/// A caller from one AWS partition against an Atlas of another: commercial Atlas
/// (`*.mongodb.net`) asks the `aws` partition's STS, Atlas for Government (`*.mongodbgov.net`)
/// GovCloud's, so a caller of another partition is unknown where Atlas asks. A warning: Atlas
/// decides.
pub fn partition_mismatch(caller_arn: &str, target: &str) -> Option<String> {
    let partition = caller_arn.split(':').nth(1)?;
    let target = target.to_ascii_lowercase();
    let gov_host = target.contains(".mongodbgov.net");
    let commercial_host = target.contains(".mongodb.net");
    match (partition, commercial_host, gov_host) {
        ("aws-us-gov" | "aws-cn", true, _) => Some(format!(
            "the caller is in the {partition} partition, and the target is a commercial Atlas \
             host (*.mongodb.net), which checks identities with the aws partition's STS: use \
             credentials of a commercial AWS account, or Atlas for Government \
             (*.mongodbgov.net) for GovCloud"
        )),
        ("aws" | "aws-cn", _, true) => Some(format!(
            "the caller is in the {partition} partition, and the target is an Atlas for \
             Government host (*.mongodbgov.net), which checks identities with GovCloud's STS \
             (aws-us-gov): use credentials of a GovCloud account"
        )),
        _ => None,
    }
}

/// The Atlas CLI's `--awsIAMType` of an ARN: `ROLE` or `USER`.
pub fn iam_type_of(arn: &str) -> &'static str {
    if arn.contains(":role/") {
        "ROLE"
    } else {
        "USER"
    }
}

/// The identity STS reports, with the Atlas database user it maps to.
pub fn identity_of(arn: &str, account: &str, db: &str, user_id: String) -> Identity {
    let account = if account.is_empty() {
        arn.split(':').nth(4).unwrap_or_default().to_string()
    } else {
        account.to_string()
    };
    let mut notes = Vec::new();
    let atlas_user = match caller_kind(arn) {
        CallerKind::AssumedRole { role_arn, .. } => {
            notes.push(format!(
                "STS session ARNs do not show a role's path: Atlas looks up {role_arn}, so \
                 register that ARN even if the role was created with a path"
            ));
            Some(atlas_user(&role_arn, "ROLE", db))
        }
        CallerKind::User { user_arn } => Some(atlas_user(&user_arn, "USER", db)),
        CallerKind::Other => {
            let what = unmappable(arn)
                .map(|w| format!(" ({w}: Atlas refuses these whatever is registered)"))
                .unwrap_or_default();
            notes.push(format!(
                "Atlas cannot map {arn} to a database user{what}: use an IAM user or an IAM role"
            ));
            None
        }
    };
    Identity {
        account,
        arn: arn.to_string(),
        user_id,
        atlas_user,
        notes,
    }
}

/// The Atlas CLI command that creates the database user for `arn`.
pub fn create_command(arn: &str, iam_type: &str, db: &str) -> String {
    format!("atlas dbusers create --username {arn} --awsIAMType {iam_type} --role readWrite@{db}")
}

fn atlas_user(arn: &str, iam_type: &str, db: &str) -> AtlasUser {
    AtlasUser {
        arn: arn.to_string(),
        iam_type: iam_type.to_string(),
        create_command: create_command(arn, iam_type, db),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_matched_to_the_atlas_they_meet() {
        let gov = "arn:aws-us-gov:iam::123456789012:role/app";
        let com = "arn:aws:iam::123456789012:role/app";
        assert!(partition_mismatch(gov, "cluster0.ab12c.mongodb.net").is_some());
        assert!(partition_mismatch(com, "mongodb+srv://c.ab12c.mongodbgov.net/").is_some());
        assert_eq!(partition_mismatch(com, "cluster0.ab12c.mongodb.net"), None);
        assert_eq!(partition_mismatch(gov, "c.ab12c.mongodbgov.net"), None);
        assert_eq!(partition_mismatch(gov, "127.0.0.1:27017"), None);
    }

    #[test]
    fn principals_atlas_cannot_map_are_named() {
        assert!(unmappable("arn:aws:sts::123456789012:federated-user/bob")
            .is_some_and(|w| w.contains("GetFederationToken")));
        assert!(unmappable("arn:aws:iam::123456789012:root").is_some_and(|w| w.contains("root")));
        assert_eq!(unmappable("arn:aws:iam::123456789012:user/bob"), None);
        // an IAM user keeps its path (Atlas maps it verbatim); a role session has none to keep
        let pathed = "arn:aws:iam::123456789012:user/dev/team/bob";
        let id = identity_of(pathed, "", "test", String::new());
        let u = id.atlas_user.expect("user");
        assert_eq!(u.arn, pathed);
        assert!(
            u.create_command.contains(&format!("--username {pathed} ")),
            "{}",
            u.create_command
        );
        let id = identity_of(
            "arn:aws:sts::123456789012:assumed-role/app/s",
            "",
            "test",
            String::new(),
        );
        assert_eq!(
            id.atlas_user.map(|u| u.arn),
            Some("arn:aws:iam::123456789012:role/app".to_string())
        );
        let id = identity_of("arn:aws:iam::123456789012:root", "", "test", String::new());
        assert!(id.atlas_user.is_none());
        assert!(id.notes[0].contains("root user"), "{:?}", id.notes);
    }

    #[test]
    fn session_names_are_checked_as_sts_does() {
        assert!(check_session_name("atlas-iam-1796130840").is_ok());
        assert!(check_session_name("a.b@c=d,e+f_g-h").is_ok());
        let bot = check_session_name("dependabot[bot]").expect_err("bracket");
        assert!(bot.starts_with("`[` at position 11"), "{bot}");
        let slash = check_session_name("team/user").expect_err("slash");
        assert!(slash.starts_with("`/` at position 5"), "{slash}");
        assert!(check_session_name("x")
            .expect_err("short")
            .starts_with("1 characters"));
        assert!(check_session_name(&"a".repeat(65)).is_err());
        assert!(check_session_name("a b")
            .expect_err("space")
            .contains("U+0020"));
    }

    #[test]
    fn parses_role_arns_with_and_without_path() {
        let r = RoleArn::parse("arn:aws:iam::123456789012:role/app").expect("ok");
        assert_eq!(
            (r.account.as_str(), r.name.as_str()),
            ("123456789012", "app")
        );
        let r = RoleArn::parse("arn:aws-us-gov:iam::123456789012:role/service/x/app").expect("ok");
        assert_eq!(
            (r.partition.as_str(), r.name.as_str()),
            ("aws-us-gov", "app")
        );
    }

    #[test]
    fn rejects_what_is_not_a_role_arn() {
        for (arn, says) in [
            ("app", "not an ARN"),
            ("arn:aws:iam::12345:role/app", "12 digits"),
            ("arn:aws:iam::123456789012:user/bob", "IAM user"),
            ("arn:aws:s3:::bucket/x", "not an IAM role"),
            ("arn:aws:iam::123456789012:role/", "not valid"),
            ("arn:aws:iam::123456789012:role/bad name", "not valid"),
        ] {
            let d = RoleArn::parse(arn).expect_err(arn);
            assert_eq!(d.kind, Kind::InvalidArn);
            assert!(d.cause.contains(says), "{arn}: {}", d.cause);
        }
    }

    #[test]
    fn a_session_arn_points_to_its_role() {
        let d = RoleArn::parse("arn:aws:sts::123456789012:assumed-role/app/sess").expect_err("x");
        assert!(
            d.hint.contains("arn:aws:iam::123456789012:role/app"),
            "{}",
            d.hint
        );
    }

    #[test]
    fn assumed_role_maps_to_role_arn() {
        assert_eq!(
            caller_kind("arn:aws:sts::123456789012:assumed-role/app/atlas-iam-1"),
            CallerKind::AssumedRole {
                role_arn: "arn:aws:iam::123456789012:role/app".into(),
                role: "app".into(),
                session: "atlas-iam-1".into()
            }
        );
    }

    #[test]
    fn users_map_as_is_and_others_do_not_map() {
        assert_eq!(
            caller_kind("arn:aws:iam::123456789012:user/team/bob"),
            CallerKind::User {
                user_arn: "arn:aws:iam::123456789012:user/team/bob".into()
            }
        );
        assert_eq!(
            caller_kind("arn:aws:iam::123456789012:root"),
            CallerKind::Other
        );
        assert_eq!(
            caller_kind("arn:aws:sts::123456789012:federated-user/x"),
            CallerKind::Other
        );
    }
}
