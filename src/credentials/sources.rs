//! What the SDK's providers do not say about where applications run: checks made before a
//! source is asked (a web identity token file that is missing or expired, a container token file
//! that cannot be read), explanations after it failed (the IMDSv2 hop limit, an instance without
//! a role, a container endpoint that refuses), and which configured sources a winner shadowed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ProfileKind, Source};
use crate::config::Env;
use crate::diagnosis::{Diagnosis, Kind};
use crate::files::{read_regular_text, MAX_FILE_BYTES};

/// Before the provider of `source` is asked: what can be told from here.
pub(super) fn precheck(source: &Source, env: &Env) -> Result<(), Diagnosis> {
    match source {
        Source::WebIdentity => web_identity(env),
        Source::Container => container_token_file(env),
        _ => Ok(()),
    }
}

fn web_identity(env: &Env) -> Result<(), Diagnosis> {
    let Some(file) = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") else {
        return Ok(());
    };
    if env.get("AWS_ROLE_ARN").is_none() {
        return Err(Diagnosis::new(
            Kind::WebIdentityError,
            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: web identity needs both",
            "on EKS, annotate the service account with eks.amazonaws.com/role-arn (IRSA sets \
             both); elsewhere set AWS_ROLE_ARN to the role the token may assume",
        ));
    }
    let path = std::path::Path::new(&file);
    let fail = |cause: String, hint: &str| Diagnosis::new(Kind::WebIdentityError, cause, hint);
    const MOUNTED: &str = "on EKS the token is mounted by the pod identity webhook: check the pod's \
        service account and that the volume is mounted; elsewhere check AWS_WEB_IDENTITY_TOKEN_FILE";
    if matches!(std::fs::metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
        return Err(fail(
            format!("the web identity token file {file} does not exist"),
            MOUNTED,
        ));
    }
    if let Err(e) = std::fs::File::open(path) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Err(fail(
                format!(
                    "the web identity token file {file} is not readable by this process{}",
                    who_may_read(path)
                ),
                "a pod running as a non-root user needs the token readable by it: set \
                 securityContext.fsGroup (the webhook then mounts the token for that group), or \
                 run as the file's owner",
            ));
        }
    }
    let token = read_regular_text(path, MAX_FILE_BYTES).map_err(|why| {
        fail(
            format!("the web identity token file {file} cannot be read: {why}"),
            MOUNTED,
        )
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(fail(
            format!("the web identity token file {file} is empty"),
            "the file is there but holds no token: the volume may be mounted before the token \
             was written, or the file was truncated; point AWS_WEB_IDENTITY_TOKEN_FILE at the \
             projected token",
        ));
    }
    if !is_jwt(token) {
        return Err(fail(
            format!(
                "the web identity token file {file} does not hold a JWT ({} characters; a JWT is \
                 three base64url parts separated by dots, the second a JSON object)",
                token.chars().count()
            ),
            "point AWS_WEB_IDENTITY_TOKEN_FILE at the token itself (on EKS: \
             /var/run/secrets/eks.amazonaws.com/serviceaccount/token), not at a certificate, a \
             key or a directory listing",
        ));
    }
    if let Some(exp) = jwt_expiry(token) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        if exp <= now {
            return Err(Diagnosis::new(
                Kind::WebIdentityError,
                format!(
                    "the web identity token in {file} expired {} minutes ago (its exp claim)",
                    (now - exp) / 60
                ),
                "the token is refreshed by whoever mounts it (kubelet on EKS): a stale copy or a \
                 token file copied out of a pod does not refresh; point \
                 AWS_WEB_IDENTITY_TOKEN_FILE at the projected token",
            ));
        }
    }
    Ok(())
}

/// Who may read a file, beside who this process is: `(uid 1000; the file is mode 0600, owned by
/// uid 0 gid 0)`. Read without unsafe code: the process's uid from /proc, the file's from its
/// metadata.
fn who_may_read(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        })
        .map(|u| format!("uid {u}"))
        .unwrap_or_else(|| "this uid".to_string());
    match std::fs::metadata(path) {
        Ok(m) => format!(
            " ({uid}; the file is mode {:04o}, owned by uid {} gid {})",
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ),
        Err(_) => format!(" ({uid})"),
    }
}

/// Whether a token is shaped as a JWT: three base64url parts, the second a JSON object.
fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return false;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.is_object())
}

/// The `exp` claim of a JWT (seconds since the epoch), when the token is one.
pub(super) fn jwt_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

