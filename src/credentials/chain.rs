//! The AWS default credential chain, provider by provider in the SDK's order, so that a failure
//! can say what each source was asked and what it answered.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_types::os_shim_internal::{Env as SdkEnv, Fs};

use super::{env_scrubber, error_text, rfc3339, sources, ProfileKind, Resolved, RoleVia, Source};
use crate::config::{Config, Env};
use crate::diagnosis::{texts, Diagnosis, Kind};
use crate::drivers;
use crate::files::{unsafe_to_read, MAX_FILE_BYTES};

/// The SDK's view of the environment: the one the config read.
fn sdk_env(env: &Env) -> SdkEnv {
    let vars: HashMap<String, String> = [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_PROFILE",
        "HOME",
        "USERPROFILE",
        "HOMEDRIVE",
        "HOMEPATH",
    ]
    .iter()
    .filter_map(|n| env.get(n).map(|v| (n.to_string(), v)))
    .collect();
    SdkEnv::from(vars)
}

/// The AWS config and credentials files, checked before the SDK reads them (it reads whatever
/// the path holds, to the end: `/dev/zero` would take all memory, a FIFO would hang).
fn check_config_files(env: &Env) -> Result<(), Diagnosis> {
    let home = env.get("HOME");
    let files = [
        (
            "AWS_CONFIG_FILE",
            env.get("AWS_CONFIG_FILE")
                .or_else(|| home.as_ref().map(|h| format!("{h}/.aws/config"))),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            env.get("AWS_SHARED_CREDENTIALS_FILE")
                .or_else(|| home.as_ref().map(|h| format!("{h}/.aws/credentials"))),
        ),
    ];
    for (var, path) in files {
        let Some(path) = path else { continue };
        if let Some(why) = unsafe_to_read(std::path::Path::new(&path), MAX_FILE_BYTES) {
            return Err(Diagnosis::new(
                Kind::ProfileError,
                format!("the AWS file {path} ({var}) was not read: {why}"),
                format!("point {var} at the real file, or remove what stands at {path}"),
            ));
        }
    }
    Ok(())
}

/// Files a profile names for the SDK to read: its web identity token, and the SSO token cache.
fn check_profile_files(
    name: &str,
    set: &aws_config::profile::ProfileSet,
    env: &Env,
) -> Result<(), Diagnosis> {
    let Some(profile) = set.get_profile(name) else {
        return Ok(());
    };
    let refuse = |what: String, why: String| {
        Diagnosis::new(
            Kind::ProfileError,
            format!("{what} was not read: {why}"),
            format!("fix profile {name}, or remove what stands at that path"),
        )
    };
    if let Some(file) = profile.get("web_identity_token_file") {
        if let Some(why) = unsafe_to_read(std::path::Path::new(file), MAX_FILE_BYTES) {
            return Err(refuse(
                format!("the web identity token file {file} of profile {name}"),
                why,
            ));
        }
    }
    let sso = profile.get("sso_session").is_some() || profile.get("sso_start_url").is_some();
    if let (true, Some(home)) = (sso, env.get("HOME")) {
        let dir = std::path::Path::new(&home).join(".aws/sso/cache");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Some(why) = unsafe_to_read(&entry.path(), MAX_FILE_BYTES) {
                return Err(refuse(
                    format!("the SSO token cache {}", entry.path().display()),
                    why,
                ));
            }
        }
    }
    Ok(())
}

async fn profile_set(env: &Env) -> Result<aws_config::profile::ProfileSet, Diagnosis> {
    check_config_files(env)?;
    #[allow(deprecated)] // the replacement lives in aws-runtime, not a direct dependency
    let files = aws_config::profile::profile_file::ProfileFiles::default();
    aws_config::profile::load(&Fs::real(), &sdk_env(env), &files, None)
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

fn config_files_shown(env: &Env) -> String {
    let config = env
        .get("AWS_CONFIG_FILE")
        .unwrap_or_else(|| "~/.aws/config".into());
    let creds = env
        .get("AWS_SHARED_CREDENTIALS_FILE")
        .unwrap_or_else(|| "~/.aws/credentials".into());
    format!("{config} and {creds}")
}

fn unknown_profile(name: &str, set: &aws_config::profile::ProfileSet, env: &Env) -> Diagnosis {
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
            config_files_shown(env)
        ),
        "check the name given by --profile or AWS_PROFILE, or create it with `aws configure \
         --profile NAME`",
    )
}

