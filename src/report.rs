//! The one model every command fills and every renderer reads.

use serde::Serialize;

pub use crate::diagnosis::Stage;
use crate::diagnosis::{exit_status, Diagnosis, ExitStatus, Kind};
use crate::secret::Secret;

/// The command a report is about; its name is part of the public interface.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum CommandName {
    Assume,
    Whoami,
    Uri,
    Ping,
    ListCollections,
    Roundtrip,
    /// Printed by the binary from the clap definition; never a report.
    Completions,
    Man,
}

/// Where a command's report goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportStream {
    Stdout,
    /// stdout is for the command's product (`assume`'s credentials).
    Stderr,
    /// The product (`uri`'s string) on stdout, the report on stderr, except with `--format
    /// json`, whose report holds the product.
    StderrUnlessJson,
}

/// What each command is, in one place: its name on the command line and in reports, whether it
/// makes a report, where the report goes, and its exit codes for `--help` (a status with a text
/// of its own, or its short name).
pub struct CommandFacts {
    pub command: CommandName,
    pub name: &'static str,
    pub reports: bool,
    pub stream: ReportStream,
    pub exits: &'static [(ExitStatus, Option<&'static str>)],
    /// Said after the codes (the ones a flag adds).
    pub exits_note: &'static str,
}

const PROBE_EXITS: &[(ExitStatus, Option<&str>)] = &[
    (ExitStatus::Ok, None),
    (ExitStatus::Usage, None),
    (ExitStatus::Config, None),
    (ExitStatus::Sts, None),
    (ExitStatus::Network, None),
    (ExitStatus::Authentication, None),
    (ExitStatus::Authorization, None),
];

pub const COMMANDS: &[CommandFacts] = &[
    CommandFacts {
        command: CommandName::Assume,
        name: "assume",
        reports: true,
        stream: ReportStream::Stderr,
        exits: &[
            (ExitStatus::Ok, None),
            (ExitStatus::Usage, None),
            (ExitStatus::Config, None),
            (ExitStatus::Sts, None),
        ],
        exits_note: "",
    },
    CommandFacts {
        command: CommandName::Whoami,
        name: "whoami",
        reports: true,
        stream: ReportStream::Stdout,
        exits: &[
            (ExitStatus::Ok, None),
            (ExitStatus::Usage, None),
            (ExitStatus::Config, None),
            (ExitStatus::Sts, None),
        ],
        exits_note: "with --atlas: 6 no matching database user, 8 the Admin API refused or \
                     could not be read",
    },
    CommandFacts {
        command: CommandName::Uri,
        name: "uri",
        reports: true,
        stream: ReportStream::StderrUnlessJson,
        exits: &[
            (ExitStatus::Ok, Some("ok (warnings included)")),
            (ExitStatus::Usage, None),
            (
                ExitStatus::Config,
                Some("config or credentials (a pitfall that breaks authentication)"),
            ),
            (ExitStatus::Sts, None),
        ],
        exits_note: "",
    },
    CommandFacts {
        command: CommandName::Ping,
        name: "ping",
        reports: true,
        stream: ReportStream::Stdout,
        exits: PROBE_EXITS,
        exits_note: "",
    },
    CommandFacts {
        command: CommandName::ListCollections,
        name: "list-collections",
        reports: true,
        stream: ReportStream::Stdout,
        exits: PROBE_EXITS,
        exits_note: "",
    },
    CommandFacts {
        command: CommandName::Roundtrip,
        name: "roundtrip",
        reports: true,
        stream: ReportStream::Stdout,
        exits: PROBE_EXITS,
        exits_note: "",
    },
    CommandFacts {
        command: CommandName::Completions,
        name: "completions",
        reports: false,
        stream: ReportStream::Stdout,
        exits: &[
            (ExitStatus::Ok, None),
            (
                ExitStatus::Internal,
                Some("the script could not be written"),
            ),
            (ExitStatus::Usage, None),
        ],
        exits_note: "",
    },
    CommandFacts {
        command: CommandName::Man,
        name: "man",
        reports: false,
        stream: ReportStream::Stdout,
        exits: &[
            (ExitStatus::Ok, None),
            (ExitStatus::Internal, Some("the page could not be written")),
            (ExitStatus::Usage, None),
        ],
        exits_note: "",
    },
];

