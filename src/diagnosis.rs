//! The failure knowledge in one place: the stages and their exit codes, the failure kinds and
//! their families, the timeout table, and every server or SDK text that classification matches
//! (`texts`), each with its own unit test. A failed stage carries a `Diagnosis`: the kind, the
//! cause (what happened, with what only this tool knows) and a hint (what to do).

use std::fmt;

use serde::Serialize;

/// The stages of a run, in report order. Their names are part of the public interface.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Config,
    Credentials,
    Assume,
    Identity,
    Atlas,
    Dns,
    Tcp,
    Tls,
    Auth,
    Command,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Config,
        Stage::Credentials,
        Stage::Assume,
        Stage::Identity,
        Stage::Atlas,
        Stage::Dns,
        Stage::Tcp,
        Stage::Tls,
        Stage::Auth,
        Stage::Command,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Config => "config",
            Stage::Credentials => "credentials",
            Stage::Assume => "assume",
            Stage::Identity => "identity",
            Stage::Atlas => "atlas",
            Stage::Dns => "dns",
            Stage::Tcp => "tcp",
            Stage::Tls => "tls",
            Stage::Auth => "auth",
            Stage::Command => "command",
        }
    }

    /// The family of failures this stage reports, which gives the exit code.
    pub fn family(self) -> Family {
        match self {
            Stage::Config | Stage::Credentials => Family::Config,
            Stage::Assume | Stage::Identity => Family::Sts,
            Stage::Atlas => Family::AtlasApi,
            Stage::Dns | Stage::Tcp | Stage::Tls => Family::Network,
            Stage::Auth => Family::Authentication,
            Stage::Command => Family::Authorization,
        }
    }
}

/// The exit codes: one table for every command and both output formats.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    Ok = 0,
    Internal = 1,
    Usage = 2,
    Config = 3,
    Sts = 4,
    Network = 5,
    Authentication = 6,
    Authorization = 7,
    AtlasApi = 8,
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 9] = [
        ExitStatus::Ok,
        ExitStatus::Internal,
        ExitStatus::Usage,
        ExitStatus::Config,
        ExitStatus::Sts,
        ExitStatus::Network,
        ExitStatus::Authentication,
        ExitStatus::Authorization,
        ExitStatus::AtlasApi,
    ];

    pub fn code(self) -> i32 {
        self as i32
    }

    /// What the code means: the one source of `--help`'s table and of README's (a test checks
    /// README against it).
    pub fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Ok => "ok (warnings included)",
            ExitStatus::Internal => "internal error (a bug: please report it)",
            ExitStatus::Usage => "usage: unknown flag, bad flag value",
            ExitStatus::Config => {
                "config or credentials: bad env file, URI, ARN, profile; no credentials"
            }
            ExitStatus::Sts => "STS: AssumeRole or GetCallerIdentity refused or unreachable",
            ExitStatus::Network => "network: dns, tcp, tls",
            ExitStatus::Authentication => "authentication: MONGODB-AWS refused",
            ExitStatus::Authorization => {
                "authorization or command: missing database role, command failed"
            }
            ExitStatus::AtlasApi => {
                "Atlas Admin API (`whoami --atlas` only): refused, unreachable, no such project, \
                 not configured"
            }
        }
    }

    /// The few words a command's `--help` gives it.
    pub fn short(self) -> &'static str {
        match self {
            ExitStatus::Ok => "ok",
            ExitStatus::Internal => "internal error",
            ExitStatus::Usage => "usage",
            ExitStatus::Config => "config or credentials",
            ExitStatus::Sts => "STS",
            ExitStatus::Network => "network (dns, tcp, tls)",
            ExitStatus::Authentication => "authentication",
            ExitStatus::Authorization => "authorization or command",
            ExitStatus::AtlasApi => "the Admin API refused or could not be read",
        }
    }
}

/// The exit code table as `--help` prints it.
pub fn exit_codes() -> String {
    let mut out = String::from("Exit codes:");
    for s in ExitStatus::ALL {
        out.push_str(&format!(
            "\n  {}  {}",
            s.code(),
            s.meaning().replace('`', "")
        ));
    }
    out
}