/// A profile as a source: how it gets its credentials, from its settings.
fn profile_source(name: &str, set: &aws_config::profile::ProfileSet) -> Source {
    let kind = match set.get_profile(name) {
        None => ProfileKind::Unknown,
        Some(p) => {
            if let Some(role) = p.get("role_arn") {
                let via = match (p.get("source_profile"), p.get("credential_source")) {
                    (Some(src), _) => RoleVia::SourceProfile(src.to_string()),
                    (None, Some(src)) => RoleVia::CredentialSource(src.to_string()),
                    (None, None) => RoleVia::WebIdentity,
                };
                ProfileKind::RoleArn {
                    role: role.to_string(),
                    via,
                }
            } else if p.get("credential_process").is_some() {
                ProfileKind::CredentialProcess
            } else if p.get("sso_session").is_some() || p.get("sso_start_url").is_some() {
                ProfileKind::Sso
            } else if p.get("aws_access_key_id").is_some() {
                ProfileKind::Keys
            } else {
                ProfileKind::SettingsOnly
            }
        }
    };
    Source::Profile {
        name: name.to_string(),
        kind,
    }
}

async fn resolve_region(cfg: &Config, profile: Option<&str>) -> Region {
    // the default region chain (environment, profile, instance metadata), built here so that
    // its instance-metadata call goes through the capped client, like every AWS call
    let mut pc = ProviderConfig::default();
    if let Some(client) = super::http::client() {
        pc = pc.with_http_client(client);
    }
    let mut profile_region = aws_config::profile::region::ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        profile_region = profile_region.profile_name(p);
    }
    RegionProviderChain::first_try(cfg.region.clone().map(Region::new))
        .or_else(aws_config::environment::region::EnvironmentVariableRegionProvider::new())
        .or_else(profile_region.build())
        .or_else(
            aws_config::imds::region::ImdsRegionProvider::builder()
                .configure(&pc)
                .build(),
        )
        .or_else(Region::new("us-east-1"))
        .region()
        .await
        .unwrap_or_else(|| Region::new("us-east-1"))
}

/// Role session names checked before any call, as STS would (its `ValidationError` names neither
/// the character nor the rule): AWS_ROLE_SESSION_NAME, which the web identity source sends (a
/// failure when that source is configured, a warning otherwise), and `role_session_name` of the
/// profile and of every profile its chain goes through.
fn session_names(
    profile: &str,
    set: &aws_config::profile::ProfileSet,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<(), Diagnosis> {
    if let Some(name) = env.get("AWS_ROLE_SESSION_NAME") {
        if let Err(why) = crate::identity::check_session_name(&name) {
            let cause = format!(
                "AWS_ROLE_SESSION_NAME `{}` is a name STS refuses: {why}",
                crate::secret::sanitize_terminal(&name)
            );
            if env.is_set("AWS_WEB_IDENTITY_TOKEN_FILE") {
                return Err(Diagnosis::new(
                    Kind::InvalidConfig,
                    cause,
                    "set AWS_ROLE_SESSION_NAME to letters, digits and _+=,.@- only (e.g. `dependabot[bot]` as `dependabot-bot`)",
                ));
            }
            warnings.push(format!(
                "{cause}; only the web identity source sends it, and none is configured here"
            ));
        }
    }
    for (current, p) in profile_chain(profile, set) {
        if let Some(name) = p.get("role_session_name") {
            if let Err(why) = crate::identity::check_session_name(name) {
                return Err(Diagnosis::new(
                    Kind::ProfileError,
                    format!(
                        "role_session_name `{}` of profile {current} is a name STS refuses: {why}",
                        crate::secret::sanitize_terminal(name)
                    ),
                    format!("fix role_session_name in profile {current}"),
                ));
            }
        }
    }
    Ok(())
}

/// A profile and those its `source_profile` links lead to, in order, as the SDK follows them:
/// it ends at a profile with no link, one that links to itself (its own keys), a name with no
/// profile, or a cycle (at most 16 steps).
fn profile_chain<'a>(
    name: &str,
    set: &'a aws_config::profile::ProfileSet,
) -> Vec<(String, &'a aws_config::profile::Profile)> {
    let mut out: Vec<(String, &aws_config::profile::Profile)> = Vec::new();
    let mut current = name.to_string();
    while out.len() < 16 {
        let Some(p) = set.get_profile(&current) else {
            break;
        };
        let next = p.get("source_profile").filter(|src| *src != current);
        out.push((current, p));
        match next {
            Some(src) => current = src.to_string(),
            None => break,
        }
    }
    out
}

