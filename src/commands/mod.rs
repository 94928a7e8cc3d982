//! One pipeline per subcommand (`whoami`, `assume`, `uri`, `probe` for ping, list-collections and
//! roundtrip), and the stages they share: credentials -> assume, and identity.

pub(crate) mod assume;
pub(crate) mod probe;
pub(crate) mod uri;
pub(crate) mod whoami;

use aws_credential_types::Credentials;

use crate::config::{Config, Env, Target};
use crate::credentials::{self, rfc3339, Resolved, Source};
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::identity::{caller_kind, identity_of, CallerKind};
use crate::probe::auth::{IdentityFacts, SKEW_SUSPECT_SECS};
use crate::report::CredentialInfo;
use crate::runner::{Passed, Runner};
use crate::secret::{self, Scrubber};

/// The scrubber a run starts with: the secrets of the environment and of the connection string,
/// known before any stage can print.
pub(crate) fn initial_scrubber(env: &Env, uri: Option<&str>) -> Scrubber {
    // every secret variable of the registry (the Admin API's public key and client id are
    // identifiers, shown)
    let mut scrubber = credentials::env_scrubber(env);
    if let Some(uri) = uri {
        for secret in crate::uri::secrets_of(uri) {
            scrubber.add_secret(&secret);
        }
    }
    scrubber
}

/// The target as the report shows it: a cluster as host[:port], a URI redacted.
pub(crate) fn target_shown(cfg: &Config) -> Option<String> {
    match &cfg.target {
        Target::None => None,
        Target::Cluster(c) => Some(match c.port {
            Some(p) => format!("{}:{p}", c.host),
            None => c.host.clone(),
        }),
        Target::Uri(u) => Some(crate::uri::redact(u.expose())),
    }
}

/// The config stage's detail: the target, the database, the role, the env file, the notes.
pub(crate) fn describe(cfg: &Config) -> String {
    let target = match &cfg.target {
        Target::None => "no target".to_string(),
        Target::Cluster(_) => format!("cluster {}", target_shown(cfg).unwrap_or_default()),
        Target::Uri(_) => format!("uri {}", target_shown(cfg).unwrap_or_default()),
    };
    let mut detail = match &cfg.target_origin {
        Some(from) => format!("{target} (from {}); database {}", from.describe(), cfg.db),
        None => format!("{target}; database {}", cfg.db),
    };
    if let Some(r) = &cfg.role {
        detail.push_str(&format!("; role {}", r.arn.arn));
    }
    if let Some(env_file) = cfg.env_file.describe() {
        detail.push_str(&format!("; {env_file}"));
    }
    if !cfg.notes.is_empty() {
        detail.push_str(&format!("; {}", cfg.notes.join(", ")));
    }
    detail
}

/// The final credentials and how the report describes them.
#[derive(Clone)]
pub(crate) struct InUse {
    pub creds: Credentials,
    pub source: Source,
    /// The credential sources present, in the AWS SDK's order.
    pub present: Vec<String>,
    /// `--driver`: the driver emulated, in prose.
    pub driver: Option<String>,
}

/// credentials, then assume when a role is given: the stages every AWS command starts with.
pub(crate) async fn credentials_stages(
    runner: &mut Runner<'_>,
    cfg: &Config,
) -> Option<(Resolved, InUse)> {
    runner.plan([Stage::Credentials]);
    if cfg.role.is_some() {
        runner.plan([Stage::Assume]);
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
            let mut warnings = r.warnings.clone();
            if let Some(exp) = r.creds.expiry() {
                detail.push_str(&format!(", expires {} ({})", rfc3339(exp), time_left(exp)));
                warnings.extend(expiring(exp));
            }
            detail.push_str(&format!("; region {}", r.region));
            if let Some(d) = &cfg.driver {
                detail.push_str(&format!("; as {} reads them", d.label()));
            }
            if r.present.len() > 1 {
                detail.push_str(&format!("; present: {}", r.present.join(", ")));
            }
            // temporary keys that no one refreshes: a long-lived client fails at their expiry
            if r.source == credentials::Source::Environment
                && (r.temporary() || r.creds.access_key_id().starts_with("ASIA"))
            {
                warnings.push(
                    "temporary keys in environment variables: nothing refreshes them, so a \
                     long-lived client (a service, a warm Lambda) fails once they expire; let \
                     the application's SDK chain get them from a profile, a role or the \
                     container or instance credentials instead"
                        .to_string(),
                );
            }
            let creds = r.creds.clone();
            Ok(Passed::new(r, detail).warn(warnings).learn(&creds))
        })
        .await?;

    let Some(role) = &cfg.role else {
        let in_use = InUse {
            creds: resolved.creds.clone(),
            source: resolved.source.clone(),
            present: resolved.present.clone(),
            driver: cfg.driver.as_ref().map(|d| d.label()),
        };
        return Some((resolved, in_use));
    };
    let budget = runner.remaining();
    let assumed = runner
        .stage(Stage::Assume, async {
            let sdk = credentials::sdk_config(&resolved, resolved.creds.clone(), budget).await;
            let a = credentials::assume_role(&sdk, &resolved, role, &cfg.env).await?;
            sts_shaped(&a.creds)?;
            let mut detail = a.arn.clone();
            let mut warnings = Vec::new();
            if let Some(exp) = a.expiration {
                detail.push_str(&format!(", expires {} ({})", rfc3339(exp), time_left(exp)));
                warnings.extend(expiring(exp));
            }
            let creds = a.creds.clone();
            let facts = crate::report::Facts {
                arn: Some(a.arn.clone()),
                expiration: a.expiration.map(rfc3339),
                ..Default::default()
            };
            Ok(Passed::new(a, detail)
                .warn(warnings)
                .learn(&creds)
                .with_facts(facts))
        })
        .await?;
    let in_use = InUse {
        creds: assumed.creds.clone(),
        source: Source::AssumedRole {
            role_arn: role.arn.arn.clone(),
            from: Box::new(resolved.source.clone()),
        },
        present: resolved.present.clone(),
        driver: cfg.driver.as_ref().map(|d| d.label()),
    };
    runner.set_identity(identity_of(&assumed.arn, "", &cfg.db, String::new()));
    Some((resolved, in_use))
}

