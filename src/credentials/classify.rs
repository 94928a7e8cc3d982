//! STS refusals into diagnoses: the failure read from the typed error (or, where the SDK could
//! not parse the error document, from the raw response), then classified with what is known of
//! the keys that were refused.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use super::chain::key_warnings;
use super::{error_text, rfc3339, Source};
use crate::diagnosis::texts::*;
use crate::diagnosis::{Diagnosis, Kind};
use crate::secret::mask_key_id;

/// What an STS or IAM call's failure says, gathered from the typed error and, where the SDK
/// could not parse the error document, from the raw response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StsFailure {
    pub code: Option<String>,
    pub message: Option<String>,
    pub status: Option<u16>,
    pub timeout: bool,
    pub unreachable: bool,
    /// The whole error chain, for the detail (scrub before storing).
    pub text: String,
}

pub(crate) fn xml_tag(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

impl StsFailure {
    pub fn from_sdk<E>(err: &SdkError<E, aws_sdk_sts::config::http::HttpResponse>) -> StsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut f = StsFailure {
            code: err.code().map(str::to_string),
            message: err.message().map(str::to_string),
            text: error_text(err),
            ..Default::default()
        };
        match err {
            SdkError::TimeoutError(_) => f.timeout = true,
            SdkError::DispatchFailure(d) => {
                f.timeout = d.is_timeout();
                f.unreachable = !d.is_timeout();
            }
            _ => {}
        }
        if let Some(resp) = err.raw_response() {
            f.status = Some(resp.status().as_u16());
            if f.code.is_none() {
                let body = resp
                    .body()
                    .bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                f.code = xml_tag(&body, "Code");
                f.message = f.message.or_else(|| xml_tag(&body, "Message"));
            }
        }
        f
    }
}

