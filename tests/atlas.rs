//! `--atlas`: the Admin API cross-check, against the Admin API stand-in that reads the local
//! Atlas's own users (so both agree). Each diagnosis the facts allow, the API's own failures
//! (never stopping a probe), `whoami --atlas`, and the API credentials never shown.

use std::time::{Duration, Instant};

use crate::common::{atlas_iam, Cli, Output, Stage, Test};
use atlas_iam_testkit::admin::{AdminFault, CLIENT_ID, CLIENT_SECRET, PRIVATE_KEY, PROJECT_ID};
use atlas_iam_testkit::moto::{Keys, ACCOUNT};
use atlas_iam_testkit::{DbUser, Fault, IamType, Role, Stack, StackOptions};

fn stack(options: StackOptions) -> Stack {
    Stack::start(StackOptions {
        admin: true,
        ..options
    })
    .expect("local Atlas stack (moto from `bash .ci/setup`)")
}

fn client(s: &Stack) -> Keys {
    s.account.clone().expect("account").client
}

fn role(s: &Stack) -> String {
    s.account.clone().expect("account").role_arn
}

/// The binary with the stack's STS, the client's keys and the Admin API's variables.
fn cli(s: &Stack) -> Cli {
    let mut c = atlas_iam();
    for (k, v) in s.env() {
        c = c.env(&k, v);
    }
    for (k, v) in s.admin_env() {
        c = c.env(k, v);
    }
    c.keys(&client(s))
}

fn hidden(s: &Stack) -> Vec<String> {
    let k = client(s);
    vec![
        k.id.clone(),
        k.secret.clone(),
        PRIVATE_KEY.to_string(),
        CLIENT_SECRET.to_string(),
    ]
}

