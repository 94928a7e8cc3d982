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
/// A hello's or a buildInfo's reply is a few hundred bytes; a megabyte is far beyond any.
const MAX_REPLY: usize = 1024 * 1024;
/// How deep a document may nest: MongoDB refuses documents deeper than 100 levels, so a reply
/// deeper than that is no MongoDB reply, and is refused before any recursive parser sees it.
pub const MAX_DEPTH: usize = 100;
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
    let doc = body
        .get(skip..)
        .ok_or_else(|| HelloError::BadReply("a body that is not BSON".into()))?;
    check_bson(doc, MAX_DEPTH).map_err(HelloError::BadReply)?;
    Document::from_reader(doc).map_err(|_| HelloError::BadReply("a body that is not BSON".into()))
}

/// Walks a BSON document without recursion: its lengths must fit, its element types must be
/// known, and it may nest at most `max_depth` levels.
pub fn check_bson(b: &[u8], max_depth: usize) -> Result<(), String> {
    let not_bson = || "a body that is not BSON".to_string();
    let int = |at: usize| -> Result<usize, String> {
        let bytes = b.get(at..at + 4).ok_or_else(not_bson)?;
        usize::try_from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            .map_err(|_| not_bson())
    };
    // the index of each open document's closing NUL
    let mut ends: Vec<usize> = Vec::new();
    let open = |at: usize, ends: &mut Vec<usize>, limit: usize| -> Result<usize, String> {
        let len = int(at)?;
        if len < 5 || at + len > limit {
            return Err(not_bson());
        }
        if ends.len() >= max_depth {
            return Err(format!("a document nested deeper than {max_depth} levels"));
        }
        ends.push(at + len - 1);
        Ok(at + 4)
    };
    let mut pos = open(0, &mut ends, b.len())?;
    while let Some(&end) = ends.last() {
        if pos == end {
            if b.get(pos) != Some(&0) {
                return Err(not_bson());
            }
            ends.pop();
            pos += 1;
            continue;
        }
        let t = *b.get(pos).ok_or_else(not_bson)?;
        pos += 1;
        let name = b
            .get(pos..end)
            .and_then(|r| r.iter().position(|&c| c == 0))
            .ok_or_else(not_bson)?;
        pos += name + 1;
        let string = |at: usize| -> Result<usize, String> { Ok(at + 4 + int(at)?) };
        pos = match t {
            0x01 | 0x09 | 0x11 | 0x12 => pos + 8,
            0x02 | 0x0D | 0x0E => string(pos)?,
            0x03 | 0x04 => open(pos, &mut ends, end)?,
            0x05 => pos + 5 + int(pos)?,
            0x06 | 0x0A | 0x7F | 0xFF => pos,
            0x07 => pos + 12,
            0x08 => pos + 1,
            0x0B => {
                let mut p = pos;
                for _ in 0..2 {
                    p += b
                        .get(p..end)
                        .and_then(|r| r.iter().position(|&c| c == 0))
                        .ok_or_else(not_bson)?
                        + 1;
                }
                p
            }
            0x0C => string(pos)? + 12,
            0x0F => {
                // code with scope: total length, the code, then the scope document
                let total_end = pos + int(pos)?;
                if total_end > end {
                    return Err(not_bson());
                }
                let scope = string(pos + 4)?;
                open(scope, &mut ends, total_end)?
            }
            0x10 => pos + 4,
            0x13 => pos + 16,
            _ => return Err(not_bson()),
        };
        if pos > end {
            return Err(not_bson());
        }
    }
    Ok(())
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

    /// `{"n": {"n": … {"x": 1}}}`, `depth` documents deep, written byte by byte (building it
    /// with the bson crate would itself recurse that deep).
    fn nested(depth: usize) -> Vec<u8> {
        let mut d: Vec<u8> = vec![0x10, b'x', 0, 1, 0, 0, 0];
        for level in 0..depth {
            let mut framed = ((d.len() + 5) as i32).to_le_bytes().to_vec();
            framed.extend(&d);
            framed.push(0);
            d = if level + 1 == depth {
                framed
            } else {
                let mut e = vec![0x03, b'n', 0];
                e.extend(framed);
                e
            };
        }
        d
    }

    /// A server whose hello reply nests 1,100 levels (9 KB): bad_reply, not a stack overflow.
    #[tokio::test]
    async fn a_deep_hello_reply_is_a_bad_reply() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = server.read(&mut buf).await;
            let mut payload = vec![0u8; 5];
            payload.extend(nested(1_100));
            let mut msg = Vec::new();
            for v in [(16 + payload.len()) as i32, 9, 1, OP_MSG] {
                msg.extend_from_slice(&v.to_le_bytes());
            }
            msg.extend(payload);
            let _ = server.write_all(&msg).await;
        });
        match hello(&mut client, Duration::from_secs(2)).await {
            Err(HelloError::BadReply(why)) => assert!(why.contains("deeper"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replies_are_walked_before_they_are_parsed() {
        let every_type = doc! {
            "d": 1.5, "s": "x", "doc": {"a": 1}, "arr": [1, 2], "bin": mongodb::bson::Binary {
                subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![1, 2] },
            "oid": mongodb::bson::oid::ObjectId::new(), "b": true, "dt": mongodb::bson::DateTime::now(),
            "null": null, "re": mongodb::bson::Regex { pattern: "a".into(), options: "i".into() },
            "js": mongodb::bson::Bson::JavaScriptCode("f()".into()),
            "jss": mongodb::bson::Bson::JavaScriptCodeWithScope(mongodb::bson::JavaScriptCodeWithScope {
                code: "f()".into(), scope: doc! {"v": {"w": 1}} }),
            "i": 1i32, "ts": mongodb::bson::Timestamp { time: 1, increment: 2 }, "l": 1i64,
            "min": mongodb::bson::Bson::MinKey, "max": mongodb::bson::Bson::MaxKey,
        };
        let mut bytes = Vec::new();
        every_type.to_writer(&mut bytes).expect("encode");
        assert_eq!(check_bson(&bytes, MAX_DEPTH), Ok(()));
        assert_eq!(check_bson(&nested(MAX_DEPTH), MAX_DEPTH), Ok(()));
        assert!(Document::from_reader(&nested(MAX_DEPTH)[..]).is_ok());
        assert!(check_bson(&nested(MAX_DEPTH + 1), MAX_DEPTH).is_err());
        let deep = nested(1_100);
        let e = check_bson(&deep, MAX_DEPTH).expect_err("deep");
        assert!(e.contains("deeper than 100"), "{e}");
        // a truncated or lying document is not BSON
        assert!(check_bson(&bytes[..bytes.len() - 3], MAX_DEPTH).is_err());
        let mut lying = bytes.clone();
        lying[0] = 0xff;
        assert!(check_bson(&lying, MAX_DEPTH).is_err());
    }

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
