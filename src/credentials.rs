//! AWS credential resolution (the default chain, traced provider by provider), AssumeRole on top,
//! GetCallerIdentity, and the classification of STS refusals into diagnoses.

use std::time::{Duration, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_types::os_shim_internal::{Env, Fs};

use crate::arn::{caller_kind, CallerKind, RoleArn};
use crate::config::{process_env, Config, RoleRequest};
use crate::diagnosis::{Diagnosis, Kind};
use crate::secret::{mask_key_id, Scrubber};

/// Credentials and what is known of where they came from.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub creds: Credentials,
    pub source: String,
    pub region: Region,
    /// The profile whose settings (region, endpoint_url) apply to the SDK clients.
    pub profile: Option<String>,
    pub warnings: Vec<String>,
}

impl Resolved {
    pub fn temporary(&self) -> bool {
        self.creds.session_token().is_some()
    }

    pub fn masked_key_id(&self) -> String {
        mask_key_id(self.creds.access_key_id())
    }

    pub fn add_to(&self, scrubber: &mut Scrubber) {
        add_credentials(scrubber, &self.creds);
    }
}

pub fn add_credentials(scrubber: &mut Scrubber, creds: &Credentials) {
    scrubber.add_key_id(creds.access_key_id());
    scrubber.add_secret(creds.secret_access_key());
    if let Some(t) = creds.session_token() {
        scrubber.add_secret(t);
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| format!("{t:?}"))
}

/// Scrubber for text that may carry the secrets of the environment before any are resolved.
pub fn env_scrubber() -> Scrubber {
    let mut s = Scrubber::new();
    if let Some(id) = process_env("AWS_ACCESS_KEY_ID") {
        s.add_key_id(&id);
    }
    for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(v) = process_env(name) {
            s.add_secret(&v);
        }
    }
    s
}

/// An error and its sources, each as it displays, joined by `: ` (no Debug dumps).
fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

// ---------------------------------------------------------------- profiles and region

async fn profile_set() -> Result<aws_config::profile::ProfileSet, Diagnosis> {
    #[allow(deprecated)] // the replacement lives in aws-runtime, not a direct dependency
    let files = aws_config::profile::profile_file::ProfileFiles::default();
    aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .map_err(|e| {
            Diagnosis::new(
                Kind::ProfileError,
                format!("cannot read the AWS config files: {}", error_text(&e)),
                "fix the syntax of ~/.aws/config and ~/.aws/credentials (or the files named by \
                 AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE)",
            )
        })
}