/// Variables some tools still write under names the AWS SDKs (this one included) and most
/// drivers do not read: each set one, when the right name is not, gets a warning.
fn misnamed(env: &Env) -> Vec<String> {
    [
        (
            "AWS_SECURITY_TOKEN",
            "AWS_SESSION_TOKEN",
            "an old name for the session token",
        ),
        ("AWS_SECRET_TOKEN", "AWS_SESSION_TOKEN", "no SDK's name"),
        ("AWS_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "no SDK's name"),
        ("AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "no SDK's name"),
    ]
    .into_iter()
    .filter(|(wrong, right, _)| env.is_set(wrong) && !env.is_set(right))
    .map(|(wrong, right, what)| {
        format!(
            "{wrong} is set ({what}), and {right} is not: the AWS SDKs and most MongoDB drivers \
             read only {right}; rename it"
        )
    })
    .collect()
}

/// One role of a chain, with the settings of its profile.
struct Hop {
    role_arn: String,
    session_name: Option<String>,
    external_id: Option<String>,
    duration: Option<u64>,
}

/// A role chain (`role_arn` + `source_profile`, any depth) whose base is a credential_process:
/// its command and the roles to assume from the base up. None for any other chain (static keys,
/// `credential_source`, web identity, SSO: the SDK's provider reads those).
struct ProcessChain {
    command: String,
    hops: Vec<Hop>,
}

fn process_chain(name: &str, set: &aws_config::profile::ProfileSet) -> Option<ProcessChain> {
    let chain = profile_chain(name, set);
    let ((_, base), roles) = chain.split_last()?;
    // every profile above the base assumes a role from the next; the base runs the process
    if roles.is_empty()
        || base.get("role_arn").is_some()
        || roles
            .iter()
            .any(|(_, p)| p.get("role_arn").is_none() || p.get("source_profile").is_none())
    {
        return None;
    }
    let command = base.get("credential_process")?;
    let hops = roles
        .iter()
        .rev()
        .map(|(_, p)| Hop {
            role_arn: p.get("role_arn").unwrap_or_default().to_string(),
            session_name: p.get("role_session_name").map(str::to_string),
            external_id: p.get("external_id").map(str::to_string),
            duration: p
                .get("duration_seconds")
                .and_then(|d| d.trim().parse().ok()),
        })
        .collect();
    Some(ProcessChain {
        command: command.to_string(),
        hops,
    })
}

/// The chain's provider: atlas-iam's own credential_process at the base, each role assumed on
/// top of the one below with the SDK's AssumeRole provider (through the capped HTTP client).
async fn chained(
    chain: &ProcessChain,
    region: &Region,
    timeout: std::time::Duration,
) -> aws_credential_types::provider::SharedCredentialsProvider {
    use aws_credential_types::provider::SharedCredentialsProvider;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(region.clone())
        .no_credentials();
    if let Some(client) = super::http::client() {
        loader = loader.http_client(client);
    }
    let conf = loader.load().await;
    let mut provider = SharedCredentialsProvider::new(super::process::CredentialProcess::new(
        &chain.command,
        timeout,
    ));
    for hop in &chain.hops {
        let mut b = aws_config::sts::AssumeRoleProvider::builder(&hop.role_arn).configure(&conf);
        if let Some(n) = &hop.session_name {
            b = b.session_name(n);
        }
        if let Some(e) = &hop.external_id {
            b = b.external_id(e);
        }
        if let Some(d) = hop.duration {
            b = b.session_length(std::time::Duration::from_secs(d));
        }
        provider = SharedCredentialsProvider::new(b.build_from_provider(provider).await);
    }
    provider
}

/// Resolves credentials as the AWS default chain does, recording what each provider said.
/// A `--profile` flag (a profile that is not AWS_PROFILE's) selects that profile alone.
pub async fn resolve(cfg: &Config) -> Result<Resolved, Diagnosis> {
    let set = profile_set(&cfg.env).await?;
    let mfa = mfa_profile(&profile_name(cfg), &set);
    let proxy_hint = |d: Diagnosis| {
        let source = match d.kind {
            Kind::ImdsHopLimit | Kind::ImdsNoRole | Kind::NoCredentials => Some(Source::Imds),
            Kind::ContainerCredentialsError => Some(Source::Container),
            _ => None,
        };
        match source.and_then(|s| proxied_link_local(&cfg.env, &s)) {
            Some(w) => Diagnosis {
                hint: format!("{}; {w}", d.hint),
                ..d
            },
            None => d,
        }
    };
    let mut resolved =
        resolve_chain(cfg, set)
            .await
            .map_err(proxy_hint)
            .map_err(|d| match &mfa {
                // the role of an MFA profile was refused: the missing code is the likely cause
                Some((profile, serial))
                    if d.cause.starts_with("profile ")
                // STS answered with a refusal (not: STS was not reached)
                && (d.cause.contains("service error")
                    || d.cause.contains("AccessDenied")
                    || d.cause.contains("not authorized")) =>
                {
                    Diagnosis {
                        cause: format!(
                "{}; profile {profile} has mfa_serial {serial}, and the AWS SDK (this one and the \
                 drivers') sends AssumeRole without the code, which a trust policy that requires \
                 MFA refuses",
                d.cause
            ),
                        hint: MFA_WAYS.to_string(),
                        ..d
                    }
                }
                _ => d,
            })?;
    if let Some(w) = proxied_link_local(&cfg.env, &resolved.source) {
        resolved.warnings.push(w);
    }
    resolved.warnings.extend(govcloud_sts(
        &cfg.env,
        resolved.region.as_ref(),
        &resolved.source,
        cfg.role.is_some(),
    ));
    let from_profile = matches!(resolved.source, Source::Profile { .. });
    if let (Some((profile, serial)), true) = (mfa, from_profile) {
        resolved.warnings.push(format!(
            "profile {profile} has mfa_serial {serial}: the AWS SDKs and the MongoDB drivers \
             cannot ask for the code, so an application using this profile assumes the role \
             without MFA; {MFA_WAYS}"
        ));
    }
    Ok(resolved)
}

/// The drivers' name for a source of atlas-iam's chain (None: a profile without credentials).
fn driver_kind(source: &Source, env: &Env) -> Option<drivers::Source> {
    use drivers::Source as D;
    Some(match source {
        Source::Environment => D::Environment,
        Source::Profile { kind, .. } => match kind {
            ProfileKind::Sso => D::Sso,
            ProfileKind::CredentialProcess => D::Process,
            ProfileKind::SettingsOnly | ProfileKind::Unknown => return None,
            ProfileKind::RoleArn { .. } | ProfileKind::Keys => D::Profile,
        },
        Source::WebIdentity => D::WebIdentity,
        Source::Container if env.is_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") => {
            D::ContainerRelative
        }
        Source::Container => D::ContainerFull,
        Source::Imds => D::Imds,
        Source::AssumedRole { from, .. } => return driver_kind(from, env),
    })
}

/// The sources present here, in the AWS SDK's order (instance metadata is known only once it
/// has answered).
fn present_sources(env: &Env, profile: &Source) -> Vec<drivers::Source> {
    use drivers::Source as D;
    let mut out = Vec::new();
    if env.is_set("AWS_ACCESS_KEY_ID") && env.is_set("AWS_SECRET_ACCESS_KEY") {
        out.push(D::Environment);
    }
    out.extend(driver_kind(profile, env));
    if env.is_set("AWS_WEB_IDENTITY_TOKEN_FILE") && env.is_set("AWS_ROLE_ARN") {
        out.push(D::WebIdentity);
    }
    if env.is_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        out.push(D::ContainerRelative);
    } else if env.is_set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        out.push(D::ContainerFull);
    }
    out
}