fn ping(s: &Stack, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["ping", "--atlas", "--uri", &s.uri(), "--role-arn", &role(s)]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn atlas_stage(out: &Output) -> serde_json::Value {
    out.stage(Stage::Atlas)
}

fn warnings(stage: &serde_json::Value) -> String {
    stage["warnings"].to_string()
}

const APP: &str = "atlas-app";

fn role_arn(path: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{path}{APP}")
}

#[test]
fn registered_right_passes_with_the_projects_facts() {
    let s = stack(StackOptions {
        tls: true,
        ..Default::default()
    });
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .passes()
        .says("atlas")
        .hides(&hidden(&s))
        .run();
    let atlas = atlas_stage(&out);
    assert_eq!(atlas["status"], "passed", "{atlas}");
    let facts = &atlas["facts"]["atlas"];
    assert_eq!(facts["project_id"], PROJECT_ID, "{facts}");
    assert_eq!(facts["matched_user"], role(&s).as_str(), "{facts}");
    assert_eq!(facts["database_users"][0]["iam_type"], "ROLE", "{facts}");
    assert_eq!(
        facts["database_users"][0]["roles"][0], "readWrite@test",
        "{facts}"
    );
    assert_eq!(facts["cluster"]["name"], "Cluster0", "{facts}");
    assert_eq!(facts["cluster"]["mongodb_version"], "7.0.12", "{facts}");
    assert_eq!(facts["cluster"]["provider"], "AWS", "{facts}");
    assert_eq!(facts["cluster"]["paused"], false, "{facts}");
    assert_eq!(
        facts["access_list"][0], "203.0.113.7/32 (office)",
        "{facts}"
    );
    // reported after identity, before the network stages
    let order: Vec<String> = out.statuses().into_iter().map(|(s, _)| s).collect();
    let at = |n: &str| order.iter().position(|s| s == n).expect(n);
    assert!(
        at("identity") < at("atlas") && at("atlas") < at("dns"),
        "{order:?}"
    );
}

#[test]
fn a_user_not_registered_is_named_with_what_is() {
    let s = stack(StackOptions::default());
    s.remove_db_user(&role(&s));
    let other = format!("arn:aws:iam::{ACCOUNT}:role/someone-else");
    s.set_db_user(&other, vec![Role::Read("test".into())]);
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says("the Admin API shows no database user")
        .says(&other)
        .says(&format!(
            "atlas dbusers create --username {} --awsIAMType ROLE",
            role(&s)
        ))
        .hides(&hidden(&s))
        .run();
    assert_eq!(atlas_stage(&out)["status"], "warning");
    assert!(warnings(&atlas_stage(&out)).contains("atlas_user_missing"));
}

#[test]
fn the_other_iam_type_is_told() {
    let s = stack(StackOptions::default());
    let arn = role(&s);
    s.set_db_user_as(
        &arn,
        DbUser {
            roles: vec![Role::ReadWrite("test".into())],
            iam_type: IamType::User,
            scopes: vec![],
        },
    );
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_wrong_type")
        .exit(6)
        .says("registered with the other IAM type: USER, where the caller needs ROLE")
        .says("--awsIAMType ROLE")
        .hides(&hidden(&s))
        .run();
    // whoami --atlas answers the same question, and fails with authentication's code
    Test::new(|| cli(&s))
        .args(["whoami", "--atlas", "--role-arn", &arn])
        .fails_at(Stage::Atlas, "atlas_user_wrong_type")
        .exit(6)
        .says("atlas dbusers delete")
        .hides(&hidden(&s))
        .run();
}

#[test]
fn a_role_registered_with_its_path_or_as_a_session() {
    let s = stack(StackOptions::default());
    s.remove_db_user(&role(&s));
    let with_path = role_arn("team/");
    s.set_db_user(&with_path, vec![Role::ReadWrite("test".into())]);
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says(&format!("registered with its path, as {with_path}"))
        .says(&format!("Atlas looks up {}", role(&s)))
        .run();
    s.remove_db_user(&with_path);
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{APP}/old-session");
    s.set_db_user(&session, vec![Role::ReadWrite("test".into())]);
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says(&format!("a session ARN registered, {session}"))
        .says("a session ARN never matches")
        .run();
}

#[test]
fn a_user_scoped_to_other_clusters() {
    let s = stack(StackOptions::default());
    s.set_db_user_as(
        &role(&s),
        DbUser {
            roles: vec![Role::ReadWrite("test".into())],
            iam_type: IamType::Role,
            scopes: vec!["Cluster9".into()],
        },
    );
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_other_clusters")
        .exit(6)
        .says("scoped to Cluster9 only, not to the cluster Cluster0")
        .says("--authDB '$external' --scope Cluster0")
        .run();
}

#[test]
fn roles_against_what_the_command_needs() {
    let s = stack(StackOptions::default());
    s.set_db_user(&role(&s), vec![Role::Read("test".into())]);
    // list-collections needs read: nothing to say
    let out = Test::new(|| cli(&s))
        .args([
            "list-collections",
            "--atlas",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role(&s),
        ])
        .passes()
        .run();
    assert_eq!(atlas_stage(&out)["status"], "passed", "{}", out.all());
    // roundtrip needs readWrite: the atlas stage says so before the command is refused
    let out = Test::new(|| cli(&s))
        .args([
            "roundtrip",
            "--atlas",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role(&s),
        ])
        .fails_at(Stage::Command, "not_authorized")
        .exit(7)
        .says("the Admin API shows the database user")
        .says("with read@test, which does not grant readWrite@test")
        // runnable as printed: an IAM user lives in $external, which the update must name
        .says("atlas dbusers update arn:aws:iam::123456789012:role/atlas-app --authDB '$external' --role readWrite@test")
        .run();
    assert!(
        warnings(&atlas_stage(&out)).contains("not_authorized"),
        "{}",
        out.all()
    );
}

#[test]
fn a_paused_cluster_and_one_too_old() {
    let s = stack(StackOptions {
        fault: Some(Fault::Refuse),
        ..Default::default()
    });
    s.admin_update(|a| a.cluster.paused = true);
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Tcp, "atlas_cluster_paused")
        .exit(5)
        .says("the Admin API shows the cluster Cluster0 paused")
        .says("atlas clusters start Cluster0")
        .run();

    let s = stack(StackOptions::default());
    s.admin_update(|a| a.cluster.version = "4.2.24".into());
    let out = Test::new(|| cli(&s)).args(ping(&s, &[])).passes().run();
    assert!(
        warnings(&atlas_stage(&out)).contains("MONGODB-AWS needs 4.4 or later"),
        "{}",
        out.all()
    );
    // and when the server indeed has no MONGODB-AWS, the version is the cause
    let s = stack(StackOptions {
        fault: Some(Fault::NoAwsMechanism),
        ..Default::default()
    });
    s.admin_update(|a| a.cluster.version = "4.2.24".into());
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_version_too_old")
        .exit(6)
        .says("on MongoDB 4.2.24; MONGODB-AWS needs 4.4 or later")
        .run();
}

