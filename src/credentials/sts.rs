//! The calls to STS and IAM: the SDK configuration for them, GetCallerIdentity (with the clock
//! offset from STS's Date header), AssumeRole with its refusals explained, and iam:GetRole.

use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;

use super::classify::{classify, xml_tag, KeyFacts, StsFailure};
use super::{error_text, trust, Resolved};
use crate::config::{Env, RoleRequest};
use crate::diagnosis::{texts, Diagnosis, Kind};
use crate::identity::RoleArn;

/// SDK configuration for STS and IAM calls with these credentials. Endpoints follow
/// AWS_ENDPOINT_URL(_STS|_IAM) and the profile's endpoint_url, as the SDK does.
pub async fn sdk_config(resolved: &Resolved, creds: Credentials, budget: Duration) -> SdkConfig {
    let connect = budget.min(crate::timing::STS_CONNECT);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(resolved.region.clone())
        .credentials_provider(creds)
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect)
                .operation_timeout(budget)
                .build(),
        );
    if let Some(p) = &resolved.profile {
        loader = loader.profile_name(p);
    }
    if let Some(client) = super::http::client() {
        loader = loader.http_client(client);
    }
    loader.load().await
}

/// The STS endpoint as the user configured it, for messages.
pub fn sts_endpoint(env: &Env, region: &Region) -> String {
    env.get("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(|u| crate::secret::redact_url_userinfo(&u))
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

#[derive(Clone, Debug)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
    /// Local clock minus STS's (from the response's Date header), in seconds.
    pub clock_offset: Option<i64>,
}

/// Keeps the Date header of STS's last response, and the local time it arrived.
#[derive(Clone, Debug, Default)]
struct DateCapture(std::sync::Arc<std::sync::Mutex<Option<(String, SystemTime)>>>);

impl aws_sdk_sts::config::Intercept for DateCapture {
    fn name(&self) -> &'static str {
        "atlas-iam-date-capture"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _: &aws_sdk_sts::config::RuntimeComponents,
        _: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(date) = context.response().headers().get("date") {
            if let Ok(mut slot) = self.0.lock() {
                *slot = Some((date.to_string(), SystemTime::now()));
            }
        }
        Ok(())
    }
}

/// Local time minus the HTTP date, in seconds.
pub(super) fn clock_offset(http_date: &str, local: SystemTime) -> Option<i64> {
    let sts = aws_smithy_types::DateTime::from_str(
        http_date,
        aws_smithy_types::date_time::Format::HttpDate,
    )
    .ok()?;
    let local = aws_smithy_types::DateTime::from(local);
    Some(local.secs() - sts.secs())
}

pub async fn caller_identity(sdk: &SdkConfig) -> Result<CallerIdentity, StsFailure> {
    let capture = DateCapture::default();
    let out = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .customize()
        .interceptor(capture.clone())
        .send()
        .await
        .map_err(|e| StsFailure::from_sdk(&e))?;
    let clock_offset = capture
        .0
        .lock()
        .ok()
        .and_then(|slot| slot.clone())
        .and_then(|(date, local)| clock_offset(&date, local));
    Ok(CallerIdentity {
        account: out.account().unwrap_or_default().to_string(),
        arn: out.arn().unwrap_or_default().to_string(),
        user_id: out.user_id().unwrap_or_default().to_string(),
        clock_offset,
    })
}

#[derive(Clone)]
pub struct Assumed {
    pub creds: Credentials,
    pub arn: String,
    pub expiration: Option<SystemTime>,
}

impl std::fmt::Debug for Assumed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assumed")
            .field(
                "access_key_id",
                &crate::secret::mask_key_id(self.creds.access_key_id()),
            )
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

