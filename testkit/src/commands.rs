//! The commands drivers and atlas-iam send, over in-memory storage, with authorization by role.

use std::collections::{BTreeMap, HashMap};

use bson::{doc, oid::ObjectId, Bson, Document};

use crate::auth;
use crate::server::{Mode, Role, Shared};
use crate::wire::{Request, MAX_MESSAGE};

pub const MAX_BSON: i32 = 16 * 1024 * 1024;
pub const MAX_WIRE_VERSION: i32 = 21;

/// An authenticated database user.
#[derive(Clone, Debug)]
pub struct User {
    pub arn: String,
    pub roles: Vec<Role>,
}

/// Per-connection state.
#[derive(Default)]
pub struct Conn {
    pub user: Option<User>,
    /// The server nonce of a conversation under way.
    pub conversation: Option<Vec<u8>>,
    /// Where the client connected from.
    pub peer: Option<std::net::SocketAddr>,
}

struct CursorState {
    ns: String,
    docs: Vec<Document>,
}

#[derive(Default)]
pub struct Store {
    dbs: BTreeMap<String, BTreeMap<String, Vec<Document>>>,
    cursors: HashMap<i64, CursorState>,
}

/// `{ok: 1}` with the fields of `doc`.
pub fn ok_reply(doc: Document) -> Document {
    ok(doc)
}

pub fn error(code: i32, code_name: &str, message: &str) -> Document {
    doc! { "ok": 0.0, "errmsg": message, "code": code, "codeName": code_name }
}

fn ok(mut d: Document) -> Document {
    d.insert("ok", 1.0);
    d
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Authenticated,
    Read,
    Write,
}

fn need(command: &str) -> Need {
    match command {
        "hello" | "ismaster" | "ping" | "buildinfo" | "saslstart" | "saslcontinue"
        | "endsessions" | "logout" => Need::Nothing,
        "listdatabases" => Need::Authenticated,
        "find" | "getmore" | "killcursors" | "count" | "aggregate" | "listcollections" => {
            Need::Read
        }
        _ => Need::Write,
    }
}

/// The action name the shared tier's proxy uses in its refusal.
fn action(command: &str) -> &str {
    match command {
        "find" | "getmore" | "count" | "aggregate" => "find",
        "listcollections" => "listCollections",
        "insert" => "insert",
        "delete" => "remove",
        "update" => "update",
        "create" => "createCollection",
        "drop" => "dropCollection",
        other => other,
    }
}

fn authorize(
    conn: &Conn,
    shared: &Shared,
    name: &str,
    command: &str,
    db: &str,
    coll: &str,
) -> Result<(), Document> {
    let need = need(command);
    if need == Need::Nothing {
        return Ok(());
    }
    let Some(user) = &conn.user else {
        return Err(error(
            13,
            "Unauthorized",
            &format!("Command {name} requires authentication"),
        ));
    };
    let allowed = match need {
        Need::Read => user.roles.iter().any(|r| r.can_read(db)),
        Need::Write => user.roles.iter().any(|r| r.can_write(db)),
        _ => true,
    };
    if allowed {
        return Ok(());
    }
    Err(match shared.cfg.mode {
        Mode::Dedicated => error(
            13,
            "Unauthorized",
            &format!(
                "not authorized on {db} to execute command {{ {name}: \"{coll}\", $db: \"{db}\" }}"
            ),
        ),
        Mode::Proxy => error(
            8000,
            "AtlasError",
            &format!(
                "user is not allowed to do action [{}] on [{db}.{coll}]",
                action(command)
            ),
        ),
    })
}

