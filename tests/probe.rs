//! The fault matrix: ping, list-collections and roundtrip run as the built binary against the
//! local Atlas, moto behind the STS gate, and the local DNS. Each scenario asserts, from the
//! JSON report, the failing stage, the diagnosis kind and the exit code, and that the human
//! output names the cause.

mod common;

use std::time::{Duration, Instant};

use atlas_iam_testkit::dns::DnsFault;
use atlas_iam_testkit::moto::{user_arn, Keys, ACCOUNT};
use atlas_iam_testkit::stack::SessionKeys;
use atlas_iam_testkit::{Fault, Mode, Role, Stack, StackOptions};
use common::{atlas_iam, atlas_iam_via, Cli, Output};

fn stack(options: StackOptions) -> Stack {
    Stack::start(options).expect("local Atlas stack (moto from `bash .ci/setup`)")
}

fn plain() -> Stack {
    stack(StackOptions::default())
}

fn client(s: &Stack) -> Keys {
    s.account.clone().expect("account").client
}

fn role(s: &Stack) -> String {
    s.account.clone().expect("account").role_arn
}

/// The binary pointed at the stack's STS, with no credentials yet.
fn cli(s: &Stack) -> Cli {
    cli_via(s, &[])
}

fn cli_via(s: &Stack, prefix: &[&str]) -> Cli {
    let mut c = atlas_iam_via(prefix);
    for (k, v) in s.env() {
        if !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET") {
            c = c.env(&k, v);
        }
    }
    c
}

fn session_env(c: Cli, k: &SessionKeys) -> Cli {
    c.env("AWS_ACCESS_KEY_ID", &k.id)
        .env("AWS_SECRET_ACCESS_KEY", &k.secret)
        .env("AWS_SESSION_TOKEN", &k.token)
}

fn stages(out: &Output) -> Vec<(String, String)> {
    out.json()["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap_or_default().to_string(),
                s["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Runs the scenario twice, as JSON and as text: the failing stage, kind and exit code from
/// JSON; the cause named in the human output; no secret in either.
fn expect(
    make: impl Fn() -> Cli,
    args: &[&str],
    stage: &str,
    kind: &str,
    exit: i32,
    says: &str,
    secrets: &[&str],
) -> Output {
    let json = make().args(args).args(["--format", "json"]).run();
    assert_eq!(json.code, exit, "exit code of {args:?}:\n{}", json.all());
    let report = json.json();
    assert_eq!(report["exit_code"], exit);
    assert_eq!(report["ok"], exit == 0);
    if exit == 0 {
        assert!(
            stages(&json)
                .iter()
                .all(|(_, st)| st == "passed" || st == "warning"),
            "{}",
            json.stdout
        );
    } else {
        assert_eq!(
            common::failure(&report),
            (stage.to_string(), kind.to_string()),
            "{}",
            json.stdout
        );
        let after: Vec<(String, String)> = stages(&json)
            .into_iter()
            .skip_while(|(s, _)| s != stage)
            .skip(1)
            .collect();
        assert!(
            after.iter().all(|(_, st)| st == "skipped"),
            "stages after {stage} must be skipped: {after:?}"
        );
    }
    json.assert_absent(secrets);
    let human = make().args(args).run();
    assert_eq!(human.code, exit, "{}", human.all());
    assert!(
        human.stdout.contains(says),
        "human output does not say `{says}`:\n{}",
        human.stdout
    );
    human.assert_absent(secrets);
    json
}

fn secrets(k: &Keys) -> Vec<&str> {
    vec![k.id.as_str(), k.secret.as_str()]
}

// ---------------------------------------------------------------- working paths

#[test]
fn ok_with_an_assumed_role() {
    let s = plain();
    let k = client(&s);
    let out = expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri(), "--role-arn", &role(&s)],
        "",
        "",
        0,
        "ping ok",
        &secrets(&k),
    );
    let names: Vec<String> = stages(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "config",
            "credentials",
            "assume",
            "identity",
            "dns",
            "tcp",
            "tls",
            "auth",
            "command"
        ]
    );
    assert_eq!(out.json()["identity"]["atlas_user"]["arn"], role(&s));
}

