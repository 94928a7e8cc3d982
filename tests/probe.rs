//! The fault matrix: ping, list-collections and roundtrip run as the built binary against the
//! local Atlas, moto behind the STS gate, and the local DNS. Each scenario asserts, from the
//! JSON report, the failing stage, the diagnosis kind and the exit code, and that the human
//! output names the cause.

use std::time::{Duration, Instant};

use crate::common::{atlas_iam, atlas_iam_via, Cli, Output, Stage, Test};
use atlas_iam_testkit::dns::DnsFault;
use atlas_iam_testkit::moto::{user_arn, Keys, ACCOUNT};
use atlas_iam_testkit::stack::SessionKeys;
use atlas_iam_testkit::{Event, Fault, Mode, Role, Stack, StackOptions};

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

fn secrets(k: &Keys) -> Vec<&str> {
    vec![k.id.as_str(), k.secret.as_str()]
}

// ---------------------------------------------------------------- working paths

#[test]
fn ok_with_an_assumed_role() {
    let s = plain();
    let k = client(&s);
    let out = Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &role(&s)])
        .passes()
        .says("ping ok")
        .hides(&secrets(&k))
        .run();
    let names: Vec<String> = out.statuses().into_iter().map(|(n, _)| n).collect();
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
    let out = Test::new(|| cli(&s).keys(&k))
        .args(["roundtrip", "--uri", &s.uri(), "--count", "3"])
        .passes()
        .says("inserted, read back and deleted")
        .hides(&secrets(&k))
        .run();
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
    // the address families resolved, and the addresses tried up to the one connected
    let host = &out.stage(Stage::Tcp)["facts"]["hosts"][0];
    assert_eq!(host["families"], serde_json::json!(["ipv4"]), "{host}");
    assert_eq!(host["tried"][0], host["address"], "{host}");
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
    Test::new(|| cli(&s).keys(&k))
        .args(["list-collections", "--uri", &s.uri()])
        .passes()
        .says("collections in test")
        .hides(&secrets(&k))
        .run();
}

// ---------------------------------------------------------------- credentials and STS

#[test]
fn wrong_secret() {
    let s = plain();
    let original = client(&s);
    let mut k = original.clone();
    k.secret = atlas_iam_testkit::moto::mangle(&k.secret);
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Identity, "signature_mismatch")
        .exit(4)
        .says("secret key is wrong or was mangled")
        .hides(&secrets(&k))
        .hides(&[&original.secret])
        .run();
}

#[test]
fn temporary_key_without_its_token() {
    let s = plain();
    let session = s
        .assume(&client(&s), &role(&s), "no-token")
        .expect("assume");
    Test::new(|| {
        cli(&s)
            .env("AWS_ACCESS_KEY_ID", &session.id)
            .env("AWS_SECRET_ACCESS_KEY", &session.secret)
    })
    .args(["ping", "--uri", &s.uri()])
    .fails_at(Stage::Identity, "missing_session_token")
    .exit(4)
    .says("without its session token")
    .hides(&[&session.id, &session.secret])
    .run();
}

#[test]
fn unknown_key() {
    let s = plain();
    let k = Keys {
        id: "AKIAUNKNOWNUNKNOWN00".into(),
        secret: client(&s).secret,
    };
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Identity, "invalid_key")
        .exit(4)
        .says("does not know the access key")
        .says("AKIA…WN00")
        .hides(&secrets(&k))
        .run();
}

#[test]
fn inactive_key() {
    let s = plain();
    let k = client(&s);
    s.gate.as_ref().expect("gate").deactivate_key(&k.id);
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Identity, "invalid_key")
        .exit(4)
        .says("deactivated")
        .hides(&secrets(&k))
        .run();
}

#[test]
fn expired_token() {
    let s = plain();
    let session = s
        .assume(&client(&s), &role(&s), "expiring")
        .expect("assume");
    s.gate.as_ref().expect("gate").expire_token(&session.token);
    Test::new(|| session_env(cli(&s), &session))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Identity, "expired_token")
        .exit(4)
        .says("has expired")
        .hides(&[&session.id, &session.secret, &session.token])
        .run();
}