/// GovCloud has no global STS endpoint: a call sent to `sts.amazonaws.com` with GovCloud
/// credentials fails. atlas-iam's SDK calls the regional endpoint; an STS endpoint setting that
/// names the global one, and drivers that make their own web identity call there (Go, libmongoc
/// before its 2026-07 fix), do not.
fn govcloud_sts(env: &Env, region: &str, source: &Source, assumes_role: bool) -> Option<String> {
    if !region.starts_with("us-gov-") {
        return None;
    }
    let regional = format!("https://sts.{region}.amazonaws.com");
    let pinned = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find(|name| {
            env.get(name).is_some_and(|url| {
                let host = url
                    .trim()
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split(['/', ':'])
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                host == "sts.amazonaws.com"
            })
        });
    if let Some(name) = pinned {
        return Some(format!(
            "{name} names the global STS endpoint sts.amazonaws.com, which GovCloud does not \
             have: calls with {region} credentials fail there; use the regional endpoint \
             {regional}"
        ));
    }
    let web_identity = match source {
        Source::WebIdentity => true,
        Source::AssumedRole { from, .. } => **from == Source::WebIdentity,
        _ => false,
    };
    if web_identity {
        return Some(format!(
            "web identity in GovCloud ({region}): the Go driver and libmongoc (C, PHP) before \
             its 2026-07 fix make their own AssumeRoleWithWebIdentity call to the global \
             sts.amazonaws.com, which GovCloud does not have, and fail; the regional endpoint \
             is {regional}: with libmongoc set AWS_STS_REGIONAL_ENDPOINTS=regional, with Go \
             give the client credentials from the AWS SDK (a custom credential provider); \
             atlas-iam and the SDK-based drivers call the regional endpoint already"
        ));
    }
    assumes_role.then(|| {
        format!(
            "GovCloud ({region}) has no global STS endpoint: an application that assumes the \
             role itself must send AssumeRole to {regional} (an SDK pinned to sts.amazonaws.com \
             fails there)"
        )
    })
}

