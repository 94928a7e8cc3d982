//! The STS gate: a reverse proxy in front of moto through which both atlas-iam's own STS and IAM
//! calls and the local Atlas's replays go, so both sides meet the same STS. It adds what moto
//! does not enforce (stale X-Amz-Date, expired session tokens, inactive keys) and rewrites
//! moto's HTML-typed auth errors into the standard STS XML error document.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// AWS accepts 15 minutes of clock difference.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

#[derive(Default)]
pub struct GateState {
    expired_tokens: Mutex<HashSet<String>>,
    /// The expiry (seconds since the epoch) of every session token STS issued through the gate:
    /// moto does not enforce it, STS does.
    token_expiry: Mutex<std::collections::HashMap<String, i64>>,
    inactive_keys: Mutex<HashSet<String>>,
    /// Keys that may assume roles on behalf of web identities (see `web_identity`).
    web_identity: Mutex<Option<(String, String)>>,
}

pub struct Gate {
    pub addr: SocketAddr,
    pub endpoint: String,
    state: Arc<GateState>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Gate> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(GateState::default());
        let shared = state.clone();
        let task = tokio::spawn(crate::http::serve(listener, move |req| {
            handle(req, upstream, shared.clone())
        }));
        Ok(Gate {
            addr,
            endpoint: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// STS answers ExpiredToken for this session token from now on.
    pub fn expire_token(&self, token: &str) {
        if let Ok(mut s) = self.state.expired_tokens.lock() {
            s.insert(token.to_string());
        }
    }

    /// STS answers InvalidClientTokenId for this access key id from now on.
    /// Answers AssumeRoleWithWebIdentity (which moto cannot serve while it enforces signatures:
    /// the request is unsigned) with an AssumeRole made with these keys: the session is then a
    /// real moto session of the requested role, which STS and the local Atlas accept.
    pub fn trust_web_identity(&self, key_id: &str, secret: &str) {
        if let Ok(mut w) = self.state.web_identity.lock() {
            *w = Some((key_id.to_string(), secret.to_string()));
        }
    }

    pub fn deactivate_key(&self, key_id: &str) {
        if let Ok(mut s) = self.state.inactive_keys.lock() {
            s.insert(key_id.to_string());
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error_document(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
         <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  \
         <RequestId>00000000-0000-4000-8000-00000000gate</RequestId>\n</ErrorResponse>\n"
    )
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(error_document(code, message))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/xml"),
    );
    r
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}

/// `YYYYMMDDTHHMMSSZ` to seconds since the epoch.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

pub fn format_amz_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// What STS says of the request's date, key and token before moto sees it.
pub fn check(
    date: Option<&str>,
    key_id: Option<&str>,
    token: Option<&str>,
    state: &GateState,
    now: i64,
) -> Option<(&'static str, String)> {
    if let Some(date) = date {
        if let Some(t) = parse_amz_date(date) {
            if now - t > MAX_SKEW_SECS {
                return Some((
                    "SignatureDoesNotMatch",
                    format!(
                        "Signature expired: {date} is now earlier than {} ({} - 15 min.)",
                        format_amz_date(now - MAX_SKEW_SECS),
                        format_amz_date(now)
                    ),
                ));
            }
            if t - now > MAX_SKEW_SECS {
                return Some((
                    "SignatureDoesNotMatch",
                    format!(
                        "Signature not yet current: {date} is still later than {} ({} + 15 min.)",
                        format_amz_date(now + MAX_SKEW_SECS),
                        format_amz_date(now)
                    ),
                ));
            }
        }
    }
    if let Some(t) = token {
        let past_expiry = state
            .token_expiry
            .lock()
            .ok()
            .and_then(|m| m.get(t).copied())
            .is_some_and(|at| now >= at);
        if past_expiry
            || state
                .expired_tokens
                .lock()
                .map(|s| s.contains(t))
                .unwrap_or(false)
        {
            return Some((
                "ExpiredToken",
                "The security token included in the request is expired".into(),
            ));
        }
    }
    if let Some(k) = key_id {
        if state
            .inactive_keys
            .lock()
            .map(|s| s.contains(k))
            .unwrap_or(false)
        {
            return Some((
                "InvalidClientTokenId",
                "The security token included in the request is invalid.".into(),
            ));
        }
    }
    None
}

fn key_id_of(authorization: &str) -> Option<&str> {
    authorization.split("Credential=").nth(1)?.split('/').next()
}

fn tag<'a>(body: &'a str, t: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{t}>"))? + t.len() + 2;
    let end = body[start..].find(&format!("</{t}>"))? + start;
    Some(&body[start..end])
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    state: Arc<GateState>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(text(StatusCode::BAD_REQUEST, &format!("bad body: {e}"))),
    };
    let body_text = String::from_utf8_lossy(&body).to_string();
    match parts.uri.path() {
        "/gate/expire-token" => {
            state
                .expired_tokens
                .lock()
                .map(|mut s| s.insert(body_text.trim().to_string()))
                .ok();
            return Ok(text(StatusCode::OK, "ok"));
        }
        "/gate/deactivate-key" => {
            state
                .inactive_keys
                .lock()
                .map(|mut s| s.insert(body_text.trim().to_string()))
                .ok();
            return Ok(text(StatusCode::OK, "ok"));
        }
        _ => {}
    }
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let key = header("authorization").and_then(key_id_of);
    if key.is_none() && body_text.contains("Action=AssumeRoleWithWebIdentity") {
        return Ok(web_identity(&body_text, upstream, &state).await);
    }
    if let Some((code, message)) = check(
        header("x-amz-date"),
        key,
        header("x-amz-security-token"),
        &state,
        now_secs(),
    ) {
        let status = StatusCode::FORBIDDEN;
        return Ok(refuse(status, code, &message));
    }
    Ok(forward(parts, body, upstream, &state)
        .await
        .unwrap_or_else(|e| {
            text(
                StatusCode::BAD_GATEWAY,
                &format!("gate: upstream failed: {e}"),
            )
        }))
}

/// A form-encoded request body's field.
fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() + 1 {
                    if let Ok(n) = u8::from_str_radix(v.get(i + 1..i + 3).unwrap_or(""), 16) {
                        out.push(n);
                        i += 3;
                        continue;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

/// AssumeRoleWithWebIdentity: the token's exp is honoured, then the role is assumed with the
/// keys given to `trust_web_identity` and the answer shaped as STS shapes it.
async fn web_identity(
    body: &str,
    upstream: SocketAddr,
    state: &GateState,
) -> Response<Full<Bytes>> {
    let keys = state.web_identity.lock().ok().and_then(|k| k.clone());
    let (Some((id, secret)), Some(role), Some(token)) = (
        keys,
        form_field(body, "RoleArn"),
        form_field(body, "WebIdentityToken"),
    ) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "the gate has no web identity trust configured, or the request lacks RoleArn or WebIdentityToken",
        );
    };
    let session = form_field(body, "RoleSessionName").unwrap_or_else(|| "web-identity".into());
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()
        })
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(claims) = claims else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "Couldn't parse the token",
        );
    };
    if claims["exp"].as_i64().is_some_and(|exp| exp <= now_secs()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "ExpiredTokenException",
            "Token expired: current date/time must be before the expiration date/time",
        );
    }
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{upstream}"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            &id, &secret, None, None, "gate",
        ))
        .build();
    let out = aws_sdk_sts::Client::from_conf(conf)
        .assume_role()
        .role_arn(&role)
        .role_session_name(&session)
        .send()
        .await;
    let (Ok(out), Some(sub)) = (out, claims["sub"].as_str()) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    };
    let (Some(c), Some(user)) = (out.credentials(), out.assumed_role_user()) else {
        return refuse(StatusCode::FORBIDDEN, "AccessDenied", "no credentials");
    };
    let expiration = c
        .expiration()
        .fmt(aws_sdk_sts::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default();
    let xml = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{}</AccessKeyId>\
         <SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken>\
         <Expiration>{expiration}</Expiration></Credentials><AssumedRoleUser><Arn>{}</Arn>\
         <AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser>\
         <SubjectFromWebIdentityToken>{sub}</SubjectFromWebIdentityToken>\
         </AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>00000000-0000-4000-8000-0000webident</RequestId>\
         </ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
        c.access_key_id(),
        c.secret_access_key(),
        c.session_token(),
        user.arn(),
        user.assumed_role_id()
    );
    let mut r = text(StatusCode::OK, &xml);
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/xml"),
    );
    r
}