/// The API's project must be the target's: otherwise its users are shown, never judged (a user
/// "missing" from another project is no finding).
#[test]
fn a_target_outside_the_project_is_not_judged() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| a.cluster.standard = "mongodb://node0.other.example.test:27017".into());
    let out = Test::new(|| cli(&s)).args(ping(&s, &[])).passes().run();
    let atlas = atlas_stage(&out);
    assert_eq!(atlas["status"], "warning", "{atlas}");
    assert!(
        warnings(&atlas).contains("no cluster of project") && warnings(&atlas).contains("Cluster0"),
        "{atlas}"
    );
    assert_eq!(
        atlas["facts"]["atlas"]["cluster"],
        serde_json::Value::Null,
        "{atlas}"
    );
    // Atlas (the local one) refuses: the diagnosis is its own, not the other project's list
    s.remove_db_user(&role(&s));
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .run();
    assert!(
        !out.stage(Stage::Auth)
            .to_string()
            .contains("the Admin API shows"),
        "{}",
        out.all()
    );
}

#[test]
fn the_access_list_is_shown_when_the_tls_stage_meets_its_alert() {
    let s = stack(StackOptions {
        tls: true,
        fault: Some(Fault::TlsAlert),
        ..Default::default()
    });
    Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Tls, "ip_not_allowed")
        .exit(5)
        .says("the project's IP access list has 203.0.113.7/32 (office)")
        .run();
}

#[test]
fn the_apis_own_failures_never_stop_a_probe() {
    let s = stack(StackOptions::default());
    type Tweak = Box<dyn Fn(Cli) -> Cli>;
    let cases: [(&str, Tweak, Option<AdminFault>); 6] = [
        (
            // a list longer than any project's is not read further (memory and report bounded)
            "atlas_api_error",
            Box::new(|c| c),
            Some(AdminFault::EndlessPages),
        ),
        (
            "atlas_api_unauthorized",
            Box::new(|c| c.env("MONGODB_ATLAS_PRIVATE_API_KEY", "wrong-private-key-value")),
            None,
        ),
        (
            "atlas_project_not_found",
            Box::new(|c| c.env("MONGODB_ATLAS_PROJECT_ID", "000000000000000000000000")),
            None,
        ),
        (
            "atlas_api_forbidden",
            Box::new(|c| c),
            Some(AdminFault::NoReadPermission),
        ),
        (
            "atlas_api_forbidden",
            Box::new(|c| c),
            Some(AdminFault::NotOnApiAccessList),
        ),
        (
            "atlas_api_not_configured",
            Box::new(|c| c.env_remove("MONGODB_ATLAS_PRIVATE_API_KEY")),
            None,
        ),
    ];
    for (kind, tweak, fault) in cases {
        s.admin_update(|a| a.fault = fault);
        let out = Test::new(|| tweak(cli(&s)))
            .args(ping(&s, &[]))
            .passes()
            .says(kind)
            .hides(&hidden(&s))
            .hides(&["wrong-private-key-value"])
            .run();
        let atlas = atlas_stage(&out);
        assert_eq!(atlas["status"], "warning", "{kind}: {atlas}");
        assert_eq!(atlas["diagnosis"]["kind"], kind, "{atlas}");
        // whoami --atlas is the answer: the API's failure is exit code 8
        let out = tweak(cli(&s))
            .args(["whoami", "--atlas", "--format", "json"])
            .run();
        assert_eq!(out.code, 8, "{kind}: {}", out.all());
        out.assert_absent(&["wrong-private-key-value", PRIVATE_KEY]);
    }
    s.admin_update(|a| a.fault = None);
}