/// The link-local endpoints of instance metadata and of the container credentials (ECS, and
/// EKS Pod Identity).
const LINK_LOCAL: [&str; 3] = ["169.254.169.254", "169.254.170.2", "169.254.170.23"];

/// Instance metadata and container credentials are plain HTTP to a link-local address: with
/// HTTP_PROXY or ALL_PROXY set and NO_PROXY not listing the address, the SDKs (atlas-iam's
/// client reads the same variables) and drivers send them through the proxy, which answers 403
/// or never. Says which proxy, and the NO_PROXY fix.
fn proxied_link_local(env: &Env, source: &Source) -> Option<String> {
    let address = match source {
        Source::Imds => LINK_LOCAL[0],
        Source::Container => {
            let full = env
                .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .unwrap_or_default();
            // the longer address first: 169.254.170.2 is a prefix of 169.254.170.23
            [LINK_LOCAL[2], LINK_LOCAL[1]]
                .into_iter()
                .find(|a| full.contains(a))
                .unwrap_or(LINK_LOCAL[1])
        }
        _ => return None,
    };
    let (name, proxy) = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|n| env.get(n).map(|v| (*n, v)))?;
    let no_proxy = env
        .get("NO_PROXY")
        .or_else(|| env.get("no_proxy"))
        .unwrap_or_default();
    let exempt = no_proxy.split(',').map(str::trim).any(|e| {
        e == "*"
            || e == address
            || e == "169.254.0.0/16"
            || (e.starts_with("169.254.") && e.ends_with('.') && address.starts_with(e))
    });
    if exempt {
        return None;
    }
    Some(format!(
        "{name} is set ({}) and NO_PROXY does not list {address}: the {source} calls go through \
         that proxy, which answers them with a 403 or not at all; add \
         NO_PROXY={},{}",
        crate::secret::redact_url_userinfo(&proxy),
        LINK_LOCAL.join(","),
        if no_proxy.is_empty() {
            "localhost".to_string()
        } else {
            no_proxy.clone()
        }
    ))
}

/// How a role that needs MFA is used from a program that cannot prompt.
const MFA_WAYS: &str =
    "give atlas-iam --role-arn ROLE --mfa-serial ARN --mfa-token CODE, or run it \
    under `aws-vault exec PROFILE --`, or use an `aws sso login` profile";

/// The profile in use (or one its chain goes through) with `mfa_serial`, and the serial.
fn mfa_profile(name: &str, set: &aws_config::profile::ProfileSet) -> Option<(String, String)> {
    profile_chain(name, set)
        .into_iter()
        .find_map(|(current, p)| {
            p.get("role_arn")
                .and(p.get("mfa_serial"))
                .map(|serial| (current.clone(), serial.to_string()))
        })
}

