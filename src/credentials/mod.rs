//! AWS credentials: the default chain traced provider by provider (`chain`), the STS and IAM
//! calls (`sts`), the classification of their refusals (`classify`) and the reading of trust
//! policies that explains a denied AssumeRole (`trust`).

mod chain;
mod classify;
mod http;
mod process;
mod sources;
mod sts;
mod trust;

use std::fmt;
use std::time::SystemTime;

use aws_config::Region;
use aws_credential_types::Credentials;

use crate::config::Env;
use crate::secret::{mask_key_id, Scrubber};

pub use chain::resolve;
pub use classify::{classify, KeyFacts, StsFailure};
pub use sts::{
    assume_role, caller_identity, role_with_path, sdk_config, sts_endpoint, Assumed, CallerIdentity,
};
pub use trust::{trust_verdict, TrustDecision, TrustVerdict};

/// How a profile gets its credentials, from its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileKind {
    /// `role_arn` with `source_profile`, `credential_source`, or (neither) web identity.
    RoleArn {
        role: String,
        via: RoleVia,
    },
    CredentialProcess,
    Sso,
    Keys,
    SettingsOnly,
    /// The profile is not in the files (described as `profile NAME`).
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleVia {
    SourceProfile(String),
    CredentialSource(String),
    WebIdentity,
}

/// Where credentials came from: a source of the default chain, or AssumeRole on top of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Environment,
    Profile { name: String, kind: ProfileKind },
    WebIdentity,
    Container,
    Imds,
    AssumedRole { role_arn: String, from: Box<Source> },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => f.write_str("environment"),
            Source::Profile { name, kind } => {
                let how = match kind {
                    ProfileKind::RoleArn { role, via } => match via {
                        RoleVia::SourceProfile(src) => {
                            format!("role_arn {role} via source_profile {src}")
                        }
                        RoleVia::CredentialSource(src) => {
                            format!("role_arn {role} via credential_source {src}")
                        }
                        RoleVia::WebIdentity => format!("role_arn {role} with web identity"),
                    },
                    ProfileKind::CredentialProcess => "credential_process".to_string(),
                    ProfileKind::Sso => "SSO".to_string(),
                    ProfileKind::Keys => "keys in the profile".to_string(),
                    ProfileKind::SettingsOnly => "settings only".to_string(),
                    ProfileKind::Unknown => return write!(f, "profile {name}"),
                };
                write!(f, "profile {name} ({how})")
            }
            Source::WebIdentity => f.write_str("web identity"),
            Source::Container => f.write_str("container (ECS)"),
            Source::Imds => f.write_str("instance metadata (IMDS)"),
            Source::AssumedRole { role_arn, from } => {
                write!(f, "assumed role {role_arn} (from {from})")
            }
        }
    }
}

impl Source {
    /// The profile's kind, or that of the profile an assumed role started from.
    fn profile_kind(&self) -> Option<&ProfileKind> {
        match self {
            Source::Profile { kind, .. } => Some(kind),
            Source::AssumedRole { from, .. } => from.profile_kind(),
            _ => None,
        }
    }

    pub fn is_sso(&self) -> bool {
        matches!(self.profile_kind(), Some(ProfileKind::Sso))
    }

    /// What to do when credentials from this source expired.
    pub fn refresh_hint(&self) -> String {
        if self.is_sso() {
            "run `aws sso login`, then try again".to_string()
        } else if *self == Source::Environment {
            "these are temporary keys: get fresh ones (`eval \"$(atlas-iam assume --role-arn ARN)\"`) \
             and export all three of AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
                .to_string()
        } else {
            "get fresh credentials from their source, then try again".to_string()
        }
    }

    /// What to do when this source failed to give credentials.
    pub fn failure_hint(&self) -> String {
        match self.profile_kind() {
            Some(ProfileKind::Sso) => "run `aws sso login` for this profile".to_string(),
            Some(ProfileKind::CredentialProcess) => {
                "run the profile's credential_process by hand to see why it fails".to_string()
            }
            Some(ProfileKind::RoleArn {
                via: RoleVia::CredentialSource(src),
                ..
            }) => format!(
                "the profile's role could not be assumed with the credentials from its \
                 credential_source ({src}): check that the role's trust policy names that \
                 identity (`atlas-iam whoami` there shows it)"
            ),
            Some(ProfileKind::RoleArn { .. }) => {
                "the profile's role could not be assumed: check the source profile's keys and the \
                 role's trust policy (try `atlas-iam assume --role-arn ROLE` with the source profile)"
                    .to_string()
            }
            _ => "check the settings of this credential source".to_string(),
        }
    }
}