#[test]
fn assume_role_not_trusted() {
    let s = plain();
    let m = s.create_iam_user("mallory", "*").expect("user");
    Test::new(|| cli(&s).keys(&m))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &role(&s)])
        .fails_at(Stage::Assume, "assume_role_denied")
        .exit(4)
        .says("does not name arn:aws:iam::123456789012:user/mallory")
        .hides(&secrets(&m))
        .run();
}

#[test]
fn no_credentials_at_all() {
    let s = plain();
    Test::new(|| cli(&s))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Credentials, "no_credentials")
        .exit(3)
        .says("no AWS credentials found")
        .says("environment")
        .says("profile default")
        .says("web identity")
        .says("container")
        .says("instance metadata")
        .run();
}

#[test]
fn unknown_profile() {
    let s = plain();
    let with_profiles = || {
        let c = cli(&s);
        let config = c.path("aws-config");
        c.write(
            "aws-config",
            "[profile dev]\nregion = eu-west-1\n[profile prod]\nregion = us-east-1\n",
        )
        .env("AWS_CONFIG_FILE", &config)
    };
    // through AWS_PROFILE (the default chain's order) and through --profile (that profile alone)
    Test::new(|| with_profiles().env("AWS_PROFILE", "nope"))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Credentials, "unknown_profile")
        .exit(3)
        .says("profile `nope`")
        .says("dev, prod")
        .run();
    Test::new(with_profiles)
        .args(["whoami", "--profile", "staging"])
        .fails_at(Stage::Credentials, "unknown_profile")
        .exit(3)
        .says("profile `staging`")
        .says("dev, prod")
        .run();
}

// ---------------------------------------------------------------- authentication

#[test]
fn arn_that_is_no_database_user() {
    let s = plain();
    let k = client(&s);
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says(
            "Atlas looked up arn:aws:iam::123456789012:user/atlas-client and has no database user",
        )
        .hides(&secrets(&k))
        .run();
}

#[test]
fn session_arn_registered_instead_of_the_role() {
    let s = plain();
    let k = client(&s);
    s.remove_db_user(&role(&s));
    let session_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/atlas-app/fixed");
    s.set_db_user(&session_arn, vec![Role::ReadWrite("test".into())]);
    Test::new(|| cli(&s).keys(&k))
        .args([
            "ping",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role(&s),
            "--role-session-name",
            "fixed",
        ])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says("register the role ARN arn:aws:iam::123456789012:role/atlas-app instead")
        .hides(&secrets(&k))
        .run();
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
    let out = Test::new(|| cli_via(&s, &["faketime", "-f", "-20m"]).keys(&k))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &role(&s)])
        .fails_at(Stage::Auth, "clock_skew")
        .exit(6)
        .says("minutes behind STS")
        .hides(&secrets(&k))
        .run();
    let identity = &out.stage(Stage::Identity);
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
    Test::new(|| cli_via(&s, &["faketime", "-f", "-20m"]).keys(&k))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &role(&s)])
        .fails_at(Stage::Auth, "clock_skew")
        .exit(6)
        .says("bad auth : aws sts call has response 403")
        .hides(&secrets(&k))
        .run();
}

#[test]
fn shared_tier_user_not_found() {
    let s = stack(StackOptions {
        mode: Mode::Proxy,
        ..Default::default()
    });
    let k = client(&s);
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says("bad auth : user arn:aws:iam::123456789012:user/atlas-client is not found")
        .hides(&secrets(&k))
        .run();
}

#[test]
fn bad_server_nonce() {
    let s = stack(StackOptions {
        fault: Some(Fault::BadNonce),
        ..Default::default()
    });
    let k = client(&s);
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &role(&s)])
        .fails_at(Stage::Auth, "server_nonce_mismatch")
        .exit(6)
        .says("not a genuine Atlas server")
        .hides(&secrets(&k))
        .run();
}

// ---------------------------------------------------------------- authorization

#[test]
fn read_only_user_running_roundtrip() {
    let s = plain();
    let r = s.create_iam_user("reader", "*").expect("user");
    s.set_db_user(&user_arn("reader"), vec![Role::Read("test".into())]);
    Test::new(|| cli(&s).keys(&r))
        .args(["roundtrip", "--uri", &s.uri()])
        .fails_at(Stage::Command, "not_authorized")
        .exit(7)
        .says("readWrite@test")
        .hides(&secrets(&r))
        .run();
}

