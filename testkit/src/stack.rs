//! A whole local environment with a blocking API: moto behind the STS gate (or an STS endpoint
//! of your own), IAM provisioned like a small account, the local Atlas, and optionally TLS and
//! DNS. Used by the tests, the `local-atlas` launcher and the demo; everything stops on drop.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::json;

use crate::admin::{AdminApi, AdminState, ClusterState};
use crate::dns::{Dns, DnsConfig, DnsFault};
use crate::gate::Gate;
use crate::latency::LatencyProxy;
use crate::moto::{self, Keys, Moto};
use crate::pki::Pki;
use crate::server::{AtlasConfig, Fault, LocalAtlas, Mode, ReplicaSet, Role};

pub const CLUSTER: &str = "cluster0.ab12c.example.test";
pub const CLIENT_USER: &str = "atlas-client";
pub const ROLE: &str = "atlas-app";

#[derive(Clone, Debug)]
pub struct StackOptions {
    pub port: u16,
    pub tls: bool,
    /// With TLS, serve plaintext clients too instead of closing them.
    pub allow_plaintext: bool,
    pub mode: Mode,
    pub fault: Option<Fault>,
    /// Extra database users.
    pub users: Vec<(String, Vec<Role>)>,
    /// An STS of your own: no moto, no gate, no provisioning.
    pub sts_endpoint: Option<String>,
    pub sts_host: Option<String>,
    pub dns: bool,
    pub dns_fault: Option<DnsFault>,
    pub cluster: String,
    /// With tls: what is wrong with the server certificate.
    pub cert_fault: crate::pki::CertFault,
    /// A round trip added by a proxy in front of the Atlas port (as `uri()` names it) and the STS
    /// endpoint given to clients (`env()`); Atlas's own calls to STS are not delayed.
    pub latency: Option<std::time::Duration>,
    /// An Admin API stand-in for the project, reading the local Atlas's users (`admin_env()`).
    pub admin: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            port: 0,
            tls: false,
            allow_plaintext: false,
            mode: Mode::Dedicated,
            fault: None,
            users: Vec::new(),
            sts_endpoint: None,
            sts_host: None,
            dns: false,
            dns_fault: None,
            cluster: CLUSTER.to_string(),
            cert_fault: crate::pki::CertFault::None,
            latency: None,
            admin: false,
        }
    }
}

/// What was provisioned in moto: an IAM user, and a role that trusts it and is a database user
/// with readWrite on `test`.
#[derive(Clone, Debug)]
pub struct Account {
    pub client: Keys,
    pub client_arn: String,
    pub role_arn: String,
}

pub struct Stack {
    pub atlas: LocalAtlas,
    /// With `latency`: the proxies in front of the Atlas port and of STS.
    pub atlas_proxy: Option<LatencyProxy>,
    pub sts_proxy: Option<LatencyProxy>,
    pub dns: Option<Dns>,
    pub gate: Option<Gate>,
    pub pki: Option<Pki>,
    pub moto: Option<Moto>,
    pub account: Option<Account>,
    pub sts_endpoint: String,
    pub admin: Option<AdminApi>,
    pub options: StackOptions,
    /// Dropped last: the servers' tasks run on it.
    rt: tokio::runtime::Runtime,
}

impl Stack {
    pub fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (moto, gate, account, sts_endpoint) = match &options.sts_endpoint {
            Some(e) => (None, None, None, e.clone()),
            None => {
                let moto = Moto::start()?;
                let upstream = format!("127.0.0.1:{}", moto.port).parse()?;
                let gate = rt.block_on(Gate::start(upstream))?;
                let account = rt.block_on(provision(&moto))?;
                gate.trust_web_identity(&account.client.id, &account.client.secret);
                moto.enforce()?;
                let endpoint = gate.endpoint.clone();
                (Some(moto), Some(gate), Some(account), endpoint)
            }
        };