/// Credentials and what is known of where they came from.
#[derive(Clone)]
pub struct Resolved {
    pub creds: Credentials,
    pub source: Source,
    pub region: Region,
    /// The profile whose settings (region, endpoint_url) apply to the SDK clients.
    pub profile: Option<String>,
    pub warnings: Vec<String>,
    /// The credential sources present, in the AWS SDK's order.
    pub present: Vec<String>,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("access_key_id", &self.masked_key_id())
            .field("source", &self.source)
            .field("region", &self.region)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Resolved {
    pub fn temporary(&self) -> bool {
        self.creds.session_token().is_some()
    }

    pub fn masked_key_id(&self) -> String {
        mask_key_id(self.creds.access_key_id())
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| format!("{t:?}"))
}

/// Scrubber for text that may carry the secrets of the environment before any are resolved.
pub fn env_scrubber(env: &Env) -> Scrubber {
    let mut s = Scrubber::new();
    for name in crate::variables::key_ids() {
        if let Some(id) = env.get(name) {
            s.add_key_id(&id);
        }
    }
    for name in crate::variables::secrets() {
        if let Some(v) = env.get(name).filter(|v| !v.trim().is_empty()) {
            s.add_secret(&v);
            s.add_secret(v.trim());
        }
    }
    s
}

/// An error and its sources, each as it displays, joined by `: ` (no Debug dumps).
pub(crate) fn error_text(e: &(dyn std::error::Error + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_full_key_id_or_secret() {
        let key = "ASIAIOSFODNN7EXAMPLE";
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let creds = Credentials::new(key, secret, Some("tok-tok-tok".into()), None, "t");
        let resolved = Resolved {
            creds: creds.clone(),
            source: Source::Environment,
            region: Region::new("us-east-1"),
            profile: None,
            warnings: vec![],
            present: vec![],
        };
        let assumed = Assumed {
            creds: creds.clone(),
            arn: "arn:aws:sts::1:assumed-role/r/s".into(),
            expiration: None,
        };
        let env = Env::from_pairs([
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ]);
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "atlas-iam",
            "whoami",
            "--role-arn",
            "arn:aws:iam::123456789012:role/app",
            "--external-id",
            "ext-secret-id",
        ])
        .expect("parses");
        let cfg =
            crate::config::Config::from_args(&cli.global, crate::envfile::EnvFile::Absent, env)
                .expect("config");
        for text in [
            format!("{resolved:?}"),
            format!("{assumed:?}"),
            format!("{:?}", KeyFacts::of(&creds, &Source::Environment)),
            format!("{cfg:?}"),
        ] {
            for s in [key, secret, "tok-tok-tok", "ext-secret-id"] {
                assert!(!text.contains(s), "{s} in {text}");
            }
        }
    }

    #[test]
    fn sources_describe_themselves_as_before() {
        let p = |kind| Source::Profile {
            name: "dev".into(),
            kind,
        };
        assert_eq!(
            p(ProfileKind::RoleArn {
                role: "R".into(),
                via: RoleVia::SourceProfile("base".into())
            })
            .to_string(),
            "profile dev (role_arn R via source_profile base)"
        );
        assert_eq!(p(ProfileKind::Sso).to_string(), "profile dev (SSO)");
        assert_eq!(p(ProfileKind::Unknown).to_string(), "profile dev");
        let assumed = Source::AssumedRole {
            role_arn: "arn:aws:iam::1:role/x".into(),
            from: Box::new(Source::Environment),
        };
        assert_eq!(
            assumed.to_string(),
            "assumed role arn:aws:iam::1:role/x (from environment)"
        );
        assert!(p(ProfileKind::Sso).refresh_hint().contains("aws sso login"));
        assert!(Source::Environment
            .refresh_hint()
            .contains("AWS_SESSION_TOKEN"));
        assert!(p(ProfileKind::CredentialProcess)
            .failure_hint()
            .contains("credential_process"));
    }
}
