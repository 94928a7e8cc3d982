//! An Atlas Admin API v2 stand-in on 127.0.0.1: the endpoints atlas-iam reads for one project,
//! behind HTTP Digest (a project API key) or an OAuth2 bearer token from `/api/oauth/token` (a
//! service account), with the versioned Accept header required. Its users are the local Atlas's
//! own table, and its database access history the local Atlas's own attempts, so both always
//! agree.
//!
//! Each answer follows a path of the published document (mongodb/openapi, `openapi/v2/`; the
//! facts gathered in ATLAS.md, "The Atlas Admin API by its published document"); the comment at
//! each one names it, and says where a fact is not published and the stand-in assumes it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::server::{DbUser, Role, Shared, CLUSTER_NAME};

pub const PROJECT_ID: &str = "5f1e2d3c4b5a697887766554";
pub const PUBLIC_KEY: &str = "abcdwxyz";
pub const PRIVATE_KEY: &str = "11111111-2222-4333-8444-p41v4t3k3y00";
pub const CLIENT_ID: &str = "mdb_sa_id_0123456789abcdef01234567";
pub const CLIENT_SECRET: &str = "mdb_sa_sk_s3rv1c3s3cr3tv4lu3xyz";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.stand-in-access-token.sig";
const REALM: &str = "MMS Public API";
/// The versions each list is served in, current first (mongodb/openapi, `openapi/v2/`: the
/// clusters list's 2023-01-01 and 2023-02-01 carry `x-sunset: 2027-07-01`; flexClusters exists
/// only from 2024-11-13).
fn versions(resource: &str) -> &'static [&'static str] {
    match resource {
        "clusters" => &["2024-08-05", "2023-02-01", "2023-01-01"],
        "flexClusters" => &["2024-11-13"],
        _ => &["2023-01-01"],
    }
}

/// A version the document marks deprecated, with its sunset (the headers Atlas sends with it).
fn deprecated(resource: &str, version: &str) -> Option<&'static str> {
    (resource == "clusters" && matches!(version, "2023-01-01" | "2023-02-01"))
        .then_some("Thu, 01 Jul 2027 00:00:00 GMT")
}

/// What the stand-in gets wrong on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminFault {
    /// Every request is refused as if this machine were not on the API key's access list.
    NotOnApiAccessList,
    /// The database users may not be read (a key without Project Read Only).
    NoReadPermission,
    /// Accepts connections and never answers.
    Silent,
    /// The database users' version is past its sunset (410 VERSION_GONE), as every version will
    /// be one day; the other lists still answer.
    UsersVersionGone,
    /// The database users' version is deprecated: answers carry Deprecation and Sunset headers
    /// (what Atlas sends for a deprecated version).
    UsersDeprecated,
    /// A hostile API: every page of the access list is full, and the total never reached (an
    /// assumption to test a bound, not an answer Atlas gives).
    EndlessPages,
}

/// The project roles of the API key (or service account), as Atlas names them. Each endpoint
/// needs the role its operation's description names ("To use this resource, the requesting
/// Service Account or API Key must have the … role"): the lists and the cluster status Project
/// Read Only; the database access history Project Monitoring Admin or Project Database Access
/// Admin (Owner has both); userSecurity Project Owner.
pub const READ_ONLY: &str = "GROUP_READ_ONLY";
pub const MONITORING_ADMIN: &str = "GROUP_MONITORING_ADMIN";
pub const DATABASE_ACCESS_ADMIN: &str = "GROUP_DATABASE_ACCESS_ADMIN";
pub const OWNER: &str = "GROUP_OWNER";

/// The cluster as the API shows it.
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub paused: bool,
    pub version: String,
    /// The connection strings' host lists (standard) and SRV name.
    pub standard: String,
    pub standard_srv: Option<String>,
    /// A Flex cluster: listed only at `/flexClusters` (since January 2026), in its own shape.
    pub flex: bool,
}