fn config_files_shown() -> String {
    let config = process_env("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into());
    let creds =
        process_env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".into());
    format!("{config} and {creds}")
}

fn unknown_profile(name: &str, set: &aws_config::profile::ProfileSet) -> Diagnosis {
    let mut known: Vec<&str> = set.profiles().collect();
    known.sort_unstable();
    let known = if known.is_empty() {
        "no profiles are defined".to_string()
    } else {
        format!("known profiles: {}", known.join(", "))
    };
    Diagnosis::new(
        Kind::UnknownProfile,
        format!(
            "the AWS profile `{name}` is not in {} ({known})",
            config_files_shown()
        ),
        "check the name given by --profile or AWS_PROFILE, or create it with `aws configure \
         --profile NAME`",
    )
}

/// How a profile gets its credentials, from its settings.
fn describe_profile(name: &str, set: &aws_config::profile::ProfileSet) -> String {
    let Some(p) = set.get_profile(name) else {
        return format!("profile {name}");
    };
    let how = if let Some(role) = p.get("role_arn") {
        match (p.get("source_profile"), p.get("credential_source")) {
            (Some(src), _) => format!("role_arn {role} via source_profile {src}"),
            (None, Some(src)) => format!("role_arn {role} via credential_source {src}"),
            (None, None) => format!("role_arn {role} with web identity"),
        }
    } else if p.get("credential_process").is_some() {
        "credential_process".to_string()
    } else if p.get("sso_session").is_some() || p.get("sso_start_url").is_some() {
        "SSO".to_string()
    } else if p.get("aws_access_key_id").is_some() {
        "keys in the profile".to_string()
    } else {
        "settings only".to_string()
    };
    format!("profile {name} ({how})")
}

async fn resolve_region(cfg: &Config, profile: Option<&str>) -> Region {
    let mut default_chain = aws_config::default_provider::region::DefaultRegionChain::builder();
    if let Some(p) = profile {
        default_chain = default_chain.profile_name(p);
    }
    RegionProviderChain::first_try(cfg.region.clone().map(Region::new))
        .or_else(default_chain.build())
        .or_else(Region::new("us-east-1"))
        .region()
        .await
        .unwrap_or_else(|| Region::new("us-east-1"))
}

// ---------------------------------------------------------------- the credential chain

/// Resolves credentials as the AWS default chain does, recording what each provider said.
/// A `--profile` flag (a profile that is not AWS_PROFILE's) selects that profile alone.
pub async fn resolve(cfg: &Config) -> Result<Resolved, Diagnosis> {
    let set = profile_set().await?;
    let env_profile = process_env("AWS_PROFILE");
    let explicit = cfg.profile.is_some() && cfg.profile != env_profile;
    let profile_name = cfg
        .profile
        .clone()
        .or(env_profile)
        .unwrap_or_else(|| "default".to_string());
    let named = cfg.profile.is_some();
    if explicit && set.get_profile(&profile_name).is_none() {
        return Err(unknown_profile(&profile_name, &set));
    }

    let region = resolve_region(cfg, named.then_some(profile_name.as_str())).await;
    let pc = ProviderConfig::default().with_region(Some(region.clone()));
    let mut warnings = Vec::new();
    let mut tried = Vec::new();

    macro_rules! attempt {
        ($label:expr, $provider:expr) => {{
            let label: String = $label;
            match $provider.provide_credentials().await {
                Ok(creds) => Some((creds, label)),
                Err(e @ CredentialsError::CredentialsNotLoaded(_)) => {
                    let why = error_text(&e)
                        .trim_start_matches("the credential provider was not enabled")
                        .trim_start_matches(": ")
                        .to_string();
                    let why = if why.is_empty() {
                        "nothing configured".to_string()
                    } else {
                        why
                    };
                    tried.push(format!("{label} ({why})"));
                    None
                }
                Err(e) => {
                    let kind = if matches!(e, CredentialsError::ProviderTimedOut(_)) {
                        Kind::CredentialsTimeout
                    } else {
                        Kind::CredentialsError
                    };
                    return Err(Diagnosis::new(
                        kind,
                        format!("{label} failed: {}", env_scrubber().scrub(&error_text(&e))),
                        credentials_error_hint(&label),
                    ));
                }
            }
        }};
    }

    let profile_provider = || {
        aws_config::profile::ProfileFileCredentialsProvider::builder()
            .configure(&pc)
            .profile_name(&profile_name)
            .build()
    };

    let found = if explicit {
        if process_env("AWS_ACCESS_KEY_ID").is_some() {
            warnings.push(format!(
                "AWS_ACCESS_KEY_ID is set too: an application using the default chain would use \
                 those keys, not profile {profile_name}"
            ));
        }
        attempt!(describe_profile(&profile_name, &set), profile_provider())
    } else {
        let mut found = attempt!(
            "environment".to_string(),
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new()
        );
        if found.is_none() {
            if named && set.get_profile(&profile_name).is_none() {
                return Err(unknown_profile(&profile_name, &set));
            }
            found = attempt!(describe_profile(&profile_name, &set), profile_provider());
        }
        if found.is_none() {
            let p = aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(&pc)
                .build();
            found = attempt!("web identity".to_string(), p);
        }
        if found.is_none() {
            let p = aws_config::ecs::EcsCredentialsProvider::builder()
                .configure(&pc)
                .build();
            found = attempt!("container (ECS)".to_string(), p);
        }
        if found.is_none() {
            let p = aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .configure(&pc)
                .build();
            found = attempt!("instance metadata (IMDS)".to_string(), p);
        }
        found
    };

    let Some((creds, source)) = found else {
        let scrub = env_scrubber();
        let tried: Vec<String> = tried.iter().map(|t| scrub.scrub(t)).collect();
        return Err(Diagnosis::new(
            Kind::NoCredentials,
            format!("no AWS credentials found; tried: {}", tried.join("; ")),
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary \
             keys), or choose a profile with --profile or AWS_PROFILE, or run where a role \
             provides them (Lambda, ECS, EC2)",
        ));
    };

    if let Some(expiry) = creds.expiry() {
        if expiry <= SystemTime::now() {
            return Err(Diagnosis::new(
                Kind::CredentialsExpired,
                format!(
                    "the credentials from {source} expired at {}",
                    rfc3339(expiry)
                ),
                refresh_hint(&source),
            ));
        }
    }
    warnings.extend(key_warnings(&creds));

    Ok(Resolved {
        creds,
        source,
        region,
        profile: named.then_some(profile_name),
        warnings,
    })
}

