//! Every environment variable atlas-iam gives a meaning to, with its role, in one place: what
//! is scrubbed from every output, what a `.env` found in the current directory may set, and
//! what it may not (what chooses code to run or where credentials go). README's Configuration
//! section lists the same; a test checks it.

/// What a variable holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A target, a name, a region, a format: data an implicit `.env` may set.
    Data,
    /// An access key id: shown masked, never whole.
    KeyId,
    /// A secret: never shown. An implicit `.env` may set the AWS and Admin API keys (they go
    /// only where the target's own rules send them).
    Secret,
    /// Chooses where requests or credentials go, or what code runs: never from an implicit
    /// `.env` (named in a warning when one sets it).
    Endpoint,
}

pub(crate) struct Variable {
    pub name: &'static str,
    pub role: Role,
    /// May come from a `.env` found in the current directory.
    pub implicit_env: bool,
}

const fn var(name: &'static str, role: Role, implicit_env: bool) -> Variable {
    Variable {
        name,
        role,
        implicit_env,
    }
}

pub(crate) const VARIABLES: &[Variable] = &[
    var("MONGODB_URI", Role::Data, true),
    var("ATLAS_IAM_CLUSTER", Role::Data, true),
    var("AWS_MONGO_CLUSTER_URL", Role::Data, true),
    var("MONGODB_CLUSTER_NAME", Role::Data, true),
    var("ATLAS_IAM_DB", Role::Data, true),
    var("AWS_MONGO_DATABASE", Role::Data, true),
    var("AWS_REGION", Role::Data, true),
    var("AWS_DEFAULT_REGION", Role::Data, true),
    var("ATLAS_IAM_FORMAT", Role::Data, true),
    var("AWS_ACCESS_KEY_ID", Role::KeyId, true),
    var("AWS_SECRET_ACCESS_KEY", Role::Secret, true),
    var("AWS_SESSION_TOKEN", Role::Secret, true),
    var("AWS_CREDENTIAL_EXPIRATION", Role::Data, true),
    var("ATLAS_IAM_ROLE_ARN", Role::Data, true),
    var("MONGODB_ACCESS_ROLE_ARN", Role::Data, true),
    var("AWS_PROFILE", Role::Data, true),
    var("MONGODB_ATLAS_PROJECT_ID", Role::Data, true),
    var("MONGODB_ATLAS_PUBLIC_API_KEY", Role::Data, true),
    var("MONGODB_ATLAS_PRIVATE_API_KEY", Role::Secret, true),
    var("MONGODB_ATLAS_CLIENT_ID", Role::Data, true),
    var("MONGODB_ATLAS_CLIENT_SECRET", Role::Secret, true),
    var("NO_COLOR", Role::Data, true),
    var("ATLAS_IAM_WAIT", Role::Data, false),
    var("ATLAS_IAM_DRIVER", Role::Data, false),
    // a directory to read: from a `.env` in a cloned repository it is not the user's
    var("ATLAS_IAM_APP", Role::Endpoint, false),
    // names some tools still write, which the SDKs and most drivers do not read (a warning says
    // so); their values are secrets all the same
    var("AWS_SECURITY_TOKEN", Role::Secret, false),
    var("AWS_SECRET_TOKEN", Role::Secret, false),
    var("AWS_SECRET_KEY", Role::Secret, false),
    var("AWS_ACCESS_KEY", Role::KeyId, false),
    // internal: set by atlas-iam on its own worker process (see `worker`)
    var("ATLAS_IAM_WORKER", Role::Endpoint, false),
    var("ATLAS_IAM_ATLAS_BASE_URL", Role::Endpoint, false),
    var("AWS_CONTAINER_AUTHORIZATION_TOKEN", Role::Secret, false),
    var(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        Role::Endpoint,
        false,
    ),
    var("AWS_CONTAINER_CREDENTIALS_FULL_URI", Role::Endpoint, false),
    var(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        Role::Endpoint,
        false,
    ),
    var("AWS_CONFIG_FILE", Role::Endpoint, false),
    var("AWS_SHARED_CREDENTIALS_FILE", Role::Endpoint, false),
    var("AWS_WEB_IDENTITY_TOKEN_FILE", Role::Endpoint, false),
    var("AWS_ROLE_ARN", Role::Endpoint, false),
    var("AWS_CA_BUNDLE", Role::Endpoint, false),
    var("AWS_ENDPOINT_URL", Role::Endpoint, false),
    var("AWS_ENDPOINT_URL_STS", Role::Endpoint, false),
    var("AWS_ENDPOINT_URL_IAM", Role::Endpoint, false),
    var("AWS_EC2_METADATA_DISABLED", Role::Endpoint, false),
    var("AWS_EC2_METADATA_SERVICE_ENDPOINT", Role::Endpoint, false),
    var("HTTPS_PROXY", Role::Endpoint, false),
    var("HTTP_PROXY", Role::Endpoint, false),
    var("NO_PROXY", Role::Endpoint, false),
];

