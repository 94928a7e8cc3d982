//! The auth stage: the official `mongodb` driver with MONGODB-AWS, given the resolved
//! credentials through `Credential.aws_credential_provider` (never through the URI), connecting
//! to the hosts the dns stage found. Driver errors are classified by their typed kinds and
//! server codes first; the shared tier's texts are decoded into the same causes.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use mongodb::error::{Error as DriverError, ErrorKind};
use mongodb::event::cmap::CmapEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;

use super::dns::Seedlist;
use super::Destination;
use crate::diagnosis::texts::*;
use crate::diagnosis::{Diagnosis, Kind};
use crate::identity::iam_type_of;
use crate::runner::Passed;
use crate::secret::encode_component;

/// What the identity stage learned, for the auth diagnosis.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdentityFacts {
    pub caller_arn: Option<String>,
    /// The database user Atlas looks up.
    pub atlas_user_arn: Option<String>,
    pub iam_type: Option<String>,
    pub assumed_role: bool,
    /// The role assumed with --role-arn when its ARN has a path (`role/PATH/NAME`), or the
    /// caller's role as iam:GetRole names it: Atlas never looks that ARN up, since STS session
    /// ARNs drop the path.
    pub role_with_path: Option<String>,
    /// Local clock minus STS's clock, in seconds.
    pub clock_offset: Option<i64>,
}

/// Beyond this, drivers' signatures (made with the raw clock) are at risk; STS refuses beyond 900.
pub(crate) const SKEW_SUSPECT_SECS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    Authentication,
    ServerSelection,
    Command,
    Io,
    /// The server's reply is not a MongoDB reply the driver can read (too long, malformed).
    InvalidResponse,
    Other,
}

/// A driver error, reduced to what classification needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DriverFailure {
    pub kind: FailureKind,
    /// The server's code and message, for a refusal the server sent.
    pub code: Option<i32>,
    pub server_message: Option<String>,
    pub text: String,
}

fn server_refusal(e: &DriverError) -> Option<(i32, String)> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some((c.code, c.message.clone())),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
            Some((w.code, w.message.clone()))
        }
        ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(w)) => {
            Some((w.code, w.message.clone()))
        }
        _ => None,
    }
}

impl DriverFailure {
    pub(crate) fn of(e: &DriverError) -> DriverFailure {
        let kind = match e.kind.as_ref() {
            ErrorKind::Authentication { .. } => FailureKind::Authentication,
            ErrorKind::ServerSelection { .. } => FailureKind::ServerSelection,
            ErrorKind::Command(_) | ErrorKind::Write(_) => FailureKind::Command,
            ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => FailureKind::Io,
            ErrorKind::InvalidResponse { .. } => FailureKind::InvalidResponse,
            _ => FailureKind::Other,
        };
        // A refusal during authentication is the source of the authentication error.
        let refusal = server_refusal(e).or_else(|| {
            std::error::Error::source(e)
                .and_then(|s| {
                    s.downcast_ref::<DriverError>()
                        .or_else(|| s.downcast_ref::<Box<DriverError>>().map(|b| &**b))
                })
                .and_then(server_refusal)
        });
        let text = match e.kind.as_ref() {
            ErrorKind::Authentication { message, .. } => message.clone(),
            ErrorKind::ServerSelection { message, .. } => message.clone(),
            other => other.to_string(),
        };
        // a server's errmsg may be megabytes: kept to what a diagnosis can use
        let cap = |t: String| match t.char_indices().nth(crate::secret::MAX_TEXT) {
            Some((at, _)) => t[..at].to_string(),
            None => t,
        };
        DriverFailure {
            kind,
            code: refusal.as_ref().map(|r| r.0),
            server_message: refusal.map(|r| cap(r.1)),
            text: cap(text),
        }
    }
}