#[test]
fn a_silent_api_is_bounded() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| a.fault = Some(AdminFault::Silent));
    let started = Instant::now();
    let out = cli(&s)
        .args(ping(&s, &["--timeout", "3", "--format", "json"]))
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // half of the run at most: the probe still passes, the API's silence a warning
    assert_eq!(out.code, 0, "{}", out.all());
    let atlas = atlas_stage(&out);
    assert_eq!(atlas["status"], "warning", "{}", out.all());
    assert_eq!(
        atlas["diagnosis"]["kind"],
        "atlas_api_timeout",
        "{}",
        out.all()
    );
    assert_eq!(
        out.stage(Stage::Command)["status"],
        "passed",
        "{}",
        out.all()
    );
    // a long --timeout: the API gets at most a second past the probe's own checks
    let started = Instant::now();
    let out = cli(&s)
        .args(ping(&s, &["--timeout", "15", "--format", "json"]))
        .run();
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        took < Duration::from_secs(3),
        "a silent API held the report {took:?}"
    );
    assert!(
        atlas_stage(&out)["diagnosis"]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("after the probe's own checks were done")),
        "{}",
        out.all()
    );
}

#[test]
fn a_service_account_gets_a_token_and_its_secret_is_never_shown() {
    let s = stack(StackOptions::default());
    let sa = || {
        cli(&s)
            .env_remove("MONGODB_ATLAS_PUBLIC_API_KEY")
            .env_remove("MONGODB_ATLAS_PRIVATE_API_KEY")
            .env("MONGODB_ATLAS_CLIENT_ID", CLIENT_ID)
            .env("MONGODB_ATLAS_CLIENT_SECRET", CLIENT_SECRET)
    };
    let out = Test::new(sa)
        .args(["whoami", "--atlas", "--role-arn", &role(&s)])
        .passes()
        .says("registered (ROLE; readWrite@test)")
        .hides(&hidden(&s))
        .run();
    assert_eq!(atlas_stage(&out)["status"], "passed");
    // a wrong secret given as a flag: refused, and never echoed
    Test::new(|| sa().env_remove("MONGODB_ATLAS_CLIENT_SECRET"))
        .args([
            "whoami",
            "--atlas",
            "--atlas-client-secret",
            "flag-secret-value-123",
        ])
        .fails_at(Stage::Atlas, "atlas_api_unauthorized")
        .exit(8)
        .hides(&["flag-secret-value-123"])
        .run();
}

#[test]
fn without_the_api_hints_say_it_would_settle_the_question() {
    let s = stack(StackOptions::default());
    s.remove_db_user(&role(&s));
    let out = Test::new(|| cli(&s))
        .args(["ping", "--uri", &s.uri(), "--role-arn", &role(&s)])
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .says("--atlas (with a project API key")
        .run();
    assert!(
        out.statuses().iter().all(|(stage, _)| stage != "atlas"),
        "no atlas stage without --atlas: {:?}",
        out.statuses()
    );
}