#[test]
fn ok_with_an_iam_user_and_roundtrip_latency() {
    let s = plain();
    let k = client(&s);
    s.set_db_user(
        &user_arn("atlas-client"),
        vec![Role::ReadWrite("test".into())],
    );
    let out = expect(
        || cli(&s).keys(&k),
        &["roundtrip", "--uri", &s.uri(), "--count", "3"],
        "",
        "",
        0,
        "inserted, read back and deleted",
        &secrets(&k),
    );
    let latency = &out.json()["latency"];
    assert_eq!(
        latency["samples_ms"].as_array().map(Vec::len),
        Some(3),
        "{latency}"
    );
    assert!(
        latency["cold_ms"].as_f64().is_some_and(|c| c > 0.0),
        "{latency}"
    );
    assert!(latency["operations"]["insert_ms"].is_number(), "{latency}");
}

#[test]
fn ok_with_a_secret_holding_plus_and_slash() {
    let s = plain();
    let keys = (0..40)
        .map(|i| s.create_iam_user(&format!("plus{i}"), "*").expect("user"))
        .enumerate()
        .find(|(_, k)| k.secret.contains('+') && k.secret.contains('/'))
        .map(|(i, k)| (format!("plus{i}"), k))
        .expect("a secret with + and / among 40 keys");
    s.set_db_user(&user_arn(&keys.0), vec![Role::ReadWrite("test".into())]);
    let k = keys.1;
    expect(
        || cli(&s).keys(&k),
        &["list-collections", "--uri", &s.uri()],
        "",
        "",
        0,
        "collections in test",
        &secrets(&k),
    );
}

// ---------------------------------------------------------------- credentials and STS

#[test]
fn wrong_secret() {
    let s = plain();
    let mut k = client(&s);
    k.secret = atlas_iam_testkit::moto::mangle(&k.secret);
    expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri()],
        "identity",
        "signature_mismatch",
        4,
        "secret key is wrong",
        &secrets(&k),
    );
}

#[test]
fn temporary_key_without_its_token() {
    let s = plain();
    let session = s
        .assume(&client(&s), &role(&s), "no-token")
        .expect("assume");
    expect(
        || {
            cli(&s)
                .env("AWS_ACCESS_KEY_ID", &session.id)
                .env("AWS_SECRET_ACCESS_KEY", &session.secret)
        },
        &["ping", "--uri", &s.uri()],
        "identity",
        "missing_session_token",
        4,
        "without its session token",
        &[&session.id, &session.secret],
    );
}

#[test]
fn unknown_key() {
    let s = plain();
    let k = Keys {
        id: "AKIAUNKNOWNUNKNOWN00".into(),
        secret: client(&s).secret,
    };
    expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri()],
        "identity",
        "invalid_key",
        4,
        "does not know the access key",
        &secrets(&k),
    );
}

#[test]
fn inactive_key() {
    let s = plain();
    let k = client(&s);
    s.gate.as_ref().expect("gate").deactivate_key(&k.id);
    expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri()],
        "identity",
        "invalid_key",
        4,
        "deactivated",
        &secrets(&k),
    );
}

#[test]
fn expired_token() {
    let s = plain();
    let session = s
        .assume(&client(&s), &role(&s), "expiring")
        .expect("assume");
    s.gate.as_ref().expect("gate").expire_token(&session.token);
    expect(
        || session_env(cli(&s), &session),
        &["ping", "--uri", &s.uri()],
        "identity",
        "expired_token",
        4,
        "has expired",
        &[&session.id, &session.secret, &session.token],
    );
}

#[test]
fn assume_role_not_trusted() {
    let s = plain();
    let m = s.create_iam_user("mallory", "*").expect("user");
    expect(
        || cli(&s).keys(&m),
        &["ping", "--uri", &s.uri(), "--role-arn", &role(&s)],
        "assume",
        "assume_role_denied",
        4,
        "does not name arn:aws:iam::123456789012:user/mallory",
        &secrets(&m),
    );
}

#[test]
fn no_credentials_at_all() {
    let s = plain();
    expect(
        || cli(&s),
        &["ping", "--uri", &s.uri()],
        "credentials",
        "no_credentials",
        3,
        "no AWS credentials found",
        &[],
    );
}

