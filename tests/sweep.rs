//! The secrets sweep: every subcommand, with several known credential sets (IAM user keys, a
//! wrong secret, an unknown key, assumed-role session credentials with and without their token),
//! with and without --role-arn, against a working cluster and hostile connection strings, in
//! both formats. No secret key, session token or full access key id may appear in stdout, stderr
//! or a written file, raw, percent-encoded in either case, or JSON-escaped; the only exceptions
//! are `assume`'s credentials on stdout and `--show-secrets`. Every run has `--atlas`, with the
//! Admin API stand-in's key (a wrong one for the wrong-secret set). Prints how many runs were
//! swept.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{atlas_iam, Cli};
use atlas_iam_testkit::moto::{user_arn, Keys};
use atlas_iam_testkit::{Role, Stack, StackOptions};

/// One run: credentials, command, target, with a role, format.
type Job<'a> = (&'a Creds, &'a [&'a str], &'a Vec<String>, bool, &'a str);

struct Creds {
    name: &'static str,
    id: String,
    secret: String,
    token: Option<String>,
}

impl Creds {
    fn secrets(&self) -> Vec<String> {
        let mut v = vec![self.id.clone(), self.secret.clone()];
        v.extend(self.token.clone());
        v
    }
}

fn with(c: Cli, creds: &Creds) -> Cli {
    let c = c
        .env("AWS_ACCESS_KEY_ID", &creds.id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret);
    match &creds.token {
        Some(t) => c.env("AWS_SESSION_TOKEN", t),
        None => c,
    }
}

/// A private API key the Admin API refuses (its refusal must not echo it).
const WRONG_API_KEY: &str = "99999999-8888-4777-8666-wr0ngpr1v4t3";

