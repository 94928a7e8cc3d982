//! The local Atlas: accepts connections on 127.0.0.1, optionally behind TLS, with faults, and
//! serves each connection until it closes or sends something malformed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::commands::{self, Store};
use crate::wire::{self, Request};

/// How refusals are worded: a dedicated cluster, or the shared tier's proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Dedicated,
    Proxy,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dedicated" => Ok(Mode::Dedicated),
            "proxy" => Ok(Mode::Proxy),
            other => Err(format!("unknown mode `{other}` (dedicated, proxy)")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The port is closed.
    Refuse,
    /// Accepts, reads, never answers.
    Silent,
    /// Accepts and closes at once.
    CloseAfterAccept,
    /// Answers the first message with random bytes, then closes.
    Garbage,
    /// Waits this many milliseconds before every reply.
    Slow(u64),
    /// The server nonce does not start with the client's.
    BadNonce,
    /// Answers the TLS ClientHello with a fatal internal_error alert (an IP not on the access list).
    TlsAlert,
    /// Never answers a find (a read that hangs after the insert).
    HangFind,
    /// Applies the first insert, then closes the connection without answering it.
    DropAfterInsert,
    /// Answers every delete with n: 0 and deletes nothing.
    IgnoreDelete,
    /// Has no MONGODB-AWS (a Community server, or one older than 4.4).
    NoAwsMechanism,
    /// Answers saslStart with a document nested 5,000 levels deep (MongoDB allows 100): a
    /// hostile server, for the driver's own parser. Its hello is a normal one.
    DeepSaslReply,
    /// Answers saslStart with a 100 MB errmsg: a hostile server, for the driver's memory.
    HugeSaslReply,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        Ok(match (name, arg) {
            ("refuse", None) => Fault::Refuse,
            ("silent", None) => Fault::Silent,
            ("close-after-accept", None) => Fault::CloseAfterAccept,
            ("garbage", None) => Fault::Garbage,
            ("slow", Some(ms)) => Fault::Slow(ms.parse().map_err(|_| format!("slow:MS needs milliseconds, got `{ms}`"))?),
            ("bad-nonce", None) => Fault::BadNonce,
            ("tls-alert", None) => Fault::TlsAlert,
            ("hang-find", None) => Fault::HangFind,
            ("drop-after-insert", None) => Fault::DropAfterInsert,
            ("ignore-delete", None) => Fault::IgnoreDelete,
            ("no-aws-mechanism", None) => Fault::NoAwsMechanism,
            ("deep-sasl-reply", None) => Fault::DeepSaslReply,
            ("huge-sasl-reply", None) => Fault::HugeSaslReply,
            _ => return Err(format!(
                "unknown fault `{s}` (refuse, silent, close-after-accept, garbage, slow:MS, bad-nonce, \
                 tls-alert, hang-find, drop-after-insert, ignore-delete, no-aws-mechanism, \
                 deep-sasl-reply, huge-sasl-reply)"
            )),
        })
    }
}

/// A database role of an Atlas database user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Read(String),
    ReadWrite(String),
    ReadAnyDatabase,
    ReadWriteAnyDatabase,
}

impl Role {
    /// `read@DB`, `readWrite@DB`, `readAnyDatabase`, `readWriteAnyDatabase`; `none` is no role.
    pub fn parse_list(s: &str) -> Result<Vec<Role>, String> {
        if s == "none" || s.is_empty() {
            return Ok(Vec::new());
        }
        s.split(',')
            .map(|r| match r.split_once('@') {
                Some(("read", db)) if !db.is_empty() => Ok(Role::Read(db.to_string())),
                Some(("readWrite", db)) if !db.is_empty() => Ok(Role::ReadWrite(db.to_string())),
                None if r == "readAnyDatabase" => Ok(Role::ReadAnyDatabase),
                None if r == "readWriteAnyDatabase" => Ok(Role::ReadWriteAnyDatabase),
                _ => Err(format!(
                    "unknown role `{r}` (read@DB, readWrite@DB, readAnyDatabase, readWriteAnyDatabase, none)"
                )),
            })
            .collect()
    }

    pub fn can_read(&self, db: &str) -> bool {
        match self {
            Role::Read(d) | Role::ReadWrite(d) => d == db,
            Role::ReadAnyDatabase | Role::ReadWriteAnyDatabase => true,
        }
    }

    pub fn can_write(&self, db: &str) -> bool {
        match self {
            Role::ReadWrite(d) => d == db,
            Role::ReadWriteAnyDatabase => true,
            _ => false,
        }
    }
}

