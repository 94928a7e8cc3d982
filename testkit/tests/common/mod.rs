//! Real clients run against a Stack: pymongo and the Node driver as processes, the Rust driver
//! in process. Each returns {"ok": true, "steps": …} or {"ok": false, "code": N, "message": …}.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use atlas_iam_testkit::moto::Keys;
use atlas_iam_testkit::stack::SessionKeys;
use atlas_iam_testkit::Stack;
use serde_json::Value;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Credentials as the environment gives them to a driver.
#[derive(Clone)]
pub(crate) struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl From<&Keys> for Creds {
    fn from(k: &Keys) -> Self {
        Creds {
            id: k.id.clone(),
            secret: k.secret.clone(),
            token: None,
        }
    }
}

impl From<&SessionKeys> for Creds {
    fn from(k: &SessionKeys) -> Self {
        Creds {
            id: k.id.clone(),
            secret: k.secret.clone(),
            token: Some(k.token.clone()),
        }
    }
}

pub(crate) type Client = fn(&Stack, &Creds, &str) -> Value;

fn client_env(cmd: &mut Command, stack: &Stack, creds: &Creds) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_STS", &stack.sts_endpoint)
        .env("AWS_ACCESS_KEY_ID", &creds.id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret);
    if let Some(t) = &creds.token {
        cmd.env("AWS_SESSION_TOKEN", t);
    }
}

fn parse(out: std::process::Output, who: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{who} printed no JSON ({e}):\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub(crate) fn pymongo(stack: &Stack, creds: &Creds, ops: &str) -> Value {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run `bash .ci/setup` (installs pymongo[aws] into .venv)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(root().join("testkit/fidelity/pymongo_client.py"))
        .arg(stack.uri())
        .arg(ops);
    client_env(&mut cmd, stack, creds);
    parse(cmd.output().expect("run python"), "pymongo")
}

pub(crate) fn node(stack: &Stack, creds: &Creds, ops: &str) -> Value {
    let modules = root().join("node_modules");
    assert!(
        modules.join("mongodb").exists() && modules.join("aws4").exists(),
        "{}: run `bash .ci/setup` (npm ci installs mongodb 6, @aws-sdk/credential-providers, aws4)",
        modules.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(root().join("testkit/fidelity/node_client.js"))
        .arg(stack.uri())
        .arg(ops);
    client_env(&mut cmd, stack, creds);
    cmd.env("NODE_PATH", &modules);
    parse(cmd.output().expect("run node (install Node.js)"), "node")
}

/// The Rust driver, given the credentials through `Credential.aws_credential_provider`.
pub(crate) fn rust(stack: &Stack, creds: &Creds, ops: &str) -> Value {
    rust_with(stack, &stack.uri(), creds, ops, Duration::from_secs(5))
}

pub(crate) fn rust_with(
    stack: &Stack,
    uri: &str,
    creds: &Creds,
    ops: &str,
    timeout: Duration,
) -> Value {
    use mongodb::bson::doc;
    let creds = creds.clone();
    let uri = uri.to_string();
    let ops = ops.to_string();
    stack.block_on(async move {
        let result: Result<Value, mongodb::error::Error> = async {
            let mut options = mongodb::options::ClientOptions::parse(&uri).await?;
            options.server_selection_timeout = Some(timeout);
            options.connect_timeout = Some(timeout);
            if let Some(c) = options.credential.as_mut() {
                c.aws_credential_provider = Some(
                    aws_credential_types::provider::SharedCredentialsProvider::new(
                        aws_credential_types::Credentials::new(
                            &creds.id,
                            &creds.secret,
                            creds.token.clone(),
                            None,
                            "test",
                        ),
                    ),
                );
            }
            let client = mongodb::Client::with_options(options)?;
            let db = client.database("test");
            let coll = db.collection::<mongodb::bson::Document>("fidelity");
            let mut steps = serde_json::Map::new();
            if ops == "insert" {
                let id = coll.insert_one(doc! {"from": "rust"}).await?.inserted_id;
                steps.insert("inserted".into(), id.to_string().into());
            } else {
                client
                    .database("admin")
                    .run_command(doc! {"ping": 1})
                    .await?;
                steps.insert("ping".into(), 1.0.into());
                if ops == "full" {
                    let id = coll
                        .insert_one(doc! {"from": "rust", "n": 1})
                        .await?
                        .inserted_id;
                    steps.insert("inserted".into(), id.to_string().into());
                    let found = coll.find_one(doc! {"_id": id.clone()}).await?;
                    steps.insert(
                        "found".into(),
                        found
                            .is_some_and(|d| d.get_str("from").ok() == Some("rust"))
                            .into(),
                    );
                    let mut names = db.list_collection_names().await?;
                    names.sort();
                    steps.insert("collections".into(), names.into());
                    let deleted = coll.delete_one(doc! {"_id": id}).await?.deleted_count;
                    steps.insert("deleted".into(), deleted.into());
                }
            }
            client.shutdown().await;
            Ok(serde_json::json!({"ok": true, "steps": steps}))
        }
        .await;
        result.unwrap_or_else(|e| {
            let code = match e.kind.as_ref() {
                mongodb::error::ErrorKind::Command(c) => Some(c.code),
                // a server refusal during authentication is the source of the auth error
                mongodb::error::ErrorKind::Authentication { .. } => std::error::Error::source(&e)
                    .and_then(|s| {
                        s.downcast_ref::<mongodb::error::Error>().or_else(|| {
                            s.downcast_ref::<Box<mongodb::error::Error>>().map(|b| &**b)
                        })
                    })
                    .and_then(|s| match s.kind.as_ref() {
                        mongodb::error::ErrorKind::Command(c) => Some(c.code),
                        _ => None,
                    }),
                _ => None,
            };
            serde_json::json!({"ok": false, "code": code, "message": error_chain(&e)})
        })
    })
}

pub(crate) fn assert_refused(who: &str, r: &Value, code: i64, text: &str) {
    assert_eq!(r["ok"], false, "{who}: {r}");
    assert!(
        r["message"].as_str().unwrap_or_default().contains(text),
        "{who}: expected `{text}` in {r}"
    );
    assert_eq!(r["code"], code, "{who}: {r}");
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
