//! The failure kinds. Each has an exit code; a failed stage carries a `Diagnosis`: the kind, the
//! cause (what happened, with what only this tool knows) and a hint (what to do).

use serde::Serialize;

/// The exit codes: one table for every command and both output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The exit code table as printed by `--help` and README.md.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  internal error (a bug: please report it)
  2  usage: unknown flag, bad flag value
  3  config or credentials: bad env file, URI, ARN, profile; no credentials
  4  STS: AssumeRole or GetCallerIdentity refused or unreachable
  5  network: dns, tcp, tls
  6  authentication: MONGODB-AWS refused
  7  authorization or command: missing database role, command failed";

/// What went wrong. The exit code follows the stage that failed (`Stage::exit_status`), so a
/// kind that can happen at two stages (clock_skew at identity or at auth) exits by its stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    // config and credentials (3)
    InvalidConfig,
    EnvFile,
    InvalidUri,
    UriPitfall,
    InvalidArn,
    MissingTarget,
    UnknownProfile,
    ProfileError,
    NoCredentials,
    CredentialsError,
    CredentialsTimeout,
    CredentialsExpired,
    // STS (4)
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
    StsError,
    // network (5)
    DnsNameNotFound,
    DnsResolverFailed,
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
    // authentication (6)
    AtlasUserMissing,
    AtlasStsRejected,
    ServerNonceMismatch,
    AuthenticationFailed,
    // authorization or command (7)
    NotAuthorized,
    CommandFailed,
    // internal (1)
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
        for code in 0..=7 {
            assert!(
                EXIT_CODES.contains(&format!("  {code}  ")),
                "missing exit code {code}"
            );
        }
    }
}