fn credentials_error_hint(label: &str) -> String {
    if label.contains("SSO") {
        "run `aws sso login` for this profile".to_string()
    } else if label.contains("credential_process") {
        "run the profile's credential_process by hand to see why it fails".to_string()
    } else if label.contains("role_arn") {
        "the profile's role could not be assumed: check the source profile's keys and the \
         role's trust policy (try `atlas-iam assume --role-arn ROLE` with the source profile)"
            .to_string()
    } else {
        "check the settings of this credential source".to_string()
    }
}

fn refresh_hint(source: &str) -> String {
    if source.contains("SSO") {
        "run `aws sso login`, then try again".to_string()
    } else if source.starts_with("environment") {
        "these are temporary keys: get fresh ones (`eval \"$(atlas-iam assume --role-arn ARN)\"`) \
         and export all three of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
            .to_string()
    } else {
        "get fresh credentials from their source, then try again".to_string()
    }
}

/// Signs of a key pair that STS will refuse, visible before any call.
fn key_warnings(creds: &Credentials) -> Vec<String> {
    let mut w = Vec::new();
    if creds.access_key_id().starts_with("ASIA") && creds.session_token().is_none() {
        w.push("the access key is temporary (ASIA…) but no session token is set".to_string());
    }
    let secret = creds.secret_access_key();
    if secret.chars().any(char::is_whitespace) {
        w.push("the secret key contains white space (a `+` decoded as a space?)".to_string());
    } else if secret.len() != 40 {
        w.push(format!(
            "the secret key has {} characters; AWS secret keys have 40",
            secret.len()
        ));
    }
    w
}

// ---------------------------------------------------------------- SDK clients

/// SDK configuration for STS and IAM calls with these credentials. Endpoints follow
/// AWS_ENDPOINT_URL(_STS|_IAM) and the profile's endpoint_url, as the SDK does.
pub async fn sdk_config(resolved: &Resolved, creds: Credentials, budget: Duration) -> SdkConfig {
    let connect = budget.min(Duration::from_secs(5));
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
    loader.load().await
}