#[test]
fn no_secret_in_any_output_of_any_command() {
    // every run also reads the Admin API stand-in (--atlas): its private key, and a wrong one,
    // are secrets too
    let s = Stack::start(StackOptions {
        admin: true,
        ..Default::default()
    })
    .expect("local Atlas stack");
    s.set_db_user(
        &user_arn("atlas-client"),
        vec![Role::ReadWrite("test".into())],
    );
    let account = s.account.clone().expect("account");
    let client: Keys = account.client.clone();
    let session = s
        .assume(&client, &account.role_arn, "sweep")
        .expect("assume");
    let sets = [
        Creds {
            name: "user keys",
            id: client.id.clone(),
            secret: client.secret.clone(),
            token: None,
        },
        Creds {
            name: "wrong secret",
            id: client.id.clone(),
            secret: atlas_iam_testkit::moto::mangle(&client.secret),
            token: None,
        },
        Creds {
            name: "unknown key",
            id: "AKIAUNKNOWNUNKNOWN00".into(),
            secret: client.secret.clone(),
            token: None,
        },
        Creds {
            name: "assumed-role session",
            id: session.id.clone(),
            secret: session.secret.clone(),
            token: Some(session.token.clone()),
        },
        Creds {
            name: "session without its token",
            id: session.id.clone(),
            secret: session.secret.clone(),
            token: None,
        },
    ];
    let uri = s.uri();
    let encoded_secret = session.secret.replace('/', "%2F").replace('+', "%2B");
    // hostile strings: the session's token and secret spelled in every way the issue found
    let hostile = [
        format!(
            "{uri}&authMechanismProperties=AWS_SESSION_TOKEN%3a{}",
            session.token
        ),
        format!(
            "{uri}&authMechanismProperties=AWS%5FSESSION%5FTOKEN:{}",
            session.token
        ),
        format!("{uri}&proxyPassword={}", session.secret),
        uri.replacen(
            "mongodb://",
            &format!("mongodb://{}:{}?#@", session.id, session.secret),
            1,
        ),
        // userinfo with a raw `=` and the other sub-delimiters, legal unescaped
        uri.replacen(
            "mongodb://",
            &format!("mongodb://{}:{}=!$&'()*+,;=@", session.id, encoded_secret),
            1,
        ),
        format!(
            "mongodb+srv://{}:{}=@cluster0.ab12c.mongodb.net/?authSource=%24external\
             &authMechanism=MONGODB-AWS",
            session.id, encoded_secret
        ),
        // an option no specification defines may hold anything
        format!("{uri}&sessionToken={}", session.token),
    ];
    let targets: Vec<Vec<String>> = std::iter::once(vec!["--uri".to_string(), uri.clone()])
        .chain(hostile.iter().map(|h| vec!["--uri".to_string(), h.clone()]))
        .chain(std::iter::once(vec![
            "--cluster".to_string(),
            "cluster0.ab12c.mongodb.net".to_string(),
        ]))
        .collect();
    let commands: [&[&str]; 7] = [
        &["whoami"],
        &["assume"],
        &["uri"],
        &["uri", "--embed-credentials"],
        &["ping"],
        &["list-collections"],
        &["roundtrip"],
    ];
    let mut secrets: Vec<String> = sets.iter().flat_map(Creds::secrets).collect();
    secrets.push(atlas_iam_testkit::admin::PRIVATE_KEY.to_string());
    secrets.push(WRONG_API_KEY.to_string());
    secrets.sort();
    secrets.dedup();
    let all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let runs = AtomicUsize::new(0);
    let mut jobs: Vec<Job> = Vec::new();
    for c in &sets {
        for cmd in &commands {
            for t in &targets {
                // the cluster target only where no network is needed, to keep the sweep fast
                if t[0] != "--uri" && !matches!(cmd[0], "uri" | "whoami") {
                    continue;
                }
                for role in [false, true] {
                    for f in ["human", "json"] {
                        jobs.push((c, *cmd, t, role, f));
                    }
                }
            }
        }
    }
    let chunks: Vec<_> = jobs.chunks(jobs.len().div_ceil(4).max(1)).collect();
    std::thread::scope(|scope| {
        for chunk in chunks {
            let (s, all, runs, account) = (&s, &all, &runs, &account);
            scope.spawn(move || {
                for (creds, cmd, target, role, format) in chunk {
                    let mut c = atlas_iam();
                    for (k, v) in s.env() {
                        if !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET") {
                            c = c.env(&k, v);
                        }
                    }
                    for (k, v) in s.admin_env() {
                        c = c.env(k, v);
                    }
                    if creds.name == "wrong secret" {
                        c = c.env("MONGODB_ATLAS_PRIVATE_API_KEY", WRONG_API_KEY);
                    }
                    let mut c = with(c, creds).args(*cmd).args(*target).args([
                        "--format",
                        format,
                        "--timeout",
                        "10",
                        "--atlas",
                    ]);
                    if *role {
                        c = c.args(["--role-arn", &account.role_arn]);
                    }
                    let out = c.run();
                    let what = format!("{} {cmd:?} {target:?} role={role} {format}", creds.name);
                    if cmd[0] == "assume" {
                        // stdout is the credentials, by design; the report on stderr is not
                        let stderr_only = crate::common::Output {
                            code: out.code,
                            stdout: String::new(),
                            stderr: out.stderr.clone(),
                            dir: out.dir,
                            parsed: Default::default(),
                        };
                        stderr_only.assert_absent(all);
                    } else {
                        out.assert_absent(all);
                        let written = std::fs::read_dir(out.dir.path())
                            .map(|d| d.count())
                            .unwrap_or(0);
                        assert_eq!(written, 0, "{what} wrote a file");
                    }
                    assert!(out.code >= 0, "{what}: killed");
                    runs.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let n = runs.load(Ordering::Relaxed);
    println!(
        "swept {n} runs ({} credential sets, {} commands, {} targets, with and without a role, \
         both formats): no secret in any output",
        sets.len(),
        commands.len(),
        targets.len()
    );
    assert!(n >= 300, "only {n} runs swept");
}