pub async fn dispatch(request: &Request, conn: &mut Conn, shared: &Shared) -> Document {
    let body = request.body();
    let Some((name, first)) = body.iter().next() else {
        return error(59, "CommandNotFound", "no command given");
    };
    let name = name.clone();
    let command = name.to_ascii_lowercase();
    let db = match request {
        Request::Msg { .. } => body.get_str("$db").unwrap_or("admin").to_string(),
        Request::Query { collection, .. } => {
            collection.split('.').next().unwrap_or("admin").to_string()
        }
    };
    let coll = match first {
        Bson::String(s) => s.clone(),
        _ => body.get_str("collection").unwrap_or_default().to_string(),
    };
    if let Err(e) = authorize(conn, shared, &name, &command, &db, &coll) {
        return e;
    }
    match command.as_str() {
        "hello" | "ismaster" => hello(shared, command == "hello" || body.contains_key("helloOk")),
        "ping" | "endsessions" | "logout" => ok(doc! {}),
        "buildinfo" => ok(doc! {
            "version": "7.0.12", "versionArray": [7, 0, 12, 0], "gitVersion": "local-atlas",
            "maxBsonObjectSize": MAX_BSON, "modules": ["enterprise"],
        }),
        "saslstart" => auth::sasl_start(body, &db, conn, shared),
        "saslcontinue" => auth::sasl_continue(body, conn, shared).await,
        _ => {
            let Ok(mut store) = shared.store.lock() else {
                return error(1, "InternalError", "store unavailable");
            };
            store.command(&command, body, &db, &coll, shared)
        }
    }
}

fn hello(shared: &Shared, hello_ok: bool) -> Document {
    let mut d = doc! {
        "isWritablePrimary": true,
        "ismaster": true,
        "maxBsonObjectSize": MAX_BSON,
        // a hostile server announces the largest size, so that a driver that trusts it reads
        // whatever follows
        "maxMessageSizeBytes": if shared.cfg.fault == Some(crate::server::Fault::HugeSaslReply) {
            i32::MAX
        } else {
            MAX_MESSAGE as i32
        },
        "maxWriteBatchSize": 100_000,
        "localTime": bson::DateTime::now(),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": shared.next(),
        "minWireVersion": 0,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": false,
    };
    if hello_ok {
        d.insert("helloOk", true);
    }
    if let Some(rs) = &shared.cfg.replica_set {
        d.insert("setName", rs.name.clone());
        d.insert("setVersion", 1);
        d.insert("hosts", rs.hosts.clone());
        if let Some(me) = rs.hosts.first() {
            d.insert("primary", me.clone());
            d.insert("me", me.clone());
        }
        d.insert("secondary", false);
        d.insert(
            "electionId",
            ObjectId::parse_str("7fffffff0000000000000001").unwrap_or_default(),
        );
    }
    ok(d)
}

fn matches(doc: &Document, filter: &Document) -> bool {
    filter.iter().all(|(k, v)| {
        let want = match v {
            Bson::Document(d) if d.len() == 1 && d.contains_key("$eq") => d.get("$eq"),
            other => Some(other),
        };
        doc.get(k) == want
    })
}

fn filter_of(body: &Document, key: &str) -> Document {
    body.get_document(key).cloned().unwrap_or_default()
}

fn batch_size(body: &Document, key: &str) -> usize {
    match body.get(key) {
        Some(Bson::Int32(n)) if *n > 0 => *n as usize,
        Some(Bson::Int64(n)) if *n > 0 => *n as usize,
        Some(Bson::Double(n)) if *n > 0.0 => *n as usize,
        _ => 101,
    }
}

