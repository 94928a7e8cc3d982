//! Connection strings through the built binary, as the specifications read them: strings every
//! driver accepts pass (what atlas-iam's own driver does not honour is left out of its
//! connection, with a warning that says what that does to the verdict); strings drivers must
//! refuse stop at config, exit 3, before any connection; no driver text reaches the user raw.

use crate::common::{atlas_iam, Cli, Stage, Test};
use atlas_iam_testkit::moto::Keys;
use atlas_iam_testkit::{Stack, StackOptions};

fn stack() -> Stack {
    Stack::start(StackOptions::default()).expect("local Atlas stack (moto from `bash .ci/setup`)")
}

fn client(s: &Stack) -> Keys {
    s.account.clone().expect("account").client
}

fn cli(s: &Stack) -> Cli {
    let mut c = atlas_iam();
    for (k, v) in s.env() {
        c = c.env(&k, v);
    }
    c
}

/// The driver's debug rendering of an error: never shown.
const DRIVER_TEXT: [&str; 3] = ["Kind:", "labels: {}", "server response"];

#[test]
fn options_every_driver_accepts_are_accepted() {
    for opts in [
        "compressors=zstd",
        "timeoutMS=5000",
        "zlibCompressionLevel=5&compressors=zlib",
        "tlsAllowInvalidHostnames=true",
        "tlsDisableOCSPEndpointCheck=true",
        "tlsDisableCertificateRevocationCheck=true",
        "serverSelectionTryOnce=false",
        "proxyHost=proxy.internal&proxyPort=1080",
        "tls=true&tlsCertificateKeyFile=c.pem&tlsCertificateKeyFilePassword=hunter2secret",
        "foo=bar&retryWrites=invalid&maxIdleTimeMS=&connectTimeoutMS=-2",
        "replicaSet=a&replicaSet=a",
    ] {
        let uri = format!(
            "mongodb+srv://cluster0.ab12c.mongodb.net/?authSource=%24external&authMechanism=MONGODB-AWS&{opts}"
        );
        let out = atlas_iam()
            .args(["uri", "--format", "json", "--uri", &uri])
            .run();
        assert_eq!(out.code, 0, "{opts}: {}", out.all());
        for text in DRIVER_TEXT {
            assert!(!out.all().contains(text), "{opts}: {}", out.all());
        }
        out.assert_absent(&["hunter2secret"]);
        let r = out.json();
        let options: Vec<&str> = r["uri"]["options"]
            .as_array()
            .expect("options")
            .iter()
            .filter_map(|o| o.as_str())
            .collect();
        let first = opts.split('&').next().unwrap_or_default();
        let name = first.split('=').next().unwrap_or_default();
        let warned = r["uri"]["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["code"].as_str().is_some_and(|c| c.starts_with("option_")));
        assert!(
            options.iter().any(|o| o.starts_with(name)) || warned,
            "{opts}: {options:?}"
        );
    }
}

#[test]
fn the_warnings_drivers_give_are_given() {
    let uri = "mongodb+srv://cluster0.ab12c.mongodb.net/?authSource=%24external&authMechanism=MONGODB-AWS\
               &foo=bar&retryWrites=invalid&maxIdleTimeMS=&replicaSet=a&replicaSet=b&wtimeout=5";
    let out = atlas_iam().args(["uri", "--uri", uri]).run();
    assert_eq!(out.code, 0, "{}", out.all());
    for text in [
        "option_unknown: `foo`",
        "option_invalid_value: `retryWrites=invalid` is not true or false",
        "option_invalid_value: `maxIdleTimeMS` is empty",
        "option_repeated: `replicaSet`",
        "option_deprecated: `wtimeout`",
        "replicaSet=b",
        "wTimeoutMS=5",
    ] {
        assert!(out.all().contains(text), "{text}: {}", out.all());
    }
    // the unknown option's value is not echoed: it may be a secret
    assert!(!out.all().contains("foo=bar"), "{}", out.all());
}

#[test]
fn strings_drivers_refuse_stop_at_config_before_any_connection() {
    let s = stack();
    let k = client(&s);
    let addr = s.atlas.addr.to_string();
    let base = "authSource=%24external&authMechanism=MONGODB-AWS";
    for (uri, says) in [
        (
            format!("mongodb://{addr},{addr}/?{base}&directConnection=true"),
            "`directConnection=true` with 2 hosts",
        ),
        (
            format!("mongodb://{addr},{addr}/?{base}&loadBalanced=true"),
            "`loadBalanced=true` with 2 hosts",
        ),
        (
            format!("mongodb://{addr}/?{base}&loadBalanced=true&directConnection=true"),
            "`loadBalanced=true` with `directConnection=true`",
        ),
        (
            format!("mongodb://{addr}/?{base}&loadBalanced=true&replicaSet=rs"),
            "`loadBalanced=true` with `replicaSet`",
        ),
        (
            format!("mongodb://{addr}/?{base}&srvMaxHosts=1"),
            "`srvMaxHosts` in a mongodb:// string",
        ),
        (
            format!("mongodb://{addr}/?{base}&srvServiceName=custom"),
            "`srvServiceName` in a mongodb:// string",
        ),
        (
            format!("mongodb://{addr}/?{base}&tlsInsecure=true&tlsAllowInvalidHostnames=true"),
            "`tlsInsecure` and `tlsAllowInvalidHostnames`",
        ),
        (
            format!("mongodb://{addr}/?{base}&proxyPort=1080"),
            "`proxyPort` without `proxyHost`",
        ),
        (
            format!("mongodb://al:ice:pw@{addr}/?{base}"),
            "unescaped `:`",
        ),
    ] {
        let before = s.atlas.counters().0;
        Test::new(|| cli(&s).keys(&k))
            .args(["ping", "--uri", &uri])
            .fails_at(Stage::Config, "invalid_uri")
            .exit(3)
            .says(says)
            .run();
        assert_eq!(s.atlas.counters().0, before, "{uri}: a connection was made");
    }
}

#[test]
fn what_atlas_iams_driver_does_not_honour_is_left_out_and_said() {
    let s = stack();
    let k = client(&s);
    let role = s.account.clone().expect("account").role_arn;
    let uri = format!(
        "{}&compressors=zstd&timeoutMS=20000&proxyHost=127.0.0.1&proxyPort=9&appName=mine",
        s.uri()
    );
    let out = Test::new(|| cli(&s).keys(&k))
        .args(["ping", "--uri", &uri, "--role-arn", &role])
        .passes()
        .says("ping ok")
        .run();
    let config = out.stage(Stage::Config);
    let warnings: Vec<&str> = config["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    let about = |name: &str| {
        warnings
            .iter()
            .find(|w| w.starts_with("option_not_honoured") && w.contains(name))
            .copied()
            .unwrap_or_else(|| panic!("no warning about {name}: {warnings:?}"))
    };
    assert!(about("compressors=zstd").contains("cannot change the verdict"));
    assert!(about("timeoutMS=20000").contains("cannot change the verdict"));
    let proxy = about("proxyHost=127.0.0.1");
    assert!(
        proxy.contains("can change the verdict") && proxy.contains("proxy"),
        "{proxy}"
    );
    // honoured options are handed on: nothing is said of appName
    assert!(
        !warnings.iter().any(|w| w.contains("appName")),
        "{warnings:?}"
    );
    for text in DRIVER_TEXT {
        assert!(!out.stdout.contains(text), "{}", out.stdout);
    }
}

#[test]
fn a_password_with_sub_delimiters_is_never_printed() {
    let s = stack();
    let k = client(&s);
    let addr = s.atlas.addr.to_string();
    let role = s.account.clone().expect("account").role_arn;
    for pw in ["pa=ss", "!$&'()*+,;=", "x=y,z;w"] {
        let uri = format!(
            "mongodb://alice:{pw}@{addr}/?authSource=%24external&authMechanism=MONGODB-AWS"
        );
        let out = Test::new(|| cli(&s).keys(&k))
            .args(["ping", "--uri", &uri, "--role-arn", &role])
            .passes()
            .hides(&[pw])
            .run();
        let dns = out.stage(Stage::Dns);
        assert_eq!(
            dns["facts"]["hosts"][0]["host"].as_str(),
            Some(addr.as_str()),
            "{dns}"
        );
    }
}

/// A seed whose hello names other hosts sends the driver there, with the proof: the tls stage
/// names every host it announced that no stage checked, unless the connection is direct.
#[test]
fn hosts_a_hello_announces_are_named_when_no_stage_checked_them() {
    let s = Stack::start(StackOptions {
        dns: true,
        tls: true,
        ..Default::default()
    })
    .expect("local Atlas stack");
    let k = client(&s);
    let direct = s.uri();
    assert!(direct.contains("&directConnection=true"), "{direct}");
    let discovering = direct.replace("&directConnection=true", "");
    let warnings_of = |uri: &str| {
        let out = cli(&s)
            .keys(&k)
            .args(["ping", "--format", "json", "--timeout", "5", "--uri", uri])
            .run();
        out.stage(Stage::Tls)["warnings"].to_string()
    };
    let w = warnings_of(&discovering);
    assert!(
        w.contains("names hosts no stage checked") && w.contains("node0.ab12c.example.test:"),
        "{w}"
    );
    let w = warnings_of(&direct);
    assert!(!w.contains("no stage checked"), "{w}");
}