/// The profile the chain reads: --profile, else AWS_PROFILE, else `default`.
fn profile_name(cfg: &Config) -> String {
    cfg.profile
        .clone()
        .or_else(|| cfg.env.get("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_string())
}

async fn resolve_chain(
    cfg: &Config,
    set: aws_config::profile::ProfileSet,
) -> Result<Resolved, Diagnosis> {
    let env = &cfg.env;
    let explicit = cfg.profile.is_some() && cfg.profile != env.get("AWS_PROFILE");
    let profile_name = profile_name(cfg);
    let named = cfg.profile.is_some();
    if explicit && set.get_profile(&profile_name).is_none() {
        return Err(unknown_profile(&profile_name, &set, env));
    }
    check_profile_files(&profile_name, &set, env)?;

    let region = resolve_region(cfg, named.then_some(profile_name.as_str())).await;
    let mut pc = ProviderConfig::default().with_region(Some(region.clone()));
    if let Some(client) = super::http::client() {
        pc = pc.with_http_client(client);
    }
    let mut warnings = Vec::new();
    let mut tried = Vec::new();
    // with --driver: the sources that driver does not read, and why
    let mut skipped: Vec<(Source, String)> = Vec::new();
    let present = present_sources(env, &profile_source(&profile_name, &set));
    session_names(&profile_name, &set, env, &mut warnings)?;
    warnings.extend(misnamed(env));

    // `explain_as`: the source whose failures these are (a role profile's credential_source).
    macro_rules! attempt {
        ($source:expr, $provider:expr) => {{
            let source: Source = $source;
            attempt!(source.clone(), $provider, &source)
        }};
        ($source:expr, $provider:expr, $explain_as:expr) => {{
            let source: Source = $source;
            let explain_as: &Source = $explain_as;
            let skip = cfg.driver.as_ref().and_then(|d| {
                let kind = driver_kind(&source, env)?;
                d.reads(kind).err()
            });
            if let Some(why) = skip {
                skipped.push((source.clone(), why));
                None
            } else {
                sources::precheck(&source, env)?;
                match $provider.provide_credentials().await {
                    Ok(creds) => Some((creds, source)),
                    Err(e @ CredentialsError::CredentialsNotLoaded(_)) => {
                        let why = error_text(&e)
                            .trim_start_matches(texts::SDK_PROVIDER_NOT_ENABLED)
                            .trim_start_matches(": ")
                            .to_string();
                        if source == Source::Imds {
                            if let Some(d) = sources::explain(&source, env, &why).await {
                                return Err(d);
                            }
                        }
                        let why = if why.is_empty() {
                            "nothing configured".to_string()
                        } else {
                            why
                        };
                        tried.push(format!("{source} ({why})"));
                        None
                    }
                    Err(e) => {
                        let text = excerpt(&env_scrubber(env).scrub(&error_text(&e)));
                        if let Some(d) = sources::explain(explain_as, env, &text).await {
                            return Err(d);
                        }
                        let kind = if matches!(e, CredentialsError::ProviderTimedOut(_)) {
                            Kind::CredentialsTimeout
                        } else {
                            Kind::CredentialsError
                        };
                        return Err(Diagnosis::new(
                            kind,
                            format!(
                                "{source} failed: {}",
                                excerpt(&env_scrubber(env).scrub(&error_text(&e)))
                            ),
                            source.failure_hint(),
                        ));
                    }
                }
            }
        }};
    }

    // A profile that is a credential_process is run by atlas-iam (bounded output, its process
    // group ended), also at the base of a role chain (the roles then assumed on top of it as the
    // SDK does); any other profile by the SDK.
    let own_process = set
        .get_profile(&profile_name)
        .filter(|p| p.get("role_arn").is_none())
        .and_then(|p| p.get("credential_process"))
        .map(str::to_string);
    let own_chain = match process_chain(&profile_name, &set) {
        Some(chain) => Some(chained(&chain, &region, cfg.timeout).await),
        None => None,
    };
    let profile_provider = || match (&own_process, &own_chain) {
        (Some(command), _) => aws_credential_types::provider::SharedCredentialsProvider::new(
            super::process::CredentialProcess::new(command, cfg.timeout),
        ),
        (None, Some(chain)) => chain.clone(),
        (None, None) => aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&pc)
                .profile_name(&profile_name)
                .build(),
        ),
    };

    // A role profile may start from a `credential_source`, checked only when the profile is
    // asked (keys in the environment win over a broken profile, as in the application).
    let role_base = || sources::credential_source(&profile_name, &set, env);

    let found = if explicit {
        let base = role_base()?;
        if env.is_set("AWS_ACCESS_KEY_ID") && base != Some(Source::Environment) {
            warnings.push(format!(
                "AWS_ACCESS_KEY_ID is set too: an application using the default chain would use \
                 those keys, not profile {profile_name}"
            ));
        }
        let source = profile_source(&profile_name, &set);
        attempt!(
            source.clone(),
            profile_provider(),
            base.as_ref().unwrap_or(&source)
        )
    } else {
        let mut found = attempt!(
            Source::Environment,
            aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new()
        );
        if found.is_none() {
            if named && set.get_profile(&profile_name).is_none() {
                return Err(unknown_profile(&profile_name, &set, env));
            }
            let base = role_base()?;
            let source = profile_source(&profile_name, &set);
            found = attempt!(
                source.clone(),
                profile_provider(),
                base.as_ref().unwrap_or(&source)
            );
        }
        if found.is_none() {
            let p = aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(&pc)
                .build();
            found = attempt!(Source::WebIdentity, p);
        }
        if found.is_none() {
            let p = aws_config::ecs::EcsCredentialsProvider::builder()
                .configure(&pc)
                .build();
            found = attempt!(Source::Container, p);
        }
        if found.is_none() {
            let p = aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                .configure(&pc)
                .build();
            found = attempt!(Source::Imds, p);
        }
        found
    };

    if let (Some(driver), None) = (&cfg.driver, &found) {
        if let Some((first, why)) = skipped.first() {
            let scrub = env_scrubber(env);
            let others: Vec<String> = tried.iter().map(|t| scrub.scrub(t)).collect();
            let fix = match driver.addon() {
                Some(addon) => format!("; or {addon}"),
                None => String::new(),
            };
            return Err(Diagnosis::new(
                Kind::NoCredentials,
                format!(
                    "{} would find no AWS credentials here: {first} would have answered the AWS \
                     SDK's chain, but {why}{}",
                    driver.label(),
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!("; its own sources had nothing: {}", others.join("; "))
                    }
                ),
                format!(
                    "give the application credentials its driver reads: AWS_ACCESS_KEY_ID, \
                     AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in its environment, or a \
                     custom AWS credential provider in the driver's options that calls the AWS \
                     SDK{fix}"
                ),
            ));
        }
    }
    let Some((mut creds, source)) = found else {
        let scrub = env_scrubber(env);
        let tried: Vec<String> = tried.iter().map(|t| scrub.scrub(t)).collect();
        return Err(Diagnosis::new(
            Kind::NoCredentials,
            format!("no AWS credentials found; tried: {}", tried.join("; ")),
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary \
             keys), or choose a profile with --profile or AWS_PROFILE, or run where a role \
             provides them (Lambda, ECS, EC2)",
        ));
    };

    check_characters(&creds, &source)?;
    if source == Source::Environment {
        warnings.extend(sources::shadowed(&source, env));
        // The SDK's environment provider does not read AWS_CREDENTIAL_EXPIRATION: atlas-iam does.
        if let Some(at) = env.get("AWS_CREDENTIAL_EXPIRATION") {
            let parsed = aws_smithy_types::DateTime::from_str(
                at.trim(),
                aws_smithy_types::date_time::Format::DateTime,
            )
            .ok()
            .and_then(|t| SystemTime::try_from(t).ok());
            match parsed {
                Some(expiry) => {
                    creds = Credentials::new(
                        creds.access_key_id(),
                        creds.secret_access_key(),
                        creds.session_token().map(str::to_string),
                        Some(expiry),
                        "Environment",
                    )
                }
                None => warnings
                    .push("AWS_CREDENTIAL_EXPIRATION is not an RFC 3339 time: ignored".to_string()),
            }
        }
    }
    if let Some(expiry) = creds.expiry() {
        if expiry <= SystemTime::now() {
            return Err(Diagnosis::new(
                Kind::CredentialsExpired,
                format!(
                    "the credentials from {source} expired at {}",
                    rfc3339(expiry)
                ),
                source.refresh_hint(),
            ));
        }
    }
    warnings.extend(key_warnings(&creds));
    let mut present = present;
    if source == Source::Imds {
        present.push(drivers::Source::Imds);
    }
    match &cfg.driver {
        Some(driver) => {
            for (s, why) in &skipped {
                warnings.push(format!("skipped {s}: {why}"));
            }
            if skipped.is_empty() && driver.name == drivers::Name::Python {
                // boto3 reads a role profile and web identity before keys in the shared files
                if present.contains(&drivers::Source::Profile)
                    && present.contains(&drivers::Source::WebIdentity)
                {
                    warnings.push(
                        "pymongo (boto3) reads web identity before the keys of a shared \
                         credentials file, where the AWS SDK for Rust reads the profile first"
                            .to_string(),
                    );
                }
            }
        }
        None => {
            if let Some(used) = driver_kind(&source, env) {
                warnings.extend(drivers::disagreement(&present, used));
            }
        }
    }

    Ok(Resolved {
        creds,
        source,
        region,
        profile: named.then_some(profile_name),
        warnings,
        present: present.iter().map(|s| s.to_string()).collect(),
    })
}