#[test]
fn user_without_roles_listing_collections() {
    let s = stack(StackOptions {
        mode: Mode::Proxy,
        ..Default::default()
    });
    let n = s.create_iam_user("norole", "*").expect("user");
    s.set_db_user(&user_arn("norole"), vec![]);
    Test::new(|| cli(&s).keys(&n))
        .args(["list-collections", "--uri", &s.uri()])
        .fails_at(Stage::Command, "not_authorized")
        .exit(7)
        .says("read@test")
        .hides(&secrets(&n))
        .run();
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
    Test::new(keyed(&s))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Tcp, "tcp_refused")
        .exit(5)
        .says("refused the connection")
        .hides(&secrets(&client(&s)))
        .run();
}

/// When every host fails, the first host's diagnosis says what the others gave.
#[test]
fn every_host_refusing_is_said() {
    let s = with_fault(Fault::Refuse, false);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let uri = s.uri().replacen("/?", &format!(",127.0.0.1:{closed}/?"), 1);
    Test::new(keyed(&s))
        .args(["ping", "--uri", &uri])
        .fails_at(Stage::Tcp, "tcp_refused")
        .exit(5)
        .says("the other 1 host failed too (tcp_refused)")
        .run();
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
    // an explicit bound: the driver's default would wait 10 s, twice (JSON and text)
    Test::new(keyed(&s))
        .args(["ping", "--uri", &s.uri(), "--timeout", "4"])
        .fails_at(Stage::Tls, "server_silent")
        .exit(5)
        .says("did not answer a hello")
        .hides(&secrets(&client(&s)))
        .run();
    let out = within_timeout_plus_one(keyed(&s)(), &["ping", "--uri", &s.uri()], 3);
    assert_eq!(out.code, 5, "{}", out.all());
}

#[test]
fn silent_dns_is_bounded_by_timeout() {
    let s = dns_stack(Some(DnsFault::Silent));
    let srv = s.srv_uri().expect("srv uri");
    Test::new(keyed(&s))
        .args([
            "ping",
            "--uri",
            &srv,
            "--dns-server",
            &dns_server(&s),
            "--timeout",
            "4",
        ])
        .fails_at(Stage::Dns, "dns_timeout")
        .exit(5)
        .says("did not answer")
        .hides(&secrets(&client(&s)))
        .run();
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
        crate::common::failure(&out.json()),
        ("assume".to_string(), "sts_timeout".to_string())
    );
    // without a role, GetCallerIdentity at the identity stage
    let c = cli(&s).keys(&k).env("AWS_ENDPOINT_URL_STS", &silent);
    let out = within_timeout_plus_one(c, &["whoami"], 2);
    assert_eq!(out.code, 4, "{}", out.all());
    assert_eq!(
        crate::common::failure(&out.json()),
        ("identity".to_string(), "sts_timeout".to_string())
    );
    drop(listener);
}

#[test]
fn garbage_reply() {
    let s = with_fault(Fault::Garbage, false);
    Test::new(keyed(&s))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Tls, "bad_reply")
        .exit(5)
        .says("not a MongoDB reply")
        .hides(&secrets(&client(&s)))
        .run();
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
    Test::new(keyed(&s))
        .args(["ping", "--uri", &uri, "--tls-ca-file", &ca])
        .fails_at(Stage::Tls, "tls_untrusted")
        .exit(5)
        .says("signed by a CA this machine does not trust")
        .hides(&secrets(&client(&s)))
        .run();
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
    Test::new(keyed(&s))
        .args(["ping", "--uri", &uri])
        .fails_at(Stage::Tls, "plaintext_to_tls_port")
        .exit(5)
        .says("speaks only TLS")
        .hides(&secrets(&client(&s)))
        .run();
}