#[test]
fn api_credentials_go_only_to_https_or_this_machine() {
    let s = stack(StackOptions::default());
    Test::new(|| cli(&s).env("ATLAS_IAM_ATLAS_BASE_URL", "http://api.example.test"))
        .args(["whoami", "--atlas"])
        .fails_at(Stage::Atlas, "atlas_api_not_configured")
        .exit(8)
        .says("plain http to another machine")
        .run();
    Test::new(|| cli(&s).env("MONGODB_ATLAS_PROJECT_ID", "not-a-project"))
        .args(["whoami", "--atlas"])
        .fails_at(Stage::Atlas, "atlas_api_not_configured")
        .exit(8)
        .says("is not 24 hex digits")
        .run();
}

#[test]
fn an_implicit_env_file_may_hold_the_api_key_but_not_redirect_it() {
    let s = stack(StackOptions::default());
    let mut env_file = String::new();
    let mut c = atlas_iam();
    for (k, v) in s.env() {
        c = c.env(&k, v);
    }
    for (k, v) in s.admin_env() {
        if k == "ATLAS_IAM_ATLAS_BASE_URL" {
            c = c.env(k, v);
        } else {
            env_file.push_str(&format!("{k}={v}\n"));
        }
    }
    env_file.push_str("ATLAS_IAM_ATLAS_BASE_URL=http://127.0.0.1:9\n");
    let out = c
        .keys(&client(&s))
        .write(".env", &env_file)
        .args([
            "whoami",
            "--atlas",
            "--role-arn",
            &role(&s),
            "--format",
            "json",
        ])
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let config = out.stage(Stage::Config);
    assert!(
        config["warnings"]
            .to_string()
            .contains("ATLAS_IAM_ATLAS_BASE_URL"),
        "{config}"
    );
    assert!(
        config["detail"]
            .to_string()
            .contains("MONGODB_ATLAS_PRIVATE_API_KEY"),
        "{config}"
    );
    assert_eq!(atlas_stage(&out)["status"], "passed", "{}", out.all());
    out.assert_absent(&[PRIVATE_KEY]);
}

/// Pages are followed by the document's signs (`totalCount`, a `next` link), never stopped by a
/// page shorter than asked: the stand-in serves two users a page, and the caller's is on the
/// third.
#[test]
fn every_page_is_read_whatever_its_length() {
    let s = stack(StackOptions::default());
    for i in 0..4 {
        s.set_db_user(
            &format!("arn:aws:iam::{ACCOUNT}:role/a{i}"),
            vec![Role::Read("test".into())],
        );
    }
    s.admin_update(|a| a.page_cap = Some(2));
    let out = Test::new(|| cli(&s))
        .args(["whoami", "--atlas", "--role-arn", &role(&s)])
        .passes()
        .run();
    let facts = &atlas_stage(&out)["facts"]["atlas"];
    assert_eq!(facts["matched_user"], role(&s).as_str(), "{facts}");
    assert_eq!(
        facts["database_users"].as_array().map(Vec::len),
        Some(5),
        "{facts}"
    );
}

/// A Flex cluster, listed only at /flexClusters: matched to the target like any other, with its
/// real cloud, so that a missing database user is named rather than passed over.
#[test]
fn a_flex_cluster_is_found_and_judged() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| a.cluster.flex = true);
    let out = Test::new(|| cli(&s)).args(ping(&s, &[])).passes().run();
    let facts = &atlas_stage(&out)["facts"]["atlas"];
    assert_eq!(facts["cluster"]["name"], "Cluster0", "{facts}");
    assert_eq!(facts["cluster"]["provider"], "AWS", "{facts}");
    s.remove_db_user(&role(&s));
    let out = cli(&s)
        .args([
            "whoami",
            "--atlas",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role(&s),
            "--format",
            "json",
        ])
        .run();
    assert_eq!(out.code, 6, "{}", out.all());
    assert_eq!(
        atlas_stage(&out)["diagnosis"]["kind"],
        "atlas_user_missing",
        "{}",
        out.all()
    );
}