fn skew_diagnosis(offset: i64, how: &str) -> Diagnosis {
    let (mins, dir) = (
        offset.abs() / 60,
        if offset > 0 { "ahead of" } else { "behind" },
    );
    Diagnosis::new(
        Kind::ClockSkew,
        format!("{how}: this machine's clock is {mins} minutes {dir} STS's (measured at the identity \
                 stage). atlas-iam's own STS call passed because the AWS SDK corrects skew, but drivers \
                 sign MONGODB-AWS with the raw clock, and STS refuses signatures more than 15 minutes off"),
        "set the clock right (enable NTP: `timedatectl set-ntp true`, or `chronyc makestep`)",
    )
}

fn missing_user(looked_up: Option<&str>, facts: &IdentityFacts, how: &str) -> Diagnosis {
    let arn = looked_up
        .map(str::to_string)
        .or_else(|| facts.atlas_user_arn.clone());
    let Some(arn) = arn else {
        if facts.caller_arn.is_none() {
            // the identity preflight could not reach STS
            return Diagnosis::new(
                Kind::AuthenticationFailed,
                format!(
                    "{how}; which identity Atlas looked up is unknown, since STS could not be \
                     reached from here to ask"
                ),
                "run `atlas-iam whoami` where STS is reachable (or with AWS_ENDPOINT_URL_STS \
                 set to a VPC endpoint) and check that its Atlas user exists",
            );
        }
        let caller = facts.caller_arn.as_deref().unwrap_or_default();
        let what = crate::identity::unmappable(caller)
            .map(|w| format!(": {caller} is {w}, which Atlas never maps to a database user"))
            .unwrap_or_else(|| {
                ", and the identity could not be mapped to an Atlas database user".into()
            });
        return Diagnosis::new(
            Kind::AuthenticationFailed,
            format!("{how}{what}"),
            "use an IAM user or an IAM role for MONGODB-AWS (for temporary credentials, \
             AssumeRole instead of GetFederationToken)",
        );
    };
    let iam_type = facts
        .iam_type
        .clone()
        .unwrap_or_else(|| iam_type_of(&arn).to_string());
    let mut hint = format!(
        "create the database user: `atlas dbusers create --username {arn} --awsIAMType {iam_type} \
         --role readWrite@DB` (Atlas: Database Access > Add New Database User > AWS IAM)"
    );
    if facts.assumed_role {
        if let Some(with_path) = &facts.role_with_path {
            hint = format!(
                "the role {with_path} has a path, and STS session ARNs drop it: Atlas looks up \
                 {arn}, so register that ARN, not the one with the path; {hint}"
            );
        } else {
            hint.push_str(
                "; a role created with a path (role/PATH/NAME) is still looked up without it",
            );
        }
        if let Some(caller) = &facts.caller_arn {
            hint.push_str(&format!(
                "; if you registered the session ARN {caller} (arn:aws:sts::…:assumed-role/…), register \
                 the role ARN {arn} instead: Atlas maps every session to its role"
            ));
        }
    }
    Diagnosis::new(
        Kind::AtlasUserMissing,
        format!(
            "{how}: Atlas looked up {arn} and has no database user for it (STS accepted these \
                 credentials at the identity stage, so the keys are good)"
        ),
        hint,
    )
}