impl CommandName {
    pub fn facts(self) -> &'static CommandFacts {
        COMMANDS
            .iter()
            .find(|c| c.command == self)
            .unwrap_or(&COMMANDS[0])
    }

    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// The command a report can be made for, by its name on the command line.
    pub fn from_name(name: &str) -> Option<CommandName> {
        COMMANDS
            .iter()
            .find(|c| c.reports && c.name == name)
            .map(|c| c.command)
    }

    /// Its exit codes, as its `--help` ends.
    pub fn exit_help(self) -> String {
        let f = self.facts();
        let codes: Vec<String> = f
            .exits
            .iter()
            .map(|(s, text)| format!("{} {}", s.code(), text.unwrap_or(s.short())))
            .collect();
        let note = if f.exits_note.is_empty() {
            String::new()
        } else {
            format!("; {}", f.exits_note)
        };
        format!("Exit codes: {}{note}.", codes.join(", "))
    }
}

impl std::fmt::Display for CommandName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Latencies of the command stage, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Latency {
    /// The first connection: connect, TLS, hello, MONGODB-AWS and the first command (auth stage).
    pub cold_ms: f64,
    /// Each run of the command over the warm client.
    pub samples_ms: Vec<f64>,
    pub min_ms: f64,
    pub median_ms: f64,
    pub max_ms: f64,
    /// For roundtrip: the last run's operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Operations>,
}

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Operations {
    pub insert_ms: f64,
    pub find_ms: f64,
    pub delete_ms: f64,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Warning,
    Failed,
    Skipped,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StageResult {
    pub stage: Stage,
    pub status: Status,
    pub elapsed_ms: u64,
    /// For people; it may change wording. Scripts read `facts`.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub diagnosis: Option<Diagnosis>,
    /// What the stage found, as fields (present when the stage passed and found something).
    #[serde(default, skip_serializing_if = "Facts::is_empty")]
    pub facts: Facts,
}

/// What a stage found, as fields a CI job reads instead of `detail`. Each stage fills the
/// fields that concern it; absent fields were not found (or do not concern the stage).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Facts {
    /// identity: the caller's ARN as STS returns it; assume: the assumed role's session ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// identity: the AWS account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// identity: the ARN Atlas looks up as the database user (`$external`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atlas_user_arn: Option<String>,
    /// identity: STS's clock minus this machine's, in seconds (from STS's Date header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset_s: Option<i64>,
    /// assume: when the assumed credentials expire (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// dns: the SRV name queried (mongodb+srv only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srv_name: Option<String>,
    /// dns: the SRV service name (`srvServiceName`, `mongodb` unless the string sets it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srv_service_name: Option<String>,
    /// dns: `srvMaxHosts` (0: every SRV target is used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srv_max_hosts: Option<u32>,
    /// dns: how many SRV records the name has (the hosts may be fewer, with srvMaxHosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srv_records: Option<usize>,
    /// dns: the nameservers asked (`--dns-server`, or the system's from /etc/resolv.conf).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// dns: the options the TXT record gave (mongodb+srv only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub txt_options: Vec<String>,
    /// dns, tcp, tls: one entry per host that passed, in the order of the seed list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostFacts>,
    /// auth: the authentication mechanism used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    /// auth: from the start of the driver's work to its first authenticated connection (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_ms: Option<f64>,
    /// command: the command's database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// atlas: what the Admin API shows of the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atlas: Option<AtlasFacts>,
    /// command: the median of the command's runs over the warm client (ms); the others are in
    /// the report's `latency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_ms: Option<f64>,
}

impl Facts {
    pub fn is_empty(&self) -> bool {
        *self == Facts::default()
    }