/// The IAM type of an AWS IAM database user, as Atlas stores it (`awsIAMType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IamType {
    User,
    Role,
}

impl IamType {
    /// The type Atlas gives an ARN: IAM users are USER, everything else ROLE.
    pub fn of(arn: &str) -> IamType {
        if arn.contains(":user/") {
            IamType::User
        } else {
            IamType::Role
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IamType::User => "USER",
            IamType::Role => "ROLE",
        }
    }
}

/// A database user of the project: what both the local Atlas (authentication and roles) and
/// the Admin API stand-in (its listing) read, so that they always agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUser {
    pub roles: Vec<Role>,
    pub iam_type: IamType,
    /// Clusters it is restricted to; empty: every cluster of the project.
    pub scopes: Vec<String>,
}

impl DbUser {
    /// A user as `atlas dbusers create` makes it for `arn`: the type from the ARN, no scope.
    pub fn new(arn: &str, roles: Vec<Role>) -> DbUser {
        DbUser {
            roles,
            iam_type: IamType::of(arn),
            scopes: Vec::new(),
        }
    }
}

/// The name the local Atlas's cluster has in the project.
pub const CLUSTER_NAME: &str = "Cluster0";

/// A replica set the server presents itself as the primary of (with the local DNS).
#[derive(Clone, Debug)]
pub struct ReplicaSet {
    pub name: String,
    /// host:port of the members as the SRV records name them; the first is this server.
    pub hosts: Vec<String>,
}

#[derive(Clone)]
pub struct AtlasConfig {
    pub mode: Mode,
    /// TLS on: plaintext connections are closed after their first bytes unless `allow_plaintext`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub allow_plaintext: bool,
    pub fault: Option<Fault>,
    /// Database users: ARN -> roles.
    pub users: HashMap<String, Vec<Role>>,
    /// Where the signed GetCallerIdentity is replayed: http://HOST:PORT (the STS gate, moto).
    pub sts_endpoint: String,
    /// The STS host the server names in its first reply (`h`), and the Host header of the replay.
    pub sts_host: String,
    pub replica_set: Option<ReplicaSet>,
}

impl Default for AtlasConfig {
    fn default() -> Self {
        AtlasConfig {
            mode: Mode::Dedicated,
            tls: None,
            allow_plaintext: false,
            fault: None,
            users: HashMap::new(),
            sts_endpoint: String::new(),
            sts_host: "sts.amazonaws.com".to_string(),
            replica_set: None,
        }
    }
}

pub struct Shared {
    pub cfg: AtlasConfig,
    pub users: RwLock<HashMap<String, DbUser>>,
    pub store: Mutex<Store>,
    pub next_id: AtomicI64,
    /// Whether the drop-after-insert fault has dropped its connection.
    pub dropped: std::sync::atomic::AtomicBool,
    /// Connections accepted and requests read (each a round trip), for benchmarks.
    pub connections: std::sync::atomic::AtomicU64,
    pub requests: std::sync::atomic::AtomicU64,
    /// The name of every command received, in order (lower case).
    pub commands: Mutex<Vec<String>>,
    /// Every MONGODB-AWS conversation that reached its end, as Atlas keeps them for the database
    /// access history (read by the Admin API stand-in).
    pub access_log: Mutex<Vec<AuthAttempt>>,
    /// What happened, in order, for benchmarks: each connection accepted, each TLS handshake
    /// that failed, each authentication refused.
    pub timeline: Mutex<Vec<Event>>,
}

/// One entry of the local Atlas's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Connected,
    TlsFailed,
    AuthRefused,
}

impl Shared {
    pub(crate) fn event(&self, e: Event) {
        if let Ok(mut t) = self.timeline.lock() {
            t.push(e);
        }
    }
}

/// One authentication attempt, as Atlas's database access history records it (the fields of
/// `MongoDBAccessLogs` in the published document: authResult, authSource, failureReason,
/// hostname, ipAddress, logLine, timestamp, username).
#[derive(Clone, Debug)]
pub struct AuthAttempt {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// The ARN Atlas looked up (empty when the conversation failed before STS named one).
    pub username: String,
    pub ip: String,
    pub ok: bool,
    pub failure_reason: Option<String>,
    pub log_line: String,
}