#[test]
fn unknown_profile() {
    let s = plain();
    expect(
        || cli(&s).env("AWS_PROFILE", "nope"),
        &["ping", "--uri", &s.uri()],
        "credentials",
        "unknown_profile",
        3,
        "profile `nope`",
        &[],
    );
}

// ---------------------------------------------------------------- authentication

#[test]
fn arn_that_is_no_database_user() {
    let s = plain();
    let k = client(&s);
    expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri()],
        "auth",
        "atlas_user_missing",
        6,
        "Atlas looked up arn:aws:iam::123456789012:user/atlas-client and has no database user",
        &secrets(&k),
    );
}

#[test]
fn session_arn_registered_instead_of_the_role() {
    let s = plain();
    let k = client(&s);
    s.remove_db_user(&role(&s));
    let session_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/atlas-app/fixed");
    s.set_db_user(&session_arn, vec![Role::ReadWrite("test".into())]);
    expect(
        || cli(&s).keys(&k),
        &[
            "ping",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role(&s),
            "--role-session-name",
            "fixed",
        ],
        "auth",
        "atlas_user_missing",
        6,
        "register the role ARN arn:aws:iam::123456789012:role/atlas-app instead",
        &secrets(&k),
    );
}

fn faketime_available() {
    let ok = std::process::Command::new("faketime")
        .arg("-f")
        .arg("+0")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "faketime is needed for the clock skew scenarios: `apt-get install faketime` (bash .ci/setup does it)");
}

#[test]
fn clock_skew() {
    faketime_available();
    let s = plain();
    let k = client(&s);
    let out = expect(
        || cli_via(&s, &["faketime", "-f", "-20m"]).keys(&k),
        &["ping", "--uri", &s.uri(), "--role-arn", &role(&s)],
        "auth",
        "clock_skew",
        6,
        "minutes behind STS",
        &secrets(&k),
    );
    let identity = &out.json()["stages"][3];
    assert_eq!(
        identity["status"], "warning",
        "the identity stage warns of the offset: {identity}"
    );
}

#[test]
fn shared_tier_403() {
    faketime_available();
    let s = stack(StackOptions {
        mode: Mode::Proxy,
        ..Default::default()
    });
    let k = client(&s);
    expect(
        || cli_via(&s, &["faketime", "-f", "-20m"]).keys(&k),
        &["ping", "--uri", &s.uri(), "--role-arn", &role(&s)],
        "auth",
        "clock_skew",
        6,
        "bad auth : aws sts call has response 403",
        &secrets(&k),
    );
}

#[test]
fn shared_tier_user_not_found() {
    let s = stack(StackOptions {
        mode: Mode::Proxy,
        ..Default::default()
    });
    let k = client(&s);
    expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri()],
        "auth",
        "atlas_user_missing",
        6,
        "bad auth : user arn:aws:iam::123456789012:user/atlas-client is not found",
        &secrets(&k),
    );
}

#[test]
fn bad_server_nonce() {
    let s = stack(StackOptions {
        fault: Some(Fault::BadNonce),
        ..Default::default()
    });
    let k = client(&s);
    expect(
        || cli(&s).keys(&k),
        &["ping", "--uri", &s.uri(), "--role-arn", &role(&s)],
        "auth",
        "server_nonce_mismatch",
        6,
        "not a genuine Atlas server",
        &secrets(&k),
    );
}

// ---------------------------------------------------------------- authorization

#[test]
fn read_only_user_running_roundtrip() {
    let s = plain();
    let r = s.create_iam_user("reader", "*").expect("user");
    s.set_db_user(&user_arn("reader"), vec![Role::Read("test".into())]);
    expect(
        || cli(&s).keys(&r),
        &["roundtrip", "--uri", &s.uri()],
        "command",
        "not_authorized",
        7,
        "readWrite@test",
        &secrets(&r),
    );
}

#[test]
fn user_without_roles_listing_collections() {
    let s = stack(StackOptions {
        mode: Mode::Proxy,
        ..Default::default()
    });
    let n = s.create_iam_user("norole", "*").expect("user");
    s.set_db_user(&user_arn("norole"), vec![]);
    expect(
        || cli(&s).keys(&n),
        &["list-collections", "--uri", &s.uri()],
        "command",
        "not_authorized",
        7,
        "read@test",
        &secrets(&n),
    );
}

// ---------------------------------------------------------------- network

