//! MONGODB-AWS, server side: the nonce exchange, the signed GetCallerIdentity replayed to STS
//! with its Host header kept, and the returned ARN matched against the database users as Atlas
//! does (an assumed-role session is looked up as its role).

use std::time::Duration;

use base64::Engine;
use bson::spec::BinarySubtype;
use bson::{doc, Binary, Bson, Document};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::commands::{error, Conn, User};
use crate::server::{Fault, Mode, Shared};

pub const MECHANISM: &str = "MONGODB-AWS";
const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const REQUIRED_SIGNED: [&str; 6] = [
    "content-length",
    "content-type",
    "host",
    "x-amz-date",
    "x-mongodb-gs2-cb-flag",
    "x-mongodb-server-nonce",
];

/// Why authentication failed; the client sees it through the mode's wording.
#[derive(Debug)]
pub enum Refusal {
    Protocol(String),
    Sts(u16, String),
    UserNotFound(String),
}

pub fn refusal_reply(mode: Mode, r: &Refusal) -> Document {
    eprintln!("local-atlas: authentication refused: {r:?}");
    match (mode, r) {
        (Mode::Dedicated, _) => error(18, "AuthenticationFailed", "Authentication failed."),
        (Mode::Proxy, Refusal::Sts(status, _)) => error(
            8000,
            "AtlasError",
            &format!("bad auth : aws sts call has response {status}"),
        ),
        (Mode::Proxy, Refusal::UserNotFound(arn)) => error(
            8000,
            "AtlasError",
            &format!("bad auth : user {arn} is not found"),
        ),
        (Mode::Proxy, Refusal::Protocol(_)) => {
            error(8000, "AtlasError", "bad auth : Authentication failed.")
        }
    }
}

fn payload(body: &Document) -> Result<Document, Refusal> {
    let bytes = match body.get("payload") {
        Some(Bson::Binary(b)) => b.bytes.clone(),
        _ => return Err(Refusal::Protocol("payload is not binary".into())),
    };
    Document::from_reader(bytes.as_slice())
        .map_err(|e| Refusal::Protocol(format!("payload is not BSON: {e}")))
}

fn binary(doc: &Document) -> Bson {
    let mut bytes = Vec::new();
    let _ = doc.to_writer(&mut bytes);
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

pub fn sasl_start(body: &Document, db: &str, conn: &mut Conn, shared: &Shared) -> Document {
    let mechanism = body.get_str("mechanism").unwrap_or_default();
    // A Community server, or one older than 4.4, has no MONGODB-AWS.
    if mechanism != MECHANISM || shared.cfg.fault == Some(crate::server::Fault::NoAwsMechanism) {
        return error(
            334,
            "MechanismUnavailable",
            &format!("Received authentication for mechanism {mechanism} which is not enabled"),
        );
    }
    if db != "$external" {
        return refusal_reply(
            shared.cfg.mode,
            &Refusal::Protocol(format!("MONGODB-AWS on database {db}")),
        );
    }
    let first = match payload(body) {
        Ok(p) => p,
        Err(r) => return refusal_reply(shared.cfg.mode, &r),
    };
    let client_nonce = match first.get("r") {
        Some(Bson::Binary(b)) if b.bytes.len() == 32 => b.bytes.clone(),
        _ => {
            return refusal_reply(
                shared.cfg.mode,
                &Refusal::Protocol("client nonce is not 32 bytes".into()),
            )
        }
    };
    match first.get("p") {
        Some(Bson::Int32(110)) => {}
        other => {
            return refusal_reply(
                shared.cfg.mode,
                &Refusal::Protocol(format!(
                    "gs2 channel binding flag {other:?}, expected 110 ('n')"
                )),
            )
        }
    }
    let mut server_nonce = vec![0u8; 64];
    rand::rng().fill_bytes(&mut server_nonce);
    if shared.cfg.fault != Some(Fault::BadNonce) {
        server_nonce[..32].copy_from_slice(&client_nonce);
    }
    conn.conversation = Some(server_nonce.clone());
    let reply = doc! {
        "s": Bson::Binary(Binary { subtype: BinarySubtype::Generic, bytes: server_nonce }),
        "h": shared.cfg.sts_host.clone(),
    };
    doc! { "conversationId": 1, "done": false, "payload": binary(&reply), "ok": 1.0 }
}

pub async fn sasl_continue(body: &Document, conn: &mut Conn, shared: &Shared) -> Document {
    let mode = shared.cfg.mode;
    let outcome = conversation(body, conn, shared).await;
    let ip = conn.peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let remote = conn.peer.map(|p| p.to_string()).unwrap_or_default();
    let attempt = match &outcome {
        Ok(user) => attempt(&user.arn, ip, &remote, None),
        Err((username, r)) => attempt(username, ip, &remote, Some(failure_reason(r))),
    };
    if let Ok(mut log) = shared.access_log.lock() {
        log.push(attempt);
    }
    if outcome.is_err() {
        shared.event(crate::server::Event::AuthRefused);
    }
    match outcome {
        Ok(user) => {
            conn.user = Some(user);
            let empty = Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: Vec::new(),
            });
            doc! { "conversationId": 1, "done": true, "payload": empty, "ok": 1.0 }
        }
        Err((_, r)) => refusal_reply(mode, &r),
    }
}