fn int(body: &Document, key: &str) -> i64 {
    match body.get(key) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

impl Store {
    /// The number of documents in a collection; None when it does not exist.
    pub fn count(&self, db: &str, coll: &str) -> Option<usize> {
        self.coll(db, coll).map(Vec::len)
    }

    fn coll(&self, db: &str, coll: &str) -> Option<&Vec<Document>> {
        self.dbs.get(db).and_then(|d| d.get(coll))
    }

    fn coll_mut(&mut self, db: &str, coll: &str) -> &mut Vec<Document> {
        self.dbs
            .entry(db.to_string())
            .or_default()
            .entry(coll.to_string())
            .or_default()
    }

    fn cursor(
        &mut self,
        shared: &Shared,
        ns: String,
        mut docs: Vec<Document>,
        size: usize,
        first: bool,
    ) -> Document {
        let rest = if docs.len() > size {
            docs.split_off(size)
        } else {
            Vec::new()
        };
        let id = if rest.is_empty() {
            0
        } else {
            let id = shared.next();
            self.cursors.insert(
                id,
                CursorState {
                    ns: ns.clone(),
                    docs: rest,
                },
            );
            id
        };
        let key = if first { "firstBatch" } else { "nextBatch" };
        ok(doc! { "cursor": { "id": id, "ns": ns, key: docs } })
    }

    fn command(
        &mut self,
        command: &str,
        body: &Document,
        db: &str,
        coll: &str,
        shared: &Shared,
    ) -> Document {
        let ns = format!("{db}.{coll}");
        match command {
            "listdatabases" => {
                let dbs: Vec<Document> = self
                    .dbs
                    .keys()
                    .map(|n| doc! { "name": n.clone(), "sizeOnDisk": 0_i64, "empty": false })
                    .collect();
                ok(doc! { "databases": dbs, "totalSize": 0_i64 })
            }
            "listcollections" => {
                let filter = filter_of(body, "filter");
                let colls: Vec<Document> = self.dbs.get(db).map(|d| d.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| doc! { "name": n, "type": "collection", "options": {}, "info": { "readOnly": false } })
                    .filter(|c| matches(c, &filter))
                    .collect();
                let size = body
                    .get_document("cursor")
                    .map(|c| batch_size(c, "batchSize"))
                    .unwrap_or(101);
                self.cursor(
                    shared,
                    format!("{db}.$cmd.listCollections"),
                    colls,
                    size,
                    true,
                )
            }
            "create" => {
                if self.coll(db, coll).is_some() {
                    return error(
                        48,
                        "NamespaceExists",
                        &format!("Collection {ns} already exists."),
                    );
                }
                self.coll_mut(db, coll);
                ok(doc! {})
            }
            "drop" => match self.dbs.get_mut(db).and_then(|d| d.remove(coll)) {
                Some(_) => ok(doc! { "ns": ns, "nIndexesWas": 1 }),
                None => error(26, "NamespaceNotFound", "ns not found"),
            },
            "insert" => {
                let docs = body.get_array("documents").cloned().unwrap_or_default();
                let target = self.coll_mut(db, coll);
                let mut n = 0;
                let mut write_errors = Vec::new();
                for (index, d) in docs.into_iter().enumerate() {
                    let Bson::Document(mut d) = d else { continue };
                    if !d.contains_key("_id") {
                        d.insert("_id", ObjectId::new());
                    }
                    if target.iter().any(|x| x.get("_id") == d.get("_id")) {
                        write_errors.push(doc! { "index": index as i32, "code": 11000,
                            "errmsg": format!("E11000 duplicate key error collection: {ns} index: _id_") });
                        continue;
                    }
                    target.push(d);
                    n += 1;
                }
                let mut reply = doc! { "n": n };
                if !write_errors.is_empty() {
                    reply.insert("writeErrors", write_errors);
                }
                ok(reply)
            }
            "find" => {
                let filter = filter_of(body, "filter");
                let skip = int(body, "skip").max(0) as usize;
                let limit = int(body, "limit").unsigned_abs() as usize;
                let mut docs: Vec<Document> = self
                    .coll(db, coll)
                    .map(|c| {
                        c.iter()
                            .filter(|d| matches(d, &filter))
                            .skip(skip)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if limit > 0 {
                    docs.truncate(limit);
                }
                let single =
                    body.get_bool("singleBatch").unwrap_or(false) || int(body, "limit") < 0;
                let size = if single {
                    usize::MAX
                } else {
                    batch_size(body, "batchSize")
                };
                self.cursor(shared, ns, docs, size, true)
            }
            "getmore" => {
                let id = int(body, "getMore");
                let Some(state) = self.cursors.remove(&id) else {
                    return error(43, "CursorNotFound", &format!("cursor id {id} not found"));
                };
                let size = batch_size(body, "batchSize");
                self.cursor(shared, state.ns, state.docs, size, false)
            }
            "killcursors" => {
                let ids: Vec<Bson> = body.get_array("cursors").cloned().unwrap_or_default();
                let mut killed = Vec::new();
                for id in ids {
                    let id = match id {
                        Bson::Int64(i) => i,
                        Bson::Int32(i) => i64::from(i),
                        _ => continue,
                    };
                    if self.cursors.remove(&id).is_some() {
                        killed.push(id);
                    }
                }
                ok(
                    doc! { "cursorsKilled": killed, "cursorsNotFound": [], "cursorsAlive": [], "cursorsUnknown": [] },
                )
            }
            "delete" => {
                let deletes = body.get_array("deletes").cloned().unwrap_or_default();
                let target = self.coll_mut(db, coll);
                let mut n = 0;
                for d in deletes {
                    let Bson::Document(d) = d else { continue };
                    let q = filter_of(&d, "q");
                    let one = int(&d, "limit") == 1;
                    while let Some(pos) = target.iter().position(|x| matches(x, &q)) {
                        target.remove(pos);
                        n += 1;
                        if one {
                            break;
                        }
                    }
                }
                ok(doc! { "n": n })
            }
            "count" => {
                let q = filter_of(body, "query");
                let n = self
                    .coll(db, coll)
                    .map(|c| c.iter().filter(|d| matches(d, &q)).count())
                    .unwrap_or(0);
                ok(doc! { "n": n as i64 })
            }
            "aggregate" => self.aggregate(body, db, coll, shared),
            other => error(
                59,
                "CommandNotFound",
                &format!("no such command: '{other}'"),
            ),
        }
    }

    /// $match, $skip, $limit, $count and a counting $group: what drivers' count helpers send.
    fn aggregate(&mut self, body: &Document, db: &str, coll: &str, shared: &Shared) -> Document {
        let mut docs: Vec<Document> = self.coll(db, coll).cloned().unwrap_or_default();
        for stage in body.get_array("pipeline").cloned().unwrap_or_default() {
            let Bson::Document(stage) = stage else {
                return error(14, "TypeMismatch", "pipeline stage is not a document");
            };
            let Some((op, arg)) = stage.iter().next() else {
                continue;
            };
            match (op.as_str(), arg) {
                ("$match", Bson::Document(f)) => docs.retain(|d| matches(d, f)),
                ("$skip", _) => {
                    let n = int(&stage, "$skip").max(0) as usize;
                    docs = docs.into_iter().skip(n).collect();
                }
                ("$limit", _) => docs.truncate(int(&stage, "$limit").max(0) as usize),
                ("$count", Bson::String(field)) => {
                    docs = if docs.is_empty() {
                        vec![]
                    } else {
                        vec![doc! { field.clone(): docs.len() as i32 }]
                    };
                }
                ("$group", Bson::Document(g)) => {
                    let id = g.get("_id").cloned().unwrap_or(Bson::Null);
                    let mut out = doc! { "_id": id };
                    for (k, v) in g.iter().filter(|(k, _)| *k != "_id") {
                        if v == &Bson::Document(doc! { "$sum": 1 }) {
                            out.insert(k.clone(), docs.len() as i32);
                        } else {
                            return error(
                                2,
                                "BadValue",
                                &format!("unsupported $group accumulator for {k}"),
                            );
                        }
                    }
                    docs = if docs.is_empty() { vec![] } else { vec![out] };
                }
                (other, _) => {
                    return error(
                        2,
                        "BadValue",
                        &format!("local-atlas does not support {other}"),
                    )
                }
            }
        }
        let size = body
            .get_document("cursor")
            .map(|c| batch_size(c, "batchSize"))
            .unwrap_or(101);
        self.cursor(shared, format!("{db}.{coll}"), docs, size, true)
    }
}