/// The project's state besides its users (those are the local Atlas's).
#[derive(Clone, Debug)]
pub struct AdminState {
    pub cluster: ClusterState,
    /// (CIDR, comment)
    pub access_list: Vec<(String, String)>,
    pub fault: Option<AdminFault>,
    /// Serve at most this many entries a page, whatever `itemsPerPage` asks, with `totalCount`
    /// and a `next` link (the document's paging, `links[].rel`; a cap below the request is an
    /// assumption that tests a client that must not trust short pages).
    pub page_cap: Option<usize>,
    /// The key's project roles (`READ_ONLY`, `MONITORING_ADMIN`, …).
    pub key_roles: Vec<&'static str>,
    /// The cluster's `changeStatus`: `APPLIED`, or `PENDING` while a change (a database user
    /// created a moment ago) is not yet deployed.
    pub change_status: &'static str,
    /// Database users the project has and the cluster does not have yet: listed by the API,
    /// refused by the local Atlas until `AdminApi::apply`.
    pub pending_users: Vec<(String, DbUser)>,
    /// `userSecurity.ldap.authorizationEnabled`: LDAP authorization on for the project.
    pub ldap_authorization: bool,
}

impl AdminState {
    /// The project as `atlas-iam`'s tests start it: one cluster, one access-list entry, a key
    /// with Project Read Only, every change applied.
    pub fn new(cluster: ClusterState) -> AdminState {
        AdminState {
            cluster,
            access_list: vec![("203.0.113.7/32".into(), "office".into())],
            fault: None,
            page_cap: None,
            key_roles: vec![READ_ONLY],
            change_status: "APPLIED",
            pending_users: Vec::new(),
            ldap_authorization: false,
        }
    }
}