/// The server's own reason, as its log names it. Not published for Atlas's access history:
/// modelled on the `error` of mongod's "Authentication failed" log line (log id 20249), which is
/// the status of the failed step (`UserNotFound: Could not find user "…" for db "$external"`).
fn failure_reason(r: &Refusal) -> String {
    match r {
        Refusal::UserNotFound(arn) => {
            format!("UserNotFound: Could not find user \"{arn}\" for db \"$external\"")
        }
        Refusal::Sts(status, code) => {
            format!("AuthenticationFailed: aws sts call has response {status} ({code})")
        }
        Refusal::Protocol(why) => format!("AuthenticationFailed: {why}"),
    }
}

/// The attempt as the access history lists it; its log line in mongod's structured log format
/// (`{"t":…,"s":"I","c":"ACCESS","id":…,"msg":…,"attr":{…}}`), 5286306 for a success and 20249
/// for a failure.
fn attempt(
    username: &str,
    ip: String,
    remote: &str,
    failure: Option<String>,
) -> crate::server::AuthAttempt {
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let date = bson::DateTime::from_millis(at_ms as i64)
        .try_to_rfc3339_string()
        .unwrap_or_default();
    let (id, msg) = match failure {
        None => (5286306, "Successfully authenticated"),
        Some(_) => (20249, "Authentication failed"),
    };
    let mut attr = serde_json::json!({
        "mechanism": MECHANISM, "speculative": false, "principalName": username,
        "authenticationDatabase": "$external", "remote": remote,
    });
    if let Some(f) = &failure {
        attr["error"] = serde_json::json!(f);
    }
    let log_line = serde_json::json!({
        "t": {"$date": date}, "s": "I", "c": "ACCESS", "id": id, "ctx": "conn", "msg": msg,
        "attr": attr,
    })
    .to_string();
    crate::server::AuthAttempt {
        at_ms,
        username: username.to_string(),
        ip,
        ok: failure.is_none(),
        failure_reason: failure,
        log_line,
    }
}

/// The conversation's second step: the user Atlas found, or the ARN it looked up (empty before
/// STS named one) and why it refused.
async fn conversation(
    body: &Document,
    conn: &mut Conn,
    shared: &Shared,
) -> Result<User, (String, Refusal)> {
    let bare = |r: Refusal| (String::new(), r);
    let Some(server_nonce) = conn.conversation.take() else {
        return Err(bare(Refusal::Protocol(
            "saslContinue without saslStart".into(),
        )));
    };
    let second = payload(body).map_err(bare)?;
    let (Ok(authorization), Ok(date)) = (second.get_str("a"), second.get_str("d")) else {
        return Err(bare(Refusal::Protocol("a or d missing".into())));
    };
    let token = second.get_str("t").ok();
    check_signed_headers(authorization, token.is_some()).map_err(bare)?;
    let arn = replay(shared, authorization, date, token, &server_nonce)
        .await
        .map_err(bare)?;
    let db_user = atlas_user_arn(&arn);
    let found = shared
        .users
        .read()
        .ok()
        .and_then(|u| u.get(&db_user).cloned());
    // Atlas finds a user only with the type the caller has (an assumed role's session maps to
    // a ROLE user) and on a cluster in its scopes.
    let found = found.filter(|u| {
        u.iam_type == crate::server::IamType::of(&db_user)
            && (u.scopes.is_empty() || u.scopes.iter().any(|s| s == crate::server::CLUSTER_NAME))
    });
    let Some(crate::server::DbUser { roles, .. }) = found else {
        return Err((db_user.clone(), Refusal::UserNotFound(db_user)));
    };
    Ok(User {
        arn: db_user,
        roles,
    })
}