    /// Every text through `f` (the scrubber): hosts and names come from user input.
    pub fn map_text(self, f: impl Fn(&str) -> String) -> Facts {
        let opt = |o: Option<String>| o.map(|s| f(&s));
        Facts {
            arn: opt(self.arn),
            account: opt(self.account),
            atlas_user_arn: opt(self.atlas_user_arn),
            clock_offset_s: self.clock_offset_s,
            expiration: opt(self.expiration),
            srv_name: opt(self.srv_name),
            srv_service_name: opt(self.srv_service_name),
            srv_max_hosts: self.srv_max_hosts,
            srv_records: self.srv_records,
            nameservers: self.nameservers.iter().map(|s| f(s)).collect(),
            txt_options: self.txt_options.iter().map(|s| f(s)).collect(),
            hosts: self.hosts.into_iter().map(|h| h.map_text(&f)).collect(),
            mechanism: opt(self.mechanism),
            ready_ms: self.ready_ms,
            database: opt(self.database),
            atlas: self.atlas.map(|a| a.map_text(&f)),
            median_ms: self.median_ms,
        }
    }
}

/// One host's facts, from the stages that check hosts one by one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct HostFacts {
    /// `host:port`, as the seed list names it.
    pub host: String,
    /// dns and tcp: the addresses the system resolver gave, in its order (the order they are
    /// tried). At dns, empty for SRV targets, which are resolved when connecting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// tcp: the address families among them (`ipv4`, `ipv6`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<String>,
    /// tcp: the addresses tried (`ip:port`), in order, up to the one connected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tried: Vec<String>,
    /// tcp: the address connected to (`ip:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// tcp: time to connect (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// tls: the protocol version, e.g. `"1.3"` (absent with TLS off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// tls: the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// tls: time of the handshake (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<f64>,
    /// tls: the server's certificate (absent with TLS off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateFacts>,
    /// tls: time of the hello exchange (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hello_ms: Option<f64>,
    /// tls: `maxWireVersion` from the server's hello.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wire_version: Option<i32>,
    /// tls: the server's version, from buildInfo (sent with the hello, before authentication).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// tls: the replica set's name, when the server is a member of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_set: Option<String>,
    /// tls: the hosts this server's hello names (`hosts`, `passives`, `arbiters`, `primary`):
    /// where the driver goes next, unless the connection is direct or load-balanced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub announced_hosts: Vec<String>,
}

impl HostFacts {
    pub fn new(host: impl Into<String>) -> Self {
        HostFacts {
            host: host.into(),
            ..Default::default()
        }
    }

    fn map_text(self, f: &impl Fn(&str) -> String) -> HostFacts {
        let opt = |o: Option<String>| o.map(|s| f(&s));
        HostFacts {
            host: f(&self.host),
            addresses: self.addresses.iter().map(|s| f(s)).collect(),
            tried: self.tried.iter().map(|s| f(s)).collect(),
            address: opt(self.address),
            tls_version: opt(self.tls_version),
            cipher_suite: opt(self.cipher_suite),
            certificate: self.certificate.map(|c| CertificateFacts {
                subject: f(&c.subject),
                issuer: f(&c.issuer),
                not_before: f(&c.not_before),
                not_after: f(&c.not_after),
                dns_names: c.dns_names.iter().map(|s| f(s)).collect(),
            }),
            server_version: opt(self.server_version),
            replica_set: opt(self.replica_set),
            announced_hosts: self.announced_hosts.iter().map(|h| f(h)).collect(),
            ..self
        }
    }
}

/// The project as the Atlas Admin API shows it (the `atlas` stage).
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AtlasFacts {
    pub project_id: String,
    /// The project's database users with an AWS IAM type.
    pub database_users: Vec<AtlasUserFacts>,
    /// The database user Atlas will find for the caller, when registered as it looks it up.
    pub matched_user: Option<String>,
    /// The cluster whose connection strings name the target's hosts.
    pub cluster: Option<AtlasClusterFacts>,
    /// The IP access list: `CIDR (comment)`, an address or a security group.
    pub access_list: Vec<String>,
    /// Read only after Atlas refused the authentication: what Atlas's own records say of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<AtlasRefusalFacts>,
}