pub struct AdminApi {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<AdminState>>,
    users: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AdminApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Ctx {
    users: Arc<Shared>,
    state: Arc<Mutex<AdminState>>,
}

impl AdminApi {
    pub async fn start(users: Arc<Shared>, state: AdminState) -> std::io::Result<AdminApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(state));
        let ctx = Arc::new(Ctx {
            users: users.clone(),
            state: state.clone(),
        });
        let task = tokio::spawn(crate::http::serve(listener, move |req| {
            handle(req, ctx.clone())
        }));
        Ok(AdminApi {
            addr,
            state,
            users,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn update(&self, f: impl FnOnce(&mut AdminState)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// Registers a database user as a change not yet deployed: the API lists it, the cluster's
    /// `changeStatus` is `PENDING`, and the local Atlas refuses it until `apply`.
    pub fn add_pending_user(&self, arn: &str, user: DbUser) {
        self.update(|s| {
            s.pending_users.push((arn.to_string(), user));
            s.change_status = "PENDING";
        });
    }

    /// Deploys the pending change: the local Atlas gets the users, and the status is `APPLIED`.
    pub fn apply(&self) {
        apply(&self.state, &self.users);
    }

    /// Deploys the pending change after `delay`, as Atlas does a moment after the API call.
    pub fn apply_after(&self, delay: std::time::Duration) -> impl std::future::Future<Output = ()> {
        let (state, users) = (self.state.clone(), self.users.clone());
        async move {
            tokio::time::sleep(delay).await;
            apply(&state, &users);
        }
    }
}

fn apply(state: &Mutex<AdminState>, users: &Shared) {
    let pending = match state.lock() {
        Ok(mut s) => {
            s.change_status = "APPLIED";
            std::mem::take(&mut s.pending_users)
        }
        Err(_) => return,
    };
    if let Ok(mut users) = users.users.write() {
        users.extend(pending);
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn api_error(status: StatusCode, code: &str, detail: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        json!({"detail": detail, "error": status.as_u16(), "errorCode": code, "parameters": [],
               "reason": status.canonical_reason().unwrap_or("")}),
    )
}

fn md5_hex(s: &str) -> String {
    use md5::Digest;
    let d = md5::Md5::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// `key="value", key=value` pairs of a Digest header.
fn digest_fields(header: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let rest = header.trim_start().strip_prefix("Digest").unwrap_or("");
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            chars.by_ref().take_while(|c| *c != '"').collect()
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    out
}

/// Whether a Digest answer is right for this key (RFC 2617, qop=auth, MD5).
fn digest_ok(header: &str, method: &str, path_and_query: &str) -> bool {
    let f = digest_fields(header);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("username") != PUBLIC_KEY || get("realm") != REALM || get("uri") != path_and_query {
        return false;
    }
    let ha1 = md5_hex(&format!("{PUBLIC_KEY}:{REALM}:{PRIVATE_KEY}"));
    let ha2 = md5_hex(&format!("{method}:{}", get("uri")));
    let expected = md5_hex(&format!(
        "{ha1}:{}:{}:{}:{}:{ha2}",
        get("nonce"),
        get("nc"),
        get("cnonce"),
        get("qop")
    ));
    get("response") == expected
}

/// A wrong key, as real Atlas answers it (recorded in the Atlas CLI's e2e snapshots): a 401
/// with a new challenge and `UNEXPECTED_ERROR`.
fn challenge() -> Response<Full<Bytes>> {
    let nonce: u64 = rand::random();
    let mut r = api_error(
        StatusCode::UNAUTHORIZED,
        "UNEXPECTED_ERROR",
        "You are not authorized for this resource.",
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!(
        "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce:016x}\", algorithm=MD5, qop=\"auth\", stale=false"
    )) {
        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
    }
    r
}

fn role_json(r: &Role) -> Value {
    match r {
        Role::Read(db) => json!({"roleName": "read", "databaseName": db}),
        Role::ReadWrite(db) => json!({"roleName": "readWrite", "databaseName": db}),
        Role::ReadAnyDatabase => json!({"roleName": "readAnyDatabase", "databaseName": "admin"}),
        Role::ReadWriteAnyDatabase => {
            json!({"roleName": "readWriteAnyDatabase", "databaseName": "admin"})
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    ctx: Arc<Ctx>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let state = match ctx.state.lock() {
        Ok(s) => s.clone(),
        Err(_) => {
            return Ok(api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNEXPECTED_ERROR",
                "state",
            ))
        }
    };
    if state.fault == Some(AdminFault::Silent) {
        std::future::pending::<()>().await;
    }
    if state.fault == Some(AdminFault::NotOnApiAccessList) {
        // real Atlas: 403 IP_ADDRESS_NOT_ON_ACCESS_LIST (same source)
        return Ok(api_error(
            StatusCode::FORBIDDEN,
            "IP_ADDRESS_NOT_ON_ACCESS_LIST",
            "IP address 127.0.0.1 is not allowed to access this resource.",
        ));
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorization = header(hyper::header::AUTHORIZATION);
    let accept = header(hyper::header::ACCEPT);

    // POST /api/oauth/token: a service account's client-credentials grant (Basic auth, form
    // grant_type=client_credentials, a bearer token for an hour). The refusal's body is the OAuth2
    // error shape; Atlas's exact text is not published, this one is assumed.
    if method == Method::POST && path == "/api/oauth/token" {
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let form_ok = body
            .as_ref()
            .is_ok_and(|b| String::from_utf8_lossy(b).contains("grant_type=client_credentials"));
        if authorization.as_deref() != Some(&format!("Basic {basic}")) || !form_ok {
            return Ok(reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
            ));
        }
        return Ok(reply(
            StatusCode::OK,
            json!({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}),
        ));
    }

    let authorized = match authorization.as_deref() {
        Some(a) if a.starts_with("Bearer ") => a == format!("Bearer {TOKEN}"),
        Some(a) if a.starts_with("Digest ") => digest_ok(a, method.as_str(), &path_and_query),
        _ => false,
    };
    if !authorized {
        return Ok(
            if authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer "))
            {
                api_error(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "You are not authorized for this resource.",
                )
            } else {
                challenge()
            },
        );
    }
    let Some(rest) = path.strip_prefix("/api/atlas/v2/groups/") else {
        return Ok(api_error(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "Not Found",
        ));
    };
    let (group, resource) = rest.split_once('/').unwrap_or((rest, ""));
    let version = accept
        .as_deref()
        .and_then(|a| a.strip_prefix("application/vnd.atlas."))
        .and_then(|a| a.strip_suffix("+json"))
        .unwrap_or("")
        .to_string();
    // Every operation requires `Accept: application/vnd.atlas.<version>+json`; an unknown or
    // missing version is refused (406 INVALID_VERSION_DATE: the code is Atlas's, the detail text
    // is assumed)
    if !versions(resource).contains(&version.as_str()) {
        return Ok(api_error(
            StatusCode::NOT_ACCEPTABLE,
            "INVALID_VERSION_DATE",
            "The version date is invalid or missing.",
        ));
    }
    if resource == "databaseUsers" && state.fault == Some(AdminFault::UsersVersionGone) {
        return Ok(api_error(
            StatusCode::GONE,
            "VERSION_GONE",
            &format!("The requested API version {version} is no longer supported."),
        ));
    }
    let sunset = deprecated(resource, &version).or((resource == "databaseUsers"
        && state.fault == Some(AdminFault::UsersDeprecated))
    .then_some("Thu, 01 Jul 2027 00:00:00 GMT"));
    let mut answer = handle_list(
        &state,
        &ctx,
        method.clone(),
        group,
        resource,
        &path,
        &path_and_query,
    )
    .await;
    if let (Some(sunset), Ok(r)) = (sunset, answer.as_mut()) {
        let h = r.headers_mut();
        h.insert(
            "Deprecation",
            hyper::header::HeaderValue::from_static("Mon, 01 Jul 2024 00:00:00 GMT"),
        );
        if let Ok(v) = hyper::header::HeaderValue::from_str(sunset) {
            h.insert("Sunset", v);
        }
    }
    answer
}

/// A list of the project, paged as the document pages lists.
async fn handle_list(
    state: &AdminState,
    ctx: &Ctx,
    method: Method,
    group: &str,
    resource: &str,
    path: &str,
    path_and_query: &str,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    // another project: 404 GROUP_NOT_FOUND "No group with ID … exists." (real Atlas answers,
    // ATLAS.md)
    if group != PROJECT_ID {
        return Ok(api_error(
            StatusCode::NOT_FOUND,
            "GROUP_NOT_FOUND",
            &format!("No group with ID {group} exists."),
        ));
    }
    // itemsPerPage (default 100, at most 500) and pageNum (from 1), as the document pages lists
    let query = |name: &str| {
        path_and_query
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let per_page = query("itemsPerPage").unwrap_or(100).clamp(1, 500);
    let per_page = state.page_cap.map_or(per_page, |cap| per_page.min(cap));
    let page_num = query("pageNum").unwrap_or(1).max(1);
    let page = |results: Vec<Value>| {
        let n = results.len();
        let start = (page_num - 1).saturating_mul(per_page).min(n);
        let end = (start + per_page).min(n);
        let mut links = vec![json!({"rel": "self", "href": path_and_query})];
        if end < n {
            links.push(json!({"rel": "next", "href": format!("{path}?pageNum={}", page_num + 1)}));
        }
        reply(
            StatusCode::OK,
            json!({"results": results[start..end].to_vec(), "totalCount": n, "links": links}),
        )
    };
    Ok(match (method, resource) {
        // GET /groups/{groupId}/databaseUsers (2023-01-01): PaginatedApiAtlasDatabaseUser,
        // CloudDatabaseUser {username, databaseName, awsIAMType, roles[], scopes[], ldapAuthType,
        // x509Type, oidcAuthType}
        (Method::GET, "databaseUsers") => {
            if state.fault == Some(AdminFault::NoReadPermission) {
                // as real Atlas answers a valid key without Project Read Only (recorded in the
                // Atlas CLI's e2e snapshots; ATLAS.md, "The Atlas Admin API by its published
                // document"): a 401, not a 403, told from a wrong key by its errorCode
                unauthorized()
            } else {
                let users = ctx
                    .users
                    .users
                    .read()
                    .map(|u| u.clone())
                    .unwrap_or_default();
                let mut users: Vec<_> = users.into_iter().collect();
                users.extend(state.pending_users.iter().cloned());
                users.sort_by(|a, b| a.0.cmp(&b.0));
                page(
                    users
                        .iter()
                        .map(|(arn, u)| {
                            json!({
                                "username": arn, "databaseName": "$external", "groupId": PROJECT_ID,
                                "awsIAMType": u.iam_type.name(), "ldapAuthType": "NONE",
                                "x509Type": "NONE", "oidcAuthType": "NONE",
                                "roles": u.roles.iter().map(role_json).collect::<Vec<_>>(),
                                "scopes": u.scopes.iter().map(|s| json!({"name": s, "type": "CLUSTER"})).collect::<Vec<_>>(),
                            })
                        })
                        .collect(),
                )
            }
        }
        // GET /groups/{groupId}/flexClusters (2024-11-13): PaginatedFlexClusters20241113
        (Method::GET, "flexClusters") => {
            let c = &state.cluster;
            let mut strings = json!({"standard": c.standard});
            if let Some(srv) = &c.standard_srv {
                strings["standardSrv"] = json!(srv);
            }
            // the FlexClusterDescription20241113 shape: provider FLEX, the real cloud backing it
            page(if c.flex {
                vec![json!({
                    "name": CLUSTER_NAME, "stateName": "IDLE", "mongoDBVersion": c.version,
                    "connectionStrings": strings, "groupId": PROJECT_ID, "clusterType": "REPLICASET",
                    "providerSettings": {"providerName": "FLEX", "backingProviderName": "AWS", "regionName": "US_EAST_1"},
                })]
            } else {
                Vec::new()
            })
        }
        // GET /groups/{groupId}/clusters (2024-08-05; 2023-01-01 and 2023-02-01 deprecated, sunset
        // 2027-07-01): PaginatedClusterDescription20240805, `replicationSpecs[].regionConfigs[]`
        // with providerName. Since January 2026 Flex clusters are not in this list.
        (Method::GET, "clusters") => {
            let c = &state.cluster;
            let mut strings = json!({"standard": c.standard});
            if let Some(srv) = &c.standard_srv {
                strings["standardSrv"] = json!(srv);
            }
            if c.flex {
                return Ok(page(vec![json!({
                    "name": "Cluster9", "stateName": "IDLE", "paused": false, "mongoDBVersion": "8.0.4",
                    "connectionStrings": {"standardSrv": "mongodb+srv://cluster9.zz99z.mongodb.net"},
                    "replicationSpecs": [{"regionConfigs": [{"providerName": "GCP"}]}],
                })]));
            }
            page(vec![
                json!({
                    "name": "Cluster9", "stateName": "IDLE", "paused": false, "mongoDBVersion": "8.0.4",
                    "connectionStrings": {"standardSrv": "mongodb+srv://cluster9.zz99z.mongodb.net"},
                    "replicationSpecs": [{"regionConfigs": [{"providerName": "GCP"}]}],
                }),
                json!({
                    "name": CLUSTER_NAME, "stateName": "IDLE", "paused": c.paused,
                    "mongoDBVersion": c.version, "connectionStrings": strings,
                    "replicationSpecs": [{"regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1"}]}],
                }),
            ])
        }
        (Method::GET, "accessList") if state.fault == Some(AdminFault::EndlessPages) => {
            let entries: Vec<Value> = (0..500)
                .map(|i| json!({"cidrBlock": format!("10.{}.{}.0/24", i / 250, i % 250), "comment": "x".repeat(400)}))
                .collect();
            reply(
                StatusCode::OK,
                json!({"results": entries, "totalCount": 10_000_000, "links": []}),
            )
        }
        // GET /groups/{groupId}/accessList (2023-01-01): PaginatedNetworkAccessView, entries
        // {cidrBlock | ipAddress | awsSecurityGroup, comment, groupId}
        (Method::GET, "accessList") => page(
            state
                .access_list
                .iter()
                .map(|(cidr, comment)| json!({"cidrBlock": cidr, "comment": comment, "groupId": PROJECT_ID}))
                .collect(),
        ),
        (Method::GET, r) if r.starts_with("clusters/") || r.starts_with("dbAccessHistory/clusters/") => {
            let (name, what) = match r.strip_prefix("dbAccessHistory/clusters/") {
                Some(name) => (name, "history"),
                None => match r.trim_start_matches("clusters/").split_once('/') {
                    Some((name, "status")) => (name, "status"),
                    _ => return Ok(api_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Not Found")),
                },
            };
            if name != CLUSTER_NAME && name != "Cluster9" {
                return Ok(api_error(
                    StatusCode::NOT_FOUND,
                    "CLUSTER_NOT_FOUND",
                    &format!("No cluster named {name} exists in group {group}."),
                ));
            }
            if what == "status" {
                // GET /groups/{groupId}/clusters/{clusterName}/status (2023-01-01): ClusterStatus,
                // `changeStatus` PENDING | APPLIED; any project role reads it
                return Ok(reply(StatusCode::OK, json!({"changeStatus": state.change_status})));
            }
            // GET /groups/{groupId}/dbAccessHistory/clusters/{clusterName} (2023-01-01):
            // MongoDBAccessLogsList {accessLogs}; Project Monitoring Admin or Project Database
            // Access Admin; `start`/`end` in epoch milliseconds, `ipAddress`, `authResult`
            // (true: successes only), `nLogs` (default 20000). Not for tenant or Flex clusters.
            if !state.key_roles.iter().any(|r| [MONITORING_ADMIN, DATABASE_ACCESS_ADMIN, OWNER].contains(r)) {
                return Ok(unauthorized());
            }
            let raw = |name: &str| {
                path_and_query
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or("")
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
            };
            let start = raw("start").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let end = raw("end").and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
            let n_logs = raw("nLogs").and_then(|v| v.parse::<usize>().ok()).unwrap_or(20_000);
            let only_ok = raw("authResult").as_deref() == Some("true");
            let ip = raw("ipAddress");
            let log = ctx.users.access_log.lock().map(|l| l.clone()).unwrap_or_default();
            let logs: Vec<Value> = log
                .iter()
                .rev()
                .filter(|a| a.at_ms >= start && a.at_ms <= end)
                .filter(|a| !only_ok || a.ok)
                .filter(|a| ip.as_ref().is_none_or(|ip| *ip == a.ip))
                .take(n_logs)
                .map(|a| {
                    let timestamp = bson::DateTime::from_millis(a.at_ms as i64)
                        .try_to_rfc3339_string()
                        .unwrap_or_default();
                    json!({
                        "authResult": a.ok, "authSource": "$external", "failureReason": a.failure_reason,
                        "groupId": PROJECT_ID, "hostname": "atlas-abc123-shard-00-00.ab12c.mongodb.net",
                        "ipAddress": a.ip, "logLine": a.log_line, "timestamp": timestamp,
                        "username": a.username,
                    })
                })
                .collect();
            reply(StatusCode::OK, json!({"accessLogs": logs}))
        }
        (Method::GET, "userSecurity") => {
            // GET /groups/{groupId}/userSecurity (2023-01-01): UserSecurity {customerX509, ldap};
            // Project Owner only
            if !state.key_roles.contains(&OWNER) {
                return Ok(unauthorized());
            }
            let on = state.ldap_authorization;
            reply(
                StatusCode::OK,
                json!({"customerX509": {}, "ldap": {
                    "authenticationEnabled": on, "authorizationEnabled": on,
                    "hostname": if on { json!("ldap.example.test") } else { Value::Null }, "port": 636,
                }}),
            )
        }
        _ => api_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND", "Not Found"),
    })
}

/// A valid key without the role an endpoint needs, as real Atlas answers it (the Atlas CLI's e2e
/// snapshots): a 401 told from a wrong key by its errorCode.
fn unauthorized() -> Response<Full<Bytes>> {
    api_error(
        StatusCode::UNAUTHORIZED,
        "USER_UNAUTHORIZED",
        "Current user is not authorized to perform this action.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_answers_are_checked() {
        let uri = "/api/atlas/v2/groups/x/clusters?pageNum=1";
        let ha1 = md5_hex(&format!("{PUBLIC_KEY}:{REALM}:{PRIVATE_KEY}"));
        let ha2 = md5_hex(&format!("GET:{uri}"));
        let response = md5_hex(&format!("{ha1}:n1:00000001:c1:auth:{ha2}"));
        let header = format!(
            r#"Digest username="{PUBLIC_KEY}", realm="{REALM}", nonce="n1", uri="{uri}", qop=auth, nc=00000001, cnonce="c1", response="{response}", algorithm=MD5"#
        );
        assert!(digest_ok(&header, "GET", uri));
        assert!(!digest_ok(&header.replace("n1", "n2"), "GET", uri));
        assert!(!digest_ok(&header, "GET", "/other"));
    }
}