impl Shared {
    pub fn next(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running local Atlas; stops (with all its connections) when dropped.
pub struct LocalAtlas {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LocalAtlas {
    pub async fn start(cfg: AtlasConfig, port: u16) -> std::io::Result<LocalAtlas> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            users: RwLock::new(
                cfg.users
                    .iter()
                    .map(|(arn, roles)| (arn.clone(), DbUser::new(arn, roles.clone())))
                    .collect(),
            ),
            cfg,
            store: Mutex::new(Store::default()),
            next_id: AtomicI64::new(1),
            dropped: std::sync::atomic::AtomicBool::new(false),
            connections: Default::default(),
            requests: Default::default(),
            commands: Mutex::new(Vec::new()),
            access_log: Mutex::new(Vec::new()),
            timeline: Mutex::new(Vec::new()),
        });
        if shared.cfg.fault == Some(Fault::Refuse) {
            drop(listener); // the port is closed: connections are refused
            return Ok(LocalAtlas {
                addr,
                shared,
                task: None,
            });
        }
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(LocalAtlas {
            addr,
            shared,
            task: Some(task),
        })
    }

    /// Adds or replaces a database user while running.
    pub fn set_user(&self, arn: &str, roles: Vec<Role>) {
        self.set_db_user(arn, DbUser::new(arn, roles));
    }

    /// Adds or replaces a database user, with its type and scopes, while running.
    pub fn set_db_user(&self, arn: &str, user: DbUser) {
        if let Ok(mut users) = self.shared.users.write() {
            users.insert(arn.to_string(), user);
        }
    }

    /// Removes a database user while running.
    pub fn remove_user(&self, arn: &str) {
        if let Ok(mut users) = self.shared.users.write() {
            users.remove(arn);
        }
    }

    /// Connections accepted and requests served so far: (connections, requests).
    pub fn counters(&self) -> (u64, u64) {
        (
            self.shared.connections.load(Ordering::Relaxed),
            self.shared.requests.load(Ordering::Relaxed),
        )
    }

    /// The timeline so far: connections, failed TLS handshakes, refused authentications.
    pub fn timeline(&self) -> Vec<Event> {
        self.shared
            .timeline
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// The names of the commands received so far, in order (lower case).
    pub fn commands(&self) -> Vec<String> {
        self.shared
            .commands
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// How many documents a collection holds, and whether it exists.
    pub fn documents(&self, db: &str, coll: &str) -> Option<usize> {
        self.shared.store.lock().ok()?.count(db, coll)
    }

    pub fn uri(&self) -> String {
        let tls = if self.shared.cfg.tls.is_some() {
            "&tls=true"
        } else {
            ""
        };
        format!(
            "mongodb://{}/?authSource=%24external&authMechanism=MONGODB-AWS{tls}",
            self.addr
        )
    }
}

impl Drop for LocalAtlas {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping this set (when the loop is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        shared.event(Event::Connected);
        // As a server for a request/response protocol: a reply is not held back by Nagle's
        // algorithm waiting for the ACK of its own first segment (a TLS flight is several).
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        conns.spawn(async move {
            if let Err(e) = handle(stream, peer, shared).await {
                eprintln!("local-atlas: connection from {peer} closed: {e}");
            }
        });
    }
}

/// Bytes of a fatal TLS alert: internal_error (80), as Atlas sends to an IP not on its list.
const TLS_ALERT_INTERNAL_ERROR: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];

async fn handle(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared>,
) -> anyhow::Result<()> {
    match shared.cfg.fault {
        Some(Fault::CloseAfterAccept) => return Ok(()),
        Some(Fault::Silent) => {
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            return Ok(());
        }
        _ => {}
    }
    let tls_wanted = shared.cfg.tls.is_some() || shared.cfg.fault == Some(Fault::TlsAlert);
    if !tls_wanted {
        return serve(stream, peer, &shared).await;
    }
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.peek(&mut first)).await??;
    let is_tls = n == 1 && first[0] == 0x16;
    if !is_tls {
        if shared.cfg.allow_plaintext || shared.cfg.tls.is_none() {
            return serve(stream, peer, &shared).await;
        }
        // A TLS-only port: read what the plaintext client sent, then close.
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        anyhow::bail!("plaintext on a TLS-only port");
    }
    if shared.cfg.fault == Some(Fault::TlsAlert) {
        let mut hello = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut hello)).await;
        stream.write_all(&TLS_ALERT_INTERNAL_ERROR).await?;
        stream.shutdown().await?;
        return Ok(());
    }
    let Some(tls) = shared.cfg.tls.clone() else {
        return Ok(());
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let tls_stream =
        match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                shared.event(Event::TlsFailed);
                return Err(e.into());
            }
            Err(e) => {
                shared.event(Event::TlsFailed);
                return Err(e.into());
            }
        };
    serve(tls_stream, peer, &shared).await
}