/// Atlas's own records of a refused authentication: the cluster's change status, the project's
/// LDAP authorization and the attempt in the cluster's database access history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AtlasRefusalFacts {
    /// The cluster's `changeStatus`: `APPLIED`, or `PENDING` while a change (a database user
    /// created a moment ago) is not yet deployed. Absent when not read.
    pub change_status: Option<String>,
    /// Whether the project has LDAP authorization on (AWS IAM users cannot authenticate then).
    /// Absent when not read (it needs Project Owner).
    pub ldap_authorization: Option<bool>,
    /// The database access history: `read`, `forbidden` (the key's role may not read it),
    /// `not_kept` (M0 and Flex clusters have none) or `unavailable` (the API did not answer).
    pub access_history: String,
    /// The refused attempt found in the history: when, from where, Atlas's reason and the
    /// server's log line.
    pub attempt_at: Option<String>,
    pub attempt_ip: Option<String>,
    pub failure_reason: Option<String>,
    pub log_line: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AtlasUserFacts {
    pub arn: String,
    /// `USER` or `ROLE`.
    pub iam_type: String,
    /// `role@db` or `role@db.collection`.
    pub roles: Vec<String>,
    /// The clusters it is restricted to; empty: every cluster of the project.
    pub scopes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AtlasClusterFacts {
    pub name: String,
    /// `IDLE`, `CREATING`, `UPDATING`, …
    pub state: Option<String>,
    pub paused: bool,
    pub mongodb_version: Option<String>,
    /// `AWS`, `GCP`, `AZURE`.
    pub provider: Option<String>,
}

impl AtlasFacts {
    fn map_text(self, f: &impl Fn(&str) -> String) -> AtlasFacts {
        let all = |v: Vec<String>| v.iter().map(|s| f(s)).collect::<Vec<_>>();
        AtlasFacts {
            project_id: f(&self.project_id),
            database_users: self
                .database_users
                .into_iter()
                .map(|u| AtlasUserFacts {
                    arn: f(&u.arn),
                    iam_type: f(&u.iam_type),
                    roles: all(u.roles),
                    scopes: all(u.scopes),
                })
                .collect(),
            matched_user: self.matched_user.map(|u| f(&u)),
            cluster: self.cluster.map(|c| AtlasClusterFacts {
                name: f(&c.name),
                state: c.state.map(|s| f(&s)),
                mongodb_version: c.mongodb_version.map(|s| f(&s)),
                provider: c.provider.map(|s| f(&s)),
                ..c
            }),
            access_list: all(self.access_list),
            refusal: self.refusal.map(|r| AtlasRefusalFacts {
                change_status: r.change_status.map(|s| f(&s)),
                access_history: f(&r.access_history),
                attempt_at: r.attempt_at.map(|s| f(&s)),
                attempt_ip: r.attempt_ip.map(|s| f(&s)),
                failure_reason: r.failure_reason.map(|s| f(&s)),
                log_line: r.log_line.map(|s| f(&s)),
                ..r
            }),
        }
    }
}

/// The server's (leaf) certificate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CertificateFacts {
    /// The subject's distinguished name, e.g. `CN=*.ab12c.mongodb.net`.
    pub subject: String,
    pub issuer: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339: when the certificate expires.
    pub not_after: String,
    /// The DNS names of its subject alternative names.
    pub dns_names: Vec<String>,
}

/// Where the credentials in use came from, without the secrets.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct CredentialInfo {
    /// e.g. `environment`, `profile dev`, `assumed role arn:… (from environment)`
    pub source: String,
    /// Masked: `ASIA…WXYZ`.
    pub access_key_id: String,
    pub temporary: bool,
    /// RFC 3339, when the credentials expire.
    pub expiration: Option<String>,
    /// The credential sources present here, in the AWS SDK's order (instance metadata only when
    /// it answered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<String>,
    /// `--driver`: the driver whose sources and rules were followed, e.g. `the Go driver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