async fn forward(
    parts: hyper::http::request::Parts,
    body: Bytes,
    upstream: SocketAddr,
    state: &GateState,
) -> anyhow::Result<Response<Full<Bytes>>> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::from_parts(parts, Full::new(body));
    let response = sender.send_request(req).await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let html = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("html"));
    let text = String::from_utf8_lossy(&body);
    if html && parts.status.is_client_error() && text.contains("<ErrorResponse") {
        let code = tag(&text, "Code").unwrap_or("AccessDenied").to_string();
        let message = tag(&text, "Message").unwrap_or_default().to_string();
        let mut r = refuse(parts.status, &code, &message);
        if let Some(date) = parts.headers.get("date") {
            r.headers_mut().insert("date", date.clone());
        }
        return Ok(r);
    }
    // Credentials issued (AssumeRole): their token expires when the response says.
    if parts.status.is_success() {
        if let (Some(token), Some(at)) = (
            tag(&text, "SessionToken"),
            tag(&text, "Expiration").and_then(parse_rfc3339),
        ) {
            if let Ok(mut m) = state.token_expiry.lock() {
                m.insert(token.to_string(), at);
            }
        }
    }
    parts.headers.remove("content-length");
    parts.headers.remove("transfer-encoding");
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// `2026-11-23T14:25:03Z` or with fractional seconds, as seconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let time = time.trim_end_matches('Z');
    let time = time.split('.').next()?;
    parse_amz_date(&format!(
        "{}T{}Z",
        date.replace('-', ""),
        time.replace(':', "")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        for s in ["20261122T063000Z", "20000229T235959Z", "19700101T000000Z"] {
            let t = parse_amz_date(s).expect(s);
            assert_eq!(format_amz_date(t), s);
        }
        assert_eq!(parse_amz_date("19700101T000100Z"), Some(60));
        assert_eq!(parse_amz_date("2026-11-22"), None);
    }

    #[test]
    fn stale_dates_expired_tokens_and_inactive_keys_are_refused() {
        let state = GateState::default();
        let now = parse_amz_date("20261122T063000Z").expect("date");
        assert!(check(Some("20261122T062000Z"), None, None, &state, now).is_none());
        let (code, msg) = check(Some("20261122T060000Z"), None, None, &state, now).expect("stale");
        assert_eq!(code, "SignatureDoesNotMatch");
        assert_eq!(msg, "Signature expired: 20261122T060000Z is now earlier than 20261122T061500Z (20261122T063000Z - 15 min.)");
        assert!(check(Some("20261122T070000Z"), None, None, &state, now).is_some());
        state
            .expired_tokens
            .lock()
            .expect("lock")
            .insert("tok".into());
        assert_eq!(
            check(None, None, Some("tok"), &state, now).map(|c| c.0),
            Some("ExpiredToken")
        );
        state
            .inactive_keys
            .lock()
            .expect("lock")
            .insert("AKIA1".into());
        assert_eq!(
            check(None, Some("AKIA1"), None, &state, now).map(|c| c.0),
            Some("InvalidClientTokenId")
        );
    }

    #[test]
    fn a_session_token_expires_when_sts_said_it_would() {
        let state = GateState::default();
        let at = parse_rfc3339("2026-11-22T06:30:00.123Z").expect("rfc3339");
        assert_eq!(Some(at), parse_amz_date("20261122T063000Z"));
        state
            .token_expiry
            .lock()
            .expect("lock")
            .insert("short".into(), at);
        assert!(check(None, None, Some("short"), &state, at - 1).is_none());
        assert_eq!(
            check(None, None, Some("short"), &state, at).map(|c| c.0),
            Some("ExpiredToken")
        );
    }

    #[test]
    fn key_id_is_read_from_the_credential_scope() {
        assert_eq!(key_id_of("AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/sts/aws4_request, SignedHeaders=host"),
            Some("AKIAX"));
    }
}
