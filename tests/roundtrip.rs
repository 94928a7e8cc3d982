//! roundtrip leaves nothing behind: a --timeout that runs out during the find, a connection lost
//! after the insert, a delete that removes nothing, SIGINT after the insert, and 20 concurrent
//! runs, each against the local Atlas, counting what the server holds afterwards.

use std::time::{Duration, Instant};

use crate::common::{atlas_iam, Cli, Stage, Test};
use atlas_iam_testkit::moto::{user_arn, Keys};
use atlas_iam_testkit::{Fault, Role, Stack, StackOptions};

const COLL: &str = "atlas_iam_probe";

fn stack(fault: Option<Fault>) -> Stack {
    let s = Stack::start(StackOptions {
        fault,
        ..Default::default()
    })
    .expect("local Atlas stack (moto from `bash .ci/setup`)");
    s.set_db_user(
        &user_arn("atlas-client"),
        vec![Role::ReadWrite("test".into())],
    );
    s
}

fn keys(s: &Stack) -> Keys {
    s.account.clone().expect("account").client
}

fn cli(s: &Stack) -> Cli {
    let mut c = atlas_iam();
    for (k, v) in s.env() {
        c = c.env(&k, v);
    }
    c.keys(&keys(s))
}

/// Documents left in test.atlas_iam_probe (a dropped collection holds none).
fn left(s: &Stack) -> usize {
    s.atlas.documents("test", COLL).unwrap_or(0)
}

#[test]
fn a_timeout_during_the_find_still_deletes_the_document() {
    let s = stack(Some(Fault::HangFind));
    let started = Instant::now();
    // one run (nothing to read in the text): the count below is this run's
    let out = Test::new(|| cli(&s))
        .args(["roundtrip", "--uri", &s.uri(), "--timeout", "4"])
        .fails_at(Stage::Command, "command_failed")
        .exit(7)
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(4 + 10 + 2),
        "the cleanup has a bound of its own"
    );
    assert_eq!(left(&s), 0, "{}", out.stdout);
    let detail = out.stage(Stage::Command)["detail"].to_string();
    assert!(detail.contains("deleted after the failure"), "{detail}");
    assert!(out.json().get("leftover").is_none(), "{}", out.stdout);
}

#[test]
fn a_connection_lost_after_the_insert_still_deletes_the_document() {
    let s = stack(Some(Fault::DropAfterInsert));
    let out = cli(&s)
        .args(["roundtrip", "--uri", &s.uri(), "--format", "json"])
        .run();
    assert_eq!(left(&s), 0, "{}", out.all());
    assert!(out.json().get("leftover").is_none(), "{}", out.stdout);
}

#[test]
fn a_delete_that_removes_nothing_is_a_failure_naming_the_id() {
    let s = stack(Some(Fault::IgnoreDelete));
    let out = cli(&s)
        .args(["roundtrip", "--uri", &s.uri(), "--format", "json"])
        .run();
    assert_eq!(out.code, 7, "{}", out.all());
    let report = out.json();
    assert_eq!(
        crate::common::failure(&report),
        ("command".into(), "command_failed".into())
    );
    let ids = report["leftover"]["ids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{report:#}");
    let id = ids[0].as_str().unwrap_or_default();
    assert!(
        out.stdout.contains(id) && out.stdout.contains("may remain"),
        "{}",
        out.stdout
    );
    assert_eq!(left(&s), 1, "the fault keeps it, and the report says so");
    let human = cli(&s).args(["roundtrip", "--uri", &s.uri()]).run();
    assert!(human.stdout.contains("may remain"), "{}", human.stdout);
}

#[test]
fn every_signal_after_the_insert_still_deletes_the_document() {
    for signal in ["INT", "TERM", "HUP", "QUIT"] {
        a_signal_after_the_insert_still_deletes_the_document(signal);
    }
}

fn a_signal_after_the_insert_still_deletes_the_document(signal: &str) {
    let s = stack(Some(Fault::HangFind));
    let (child, _dir) = cli(&s)
        .args([
            "roundtrip",
            "--uri",
            &s.uri(),
            "--timeout",
            "60",
            "--format",
            "json",
        ])
        .spawn();
    let started = Instant::now();
    while left(&s) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the insert never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status();
    assert!(killed.is_ok_and(|k| k.success()));
    let out = child.wait_with_output().expect("wait");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "SIG{signal} ended the run"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("interrupted by SIG{signal}")),
        "{stdout}"
    );
    assert_eq!(left(&s), 0, "{stdout}");
}

#[test]
fn twenty_concurrent_roundtrips_leave_nothing_and_a_created_collection_is_dropped() {
    let s = stack(None);
    let children: Vec<_> = (0..20)
        .map(|_| {
            cli(&s)
                .args(["roundtrip", "--uri", &s.uri(), "--format", "json"])
                .spawn()
        })
        .collect();
    for (child, _dir) in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(left(&s), 0);
    println!("20 concurrent roundtrips: {} documents left", left(&s));

    // alone, a run that created its collection drops it again
    let out = cli(&s)
        .args([
            "roundtrip",
            "--uri",
            &s.uri(),
            "--collection",
            "fresh_probe",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        s.atlas.documents("test", "fresh_probe"),
        None,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("dropped"), "{}", out.stdout);
    // the stack speaks plaintext: never silently
    assert!(out.stdout.contains("cleartext"), "{}", out.stdout);
}

/// A server that accepts connections and never answers a hello: no connection is ever
/// authenticated, so no insert was sent, nothing "may remain", and the run ends in its time
/// (no cleanup is waited for).
#[test]
fn no_leftover_is_claimed_when_nothing_was_sent() {
    let s = stack(None);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok((mut c, _)) = listener.accept() {
                // half a reply header, then silence: the hello never completes
                use std::io::Write;
                let _ = c.write_all(&[0x40, 0, 0, 0, 1, 0]);
                open.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let uri = format!("mongodb://{addr}/?authSource=%24external&authMechanism=MONGODB-AWS");
    let started = Instant::now();
    let out = cli(&s)
        .args([
            "roundtrip",
            "--uri",
            &uri,
            "--timeout",
            "3",
            "--format",
            "json",
        ])
        .run();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "{took:?}: {}", out.all());
    let r = out.json();
    assert!(r["leftover"].is_null(), "{r:#}");
    assert!(!out.stdout.contains("may remain"), "{}", out.stdout);
    assert_ne!(out.code, 0);
    drop(held);
}