fn container_token_file(env: &Env) -> Result<(), Diagnosis> {
    let Some(file) = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") else {
        return Ok(());
    };
    read_regular_text(std::path::Path::new(&file), MAX_FILE_BYTES)
        .map(|_| ())
        .map_err(|why| {
            Diagnosis::new(
                Kind::ContainerCredentialsError,
                format!("the container authorization token file {file} cannot be read: {why}"),
                "EKS Pod Identity mounts it: check that the pod identity association exists \
                 for this service account and that the agent is running",
            )
        })
}

/// The sources a profile's `credential_source` may name (the SDK compares them ignoring case).
const CREDENTIAL_SOURCES: [&str; 3] = ["Environment", "Ec2InstanceMetadata", "EcsContainer"];

/// A profile whose role (perhaps through `source_profile` links) starts from a
/// `credential_source`, checked before the SDK is asked: both keys in one profile, a misspelt
/// source, or a source with nothing configured. Returns the source the chain starts from, so that
/// its failure can be explained as that source's.
pub(super) fn credential_source(
    name: &str,
    set: &aws_config::profile::ProfileSet,
    env: &Env,
) -> Result<Option<Source>, Diagnosis> {
    let mut current = name.to_string();
    let mut visited = Vec::new();
    let fail = |profile: &str, cause: String, fix: &str| {
        Diagnosis::new(
            Kind::CredentialSourceError,
            format!("profile {profile}: {cause}"),
            fix.to_string(),
        )
    };
    loop {
        let Some(p) = set.get_profile(&current) else {
            return Ok(None);
        };
        if p.get("role_arn").is_none() || visited.contains(&current) {
            return Ok(None);
        }
        visited.push(current.clone());
        match (p.get("source_profile"), p.get("credential_source")) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    &current,
                    "sets both source_profile and credential_source; a role profile takes its \
                     starting credentials from one of them"
                        .to_string(),
                    "keep source_profile to start from another profile's keys, or \
                     credential_source to start from the environment, the container endpoint or \
                     instance metadata; remove the other",
                ))
            }
            (Some(next), None) if next != current => current = next.to_string(),
            (None, Some(src)) => return named_source(&current, src, env).map(Some),
            _ => return Ok(None),
        }
    }
}

fn named_source(profile: &str, src: &str, env: &Env) -> Result<Source, Diagnosis> {
    let fail = |cause: String, fix: &str| {
        Diagnosis::new(
            Kind::CredentialSourceError,
            format!("profile {profile}: {cause}"),
            fix.to_string(),
        )
    };
    let Some(known) = CREDENTIAL_SOURCES
        .iter()
        .find(|k| k.eq_ignore_ascii_case(src.trim()))
    else {
        return Err(fail(
            format!(
                "credential_source = {} is not a source the AWS SDKs know",
                crate::secret::sanitize_terminal(src)
            ),
            "use one of Environment, Ec2InstanceMetadata (an EC2 instance's role) or \
             EcsContainer (an ECS task role or EKS Pod Identity)",
        ));
    };
    match *known {
        "Environment" => {
            if !(env.is_set("AWS_ACCESS_KEY_ID") && env.is_set("AWS_SECRET_ACCESS_KEY")) {
                return Err(fail(
                    "credential_source = Environment, but AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY are not both set: there are no keys to assume the \
                     role with"
                        .to_string(),
                    "export the keys the role should be assumed with (and AWS_SESSION_TOKEN for \
                     temporary ones), or use source_profile to name a profile that has them",
                ));
            }
            Ok(Source::Environment)
        }
        "EcsContainer" => {
            if !env.is_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                && !env.is_set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            {
                return Err(fail(
                    "credential_source = EcsContainer, but neither \
                     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI \
                     is set: this is not running in an ECS task or a pod with Pod Identity"
                        .to_string(),
                    "run it where the container endpoint is configured (ECS sets the relative \
                     URI for tasks with a task role; EKS Pod Identity sets the full URI), or use \
                     another credential_source",
                ));
            }
            container_token_file(env)?;
            Ok(Source::Container)
        }
        _ => {
            if env
                .get("AWS_EC2_METADATA_DISABLED")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            {
                return Err(fail(
                    "credential_source = Ec2InstanceMetadata, but AWS_EC2_METADATA_DISABLED=true \
                     turns instance metadata off"
                        .to_string(),
                    "unset AWS_EC2_METADATA_DISABLED on an EC2 instance, or use another \
                     credential_source",
                ));
            }
            Ok(Source::Imds)
        }
    }
}