        let port = if options.port == 0 {
            moto::free_port()?
        } else {
            options.port
        };
        let domain = options
            .cluster
            .split_once('.')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        let member = format!("node0.{domain}");
        let pki = if options.tls {
            Some(Pki::generate_with(
                std::slice::from_ref(&member),
                options.cert_fault,
            )?)
        } else {
            None
        };

        let mut users: HashMap<String, Vec<Role>> = HashMap::new();
        if let Some(a) = &account {
            users.insert(a.role_arn.clone(), vec![Role::ReadWrite("test".into())]);
        }
        for (arn, roles) in &options.users {
            users.insert(arn.clone(), roles.clone());
        }
        let replica_set = options.dns.then(|| ReplicaSet {
            name: "atlas-ab12c-shard-0".to_string(),
            hosts: vec![format!("{member}:{port}")],
        });
        let cfg = AtlasConfig {
            mode: options.mode,
            tls: pki.as_ref().map(|p| p.server_config.clone()),
            allow_plaintext: options.allow_plaintext,
            fault: options.fault,
            users,
            sts_endpoint: sts_endpoint.clone(),
            sts_host: options
                .sts_host
                .clone()
                .unwrap_or_else(|| "sts.amazonaws.com".to_string()),
            replica_set: replica_set.clone(),
        };
        let atlas = rt
            .block_on(LocalAtlas::start(cfg, port))
            .context("start the local Atlas")?;
        let dns = if options.dns {
            // As Atlas publishes it. The seedlist discovery specification allows only authSource,
            // replicaSet and loadBalanced in TXT (drivers refuse authMechanism there), and Atlas's
            // authSource=admin is why a MONGODB-AWS string must say authSource=$external itself.
            let mut txt = "authSource=admin".to_string();
            if let Some(rs) = &replica_set {
                txt.push_str(&format!("&replicaSet={}", rs.name));
            }
            let cfg = DnsConfig {
                cluster: options.cluster.clone(),
                service: "mongodb".into(),
                members: vec![(member.clone(), port)],
                txt: vec![vec![txt]],
                fault: options.dns_fault,
            };
            Some(rt.block_on(Dns::start(cfg))?)
        } else {
            None
        };
        let (atlas_proxy, sts_proxy) = match options.latency {
            Some(rtt) => {
                let sts_addr = sts_endpoint
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .parse()
                    .context("the STS endpoint is not http://IP:PORT")?;
                (
                    Some(rt.block_on(LatencyProxy::start(atlas.addr, rtt))?),
                    Some(rt.block_on(LatencyProxy::start(sts_addr, rtt))?),
                )
            }
            None => (None, None),
        };
        let admin = if options.admin {
            let shown_addr = atlas_proxy.as_ref().map_or(atlas.addr, |p| p.addr);
            let state = AdminState::new(ClusterState {
                paused: false,
                version: "7.0.12".into(),
                standard: format!("mongodb://{shown_addr}/?ssl=true&authSource=admin"),
                standard_srv: options
                    .dns
                    .then(|| format!("mongodb+srv://{}", options.cluster)),
                flex: false,
            });
            Some(rt.block_on(AdminApi::start(atlas.shared.clone(), state))?)
        } else {
            None
        };
        Ok(Stack {
            admin,
            atlas,
            atlas_proxy,
            sts_proxy,
            dns,
            gate,
            pki,
            moto,
            account,
            sts_endpoint,
            options,
            rt,
        })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The credential-free connection string to 127.0.0.1 (TLS options when TLS is on).
    pub fn uri(&self) -> String {
        let addr = self
            .atlas_proxy
            .as_ref()
            .map_or(self.atlas.addr, |p| p.addr);
        let mut uri = format!("mongodb://{addr}/?authSource=%24external&authMechanism=MONGODB-AWS");
        if self.options.dns {
            uri.push_str("&directConnection=true");
        }
        if let Some(p) = &self.pki {
            uri.push_str(&format!("&tls=true&tlsCAFile={}", p.ca_file.display()));
        }
        uri
    }