/// Where a kind of failure belongs. A kind's family is where it is usually found; a few kinds
/// occur at stages of another family (`clock_skew` at identity or at auth), and then the stage
/// decides the exit code: see [`exit_status`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Config,
    Sts,
    Network,
    Authentication,
    Authorization,
    AtlasApi,
    Internal,
}

impl Family {
    pub fn exit_status(self) -> ExitStatus {
        match self {
            Family::Config => ExitStatus::Config,
            Family::Sts => ExitStatus::Sts,
            Family::Network => ExitStatus::Network,
            Family::Authentication => ExitStatus::Authentication,
            Family::Authorization => ExitStatus::Authorization,
            Family::AtlasApi => ExitStatus::AtlasApi,
            Family::Internal => ExitStatus::Internal,
        }
    }
}

/// The exit status of a run whose first failure is `kind` at `stage`: the stage's family
/// decides (a script learns where it broke), except that an internal fault is always 1.
pub fn exit_status(stage: Stage, kind: Kind) -> ExitStatus {
    if kind == Kind::Internal {
        ExitStatus::Internal
    } else if kind == Kind::UsageError {
        ExitStatus::Usage
    } else if stage == Stage::Atlas {
        // whoami --atlas: what the API found decides (a missing user is authentication's
        // code), its own failures are the API's
        kind.family().exit_status()
    } else {
        stage.family().exit_status()
    }
}

/// What went wrong, by family.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    // config and credentials
    InvalidConfig,
    UsageError,
    Interrupted,
    EnvFile,
    InvalidUri,
    UriPitfall,
    InvalidArn,
    MissingTarget,
    TargetNotConfirmed,
    UnknownProfile,
    ProfileError,
    NoCredentials,
    CredentialsError,
    CredentialsTimeout,
    CredentialsExpired,
    WebIdentityError,
    ContainerCredentialsError,
    CredentialSourceError,
    ImdsHopLimit,
    ImdsNoRole,
    SsoLoginNeeded,
    DriverAddonMissing,
    // STS
    AssumeRoleDenied,
    RoleNotFound,
    DurationTooLong,
    InvalidKey,
    MissingSessionToken,
    SignatureMismatch,
    ExpiredToken,
    ClockSkew,
    StsUnreachable,
    StsTimeout,
    StsThrottled,
    StsError,
    // network
    DnsNameNotFound,
    DnsResolverFailed,
    DnsSrvRefused,
    DnsTimeout,
    DnsTargetOutsideDomain,
    DnsTxtInvalid,
    TcpRefused,
    TcpTimeout,
    TcpUnreachable,
    IpNotAllowed,
    TlsAlert,
    TlsUntrusted,
    TlsHostname,
    TlsExpired,
    TlsHandshake,
    TlsTimeout,
    PlaintextToTlsPort,
    ServerSilent,
    ServerClosed,
    BadReply,
    ServerSelection,
    AtlasClusterPaused,
    // authentication
    AtlasUserMissing,
    AtlasStsRejected,
    ServerNonceMismatch,
    MechanismUnavailable,
    AuthenticationFailed,
    AtlasUserWrongType,
    AtlasUserOtherClusters,
    AtlasVersionTooOld,
    AtlasLdapAuthorization,
    AtlasChangePending,
    // authorization or command
    NotAuthorized,
    CommandFailed,
    // the Atlas Admin API
    AtlasApiNotConfigured,
    AtlasApiUnauthorized,
    AtlasApiForbidden,
    AtlasApiVersionGone,
    AtlasProjectNotFound,
    AtlasApiUnreachable,
    AtlasApiTimeout,
    AtlasApiError,
    // internal
    Internal,
}

