//! The application's driver: which credential sources each MongoDB driver reads for MONGODB-AWS,
//! in which order, and how it treats credentials in the URI and a TXT record's authSource.
//!
//! The facts are ATLAS.md's "What each driver reads" (read in the drivers' sources, 2026-08):
//! Go reads the environment, web identity, ECS's RELATIVE_URI and EC2; Java's built-in supplier
//! the environment, ECS's RELATIVE_URI and EC2 (the AWS SDK's chain when the SDK is on the
//! classpath); libmongoc (C, PHP) the environment, web identity, ECS and EC2; Node 6 without
//! `@aws-sdk/credential-providers` the environment, ECS's RELATIVE_URI and EC2; Node 7, Node 6
//! with that package, pymongo[aws] (boto3), C# 3.x and Rust ≥ 3.3 the AWS SDK's chain; C# reads
//! SSO only with AWSSDK.SSO and AWSSDK.SSOOIDC, Rust SSO and credential_process only where the
//! application enabled those aws-config features.

use std::fmt;

/// The drivers `--driver` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Node,
    Python,
    Java,
    Go,
    Csharp,
    Rust,
    C,
    Php,
    Mongosh,
}

/// `--driver`'s names, in the order `--help` and the usage error list them.
pub const NAMES: [(&str, Name); 9] = [
    ("node", Name::Node),
    ("python", Name::Python),
    ("java", Name::Java),
    ("go", Name::Go),
    ("csharp", Name::Csharp),
    ("rust", Name::Rust),
    ("c", Name::C),
    ("php", Name::Php),
    ("mongosh", Name::Mongosh),
];