    pub fn srv_uri(&self) -> Option<String> {
        self.dns.as_ref().map(|_| {
            format!(
                "mongodb+srv://{}/test?authSource=%24external&authMechanism=MONGODB-AWS",
                self.options.cluster
            )
        })
    }

    /// The AWS environment of the provisioned IAM user, pointed at the gate.
    pub fn env(&self) -> Vec<(String, String)> {
        let sts = self.client_sts_endpoint();
        let mut env = vec![
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL_STS".to_string(), sts.clone()),
            ("AWS_ENDPOINT_URL_IAM".to_string(), sts),
        ];
        if let Some(a) = &self.account {
            env.push(("AWS_ACCESS_KEY_ID".to_string(), a.client.id.clone()));
            env.push(("AWS_SECRET_ACCESS_KEY".to_string(), a.client.secret.clone()));
        }
        env
    }

    /// The STS endpoint clients use: through the latency proxy when there is one.
    pub fn client_sts_endpoint(&self) -> String {
        match &self.sts_proxy {
            Some(p) => format!("http://{}", p.addr),
            None => self.sts_endpoint.clone(),
        }
    }

    /// The one JSON line `local-atlas` prints.
    pub fn info(&self) -> serde_json::Value {
        let env: serde_json::Map<String, serde_json::Value> = self
            .env()
            .into_iter()
            .chain(
                self.admin_env()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            )
            .map(|(k, v)| (k, v.into()))
            .collect();
        json!({
            "uri": self.uri(),
            "srv_uri": self.srv_uri(),
            "host": self.atlas.addr.ip().to_string(),
            "port": self.atlas_proxy.as_ref().map_or(self.atlas.addr, |p| p.addr).port(),
            "tls_ca_file": self.pki.as_ref().map(|p| p.ca_file.display().to_string()),
            "sts_endpoint": self.client_sts_endpoint(),
            "latency_ms": self.options.latency.map(|d| d.as_millis() as u64),
            "dns_server": self.dns.as_ref().map(|d| d.addr.to_string()),
            "cluster": self.options.dns.then(|| self.options.cluster.clone()),
            "role_arn": self.account.as_ref().map(|a| a.role_arn.clone()),
            "user_arn": self.account.as_ref().map(|a| a.client_arn.clone()),
            "mode": format!("{:?}", self.options.mode).to_lowercase(),
            "fault": self.options.fault.map(|f| format!("{f:?}")),
            "admin_url": self.admin.as_ref().map(|a| a.url()),
            "env": env,
        })
    }

    fn moto(&self) -> anyhow::Result<&Moto> {
        self.moto
            .as_ref()
            .context("this stack has no moto (an STS endpoint was given)")
    }

    /// Another IAM user (its policy allows sts:AssumeRole on `assume_resource`).
    pub fn create_iam_user(&self, name: &str, assume_resource: &str) -> anyhow::Result<Keys> {
        let moto = self.moto()?;
        moto.open()?;
        let keys = self.rt.block_on(moto.create_user(name, assume_resource));
        moto.enforce()?;
        keys
    }

    /// Another role, trusting these principals.
    pub fn create_role(&self, name: &str, trusted: &[String]) -> anyhow::Result<String> {
        self.create_role_at("/", name, trusted)
    }

    /// A role with an IAM path (`/svc/`).
    pub fn create_role_at(
        &self,
        path: &str,
        name: &str,
        trusted: &[String],
    ) -> anyhow::Result<String> {
        let moto = self.moto()?;
        moto.open()?;
        let arn = self.rt.block_on(moto.create_role_at(path, name, trusted));
        moto.enforce()?;
        arn
    }

    /// Lets sessions of the role `name` call `actions` (e.g. `iam:GetRole`).
    pub fn allow_role(&self, name: &str, actions: &[&str]) -> anyhow::Result<()> {
        let moto = self.moto()?;
        moto.open()?;
        let done = self.rt.block_on(moto.allow_role(name, actions));
        moto.enforce()?;
        done
    }

