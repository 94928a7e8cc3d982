//! The MongoDB wire protocol as far as the probe needs it: a hello as OP_MSG, and its reply read
//! within a bound, so that a silent server, one that closes, or one that answers something that
//! is not MongoDB, is named as such.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::HostPort;
use crate::diagnosis::{Diagnosis, Kind};

const OP_REPLY: i32 = 1;
const OP_MSG: i32 = 2013;
const MAX_REPLY: usize = 48_000_000;
fn op_msg(body: &Document, request_id: i32) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = body.to_writer(&mut bytes);
    let mut payload = vec![0u8, 0, 0, 0, 0];
    payload.extend(bytes);
    let mut msg = Vec::new();
    for v in [(16 + payload.len()) as i32, request_id, 0, OP_MSG] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend(payload);
    msg
}

fn hello_bytes() -> Vec<u8> {
    op_msg(
        &doc! {"hello": 1, "helloOk": true, "$db": "admin", "client": {"application": {"name": "atlas-iam"}}},
        1,
    )
}

/// buildInfo needs no authentication; sent right behind the hello, it costs no round trip.
fn build_info_bytes() -> Vec<u8> {
    op_msg(&doc! {"buildInfo": 1, "$db": "admin"}, 2)
}

#[derive(Debug)]
pub enum HelloError {
    Closed(std::io::Error),
    Silent,
    BadReply(String),
}

async fn read_reply<S: AsyncRead + Unpin>(s: &mut S) -> Result<Document, HelloError> {
    let mut head = [0u8; 16];
    s.read_exact(&mut head).await.map_err(HelloError::Closed)?;
    let int = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let (len, op) = (int(0), int(12));
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (21..=MAX_REPLY).contains(l))
        .ok_or_else(|| HelloError::BadReply(format!("a message length of {len}")))?;
    if op != OP_MSG && op != OP_REPLY {
        return Err(HelloError::BadReply(format!("opcode {op}")));
    }
    let mut body = vec![0u8; len - 16];
    s.read_exact(&mut body).await.map_err(HelloError::Closed)?;
    let skip = if op == OP_MSG { 5 } else { 20 };
    body.get(skip..)
        .and_then(|b| Document::from_reader(b).ok())
        .ok_or_else(|| HelloError::BadReply("a body that is not BSON".into()))
}

/// A hello, and a buildInfo sent in the same flight: the hello's reply decides; the server's
/// version is a fact read when the buildInfo's reply follows at once (a server that refuses or
/// ignores it leaves the version unknown, nothing more).
pub async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    budget: Duration,
) -> Result<(Document, Option<String>), HelloError> {
    let exchange = async {
        let mut flight = hello_bytes();
        flight.extend(build_info_bytes());
        s.write_all(&flight).await.map_err(HelloError::Closed)?;
        s.flush().await.map_err(HelloError::Closed)?;
        read_reply(s).await
    };
    let doc = tokio::time::timeout(budget, exchange)
        .await
        .map_err(|_| HelloError::Silent)??;
    let info = tokio::time::timeout(BUILD_INFO_WAIT.min(budget), read_reply(s)).await;
    let server_version = match info {
        Ok(Ok(info)) => info
            .get_str("version")
            .ok()
            .filter(|v| v.len() <= 64)
            .map(str::to_string),
        _ => None,
    };
    Ok((doc, server_version))
}

/// How long the buildInfo's reply may trail the hello's.
const BUILD_INFO_WAIT: Duration = Duration::from_millis(500);

pub(crate) fn hello_failure(
    h: &HostPort,
    e: HelloError,
    over: &str,
    budget: Duration,
) -> Diagnosis {
    match e {
        HelloError::Silent => Diagnosis::new(
            Kind::ServerSilent,
            format!("{h} accepted the connection{over} but did not answer a hello within {} ms", budget.as_millis()),
            "the server is overloaded or is not a MongoDB server (a proxy or load balancer that holds \
             connections?): check the host and port",
        ),
        HelloError::Closed(e) => Diagnosis::new(
            Kind::ServerClosed,
            format!("{h} closed the connection{over} without answering a hello ({e})"),
            "the port is not a MongoDB server, or it refuses this client: check the host and port",
        ),
        HelloError::BadReply(what) => Diagnosis::new(
            Kind::BadReply,
            format!("{h} answered a hello{over} with something that is not a MongoDB reply ({what})"),
            "another service listens on this port: check the host and port",
        ),
    }
}

pub(crate) fn version_of(doc: &Document) -> String {
    let wire = doc
        .get_i32("maxWireVersion")
        .map(|v| format!("wire version {v}"))
        .unwrap_or_default();
    let kind = if doc.get_str("setName").is_ok() {
        "replica set member"
    } else {
        "server"
    };
    format!("{kind}, {wire}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_is_a_well_formed_op_msg() {
        let b = hello_bytes();
        assert_eq!(
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        assert_eq!(i32::from_le_bytes([b[12], b[13], b[14], b[15]]), OP_MSG);
        let doc = Document::from_reader(&b[21..]).expect("bson");
        assert_eq!(doc.get_i32("hello").ok(), Some(1));
    }

    #[tokio::test]
    async fn garbage_replies_are_named() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let _ = server.read(&mut buf).await;
            let _ = server.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        match hello(&mut client, Duration::from_secs(2)).await {
            Err(HelloError::BadReply(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    /// The version rides along: read when the buildInfo answers, unknown (and no failure) when
    /// the server answers only the hello.
    #[tokio::test]
    async fn the_version_comes_with_the_hello_or_not_at_all() {
        for answer_build_info in [true, false] {
            let (mut client, mut server) = tokio::io::duplex(1 << 16);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = server.read(&mut buf).await;
                let mut reply = op_msg(&doc! {"ok": 1.0, "maxWireVersion": 21}, 10);
                if answer_build_info {
                    reply.extend(op_msg(&doc! {"ok": 1.0, "version": "8.0.4"}, 11));
                }
                let _ = server.write_all(&reply).await;
                // hold the connection open, silent
                let _ = server.read(&mut buf).await;
            });
            let started = std::time::Instant::now();
            let (doc, version) = hello(&mut client, Duration::from_secs(2))
                .await
                .expect("hello");
            assert_eq!(doc.get_i32("maxWireVersion").ok(), Some(21));
            if answer_build_info {
                assert_eq!(version.as_deref(), Some("8.0.4"));
            } else {
                assert_eq!(version, None);
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "waited for buildInfo"
                );
            }
        }
    }

    #[tokio::test]
    async fn silence_is_bounded() {
        let (mut client, _server) = tokio::io::duplex(4096);
        assert!(matches!(
            hello(&mut client, Duration::from_millis(50)).await,
            Err(HelloError::Silent)
        ));
    }
}