/// Turns the failure of the auth stage into a diagnosis, using what the identity stage learned.
pub(crate) fn classify_auth(f: &DriverFailure, facts: &IdentityFacts) -> Diagnosis {
    let skewed = facts.clock_offset.filter(|o| o.abs() >= SKEW_SUSPECT_SECS);
    match (f.kind, f.code, f.server_message.as_deref()) {
        (FailureKind::Authentication, Some(ATLAS_AUTHENTICATION_FAILED), _) => match skewed {
            Some(o) => skew_diagnosis(o, "Atlas answered `Authentication failed.`"),
            None => missing_user(None, facts, "Atlas answered `Authentication failed.`"),
        },
        // the shared tier's STS call answered 400: STS throttling (Throttling / Rate exceeded is
        // a 400; a refused signature or key is a 403)
        (FailureKind::Authentication, Some(ATLAS_PROXY_ERROR), Some(m))
            if m.starts_with(PROXY_STS_REFUSED) && m.trim_end().ends_with(" 400") => Diagnosis::new(
            Kind::StsThrottled,
            format!("the shared tier answered `{m}`: STS refused the call Atlas made for this \
                     connection with a 400, which is STS throttling the caller's account"),
            crate::diagnosis::THROTTLING_HINT),
        (FailureKind::Authentication, Some(ATLAS_PROXY_ERROR), Some(m)) if m.starts_with(PROXY_STS_REFUSED) => {
            let how = format!("the shared tier answered `{m}`: STS refused the request Atlas replayed");
            match skewed {
                Some(o) => skew_diagnosis(o, &how),
                None => Diagnosis::new(Kind::AtlasStsRejected,
                    format!("{how}, although it accepted atlas-iam's own call with the same credentials"),
                    "the credentials may have expired or been revoked meanwhile; a proxy that rewrites \
                     headers breaks the signature too: try again with fresh credentials"),
            }
        }
        (FailureKind::Authentication, Some(ATLAS_PROXY_ERROR), Some(m)) if m.starts_with(PROXY_USER_PREFIX) && m.ends_with(PROXY_USER_SUFFIX) => {
            let arn = m.trim_start_matches(PROXY_USER_PREFIX).trim_end_matches(PROXY_USER_SUFFIX);
            missing_user(Some(arn), facts, &format!("the shared tier answered `{m}`"))
        }
        (FailureKind::Authentication, Some(MECHANISM_UNAVAILABLE), Some(m)) => Diagnosis::new(
            Kind::MechanismUnavailable,
            format!("the server does not offer MONGODB-AWS (`{m}`): it is a Community server or \
                     older than 4.4; Atlas and Enterprise 4.4+ have it"),
            "check the host in the connection string: it must be the Atlas cluster (AWS IAM \
             authentication exists only in Atlas and MongoDB Enterprise)"),
        (FailureKind::Authentication, Some(code), Some(m)) => Diagnosis::new(Kind::AuthenticationFailed,
            format!("the server refused MONGODB-AWS (code {code}): {m}"),
            "check the database user for this identity in Atlas"),
        (FailureKind::Authentication, None, _) if f.text.contains(DRIVER_NONCE) => Diagnosis::new(
            Kind::ServerNonceMismatch,
            format!("the client refused the server's answer: {} (the server's nonce must begin with the \
                     client's): whatever answers is not a genuine Atlas server", f.text),
            "check the host: a proxy or another service may stand in between"),
        (FailureKind::Authentication, None, _) => Diagnosis::new(Kind::AuthenticationFailed,
            format!("MONGODB-AWS failed on the client side: {}", f.text),
            "check the credentials and the connection string"),
        (FailureKind::InvalidResponse, _, _) => Diagnosis::new(Kind::BadReply,
            format!("the server's reply to the driver is not a MongoDB reply: {}", f.text),
            "check the target: whatever answers there is not a MongoDB server, or not a genuine one"),
        (FailureKind::ServerSelection, _, _) | (FailureKind::Io, _, _) => Diagnosis::new(Kind::ServerSelection,
            format!("the driver could not use the cluster: {}", f.text),
            "the earlier stages passed, so the cluster became unreachable meanwhile or the connection \
             string's options (replicaSet, directConnection) do not fit it"),
        _ => Diagnosis::new(Kind::AuthenticationFailed, format!("authentication failed: {}", f.text),
            "check the database user for this identity in Atlas"),
    }
}

pub(crate) struct Session {
    pub client: mongodb::Client,
    pub db: String,
    /// The client of an earlier run of this process, kept (`keep_clients`).
    pub reused: bool,
}

