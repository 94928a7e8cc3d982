//! atlas-iam as a library: `run` takes the parsed command line and returns the `Report` that the
//! renderers print. Failures are data: a failed stage carries a diagnosis, later stages are
//! skipped, and the exit code follows the first failed stage.

pub mod arn;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod diagnosis;
pub mod envfile;
pub mod probe;
pub mod render;
pub mod report;
pub mod secret;
pub mod uri;

use std::future::Future;
use std::time::{Duration, Instant as StdInstant, SystemTime};

use aws_credential_types::Credentials;
use tokio::time::Instant;

use crate::arn::{caller_kind, CallerKind};
use crate::cli::{AssumeOutput, Cli, Command};
use crate::config::{Config, Target};
use crate::credentials::{rfc3339, Resolved};
use crate::diagnosis::{Diagnosis, Kind};
use crate::envfile::EnvFile;
use crate::probe::driver::{IdentityFacts, ProbeCommand};
use crate::report::{
    AtlasUser, CredentialInfo, Identity, Report, Severity, Stage, StageResult, Status, UriReport,
};
use crate::secret::{Scrubber, Secret};

/// What a stage that passed hands on, and says about itself.
pub struct Passed<T> {
    pub value: T,
    pub detail: String,
    pub warnings: Vec<String>,
}

impl<T> Passed<T> {
    pub fn new(value: T, detail: impl Into<String>) -> Self {
        Passed {
            value,
            detail: detail.into(),
            warnings: Vec::new(),
        }
    }