impl Kind {
    /// The snake_case name used in JSON and in the human output.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{self:?}"))
    }

    pub fn family(self) -> Family {
        use Kind::*;
        match self {
            InvalidConfig
            | UsageError
            | Interrupted
            | EnvFile
            | InvalidUri
            | UriPitfall
            | InvalidArn
            | MissingTarget
            | TargetNotConfirmed
            | UnknownProfile
            | ProfileError
            | NoCredentials
            | CredentialsError
            | CredentialsTimeout
            | CredentialsExpired
            | WebIdentityError
            | ContainerCredentialsError
            | CredentialSourceError
            | ImdsHopLimit
            | SsoLoginNeeded
            | DriverAddonMissing
            | ImdsNoRole => Family::Config,
            AssumeRoleDenied | RoleNotFound | DurationTooLong | InvalidKey
            | MissingSessionToken | SignatureMismatch | ExpiredToken | ClockSkew
            | StsUnreachable | StsTimeout | StsThrottled | StsError => Family::Sts,
            DnsNameNotFound
            | DnsResolverFailed
            | DnsSrvRefused
            | DnsTimeout
            | DnsTargetOutsideDomain
            | DnsTxtInvalid
            | TcpRefused
            | TcpTimeout
            | TcpUnreachable
            | IpNotAllowed
            | TlsAlert
            | TlsUntrusted
            | TlsHostname
            | TlsExpired
            | TlsHandshake
            | TlsTimeout
            | PlaintextToTlsPort
            | ServerSilent
            | ServerClosed
            | BadReply
            | AtlasClusterPaused
            | ServerSelection => Family::Network,
            AtlasUserMissing
            | AtlasStsRejected
            | ServerNonceMismatch
            | MechanismUnavailable
            | AuthenticationFailed
            | AtlasUserWrongType
            | AtlasUserOtherClusters
            | AtlasVersionTooOld
            | AtlasLdapAuthorization
            | AtlasChangePending => Family::Authentication,
            NotAuthorized | CommandFailed => Family::Authorization,
            AtlasApiNotConfigured
            | AtlasApiUnauthorized
            | AtlasApiForbidden
            | AtlasApiVersionGone
            | AtlasProjectNotFound
            | AtlasApiUnreachable
            | AtlasApiTimeout
            | AtlasApiError => Family::AtlasApi,
            Internal => Family::Internal,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    pub kind: Kind,
    pub cause: String,
    pub hint: String,
}

impl Diagnosis {
    pub fn new(kind: Kind, cause: impl Into<String>, hint: impl Into<String>) -> Self {
        Diagnosis {
            kind,
            cause: cause.into(),
            hint: hint.into(),
        }
    }

    /// The same diagnosis with `f` applied to its texts (scrubbing, sanitising).
    pub fn map_text(self, f: impl Fn(&str) -> String) -> Self {
        Diagnosis {
            kind: self.kind,
            cause: f(&self.cause),
            hint: f(&self.hint),
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.kind.name(), self.cause, self.hint)
    }
}

impl std::error::Error for Diagnosis {}

/// What throttled STS calls come from, and what lowers them (the quota Atlas documents for the
/// GetCallerIdentity calls it makes is account-wide).
pub const THROTTLING_HINT: &str = "STS limits its calls per account and region (Atlas documents 600 \
    per second for the GetCallerIdentity calls it makes); every new authenticated connection is one \
    call, so connection pools and short-lived clients multiply them: reuse one client per process, \
    keep pools warm (minPoolSize, maxIdleTimeMS), and try again later";

/// The diagnosis of a stage cut short by `--timeout`: the timeout table.
pub fn timeout(stage: Stage) -> Diagnosis {
    let (kind, what, hint) = match stage {
        Stage::Credentials => (
            Kind::CredentialsTimeout,
            "resolving AWS credentials (instance metadata, a container endpoint, SSO or a \
             credential_process may hang)",
            "check the credential source, or raise --timeout",
        ),
        Stage::Assume | Stage::Identity => (
            Kind::StsTimeout,
            "waiting for STS",
            "check the network path to STS, or raise --timeout",
        ),
        Stage::Atlas => (
            Kind::AtlasApiTimeout,
            "waiting for the Atlas Admin API",
            "check the network path to cloud.mongodb.com, or raise --timeout",
        ),
        Stage::Dns => (
            Kind::DnsTimeout,
            "waiting for DNS",
            "give another resolver with --dns-server IP",
        ),
        Stage::Tcp => (
            Kind::TcpTimeout,
            "connecting",
            "check firewalls between here and the cluster",
        ),
        Stage::Tls => (
            Kind::TlsTimeout,
            "in the TLS handshake or the hello",
            "check the host and port",
        ),
        Stage::Auth => (
            Kind::ServerSelection,
            "the driver connected and authenticated",
            "the cluster is slow or unreachable for the driver: raise --timeout or check the network",
        ),
        Stage::Command => (
            Kind::CommandFailed,
            "the command ran",
            "raise --timeout, or lower --count",
        ),
        Stage::Config => (Kind::Internal, "reading the configuration", "report this"),
    };
    Diagnosis::new(kind, format!("--timeout ran out while {what}"), hint)
}

/// Every text of a server, STS or the SDK that classification looks for. Classification uses
/// typed kinds and codes first; these are the documented texts it must recognise besides.
pub mod texts {
    // STS error codes
    pub const STS_EXPIRED_TOKEN: &str = "ExpiredToken";
    pub const STS_EXPIRED_TOKEN_EXCEPTION: &str = "ExpiredTokenException";
    pub const STS_INVALID_CLIENT_TOKEN_ID: &str = "InvalidClientTokenId";
    pub const STS_SIGNATURE_DOES_NOT_MATCH: &str = "SignatureDoesNotMatch";
    pub const STS_ACCESS_DENIED: &str = "AccessDenied";
    pub const STS_VALIDATION_ERROR: &str = "ValidationError";
    /// STS throttling: HTTP 400 `Throttling` / `Rate exceeded` (ATLAS.md, field failure modes II).
    pub const STS_THROTTLING: &str = "Throttling";
    pub const IAM_NO_SUCH_ENTITY: &str = "NoSuchEntity";
    // STS messages
    /// In SignatureDoesNotMatch when the request's date is more than 15 minutes off.
    pub const STS_SIGNATURE_EXPIRED: &str = "Signature expired";
    /// In the ValidationError of a chained AssumeRole asking more than an hour.
    pub const STS_ROLE_CHAINING: &str = "role chaining";
    /// In the ValidationError of an AssumeRole asking more than the role's maximum.
    pub const STS_DURATION_SECONDS: &str = "DurationSeconds";
    /// How an AccessDenied message names the caller: `User: ARN is not authorized…`.
    pub const STS_DENIED_CALLER_PREFIX: &str = "User: ";
    // Atlas
    pub const ATLAS_AUTHENTICATION_FAILED: i32 = 18;
    pub const ATLAS_UNAUTHORIZED: i32 = 13;
    pub const ATLAS_PROXY_ERROR: i32 = 8000;
    /// A server without MONGODB-AWS: `Received authentication for mechanism MONGODB-AWS which
    /// is not enabled` (code 334, MechanismUnavailable).
    pub const MECHANISM_UNAVAILABLE: i32 = 334;
    /// The shared tier's proxy when STS refused the replayed request.
    pub const PROXY_STS_REFUSED: &str = "bad auth : aws sts call has response";
    /// The shared tier's proxy when no database user has the ARN: `bad auth : user ARN is not found`.
    pub const PROXY_USER_PREFIX: &str = "bad auth : user ";
    pub const PROXY_USER_SUFFIX: &str = " is not found";
    /// The shared tier's proxy when the user lacks a role.
    pub const PROXY_NOT_ALLOWED: &str = "user is not allowed to do action";
    /// The driver's MONGODB-AWS error when the server's nonce does not extend the client's.
    pub const DRIVER_NONCE: &str = "nonce";
    /// The AWS SDK's text for a provider that had nothing configured.
    pub const SDK_PROVIDER_NOT_ENABLED: &str = "the credential provider was not enabled";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_snake_case() {
        assert_eq!(Kind::AssumeRoleDenied.name(), "assume_role_denied");
        assert_eq!(Kind::UriPitfall.name(), "uri_pitfall");
    }

    #[test]
    fn exit_code_table_lists_every_status() {
        let table = exit_codes();
        for s in ExitStatus::ALL {
            assert!(
                table.contains(&format!("  {}  ", s.code())),
                "missing exit code {s:?}"
            );
        }
        assert_eq!(ExitStatus::ALL.len(), 9);
        assert_eq!(
            ExitStatus::ALL.iter().map(|s| s.code()).collect::<Vec<_>>(),
            (0..=8).collect::<Vec<_>>()
        );
    }

    /// README's "Exit codes" table is this one, row for row.
    #[test]
    fn readme_lists_these_exit_codes() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("\n## Exit codes")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_default();
        let rows: Vec<(i32, String)> = section
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect();
                Some((cells.first()?.parse().ok()?, cells.get(1)?.to_string()))
            })
            .collect();
        let expected: Vec<(i32, String)> = ExitStatus::ALL
            .iter()
            .map(|s| (s.code(), s.meaning().to_string()))
            .collect();
        assert_eq!(
            rows, expected,
            "README's Exit codes table must match ExitStatus::meaning"
        );
    }

    #[test]
    fn the_stage_decides_the_exit_code_and_internal_is_always_1() {
        assert_eq!(exit_status(Stage::Identity, Kind::ClockSkew).code(), 4);
        assert_eq!(exit_status(Stage::Auth, Kind::ClockSkew).code(), 6);
        assert_eq!(exit_status(Stage::Tls, Kind::Internal).code(), 1);
        // each stage's name is the one JSON spells
        for stage in Stage::ALL {
            assert_eq!(
                serde_json::to_value(stage).ok(),
                Some(serde_json::Value::String(stage.name().to_string()))
            );
        }
    }

    #[test]
    fn timeouts_name_their_stage_family() {
        for stage in Stage::ALL.into_iter().skip(1) {
            let d = timeout(stage);
            assert!(d.cause.starts_with("--timeout ran out"), "{d}");
            // the driver reports a run-out at auth as server selection, a network kind
            if stage != Stage::Auth {
                assert_eq!(d.kind.family(), stage.family(), "{stage:?}: {d}");
            }
        }
    }

    #[test]
    fn diagnosis_displays_kind_cause_and_hint() {
        let d = Diagnosis::new(Kind::TcpRefused, "refused", "check the port");
        assert_eq!(d.to_string(), "tcp_refused: refused (check the port)");
        let e: Box<dyn std::error::Error> = Box::new(d);
        assert!(e.to_string().contains("refused"));
    }

    // Each matched text, against the text as Atlas, STS or the SDK produce it (../shared/ATLAS.md).
    #[test]
    fn sts_texts_match_what_sts_says() {
        use texts::*;
        assert!(
            "Signature expired: 20261122T060000Z is now earlier than 20261122T061500Z"
                .contains(STS_SIGNATURE_EXPIRED)
        );
        assert!(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles \
                 assumed by role chaining."
                .contains(STS_ROLE_CHAINING)
        );
        assert!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                .contains(STS_DURATION_SECONDS)
        );
        assert!(
            "User: arn:aws:iam::1:user/a is not authorized to perform: sts:AssumeRole"
                .starts_with(STS_DENIED_CALLER_PREFIX)
        );
        for code in [
            STS_EXPIRED_TOKEN,
            STS_EXPIRED_TOKEN_EXCEPTION,
            STS_INVALID_CLIENT_TOKEN_ID,
            STS_SIGNATURE_DOES_NOT_MATCH,
            STS_ACCESS_DENIED,
            STS_VALIDATION_ERROR,
            IAM_NO_SUCH_ENTITY,
        ] {
            assert!(code.chars().all(|c| c.is_ascii_alphabetic()), "{code}");
        }
    }

    #[test]
    fn atlas_texts_match_what_atlas_says() {
        use texts::*;
        assert!("bad auth : aws sts call has response 403".starts_with(PROXY_STS_REFUSED));
        let m = "bad auth : user arn:aws:iam::123456789012:role/X is not found";
        assert!(m.starts_with(PROXY_USER_PREFIX) && m.ends_with(PROXY_USER_SUFFIX));
        assert!(
            "user is not allowed to do action [insert] on [db.coll]".starts_with(PROXY_NOT_ALLOWED)
        );
        assert_eq!(
            (
                ATLAS_AUTHENTICATION_FAILED,
                ATLAS_UNAUTHORIZED,
                ATLAS_PROXY_ERROR
            ),
            (18, 13, 8000)
        );
        assert!("MONGODB-AWS failure: mismatched nonce".contains(DRIVER_NONCE));
    }

    #[test]
    fn sdk_text_matches_what_the_sdk_says() {
        use aws_credential_types::provider::error::CredentialsError;
        let e = CredentialsError::not_loaded("no keys");
        assert!(
            e.to_string().contains(texts::SDK_PROVIDER_NOT_ENABLED),
            "{e}"
        );
    }
}