/// What the classification knows of the credentials that were refused.
#[derive(Clone)]
pub struct KeyFacts {
    pub key_id: String,
    pub has_token: bool,
    pub source: Source,
    pub expiry: Option<SystemTime>,
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for KeyFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFacts")
            .field("key_id", &mask_key_id(&self.key_id))
            .field("has_token", &self.has_token)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl KeyFacts {
    pub fn of(creds: &Credentials, source: &Source) -> KeyFacts {
        KeyFacts {
            key_id: creds.access_key_id().to_string(),
            has_token: creds.session_token().is_some(),
            source: source.clone(),
            expiry: creds.expiry(),
            warnings: key_warnings(creds),
        }
    }
}

/// Turns an STS refusal of `call` (AssumeRole, GetCallerIdentity) into a diagnosis.
pub fn classify(f: &StsFailure, keys: &KeyFacts, call: &str, endpoint: &str) -> Diagnosis {
    let key = mask_key_id(&keys.key_id);
    let msg = f.message.clone().unwrap_or_default();
    if f.timeout {
        return Diagnosis::new(
            Kind::StsTimeout,
            format!("STS at {endpoint} did not answer {call} in time"),
            "check the network path to STS (proxy, VPC endpoint, firewall) or raise --timeout",
        );
    }
    if f.unreachable {
        return Diagnosis::new(
            Kind::StsUnreachable,
            format!("cannot reach STS at {endpoint}: {}", f.text),
            "check the network path to STS and AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL if set",
        );
    }
    match f.code.as_deref() {
        Some(STS_THROTTLING) => Diagnosis::new(
            Kind::StsThrottled,
            format!("STS is throttling {call} for this account ({STS_THROTTLING}: {msg})"),
            crate::diagnosis::THROTTLING_HINT,
        ),
        Some(STS_EXPIRED_TOKEN) | Some(STS_EXPIRED_TOKEN_EXCEPTION) => {
            let when = keys
                .expiry
                .map(|t| format!(" (they expired at {})", rfc3339(t)))
                .unwrap_or_default();
            Diagnosis::new(
                Kind::ExpiredToken,
                format!(
                    "STS refused {call}: the session token of {key} from {} has expired{when}",
                    keys.source
                ),
                keys.source.refresh_hint(),
            )
        }
        Some(STS_INVALID_CLIENT_TOKEN_ID) if keys.key_id.starts_with("ASIA") && !keys.has_token => {
            Diagnosis::new(
                Kind::MissingSessionToken,
                format!(
                    "STS refused {call}: {key} is a temporary key (ASIA…) used without its \
                         session token"
                ),
                "set AWS_SESSION_TOKEN to the token issued with this key (all three values come \
                 from the same AssumeRole or SSO response)",
            )
        }
        // a long-term key never has a session token: one left over from an earlier session
        // makes STS refuse a key that is itself fine
        Some(STS_INVALID_CLIENT_TOKEN_ID) if keys.key_id.starts_with("AKIA") && keys.has_token => {
            Diagnosis::new(
                Kind::InvalidKey,
                format!(
                    "STS refused {call}: {key} is a long-term key (AKIA…), sent with a session \
                     token it never had (from {}): a token left over from an earlier temporary \
                     session",
                    keys.source
                ),
                "unset AWS_SESSION_TOKEN (and AWS_SECURITY_TOKEN), or remove aws_session_token \
                 from the profile: a long-term key is used without a token",
            )
        }
        Some(STS_INVALID_CLIENT_TOKEN_ID) if keys.has_token => Diagnosis::new(
            Kind::InvalidKey,
            format!(
                "STS refused {call}: the session token does not belong to {key}, or the key \
                     is no longer valid"
            ),
            "use the key, secret and token of one and the same AssumeRole/SSO response, and \
             fresh ones if the session was revoked",
        ),
        Some(STS_INVALID_CLIENT_TOKEN_ID) => Diagnosis::new(
            Kind::InvalidKey,
            format!(
                "STS refused {call}: AWS does not know the access key {key} from {} (deleted, \
                     deactivated, mistyped, or from another partition)",
                keys.source
            ),
            "check the key id in the IAM console (Users > Security credentials) and that it is \
             active; create a new key if it was deleted",
        ),
        Some(STS_SIGNATURE_DOES_NOT_MATCH) if msg.contains(STS_SIGNATURE_EXPIRED) => {
            Diagnosis::new(
                Kind::ClockSkew,
                format!(
                    "STS refused {call}: the request's date is too far from AWS's clock ({msg})"
                ),
                "set this machine's clock right (enable NTP: `timedatectl set-ntp true`); AWS \
             accepts 15 minutes of skew at most",
            )
        }
        Some(STS_SIGNATURE_DOES_NOT_MATCH) => {
            let mut cause = format!(
                "STS refused {call}: the signature made with the secret key \
                of {key} does not match, so the secret key is wrong or was mangled"
            );
            if !keys.warnings.is_empty() {
                cause.push_str(&format!(" ({})", keys.warnings.join("; ")));
            }
            Diagnosis::new(
                Kind::SignatureMismatch,
                cause,
                "copy the secret key again exactly (secrets contain + / =, which break when \
                 pasted into a URL or a shell unquoted); in a URI they must be percent-encoded",
            )
        }
        Some(STS_ACCESS_DENIED) if call == "AssumeRole" => Diagnosis::new(
            Kind::AssumeRoleDenied,
            format!("STS refused AssumeRole: {msg}"),
            "the role's trust policy must name the caller, and the caller's IAM policy must \
             allow sts:AssumeRole on the role",
        ),
        Some(STS_VALIDATION_ERROR) if msg.contains(STS_ROLE_CHAINING) => Diagnosis::new(
            Kind::DurationTooLong,
            format!("STS refused AssumeRole: {msg}"),
            "the caller is itself an assumed role, so the session is capped at 1 hour: use \
             --duration 3600 or less",
        ),
        Some(STS_VALIDATION_ERROR) if msg.contains(STS_DURATION_SECONDS) => Diagnosis::new(
            Kind::DurationTooLong,
            format!("STS refused AssumeRole: {msg}"),
            "use a shorter --duration, or raise the role's maximum session duration",
        ),
        code => {
            let code = code.unwrap_or("unknown error");
            let status = f.status.map(|s| format!("HTTP {s}, ")).unwrap_or_default();
            let detail = if msg.is_empty() { f.text.clone() } else { msg };
            Diagnosis::new(
                Kind::StsError,
                format!("STS refused {call} ({status}{code}): {detail}"),
                format!("see the error code {code} in the STS documentation"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: &str, token: bool) -> KeyFacts {
        KeyFacts {
            key_id: id.into(),
            has_token: token,
            source: Source::Environment,
            expiry: None,
            warnings: vec![],
        }
    }

    fn refused(code: &str, message: &str) -> StsFailure {
        StsFailure {
            code: Some(code.into()),
            message: Some(message.into()),
            status: Some(403),
            ..Default::default()
        }
    }

    const ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const TMP: &str = "ASIAIOSFODNN7EXAMPLE";

    #[test]
    fn classification_table() {
        let cases: Vec<(StsFailure, KeyFacts, Kind)> = vec![
            (refused("ExpiredToken", "The security token included in the request is expired"),
                keys(TMP, true), Kind::ExpiredToken),
            (refused("InvalidClientTokenId", "The security token included in the request is invalid."),
                keys(TMP, false), Kind::MissingSessionToken),
            (refused("InvalidClientTokenId", "The security token included in the request is invalid."),
                keys(TMP, true), Kind::InvalidKey),
            (refused("InvalidClientTokenId", "The security token included in the request is invalid."),
                keys(ID, false), Kind::InvalidKey),
            (refused("InvalidClientTokenId", "The security token included in the request is invalid."),
                keys(ID, true), Kind::InvalidKey),
            (refused("SignatureDoesNotMatch", "Signature expired: 20261122T060000Z is now earlier than ..."),
                keys(ID, false), Kind::ClockSkew),
            (refused("SignatureDoesNotMatch", "The request signature we calculated does not match"),
                keys(ID, false), Kind::SignatureMismatch),
            (refused("AccessDenied", "User: arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/r"),
                keys(ID, false), Kind::AssumeRoleDenied),
            (refused("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."),
                keys(ID, false), Kind::DurationTooLong),
            (refused("ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."),
                keys(TMP, true), Kind::DurationTooLong),
            (refused("Throttling", "Rate exceeded"), keys(ID, false), Kind::StsThrottled),
            (StsFailure { timeout: true, ..Default::default() }, keys(ID, false), Kind::StsTimeout),
            (StsFailure { unreachable: true, ..Default::default() }, keys(ID, false), Kind::StsUnreachable),
        ];
        for (failure, keys, kind) in cases {
            let d = classify(&failure, &keys, "AssumeRole", "http://127.0.0.1:1");
            assert_eq!(d.kind, kind, "{failure:?} -> {d:?}");
            assert!(
                !d.cause.contains(ID) && !d.cause.contains(TMP),
                "full key id in {}",
                d.cause
            );
        }
    }

    #[test]
    fn a_long_term_key_with_a_leftover_token_names_the_token() {
        let refusal = refused(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        );
        let d = classify(&refusal, &keys(ID, true), "GetCallerIdentity", "x");
        assert!(d.cause.contains("long-term key"), "{d}");
        assert!(d.hint.starts_with("unset AWS_SESSION_TOKEN"), "{d}");
        let d = classify(&refusal, &keys(ID, false), "GetCallerIdentity", "x");
        assert!(!d.cause.contains("long-term key"), "{d}");
    }

    #[test]
    fn access_denied_is_assume_specific() {
        let d = classify(
            &refused("AccessDenied", "no"),
            &keys(ID, false),
            "GetCallerIdentity",
            "x",
        );
        assert_eq!(d.kind, Kind::StsError);
    }

    #[test]
    fn xml_error_documents_are_read() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>\
                    <Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>";
        assert_eq!(
            xml_tag(body, "Code").as_deref(),
            Some(STS_INVALID_CLIENT_TOKEN_ID)
        );
        assert_eq!(
            xml_tag(body, "Message").as_deref(),
            Some("The security token included in the request is invalid.")
        );
        assert_eq!(xml_tag("<html/>", "Code"), None);
    }
}
