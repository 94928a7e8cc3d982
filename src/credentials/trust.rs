//! Trust policies: why AssumeRole was denied (the caller named or not, the account trusted,
//! ExternalId and MFA conditions) and why a duration was refused, read with iam:GetRole.

use aws_config::SdkConfig;

use super::sts::{caller_arn, get_role, RoleFacts, RoleLookup};
use crate::config::RoleRequest;
use crate::diagnosis::{texts, Diagnosis, Kind};
use crate::identity::{caller_kind, CallerKind};

pub(crate) async fn explain_denial(
    sdk: &SdkConfig,
    role: &RoleRequest,
    message: &str,
    d: &mut Diagnosis,
) {
    let caller = caller_arn(sdk, message).await;
    let who = caller.clone().unwrap_or_else(|| "the caller".to_string());
    let arn = &role.arn.arn;
    match get_role(sdk, &role.arn).await {
        RoleLookup::Missing => {
            d.kind = Kind::RoleNotFound;
            d.cause = format!(
                "{who} may not assume {arn}: the role does not exist in account {}",
                role.arn.account
            );
            d.hint = "check the role name and account in --role-arn (`aws iam list-roles`)".into();
        }
        RoleLookup::Unreadable(why) => {
            d.cause = format!(
                "{who} is not allowed to assume {arn} (the trust policy could not \
                be read: iam:GetRole gave {why})"
            );
            d.hint = format!(
                "ask for the trust policy of {arn} to name {who}, and for {who}'s \
                IAM policy to allow sts:AssumeRole on it"
            );
        }
        RoleLookup::Found(facts) => {
            let verdict = facts
                .trust_policy
                .as_deref()
                .map(|doc| trust_verdict(doc, caller.as_deref().unwrap_or("")))
                .unwrap_or(TrustVerdict::Unreadable);
            let (cause, hint) = match verdict.decision {
                TrustDecision::NamesCaller => (
                    format!(
                        "the trust policy of {arn} names {who}, so what refuses is {who}'s own \
                             IAM policy (or a condition of the trust policy)"
                    ),
                    format!("allow sts:AssumeRole on {arn} in {who}'s IAM policy"),
                ),
                TrustDecision::TrustsAccount(acct) => (
                    format!(
                        "the trust policy of {arn} trusts account {acct} as a whole, so \
                             {who}'s own IAM policy must allow sts:AssumeRole on it, and does not"
                    ),
                    format!("allow sts:AssumeRole on {arn} in {who}'s IAM policy"),
                ),
                TrustDecision::DoesNotName(principals) => (
                    format!(
                        "the trust policy of {arn} does not name {who} (it trusts: {})",
                        if principals.is_empty() {
                            "no AWS principal".to_string()
                        } else {
                            principals.join(", ")
                        }
                    ),
                    format!(
                        "add {who} as a Principal of an sts:AssumeRole statement in the trust \
                             policy of {arn} (aws iam update-assume-role-policy), or run as an \
                             identity it trusts"
                    ),
                ),
                TrustDecision::Unreadable => (
                    format!(
                        "{who} is not allowed to assume {arn}; its trust policy could not be read"
                    ),
                    d.hint.clone(),
                ),
            };
            d.cause = cause;
            d.hint = hint;
            let mut conditions = Vec::new();
            if verdict.requires_external_id && role.external_id.is_none() {
                conditions.push("the trust policy requires an external id: pass --external-id");
            }
            if verdict.requires_mfa && role.mfa_serial.is_none() {
                conditions.push("the trust policy requires MFA: pass --mfa-serial and --mfa-token");
            }
            if !conditions.is_empty() {
                d.hint = format!("{}; {}", conditions.join("; "), d.hint);
            }
        }
    }
}