/// Versions: a deprecated one is a warning naming the list and its sunset; one past its sunset
/// (410 VERSION_GONE) is a notice to upgrade, and the other lists still count.
#[test]
fn versions_that_will_go_and_that_are_gone() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| a.fault = Some(AdminFault::UsersDeprecated));
    let out = Test::new(|| cli(&s)).args(ping(&s, &[])).passes().run();
    let w = warnings(&atlas_stage(&out));
    assert!(
        w.contains("version 2023-01-01 of the database users deprecated")
            && w.contains("01 Jul 2027"),
        "{w}"
    );
    // the users' version gone: nothing to judge, said as such (never "no such user")
    s.admin_update(|a| a.fault = Some(AdminFault::UsersVersionGone));
    let out = Test::new(|| cli(&s)).args(ping(&s, &[])).passes().run();
    let atlas = atlas_stage(&out);
    assert_eq!(atlas["status"], "warning", "{atlas}");
    assert_eq!(
        atlas["diagnosis"]["kind"], "atlas_api_version_gone",
        "{atlas}"
    );
    assert!(
        atlas["diagnosis"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("upgrade atlas-iam")),
        "{atlas}"
    );
}

fn refusal(out: &Output) -> serde_json::Value {
    atlas_stage(out)["facts"]["atlas"]["refusal"].clone()
}

/// After a refusal, Atlas's own reason: the attempt in the cluster's database access history,
/// with its failureReason and log line, when the key may read it; the role that could, once,
/// when it may not.
#[test]
fn atlas_gives_its_own_reason_for_a_refused_login() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| {
        a.key_roles = vec![
            atlas_iam_testkit::admin::READ_ONLY,
            atlas_iam_testkit::admin::MONITORING_ADMIN,
        ]
    });
    s.remove_db_user(&role(&s));
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .hides(&hidden(&s))
        .run();
    let r = refusal(&out);
    assert_eq!(r["access_history"], "read", "{r}");
    assert_eq!(r["change_status"], "APPLIED", "{r}");
    let reason = r["failure_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("UserNotFound") && reason.contains(&role(&s)),
        "{r}"
    );
    assert_eq!(r["attempt_ip"], "127.0.0.1", "{r}");
    assert!(
        r["log_line"]
            .as_str()
            .is_some_and(|l| l.contains("Authentication failed")),
        "{r}"
    );
    let auth = out.stage(Stage::Auth);
    assert!(
        auth["diagnosis"]["cause"]
            .as_str()
            .is_some_and(|c| c.contains("access history") && c.contains("UserNotFound")),
        "{auth}"
    );
    // LDAP settings need Project Owner: not read, and nothing said of them
    assert!(r["ldap_authorization"].is_null(), "{r}");

    // Project Read Only only: the history is not read, and the role that could is named once
    s.admin_update(|a| a.key_roles = vec![atlas_iam_testkit::admin::READ_ONLY]);
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .run();
    assert_eq!(
        refusal(&out)["access_history"],
        "forbidden",
        "{}",
        out.all()
    );
    let w = warnings(&atlas_stage(&out));
    assert_eq!(
        w.matches("Project Monitoring Admin or Project Database Access Admin")
            .count(),
        1,
        "{w}"
    );
    // a passing run reads none of it
    s.set_db_user(&role(&s), vec![Role::ReadWrite("test".into())]);
    let out = Test::new(|| cli(&s)).args(ping(&s, &[])).passes().run();
    assert!(refusal(&out).is_null(), "{}", out.all());
}

/// With LDAP authorization on for the project, AWS IAM users cannot authenticate: named as the
/// cause, whatever else the lists show.
#[test]
fn ldap_authorization_is_named_as_the_cause() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| {
        a.key_roles = vec![atlas_iam_testkit::admin::OWNER];
        a.ldap_authorization = true;
    });
    s.remove_db_user(&role(&s));
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_ldap_authorization")
        .exit(6)
        .says("LDAP authorization")
        .run();
    assert_eq!(refusal(&out)["ldap_authorization"], true, "{}", out.all());
}