fn with_fault(fault: Fault, tls: bool) -> Stack {
    let s = stack(StackOptions {
        fault: Some(fault),
        tls,
        ..Default::default()
    });
    s.set_db_user(
        &user_arn("atlas-client"),
        vec![Role::ReadWrite("test".into())],
    );
    s
}

fn keyed(s: &Stack) -> impl Fn() -> Cli + '_ {
    move || {
        let k = client(s);
        cli(s).keys(&k)
    }
}

#[test]
fn server_refusing() {
    let s = with_fault(Fault::Refuse, false);
    expect(
        keyed(&s),
        &["ping", "--uri", &s.uri()],
        "tcp",
        "tcp_refused",
        5,
        "refused the connection",
        &secrets(&client(&s)),
    );
}

/// One run, timed: never past --timeout plus one second.
fn within_timeout_plus_one(c: Cli, args: &[&str], timeout: u64) -> Output {
    let started = Instant::now();
    let out = c
        .args(args)
        .args(["--timeout", &timeout.to_string(), "--format", "json"])
        .run();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(timeout + 1),
        "took {took:?} with --timeout {timeout}"
    );
    out
}

#[test]
fn server_silent_is_bounded_by_timeout() {
    let s = with_fault(Fault::Silent, false);
    expect(
        keyed(&s),
        &["ping", "--uri", &s.uri()],
        "tls",
        "server_silent",
        5,
        "did not answer a hello",
        &secrets(&client(&s)),
    );
    let out = within_timeout_plus_one(keyed(&s)(), &["ping", "--uri", &s.uri()], 3);
    assert_eq!(out.code, 5, "{}", out.all());
}

#[test]
fn silent_dns_is_bounded_by_timeout() {
    let s = dns_stack(Some(DnsFault::Silent));
    let srv = s.srv_uri().expect("srv uri");
    expect(
        keyed(&s),
        &[
            "ping",
            "--uri",
            &srv,
            "--dns-server",
            &dns_server(&s),
            "--timeout",
            "4",
        ],
        "dns",
        "dns_timeout",
        5,
        "did not answer",
        &secrets(&client(&s)),
    );
    let out = within_timeout_plus_one(
        keyed(&s)(),
        &["ping", "--uri", &srv, "--dns-server", &dns_server(&s)],
        3,
    );
    assert_eq!(out.code, 5, "{}", out.all());
}

#[test]
fn silent_sts_is_bounded_by_timeout() {
    let s = plain();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent = format!("http://{}", listener.local_addr().expect("addr"));
    let k = client(&s);
    let c = cli(&s).keys(&k).env("AWS_ENDPOINT_URL_STS", &silent);
    let out = within_timeout_plus_one(c, &["ping", "--uri", &s.uri(), "--role-arn", &role(&s)], 3);
    assert_eq!(out.code, 4, "{}", out.all());
    assert_eq!(
        common::failure(&out.json()),
        ("assume".to_string(), "sts_timeout".to_string())
    );
    drop(listener);
}

#[test]
fn garbage_reply() {
    let s = with_fault(Fault::Garbage, false);
    expect(
        keyed(&s),
        &["ping", "--uri", &s.uri()],
        "tls",
        "bad_reply",
        5,
        "not a MongoDB reply",
        &secrets(&client(&s)),
    );
}

#[test]
fn untrusted_ca() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    let other = atlas_iam_testkit::pki::Pki::generate(&[]).expect("pki");
    let uri = format!(
        "mongodb://{}/?authSource=%24external&authMechanism=MONGODB-AWS&tls=true",
        s.atlas.addr
    );
    let ca = other.ca_file.display().to_string();
    expect(
        keyed(&s),
        &["ping", "--uri", &uri, "--tls-ca-file", &ca],
        "tls",
        "tls_untrusted",
        5,
        "signed by a CA this machine does not trust",
        &secrets(&client(&s)),
    );
}

#[test]
fn plaintext_to_a_tls_only_port() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    let uri = format!(
        "mongodb://{}/?authSource=%24external&authMechanism=MONGODB-AWS",
        s.atlas.addr
    );
    expect(
        keyed(&s),
        &["ping", "--uri", &uri],
        "tls",
        "plaintext_to_tls_port",
        5,
        "speaks only TLS",
        &secrets(&client(&s)),
    );
}

