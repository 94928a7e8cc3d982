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
fn hello_bytes() -> Vec<u8> {
    let mut body = Vec::new();
    let _ = doc! {"hello": 1, "helloOk": true, "$db": "admin", "client": {"application": {"name": "atlas-iam"}}}
        .to_writer(&mut body);
    let mut payload = vec![0u8, 0, 0, 0, 0];
    payload.extend(body);
    let mut msg = Vec::new();
    for v in [(16 + payload.len()) as i32, 1, 0, OP_MSG] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend(payload);
    msg
}

#[derive(Debug)]
pub enum HelloError {
    Closed(std::io::Error),
    Silent,
    BadReply(String),
}

/// Sends a hello and reads the reply document.
pub async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    budget: Duration,
) -> Result<Document, HelloError> {
    let exchange = async {
        s.write_all(&hello_bytes())
            .await
            .map_err(HelloError::Closed)?;
        s.flush().await.map_err(HelloError::Closed)?;
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
        let doc = body
            .get(skip..)
            .and_then(|b| Document::from_reader(b).ok())
            .ok_or_else(|| HelloError::BadReply("a body that is not BSON".into()))?;
        Ok(doc)
    };
    tokio::time::timeout(budget, exchange)
        .await
        .map_err(|_| HelloError::Silent)?
}

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

    #[tokio::test]
    async fn silence_is_bounded() {
        let (mut client, _server) = tokio::io::duplex(4096);
        assert!(matches!(
            hello(&mut client, Duration::from_millis(50)).await,
            Err(HelloError::Silent)
        ));
    }
}
