//! Credential endpoints where applications run, on 127.0.0.1: EC2 instance metadata (IMDSv2:
//! a PUT for a token, then the role name and its credentials) and the container credentials
//! endpoint (ECS, EKS Pod Identity: one GET with an authorization token). The credentials they
//! serve are whatever the test gives (a session from moto, so that STS and the local Atlas accept
//! them). Faults: the token PUT held forever while metadata answers 401 (the IMDSv2 hop limit
//! in a container), no role attached, a container endpoint that refuses.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::stack::SessionKeys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataFault {
    /// IMDS: the token PUT never answers (a hop limit of 1 seen from a container).
    HoldToken,
    /// IMDS: no instance profile (the role list is 404).
    NoRole,
    /// Container: every request is refused with 403.
    Refuse,
}

pub const ROLE_NAME: &str = "atlas-instance-role";
const IMDS_TOKEN: &str = "imds-session-token-for-tests";

struct State {
    keys: SessionKeys,
    fault: Option<MetadataFault>,
    /// The container endpoint's expected Authorization header.
    authorization: Option<String>,
}

/// A running endpoint; stops when dropped.
pub struct MetadataServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetadataServer {
    /// Serves both IMDS paths and the container path `/creds`.
    pub async fn start(
        keys: SessionKeys,
        fault: Option<MetadataFault>,
        authorization: Option<String>,
    ) -> std::io::Result<MetadataServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            keys,
            fault,
            authorization,
        });
        let task = tokio::spawn(crate::http::serve(listener, move |req| {
            handle(req, state.clone())
        }));
        Ok(MetadataServer { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn credentials_json(keys: &SessionKeys, imds: bool) -> String {
    let expiration = "2099-01-01T00:00:00Z";
    if imds {
        serde_json::json!({
            "Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z", "Type": "AWS-HMAC",
            "AccessKeyId": keys.id, "SecretAccessKey": keys.secret, "Token": keys.token,
            "Expiration": expiration,
        })
        .to_string()
    } else {
        serde_json::json!({
            "AccessKeyId": keys.id, "SecretAccessKey": keys.secret, "Token": keys.token,
            "Expiration": expiration,
        })
        .to_string()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let has_token = req
        .headers()
        .get("x-aws-ec2-metadata-token")
        .is_some_and(|v| v == IMDS_TOKEN);
    let r = match (req.method(), path.as_str()) {
        (&Method::PUT, "/latest/api/token") => {
            if state.fault == Some(MetadataFault::HoldToken) {
                std::future::pending::<()>().await;
            }
            let mut r = reply(StatusCode::OK, IMDS_TOKEN.to_string());
            r.headers_mut().insert(
                "x-aws-ec2-metadata-token-ttl-seconds",
                hyper::header::HeaderValue::from_static("21600"),
            );
            r
        }
        (&Method::GET, p) if p.starts_with("/latest/") && !has_token => {
            reply(StatusCode::UNAUTHORIZED, String::new())
        }
        (&Method::GET, "/latest/meta-data/iam/security-credentials/") => {
            if state.fault == Some(MetadataFault::NoRole) {
                reply(StatusCode::NOT_FOUND, "Not Found".into())
            } else {
                reply(StatusCode::OK, ROLE_NAME.to_string())
            }
        }
        (&Method::GET, p)
            if p == format!("/latest/meta-data/iam/security-credentials/{ROLE_NAME}") =>
        {
            reply(StatusCode::OK, credentials_json(&state.keys, true))
        }
        (&Method::GET, "/creds") => {
            let given = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let allowed = state.fault != Some(MetadataFault::Refuse)
                && (state.authorization.is_none() || given == state.authorization);
            if allowed {
                reply(StatusCode::OK, credentials_json(&state.keys, false))
            } else {
                reply(
                    StatusCode::FORBIDDEN,
                    r#"{"code":"AccessDenied","message":"the authorization token is not valid for this task"}"#.into(),
                )
            }
        }
        _ => reply(StatusCode::NOT_FOUND, "Not Found".into()),
    };
    Ok(r)
}