#[test]
fn ip_not_on_the_access_list() {
    let s = with_fault(Fault::TlsAlert, true);
    Test::new(keyed(&s))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Tls, "ip_not_allowed")
        .exit(5)
        .says("IP access list")
        .hides(&secrets(&client(&s)))
        .run();
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
    let out = Test::new(cli_for)
        .args([
            "ping",
            "--uri",
            &srv,
            "--dns-server",
            &dns_server(&s),
            "--tls-ca-file",
            &ca,
            "--role-arn",
            &role(&s),
        ])
        .passes()
        .says("ping ok")
        .hides(&secrets(&client(&s)))
        .run();
    let dns = &out.stage(Stage::Dns);
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
    let facts = &dns["facts"];
    assert_eq!(
        facts["srv_name"], "_mongodb._tcp.cluster0.ab12c.example.test",
        "{facts}"
    );
    assert!(
        facts["txt_options"]
            .as_array()
            .is_some_and(|o| o.contains(&"replicaSet=atlas-ab12c-shard-0".into())),
        "{facts}"
    );
    assert!(
        facts["hosts"][0]["host"]
            .as_str()
            .is_some_and(|h| h.starts_with("node0.ab12c.example.test:")),
        "{facts}"
    );
    let tls = &out.stage(Stage::Tls)["facts"]["hosts"][0];
    assert!(
        tls["certificate"]["dns_names"]
            .as_array()
            .is_some_and(|n| n.contains(&"node0.ab12c.example.test".into())),
        "{tls}"
    );
}

#[test]
fn srv_nxdomain() {
    let s = dns_stack(None);
    let wrong = "mongodb+srv://cluster9.ab12c.example.test/?authSource=%24external&authMechanism=MONGODB-AWS";
    Test::new(keyed(&s))
        .args(["ping", "--uri", wrong, "--dns-server", &dns_server(&s)])
        .fails_at(Stage::Dns, "dns_name_not_found")
        .exit(5)
        .says("check the cluster name")
        .hides(&secrets(&client(&s)))
        .run();
}

#[test]
fn srv_target_outside_the_domain_is_never_connected() {
    let s = dns_stack(Some(DnsFault::Outside));
    let srv = s.srv_uri().expect("srv uri");
    let out = Test::new(keyed(&s))
        .args(["ping", "--uri", &srv, "--dns-server", &dns_server(&s)])
        .fails_at(Stage::Dns, "dns_target_outside_domain")
        .exit(5)
        .says("outside the cluster's domain")
        .hides(&secrets(&client(&s)))
        .run();
    assert_eq!(
        out.stage(Stage::Tcp)["status"],
        "skipped",
        "tcp must not run"
    );
}

#[test]
fn dns_resolver_that_fails() {
    let s = dns_stack(Some(DnsFault::ServFail));
    let srv = s.srv_uri().expect("srv uri");
    Test::new(keyed(&s))
        .args(["ping", "--uri", &srv, "--dns-server", &dns_server(&s)])
        .fails_at(Stage::Dns, "dns_resolver_failed")
        .exit(5)
        .says("--dns-server")
        .hides(&secrets(&client(&s)))
        .run();
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

// ---------------------------------------------------------------- verdicts that never cry wolf

#[test]
fn sts_unreachable_from_here_with_static_keys_is_a_warning_and_atlas_decides() {
    let s = plain();
    let k = client(&s);
    s.set_db_user(
        &user_arn("atlas-client"),
        vec![Role::ReadWrite("test".into())],
    );
    // nothing listens there: this machine has no route to STS; Atlas (the local one) has
    let out = Test::new(|| {
        cli(&s)
            .keys(&k)
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    })
    .args(["ping", "--uri", &s.uri()])
    .passes()
    .says("STS not reached from here")
    .hides(&secrets(&k))
    .run();
    let identity = out.stage(Stage::Identity);
    assert_eq!(identity["status"], "warning", "{identity}");
    assert!(
        identity["warnings"].to_string().contains("sts_unreachable"),
        "{identity}"
    );
    // whoami's answer is STS itself: there it fails
    Test::new(|| {
        cli(&s)
            .keys(&k)
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    })
    .args(["whoami"])
    .fails_at(Stage::Identity, "sts_unreachable")
    .exit(4)
    .says("cannot reach STS")
    .run();
    // and when Atlas refuses, the diagnosis says the identity could not be checked
    s.remove_db_user(&user_arn("atlas-client"));
    Test::new(|| {
        cli(&s)
            .keys(&k)
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    })
    .args(["ping", "--uri", &s.uri()])
    .fails_at(Stage::Auth, "authentication_failed")
    .exit(6)
    .says("STS could not be reached from here")
    .run();
}

#[test]
fn a_slow_but_working_cluster_passes_with_warnings() {
    let s = with_fault(Fault::Slow(1200), false);
    let out = Test::new(keyed(&s))
        .args(["ping", "--uri", &s.uri(), "--timeout", "25"])
        .passes()
        .says("slow:")
        .hides(&secrets(&client(&s)))
        .run();
    let slow: Vec<String> = out
        .statuses()
        .into_iter()
        .filter(|(_, st)| st == "warning")
        .map(|(name, _)| name)
        .collect();
    assert!(slow.contains(&"auth".to_string()), "{slow:?}");
}

#[test]
fn a_server_without_mongodb_aws_is_named() {
    let s = with_fault(Fault::NoAwsMechanism, false);
    Test::new(keyed(&s))
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Auth, "mechanism_unavailable")
        .exit(6)
        .says("Community server or older than 4.4")
        .hides(&secrets(&client(&s)))
        .run();
}