/// What a failing source said (a credential_process's stderr among it), made safe to show:
/// anything that looks like a key or a token hidden, and at most 400 characters.
fn excerpt(text: &str) -> String {
    let safe = crate::secret::redact_tokens(text);
    match safe.char_indices().nth(400) {
        Some((at, _)) => format!("{}… (cut)", &safe[..at]),
        None => safe,
    }
}

/// Signs of a key pair that STS will refuse, visible before any call.
pub(crate) fn key_warnings(creds: &Credentials) -> Vec<String> {
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

/// A character no key, secret or token can hold: STS issues printable ASCII only, and the SDK
/// cannot put anything else in a request header (a key id with a CR panics inside its signer).
/// A CRLF-mangled key from a Windows editor is exactly what needs naming.
pub(super) fn check_characters(creds: &Credentials, source: &Source) -> Result<(), Diagnosis> {
    let parts = [
        ("access key id", Some(creds.access_key_id())),
        ("secret access key", Some(creds.secret_access_key())),
        ("session token", creds.session_token()),
    ];
    for (what, value) in parts {
        let Some(value) = value else { continue };
        let len = value.chars().count();
        if let Some((at, c)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_graphic()))
        {
            let name = match c {
                '\r' => "a carriage return (CR)".to_string(),
                '\n' => "a line feed (LF)".to_string(),
                '\t' => "a tab".to_string(),
                ' ' => "a space".to_string(),
                '\u{7f}' => "a DEL character".to_string(),
                '\0' => "a NUL byte".to_string(),
                c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
                c => format!("a non-ASCII character (U+{:04X})", c as u32),
            };
            return Err(Diagnosis::new(
                Kind::CredentialsError,
                format!(
                    "the {what} from {source} has {name} at position {} of {len}: AWS keys are \
                     printable ASCII, so this one was mangled on its way (value not shown)",
                    at + 1
                ),
                if matches!(c, '\r' | '\n') {
                    "the line ending was copied with it (a file saved with Windows line endings, \
                     or a pasted newline): set it again without it (`tr -d '\\r'`)"
                } else {
                    "set it again from the original, typed or copied without the extra character"
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_calls_through_a_proxy_are_named() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        let w = proxied_link_local(
            &env(&[("HTTP_PROXY", "http://user:pw@proxy.corp:3128")]),
            &Source::Imds,
        )
        .expect("proxied");
        assert!(
            w.contains("HTTP_PROXY") && w.contains("169.254.169.254"),
            "{w}"
        );
        assert!(!w.contains("pw@"), "{w}");
        assert!(
            w.contains("NO_PROXY=169.254.169.254,169.254.170.2,169.254.170.23,localhost"),
            "{w}"
        );
        for no_proxy in [
            "169.254.169.254",
            "*",
            "localhost,169.254.0.0/16",
            "169.254.",
        ] {
            assert_eq!(
                proxied_link_local(
                    &env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", no_proxy)]),
                    &Source::Imds
                ),
                None,
                "{no_proxy}"
            );
        }
        // EKS Pod Identity's address, from the full URI
        let w = proxied_link_local(
            &env(&[
                ("http_proxy", "http://p:1"),
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://169.254.170.23/v1/credentials",
                ),
            ]),
            &Source::Container,
        )
        .expect("proxied");
        assert!(w.contains("does not list 169.254.170.23"), "{w}");
        assert_eq!(proxied_link_local(&env(&[]), &Source::Imds), None);
        assert_eq!(
            proxied_link_local(&env(&[("HTTP_PROXY", "http://p:1")]), &Source::Environment),
            None
        );
    }

    #[test]
    fn key_warnings_spot_mangled_secrets() {
        let c = Credentials::new("ASIAIOSFODNN7EXAMPLE", "abc def", None, None, "test");
        let w = key_warnings(&c);
        assert!(w.iter().any(|x| x.contains("no session token")), "{w:?}");
        assert!(w.iter().any(|x| x.contains("white space")), "{w:?}");
    }

    #[test]
    fn govcloud_has_no_global_sts_endpoint() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        let none = env(&[]);
        let w = govcloud_sts(&none, "us-gov-west-1", &Source::WebIdentity, false)
            .expect("web identity warning");
        assert!(w.contains("https://sts.us-gov-west-1.amazonaws.com"), "{w}");
        assert!(w.contains("AWS_STS_REGIONAL_ENDPOINTS=regional"), "{w}");
        let pinned = env(&[("AWS_ENDPOINT_URL_STS", "https://sts.amazonaws.com/")]);
        let w = govcloud_sts(&pinned, "us-gov-east-1", &Source::Environment, false)
            .expect("pinned warning");
        assert!(
            w.starts_with("AWS_ENDPOINT_URL_STS names the global"),
            "{w}"
        );
        assert!(w.contains("https://sts.us-gov-east-1.amazonaws.com"), "{w}");
        let w = govcloud_sts(&none, "us-gov-west-1", &Source::Environment, true).expect("role");
        assert!(w.contains("AssumeRole to https://sts.us-gov-west-1"), "{w}");
        assert_eq!(
            govcloud_sts(&none, "us-gov-west-1", &Source::Environment, false),
            None
        );
        assert_eq!(
            govcloud_sts(&pinned, "us-east-1", &Source::WebIdentity, true),
            None
        );
    }
}
