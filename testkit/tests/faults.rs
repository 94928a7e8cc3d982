//! Every fault, seen by a real client (the Rust driver, and raw sockets where the driver hides
//! the detail), as a real client would see it from Atlas.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{rust_with, Creds};
use atlas_iam_testkit::wire;
use atlas_iam_testkit::{Fault, Role, Stack, StackOptions};
use serde_json::Value;

fn stack(options: StackOptions) -> Stack {
    let stack = Stack::start(options).expect("stack");
    let account = stack.account.clone().expect("account");
    stack.set_db_user(&account.client_arn, vec![Role::ReadWrite("test".into())]);
    stack
}

fn with_fault(fault: Fault, tls: bool) -> Stack {
    stack(StackOptions {
        fault: Some(fault),
        tls,
        ..Default::default()
    })
}

fn ping(stack: &Stack, uri: &str) -> (Value, Duration) {
    let creds = Creds::from(&stack.account.clone().expect("account").client);
    let started = Instant::now();
    let r = rust_with(stack, uri, &creds, "ping", Duration::from_secs(2));
    (r, started.elapsed())
}

fn failed_with(r: &Value, text: &str) {
    failed_with_any(r, &[text]);
}

fn failed_with_any(r: &Value, texts: &[&str]) {
    assert_eq!(r["ok"], false, "{r}");
    let m = r["message"].as_str().unwrap_or_default();
    assert!(
        texts.iter().any(|t| m.contains(t)),
        "expected one of {texts:?} in {m}"
    );
}

fn plain_uri(stack: &Stack) -> String {
    format!(
        "mongodb://{}/?authSource=%24external&authMechanism=MONGODB-AWS",
        stack.atlas.addr
    )
}

#[test]
fn refuse_closes_the_port() {
    let s = with_fault(Fault::Refuse, false);
    failed_with(&ping(&s, &s.uri()).0, "Connection refused");
    assert!(TcpStream::connect(s.atlas.addr).is_err());
}

#[test]
fn silent_accepts_and_never_answers() {
    let s = with_fault(Fault::Silent, false);
    let (r, took) = ping(&s, &s.uri());
    failed_with(&r, "Server selection timeout");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    // the connection is accepted, but no reply comes
    let mut c = TcpStream::connect(s.atlas.addr).expect("accepted");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    c.write_all(&wire::encode_request(
        1,
        &bson::doc! {"hello": 1, "$db": "admin"},
        &[],
    ))
    .expect("write");
    let mut buf = [0u8; 16];
    let err = c.read(&mut buf).expect_err("no reply");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}

#[test]
fn close_after_accept_is_an_unexpected_end_of_file() {
    let s = with_fault(Fault::CloseAfterAccept, false);
    // a close with the client's hello unread may reach it as a reset
    failed_with_any(
        &ping(&s, &s.uri()).0,
        &["unexpected end of file", "Connection reset by peer"],
    );
}

#[test]
fn garbage_reply_is_an_invalid_reply() {
    let s = with_fault(Fault::Garbage, false);
    failed_with(&ping(&s, &s.uri()).0, "invalid reply");
}

#[test]
fn slow_delays_every_reply() {
    let s = with_fault(Fault::Slow(300), false);
    let (r, took) = ping(&s, &s.uri());
    assert_eq!(r["ok"], true, "{r}");
    // handshake, saslStart, saslContinue and ping: four replies at least
    assert!(took >= Duration::from_millis(1200), "{took:?}");
}

#[test]
fn bad_nonce_is_refused_by_the_client() {
    let s = with_fault(Fault::BadNonce, false);
    failed_with(
        &ping(&s, &s.uri()).0,
        "MONGODB-AWS failure: mismatched nonce",
    );
}

#[test]
fn tls_alert_is_an_internal_error_alert() {
    let s = with_fault(Fault::TlsAlert, true);
    failed_with(&ping(&s, &s.uri()).0, "received fatal alert: InternalError");
}