/// A database user registered a moment ago is refused until Atlas has deployed it: the change
/// status says so, and the kind is its own.
#[test]
fn a_user_not_yet_applied_is_told() {
    let s = stack(StackOptions::default());
    s.admin_pending_user(&role(&s), vec![Role::ReadWrite("test".into())], None);
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_change_pending")
        .exit(6)
        .says("--wait")
        .run();
    assert_eq!(refusal(&out)["change_status"], "PENDING", "{}", out.all());
}

/// A Flex cluster keeps no access history: not asked for, and said so.
#[test]
fn no_access_history_is_asked_of_a_flex_cluster() {
    let s = stack(StackOptions::default());
    s.admin_update(|a| {
        a.cluster.flex = true;
        a.key_roles = vec![atlas_iam_testkit::admin::MONITORING_ADMIN];
    });
    s.remove_db_user(&role(&s));
    let out = Test::new(|| cli(&s))
        .args(ping(&s, &[]))
        .fails_at(Stage::Auth, "atlas_user_missing")
        .exit(6)
        .run();
    assert_eq!(refusal(&out)["access_history"], "not_kept", "{}", out.all());
}

fn attempts(s: &Stack) -> usize {
    s.atlas
        .shared
        .access_log
        .lock()
        .map(|l| l.len())
        .unwrap_or(0)
}

/// `--wait`: a user registered a moment ago passes once Atlas has applied it; each try
/// authenticates once, and every try is in the report.
#[test]
fn wait_tries_again_until_the_change_is_applied() {
    let s = stack(StackOptions::default());
    s.admin_pending_user(
        &role(&s),
        vec![Role::ReadWrite("test".into())],
        Some(Duration::from_secs(3)),
    );
    let out = cli(&s)
        .args(ping(&s, &["--wait", "60", "--format", "json"]))
        .run();
    assert_eq!(out.code, 0, "{}", out.all());
    let report = out.json();
    let tries = report["tries"].as_array().cloned().unwrap_or_default();
    assert!(tries.len() >= 2, "{report}");
    assert_eq!(tries[0]["kind"], "atlas_change_pending", "{report}");
    assert_eq!(tries[0]["change_status"], "PENDING", "{report}");
    assert_eq!(tries[0]["failed_stage"], "auth", "{report}");
    assert_eq!(tries.last().map(|t| t["ok"].clone()), Some(true.into()));
    assert!(tries[1]["started_ms"].as_u64() >= Some(5_000), "{report}");
    // one MONGODB-AWS conversation per try
    assert_eq!(attempts(&s), tries.len(), "{report}");
}

/// `--wait` stops at once where waiting cannot help: a refusal while every change is applied,
/// or a config error; without the Admin API it tries until the time is up.
#[test]
fn wait_stops_where_waiting_cannot_help() {
    let s = stack(StackOptions::default());
    s.remove_db_user(&role(&s));
    let started = Instant::now();
    let out = cli(&s)
        .args(ping(&s, &["--wait", "60", "--format", "json"]))
        .run();
    assert_eq!(out.code, 6, "{}", out.all());
    assert!(started.elapsed() < Duration::from_secs(5), "{}", out.all());
    let report = out.json();
    assert_eq!(
        report["tries"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains("every change of the project is applied"),
        "{report}"
    );
    assert_eq!(attempts(&s), 1);

    // a config error: one try
    let out = cli(&s)
        .args([
            "ping",
            "--uri",
            "mongodb://h:99999/",
            "--wait",
            "60",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(out.json()["tries"].as_array().map(Vec::len), Some(1));

    // no --atlas: no change status to read, so tries until the time is up
    let out = cli(&s)
        .args([
            "ping",
            "--uri",
            &s.uri(),
            "--role-arn",
            &role(&s),
            "--wait",
            "6",
            "--format",
            "json",
        ])
        .run();
    assert_eq!(out.code, 6, "{}", out.all());
    let report = out.json();
    assert_eq!(
        report["tries"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains("--wait 6 s ran out after 2 tries"),
        "{report}"
    );
    assert_eq!(attempts(&s), 3);
}