/// The STS endpoint as the user configured it, for messages.
pub fn sts_endpoint(region: &Region) -> String {
    process_env("AWS_ENDPOINT_URL_STS")
        .or_else(|| process_env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

// ---------------------------------------------------------------- STS failures

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

fn xml_tag(body: &str, tag: &str) -> Option<String> {
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
#[derive(Clone, Debug)]
pub struct KeyFacts {
    pub key_id: String,
    pub has_token: bool,
    pub source: String,
    pub expiry: Option<SystemTime>,
    pub warnings: Vec<String>,
}

impl KeyFacts {
    pub fn of(creds: &Credentials, source: &str) -> KeyFacts {
        KeyFacts {
            key_id: creds.access_key_id().to_string(),
            has_token: creds.session_token().is_some(),
            source: source.to_string(),
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
        Some("ExpiredToken") | Some("ExpiredTokenException") => {
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
                refresh_hint(&keys.source),
            )
        }
        Some("InvalidClientTokenId") if keys.key_id.starts_with("ASIA") && !keys.has_token => {
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
        Some("InvalidClientTokenId") if keys.has_token => Diagnosis::new(
            Kind::InvalidKey,
            format!(
                "STS refused {call}: the session token does not belong to {key}, or the key \
                     is no longer valid"
            ),
            "use the key, secret and token of one and the same AssumeRole/SSO response, and \
             fresh ones if the session was revoked",
        ),
        Some("InvalidClientTokenId") => Diagnosis::new(
            Kind::InvalidKey,
            format!(
                "STS refused {call}: AWS does not know the access key {key} from {} (deleted, \
                     deactivated, mistyped, or from another partition)",
                keys.source
            ),
            "check the key id in the IAM console (Users > Security credentials) and that it is \
             active; create a new key if it was deleted",
        ),
        Some("SignatureDoesNotMatch") if msg.contains("Signature expired") => Diagnosis::new(
            Kind::ClockSkew,
            format!("STS refused {call}: the request's date is too far from AWS's clock ({msg})"),
            "set this machine's clock right (enable NTP: `timedatectl set-ntp true`); AWS \
             accepts 15 minutes of skew at most",
        ),
        Some("SignatureDoesNotMatch") => {
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
        Some("AccessDenied") if call == "AssumeRole" => Diagnosis::new(
            Kind::AssumeRoleDenied,
            format!("STS refused AssumeRole: {msg}"),
            "the role's trust policy must name the caller, and the caller's IAM policy must \
             allow sts:AssumeRole on the role",
        ),
        Some("ValidationError") if msg.contains("role chaining") => Diagnosis::new(
            Kind::DurationTooLong,
            format!("STS refused AssumeRole: {msg}"),
            "the caller is itself an assumed role, so the session is capped at 1 hour: use \
             --duration 3600 or less",
        ),
        Some("ValidationError") if msg.contains("DurationSeconds") => Diagnosis::new(
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

// ---------------------------------------------------------------- calls

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
pub fn clock_offset(http_date: &str, local: SystemTime) -> Option<i64> {
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

#[derive(Clone, Debug)]
pub struct Assumed {
    pub creds: Credentials,
    pub arn: String,
    pub expiration: Option<SystemTime>,
}

/// AssumeRole with `sdk`'s credentials. A refusal is explained with what only a second look can
/// tell: who the caller is, whether the role exists, what its trust policy names.
pub async fn assume_role(
    sdk: &SdkConfig,
    base: &Resolved,
    role: &RoleRequest,
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
    let endpoint = sts_endpoint(&base.region);
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            let failure = StsFailure::from_sdk(&e);
            let mut d = classify(&failure, &keys, "AssumeRole", &endpoint);
            match d.kind {
                Kind::AssumeRoleDenied => {
                    explain_denial(
                        sdk,
                        role,
                        failure.message.as_deref().unwrap_or_default(),
                        &mut d,
                    )
                    .await
                }
                Kind::DurationTooLong => {
                    explain_duration(
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
async fn caller_arn(sdk: &SdkConfig, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("User: ") {
        if let Some(arn) = rest.split_whitespace().next() {
            return Some(arn.to_string());
        }
    }
    caller_identity(sdk).await.ok().map(|c| c.arn)
}

struct RoleFacts {
    trust_policy: Option<String>,
    max_session: Option<i32>,
}

enum RoleLookup {
    Found(RoleFacts),
    Missing,
    Unreadable(String),
}

async fn get_role(sdk: &SdkConfig, role: &RoleArn) -> RoleLookup {
    let result = aws_sdk_iam::Client::new(sdk)
        .get_role()
        .role_name(&role.name)
        .send()
        .await;
    match result {
        Ok(out) => match out.role() {
            Some(r) => RoleLookup::Found(RoleFacts {
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
                Some("NoSuchEntity") => RoleLookup::Missing,
                Some(c) => RoleLookup::Unreadable(c.to_string()),
                None => RoleLookup::Unreadable(error_text(&e)),
            }
        }
    }
}

async fn explain_denial(sdk: &SdkConfig, role: &RoleRequest, message: &str, d: &mut Diagnosis) {
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

async fn explain_duration(sdk: &SdkConfig, role: &RoleRequest, message: &str, d: &mut Diagnosis) {
    if message.contains("role chaining") {
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

// ---------------------------------------------------------------- trust policies

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

    fn keys(id: &str, token: bool) -> KeyFacts {
        KeyFacts {
            key_id: id.into(),
            has_token: token,
            source: "environment".into(),
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
            (refused("Throttling", "Rate exceeded"), keys(ID, false), Kind::StsError),
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
            Some("InvalidClientTokenId")
        );
        assert_eq!(
            xml_tag(body, "Message").as_deref(),
            Some("The security token included in the request is invalid.")
        );
        assert_eq!(xml_tag("<html/>", "Code"), None);
    }

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

    #[test]
    fn clock_offsets_from_http_dates() {
        let local = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_330_000);
        let sts = aws_smithy_types::DateTime::from_secs(1_795_331_200)
            .fmt(aws_smithy_types::date_time::Format::HttpDate)
            .expect("date");
        assert_eq!(clock_offset(&sts, local), Some(-1200));
        assert_eq!(clock_offset("not a date", local), None);
    }

    #[test]
    fn key_warnings_spot_mangled_secrets() {
        let c = Credentials::new(TMP, "abc def", None, None, "test");
        let w = key_warnings(&c);
        assert!(w.iter().any(|x| x.contains("no session token")), "{w:?}");
        assert!(w.iter().any(|x| x.contains("white space")), "{w:?}");
    }
}