    pub fn warn(mut self, warnings: impl IntoIterator<Item = String>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}

/// Runs stages in order under one deadline, recording each in the report.
struct Runner {
    report: Report,
    plan: Vec<Stage>,
    deadline: Instant,
    scrubber: Scrubber,
    /// Show the stage under way on stderr (a terminal only).
    progress: bool,
}

impl Runner {
    fn new(command: &str, timeout: Duration) -> Self {
        Runner {
            report: Report::new(command),
            plan: vec![Stage::Config],
            deadline: Instant::now() + timeout,
            scrubber: credentials::env_scrubber(),
            progress: false,
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    async fn stage<T>(
        &mut self,
        stage: Stage,
        work: impl Future<Output = Result<Passed<T>, Diagnosis>>,
    ) -> Option<T> {
        let started = Instant::now();
        if self.progress {
            eprint!("\r  … {:<12}", stage.name());
        }
        let outcome = tokio::time::timeout_at(self.deadline, work).await;
        if self.progress {
            eprint!("\r\x1b[2K");
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let (status, detail, warnings, diagnosis, value) = match outcome {
            Ok(Ok(p)) => {
                let status = if p.warnings.is_empty() {
                    Status::Passed
                } else {
                    Status::Warning
                };
                (status, p.detail, p.warnings, None, Some(p.value))
            }
            Ok(Err(d)) => (Status::Failed, String::new(), Vec::new(), Some(d), None),
            Err(_) => (
                Status::Failed,
                String::new(),
                Vec::new(),
                Some(timeout_diagnosis(stage)),
                None,
            ),
        };
        let scrub = |s: String| self.scrubber.scrub(&s);
        let diagnosis = diagnosis.map(|d| Diagnosis {
            kind: d.kind,
            cause: scrub(d.cause),
            hint: scrub(d.hint),
        });
        let result = StageResult {
            stage,
            status,
            elapsed_ms,
            detail: scrub(detail),
            warnings: warnings.into_iter().map(scrub).collect(),
            diagnosis,
        };
        self.report.stages.push(result);
        value
    }

    /// Marks what was planned and not run as skipped, and sets the exit code.
    fn finish(mut self) -> Report {
        for stage in self.plan.clone() {
            if !self.report.stages.iter().any(|s| s.stage == stage) {
                self.report.stages.push(StageResult {
                    stage,
                    status: Status::Skipped,
                    elapsed_ms: 0,
                    detail: String::new(),
                    warnings: Vec::new(),
                    diagnosis: None,
                });
            }
        }
        self.report.conclude();
        self.report
    }
}

fn timeout_diagnosis(stage: Stage) -> Diagnosis {
    let (kind, what, hint) = match stage {
        Stage::Credentials => (
            Kind::CredentialsTimeout,
            "resolving AWS credentials (instance metadata, a container endpoint, SSO or a \
             credential_process may hang)",
            "check the credential source, or raise --timeout",
        ),
        Stage::Assume | Stage::Identity => {
            (Kind::StsTimeout, "waiting for STS", "check the network path to STS, or raise --timeout")
        }
        Stage::Dns => (Kind::DnsTimeout, "waiting for DNS", "give another resolver with --dns-server IP"),
        Stage::Tcp => (Kind::TcpTimeout, "connecting", "check firewalls between here and the cluster"),
        Stage::Tls => (Kind::TlsTimeout, "in the TLS handshake or the hello", "check the host and port"),
        Stage::Auth => (
            Kind::ServerSelection,
            "the driver connected and authenticated",
            "the cluster is slow or unreachable for the driver: raise --timeout or check the network",
        ),
        Stage::Command => (Kind::CommandFailed, "the command ran", "raise --timeout, or lower --count"),
        Stage::Config => (Kind::Internal, "reading the configuration", "report this"),
    };
    Diagnosis::new(kind, format!("--timeout ran out while {what}"), hint)
}

/// Runs one command to its report. Never panics on bad input; every failure is a stage.
pub async fn run(cli: &Cli, env_file: &EnvFile) -> Report {
    run_with_progress(cli, env_file, false).await
}

/// `run`, showing the stage under way on stderr when `progress` (the binary sets it only when
/// stderr is a terminal and the report is human text on stdout).
pub async fn run_with_progress(cli: &Cli, env_file: &EnvFile, progress: bool) -> Report {
    let mut runner = Runner::new(cli.command.name(), Duration::from_secs(cli.global.timeout));
    runner.progress = progress;
    // Before the config stage, so that even a refused URI is shown (redacted) and scrubbed.
    if let Some(uri) = &cli.global.uri {
        runner.report.target = Some(uri::redact(uri));
        if let Ok(p) = uri::ParsedUri::parse(uri) {
            for secret in p.secrets() {
                runner.scrubber.add_secret(&secret);
            }
        }
    }
    let env_file = env_file.clone();
    let cfg = runner
        .stage(Stage::Config, async move {
            let config_ok = Config::from_args(&cli.global, &config::process_env)?;
            if let EnvFile::Failed(d) = env_file {
                return Err(d);
            }
            let mut detail = describe_target(&config_ok);
            if let EnvFile::Loaded {
                path,
                set,
                overridden,
            } = &env_file
            {
                detail.push_str(&format!(
                    "; env file {} ({set} set, {overridden} already in the environment)",
                    path.display()
                ));
            }
            if !config_ok.notes.is_empty() {
                detail.push_str(&format!("; {}", config_ok.notes.join(", ")));
            }
            let warnings = config_ok.warnings.clone();
            Ok(Passed::new(config_ok, detail).warn(warnings))
        })
        .await;
    let Some(cfg) = cfg else {
        return runner.finish();
    };
    // The target as the config resolved it (flags, variables, aliases, env file).
    runner.report.target = match &cfg.target {
        Target::None => None,
        Target::Cluster(c) => Some(match c.port {
            Some(p) => format!("{}:{p}", c.host),
            None => c.host.clone(),
        }),
        Target::Uri(u) => Some(uri::redact(u.expose())),
    };
    match &cli.command {
        Command::Whoami => whoami(&mut runner, &cfg).await,
        Command::Assume { output } => assume(&mut runner, &cfg, *output).await,
        Command::Uri { embed_credentials } => {
            uri_command(&mut runner, &cfg, *embed_credentials).await
        }
        Command::Ping { repeat } => {
            let t = cli.global.timeout;
            probe(
                &mut runner,
                &cfg,
                ProbeCommand::Ping,
                "atlas_iam_probe",
                repeat,
                t,
            )
            .await;
        }
        Command::ListCollections => {
            let once = cli::Repeat {
                count: 1,
                interval: 0.0,
            };
            let t = cli.global.timeout;
            let c = ProbeCommand::ListCollections;
            probe(&mut runner, &cfg, c, "atlas_iam_probe", &once, t).await;
        }
        Command::Roundtrip { collection, repeat } => {
            let t = cli.global.timeout;
            probe(
                &mut runner,
                &cfg,
                ProbeCommand::Roundtrip,
                collection,
                repeat,
                t,
            )
            .await;
        }
    }
    runner.finish()
}

fn describe_target(cfg: &Config) -> String {
    let target = match &cfg.target {
        Target::None => "no target".to_string(),
        Target::Cluster(c) => match c.port {
            Some(p) => format!("cluster {}:{p}", c.host),
            None => format!("cluster {}", c.host),
        },
        Target::Uri(u) => format!("uri {}", uri::redact(u.expose())),
    };
    let mut s = format!("{target}; database {}", cfg.db);
    if let Some(r) = &cfg.role {
        s.push_str(&format!("; role {}", r.arn.arn));
    }
    s
}

/// The final credentials and how the report describes them.
struct InUse {
    creds: Credentials,
    source: String,
}

/// credentials, then assume when a role is given: the stages every AWS command starts with.
async fn credentials_stages(runner: &mut Runner, cfg: &Config) -> Option<(Resolved, InUse)> {
    runner.plan.push(Stage::Credentials);
    if cfg.role.is_some() {
        runner.plan.push(Stage::Assume);
    }
    let resolved = runner
        .stage(Stage::Credentials, async {
            let r = credentials::resolve(cfg).await?;
            let mut detail = format!(
                "{}: {}, {}",
                r.source,
                r.masked_key_id(),
                match (r.temporary(), r.creds.access_key_id().starts_with("ASIA")) {
                    (true, _) => "temporary",
                    (false, true) => "temporary key without a session token",
                    (false, false) => "long-term",
                }
            );
            if let Some(exp) = r.creds.expiry() {
                detail.push_str(&format!(", expires {}", rfc3339(exp)));
            }
            detail.push_str(&format!("; region {}", r.region));
            let warnings = r.warnings.clone();
            Ok(Passed::new(r, detail).warn(warnings))
        })
        .await?;
    resolved.add_to(&mut runner.scrubber);

    let Some(role) = &cfg.role else {
        let in_use = InUse {
            creds: resolved.creds.clone(),
            source: resolved.source.clone(),
        };
        return Some((resolved, in_use));
    };
    let budget = runner.remaining();
    let assumed = runner
        .stage(Stage::Assume, async {
            let sdk = credentials::sdk_config(&resolved, resolved.creds.clone(), budget).await;
            let a = credentials::assume_role(&sdk, &resolved, role).await?;
            let mut detail = a.arn.clone();
            if let Some(exp) = a.expiration {
                detail.push_str(&format!(", expires {}", rfc3339(exp)));
            }
            Ok(Passed::new(a, detail))
        })
        .await?;
    credentials::add_credentials(&mut runner.scrubber, &assumed.creds);
    let in_use = InUse {
        creds: assumed.creds.clone(),
        source: format!("assumed role {} (from {})", role.arn.arn, resolved.source),
    };
    runner.report.identity = Some(identity_of(&assumed.arn, "", &cfg.db, String::new()));
    Some((resolved, in_use))
}

fn credential_info(in_use: &InUse) -> CredentialInfo {
    CredentialInfo {
        source: in_use.source.clone(),
        access_key_id: secret::mask_key_id(in_use.creds.access_key_id()),
        temporary: in_use.creds.session_token().is_some()
            || in_use.creds.access_key_id().starts_with("ASIA"),
        expiration: in_use.creds.expiry().map(rfc3339),
    }
}

/// The identity STS reports, with the Atlas database user it maps to.
fn identity_of(arn: &str, account: &str, db: &str, user_id: String) -> Identity {
    let account = if account.is_empty() {
        arn.split(':').nth(4).unwrap_or_default().to_string()
    } else {
        account.to_string()
    };
    let mut notes = Vec::new();
    let atlas_user = match caller_kind(arn) {
        CallerKind::AssumedRole { role_arn, .. } => {
            notes.push(format!(
                "STS session ARNs do not show a role's path: Atlas looks up {role_arn}, so \
                 register that ARN even if the role was created with a path"
            ));
            Some(atlas_user(&role_arn, "ROLE", db))
        }
        CallerKind::User { user_arn } => Some(atlas_user(&user_arn, "USER", db)),
        CallerKind::Other => {
            notes.push(format!(
                "Atlas cannot map {arn} to a database user: use an IAM user or an IAM role"
            ));
            None
        }
    };
    Identity {
        account,
        arn: arn.to_string(),
        user_id,
        atlas_user,
        notes,
    }
}

fn atlas_user(arn: &str, iam_type: &str, db: &str) -> AtlasUser {
    AtlasUser {
        arn: arn.to_string(),
        iam_type: iam_type.to_string(),
        create_command: format!(
            "atlas dbusers create --username {arn} --awsIAMType {iam_type} --role readWrite@{db}"
        ),
    }
}

async fn whoami(runner: &mut Runner, cfg: &Config) {
    runner.plan.extend([Stage::Credentials, Stage::Identity]);
    let Some((resolved, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.report.credentials = Some(credential_info(&in_use));
    identity_stage(runner, cfg, &resolved, &in_use).await;
}

/// GetCallerIdentity with the credentials in use: the ARN Atlas will see, the database user it
/// maps to, and the clock offset from STS's Date header.
async fn identity_stage(
    runner: &mut Runner,
    cfg: &Config,
    resolved: &Resolved,
    in_use: &InUse,
) -> Option<IdentityFacts> {
    let budget = runner.remaining();
    let db = cfg.db.clone();
    let (identity, offset) = runner
        .stage(Stage::Identity, async {
            let sdk = credentials::sdk_config(resolved, in_use.creds.clone(), budget).await;
            let who = credentials::caller_identity(&sdk).await.map_err(|f| {
                credentials::classify(
                    &f,
                    &credentials::KeyFacts::of(&in_use.creds, &in_use.source),
                    "GetCallerIdentity",
                    &credentials::sts_endpoint(&resolved.region),
                )
            })?;
            let identity = identity_of(&who.arn, &who.account, &db, who.user_id.clone());
            let mut detail = match &identity.atlas_user {
                Some(u) => format!("{} -> Atlas user {} ({})", who.arn, u.arn, u.iam_type),
                None => who.arn.clone(),
            };
            let mut warnings = if identity.atlas_user.is_none() { identity.notes.clone() } else { Vec::new() };
            if let Some(o) = who.clock_offset {
                detail.push_str(&format!("; clock offset {o:+} s"));
                if o.abs() >= probe::driver::SKEW_SUSPECT_SECS {
                    let (mins, dir) = (o.abs() / 60, if o > 0 { "ahead of" } else { "behind" });
                    warnings.push(format!(
                        "this machine's clock is {mins} minutes {dir} STS's: the AWS SDK corrects for it, \
                         but MONGODB-AWS signatures from drivers do not, and STS refuses them beyond 15 minutes"
                    ));
                }
            }
            Ok(Passed::new((identity, who.clock_offset), detail).warn(warnings))
        })
        .await?;
    let facts = IdentityFacts {
        caller_arn: Some(identity.arn.clone()),
        atlas_user_arn: identity.atlas_user.as_ref().map(|u| u.arn.clone()),
        iam_type: identity.atlas_user.as_ref().map(|u| u.iam_type.clone()),
        assumed_role: matches!(caller_kind(&identity.arn), CallerKind::AssumedRole { .. }),
        clock_offset: offset,
    };
    runner.report.identity = Some(identity);
    Some(facts)
}

/// A network stage's share of the run: a quarter of --timeout, at least 2 s, never past the end.
fn share(runner: &Runner, timeout_secs: u64) -> Duration {
    let quarter = Duration::from_secs(timeout_secs)
        .div_f64(4.0)
        .max(Duration::from_secs(2));
    quarter.min(runner.remaining())
}

/// ping, list-collections, roundtrip: every stage; returns None where a stage failed.
async fn probe(
    runner: &mut Runner,
    cfg: &Config,
    command: ProbeCommand,
    collection: &str,
    repeat: &cli::Repeat,
    timeout_secs: u64,
) -> Option<()> {
    runner.plan.extend([Stage::Credentials]);
    if cfg.role.is_some() {
        runner.plan.push(Stage::Assume);
    }
    runner.plan.extend([
        Stage::Identity,
        Stage::Dns,
        Stage::Tcp,
        Stage::Tls,
        Stage::Auth,
        Stage::Command,
    ]);
    let needed = repeat.interval * f64::from(repeat.count.saturating_sub(1));
    if needed >= timeout_secs as f64 {
        fail_config(runner, Diagnosis::new(
            Kind::InvalidConfig,
            format!("--count {} with --interval {} needs about {needed:.0} s, and --timeout is {timeout_secs} s",
                repeat.count, repeat.interval),
            format!("raise --timeout above {:.0}", needed + 30.0),
        ));
        return None;
    }
    let target = match probe::target(cfg) {
        Ok((t, warnings)) => {
            if let Some(stage) = runner
                .report
                .stages
                .iter_mut()
                .find(|s| s.stage == Stage::Config)
            {
                if !warnings.is_empty() {
                    stage.status = Status::Warning;
                    stage.warnings.extend(warnings);
                }
            }
            t
        }
        Err(d) => {
            fail_config(runner, d);
            return None;
        }
    };
    let (resolved, in_use) = credentials_stages(runner, cfg).await?;
    runner.report.credentials = Some(credential_info(&in_use));
    let facts = identity_stage(runner, cfg, &resolved, &in_use).await?;

    let budget = share(runner, timeout_secs);
    let hosts = runner
        .stage(
            Stage::Dns,
            probe::dns::stage(&target, cfg.dns_server, budget),
        )
        .await?;
    let budget = share(runner, timeout_secs);
    runner
        .stage(Stage::Tcp, probe::net::tcp_stage(&hosts.hosts, budget))
        .await?;
    let budget = share(runner, timeout_secs);
    runner
        .stage(
            Stage::Tls,
            probe::net::tls_stage(&hosts.hosts, target.tls, target.ca_file.as_deref(), budget),
        )
        .await?;
    let budget = runner.remaining();
    let started = StdInstant::now();
    let session = runner
        .stage(
            Stage::Auth,
            probe::driver::auth_stage(&target, &hosts, in_use.creds.clone(), &facts, budget),
        )
        .await?;
    let cold = started.elapsed();
    let opts = probe::driver::CommandOptions {
        command,
        collection: collection.to_string(),
        count: repeat.count,
        interval: Duration::from_secs_f64(repeat.interval),
    };
    let latency = runner
        .stage(
            Stage::Command,
            probe::driver::command_stage(&session, &opts, cold, &facts),
        )
        .await;
    runner.report.latency = latency;
    // Close the driver's connections within the bound; what does not close is dropped.
    let _ = tokio::time::timeout(Duration::from_millis(500), session.client.shutdown()).await;
    Some(())
}

async fn assume(runner: &mut Runner, cfg: &Config, output: AssumeOutput) {
    if cfg.role.is_none() {
        runner.plan.extend([Stage::Credentials, Stage::Assume]);
        fail_config(
            runner,
            Diagnosis::new(
                Kind::InvalidConfig,
                "assume needs a role to assume",
                "give --role-arn ARN (or set ATLAS_IAM_ROLE_ARN or MONGODB_ACCESS_ROLE_ARN)",
            ),
        );
        return;
    }
    let Some((_, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.report.credentials = Some(credential_info(&in_use));
    runner.report.payload = Some(Secret::new(format_credentials(&in_use.creds, output)));
}

/// The credentials of `assume` in the chosen shape.
pub fn format_credentials(creds: &Credentials, output: AssumeOutput) -> String {
    let expiration = creds.expiry().map(rfc3339);
    let mut vars = vec![
        ("AWS_ACCESS_KEY_ID", creds.access_key_id().to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            creds.secret_access_key().to_string(),
        ),
    ];
    if let Some(t) = creds.session_token() {
        vars.push(("AWS_SESSION_TOKEN", t.to_string()));
    }
    if let Some(e) = &expiration {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", e.clone()));
    }
    match output {
        AssumeOutput::Env => vars
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
            .collect(),
        AssumeOutput::Dotenv => vars
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"\n", v.replace('\\', r"\\").replace('"', "\\\"")))
            .collect(),
        AssumeOutput::Json => {
            let mut doc = serde_json::json!({
                "Version": 1,
                "AccessKeyId": creds.access_key_id(),
                "SecretAccessKey": creds.secret_access_key(),
            });
            if let Some(t) = creds.session_token() {
                doc["SessionToken"] = t.into();
            }
            if let Some(e) = expiration {
                doc["Expiration"] = e.into();
            }
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    }
}

async fn uri_command(runner: &mut Runner, cfg: &Config, embed: bool) {
    // What the string is built from, or the string to check: decided in the config stage.
    let (base, parsed_findings) = match &cfg.target {
        Target::None => {
            fail_config(
                runner,
                Diagnosis::new(
                    Kind::MissingTarget,
                    "uri needs a cluster or a connection string",
                    "give --cluster HOST (or ATLAS_IAM_CLUSTER, AWS_MONGO_CLUSTER_URL, \
                     MONGODB_CLUSTER_NAME), or --uri URI (or MONGODB_URI) to check one",
                ),
            );
            return;
        }
        Target::Cluster(c) => (uri::ParsedUri::parse(&uri::build(c, &cfg.db, None)), None),
        Target::Uri(u) => match uri::check(u.expose()) {
            Ok((parsed, found)) => (Ok(parsed), Some(found)),
            Err(d) => (Err(d), None),
        },
    };
    let parsed = match base {
        Ok(p) => p,
        Err(d) => {
            fail_config(runner, d);
            return;
        }
    };
    if let Some(found) = &parsed_findings {
        let errors: Vec<_> = found
            .iter()
            .filter(|f| matches!(f.severity, Severity::Error))
            .collect();
        // Embedding replaces the credentials, so pitfalls of the old ones do not count then.
        let errors: Vec<_> = errors
            .into_iter()
            .filter(|f| !(embed && uri::is_credential_finding(&f.code)))
            .collect();
        if !errors.is_empty() {
            let cause = errors
                .iter()
                .map(|f| f.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let hint = errors
                .iter()
                .map(|f| f.hint.clone())
                .collect::<Vec<_>>()
                .join("; ");
            runner.report.uri = Some(uri_report(&parsed, cfg, found.clone(), None));
            fail_config(runner, Diagnosis::new(Kind::UriPitfall, cause, hint));
            return;
        }
        let warnings: Vec<String> = found
            .iter()
            .filter(|f| !(embed && uri::is_credential_finding(&f.code)))
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        if let Some(last) = runner.report.stages.last_mut() {
            if !warnings.is_empty() {
                last.status = Status::Warning;
                last.warnings.extend(warnings);
            }
        }
    }

    if !embed {
        let found = parsed_findings.unwrap_or_default();
        let text = match &cfg.target {
            Target::Uri(u) => u.expose().clone(),
            _ => parsed.redacted(),
        };
        runner.report.uri = Some(uri_report(&parsed, cfg, found, None));
        if matches!(cfg.target, Target::Cluster(_)) {
            runner.report.payload = Some(Secret::new(text));
        }
        return;
    }

    let Some((_, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.report.credentials = Some(credential_info(&in_use));
    let full = uri::embed(
        &parsed,
        &uri::Embedded {
            key_id: in_use.creds.access_key_id(),
            secret: in_use.creds.secret_access_key(),
            token: in_use.creds.session_token(),
        },
    );
    let embedded = match uri::ParsedUri::parse(&full) {
        Ok(p) => p,
        Err(d) => {
            fail_config(runner, d);
            return;
        }
    };
    let found = uri::findings(&embedded);
    let expires = in_use.creds.expiry();
    let mut report = uri_report(&embedded, cfg, found, expires);
    if cfg.show_secrets {
        report.uri = full.clone();
    }
    let mut warning = "current drivers reject credentials in the connection string (the Node \
        driver 7 raises an error; the Rust driver warns); use this form only with older drivers"
        .to_string();
    match expires {
        Some(t) => warning.push_str(&format!("; these credentials expire at {}", rfc3339(t))),
        None => warning.push_str("; these are long-term keys: whoever sees the string has them"),
    }
    if !cfg.show_secrets {
        warning.push_str("; the secret and token are redacted: add --show-secrets to print them");
    }
    if let Some(last) = runner.report.stages.last_mut() {
        last.status = Status::Warning;
        last.warnings.push(warning);
    }
    runner.report.uri = Some(report);
    runner.report.payload = Some(Secret::new(if cfg.show_secrets {
        full
    } else {
        embedded.redacted()
    }));
}

fn fail_config(runner: &mut Runner, d: Diagnosis) {
    let d = Diagnosis {
        kind: d.kind,
        cause: runner.scrubber.scrub(&d.cause),
        hint: runner.scrubber.scrub(&d.hint),
    };
    if let Some(stage) = runner
        .report
        .stages
        .iter_mut()
        .find(|s| s.stage == Stage::Config)
    {
        stage.status = Status::Failed;
        stage.diagnosis = Some(d);
    }
}

fn uri_report(
    p: &uri::ParsedUri,
    cfg: &Config,
    findings: Vec<report::Finding>,
    expires: Option<SystemTime>,
) -> UriReport {
    let shown = match (&cfg.target, cfg.show_secrets) {
        (Target::Uri(u), true) => u.expose().clone(),
        _ => p.redacted(),
    };
    UriReport {
        uri: shown,
        srv: p.srv,
        hosts: p.hosts.clone(),
        database: p.db.clone(),
        embedded_credentials: p.user.is_some(),
        credentials_expire: expires.map(rfc3339),
        findings,
    }
}