#[test]
fn a_certificate_for_another_host_or_an_expired_one_is_named() {
    use atlas_iam_testkit::pki::CertFault;
    for (fault, kind, says) in [
        (
            CertFault::OtherName,
            "tls_hostname",
            "not valid for the name 127.0.0.1",
        ),
        (CertFault::Expired, "tls_expired", "has expired"),
    ] {
        let s = stack(StackOptions {
            tls: true,
            cert_fault: fault,
            ..Default::default()
        });
        let ca = s.pki.as_ref().expect("pki").ca_file.display().to_string();
        Test::new(keyed(&s))
            .args(["ping", "--uri", &s.uri(), "--tls-ca-file", &ca])
            .fails_at(Stage::Tls, kind)
            .exit(5)
            .says(says)
            .hides(&secrets(&client(&s)))
            .run();
    }
}

#[test]
fn auth_source_admin_is_named_before_any_connection() {
    let s = plain();
    let uri = s
        .uri()
        .replace("authSource=%24external", "authSource=admin");
    Test::new(keyed(&s))
        .args(["ping", "--uri", &uri])
        .fails_at(Stage::Config, "uri_pitfall")
        .exit(3)
        .says("IAM database users live in $external")
        .hides(&secrets(&client(&s)))
        .run();
}

#[test]
fn a_role_registered_with_its_path_is_named() {
    let s = plain();
    let k = s.create_iam_user("pathy", "*").expect("user");
    let with_path = s
        .create_role_at("/svc/", "pathed", &[user_arn("pathy")])
        .expect("role");
    assert!(with_path.ends_with(":role/svc/pathed"), "{with_path}");
    s.set_db_user(&with_path, vec![Role::ReadWrite("test".into())]);
    Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &with_path])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says(&format!(
            "Atlas looks up arn:aws:iam::{ACCOUNT}:role/pathed, so register that ARN, not the one with the path"
        ))
        .hides(&secrets(&k))
        .run();

    // A session of that role, with no --role-arn to tell the path: iam:GetRole does, when the
    // role may call it; otherwise the hint can only say that paths are dropped.
    let session = s.assume(&k, &with_path, "in-a-lambda").expect("assume");
    let as_session = || {
        cli(&s)
            .env("AWS_ACCESS_KEY_ID", &session.id)
            .env("AWS_SECRET_ACCESS_KEY", &session.secret)
            .env("AWS_SESSION_TOKEN", &session.token)
    };
    Test::new(as_session)
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says("a role created with a path (role/PATH/NAME) is still looked up without it")
        .hides(&[&session.secret, &session.token])
        .run();
    s.allow_role("pathed", &["iam:GetRole"])
        .expect("role policy");
    Test::new(as_session)
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says(&format!(
            "the role {with_path} has a path, and STS session ARNs drop it: Atlas looks up \
             arn:aws:iam::{ACCOUNT}:role/pathed"
        ))
        .hides(&[&session.secret, &session.token])
        .run();
}