/// Whether the driver's clients outlive a run: on in a Lambda function, whose warm execution
/// environment serves many invocations from one process (the pattern the function's authors
/// are told to follow: one client, created once, outside the handler).
static KEEP_CLIENTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The clients kept, by the driver's connection string and the access key id they sign with.
static KEPT: std::sync::Mutex<Vec<(String, mongodb::Client)>> = std::sync::Mutex::new(Vec::new());

/// Keeps the driver's clients between runs of this process (the Lambda function's warm
/// invocations reuse the first one's authenticated connections).
pub fn keep_clients() {
    KEEP_CLIENTS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The driver's connection string for the resolved hosts: credential-free, MONGODB-AWS on
/// $external, TLS as the target says, the TXT and URI options kept.
pub(crate) fn driver_uri(target: &Destination, resolved: &Seedlist) -> String {
    let hosts: Vec<String> = resolved.hosts.iter().map(|h| h.to_string()).collect();
    let mut uri = format!(
        "mongodb://{}/{}?authSource=%24external&authMechanism=MONGODB-AWS&tls={}",
        hosts.join(","),
        encode_component(&target.db),
        target.tls
    );
    if let Some(ca) = &target.ca_file {
        if target.tls {
            uri.push_str(&format!(
                "&tlsCAFile={}",
                encode_component(&ca.display().to_string())
            ));
        }
    }
    let mut has_app = false;
    // the TXT record's options under the string's (the seedlist specification: the string wins)
    let txt = resolved.txt_options.iter().filter(|(k, _)| {
        !target
            .options
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(k))
    });
    for (k, v) in txt.chain(target.options.iter()) {
        if k.eq_ignore_ascii_case("authSource") {
            continue;
        }
        has_app |= k.eq_ignore_ascii_case("appName");
        uri.push_str(&format!("&{}={}", encode_component(k), encode_component(v)));
    }
    if !has_app {
        uri.push_str("&appName=atlas-iam");
    }
    uri
}

/// atlas-iam's own driver refused the options it was handed (each was checked on its own, so
/// this is a combination): said in our words, with the driver's reason but not its debug text.
fn refused_options(e: &mongodb::error::Error) -> Diagnosis {
    let why = match e.kind.as_ref() {
        mongodb::error::ErrorKind::InvalidArgument { message, .. } => message.clone(),
        _ => "it could not set up a client".to_string(),
    };
    Diagnosis::new(
        Kind::InvalidUri,
        format!(
            "atlas-iam's own driver cannot use this combination of the string's options ({why}); \
             the specifications allow it, so the application's driver may"
        ),
        "run the check without the option it names, and say which options the string has when \
         you report this",
    )
}

/// When the driver's first connection was established and authenticated (its CMAP
/// ConnectionReady event): MONGODB-AWS passed then.
#[derive(Clone, Default)]
pub(crate) struct ReadyAt(Arc<OnceLock<Instant>>);

impl ReadyAt {
    pub(crate) fn get(&self) -> Option<Instant> {
        self.0.get().copied()
    }
}

/// The official driver's client for the resolved hosts, MONGODB-AWS with the credentials handed
/// over through `aws_credential_provider`. It connects when the command runs: authentication is
/// proven by the command itself (no extra round trip), and `ReadyAt` tells when it passed.
pub(crate) async fn open_client(
    target: &Destination,
    resolved: &Seedlist,
    creds: Credentials,
    budget: Duration,
    ready: &ReadyAt,
) -> Result<Session, Diagnosis> {
    let uri = driver_uri(target, resolved);
    let keep = KEEP_CLIENTS.load(std::sync::atomic::Ordering::Relaxed);
    let key = format!("{uri} {}", creds.access_key_id());
    if keep {
        let kept = KEPT
            .lock()
            .ok()
            .and_then(|k| k.iter().find(|(k, _)| *k == key).map(|(_, c)| c.clone()));
        if let Some(client) = kept {
            return Ok(Session {
                client,
                db: target.db.clone(),
                reused: true,
            });
        }
    }
    let mut options = ClientOptions::parse(&uri)
        .await
        .map_err(|e| refused_options(&e))?;
    options.server_selection_timeout = Some(budget);
    options.connect_timeout = Some(budget.min(Duration::from_secs(10)));
    if let Some(c) = options.credential.as_mut() {
        c.aws_credential_provider = Some(SharedCredentialsProvider::new(creds));
    }
    let seen = ready.clone();
    options.cmap_event_handler = Some(EventHandler::callback(move |e: CmapEvent| {
        if matches!(e, CmapEvent::ConnectionReady(_)) && seen.0.set(Instant::now()).is_ok() {
            crate::worker::note_driver("ready");
        }
    }));
    let client = mongodb::Client::with_options(options).map_err(|e| refused_options(&e))?;
    if keep {
        if let Ok(mut kept) = KEPT.lock() {
            // a few targets at most: the oldest goes first
            if kept.len() >= 4 {
                kept.remove(0);
            }
            kept.push((key, client.clone()));
        }
    }
    Ok(Session {
        client,
        db: target.db.clone(),
        reused: false,
    })
}