#[test]
fn ip_not_on_the_access_list() {
    let s = with_fault(Fault::TlsAlert, true);
    expect(
        keyed(&s),
        &["ping", "--uri", &s.uri()],
        "tls",
        "ip_not_allowed",
        5,
        "IP access list",
        &secrets(&client(&s)),
    );
}

// ---------------------------------------------------------------- DNS

fn dns_stack(fault: Option<DnsFault>) -> Stack {
    stack(StackOptions {
        dns: true,
        tls: true,
        dns_fault: fault,
        ..Default::default()
    })
}

fn dns_server(s: &Stack) -> String {
    s.dns.as_ref().expect("dns").addr.to_string()
}

#[test]
fn ok_through_mongodb_srv_with_dns_server() {
    let s = dns_stack(None);
    // The driver resolves member names with the system resolver: a private mount namespace maps
    // them to 127.0.0.1 for the process under test only (this machine's /etc/hosts is untouched).
    let dir = tempfile::tempdir().expect("temp dir");
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.1 node0.ab12c.example.test\n",
    )
    .expect("hosts");
    let hosts = hosts.display().to_string();
    let unshare = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind \"$0\" /etc/hosts", &hosts])
        .status();
    assert!(unshare.is_ok_and(|s| s.success()),
        "this scenario needs `unshare -m` and mount as root (util-linux), to map member names in a private mount namespace");
    let cli_for = || {
        let script = "mount --bind \"$0\" /etc/hosts && exec \"$@\"";
        let k = client(&s);
        cli_via(&s, &["unshare", "-m", "sh", "-c", script, &hosts]).keys(&k)
    };
    let ca = s.pki.as_ref().expect("pki").ca_file.display().to_string();
    let srv = s.srv_uri().expect("srv uri");
    let out = expect(
        cli_for,
        &[
            "ping",
            "--uri",
            &srv,
            "--dns-server",
            &dns_server(&s),
            "--tls-ca-file",
            &ca,
            "--role-arn",
            &role(&s),
        ],
        "",
        "",
        0,
        "ping ok",
        &secrets(&client(&s)),
    );
    let dns = &out.json()["stages"][4];
    assert!(
        dns["detail"]
            .as_str()
            .is_some_and(|d| d.contains("node0.ab12c.example.test:")),
        "{dns}"
    );
    assert!(
        dns["detail"]
            .as_str()
            .is_some_and(|d| d.contains("replicaSet=atlas-ab12c-shard-0")),
        "{dns}"
    );
}

#[test]
fn srv_nxdomain() {
    let s = dns_stack(None);
    let wrong = "mongodb+srv://cluster9.ab12c.example.test/?authSource=%24external&authMechanism=MONGODB-AWS";
    expect(
        keyed(&s),
        &["ping", "--uri", wrong, "--dns-server", &dns_server(&s)],
        "dns",
        "dns_name_not_found",
        5,
        "check the cluster name",
        &secrets(&client(&s)),
    );
}

#[test]
fn srv_target_outside_the_domain_is_never_connected() {
    let s = dns_stack(Some(DnsFault::Outside));
    let srv = s.srv_uri().expect("srv uri");
    let out = expect(
        keyed(&s),
        &["ping", "--uri", &srv, "--dns-server", &dns_server(&s)],
        "dns",
        "dns_target_outside_domain",
        5,
        "outside the cluster's domain",
        &secrets(&client(&s)),
    );
    assert_eq!(
        out.json()["stages"][5]["status"],
        "skipped",
        "tcp must not run"
    );
}

#[test]
fn dns_resolver_that_fails() {
    let s = dns_stack(Some(DnsFault::ServFail));
    let srv = s.srv_uri().expect("srv uri");
    expect(
        keyed(&s),
        &["ping", "--uri", &srv, "--dns-server", &dns_server(&s)],
        "dns",
        "dns_resolver_failed",
        5,
        "--dns-server",
        &secrets(&client(&s)),
    );
}

#[test]
fn repeat_needs_time_within_the_timeout() {
    let s = plain();
    let out = atlas_iam()
        .args([
            "ping",
            "--uri",
            &s.uri(),
            "--count",
            "10",
            "--interval",
            "5",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stdout.contains("raise --timeout"), "{}", out.stdout);
}