/// After `source` failed (or gave nothing) with `text`: a precise diagnosis, when one can be
/// made.
pub(super) async fn explain(source: &Source, env: &Env, text: &str) -> Option<Diagnosis> {
    let lower = text.to_ascii_lowercase();
    match source {
        Source::Imds if lower.contains("timeout") || lower.contains("timed out") => {
            let endpoint = env
                .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .unwrap_or_else(|| "http://169.254.169.254".to_string());
            let answers = metadata_answers(&endpoint).await?;
            Some(Diagnosis::new(
                Kind::ImdsHopLimit,
                format!(
                    "instance metadata at {endpoint} answers GET /latest/meta-data/ (HTTP \
                     {answers}) but never answered the IMDSv2 token request PUT /latest/api/token: \
                     the instance's HttpPutResponseHopLimit is 1, and the answer dies one hop \
                     short of a container"
                ),
                "raise the hop limit to 2: `aws ec2 modify-instance-metadata-options \
                 --instance-id ID --http-put-response-hop-limit 2 --http-endpoint enabled` (or \
                 in the launch template); better, give the container its own role (ECS task \
                 role, EKS IRSA or Pod Identity)",
            ))
        }
        Source::Imds if lower.contains("404") || lower.contains("not found") => {
            Some(Diagnosis::new(
                Kind::ImdsNoRole,
                "instance metadata answers, but this instance has no IAM role (no instance \
                 profile is attached)",
                "attach one: `aws ec2 associate-iam-instance-profile --instance-id ID \
                 --iam-instance-profile Name=PROFILE`, or give credentials another way",
            ))
        }
        Source::Container if lower.contains("403") || lower.contains("401") => {
            let uri = env
                .get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                .or_else(|| {
                    env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                        .map(|r| format!("http://169.254.170.2{r}"))
                })
                .unwrap_or_default();
            Some(Diagnosis::new(
                Kind::ContainerCredentialsError,
                format!("the container credentials endpoint {uri} refused: {text}"),
                "EKS Pod Identity: check AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and the pod \
                 identity association; ECS: check the task role, and that nothing rewrote \
                 AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            ))
        }
        Source::Profile {
            name,
            kind: ProfileKind::Sso,
        } => Some(Diagnosis::new(
            Kind::SsoLoginNeeded,
            format!(
                "profile {name} signs in with IAM Identity Center (SSO), and there is no valid \
                 login: the cached token is missing or expired ({text})"
            ),
            format!("run `aws sso login --profile {name}`, then try again"),
        )),
        Source::WebIdentity => Some(Diagnosis::new(
            Kind::WebIdentityError,
            format!("STS refused AssumeRoleWithWebIdentity: {text}"),
            "the role's trust policy must trust the cluster's OIDC provider \
             (Federated: arn:aws:iam::ACCT:oidc-provider/…) with sts:AssumeRoleWithWebIdentity, \
             and its sub condition must name this service account",
        )),
        _ => None,
    }
}

/// The HTTP status of `GET /latest/meta-data/` within a second, if anything answers.
async fn metadata_answers(endpoint: &str) -> Option<u16> {
    let authority = endpoint
        .trim_start_matches("http://")
        .split('/')
        .next()?
        .to_string();
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(authority.as_str())
            .await
            .ok()?;
        let request = format!(
            "GET /latest/meta-data/ HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head).await.ok()?;
        let line = String::from_utf8_lossy(&head[..n]).to_string();
        line.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
}

/// The sources configured in the environment that `won` hid: a leftover key hiding a pod's
/// web identity is the classic.
pub(super) fn shadowed(won: &Source, env: &Env) -> Vec<String> {
    if *won != Source::Environment {
        return Vec::new();
    }
    let mut hidden = Vec::new();
    if env.is_set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        hidden.push("web identity (AWS_WEB_IDENTITY_TOKEN_FILE: EKS IRSA)");
    }
    if env.is_set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || env.is_set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    {
        hidden.push("the container endpoint (AWS_CONTAINER_CREDENTIALS_*: ECS, Pod Identity)");
    }
    if env.is_set("AWS_PROFILE") {
        hidden.push("the profile named by AWS_PROFILE");
    }
    hidden
        .into_iter()
        .map(|h| {
            format!(
                "AWS_ACCESS_KEY_ID in the environment won, and shadowed {h}: an application \
                 using the default chain uses these keys, not that role; unset them if they \
                 are a leftover"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: i64) -> String {
        let e = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            e(r#"{"alg":"RS256"}"#),
            e(&format!(
                r#"{{"sub":"system:serviceaccount:a:b","exp":{exp}}}"#
            ))
        )
    }

    #[test]
    fn jwt_expiry_is_read() {
        assert_eq!(jwt_expiry(&jwt(1_700_000_000)), Some(1_700_000_000));
        assert_eq!(jwt_expiry("not-a-jwt"), None);
    }

    #[test]
    fn web_identity_prechecks() {
        let dir = tempfile::tempdir().expect("dir");
        let token = dir.path().join("token");
        std::fs::write(&token, jwt(1_000)).expect("write");
        let t = token.display().to_string();
        let env = Env::from_pairs([("AWS_WEB_IDENTITY_TOKEN_FILE", t.as_str())]);
        assert!(web_identity(&env)
            .expect_err("no role")
            .cause
            .contains("AWS_ROLE_ARN"));
        let env = Env::from_pairs([
            ("AWS_WEB_IDENTITY_TOKEN_FILE", t.as_str()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
        ]);
        assert!(web_identity(&env)
            .expect_err("expired")
            .cause
            .contains("expired"));
        std::fs::write(&token, jwt(4_000_000_000)).expect("write");
        assert!(web_identity(&env).is_ok());
        let env = Env::from_pairs([
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
        ]);
        assert!(web_identity(&env)
            .expect_err("missing")
            .cause
            .contains("does not exist"));
        let env = Env::from_pairs([
            ("AWS_WEB_IDENTITY_TOKEN_FILE", t.as_str()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
        ]);
        std::fs::write(&token, "  \n").expect("write");
        assert!(web_identity(&env)
            .expect_err("empty")
            .cause
            .contains("is empty"));
        std::fs::write(&token, "-----BEGIN CERTIFICATE-----\nMIIB\n").expect("write");
        assert!(web_identity(&env)
            .expect_err("not a jwt")
            .cause
            .contains("does not hold a JWT"));
        // unreadable: who this process is, and the file's mode and owner (root reads anything,
        // so the text is checked, not the refusal)
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&token, jwt(4_000_000_000)).expect("write");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let who = who_may_read(&token);
        assert!(
            who.contains("mode 0600") && who.contains("owned by uid"),
            "{who}"
        );
    }

    #[tokio::test]
    async fn a_refusal_at_the_relative_container_uri_names_the_ecs_address() {
        let env = Env::from_pairs([(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        )]);
        let d = explain(&Source::Container, &env, "HTTP 403 Forbidden")
            .await
            .expect("a diagnosis");
        assert_eq!(d.kind, Kind::ContainerCredentialsError);
        assert!(
            d.cause
                .contains("http://169.254.170.2/v2/credentials/x refused"),
            "{}",
            d.cause
        );
    }

    #[test]
    fn credential_source_values_are_checked_before_the_sdk_is_asked() {
        let env = Env::from_pairs([("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")]);
        let err = |src: &str, env: &Env| named_source("p", src, env).expect_err(src).cause;
        assert!(err("Ec2", &env).contains("not a source"));
        assert!(err("Environment", &env).contains("AWS_SECRET_ACCESS_KEY"));
        assert!(err("EcsContainer", &env).contains("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
        let off = Env::from_pairs([("AWS_EC2_METADATA_DISABLED", "TRUE")]);
        assert!(err("ec2instancemetadata", &off).contains("AWS_EC2_METADATA_DISABLED"));
        // the SDK ignores case, and so does the check
        assert_eq!(
            named_source(
                "p",
                "ec2instancemetadata",
                &Env::from_pairs::<&str, &str>([])
            )
            .ok(),
            Some(Source::Imds)
        );
        let ecs = Env::from_pairs([("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/c")]);
        assert_eq!(
            named_source("p", "EcsContainer", &ecs).ok(),
            Some(Source::Container)
        );
    }

    #[test]
    fn leftover_keys_shadow_the_pod_role() {
        let env = Env::from_pairs([("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")]);
        let w = shadowed(&Source::Environment, &env);
        assert!(w.len() == 1 && w[0].contains("IRSA"), "{w:?}");
        assert!(shadowed(&Source::WebIdentity, &env).is_empty());
    }
}
