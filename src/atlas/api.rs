//! The Atlas Admin API v2, read-only: the project's database users, its clusters and its IP
//! access list, with a project API key (HTTP Digest) or a service account (OAuth2 client
//! credentials). Every request is bounded; every failure is a diagnosis of the `atlas` stage.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::diagnosis::{Diagnosis, Kind};
use crate::secret::Secret;

/// The version each list is read with: the current, non-deprecated one of each endpoint in the
/// published document (mongodb/openapi, `openapi/v2/`): the clusters list's 2023-01-01 and
/// 2023-02-01 are deprecated with `x-sunset: 2027-07-01`; Flex clusters are listed only at
/// `flexClusters`, from 2024-11-13.
pub(crate) const USERS_VERSION: &str = "2023-01-01";
pub(crate) const CLUSTERS_VERSION: &str = "2024-08-05";
pub(crate) const FLEX_VERSION: &str = "2024-11-13";
pub(crate) const ACCESS_LIST_VERSION: &str = "2023-01-01";
/// Read only after a refused authentication: the cluster's change status, its database access
/// history and the project's LDAP settings (each 2023-01-01, the only version published).
pub(crate) const STATUS_VERSION: &str = "2023-01-01";
pub(crate) const HISTORY_VERSION: &str = "2023-01-01";
pub(crate) const USER_SECURITY_VERSION: &str = "2023-01-01";
/// The most attempts of the access history asked for (`nLogs`; the API's default is 20000).
const HISTORY_LINES: usize = 200;
/// Where Atlas serves it.
pub(crate) const DEFAULT_BASE_URL: &str = "https://cloud.mongodb.com";
/// The largest response body read (a project's users fit many times over).
const MAX_BODY: usize = 4 << 20;
/// What one list may hold, over all its pages: far above Atlas's own limits (100 database users
/// and 200 access-list entries a project), so that a hostile API cannot fill memory or the report.
const MAX_ITEMS: usize = 2_000;
const MAX_LIST_BYTES: usize = 16 << 20;
/// Items per page, and the most pages read of one list.
const PAGE: usize = 500;
const MAX_PAGES: usize = 20;

/// How the API is authenticated.
#[derive(Clone, Debug)]
pub enum ApiAuth {
    /// A project (or organisation) API key: HTTP Digest, the private key never sent.
    ApiKey {
        public_key: String,
        private_key: Secret<String>,
    },
    /// A service account: an OAuth2 access token from its client id and secret.
    ServiceAccount {
        client_id: String,
        client_secret: Secret<String>,
    },
}

/// What `--atlas` needs: the project, the credentials and where the API is.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub project_id: String,
    pub auth: ApiAuth,
    pub base_url: String,
}

impl ApiConfig {
    /// The variable (or flag) names of the credentials in use, for texts.
    pub fn credential_names(&self) -> &'static str {
        match self.auth {
            ApiAuth::ApiKey { .. } => {
                "MONGODB_ATLAS_PUBLIC_API_KEY / MONGODB_ATLAS_PRIVATE_API_KEY"
            }
            ApiAuth::ServiceAccount { .. } => {
                "MONGODB_ATLAS_CLIENT_ID / MONGODB_ATLAS_CLIENT_SECRET"
            }
        }
    }
}

