//! `assume`: config, credentials, assume; the credentials printed in the chosen shape.

use aws_credential_types::Credentials;

use super::{credential_info, credentials_stages};
use crate::cli::AssumeOutput;
use crate::config::Config;
use crate::credentials::rfc3339;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::runner::Runner;
use crate::secret::Secret;

pub async fn run(runner: &mut Runner<'_>, cfg: &Config, output: AssumeOutput) {
    if cfg.role.is_none() {
        runner.plan([Stage::Credentials, Stage::Assume]);
        runner.fail_config(Diagnosis::new(
            Kind::InvalidConfig,
            "assume needs a role to assume",
            "give --role-arn ARN (or set ATLAS_IAM_ROLE_ARN or MONGODB_ACCESS_ROLE_ARN)",
        ));
        return;
    }
    let Some((_, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.report.credentials = Some(credential_info(&in_use));
    runner.report.payload = Some(Secret::new(format_credentials(&in_use.creds, output)));
}

/// The credentials of `assume` in the chosen shape.
pub fn format_credentials(creds: &Credentials, output: AssumeOutput) -> String {
    let expiration = creds.expiry().map(rfc3339);
    let mut vars = vec![
        ("AWS_ACCESS_KEY_ID", creds.access_key_id().to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            creds.secret_access_key().to_string(),
        ),
    ];
    if let Some(t) = creds.session_token() {
        vars.push(("AWS_SESSION_TOKEN", t.to_string()));
    }
    if let Some(e) = &expiration {
        vars.push(("AWS_CREDENTIAL_EXPIRATION", e.clone()));
    }
    match output {
        AssumeOutput::Env => vars
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
            .collect(),
        AssumeOutput::Dotenv => vars
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"\n", v.replace('\\', r"\\").replace('"', "\\\"")))
            .collect(),
        AssumeOutput::Json => {
            let mut doc = serde_json::json!({
                "Version": 1,
                "AccessKeyId": creds.access_key_id(),
                "SecretAccessKey": creds.secret_access_key(),
            });
            if let Some(t) = creds.session_token() {
                doc["SessionToken"] = t.into();
            }
            if let Some(e) = expiration {
                doc["Expiration"] = e.into();
            }
            format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            )
        }
    }
}