#[test]
fn plaintext_on_a_tls_only_port_is_closed_and_allowed_when_asked() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    failed_with_any(
        &ping(&s, &plain_uri(&s)).0,
        &["unexpected end of file", "Connection reset by peer"],
    );
    assert_eq!(ping(&s, &s.uri()).0["ok"], true);
    let both = stack(StackOptions {
        tls: true,
        allow_plaintext: true,
        ..Default::default()
    });
    assert_eq!(ping(&both, &plain_uri(&both)).0["ok"], true);
    assert_eq!(ping(&both, &both.uri()).0["ok"], true);
}

#[test]
fn an_untrusted_ca_fails_certificate_verification() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    let other = atlas_iam_testkit::pki::Pki::generate(&[]).expect("pki");
    let uri = format!(
        "{}&tls=true&tlsCAFile={}",
        plain_uri(&s),
        other.ca_file.display()
    );
    failed_with(&ping(&s, &uri).0, "invalid peer certificate: UnknownIssuer");
}

#[test]
fn legacy_op_query_hello_gets_an_op_reply() {
    let s = stack(StackOptions::default());
    let mut c = TcpStream::connect(s.atlas.addr).expect("connect");
    let query = bson::doc! {"isMaster": 1, "helloOk": true};
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(b"admin.$cmd\0");
    body.extend_from_slice(&0i32.to_le_bytes());
    body.extend_from_slice(&(-1i32).to_le_bytes());
    query.to_writer(&mut body).expect("bson");
    let mut msg = Vec::new();
    for v in [(16 + body.len()) as i32, 42, 0, wire::OP_QUERY] {
        msg.extend_from_slice(&v.to_le_bytes());
    }
    msg.extend(body);
    c.write_all(&msg).expect("write");
    let reply = read_reply(&mut c);
    assert_eq!(reply.0.op_code, wire::OP_REPLY);
    assert_eq!(reply.0.response_to, 42);
    assert_eq!(reply.1.get_bool("ismaster").ok(), Some(true));
    assert_eq!(reply.1.get_i32("maxWireVersion").ok(), Some(21));
}

fn read_reply(c: &mut TcpStream) -> (wire::Header, bson::Document) {
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut head = [0u8; 16];
    c.read_exact(&mut head).expect("header");
    let int = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let header = wire::Header {
        length: int(0),
        request_id: int(4),
        response_to: int(8),
        op_code: int(12),
    };
    let mut body = vec![0u8; header.length as usize - 16];
    c.read_exact(&mut body).expect("body");
    (
        header,
        wire::reply_document(header, &body).expect("document"),
    )
}

#[test]
fn the_server_survives_a_stream_of_garbage() {
    use rand::{Rng, RngCore};
    let s = stack(StackOptions::default());
    let addr = s.atlas.addr;
    let senders: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                for i in 0..40 {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let mut junk = vec![0u8; rng.random_range(1..2048)];
                    rng.fill_bytes(&mut junk);
                    if (t + i) % 3 == 0 && junk.len() >= 16 {
                        // a plausible header with a lying length and opcode
                        let len = junk.len() as i32;
                        junk[..4].copy_from_slice(&len.to_le_bytes());
                        junk[12..16].copy_from_slice(&wire::OP_MSG.to_le_bytes());
                    }
                    let _ = c.write_all(&junk);
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut sink = [0u8; 256];
                    let _ = c.read(&mut sink);
                }
            })
        })
        .collect();
    for t in senders {
        t.join().expect("sender");
    }
    // a clean client is still served
    assert_eq!(ping(&s, &s.uri()).0["ok"], true);
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(&wire::encode_request(
        7,
        &bson::doc! {"ping": 1, "$db": "admin"},
        &[],
    ))
    .expect("write");
    assert_eq!(read_reply(&mut c).1.get_f64("ok").ok(), Some(1.0));
}