/// Speed by construction: no connection is opened only to be closed (the tls stage uses the tcp
/// stage's), and no command proves authentication beside the command itself. A ping opens the
/// driver's own two connections (monitor and pool) plus the one the checks share, and sends one
/// ping; the one buildInfo rides in the same flight as the checks' hello (no round trip of its
/// own). The figures themselves are `bench/run`'s.
#[test]
fn a_ping_opens_the_drivers_connections_plus_one_and_sends_no_extra_command() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    s.set_db_user(&user_arn("atlas-client"), vec![Role::Read("test".into())]);
    let (connections, _) = s.atlas.counters();
    assert_eq!(connections, 0);
    let out = keyed(&s)().args(["ping", "--uri", &s.uri()]).run();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("TLS 1.3 in") && !out.all().contains("TLSv1_3"),
        "TLS versions as people write them: {}",
        out.all()
    );
    let (connections, _) = s.atlas.counters();
    let commands = s.atlas.commands();
    assert!(connections <= 3, "{connections} connections: {commands:?}");
    assert_eq!(
        commands.iter().filter(|c| *c == "buildinfo").count(),
        1,
        "only the checks' buildInfo, beside their hello: {commands:?}"
    );
    assert_eq!(
        commands.iter().filter(|c| *c == "ping").count(),
        1,
        "{commands:?}"
    );
}