/// The auth stage, told after the fact from the command's run: passed when a connection was
/// authenticated; otherwise the command's failure, classified as an authentication failure
/// (`role_path` is asked only when Atlas has no user for an assumed role whose path is not
/// known, so that the hint names the path the session ARN dropped).
pub(crate) async fn auth_outcome(
    started: Instant,
    ready: Option<Instant>,
    failure: Option<&DriverFailure>,
    failed_after: Duration,
    facts: &IdentityFacts,
    role_path: impl std::future::Future<Output = Option<String>>,
) -> crate::runner::Timed<()> {
    // Authenticated when a connection was made ready, or (should its event not have come) when
    // the command got an answer without an authentication failure.
    let failure = match (ready, failure) {
        (None, Some(failure)) => failure,
        (ready, _) => {
            let took = ready.map_or(failed_after, |at| at.saturating_duration_since(started));
            let who = facts
                .atlas_user_arn
                .clone()
                .unwrap_or_else(|| "the resolved identity".into());
            let detail = format!("MONGODB-AWS as {who} in {} ms", took.as_millis());
            let found = crate::report::Facts {
                mechanism: Some("MONGODB-AWS".into()),
                atlas_user_arn: facts.atlas_user_arn.clone(),
                ready_ms: ready.map(|_| crate::timing::millis(took)),
                ..Default::default()
            };
            return (Ok(Passed::new((), detail).with_facts(found)), took);
        }
    };
    let d = classify_auth(failure, facts);
    if d.kind == Kind::AtlasUserMissing && facts.assumed_role && facts.role_with_path.is_none() {
        if let Some(with_path) = role_path.await {
            let facts = IdentityFacts {
                role_with_path: Some(with_path),
                ..facts.clone()
            };
            return (Err(classify_auth(failure, &facts)), failed_after);
        }
    }
    (Err(d), failed_after)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    fn auth(code: Option<i32>, message: Option<&str>, text: &str) -> DriverFailure {
        DriverFailure {
            kind: FailureKind::Authentication,
            code,
            server_message: message.map(str::to_string),
            text: text.into(),
        }
    }

    pub(crate) fn facts(offset: Option<i64>) -> IdentityFacts {
        IdentityFacts {
            caller_arn: Some("arn:aws:sts::123456789012:assumed-role/app/s".into()),
            atlas_user_arn: Some("arn:aws:iam::123456789012:role/app".into()),
            iam_type: Some("ROLE".into()),
            assumed_role: true,
            role_with_path: None,
            clock_offset: offset,
        }
    }

    #[test]
    fn a_federated_caller_is_named_at_auth() {
        let f = IdentityFacts {
            caller_arn: Some("arn:aws:sts::123456789012:federated-user/bob".into()),
            atlas_user_arn: None,
            iam_type: None,
            assumed_role: false,
            ..facts(None)
        };
        let d = classify_auth(&auth(Some(18), Some("Authentication failed."), "x"), &f);
        assert!(
            d.cause.contains("federated-user/bob is a federated user"),
            "{d}"
        );
        assert!(
            d.hint.contains("AssumeRole instead of GetFederationToken"),
            "{d}"
        );
    }

    #[test]
    fn dedicated_18_is_a_missing_user_unless_the_clock_is_off() {
        let d = classify_auth(
            &auth(Some(18), Some("Authentication failed."), "x"),
            &facts(Some(2)),
        );
        assert_eq!(d.kind, Kind::AtlasUserMissing);
        assert!(
            d.cause.contains("arn:aws:iam::123456789012:role/app"),
            "{}",
            d.cause
        );
        assert!(d.hint.contains("session ARN"), "{}", d.hint);
        let d = classify_auth(
            &auth(Some(18), Some("Authentication failed."), "x"),
            &facts(Some(-1200)),
        );
        assert_eq!(d.kind, Kind::ClockSkew);
        assert!(d.cause.contains("20 minutes behind"), "{}", d.cause);
    }

    #[test]
    fn shared_tier_texts_are_decoded() {
        let d = classify_auth(
            &auth(
                Some(8000),
                Some("bad auth : aws sts call has response 403"),
                "x",
            ),
            &facts(Some(-1200)),
        );
        assert_eq!(d.kind, Kind::ClockSkew);
        let d = classify_auth(
            &auth(
                Some(8000),
                Some("bad auth : aws sts call has response 403"),
                "x",
            ),
            &facts(None),
        );
        assert_eq!(d.kind, Kind::AtlasStsRejected);
        // a 400 from the STS call Atlas made is throttling
        let d = classify_auth(
            &auth(
                Some(8000),
                Some("bad auth : aws sts call has response 400"),
                "x",
            ),
            &facts(None),
        );
        assert_eq!(d.kind, Kind::StsThrottled);
        assert!(d.hint.contains("600 per second"), "{d}");
        let d = classify_auth(
            &auth(
                Some(8000),
                Some("bad auth : user arn:aws:iam::123456789012:role/x is not found"),
                "x",
            ),
            &facts(None),
        );
        assert_eq!(d.kind, Kind::AtlasUserMissing);
        assert!(
            d.cause.contains("arn:aws:iam::123456789012:role/x"),
            "{}",
            d.cause
        );
    }

    #[test]
    fn client_side_failures() {
        let d = classify_auth(&auth(None, None, "mismatched nonce"), &facts(None));
        assert_eq!(d.kind, Kind::ServerNonceMismatch);
        let f = DriverFailure {
            kind: FailureKind::ServerSelection,
            code: None,
            server_message: None,
            text: "timeout".into(),
        };
        assert_eq!(classify_auth(&f, &facts(None)).kind, Kind::ServerSelection);
    }

    #[test]
    fn driver_uri_keeps_options_and_never_credentials() {
        let t = Destination {
            srv: None,
            srv_service: "mongodb".into(),
            srv_max_hosts: 0,
            hosts: vec![],
            tls: true,
            ca_file: Some("/tmp/a b.pem".into()),
            db: "test".into(),
            uri_options: Default::default(),
            options: vec![
                ("retryWrites".into(), "true".into()),
                ("appName".into(), "a&b=c".into()),
                ("replicaSet".into(), "mine".into()),
            ],
        };
        let r = Seedlist {
            hosts: vec![super::super::HostPort {
                host: "n0.x.net".into(),
                port: 27017,
            }],
            txt_options: vec![
                ("authSource".into(), "admin".into()),
                ("replicaSet".into(), "rs0".into()),
            ],
        };
        let uri = driver_uri(&t, &r);
        assert_eq!(uri, "mongodb://n0.x.net:27017/test?authSource=%24external&authMechanism=MONGODB-AWS&tls=true\
            &tlsCAFile=%2Ftmp%2Fa%20b.pem&retryWrites=true&appName=a%26b%3Dc&replicaSet=mine");
    }
}