fn mongodb_doc_n0() -> bson::Document {
    bson::doc! { "n": 0 }
}

fn encode(request: &Request, id: i32, reply: &bson::Document) -> Vec<u8> {
    match request {
        Request::Msg { request_id, .. } => wire::encode_msg(id, *request_id, reply),
        Request::Query { request_id, .. } => wire::encode_reply(id, *request_id, reply),
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: std::net::SocketAddr,
    shared: &Arc<Shared>,
) -> anyhow::Result<()> {
    let mut conn = commands::Conn {
        peer: Some(peer),
        ..Default::default()
    };
    loop {
        let Some((header, body)) = wire::read_message(&mut stream).await? else {
            return Ok(());
        };
        let request = wire::parse(header, &body)?;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        if shared.cfg.fault == Some(Fault::Garbage) {
            let mut junk = [0u8; 64];
            rand::rng().fill_bytes(&mut junk);
            stream.write_all(&junk).await?;
            stream.flush().await?;
            return Ok(());
        }
        if let Some(Fault::Slow(ms)) = shared.cfg.fault {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let command = request
            .body()
            .keys()
            .next()
            .map(|k| k.to_ascii_lowercase())
            .unwrap_or_default();
        if let Ok(mut log) = shared.commands.lock() {
            log.push(command.clone());
        }
        match (shared.cfg.fault, command.as_str()) {
            (Some(Fault::HangFind), "find") => std::future::pending::<()>().await,
            (Some(Fault::DeepSaslReply | Fault::HugeSaslReply), "saslstart") => {
                let body = if shared.cfg.fault == Some(Fault::DeepSaslReply) {
                    let mut doc = wire::nested_document(5_000);
                    // {ok: 0, a: {a: …}}: the nesting under a field of an error reply
                    let mut top = Vec::new();
                    top.push(0x01);
                    top.extend_from_slice(b"ok\0");
                    top.extend_from_slice(&0f64.to_le_bytes());
                    top.extend_from_slice(&[0x03, b'a', 0]);
                    top.append(&mut doc);
                    top.push(0);
                    let mut all = ((top.len() + 4) as i32).to_le_bytes().to_vec();
                    all.extend_from_slice(&top);
                    all
                } else {
                    wire::huge_error(100 << 20)
                };
                let id = shared.next() as i32;
                let response_to = match &request {
                    Request::Msg { request_id, .. } | Request::Query { request_id, .. } => {
                        *request_id
                    }
                };
                stream
                    .write_all(&wire::encode_msg_raw(id, response_to, &body))
                    .await?;
                stream.flush().await?;
                continue;
            }
            (Some(Fault::IgnoreDelete), "delete") => {
                let reply = commands::ok_reply(mongodb_doc_n0());
                let bytes = encode(&request, shared.next() as i32, &reply);
                stream.write_all(&bytes).await?;
                stream.flush().await?;
                continue;
            }
            _ => {}
        }
        let reply = commands::dispatch(&request, &mut conn, shared).await;
        if shared.cfg.fault == Some(Fault::DropAfterInsert)
            && command == "insert"
            && !shared.dropped.swap(true, Ordering::SeqCst)
        {
            return Ok(()); // applied, never answered: the connection is lost
        }
        if matches!(
            request,
            Request::Msg {
                more_to_come: true,
                ..
            }
        ) {
            continue;
        }
        let bytes = encode(&request, shared.next() as i32, &reply);
        stream.write_all(&bytes).await?;
        stream.flush().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse() {
        assert_eq!("slow:250".parse::<Fault>(), Ok(Fault::Slow(250)));
        assert_eq!("tls-alert".parse::<Fault>(), Ok(Fault::TlsAlert));
        assert!("slow".parse::<Fault>().is_err());
        assert!("meteor".parse::<Fault>().is_err());
    }

    #[test]
    fn roles_parse_and_decide() {
        let roles = Role::parse_list("read@a,readWrite@b").expect("roles");
        assert!(roles[0].can_read("a") && !roles[0].can_write("a"));
        assert!(roles[1].can_write("b") && !roles[1].can_read("a"));
        assert!(Role::parse_list("none").expect("none").is_empty());
        assert!(Role::parse_list("admin@x").is_err());
        assert!(Role::ReadWriteAnyDatabase.can_write("z"));
    }
}