/// Whether a `.env` found in the current directory may set `name`.
pub(crate) fn implicit_env_may_set(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.implicit_env && v.name == name)
}

/// The variables whose values are never shown.
pub(crate) fn secrets() -> impl Iterator<Item = &'static str> {
    VARIABLES
        .iter()
        .filter(|v| v.role == Role::Secret)
        .map(|v| v.name)
}

/// The variables whose values are key ids (shown masked).
pub(crate) fn key_ids() -> impl Iterator<Item = &'static str> {
    VARIABLES
        .iter()
        .filter(|v| v.role == Role::KeyId)
        .map(|v| v.name)
}

/// Whether a variable an implicit `.env` may not set would change what code runs or where
/// credentials go if it were set: those are named in a warning, the rest merely ignored. Beyond
/// the registry, whole families count (any `AWS_`, `ATLAS_IAM_`, `MONGODB_`, `LD_`, proxy or
/// certificate variable), since the SDK, the driver and the loader read more than atlas-iam
/// names.
pub fn is_dangerous(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    VARIABLES
        .iter()
        .any(|v| v.role == Role::Endpoint && v.name == upper)
        || upper.starts_with("AWS_")
        || upper.starts_with("ATLAS_IAM_")
        || upper.starts_with("MONGODB_")
        || upper.starts_with("LD_")
        || upper.starts_with("SSL_CERT")
        || upper.contains("PROXY")
        || ["PATH", "HOME", "SHELL", "RUST_LOG", "TMPDIR"].contains(&upper.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README's Configuration section lists exactly what an implicit `.env` may set.
    #[test]
    fn readme_lists_what_an_implicit_env_may_set() {
        let readme = include_str!("../README.md");
        let paragraph = readme
            .split("\n## Configuration")
            .nth(1)
            .and_then(|s| {
                s.split("may set\nonly data:")
                    .nth(1)
                    .or_else(|| s.split("may set only data:").nth(1))
            })
            .and_then(|s| s.split(". Variables that choose").next())
            .unwrap_or_default();
        let listed: Vec<String> = paragraph
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        let allowed: Vec<String> = VARIABLES
            .iter()
            .filter(|v| v.implicit_env)
            .map(|v| v.name.to_string())
            .collect();
        assert_eq!(listed, allowed, "README's list must be the registry's");
    }

    #[test]
    fn roles_hold() {
        for v in VARIABLES {
            assert_eq!(
                VARIABLES.iter().filter(|o| o.name == v.name).count(),
                1,
                "{} twice",
                v.name
            );
            if v.role == Role::Endpoint {
                assert!(!v.implicit_env && is_dangerous(v.name), "{}", v.name);
            }
        }
        assert!(secrets().any(|s| s == "AWS_SESSION_TOKEN"));
        assert!(secrets().any(|s| s == "MONGODB_ATLAS_CLIENT_SECRET"));
        assert_eq!(
            key_ids().collect::<Vec<_>>(),
            ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]
        );
        assert!(implicit_env_may_set("MONGODB_URI") && !implicit_env_may_set("AWS_CA_BUNDLE"));
    }
}
