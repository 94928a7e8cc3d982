//! `uri`: build the MONGODB-AWS connection string for a cluster, or check a given one; with
//! --embed-credentials, the legacy form with the resolved credentials in it.

use std::time::SystemTime;

use super::{credential_info, credentials_stages};
use crate::config::{Config, Target};
use crate::credentials::rfc3339;
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{Finding, Severity, UriReport};
use crate::runner::Runner;
use crate::secret::Secret;
use crate::uri;

pub(crate) async fn run(runner: &mut Runner<'_>, cfg: &Config, embed: bool) {
    // What the string is built from, or the string to check: decided in the config stage.
    let (base, parsed_findings) = match &cfg.target {
        Target::None => {
            runner.fail_config(Diagnosis::new(
                Kind::MissingTarget,
                "uri needs a cluster or a connection string",
                "give --cluster HOST (or ATLAS_IAM_CLUSTER, AWS_MONGO_CLUSTER_URL, \
                     MONGODB_CLUSTER_NAME), or --uri URI (or MONGODB_URI) to check one",
            ));
            return;
        }
        Target::Cluster(c) => (uri::ParsedUri::parse(&uri::build(c, &cfg.db, None)), None),
        Target::Uri(u) => match uri::check(u.expose()) {
            Ok((parsed, mut found)) => {
                if let Some(driver) = &cfg.driver {
                    uri::for_driver(&parsed, &mut found, driver);
                }
                (Ok(parsed), Some(found))
            }
            Err(d) => (Err(d), None),
        },
    };
    let parsed = match base {
        Ok(p) => p,
        Err(d) => {
            runner.fail_config(d);
            return;
        }
    };
    if let Some(found) = &parsed_findings {
        let errors: Vec<_> = found
            .iter()
            .filter(|f| matches!(f.severity, Severity::Error))
            .collect();
        // Embedding replaces the credentials, so pitfalls of the old ones do not count then.
        let errors: Vec<_> = errors
            .into_iter()
            .filter(|f| !(embed && uri::is_credential_finding(&f.code)))
            .collect();
        if !errors.is_empty() {
            let report = uri_report(&parsed, cfg, found.clone(), None);
            runner.set_uri(report);
            runner.fail_config(uri::pitfall(errors));
            return;
        }
        let warnings: Vec<String> = found
            .iter()
            .filter(|f| !(embed && uri::is_credential_finding(&f.code)))
            .map(|f| format!("{}: {}", f.code, f.message))
            .collect();
        runner.warn_last(warnings);
    }

    if !embed {
        let found = parsed_findings.unwrap_or_default();
        let text = match &cfg.target {
            Target::Uri(u) => u.expose().clone(),
            _ => parsed.redacted(),
        };
        let report = uri_report(&parsed, cfg, found, None);
        runner.set_uri(report);
        if matches!(cfg.target, Target::Cluster(_)) {
            runner.set_payload(Secret::new(text));
        }
        return;
    }

    let Some((_, in_use)) = credentials_stages(runner, cfg).await else {
        return;
    };
    runner.set_credentials(credential_info(&in_use));
    let full = uri::embed(
        &parsed,
        &uri::Embedded {
            key_id: in_use.creds.access_key_id(),
            secret: in_use.creds.secret_access_key(),
            token: in_use.creds.session_token(),
        },
    );
    let embedded = match uri::ParsedUri::parse(&full) {
        Ok(p) => p,
        Err(d) => {
            runner.fail_config(d);
            return;
        }
    };
    let found = uri::findings(&embedded);
    let expires = in_use.creds.expiry();
    let mut report = uri_report(&embedded, cfg, found, expires);
    if cfg.show_secrets {
        report.uri = full.clone();
    }
    let mut warning = "current drivers reject credentials in the connection string (the Node \
        driver 7 raises an error; the Rust driver warns); use this form only with older drivers"
        .to_string();
    match expires {
        Some(t) => warning.push_str(&format!("; these credentials expire at {}", rfc3339(t))),
        None => warning.push_str("; these are long-term keys: whoever sees the string has them"),
    }
    if !cfg.show_secrets {
        warning.push_str("; the secret and token are redacted: add --show-secrets to print them");
    }
    runner.warn_last(vec![warning]);
    runner.set_uri(report);
    runner.set_payload(Secret::new(if cfg.show_secrets {
        full
    } else {
        embedded.redacted()
    }));
}

fn uri_report(
    p: &uri::ParsedUri,
    cfg: &Config,
    findings: Vec<Finding>,
    expires: Option<SystemTime>,
) -> UriReport {
    let shown = match (&cfg.target, cfg.show_secrets) {
        (Target::Uri(u), true) => u.expose().clone(),
        _ => p.redacted(),
    };
    let options = uri::verdict(p)
        .map(|o| o.values.iter().map(|v| v.shown()).collect())
        .unwrap_or_default();
    UriReport {
        uri: shown,
        srv: p.srv,
        hosts: p.hosts.clone(),
        database: p.db.as_deref().map(uri::decode),
        options,
        embedded_credentials: p.user.is_some(),
        credentials_expire: expires.map(rfc3339),
        findings,
    }
}