/// The Atlas database user that Atlas will look up for an identity.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AtlasUser {
    pub arn: String,
    /// `ROLE` or `USER`, as the Atlas CLI's `--awsIAMType` takes it.
    pub iam_type: String,
    /// The Atlas CLI command that creates this database user.
    pub create_command: String,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
    pub atlas_user: Option<AtlasUser>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One pitfall found in a connection string.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub hint: String,
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct UriReport {
    /// The connection string; redacted unless `--show-secrets`.
    pub uri: String,
    pub srv: bool,
    /// The hosts as written (a mongodb+srv string has one: the SRV name).
    pub hosts: Vec<String>,
    /// The database, decoded.
    pub database: Option<String>,
    /// The options in force as the specifications read them (`name=value`, the specification's
    /// spelling, values decoded, secrets redacted); the ones drivers ignore are findings.
    pub options: Vec<String>,
    pub embedded_credentials: bool,
    /// RFC 3339, when credentials embedded in the string expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_expire: Option<String>,
    pub findings: Vec<Finding>,
}

/// One try of `--wait`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Try {
    /// From 1.
    pub number: u32,
    /// When it began, in ms from the first try's start.
    pub started_ms: u64,
    pub elapsed_ms: u64,
    pub ok: bool,
    pub exit_code: i32,
    /// The stage that failed, and its diagnosis kind.
    pub failed_stage: Option<Stage>,
    pub kind: Option<Kind>,
    /// With `--atlas`, after a refusal: the cluster's `changeStatus` (`PENDING`, `APPLIED`).
    pub change_status: Option<String>,
}

impl Try {
    /// The try that gave `report`.
    pub fn of(
        report: &Report,
        number: u32,
        started: std::time::Duration,
        ended: std::time::Duration,
    ) -> Try {
        let failed = report.first_failure();
        let change_status = report
            .stage(Stage::Atlas)
            .and_then(|s| s.facts.atlas.as_ref())
            .and_then(|a| a.refusal.as_ref())
            .and_then(|r| r.change_status.clone());
        Try {
            number,
            started_ms: started.as_millis() as u64,
            elapsed_ms: ended.saturating_sub(started).as_millis() as u64,
            ok: report.ok,
            exit_code: report.exit_code,
            failed_stage: failed.map(|s| s.stage),
            kind: failed.and_then(|s| s.diagnosis.as_ref()).map(|d| d.kind),
            change_status,
        }
    }
}

/// Where roundtrip's probe documents may remain, and their `_id`s (hex).
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Leftover {
    pub database: String,
    pub collection: String,
    pub ids: Vec<String>,
}

/// The version of the JSON report's shape.
pub const SCHEMA_VERSION: u32 = 1;

/// The report of one run: what `--format json` prints, as one document, also on failure.
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// The version of this document's shape (schema/report.schema.json): raised when a field
    /// changes meaning or goes away; fields may be added within a version.
    pub schema_version: u32,
    pub command: CommandName,
    pub ok: bool,
    pub exit_code: i32,
    /// The target connection string or cluster, always redacted.
    pub target: Option<String>,
    /// `--driver` or `--app`: the application's driver whose sources and rules the check
    /// followed, as `--driver` takes it (`node@6.9`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    pub credentials: Option<CredentialInfo>,
    pub identity: Option<Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<UriReport>,
    pub stages: Vec<StageResult>,
    /// Latencies of the command stage (ping, list-collections, roundtrip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Probe documents of `roundtrip` that may remain (a delete failed or removed nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leftover: Option<Leftover>,
    /// With `--wait`: every try, the last one being this report's own stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries: Option<Vec<Try>>,
    /// Added by the Lambda function (`bootstrap`): what only a Lambda knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<LambdaFacts>,
    /// What the command writes to stdout besides the report (the credentials of `assume`, the
    /// connection string of `uri`). Never serialised into the report.
    #[serde(skip)]
    pub payload: Option<Secret<String>>,
}

