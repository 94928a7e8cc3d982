//! Assume a role (with a session name and, when the role's trust policy asks for one, an external
//! id) and connect to Atlas as that role with MONGODB-AWS, the credentials handed to the driver
//! by the SDK's AssumeRole provider (`Credential::aws_credential_provider`), never through the
//! connection string. The provider assumes the role again whenever the driver opens a
//! connection, so a long-lived client keeps working past the session's expiry; see
//! `cached_client.rs` for a cache in front of it.
//!
//! The Atlas database user to create is the role's ARN (sessions map to it):
//! `atlas dbusers create --username ROLE_ARN --awsIAMType ROLE --role readWrite@DB`.
//!
//! ```sh
//! MONGODB_URI='mongodb+srv://cluster0.ab12c.mongodb.net/?authSource=%24external&authMechanism=MONGODB-AWS' \
//! ROLE_ARN=arn:aws:iam::123456789012:role/app EXTERNAL_ID=... cargo run --example assume_role
//! ```
//!
//! Environment: `MONGODB_URI` (credential-free), `ROLE_ARN`, `SESSION_NAME` (default
//! `assume-role-example`), `EXTERNAL_ID` (optional), `DB` (default `test`). The starting
//! credentials come from the AWS default chain.

use anyhow::{anyhow, Context};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::SharedCredentialsProvider;
use mongodb::bson::doc;
use mongodb::options::{AuthMechanism, ClientOptions};
use mongodb::Client;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").context("set MONGODB_URI")?;
    let role = std::env::var("ROLE_ARN").context("set ROLE_ARN")?;
    let session = std::env::var("SESSION_NAME").unwrap_or_else(|_| "assume-role-example".into());
    let db = std::env::var("DB").unwrap_or_else(|_| "test".into());

    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let mut assume = aws_config::sts::AssumeRoleProvider::builder(&role).session_name(&session);
    if let Ok(id) = std::env::var("EXTERNAL_ID") {
        assume = assume.external_id(id);
    }
    let provider = assume.configure(&sdk).build().await;

    let mut options = ClientOptions::parse(&uri).await?;
    let mut credential = options.credential.take().unwrap_or_default();
    if credential.username.is_some() || credential.password.is_some() {
        return Err(anyhow!(
            "MONGODB_URI carries credentials: remove them, the provider gives them"
        ));
    }
    credential.mechanism = Some(AuthMechanism::MongoDbAws);
    credential.source = Some("$external".to_string());
    credential.aws_credential_provider = Some(SharedCredentialsProvider::new(provider));
    options.credential = Some(credential);
    let client = Client::with_options(options)?;

    client
        .database("admin")
        .run_command(doc! {"ping": 1})
        .await?;
    let collections = client.database(&db).list_collection_names().await?;
    println!(
        "connected as {role} (session {session}): ping ok, {} collections in {db}",
        collections.len()
    );
    Ok(())
}