/// A database user as the API lists it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiUser {
    pub username: String,
    #[serde(default)]
    pub database_name: String,
    #[serde(default, rename = "awsIAMType")]
    pub aws_iam_type: Option<String>,
    #[serde(default)]
    pub roles: Vec<ApiRole>,
    #[serde(default)]
    pub scopes: Vec<ApiScope>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiRole {
    pub role_name: String,
    #[serde(default)]
    pub database_name: String,
    #[serde(default)]
    pub collection_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub(crate) struct ApiScope {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiCluster {
    pub name: String,
    #[serde(default)]
    pub state_name: Option<String>,
    #[serde(default)]
    pub paused: Option<bool>,
    #[serde(default, rename = "mongoDBVersion")]
    pub mongodb_version: Option<String>,
    #[serde(default)]
    pub connection_strings: Option<ConnectionStrings>,
    #[serde(default)]
    pub replication_specs: Vec<ReplicationSpec>,
    #[serde(default)]
    pub provider_settings: Option<ProviderSettings>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionStrings {
    #[serde(default)]
    pub standard: Option<String>,
    #[serde(default)]
    pub standard_srv: Option<String>,
    #[serde(default)]
    pub private: Option<String>,
    #[serde(default)]
    pub private_srv: Option<String>,
    #[serde(default)]
    pub private_endpoint: Vec<PrivateEndpointStrings>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PrivateEndpointStrings {
    #[serde(default)]
    pub connection_string: Option<String>,
    #[serde(default)]
    pub srv_connection_string: Option<String>,
    #[serde(default)]
    pub srv_shard_optimized_connection_string: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReplicationSpec {
    #[serde(default)]
    pub region_configs: Vec<RegionConfig>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegionConfig {
    #[serde(default)]
    pub provider_name: Option<String>,
    #[serde(default)]
    pub backing_provider_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderSettings {
    #[serde(default)]
    pub provider_name: Option<String>,
    /// The real cloud of a shared-tier (M0) cluster, whose provider is `TENANT`.
    #[serde(default)]
    pub backing_provider_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiAccessEntry {
    #[serde(default)]
    pub cidr_block: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub aws_security_group: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl ApiAccessEntry {
    /// The entry as Atlas shows it: the CIDR block, the address or the security group.
    pub(crate) fn entry(&self) -> String {
        self.cidr_block
            .clone()
            .or_else(|| self.ip_address.clone())
            .or_else(|| self.aws_security_group.clone())
            .unwrap_or_else(|| "?".into())
    }

    /// The entry with its comment: `203.0.113.7/32 (office)`.
    pub(crate) fn shown(&self) -> String {
        match &self.comment {
            Some(c) if !c.is_empty() => format!("{} ({c})", self.entry()),
            _ => self.entry(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    #[serde(default = "Vec::new")]
    results: Vec<T>,
    #[serde(default)]
    total_count: Option<usize>,
    #[serde(default)]
    links: Vec<Link>,
}

/// A page's links (`rel` self, next, previous).
#[derive(Deserialize, Default)]
struct Link {
    #[serde(default)]
    rel: String,
}

/// The error document of the Admin API.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    error_code: Option<String>,
}

/// One authentication attempt of a cluster's database access history (`MongoDBAccessLogs`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessLog {
    /// Whether it succeeded.
    #[serde(default)]
    pub auth_result: Option<bool>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub log_line: Option<String>,
    /// ISO 8601, UTC.
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AccessLogs {
    #[serde(default)]
    access_logs: Vec<AccessLog>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ClusterStatus {
    #[serde(default)]
    change_status: Option<String>,
}

#[derive(Deserialize, Default)]
struct UserSecurity {
    #[serde(default)]
    ldap: Option<LdapSettings>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LdapSettings {
    #[serde(default)]
    authorization_enabled: Option<bool>,
}

/// A path segment, percent-encoded (a cluster's name comes from the API itself).
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What the API told about the project.
#[derive(Clone, Debug, Default)]
pub(crate) struct Project {
    pub users: Vec<ApiUser>,
    /// Dedicated and shared clusters, and Flex clusters (from their own list).
    pub clusters: Vec<ApiCluster>,
    pub access_list: Vec<ApiAccessEntry>,
    /// What the API said of itself: a deprecated version (its `Deprecation` and `Sunset`
    /// headers), or a list it no longer serves in the version asked (the other lists still count).
    pub notices: Vec<String>,
}

/// A client bound to one project; every request within `budget`.
pub(crate) struct Client {
    http: reqwest::Client,
    cfg: ApiConfig,
    bearer: Option<Secret<String>>,
    notices: std::sync::Mutex<Vec<String>>,
}

impl Client {
    pub(crate) fn new(cfg: ApiConfig, budget: Duration) -> Result<Client, Diagnosis> {
        // the public web PKI's roots on the same rustls and back-end as every other TLS here
        let tls = crate::probe::tls::client_config(None)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(budget)
            .connect_timeout(budget)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("atlas-iam/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Diagnosis::new(Kind::Internal, format!("HTTP client: {e}"), "report this")
            })?;
        Ok(Client {
            http,
            cfg,
            bearer: None,
            notices: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A service account's access token, obtained once before the first request.
    pub(crate) async fn sign_in(&mut self) -> Result<(), Diagnosis> {
        if let (ApiAuth::ServiceAccount { .. }, None) = (&self.cfg.auth, &self.bearer) {
            self.bearer = Some(self.token().await?);
        }
        Ok(())
    }

    /// The cluster's `changeStatus`: `APPLIED`, or `PENDING` while a change to the project
    /// (a database user, the access list) is not yet deployed to it.
    pub(crate) async fn change_status(&self, cluster: &str) -> Result<Option<String>, Diagnosis> {
        let path = format!(
            "groups/{}/clusters/{}/status",
            self.cfg.project_id,
            segment(cluster)
        );
        let what = format!("the change status of {cluster}");
        let body = self.get(&self.url(&path), STATUS_VERSION, &what).await?;
        let status: ClusterStatus = self.parsed(&body, &what)?;
        Ok(status.change_status)
    }

    /// The cluster's database access history from `since_ms` (epoch milliseconds) to now and a
    /// minute past, most recent first, at most `HISTORY_LINES` attempts.
    pub(crate) async fn access_history(
        &self,
        cluster: &str,
        since_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<AccessLog>, Diagnosis> {
        let path = format!(
            "groups/{}/dbAccessHistory/clusters/{}",
            self.cfg.project_id,
            segment(cluster)
        );
        let url = format!(
            "{}?start={since_ms}&end={}&nLogs={HISTORY_LINES}",
            self.url(&path),
            now_ms + 60_000
        );
        let what = format!("the database access history of {cluster}");
        let body = self.get(&url, HISTORY_VERSION, &what).await?;
        let logs: AccessLogs = self.parsed(&body, &what)?;
        let mut logs = logs.access_logs;
        logs.truncate(HISTORY_LINES);
        Ok(logs)
    }

    /// Whether the project has LDAP authorization on (`userSecurity.ldap.authorizationEnabled`).
    pub(crate) async fn ldap_authorization(&self) -> Result<Option<bool>, Diagnosis> {
        let path = format!("groups/{}/userSecurity", self.cfg.project_id);
        let what = "the project's LDAP settings";
        let body = self
            .get(&self.url(&path), USER_SECURITY_VERSION, what)
            .await?;
        let security: UserSecurity = self.parsed(&body, what)?;
        Ok(security.ldap.and_then(|l| l.authorization_enabled))
    }

    fn parsed<T: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
        what: &str,
    ) -> Result<T, Diagnosis> {
        serde_json::from_slice(body).map_err(|e| {
            Diagnosis::new(
                Kind::AtlasApiError,
                format!("the Admin API answered the request for {what} with something this version cannot read ({e})"),
                "check --atlas-base-url: it must be the Atlas Admin API",
            )
        })
    }

    /// Reads the users, clusters and access list (concurrently).
    pub(crate) async fn project(mut self) -> Result<Project, Diagnosis> {
        self.sign_in().await?;
        let group = format!("groups/{}", self.cfg.project_id);
        let (users_path, clusters_path, flex_path, access_path) = (
            format!("{group}/databaseUsers"),
            format!("{group}/clusters"),
            format!("{group}/flexClusters"),
            format!("{group}/accessList"),
        );
        let (users, clusters, flex, access_list) = tokio::join!(
            self.list::<ApiUser>(&users_path, USERS_VERSION, "the database users"),
            self.list::<ApiCluster>(&clusters_path, CLUSTERS_VERSION, "the clusters"),
            self.list::<ApiCluster>(&flex_path, FLEX_VERSION, "the Flex clusters"),
            self.list::<ApiAccessEntry>(&access_path, ACCESS_LIST_VERSION, "the IP access list"),
        );
        // A list of clusters or of the access list whose version is gone is a notice: the
        // others still count.
        let mut notices = Vec::new();
        // without the users there is nothing to judge: their version gone fails the stage
        let users = users?;
        let mut clusters = kept(clusters, &mut notices)?;
        clusters.extend(kept(flex, &mut notices)?);
        let access_list = kept(access_list, &mut notices)?;
        if let Ok(mut n) = self.notices.lock() {
            notices.append(&mut n);
        }
        Ok(Project {
            users,
            clusters,
            access_list,
            notices,
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/atlas/v2/{path}",
            self.cfg.base_url.trim_end_matches('/')
        )
    }

    /// The service account's access token (client credentials grant).
    async fn token(&self) -> Result<Secret<String>, Diagnosis> {
        let ApiAuth::ServiceAccount {
            client_id,
            client_secret,
        } = &self.cfg.auth
        else {
            return Err(Diagnosis::new(
                Kind::Internal,
                "no service account",
                "report this",
            ));
        };
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let url = format!(
            "{}/api/oauth/token",
            self.cfg.base_url.trim_end_matches('/')
        );
        let sent = self
            .http
            .post(&url)
            .basic_auth(client_id, Some(client_secret.expose()))
            .header(ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| self.transport(&e, "a service account token"))?;
        let status = sent.status();
        let body = read_body(sent)
            .await
            .map_err(|e| self.transport(&e, "a token"))?;
        if !status.is_success() {
            return Err(self.refused(status, &body, "a service account token", None));
        }
        let token: Token = serde_json::from_slice(&body).map_err(|_| {
            Diagnosis::new(
                Kind::AtlasApiError,
                "the Admin API's token endpoint answered without an access_token",
                "check --atlas-base-url: it must be the Atlas Admin API",
            )
        })?;
        Ok(Secret::new(token.access_token))
    }

    /// Every page of a list.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        version: &str,
        what: &str,
    ) -> Result<Vec<T>, Diagnosis> {
        let mut all = Vec::new();
        let mut read = 0;
        for page in 1..=MAX_PAGES {
            let url = format!("{}?itemsPerPage={PAGE}&pageNum={page}", self.url(path));
            let body = self.get(&url, version, what).await?;
            read += body.len();
            if read > MAX_LIST_BYTES {
                return Err(too_long(
                    what,
                    format!("more than {} MiB", MAX_LIST_BYTES >> 20),
                ));
            }
            let parsed: Page<T> = serde_json::from_slice(&body).map_err(|e| {
                Diagnosis::new(
                    Kind::AtlasApiError,
                    format!("the Admin API answered the request for {what} with something this version cannot read ({e})"),
                    "check --atlas-base-url: it must be the Atlas Admin API",
                )
            })?;
            let got = parsed.results.len();
            let next = parsed.links.iter().any(|l| l.rel == "next");
            all.extend(parsed.results);
            if all.len() > MAX_ITEMS {
                return Err(too_long(what, format!("more than {MAX_ITEMS} entries")));
            }
            // The document's own signs of more: a `next` link, or a total not yet reached. A
            // short page alone proves nothing (the API may serve fewer than asked); only with
            // neither sign does a short page end the list.
            let more = match parsed.total_count {
                _ if got == 0 => false,
                Some(total) => next || all.len() < total,
                None => next || got >= PAGE,
            };
            if !more {
                break;
            }
        }
        Ok(all)
    }

    async fn get(&self, url: &str, version: &str, what: &str) -> Result<Vec<u8>, Diagnosis> {
        let request = || {
            self.http
                .request(Method::GET, url)
                .header(ACCEPT, format!("application/vnd.atlas.{version}+json"))
        };
        let mut req = request();
        if let Some(token) = &self.bearer {
            req = req.bearer_auth(token.expose());
        }
        let mut resp = req.send().await.map_err(|e| self.transport(&e, what))?;
        if let (
            StatusCode::UNAUTHORIZED,
            ApiAuth::ApiKey {
                public_key,
                private_key,
            },
        ) = (resp.status(), &self.cfg.auth)
        {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if let Some(challenge) = challenge.filter(|c| c.trim_start().starts_with("Digest")) {
                let answer = digest_answer(&challenge, url, public_key, private_key.expose())
                    .map_err(|why| {
                        Diagnosis::new(
                            Kind::AtlasApiError,
                            format!("the Admin API's Digest challenge cannot be answered: {why}"),
                            "check --atlas-base-url: it must be the Atlas Admin API",
                        )
                    })?;
                resp = request()
                    .header(AUTHORIZATION, answer)
                    .send()
                    .await
                    .map_err(|e| self.transport(&e, what))?;
            }
        }
        let status = resp.status();
        self.note_deprecation(&resp, version, what);
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_body(resp)
            .await
            .map_err(|e| self.transport(&e, what))?;
        if !status.is_success() {
            return Err(self.refused(status, &body, what, retry_after.as_deref()));
        }
        Ok(body)
    }

    /// A `Deprecation` or `Sunset` header: the version asked will go; said once per list.
    fn note_deprecation(&self, resp: &reqwest::Response, version: &str, what: &str) {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(64).collect::<String>())
        };
        let (deprecation, sunset) = (header("Deprecation"), header("Sunset"));
        if deprecation.is_none() && sunset.is_none() {
            return;
        }
        let note =
            format!(
            "the Admin API marks version {version} of {what} deprecated{}{}: upgrade atlas-iam \
             before then",
            deprecation.map(|d| format!(" (since {d})")).unwrap_or_default(),
            sunset
                .map(|s| format!(", and will stop serving it on {s}"))
                .unwrap_or_default()
        );
        if let Ok(mut n) = self.notices.lock() {
            if !n.contains(&note) {
                n.push(note);
            }
        }
    }

    fn transport(&self, e: &reqwest::Error, what: &str) -> Diagnosis {
        let base = &self.cfg.base_url;
        if e.is_timeout() {
            return Diagnosis::new(
                Kind::AtlasApiTimeout,
                format!("the Admin API at {base} did not answer the request for {what} in time"),
                "check the network path to cloud.mongodb.com (a proxy: HTTPS_PROXY), or raise --timeout",
            );
        }
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        Diagnosis::new(
            Kind::AtlasApiUnreachable,
            format!("cannot reach the Admin API at {base} for {what}: {text}"),
            "check the network path to cloud.mongodb.com (a proxy: HTTPS_PROXY) and --atlas-base-url",
        )
    }

    /// A refusal, told by Atlas's `errorCode` first and its status second (the codes as real
    /// Atlas sends them, ATLAS.md "The Atlas Admin API by its published document"): a valid key
    /// without the role is `401 USER_UNAUTHORIZED`, a wrong key a 401 with a new Digest
    /// challenge; `retry_after` is the `Retry-After` header of a 429.
    fn refused(
        &self,
        status: StatusCode,
        body: &[u8],
        what: &str,
        retry_after: Option<&str>,
    ) -> Diagnosis {
        let err: ApiError = serde_json::from_slice(body).unwrap_or_default();
        let code = err.error_code.clone().unwrap_or_default();
        let said = err
            .detail
            .map(|d| {
                format!(
                    ": {}",
                    d.chars().take(crate::secret::MAX_TEXT).collect::<String>()
                )
            })
            .unwrap_or_default();
        let status_text = format!("{} {code}", status.as_u16());
        let status_text = status_text.trim_end();
        let project = &self.cfg.project_id;
        let names = self.cfg.credential_names();
        let no_role = || {
            Diagnosis::new(
                Kind::AtlasApiForbidden,
                format!("the credentials are valid but may not read {what} of project {project} ({status_text}{said})"),
                "give the API key or service account the Project Read Only role on this project \
                 (Atlas: Project > Access Manager > Applications > API Keys)",
            )
        };
        let address = || {
            Diagnosis::new(
                Kind::AtlasApiForbidden,
                format!("the Admin API refused this machine's address ({status_text}{said})"),
                "add this machine's public IP address to the API key's own access list (Organization \
                 Access Manager > API Keys > Edit > API Access List)",
            )
        };
        match (code.as_str(), status) {
            ("USER_UNAUTHORIZED", _) | ("USER_CANNOT_ACCESS_ORGANIZATION_OR_GROUP", _) => no_role(),
            ("IP_ADDRESS_NOT_ON_ACCESS_LIST" | "API_KEY_ACCESS_LIST_ACCESS_DENIED", _) => address(),
            ("GROUP_NOT_FOUND" | "INVALID_GROUP_ID", _) => Diagnosis::new(
                Kind::AtlasProjectNotFound,
                format!("the Admin API has no project {project} for these credentials ({status_text}{said})"),
                "check MONGODB_ATLAS_PROJECT_ID (--atlas-project-id): the 24-hex-digit id in the \
                 project's settings, or `atlas projects list`",
            ),
            ("VERSION_GONE", _) | (_, StatusCode::GONE) => Diagnosis::new(
                Kind::AtlasApiVersionGone,
                format!("the Admin API no longer serves the version atlas-iam asked for {what} ({status_text}{said})"),
                "upgrade atlas-iam: this version of it reads an Admin API version past its sunset",
            ),
            ("RATE_LIMITED", _) | (_, StatusCode::TOO_MANY_REQUESTS) => Diagnosis::new(
                Kind::AtlasApiError,
                format!(
                    "the Admin API is rate-limiting these credentials ({status_text}{said}){}",
                    retry_after
                        .map(|r| format!("; it asks to retry after {} s", r.chars().take(12).collect::<String>()))
                        .unwrap_or_default()
                ),
                "run it again later: the other checks did not need the API",
            ),
            // a wrong key: Atlas answers a 401 and a new challenge (UNEXPECTED_ERROR, or none)
            (_, StatusCode::UNAUTHORIZED) => Diagnosis::new(
                Kind::AtlasApiUnauthorized,
                format!("the Admin API refused the credentials ({status_text}{said}) when reading {what}"),
                format!("check {names}: the key may be mistyped, deleted or from another organization"),
            ),
            (_, StatusCode::FORBIDDEN) => no_role(),
            (_, StatusCode::NOT_FOUND | StatusCode::NOT_ACCEPTABLE) => Diagnosis::new(
                Kind::AtlasApiError,
                format!("the Admin API answered the request for {what} with {status_text}{said}"),
                "check --atlas-base-url: it must be the Atlas Admin API (https://cloud.mongodb.com)",
            ),
            _ => Diagnosis::new(
                Kind::AtlasApiError,
                format!("the Admin API answered the request for {what} with {status_text}{said}"),
                "retry; if it persists, check status.mongodb.com",
            ),
        }
    }
}

/// The body, at most MAX_BODY bytes.
/// A list's outcome, where a version past its sunset is a notice and an empty list: the other
/// lists still count.
fn kept<T>(r: Result<Vec<T>, Diagnosis>, notices: &mut Vec<String>) -> Result<Vec<T>, Diagnosis> {
    match r {
        Err(d) if d.kind == Kind::AtlasApiVersionGone => {
            notices.push(format!("{} ({})", d.cause, d.hint));
            Ok(Vec::new())
        }
        other => other,
    }
}

fn too_long(what: &str, how: String) -> Diagnosis {
    Diagnosis::new(
        Kind::AtlasApiError,
        format!("the Admin API's list of {what} holds {how}, beyond any Atlas project: not read further"),
        "check --atlas-base-url: it must be the Atlas Admin API",
    )
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(body)
}

/// The Authorization header answering a Digest challenge for a GET of `url`.
fn digest_answer(challenge: &str, url: &str, user: &str, password: &str) -> Result<String, String> {
    let uri = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let path = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_string(),
    };
    let mut prompt = digest_auth::parse(challenge).map_err(|e| e.to_string())?;
    let context = digest_auth::AuthContext::new(user, password, &path);
    let answer = prompt.respond(&context).map_err(|e| e.to_string())?;
    Ok(answer.to_header_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_challenge_is_answered_without_the_password() {
        let challenge = r#"Digest realm="MMS Public API", domain="", nonce="abc123", algorithm=MD5, qop="auth", stale=false"#;
        let answer = digest_answer(
            challenge,
            "https://cloud.mongodb.com/api/atlas/v2/groups/x/databaseUsers?itemsPerPage=500&pageNum=1",
            "pubkey",
            "priv-secret-value",
        )
        .expect("answer");
        assert!(answer.starts_with("Digest "), "{answer}");
        assert!(answer.contains(r#"username="pubkey""#), "{answer}");
        assert!(
            answer.contains(
                r#"uri="/api/atlas/v2/groups/x/databaseUsers?itemsPerPage=500&pageNum=1""#
            ),
            "{answer}"
        );
        assert!(!answer.contains("priv-secret-value"), "{answer}");
        assert!(digest_answer("Basic realm=x", "https://h/p", "u", "p").is_err());
    }

    #[test]
    fn refusals_are_told_apart_by_status_and_error_code() {
        let client = Client::new(
            ApiConfig {
                project_id: "5f1e2d3c4b5a697887766554".into(),
                auth: ApiAuth::ApiKey {
                    public_key: "pub".into(),
                    private_key: Secret::new("priv".into()),
                },
                base_url: DEFAULT_BASE_URL.into(),
            },
            Duration::from_secs(1),
        )
        .expect("client");
        let kind = |status: u16, body: &str| {
            let status = StatusCode::from_u16(status).expect("status");
            client
                .refused(status, body.as_bytes(), "the users", None)
                .kind
        };
        let doc = |code: &str| format!(r#"{{"error":0,"errorCode":"{code}","detail":"d"}}"#);
        assert_eq!(kind(401, &doc("UNAUTHORIZED")), Kind::AtlasApiUnauthorized);
        assert_eq!(
            kind(401, &doc("UNEXPECTED_ERROR")),
            Kind::AtlasApiUnauthorized
        );
        // a valid key without the role: real Atlas says 401 USER_UNAUTHORIZED
        assert_eq!(
            kind(401, &doc("USER_UNAUTHORIZED")),
            Kind::AtlasApiForbidden
        );
        assert_eq!(
            kind(401, &doc("API_KEY_ACCESS_LIST_ACCESS_DENIED")),
            Kind::AtlasApiForbidden
        );
        assert_eq!(kind(410, &doc("VERSION_GONE")), Kind::AtlasApiVersionGone);
        assert_eq!(kind(429, &doc("RATE_LIMITED")), Kind::AtlasApiError);
        let d = client.refused(
            StatusCode::TOO_MANY_REQUESTS,
            doc("RATE_LIMITED").as_bytes(),
            "x",
            Some("30"),
        );
        assert!(d.cause.contains("retry after 30 s"), "{d}");
        assert_eq!(
            kind(403, &doc("IP_ADDRESS_NOT_ON_ACCESS_LIST")),
            Kind::AtlasApiForbidden
        );
        assert_eq!(
            kind(403, &doc("USER_CANNOT_ACCESS_ORGANIZATION_OR_GROUP")),
            Kind::AtlasApiForbidden
        );
        assert_eq!(
            kind(404, &doc("GROUP_NOT_FOUND")),
            Kind::AtlasProjectNotFound
        );
        assert_eq!(
            kind(400, &doc("INVALID_GROUP_ID")),
            Kind::AtlasProjectNotFound
        );
        assert_eq!(kind(404, &doc("RESOURCE_NOT_FOUND")), Kind::AtlasApiError);
        assert_eq!(kind(500, "<html>oops</html>"), Kind::AtlasApiError);
        let d = client.refused(
            StatusCode::FORBIDDEN,
            doc("IP_ADDRESS_NOT_ON_ACCESS_LIST").as_bytes(),
            "x",
            None,
        );
        assert!(d.hint.contains("API Access List"), "{d}");
    }

    #[test]
    fn a_list_whose_version_is_gone_is_a_notice() {
        let mut notices = Vec::new();
        let gone: Result<Vec<u8>, Diagnosis> = Err(Diagnosis::new(
            Kind::AtlasApiVersionGone,
            "gone",
            "upgrade atlas-iam",
        ));
        assert_eq!(kept(gone, &mut notices).map(|v| v.len()), Ok(0));
        assert_eq!(notices, ["gone (upgrade atlas-iam)"]);
        let other: Result<Vec<u8>, Diagnosis> = Err(Diagnosis::new(Kind::AtlasApiError, "x", "y"));
        assert!(kept(other, &mut notices).is_err());
    }

    #[test]
    fn api_documents_parse() {
        let users: Page<ApiUser> = serde_json::from_str(
            r#"{"results":[{"username":"arn:aws:iam::1:role/app","databaseName":"$external",
                "awsIAMType":"ROLE","roles":[{"roleName":"readWrite","databaseName":"test"}],
                "scopes":[{"name":"Cluster0","type":"CLUSTER"}],"ldapAuthType":"NONE"}],"totalCount":1}"#,
        )
        .expect("users");
        assert_eq!(users.results[0].aws_iam_type.as_deref(), Some("ROLE"));
        assert_eq!(users.results[0].scopes[0].name, "Cluster0");
        let clusters: Page<ApiCluster> = serde_json::from_str(
            r#"{"results":[{"name":"Cluster0","stateName":"IDLE","paused":false,"mongoDBVersion":"7.0.12",
                "connectionStrings":{"standardSrv":"mongodb+srv://cluster0.ab12c.mongodb.net"},
                "replicationSpecs":[{"regionConfigs":[{"providerName":"AWS"}]}]}]}"#,
        )
        .expect("clusters");
        assert_eq!(
            clusters.results[0].mongodb_version.as_deref(),
            Some("7.0.12")
        );
    }
}