/// AssumeRole with `sdk`'s credentials. A refusal is explained with what only a second look can
/// tell: who the caller is, whether the role exists, what its trust policy names.
pub async fn assume_role(
    sdk: &SdkConfig,
    base: &Resolved,
    role: &RoleRequest,
    env: &Env,
) -> Result<Assumed, Diagnosis> {
    let result = aws_sdk_sts::Client::new(sdk)
        .assume_role()
        .role_arn(&role.arn.arn)
        .role_session_name(&role.session_name)
        .set_external_id(role.external_id.clone())
        .set_duration_seconds(role.duration)
        .set_serial_number(role.mfa_serial.clone())
        .set_token_code(role.mfa_token.clone())
        .send()
        .await;
    let keys = KeyFacts::of(&base.creds, &base.source);
    let endpoint = sts_endpoint(env, &base.region);
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let failure = StsFailure::from_sdk(&e);
            let mut d = classify(&failure, &keys, "AssumeRole", &endpoint);
            match d.kind {
                Kind::AssumeRoleDenied => {
                    trust::explain_denial(
                        sdk,
                        role,
                        failure.message.as_deref().unwrap_or_default(),
                        &mut d,
                    )
                    .await
                }
                Kind::DurationTooLong => {
                    trust::explain_duration(
                        sdk,
                        role,
                        failure.message.as_deref().unwrap_or_default(),
                        &mut d,
                    )
                    .await
                }
                _ => {}
            }
            return Err(d);
        }
    };
    let (Some(c), Some(user)) = (out.credentials(), out.assumed_role_user()) else {
        return Err(Diagnosis::new(
            Kind::StsError,
            "STS answered AssumeRole without credentials",
            "this is not an answer STS gives: check AWS_ENDPOINT_URL_STS",
        ));
    };
    let expiration = SystemTime::try_from(*c.expiration()).ok();
    let mut builder = Credentials::builder()
        .access_key_id(c.access_key_id())
        .secret_access_key(c.secret_access_key())
        .session_token(c.session_token())
        .provider_name("AssumeRole");
    if let Some(exp) = expiration {
        builder = builder.expiry(exp);
    }
    Ok(Assumed {
        creds: builder.build(),
        arn: user.arn().to_string(),
        expiration,
    })
}

/// The caller as STS names it in an AccessDenied message, or as GetCallerIdentity says.
pub(crate) async fn caller_arn(sdk: &SdkConfig, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix(texts::STS_DENIED_CALLER_PREFIX) {
        if let Some(arn) = rest.split_whitespace().next() {
            return Some(arn.to_string());
        }
    }
    caller_identity(sdk).await.ok().map(|c| c.arn)
}

pub(crate) struct RoleFacts {
    pub arn: String,
    pub path: String,
    pub trust_policy: Option<String>,
    pub max_session: Option<i32>,
}

pub(crate) enum RoleLookup {
    Found(RoleFacts),
    Missing,
    Unreadable(String),
}

pub(crate) async fn get_role(sdk: &SdkConfig, role: &RoleArn) -> RoleLookup {
    let result = aws_sdk_iam::Client::new(sdk)
        .get_role()
        .role_name(&role.name)
        .send()
        .await;
    match result {
        Ok(out) => match out.role() {
            Some(r) => RoleLookup::Found(RoleFacts {
                arn: r.arn().to_string(),
                path: r.path().to_string(),
                trust_policy: r.assume_role_policy_document().map(|d| {
                    percent_encoding::percent_decode_str(d)
                        .decode_utf8_lossy()
                        .into_owned()
                }),
                max_session: r.max_session_duration(),
            }),
            None => RoleLookup::Missing,
        },
        Err(e) => {
            let code = e.code().map(str::to_string).or_else(|| {
                e.raw_response()
                    .and_then(|r| r.body().bytes())
                    .and_then(|b| xml_tag(&String::from_utf8_lossy(b), "Code"))
            });
            match code.as_deref() {
                Some(texts::IAM_NO_SUCH_ENTITY) => RoleLookup::Missing,
                Some(c) => RoleLookup::Unreadable(c.to_string()),
                None => RoleLookup::Unreadable(error_text(&e)),
            }
        }
    }
}

/// The role's ARN with its IAM path, when it has one (`role/svc/app`): what a session ARN drops.
/// None when the role has no path or iam:GetRole is not allowed.
pub async fn role_with_path(sdk: &SdkConfig, role_arn: &str) -> Option<String> {
    let role = RoleArn::parse(role_arn).ok()?;
    match get_role(sdk, &role).await {
        RoleLookup::Found(r) if r.path != "/" && !r.path.is_empty() => Some(r.arn),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offsets_from_http_dates() {
        let local = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_330_000);
        let sts = aws_smithy_types::DateTime::from_secs(1_795_331_200)
            .fmt(aws_smithy_types::date_time::Format::HttpDate)
            .expect("date");
        assert_eq!(clock_offset(&sts, local), Some(-1200));
        assert_eq!(clock_offset("not a date", local), None);
    }
}