/// Each stage's facts as fields, beside its prose: what a CI job reads.
#[test]
fn stages_carry_their_facts_as_fields() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    let arn = user_arn("atlas-client");
    s.set_db_user(&arn, vec![Role::Read("test".into())]);
    let out = keyed(&s)()
        .args(["ping", "--uri", &s.uri(), "--format", "json"])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let r = out.json();
    let facts = |stage: Stage| out.stage(stage)["facts"].clone();
    let identity = facts(Stage::Identity);
    assert_eq!(identity["arn"], arn.as_str(), "{identity}");
    assert_eq!(identity["atlas_user_arn"], arn.as_str(), "{identity}");
    assert_eq!(identity["account"], ACCOUNT, "{identity}");
    assert!(identity["clock_offset_s"].is_i64(), "{identity}");
    let host = s.atlas.addr.to_string();
    assert_eq!(facts(Stage::Dns)["hosts"][0]["host"], host.as_str());
    let tcp = &facts(Stage::Tcp)["hosts"][0];
    assert_eq!(tcp["host"], host.as_str(), "{tcp}");
    assert!(
        tcp["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{tcp}"
    );
    assert!(
        tcp["connect_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{tcp}"
    );
    let tls = &facts(Stage::Tls)["hosts"][0];
    assert_eq!(tls["tls_version"], "1.3", "{tls}");
    assert!(
        tls["cipher_suite"]
            .as_str()
            .is_some_and(|c| c.starts_with("TLS13_")),
        "{tls}"
    );
    assert_eq!(tls["certificate"]["subject"], "CN=local-atlas", "{tls}");
    assert!(
        tls["certificate"]["issuer"]
            .as_str()
            .is_some_and(|i| i.contains("test CA")),
        "{tls}"
    );
    assert_eq!(
        tls["certificate"]["not_after"], "4096-01-01T00:00:00Z",
        "{tls}"
    );
    assert!(
        tls["certificate"]["dns_names"]
            .as_array()
            .is_some_and(|n| n.contains(&"localhost".into())),
        "{tls}"
    );
    assert_eq!(tls["wire_version"], 21, "{tls}");
    assert_eq!(tls["server_version"], "7.0.12", "{tls}");
    assert!(
        tls["handshake_ms"].is_f64() && tls["hello_ms"].is_f64(),
        "{tls}"
    );
    let auth = facts(Stage::Auth);
    assert_eq!(auth["mechanism"], "MONGODB-AWS", "{auth}");
    assert_eq!(auth["atlas_user_arn"], arn.as_str(), "{auth}");
    assert!(
        auth["ready_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{auth}"
    );
    let command = facts(Stage::Command);
    assert_eq!(command["database"], "test", "{command}");
    assert!(command["median_ms"].is_number(), "{command}");
    // a stage that found nothing to say has no facts; a failed one neither
    assert!(out.stage(Stage::Config).get("facts").is_none(), "{r}");
}

/// The role-path lookup (iam:GetRole) asked after Atlas found no user for an assumed role: an
/// IAM endpoint that never answers does not hold the run past --timeout (it took 3 s more).
#[test]
fn the_role_path_lookup_keeps_to_the_deadline() {
    let s = plain();
    let k = client(&s);
    let session = s.assume(&k, &role(&s), "lookup").expect("assume");
    s.remove_db_user(&role(&s));
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let iam = format!("http://{}", silent.local_addr().expect("addr"));
    let started = Instant::now();
    let out = session_env(cli(&s), &session)
        .env("AWS_ENDPOINT_URL_IAM", &iam)
        .args([
            "ping",
            "--uri",
            &s.uri(),
            "--timeout",
            "1",
            "--format",
            "json",
        ])
        .run();
    let took = started.elapsed();
    assert_eq!(
        crate::common::failure(&out.json()),
        ("auth".to_string(), "atlas_user_missing".to_string()),
        "{}",
        out.all()
    );
    assert!(took < Duration::from_millis(2200), "{took:?}");
    drop(silent);
}

/// At most one MONGODB-AWS authentication attempt per run, for every command and outcome: once
/// Atlas refused, nothing opens another connection (no existence check, insert, cleanup or drop).
#[test]
fn one_authentication_attempt_per_run() {
    let s = stack(StackOptions::default());
    let role = s.account.clone().expect("account").role_arn;
    let attempts = |s: &Stack| {
        s.atlas
            .commands()
            .iter()
            .filter(|c| c.as_str() == "saslstart")
            .count()
    };
    for refused in [false, true] {
        if refused {
            s.remove_db_user(&role);
        }
        for command in ["ping", "list-collections", "roundtrip", "ping --count 3"] {
            let before = attempts(&s);
            let timeline_before = s.atlas.timeline().len();
            let mut words = command.split(' ');
            let out = keyed(&s)()
                .args(words.next())
                .args(["--uri", &s.uri(), "--role-arn", &role, "--format", "json"])
                .args(words)
                .run();
            let expected = if refused { 6 } else { 0 };
            assert_eq!(out.code, expected, "{command}: {}", out.all());
            if refused && command == "roundtrip" {
                assert!(
                    out.stdout.contains("the cleanup has nothing to delete"),
                    "{}",
                    out.all()
                );
            }
            assert_eq!(
                attempts(&s) - before,
                1,
                "{command} (refused: {refused}) authenticated more than once: {:?}",
                s.atlas.commands()
            );
            // and no connection is opened after the verdict
            let timeline = s.atlas.timeline();
            let this_run = &timeline[timeline_before..];
            let verdict = this_run.iter().position(|e| *e == Event::AuthRefused);
            assert_eq!(verdict.is_some(), refused, "{command}: {this_run:?}");
            if let Some(at) = verdict {
                assert!(
                    !this_run[at..].contains(&Event::Connected),
                    "{command} connected again after the refusal: {this_run:?}"
                );
            }
        }
    }
}

/// An STS that throttles (HTTP 400 `Throttling`, `Rate exceeded`): atlas-iam's own call says so
/// at identity, and the shared tier's `aws sts call has response 400` at auth is named as
/// throttling too, each with the account-wide quota and what multiplies the calls.
#[test]
fn sts_throttling_is_named_with_its_quota() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            match listener.accept() {
                Ok((mut c, _)) => {
                    let _ = c.set_nonblocking(false);
                    let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                    let mut buf = [0u8; 16384];
                    let _ = c.read(&mut buf);
                    let body = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                        <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>\
                        </Error><RequestId>1</RequestId></ErrorResponse>";
                    let _ = write!(
                        c,
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    let endpoint = format!("http://{addr}");
    let s = stack(StackOptions {
        mode: Mode::Proxy,
        sts_endpoint: Some(endpoint.clone()),
        ..Default::default()
    });
    let keys = Keys {
        id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
    };
    let c = || {
        atlas_iam()
            .keys(&keys)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_STS", &endpoint)
    };
    Test::new(c)
        .args(["whoami"])
        .fails_at(Stage::Identity, "sts_throttled")
        .exit(4)
        .says("600 per second")
        .run();
    let out = Test::new(c)
        .args(["ping", "--uri", &s.uri()])
        .fails_at(Stage::Auth, "sts_throttled")
        .exit(6)
        .says("throttling")
        .run();
    let identity = out.stage(Stage::Identity);
    assert_eq!(identity["status"], "warning", "{identity}");
    drop(s);
    drop(server);
}

/// A resolver that answers SRV and never TXT is named as such, not as a silent resolver.
#[test]
fn a_resolver_silent_on_txt_only_is_named() {
    let s = dns_stack(Some(DnsFault::SilentTxt));
    let srv = s.srv_uri().expect("srv uri");
    Test::new(keyed(&s))
        .args([
            "ping",
            "--uri",
            &srv,
            "--dns-server",
            &dns_server(&s),
            "--timeout",
            "4",
        ])
        .fails_at(Stage::Dns, "dns_timeout")
        .exit(5)
        .says("answered the SRV query")
        .says("queryTxt ETIMEOUT")
        .run();
}

/// A resolver that answers address queries and refuses SRV (corporate, VPN) is named as such,
/// with the ways out.
#[test]
fn a_resolver_that_refuses_srv_only_is_named() {
    let s = dns_stack(Some(DnsFault::RefuseSrv));
    let srv = s.srv_uri().expect("srv uri");
    Test::new(keyed(&s))
        .args(["ping", "--uri", &srv, "--dns-server", &dns_server(&s)])
        .fails_at(Stage::Dns, "dns_srv_refused")
        .exit(5)
        .says("answers address (A) queries")
        .says("Refused")
        .says("standard (mongodb://) connection string")
        .run();
    // a resolver that fails everything stays a failed resolver
    let s = dns_stack(Some(DnsFault::ServFail));
    let srv = s.srv_uri().expect("srv uri");
    Test::new(keyed(&s))
        .args(["ping", "--uri", &srv, "--dns-server", &dns_server(&s)])
        .fails_at(Stage::Dns, "dns_resolver_failed")
        .exit(5)
        .run();
}

/// The CLI in network and mount namespaces of its own: loopback up, `routes` (ip commands) run,
/// and /etc/hosts replaced by `hosts`, for the process under test only. STS is not reachable
/// there, which the probe reports as a warning and goes on.
fn isolated(hosts: &str, routes: &str) -> (tempfile::TempDir, impl Fn() -> Cli) {
    let ip = std::process::Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "this scenario needs `ip` (Debian: apt-get install iproute2) and `unshare -n -m` as root"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("hosts");
    std::fs::write(&file, hosts).expect("hosts");
    let file = file.display().to_string();
    let routes = routes.to_string();
    let cli = move || {
        let script =
            format!("ip link set lo up && {routes} mount --bind \"$0\" /etc/hosts && exec \"$@\"");
        atlas_iam_via(&["unshare", "-n", "-m", "sh", "-c", &script, &file])
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env(
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
    };
    (dir, cli)
}

/// An IPv6-only network meeting a host with IPv4 addresses only is named as such, with the
/// families resolved and the addresses tried.
#[test]
fn an_ipv6_only_network_cannot_reach_ipv4_only_hosts() {
    let (_dir, cli) = isolated(
        "127.0.0.1 localhost\n52.1.2.3 node0.v4only.example.test\n",
        "ip -6 route add 2000::/3 dev lo &&",
    );
    let uri = "mongodb://node0.v4only.example.test:27017/?authSource=%24external&authMechanism=MONGODB-AWS";
    Test::new(cli)
        .args(["ping", "--uri", uri, "--timeout", "5"])
        .fails_at(Stage::Tcp, "tcp_unreachable")
        .exit(5)
        .says("an IPv6 route but none for IPv4")
        .says("52.1.2.3 (ipv4); tried 52.1.2.3:27017")
        .says("NAT64")
        .run();
}

/// A public Atlas host name that this machine resolves to a private address gets the finding
/// opposite to a private endpoint's name seen from outside.
#[test]
fn a_public_atlas_name_resolved_to_a_private_address_is_named() {
    let (_dir, cli) = isolated(
        "127.0.0.1 localhost\n10.255.255.1 cluster0-shard-00-00.ab12c.mongodb.net\n",
        "",
    );
    let uri = "mongodb://cluster0-shard-00-00.ab12c.mongodb.net:27017/?tls=true&authSource=%24external&authMechanism=MONGODB-AWS";
    Test::new(cli)
        .args(["ping", "--uri", uri, "--timeout", "5"])
        .fails_at(Stage::Tcp, "tcp_unreachable")
        .exit(5)
        .says("is a public Atlas host name")
        .says("private address 10.255.255.1")
        .says("/etc/hosts")
        .run();
}
