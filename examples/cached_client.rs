//! The Lambda pattern done right: one `mongodb::Client`, created once outside the handler and
//! reused by every invocation, authenticating with MONGODB-AWS through a *refreshing* AWS
//! credentials provider handed to the driver (`Credential::aws_credential_provider`), never
//! through credentials in the connection string.
//!
//! Why: a client built once keeps its pooled connections, so warm invocations skip the TCP, TLS
//! and MONGODB-AWS handshakes. Credentials embedded in a URI are fixed when the client is built:
//! once temporary credentials expire, every new connection fails with `Authentication failed.`
//! (the MONGODB-AWS specification now requires drivers to reject them in the URI). The driver
//! asks a provider again each time it opens a connection; `Refreshing` below keeps an answer
//! until shortly before it expires, as the specification's own cache does, and then fetches new
//! credentials from the AWS default chain or AssumeRole.
//!
//! Run it (README, "Examples", shows it against the local Atlas):
//!
//! ```sh
//! MONGODB_URI='mongodb+srv://cluster0.ab12c.mongodb.net/?authSource=%24external&authMechanism=MONGODB-AWS' \
//!   cargo run --example cached_client
//! ```
//!
//! Environment: `MONGODB_URI` (credential-free); `ROLE_ARN` to assume a role instead of using the
//! default chain's credentials as they are; `SESSION_SECONDS` (with ROLE_ARN, default 900);
//! `REFRESH_BEFORE_SECONDS` (default 300: refresh this long before expiry); `INVOCATIONS`
//! (default 3) and `PAUSE_SECONDS` (default 0) between them.

use anyhow::{anyhow, Context};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use mongodb::bson::doc;
use mongodb::options::{AuthMechanism, ClientOptions};
use mongodb::Client;
use tokio::sync::{Mutex, OnceCell};

type AnyError = anyhow::Error;

/// Caches the inner provider's credentials until `early` before they expire.
#[derive(Debug)]
struct Refreshing {
    inner: SharedCredentialsProvider,
    early: Duration,
    cached: Mutex<Option<Credentials>>,
    fetched: AtomicU32,
}

impl ProvideCredentials for Refreshing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let mut cached = self.cached.lock().await;
            if let Some(c) = cached.as_ref() {
                let fresh_enough = c
                    .expiry()
                    .is_none_or(|at| at > SystemTime::now() + self.early);
                if fresh_enough {
                    return Ok(c.clone());
                }
            }
            let fresh = self.inner.provide_credentials().await?;
            self.fetched.fetch_add(1, Ordering::SeqCst);
            *cached = Some(fresh.clone());
            Ok(fresh)
        })
    }
}

fn env_secs(name: &str, default: u64) -> Result<u64, AnyError> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .parse()
            .map_err(|_| anyhow!("{name} must be a number of seconds"))?),
        Err(_) => Ok(default),
    }
}

/// The credentials provider: AssumeRole with ROLE_ARN, else the AWS default chain.
async fn provider() -> Result<&'static Refreshing, AnyError> {
    static PROVIDER: OnceCell<Refreshing> = OnceCell::const_new();
    PROVIDER
        .get_or_try_init(|| async {
            let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
            let inner = match std::env::var("ROLE_ARN") {
                Ok(role) => {
                    let session = Duration::from_secs(env_secs("SESSION_SECONDS", 900)?);
                    let assume = aws_config::sts::AssumeRoleProvider::builder(role)
                        .session_name("cached-client-example")
                        .session_length(session)
                        .configure(&sdk)
                        .build()
                        .await;
                    SharedCredentialsProvider::new(assume)
                }
                Err(_) => sdk
                    .credentials_provider()
                    .context("no AWS credentials provider: set AWS credentials")?,
            };
            Ok::<_, AnyError>(Refreshing {
                inner,
                early: Duration::from_secs(env_secs("REFRESH_BEFORE_SECONDS", 300)?),
                cached: Mutex::new(None),
                fetched: AtomicU32::new(0),
            })
        })
        .await
}

/// Built once, outside the handler: every invocation of a warm Lambda reuses it.
async fn client() -> Result<&'static Client, AnyError> {
    static CLIENT: OnceCell<Client> = OnceCell::const_new();
    CLIENT
        .get_or_try_init(|| async {
            let uri = std::env::var("MONGODB_URI").context("set MONGODB_URI")?;
            let mut options = ClientOptions::parse(&uri).await?;
            let mut credential = options.credential.take().unwrap_or_default();
            if credential.username.is_some() || credential.password.is_some() {
                return Err(anyhow!(
                    "MONGODB_URI carries credentials: remove them, the provider gives them"
                ));
            }
            credential.mechanism = Some(AuthMechanism::MongoDbAws);
            credential.source = Some("$external".to_string());
            let provider = provider().await?;
            credential.aws_credential_provider =
                Some(SharedCredentialsProvider::new(ProviderRef(provider)));
            options.credential = Some(credential);
            Ok::<_, AnyError>(Client::with_options(options)?)
        })
        .await
}

/// The shared `Refreshing`, as a provider the driver can hold.
#[derive(Debug)]
struct ProviderRef(&'static Refreshing);

impl ProvideCredentials for ProviderRef {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.provide_credentials()
    }
}

fn masked(key_id: &str) -> String {
    let tail = key_id.get(key_id.len().saturating_sub(4)..).unwrap_or("");
    format!("{}…{tail}", key_id.get(..4).unwrap_or(""))
}

/// The handler: what a Lambda runs per event.
async fn handler(n: u32) -> Result<String, AnyError> {
    let started = std::time::Instant::now();
    client()
        .await?
        .database("admin")
        .run_command(doc! {"ping": 1})
        .await?;
    let p = provider().await?;
    let key = p
        .cached
        .lock()
        .await
        .as_ref()
        .map(|c| masked(c.access_key_id()))
        .unwrap_or_default();
    Ok(format!(
        "invocation {n}: ping ok in {} ms with key {key}; credentials fetched {} time(s)",
        started.elapsed().as_millis(),
        p.fetched.load(Ordering::SeqCst)
    ))
}

#[tokio::main]
async fn main() -> Result<(), AnyError> {
    let invocations = env_secs("INVOCATIONS", 3)? as u32;
    let pause = Duration::from_secs(env_secs("PAUSE_SECONDS", 0)?);
    let mut first: Option<Credentials> = None;
    for n in 1..=invocations {
        if n > 1 {
            tokio::time::sleep(pause).await;
        }
        println!("{}", handler(n).await?);
        if first.is_none() {
            first = provider().await?.cached.lock().await.clone();
        }
    }
    // What a URI with embedded credentials would have done: the first invocation's credentials,
    // fixed, on a new connection after they expired.
    if let Some(old) = first.filter(|c| c.expiry().is_some_and(|at| at <= SystemTime::now())) {
        let uri = std::env::var("MONGODB_URI")?;
        let mut options = ClientOptions::parse(&uri).await?;
        let mut credential = options.credential.take().unwrap_or_default();
        credential.mechanism = Some(AuthMechanism::MongoDbAws);
        credential.source = Some("$external".to_string());
        credential.aws_credential_provider = Some(SharedCredentialsProvider::new(old));
        options.credential = Some(credential);
        options.server_selection_timeout = Some(Duration::from_secs(5));
        let fixed = Client::with_options(options)?;
        match fixed.database("admin").run_command(doc! {"ping": 1}).await {
            Ok(_) => println!("with the first credentials, fixed as in a URI: still accepted"),
            Err(e) => println!(
                "with the first credentials, fixed as in a URI: refused ({})",
                e.kind
            ),
        }
    }
    Ok(())
}
