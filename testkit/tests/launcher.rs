//! The local-atlas launcher: one JSON line with everything a client needs, a working cluster
//! behind it, and a clean stop on SIGTERM (moto included).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn prints_one_line_serves_and_stops_cleanly() {
    let user = "arn:aws:iam::123456789012:user/atlas-client";
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-atlas"))
        .args([
            "--tls",
            "--dns",
            "--user",
            &format!("{user}=readWrite@test"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start local-atlas");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the JSON line within a minute");
    let info: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");

    let uri = info["uri"].as_str().expect("uri");
    assert!(uri.starts_with("mongodb://127.0.0.1:"), "{uri}");
    assert!(
        uri.contains("authSource=%24external&authMechanism=MONGODB-AWS"),
        "{uri}"
    );
    assert!(
        uri.contains("tls=true") && uri.contains("tlsCAFile="),
        "{uri}"
    );
    let ca = info["tls_ca_file"].as_str().expect("tls_ca_file");
    assert!(std::path::Path::new(ca).is_file(), "{ca}");
    assert_eq!(info["host"], "127.0.0.1");
    assert!(info["port"].as_u64().is_some_and(|p| p > 0));
    assert!(info["dns_server"]
        .as_str()
        .is_some_and(|d| d.starts_with("127.0.0.1:")));
    assert_eq!(info["cluster"], "cluster0.ab12c.example.test");
    assert_eq!(info["role_arn"], "arn:aws:iam::123456789012:role/atlas-app");
    assert_eq!(info["user_arn"], user);
    let env = &info["env"];
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_IAM",
    ] {
        assert!(
            env[k].as_str().is_some_and(|v| !v.is_empty()),
            "{k} in {env}"
        );
    }
    let sts = info["sts_endpoint"].as_str().expect("sts_endpoint");
    assert_eq!(env["AWS_ENDPOINT_URL_STS"], sts);

    // a real client with that environment works against that URI
    let python = crate::common::root().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg(crate::common::root().join("testkit/fidelity/pymongo_client.py"))
        .args([uri, "full"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(
            env.as_object()
                .expect("env")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
        )
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `bash .ci/setup`)", python.display()));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("pymongo JSON");
    assert_eq!(r["ok"], true, "{r}");

    // SIGTERM stops it, and the moto it started
    let sts_addr = sts.trim_start_matches("http://").to_string();
    let status = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "local-atlas did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        TcpStream::connect(&sts_addr).is_err(),
        "the gate is still listening"
    );
    let port = info["port"].as_u64().expect("port");
    assert!(
        TcpStream::connect(("127.0.0.1", port as u16)).is_err(),
        "the server is still listening"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        vec!["--fault", "meteor"],
        vec!["--mode", "serverless"],
        vec!["--user", "nope"],
        vec!["--dns-fault", "servfail"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_local-atlas"))
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error:"),
            "{args:?}"
        );
    }
}