    pub fn set_db_user(&self, arn: &str, roles: Vec<Role>) {
        self.atlas.set_user(arn, roles);
    }

    /// A database user with its IAM type and scopes as given (they may not fit the ARN).
    pub fn set_db_user_as(&self, arn: &str, user: crate::server::DbUser) {
        self.atlas.set_db_user(arn, user);
    }

    /// The Atlas CLI's variables for the Admin API stand-in (with `admin`): the project and its
    /// API key, and the base URL for atlas-iam.
    pub fn admin_env(&self) -> Vec<(&'static str, String)> {
        let Some(admin) = &self.admin else {
            return Vec::new();
        };
        vec![
            ("MONGODB_ATLAS_PROJECT_ID", crate::admin::PROJECT_ID.into()),
            (
                "MONGODB_ATLAS_PUBLIC_API_KEY",
                crate::admin::PUBLIC_KEY.into(),
            ),
            (
                "MONGODB_ATLAS_PRIVATE_API_KEY",
                crate::admin::PRIVATE_KEY.into(),
            ),
            ("ATLAS_IAM_ATLAS_BASE_URL", admin.url()),
        ]
    }

    /// Changes the stand-in's project state (cluster, access list, fault).
    pub fn admin_update(&self, f: impl FnOnce(&mut AdminState)) {
        if let Some(admin) = &self.admin {
            admin.update(f);
        }
    }

    /// A database user registered a moment ago (with `admin`): the API lists it and says the
    /// change is `PENDING`; the local Atlas refuses it until the change is applied, `after` from
    /// now (None: never).
    pub fn admin_pending_user(
        &self,
        arn: &str,
        roles: Vec<Role>,
        after: Option<std::time::Duration>,
    ) {
        if let Some(admin) = &self.admin {
            self.atlas.remove_user(arn);
            admin.add_pending_user(arn, crate::server::DbUser::new(arn, roles));
            if let Some(after) = after {
                self.rt.spawn(admin.apply_after(after));
            }
        }
    }

    pub fn remove_db_user(&self, arn: &str) {
        self.atlas.remove_user(arn);
    }

    /// Runs until SIGINT or SIGTERM.
    pub fn wait_for_signal(&self) {
        self.rt.block_on(async {
            #[cfg(unix)]
            {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
    }
}

async fn provision(moto: &Moto) -> anyhow::Result<Account> {
    let role_arn = moto::role_arn(ROLE);
    let client = moto.create_user(CLIENT_USER, &role_arn).await?;
    let client_arn = moto::user_arn(CLIENT_USER);
    let created = moto
        .create_role(ROLE, std::slice::from_ref(&client_arn))
        .await?;
    anyhow::ensure!(
        created == role_arn,
        "moto created {created}, expected {role_arn}"
    );
    Ok(Account {
        client,
        client_arn,
        role_arn,
    })
}

/// Temporary credentials from AssumeRole.
#[derive(Clone, Debug)]
pub struct SessionKeys {
    pub id: String,
    pub secret: String,
    pub token: String,
}

impl Stack {
    /// AssumeRole through the gate with these keys.
    pub fn assume(
        &self,
        keys: &Keys,
        role_arn: &str,
        session: &str,
    ) -> anyhow::Result<SessionKeys> {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(&self.sts_endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                &keys.id,
                &keys.secret,
                None,
                None,
                "local-atlas",
            ))
            .build();
        let out = self
            .rt
            .block_on(
                aws_sdk_sts::Client::from_conf(conf)
                    .assume_role()
                    .role_arn(role_arn)
                    .role_session_name(session)
                    .send(),
            )
            .context("AssumeRole")?;
        let c = out.credentials().context("no credentials")?;
        Ok(SessionKeys {
            id: c.access_key_id().to_string(),
            secret: c.secret_access_key().to_string(),
            token: c.session_token().to_string(),
        })
    }
}