/// A credential source as the drivers tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Environment,
    /// A profile of the shared files: keys, or a role on top of another source.
    Profile,
    Sso,
    Process,
    WebIdentity,
    /// ECS: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
    ContainerRelative,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`: EKS Pod Identity, Lambda SnapStart.
    ContainerFull,
    Imds,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Environment => "the environment's keys",
            Source::Profile => "a profile of the shared files",
            Source::Sso => "an SSO profile",
            Source::Process => "a credential_process profile",
            Source::WebIdentity => "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)",
            Source::ContainerRelative => {
                "the ECS endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"
            }
            Source::ContainerFull => {
                "the container endpoint AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity, \
                 Lambda SnapStart)"
            }
            Source::Imds => "EC2 instance metadata",
        })
    }
}

/// The AWS SDK's order (aws-config's default chain, which atlas-iam resolves).
pub const SDK_ORDER: [Source; 8] = [
    Source::Environment,
    Source::Profile,
    Source::Sso,
    Source::Process,
    Source::WebIdentity,
    Source::ContainerRelative,
    Source::ContainerFull,
    Source::Imds,
];

const GO_ORDER: [Source; 4] = [
    Source::Environment,
    Source::WebIdentity,
    Source::ContainerRelative,
    Source::Imds,
];
const LIBMONGOC_ORDER: [Source; 4] = GO_ORDER;
/// Java's built-in supplier, and Node 6 without the add-on.
const BUILT_IN_ORDER: [Source; 3] = [Source::Environment, Source::ContainerRelative, Source::Imds];

/// The driver the application uses: its name, its version when known, and what its manifest
/// said of the add-ons (None: not known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driver {
    pub name: Name,
    /// major, minor
    pub version: Option<(u64, u64)>,
    /// Node 6: `@aws-sdk/credential-providers`; Java: the AWS SDK (v2 or v1) on the classpath;
    /// Python: `pymongo[aws]`; C#: `MongoDB.Driver.Authentication.AWS`.
    pub sdk: Option<bool>,
    /// C#: AWSSDK.SSO and AWSSDK.SSOOIDC; Rust: aws-config's `sso` feature.
    pub sso: Option<bool>,
    /// Rust: aws-config's `credentials-process` feature.
    pub process: Option<bool>,
}

/// How a driver treats a TXT record's `authSource` with MONGODB-AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxtAuthSource {
    /// Node: ignored for the `$external` mechanisms.
    Ignored,
    /// Taken as the source, which MONGODB-AWS refuses unless it is `$external`.
    Refused,
}

impl Driver {
    /// `NAME[@VERSION]`, e.g. `node`, `node@6.9`, `python@4.10.1`.
    pub fn parse(s: &str) -> Result<Driver, String> {
        let s = s.trim();
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let lower = name.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "nodejs" | "node.js" => "node",
            "pymongo" => "python",
            "dotnet" | "c#" => "csharp",
            "libmongoc" => "c",
            other => other,
        };
        let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == alias) else {
            return Err(format!(
                "unknown driver `{name}`: one of {}",
                NAMES.map(|(n, _)| n).join(", ")
            ));
        };
        let version = match version {
            None => None,
            Some(v) => Some(parse_version(v).ok_or_else(|| {
                format!("`{v}` is not a version (MAJOR[.MINOR[.PATCH]], e.g. {alias}@6.9)")
            })?),
        };
        Ok(Driver {
            name: *name,
            version,
            sdk: None,
            sso: None,
            process: None,
        })
    }

    pub fn major(&self) -> Option<u64> {
        self.version.map(|(m, _)| m)
    }

    fn at_least(&self, major: u64, minor: u64) -> bool {
        self.version.is_none_or(|v| v >= (major, minor))
    }

    /// The `--driver` form: `node@6.9`.
    pub fn id(&self) -> String {
        let name = NAMES
            .iter()
            .find(|(_, n)| *n == self.name)
            .map_or("?", |(s, _)| *s);
        match self.version {
            Some((major, minor)) => format!("{name}@{major}.{minor}"),
            None => name.to_string(),
        }
    }

    /// What it is called in prose: `the Node driver 6.9 without @aws-sdk/credential-providers`.
    pub fn label(&self) -> String {
        let v = self
            .version
            .map(|(a, b)| format!(" {a}.{b}"))
            .unwrap_or_default();
        let base = match self.name {
            Name::Node => format!("the Node driver{v}"),
            Name::Python => format!("pymongo{v}"),
            Name::Java => format!("the Java driver{v}"),
            Name::Go => format!("the Go driver{v}"),
            Name::Csharp => format!("the C# driver{v}"),
            Name::Rust => format!("the Rust driver{v}"),
            Name::C => format!("libmongoc{v}"),
            Name::Php => format!("the PHP driver (libmongoc){v}"),
            Name::Mongosh => format!("mongosh{v}"),
        };
        match (self.name, self.sdk_chain()) {
            (Name::Node, false) => format!("{base} without @aws-sdk/credential-providers"),
            (Name::Java, false) => format!("{base} with its built-in supplier (no AWS SDK)"),
            (Name::Java, true) => format!("{base} with the AWS SDK"),
            _ => base,
        }
    }

    /// Whether it reads the AWS SDK's chain. Node 7 requires the add-on; Node 6 and Java read
    /// the SDK's chain only where the application has the add-on (without --app: not known, and
    /// the built-in sources are emulated, with the add-on named).
    pub fn sdk_chain(&self) -> bool {
        match self.name {
            Name::Node => !matches!(self.major(), Some(m) if m < 7) || self.sdk == Some(true),
            Name::Java => self.sdk == Some(true),
            Name::Go | Name::C | Name::Php => false,
            Name::Python | Name::Csharp | Name::Rust | Name::Mongosh => true,
        }
    }

    /// The sources it reads, in its order.
    pub fn order(&self) -> Vec<Source> {
        if self.sdk_chain() {
            return SDK_ORDER
                .into_iter()
                .filter(|s| self.reads(*s).is_ok())
                .collect();
        }
        match self.name {
            Name::Go => GO_ORDER.to_vec(),
            Name::C | Name::Php => LIBMONGOC_ORDER.to_vec(),
            _ => BUILT_IN_ORDER.to_vec(),
        }
    }

    /// Whether it reads `source`; if not, why (for the skipped line and the diagnosis).
    pub fn reads(&self, source: Source) -> Result<(), String> {
        let label = self.label();
        if self.sdk_chain() {
            return match (self.name, source) {
                (Name::Csharp, Source::Sso) if self.sso != Some(true) => Err(format!(
                    "{label} reads SSO profiles only with the packages AWSSDK.SSO and \
                     AWSSDK.SSOOIDC installed"
                )),
                (Name::Rust, Source::Sso) if self.sso != Some(true) => Err(format!(
                    "{label} reads SSO profiles only where the application enables aws-config's \
                     `sso` feature (the driver's aws-auth does not)"
                )),
                (Name::Rust, Source::Process) if self.process != Some(true) => Err(format!(
                    "{label} runs a credential_process only where the application enables \
                     aws-config's `credentials-process` feature (the driver's aws-auth does not)"
                )),
                _ => Ok(()),
            };
        }
        if self.order().contains(&source) {
            return Ok(());
        }
        let reads: Vec<String> = self.order().iter().map(|s| s.to_string()).collect();
        Err(format!(
            "{label} does not read {source}; it reads {}",
            reads.join(", ")
        ))
    }

    /// The add-on that gives it the SDK's chain, with its install command, where there is one.
    pub fn addon(&self) -> Option<&'static str> {
        match (self.name, self.sdk_chain()) {
            (Name::Node, false) => Some(
                "npm install @aws-sdk/credential-providers (and aws4 before the Node driver 7.1): \
                 the driver then reads the AWS SDK's chain",
            ),
            (Name::Java, false) => Some(
                "add the AWS SDK v2 (software.amazon.awssdk:auth and :sts) to the classpath: the \
                 driver then reads the SDK's chain",
            ),
            _ => None,
        }
    }

    /// Its answer to credentials in the connection string: Some(error text) when it refuses
    /// them (Node 7, mongosh 2.7 and later), None when it reads them.
    pub fn refuses_uri_credentials(&self) -> Option<&'static str> {
        match self.name {
            Name::Node if self.at_least(7, 0) => Some(
                "MongoAPIError: username and password cannot be provided when using MONGODB-AWS",
            ),
            Name::Mongosh if self.at_least(2, 7) => Some(
                "MongoAPIError: username and password cannot be provided when using MONGODB-AWS",
            ),
            _ => None,
        }
    }

    /// Whether it warns about credentials in the connection string (Rust 3.x).
    pub fn warns_uri_credentials(&self) -> bool {
        self.name == Name::Rust && self.major().is_none_or(|m| m >= 3)
    }

    /// How it treats `authSource=admin` from the TXT record when the string sets none: Node
    /// ignores a TXT authSource for the `$external` mechanisms; pymongo and the Rust driver take
    /// it and refuse a source other than `$external` for MONGODB-AWS (pymongo's auth.py:
    /// "authentication source must be $external or None for MONGODB-AWS"), as the
    /// specification's rule for the mechanism has every driver do.
    pub fn txt_auth_source(&self) -> TxtAuthSource {
        match self.name {
            Name::Node | Name::Mongosh => TxtAuthSource::Ignored,
            _ => TxtAuthSource::Refused,
        }
    }
}

fn parse_version(v: &str) -> Option<(u64, u64)> {
    let v = v.trim().trim_start_matches(['v', 'V', '^', '~', '=']);
    let mut parts = v.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = match parts.next() {
        None => 0,
        Some(m) => m
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0),
    };
    Some((major, minor))
}

/// The driver families, each with the sources it reads in its order: for the warning when they
/// would not all use what atlas-iam (the SDK's chain) found.
pub fn families() -> Vec<(&'static str, Vec<Source>)> {
    vec![
        (
            "the SDK-based drivers (Node 7, pymongo[aws], C#, Rust, mongosh, Node 6 and Java with \
             the AWS SDK)",
            SDK_ORDER.to_vec(),
        ),
        ("Go", GO_ORDER.to_vec()),
        ("libmongoc (C, PHP)", LIBMONGOC_ORDER.to_vec()),
        (
            "Java's built-in supplier and Node 6 without @aws-sdk/credential-providers",
            BUILT_IN_ORDER.to_vec(),
        ),
    ]
}

/// What each family would use, given the sources present (instance metadata only when it is
/// known to answer): the first present source in its order, or None.
pub fn picks(present: &[Source]) -> Vec<(&'static str, Option<Source>)> {
    families()
        .into_iter()
        .map(|(family, order)| (family, order.into_iter().find(|s| present.contains(s))))
        .collect()
}

/// The warning when the families would not all use `used` (what the SDK's chain found), naming
/// which would use what; None when they agree.
pub fn disagreement(present: &[Source], used: Source) -> Option<String> {
    let picks = picks(present);
    let others: Vec<String> = picks
        .iter()
        .filter(|(_, pick)| *pick != Some(used))
        .map(|(family, pick)| match pick {
            Some(s) => format!("{family} would use {s}"),
            None => format!(
                "{family} would find none here (only instance metadata, on EC2, is left to them)"
            ),
        })
        .collect();
    if others.is_empty() {
        return None;
    }
    let mut text = format!("not every driver would use {used}: {}", others.join("; "));
    if used == Source::Profile
        && present.iter().any(|s| {
            matches!(
                s,
                Source::ContainerRelative | Source::ContainerFull | Source::Imds
            )
        })
    {
        text.push_str(
            "; the shared credentials file shadows the task or instance role for pymongo and the \
             other SDK-based drivers, which read profiles first",
        );
    }
    text.push_str("; give --driver NAME (or --app DIR) to check as the application's driver does");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_parse() {
        let d = Driver::parse("node@6.9.1").expect("node");
        assert_eq!((d.name, d.version), (Name::Node, Some((6, 9))));
        assert_eq!(d.id(), "node@6.9");
        assert_eq!(Driver::parse("Go").expect("go").name, Name::Go);
        assert_eq!(
            Driver::parse("pymongo@4").expect("alias").name,
            Name::Python
        );
        let unknown = Driver::parse("ruby").expect_err("unknown");
        assert!(
            unknown.contains("node, python, java, go, csharp, rust, c, php, mongosh"),
            "{unknown}"
        );
        assert!(Driver::parse("node@x").is_err());
    }

    #[test]
    fn each_driver_reads_its_own_sources() {
        let go = Driver::parse("go").expect("go");
        assert!(go.reads(Source::Profile).is_err());
        assert!(go
            .reads(Source::ContainerFull)
            .expect_err("full uri")
            .contains("does not read the container endpoint AWS_CONTAINER_CREDENTIALS_FULL_URI"));
        assert!(go.reads(Source::WebIdentity).is_ok());
        let java = Driver::parse("java").expect("java");
        assert!(java.reads(Source::WebIdentity).is_err());
        let java_sdk = Driver {
            sdk: Some(true),
            ..java
        };
        assert!(java_sdk.reads(Source::WebIdentity).is_ok());
        let node6 = Driver::parse("node@6").expect("node 6");
        assert!(node6.reads(Source::Profile).is_err());
        assert!(node6
            .addon()
            .is_some_and(|a| a.contains("@aws-sdk/credential-providers")));
        let node7 = Driver::parse("node@7").expect("node 7");
        assert!(node7.reads(Source::Profile).is_ok());
        let rust = Driver::parse("rust").expect("rust");
        assert!(rust.reads(Source::Sso).is_err());
        assert!(rust.reads(Source::Profile).is_ok());
        let csharp = Driver::parse("csharp").expect("c#");
        assert!(csharp
            .reads(Source::Sso)
            .expect_err("sso")
            .contains("AWSSDK.SSOOIDC"));
    }

    #[test]
    fn uri_rules_follow_the_driver() {
        let refuses = |d: &str| {
            Driver::parse(d)
                .expect("d")
                .refuses_uri_credentials()
                .is_some()
        };
        assert!(refuses("node"));
        assert!(refuses("node@7.1"));
        assert!(!refuses("node@6.9"));
        assert!(refuses("mongosh@2.7"));
        assert!(!refuses("mongosh@2.6"));
        assert!(!refuses("python"));
        assert!(Driver::parse("rust").expect("rust").warns_uri_credentials());
        assert_eq!(
            Driver::parse("node").expect("node").txt_auth_source(),
            TxtAuthSource::Ignored
        );
        assert_eq!(
            Driver::parse("go").expect("go").txt_auth_source(),
            TxtAuthSource::Refused
        );
    }

    #[test]
    fn families_that_would_pick_otherwise_are_named() {
        // profile-only: unreadable by Go, libmongoc, Java's built-in supplier, Node 6 bare
        let w = disagreement(&[Source::Profile], Source::Profile).expect("warning");
        assert!(w.contains("Go would find none"), "{w}");
        assert!(
            w.contains("Node 6 without @aws-sdk/credential-providers would find none"),
            "{w}"
        );
        // Pod Identity: the FULL_URI is read by the SDK-based drivers only
        let w = disagreement(&[Source::ContainerFull], Source::ContainerFull).expect("warning");
        assert!(w.contains("Go would find none"), "{w}");
        // a shared credentials file beside a task role
        let w = disagreement(
            &[Source::Profile, Source::ContainerRelative],
            Source::Profile,
        )
        .expect("warning");
        assert!(w.contains("Go would use the ECS endpoint"), "{w}");
        assert!(
            w.contains("shadows the task or instance role for pymongo"),
            "{w}"
        );
        // keys in the environment: every driver reads them first
        assert_eq!(
            disagreement(&[Source::Environment, Source::Profile], Source::Environment),
            None
        );
    }
}
