//! `assume`: config, credentials, assume; the credentials printed in the chosen shape.

use std::path::Path;

use aws_credential_types::Credentials;

use super::{credential_info, credentials_stages};
use crate::cli::AssumeOutput;
use crate::config::Config;
use crate::credentials::rfc3339;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::runner::Runner;
use crate::secret::Secret;

/// Where `--out` writes the credentials.
pub(crate) struct OutFile<'a> {
    pub path: &'a Path,
    pub force: bool,
}

pub(crate) async fn run(
    runner: &mut Runner<'_>,
    cfg: &Config,
    output: AssumeOutput,
    out: Option<OutFile<'_>>,
) {
    if let Some(out) = &out {
        // Before any AWS call: a file that cannot be written is a config error.
        if let Err(d) = writable(out) {
            runner.plan([Stage::Credentials, Stage::Assume]);
            runner.fail_config(d);
            return;
        }
    }
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
    runner.set_credentials(credential_info(&in_use));
    let text = format_credentials(&in_use.creds, output);
    match out {
        None => runner.set_payload(Secret::new(text)),
        Some(out) => match write_private(&out, &text) {
            Ok(()) => runner.note_last(format!(
                "credentials written to {} (mode 0600)",
                out.path.display()
            )),
            Err(d) => runner.fail_config(d),
        },
    }
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> Diagnosis {
    Diagnosis::new(
        Kind::InvalidConfig,
        format!("cannot write the credentials to {}: {why}", path.display()),
        "give --out a new file in a directory you own (add --force to replace a file)",
    )
}

/// Whether --out may be written: never through a symlink, never over a file without --force.
fn writable(out: &OutFile<'_>) -> Result<(), Diagnosis> {
    match std::fs::symlink_metadata(out.path) {
        Ok(m) if m.file_type().is_symlink() => Err(file_error(
            out.path,
            "it is a symbolic link, which atlas-iam never follows",
        )),
        Ok(m) if !m.is_file() => Err(file_error(out.path, "it is not a regular file")),
        Ok(_) if !out.force => Err(file_error(
            out.path,
            "it exists (add --force to replace it)",
        )),
        _ => Ok(()),
    }
}

/// Creates the file with mode 0600 (a replaced file is removed first, so that its old mode and
/// owner do not carry over) and writes the credentials.
fn write_private(out: &OutFile<'_>, text: &str) -> Result<(), Diagnosis> {
    use std::io::Write;
    writable(out)?;
    if out.force && std::fs::symlink_metadata(out.path).is_ok() {
        std::fs::remove_file(out.path).map_err(|e| file_error(out.path, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options
        .open(out.path)
        .map_err(|e| file_error(out.path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(out.path, e))
}

/// The credentials of `assume` in the chosen shape.
pub(crate) fn format_credentials(creds: &Credentials, output: AssumeOutput) -> String {
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
            // single quotes: literal in dotenv parsers and in a shell that sources the file
            // (values are STS-shaped, see `sts_shaped`; a quote is escaped all the same)
            .map(|(k, v)| format!("{k}='{}'\n", v.replace('\'', r"'\''")))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: &str) -> Credentials {
        Credentials::new(
            "ASIAXXXXXXXXXXXXWXYZ",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some(token.to_string()),
            None,
            "test",
        )
    }

    /// A hostile STS answer is refused before anything is printed; what STS issues is printed
    /// single-quoted, inert in a shell and literal in a dotenv parser.
    #[test]
    fn only_sts_shaped_values_are_printed_and_they_are_inert() {
        for hostile in ["$(touch /tmp/pwned)", "a`id`b", "tok'en", "x\ny", "a b", ""] {
            assert!(
                super::super::sts_shaped(&creds(hostile)).is_err(),
                "{hostile:?} accepted"
            );
        }
        let good = creds("IQoJb3JpZ2luX2Vj+/=");
        assert!(super::super::sts_shaped(&good).is_ok());
        let out = format_credentials(&good, AssumeOutput::Dotenv);
        assert!(
            out.contains("AWS_SESSION_TOKEN='IQoJb3JpZ2luX2Vj+/='\n"),
            "{out}"
        );
    }
}