/// The Lambda function's facts, from its environment (the Runtime API's variables).
#[derive(Clone, Debug, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LambdaFacts {
    pub function_name: Option<String>,
    pub function_version: Option<String>,
    pub memory_mb: Option<u64>,
    pub region: Option<String>,
    /// The first invocation of this execution environment.
    pub cold_start: bool,
    /// How many invocations this execution environment has served, this one included.
    pub invocation: u64,
    /// Whether the function runs in a VPC, as its template says (`ATLAS_IAM_LAMBDA_VPC`):
    /// Lambda's environment does not tell.
    pub vpc: Option<bool>,
    /// Time left before the invocation's deadline when it began (ms).
    pub time_left_ms: u64,
    /// The invocation's time in the function (ms).
    pub elapsed_ms: u64,
}

impl Report {
    pub fn new(command: CommandName) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            command,
            ok: true,
            exit_code: 0,
            target: None,
            driver: None,
            credentials: None,
            identity: None,
            uri: None,
            stages: Vec::new(),
            latency: None,
            leftover: None,
            tries: None,
            lambda: None,
            payload: None,
        }
    }

    /// Says why `--wait` stopped trying, in the failed stage's hint.
    pub fn note_tries(&mut self, why: &str) {
        let failed = self
            .stages
            .iter_mut()
            .find(|s| s.status == Status::Failed)
            .and_then(|s| s.diagnosis.as_mut());
        if let Some(d) = failed {
            d.hint = format!("{} ({why})", d.hint);
        }
    }

    /// A stage's result, looked up by stage (never by position).
    pub fn stage(&self, stage: Stage) -> Option<&StageResult> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    pub fn stage_mut(&mut self, stage: Stage) -> Option<&mut StageResult> {
        self.stages.iter_mut().find(|s| s.stage == stage)
    }

    /// The first failed stage, whose diagnosis decides the exit code.
    pub fn first_failure(&self) -> Option<&StageResult> {
        self.stages.iter().find(|s| s.status == Status::Failed)
    }

    /// Sets `ok` and `exit_code` from the stages: the first failed stage decides, except that an
    /// internal fault is always 1.
    pub fn conclude(&mut self) {
        let status = match self.first_failure() {
            None => ExitStatus::Ok,
            Some(stage) => match &stage.diagnosis {
                Some(d) => exit_status(stage.stage, d.kind),
                None => ExitStatus::Internal,
            },
        };
        self.ok = status == ExitStatus::Ok;
        self.exit_code = status.code();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnosis::{Diagnosis, Kind};

    fn failed_at(stage: Stage, kind: Kind) -> Report {
        let mut r = Report::new(CommandName::Ping);
        r.stages.push(StageResult {
            stage,
            status: Status::Failed,
            elapsed_ms: 1,
            detail: String::new(),
            warnings: vec![],
            diagnosis: Some(Diagnosis::new(kind, "c", "h")),
            facts: Default::default(),
        });
        r.conclude();
        r
    }

    #[test]
    fn the_failed_stage_decides_the_exit_code() {
        for (stage, code) in [
            (Stage::Config, 3),
            (Stage::Credentials, 3),
            (Stage::Assume, 4),
            (Stage::Identity, 4),
            (Stage::Dns, 5),
            (Stage::Tcp, 5),
            (Stage::Tls, 5),
            (Stage::Auth, 6),
            (Stage::Command, 7),
        ] {
            assert_eq!(
                failed_at(stage, Kind::ClockSkew).exit_code,
                code,
                "{stage:?}"
            );
        }
        assert_eq!(failed_at(Stage::Auth, Kind::Internal).exit_code, 1);
        let mut ok = Report::new(CommandName::Ping);
        ok.conclude();
        assert_eq!((ok.ok, ok.exit_code), (true, 0));
    }
}