fn check_signed_headers(authorization: &str, has_token: bool) -> Result<(), Refusal> {
    if !authorization.starts_with("AWS4-HMAC-SHA256 ") {
        return Err(Refusal::Protocol(
            "authorization is not AWS4-HMAC-SHA256".into(),
        ));
    }
    let signed = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .ok_or_else(|| Refusal::Protocol("no SignedHeaders".into()))?;
    let signed: Vec<&str> = signed.trim().split(';').collect();
    for h in REQUIRED_SIGNED {
        if !signed.contains(&h) {
            return Err(Refusal::Protocol(format!("{h} is not signed")));
        }
    }
    if has_token && !signed.contains(&"x-amz-security-token") {
        return Err(Refusal::Protocol(
            "x-amz-security-token is not signed".into(),
        ));
    }
    Ok(())
}

/// An assumed-role session is looked up as its role; anything else as it is.
pub fn atlas_user_arn(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let [_, partition, "sts", _, account, resource] = parts.as_slice() {
        if let Some(rest) = resource.strip_prefix("assumed-role/") {
            let role = rest.split('/').next().unwrap_or_default();
            return format!("arn:{partition}:iam::{account}:role/{role}");
        }
    }
    arn.to_string()
}

fn xml_tag<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].trim())
}

/// Sends the client's signed request to STS, as Atlas does, and returns the caller's ARN.
async fn replay(
    shared: &Shared,
    authorization: &str,
    date: &str,
    token: Option<&str>,
    server_nonce: &[u8],
) -> Result<String, Refusal> {
    let endpoint = shared.cfg.sts_endpoint.trim_end_matches('/');
    let addr = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| Refusal::Protocol(format!("STS endpoint {endpoint} is not http://")))?;
    let nonce = base64::engine::general_purpose::STANDARD.encode(server_nonce);
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {len}\r\nX-Amz-Date: {date}\r\nAuthorization: {authorization}\r\n",
        host = shared.cfg.sts_host,
        len = BODY.len()
    );
    if let Some(t) = token {
        request.push_str(&format!("X-Amz-Security-Token: {t}\r\n"));
    }
    request.push_str(&format!(
        "X-MongoDB-Server-Nonce: {nonce}\r\nX-MongoDB-GS2-CB-Flag: n\r\nConnection: close\r\n\r\n{BODY}"
    ));
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(Refusal::Sts(502, format!("STS unreachable: {e}"))),
        Err(_) => return Err(Refusal::Sts(504, "STS did not answer".into())),
    };
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    if status != 200 {
        let code = xml_tag(&text, "Code").unwrap_or("unknown").to_string();
        return Err(Refusal::Sts(status, code));
    }
    xml_tag(&text, "Arn")
        .map(str::to_string)
        .ok_or_else(|| Refusal::Sts(502, "no Arn in the STS answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_roles_map_to_roles() {
        assert_eq!(
            atlas_user_arn("arn:aws:sts::123456789012:assumed-role/app/s"),
            "arn:aws:iam::123456789012:role/app"
        );
        assert_eq!(
            atlas_user_arn("arn:aws:iam::123456789012:user/u"),
            "arn:aws:iam::123456789012:user/u"
        );
    }

    #[test]
    fn unsigned_nonce_is_refused() {
        let a = "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/sts/aws4_request, \
                 SignedHeaders=content-length;content-type;host;x-amz-date;x-mongodb-gs2-cb-flag, Signature=00";
        assert!(check_signed_headers(a, false).is_err());
        let ok = a.replace(
            "x-mongodb-gs2-cb-flag",
            "x-mongodb-gs2-cb-flag;x-mongodb-server-nonce",
        );
        assert!(check_signed_headers(&ok, false).is_ok());
        assert!(
            check_signed_headers(&ok, true).is_err(),
            "token present but unsigned"
        );
    }

    #[test]
    fn proxy_texts() {
        let r = refusal_reply(Mode::Proxy, &Refusal::Sts(403, "x".into()));
        assert_eq!(
            r.get_str("errmsg").ok(),
            Some("bad auth : aws sts call has response 403")
        );
        assert_eq!(r.get_i32("code").ok(), Some(8000));
        let r = refusal_reply(Mode::Dedicated, &Refusal::UserNotFound("arn".into()));
        assert_eq!(r.get_str("errmsg").ok(), Some("Authentication failed."));
        assert_eq!(r.get_i32("code").ok(), Some(18));
    }
}