pub(crate) fn credential_info(in_use: &InUse) -> CredentialInfo {
    CredentialInfo {
        source: in_use.source.to_string(),
        access_key_id: secret::mask_key_id(in_use.creds.access_key_id()),
        temporary: in_use.creds.session_token().is_some()
            || in_use.creds.access_key_id().starts_with("ASIA"),
        expiration: in_use.creds.expiry().map(rfc3339),
        present: in_use.present.clone(),
        driver: in_use.driver.clone(),
    }
}

/// How long until `at`, for people: `58 min left`, `3 h 12 min left`, `expired 4 min ago`.
pub(crate) fn time_left(at: std::time::SystemTime) -> String {
    match at.duration_since(std::time::SystemTime::now()) {
        Ok(left) => {
            let min = left.as_secs() / 60;
            if min >= 60 {
                format!("{} h {} min left", min / 60, min % 60)
            } else {
                format!("{min} min left")
            }
        }
        Err(e) => format!("expired {} min ago", e.duration().as_secs() / 60),
    }
}

/// A warning for credentials that expire within 15 minutes: drivers count those that expire
/// within 5 minutes as expired, and fetch new ones only where the source can refresh.
pub(crate) fn expiring(at: std::time::SystemTime) -> Option<String> {
    let left = at.duration_since(std::time::SystemTime::now()).ok()?;
    (left < std::time::Duration::from_secs(15 * 60)).then(|| {
        format!(
            "these credentials expire in {} min: the drivers treat credentials that expire within \
             5 minutes as expired, and get new ones only where their source can refresh",
            left.as_secs() / 60
        )
    })
}

/// What the Admin API fetch gave, and how long it took.
pub(crate) type AtlasFetched = (
    Result<(String, crate::atlas::api::Project), crate::diagnosis::Diagnosis>,
    std::time::Duration,
);

/// Starts reading the project through the Admin API (with --atlas), beside the other stages. In
/// a probe it gets at most half of what is left of the run (and 10 s), so that a slow API never
/// takes the time the checks that decide need.
pub(crate) fn atlas_work(
    runner: &Runner<'_>,
    cfg: &Config,
    mode: crate::atlas::Mode,
) -> Option<crate::runner::Speculative<AtlasFetched>> {
    let atlas_cfg = cfg.atlas.clone()?;
    let budget = match mode {
        crate::atlas::Mode::Answer => runner.remaining(),
        crate::atlas::Mode::Preflight => {
            (runner.remaining() / 2).min(crate::timing::PREFLIGHT_BUDGET)
        }
    };
    Some(crate::runner::Speculative::spawn(async move {
        let started = std::time::Instant::now();
        let fetched = crate::atlas::fetch(atlas_cfg, budget).await;
        (fetched, started.elapsed())
    }))
}