pub(crate) async fn explain_duration(
    sdk: &SdkConfig,
    role: &RoleRequest,
    message: &str,
    d: &mut Diagnosis,
) {
    if message.contains(texts::STS_ROLE_CHAINING) {
        return;
    }
    if let RoleLookup::Found(RoleFacts {
        max_session: Some(max),
        ..
    }) = get_role(sdk, &role.arn).await
    {
        d.hint = format!(
            "the maximum session duration of {} is {max} seconds: use --duration \
            {max} or less, or raise the role's maximum",
            role.arn.arn
        );
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustDecision {
    NamesCaller,
    TrustsAccount(String),
    DoesNotName(Vec<String>),
    Unreadable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustVerdict {
    pub decision: TrustDecision,
    pub requires_external_id: bool,
    pub requires_mfa: bool,
}

impl TrustVerdict {
    #[allow(non_upper_case_globals)]
    const Unreadable: TrustVerdict = TrustVerdict {
        decision: TrustDecision::Unreadable,
        requires_external_id: false,
        requires_mfa: false,
    };
}

fn as_list(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether an IAM principal in a trust policy designates the caller.
fn principal_matches(principal: &str, caller: &str) -> bool {
    if principal == "*" || principal == caller {
        return true;
    }
    match caller_kind(caller) {
        CallerKind::AssumedRole { role_arn, role, .. } => {
            // The trust policy names the role, possibly with a path STS does not show.
            principal == role_arn
                || (principal.starts_with(role_arn.trim_end_matches(&format!("role/{role}")))
                    && principal.ends_with(&format!("/{role}"))
                    && principal.contains(":role/"))
        }
        _ => false,
    }
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Reads a trust policy as far as it concerns `caller` (an ARN from STS).
pub fn trust_verdict(doc: &str, caller: &str) -> TrustVerdict {
    let Ok(policy) = serde_json::from_str::<serde_json::Value>(doc) else {
        return TrustVerdict::Unreadable;
    };
    let statements = match policy.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(s @ serde_json::Value::Object(_)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let caller_account = account_of(caller);
    let mut principals = Vec::new();
    let mut decision = None;
    let mut requires_external_id = false;
    let mut requires_mfa = false;
    for st in statements {
        if st.get("Effect").and_then(|e| e.as_str()) != Some("Allow") {
            continue;
        }
        let actions = as_list(st.get("Action"));
        if !actions
            .iter()
            .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*")
        {
            continue;
        }
        let aws = match st.get("Principal") {
            Some(serde_json::Value::String(s)) if s == "*" => vec!["*".to_string()],
            Some(p) => as_list(p.get("AWS")),
            None => Vec::new(),
        };
        let conditions = st
            .get("Condition")
            .map(|c| c.to_string())
            .unwrap_or_default();
        let names = |p: &String| principal_matches(p, caller);
        let trusts_account = |p: &String| {
            caller_account.is_some_and(|acct| {
                *p == acct
                    || *p == format!("arn:aws:iam::{acct}:root")
                    || (p.ends_with(&format!("::{acct}:root")))
            })
        };
        if aws.iter().any(names) {
            decision = Some(TrustDecision::NamesCaller);
        } else if let Some(p) = aws.iter().find(|p| trusts_account(p)) {
            if decision.is_none() {
                decision = Some(TrustDecision::TrustsAccount(
                    account_of(p).unwrap_or(p.as_str()).to_string(),
                ));
            }
        } else {
            principals.extend(aws.iter().cloned());
            continue;
        }
        requires_external_id |= conditions.contains("sts:ExternalId");
        requires_mfa |= conditions.contains("aws:MultiFactorAuthPresent");
    }
    TrustVerdict {
        decision: decision.unwrap_or(TrustDecision::DoesNotName(principals)),
        requires_external_id,
        requires_mfa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "arn:aws:iam::123456789012:user/alice";

    fn policy(principal: &str, condition: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":{principal}}},"Action":"sts:AssumeRole"{condition}}}]}}"#
        )
    }

    #[test]
    fn trust_policy_naming_the_caller() {
        let v = trust_verdict(&policy(&format!("\"{USER}\""), ""), USER);
        assert_eq!(v.decision, TrustDecision::NamesCaller);
        let v = trust_verdict(&policy(&format!("[\"x\",\"{USER}\"]"), ""), USER);
        assert_eq!(v.decision, TrustDecision::NamesCaller);
    }

    #[test]
    fn trust_policy_trusting_the_account() {
        let v = trust_verdict(&policy("\"arn:aws:iam::123456789012:root\"", ""), USER);
        assert_eq!(
            v.decision,
            TrustDecision::TrustsAccount("123456789012".into())
        );
    }

    #[test]
    fn trust_policy_naming_someone_else() {
        let other = "arn:aws:iam::123456789012:user/bob";
        let v = trust_verdict(&policy(&format!("\"{other}\""), ""), USER);
        assert_eq!(v.decision, TrustDecision::DoesNotName(vec![other.into()]));
    }

    #[test]
    fn trust_policy_conditions_are_noticed() {
        let v = trust_verdict(
            &policy(
                &format!("\"{USER}\""),
                r#","Condition":{"StringEquals":{"sts:ExternalId":"x"}}"#,
            ),
            USER,
        );
        assert!(v.requires_external_id && !v.requires_mfa);
    }

    #[test]
    fn assumed_role_callers_match_their_role_even_with_a_path() {
        let caller = "arn:aws:sts::123456789012:assumed-role/app/s1";
        assert!(principal_matches(
            "arn:aws:iam::123456789012:role/app",
            caller
        ));
        assert!(principal_matches(
            "arn:aws:iam::123456789012:role/svc/app",
            caller
        ));
        assert!(!principal_matches(
            "arn:aws:iam::123456789012:role/other",
            caller
        ));
        assert!(!principal_matches(
            "arn:aws:iam::999999999999:role/app",
            caller
        ));
    }

    #[test]
    fn garbage_policies_are_unreadable() {
        assert_eq!(
            trust_verdict("not json", USER).decision,
            TrustDecision::Unreadable
        );
    }
}