/// The Admin API's work, bounded for a probe: it never holds a finished report. Once the probe's
/// own work is done (`done`), it gets at most `ATLAS_GRACE` more, then is a timeout.
pub(crate) fn atlas_bounded(
    work: crate::runner::Speculative<AtlasFetched>,
    done: std::sync::Arc<tokio::sync::Notify>,
) -> crate::runner::Speculative<AtlasFetched> {
    crate::runner::Speculative::spawn(async move {
        let started = std::time::Instant::now();
        let grace = async {
            done.notified().await;
            tokio::time::sleep(ATLAS_GRACE).await;
        };
        let timed_out = || {
            Err(Diagnosis::new(
                Kind::AtlasApiTimeout,
                format!(
                    "the Admin API had not answered {} s after the probe's own checks were done",
                    ATLAS_GRACE.as_secs()
                ),
                "check the network path to cloud.mongodb.com (a proxy: HTTPS_PROXY); the checks \
                 above did not wait for it",
            ))
        };
        tokio::select! {
            r = work.join() => r.unwrap_or_else(|| (
                Err(Diagnosis::new(
                    Kind::Internal,
                    "the Admin API check ended without an outcome",
                    "report this",
                )),
                started.elapsed(),
            )),
            () = grace => (timed_out(), started.elapsed()),
        }
    })
}

/// Records the atlas stage: the API's facts judged against the caller's Atlas user. In a probe
/// (Preflight) the API's own failure is a warning that keeps its diagnosis.
pub(crate) async fn atlas_settle(
    runner: &mut Runner<'_>,
    work: crate::runner::Speculative<AtlasFetched>,
    atlas_arn: Option<&str>,
    targets: &[String],
    db: &str,
    need: crate::atlas::Need,
    mode: crate::atlas::Mode,
) -> Option<crate::atlas::Analysis> {
    let judged = async {
        let (fetched, took) = work.join().await.unwrap_or_else(|| {
            (
                Err(crate::diagnosis::Diagnosis::new(
                    Kind::Internal,
                    "the Admin API check ended without an outcome",
                    "report this",
                )),
                std::time::Duration::ZERO,
            )
        });
        (
            crate::atlas::stage(fetched, atlas_arn, targets, db, need, mode),
            took,
        )
    };
    let analysis = runner.settle(Stage::Atlas, judged).await;
    if analysis.is_none() && mode == crate::atlas::Mode::Preflight {
        runner.soften(
            Stage::Atlas,
            "the probe goes on without the Admin API (Atlas decides at auth)",
        );
    }
    analysis
}

/// What the identity stage is for: the answer itself (`whoami`), or a preflight that explains
/// while Atlas decides (the probe without a role: the driver signs locally and Atlas calls STS,
/// so an STS this machine cannot reach does not stop the run).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentityMode {
    Answer,
    Preflight,
}

use crate::timing::{ATLAS_GRACE, PREFLIGHT_BUDGET};

/// GetCallerIdentity with the credentials in use: the ARN Atlas will see, the database user it
/// maps to, and the clock offset from STS's Date header.
pub(crate) async fn identity_stage(
    runner: &mut Runner<'_>,
    cfg: &Config,
    resolved: &Resolved,
    in_use: &InUse,
    mode: IdentityMode,
) -> Option<IdentityFacts> {
    let work = identity_work(runner, cfg, resolved, in_use, mode);
    identity_settle(runner, cfg, crate::runner::timed(work)).await
}

/// The identity stage's work for this run, owning what it needs, to run now or beside other
/// stages.
pub(crate) fn identity_work(
    runner: &Runner<'_>,
    cfg: &Config,
    resolved: &Resolved,
    in_use: &InUse,
    mode: IdentityMode,
) -> impl std::future::Future<Output = Result<Passed<IdentityFound>, crate::diagnosis::Diagnosis>>
       + Send
       + 'static {
    ask_identity(
        cfg.db.clone(),
        cfg.env.clone(),
        resolved.clone(),
        in_use.clone(),
        mode,
        runner.remaining(),
        target_shown(cfg),
    )
}

/// What GetCallerIdentity found: the identity and the clock offset, or nothing (a preflight
/// that could not reach STS).
pub(crate) type IdentityFound = Option<(crate::report::Identity, Option<i64>)>;

/// GetCallerIdentity and what it tells.
async fn ask_identity(
    db: String,
    env: crate::config::Env,
    resolved: Resolved,
    in_use: InUse,
    mode: IdentityMode,
    remaining: std::time::Duration,
    target: Option<String>,
) -> Result<Passed<IdentityFound>, crate::diagnosis::Diagnosis> {
    let budget = match mode {
        IdentityMode::Answer => remaining,
        IdentityMode::Preflight => remaining.min(PREFLIGHT_BUDGET),
    };
    let (resolved, in_use) = (&resolved, &in_use);
    let sdk = credentials::sdk_config(resolved, in_use.creds.clone(), budget).await;
    let asked = tokio::time::timeout(budget, credentials::caller_identity(&sdk)).await;
    let asked = asked.unwrap_or_else(|_| {
        Err(credentials::StsFailure {
            timeout: true,
            ..Default::default()
        })
    });
    let who = match asked {
        Ok(who) => who,
        Err(f) => {
            let d = credentials::classify(
                &f,
                &credentials::KeyFacts::of(&in_use.creds, &in_use.source),
                "GetCallerIdentity",
                &credentials::sts_endpoint(&env, &resolved.region),
            );
            // a preflight explains, Atlas decides: its own STS call may still pass where ours
            // was not answered or was throttled
            let unreached = matches!(
                d.kind,
                Kind::StsUnreachable | Kind::StsTimeout | Kind::StsThrottled
            );
            if mode == IdentityMode::Preflight && unreached {
                let what = if d.kind == Kind::StsThrottled {
                    "STS throttled atlas-iam's own call"
                } else {
                    "STS not reached from here"
                };
                return Ok(Passed::new(None, what).warn([format!(
                    "{} ({}): the run goes on, since the driver signs locally and \
                     Atlas calls STS itself; the identity and the clock could not be \
                     checked",
                    d.cause,
                    d.kind.name()
                )]));
            }
            return Err(d);
        }
    };
    let identity = identity_of(&who.arn, &who.account, &db, who.user_id.clone());
    let mut detail = match &identity.atlas_user {
        Some(u) => format!("{} -> Atlas user {} ({})", who.arn, u.arn, u.iam_type),
        None => who.arn.clone(),
    };
    let mut warnings = if identity.atlas_user.is_none() {
        identity.notes.clone()
    } else {
        Vec::new()
    };
    warnings.extend(crate::identity::partition_mismatch(
        &who.arn,
        target.as_deref().unwrap_or_default(),
    ));
    if let Some(o) = who.clock_offset {
        detail.push_str(&format!("; clock offset {o:+} s"));
        if o.abs() >= SKEW_SUSPECT_SECS {
            let (mins, dir) = (o.abs() / 60, if o > 0 { "ahead of" } else { "behind" });
            warnings.push(format!(
                "this machine's clock is {mins} minutes {dir} STS's: the AWS SDK corrects \
                 for it, but MONGODB-AWS signatures from drivers do not, and STS refuses \
                 them beyond 15 minutes"
            ));
        }
    }
    let facts = crate::report::Facts {
        arn: Some(identity.arn.clone()),
        account: Some(identity.account.clone()).filter(|a| !a.is_empty()),
        atlas_user_arn: identity.atlas_user.as_ref().map(|u| u.arn.clone()),
        clock_offset_s: who.clock_offset,
        ..Default::default()
    };
    Ok(Passed::new(Some((identity, who.clock_offset)), detail)
        .warn(warnings)
        .with_facts(facts))
}

/// Records the identity stage from its work (run now or earlier), and what it learned for the
/// auth diagnosis.
pub(crate) async fn identity_settle(
    runner: &mut Runner<'_>,
    cfg: &Config,
    work: impl std::future::Future<Output = crate::runner::Timed<IdentityFound>>,
) -> Option<IdentityFacts> {
    let found = runner.settle(Stage::Identity, work).await?;
    let Some((identity, offset)) = found else {
        return Some(IdentityFacts::default());
    };
    let facts = IdentityFacts {
        caller_arn: Some(identity.arn.clone()),
        atlas_user_arn: identity.atlas_user.as_ref().map(|u| u.arn.clone()),
        iam_type: identity.atlas_user.as_ref().map(|u| u.iam_type.clone()),
        assumed_role: matches!(caller_kind(&identity.arn), CallerKind::AssumedRole { .. }),
        role_with_path: cfg
            .role
            .as_ref()
            .map(|r| r.arn.arn.clone())
            .filter(|arn| identity.atlas_user.as_ref().is_some_and(|u| u.arn != *arn)),
        clock_offset: offset,
    };
    runner.set_identity(identity);
    Some(facts)
}

/// What STS issues: a key id of capitals and digits, a secret and a token of base64. Anything
/// else in an AssumeRole answer is refused, so that what `assume` prints is inert in any shell
/// or env file that reads it.
pub(crate) fn sts_shaped(creds: &Credentials) -> Result<(), Diagnosis> {
    let base64 = |s: &str| {
        !s.is_empty()
            && s.len() <= 8192
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    let id = creds.access_key_id();
    let id_ok = (16..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let token_ok = creds.session_token().is_none_or(base64);
    if id_ok && base64(creds.secret_access_key()) && token_ok {
        return Ok(());
    }
    Err(Diagnosis::new(
        Kind::StsError,
        "STS answered AssumeRole with credentials that are not what STS issues (a key id of \
         capitals and digits, a secret and a token of base64): refused, values not shown",
        "check AWS_ENDPOINT_URL_STS and any proxy between this machine and STS: the answer did \
         not come from AWS STS as it is",
    ))
}
