//! The command stage: ping, listCollections, or the roundtrip of a probe document, over the
//! client the auth stage opened, repeated with --count; failures classified (a missing role names
//! the role needed).

use std::time::{Duration, Instant};

use mongodb::bson::doc;
use mongodb::error::Error as DriverError;

use super::auth::{DriverFailure, IdentityFacts, ReadyAt, Session};
use super::roundtrip::{self, Probe};
use crate::diagnosis::texts::*;
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::{Latency, Operations};
use crate::runner::Passed;

/// Which database role a command needs.
pub(crate) fn role_needed(command: &str, db: &str) -> String {
    match command {
        "roundtrip" => format!("readWrite@{db}"),
        _ => format!("read@{db}"),
    }
}

pub(crate) fn classify_command(
    f: &DriverFailure,
    command: &str,
    db: &str,
    collection: &str,
    facts: &IdentityFacts,
) -> Diagnosis {
    let user = facts
        .atlas_user_arn
        .clone()
        .unwrap_or_else(|| "this identity".into());
    let not_authorized = f.code == Some(ATLAS_UNAUTHORIZED)
        || f.server_message
            .as_deref()
            .is_some_and(|m| m.starts_with(PROXY_NOT_ALLOWED));
    if not_authorized {
        let role = role_needed(command, db);
        let on = if command == "roundtrip" {
            format!("{db}.{collection}")
        } else {
            db.to_string()
        };
        return Diagnosis::new(
            Kind::NotAuthorized,
            format!("authentication passed, but the database user {user} may not run {command} on {on}: {}",
                f.server_message.clone().unwrap_or_else(|| f.text.clone())),
            format!("give the database user the role {role} (Atlas: Database Access > Edit > \
                     Built-in Role, or `atlas dbusers update {user} --authDB '$external' --role {role}`)"),
        );
    }
    Diagnosis::new(
        Kind::CommandFailed,
        format!(
            "{command} failed: {}",
            f.server_message.clone().unwrap_or_else(|| f.text.clone())
        ),
        "see the server's message above",
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeCommand {
    Ping,
    ListCollections,
    Roundtrip,
}

impl ProbeCommand {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProbeCommand::Ping => "ping",
            ProbeCommand::ListCollections => "list-collections",
            ProbeCommand::Roundtrip => "roundtrip",
        }
    }

    /// What the command needs of the database user (judged from the Admin API's facts).
    pub(crate) fn need(self) -> crate::atlas::Need {
        match self {
            ProbeCommand::Ping => crate::atlas::Need::Nothing,
            ProbeCommand::ListCollections => crate::atlas::Need::Read,
            ProbeCommand::Roundtrip => crate::atlas::Need::ReadWrite,
        }
    }
}

use crate::timing::millis;

pub(crate) fn summarize(cold: Duration, samples: &[Duration], ops: Option<Operations>) -> Latency {
    let mut ms: Vec<f64> = samples.iter().map(|d| millis(*d)).collect();
    let samples_ms = ms.clone();
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = if ms.is_empty() {
        0.0
    } else if ms.len() % 2 == 1 {
        ms[ms.len() / 2]
    } else {
        (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0
    };
    Latency {
        cold_ms: millis(cold),
        min_ms: ms.first().copied().unwrap_or_default(),
        median_ms: median,
        max_ms: ms.last().copied().unwrap_or_default(),
        samples_ms,
        operations: ops,
    }
}

#[derive(Clone)]
pub(crate) struct CommandOptions {
    pub command: ProbeCommand,
    pub collection: String,
    pub count: u32,
    pub interval: Duration,
}

/// Why the command did not pass: the driver's failure (classified later, with what the identity
/// stage learned), or a diagnosis already made.
pub(crate) enum CommandFailure {
    Driver(DriverFailure),
    Other(Diagnosis),
}

impl CommandFailure {
    pub(crate) fn classify(
        self,
        opts: &CommandOptions,
        db: &str,
        facts: &IdentityFacts,
    ) -> Diagnosis {
        match self {
            CommandFailure::Driver(f) => {
                classify_command(&f, opts.command.name(), db, &opts.collection, facts)
            }
            CommandFailure::Other(d) => d,
        }
    }
}

/// Runs the command `count` times over a client that has not connected yet: the first run
/// connects and authenticates (its whole time is `cold`; its sample is the time from the
/// connection being ready).
pub(crate) async fn command_stage(
    session: &Session,
    opts: &CommandOptions,
    started: Instant,
    ready: &ReadyAt,
    probe: &Probe,
) -> Result<Passed<Latency>, CommandFailure> {
    let db = session.client.database(&session.db);
    let fail = |e: DriverError| CommandFailure::Driver(DriverFailure::of(&e));
    let mut samples = Vec::new();
    let mut cold = Duration::ZERO;
    let mut ops = None;
    let mut detail = String::new();
    let count = opts.count.max(1);
    for i in 0..count {
        if i > 0 && !opts.interval.is_zero() {
            tokio::time::sleep(opts.interval).await;
        }
        let t = Instant::now();
        match opts.command {
            ProbeCommand::Ping => {
                session
                    .client
                    .database("admin")
                    .run_command(doc! {"ping": 1})
                    .await
                    .map_err(fail)?;
                detail = "ping ok".to_string();
            }
            ProbeCommand::ListCollections => {
                let mut names = db.list_collection_names().await.map_err(fail)?;
                names.sort();
                let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
                detail = format!(
                    "{} collections in {}{}{}",
                    names.len(),
                    session.db,
                    if names.is_empty() { "" } else { ": " },
                    shown.join(", ")
                );
            }
            ProbeCommand::Roundtrip => {
                let (o, note) = match roundtrip::once(session, &opts.collection, probe).await {
                    Ok(done) => done,
                    Err(roundtrip::Failure::Driver(e)) => return Err(fail(e)),
                    Err(roundtrip::Failure::NotDeleted(id)) => {
                        return Err(CommandFailure::Other(roundtrip::not_deleted(
                            &session.db,
                            &opts.collection,
                            id,
                        )))
                    }
                };
                detail = format!(
                    "{note} in {}.{} (insert {} ms, find {} ms, delete {} ms)",
                    session.db, opts.collection, o.insert_ms, o.find_ms, o.delete_ms
                );
                ops = Some(o);
            }
        }
        if i == 0 {
            cold = started.elapsed();
            let from = ready.get().map_or(t, |r| r.max(t));
            samples.push(from.elapsed());
        } else {
            samples.push(t.elapsed());
        }
    }
    let latency = summarize(cold, &samples, ops);
    if count > 1 {
        detail.push_str(&format!(
            "; {count} runs: cold {} ms, warm min {} / median {} / max {} ms",
            latency.cold_ms, latency.min_ms, latency.median_ms, latency.max_ms
        ));
    }
    let facts = crate::report::Facts {
        database: Some(session.db.clone()),
        median_ms: Some(latency.median_ms),
        ..Default::default()
    };
    Ok(Passed::new(latency, detail).with_facts(facts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::auth::tests::facts;
    use crate::probe::auth::FailureKind;

    #[test]
    fn unauthorized_names_the_role_needed() {
        let f = DriverFailure {
            kind: FailureKind::Command,
            code: Some(13),
            server_message: Some(
                "not authorized on test to execute command { insert: \"p\" }".into(),
            ),
            text: String::new(),
        };
        let d = classify_command(&f, "roundtrip", "test", "p", &facts(None));
        assert_eq!(d.kind, Kind::NotAuthorized);
        assert!(d.hint.contains("readWrite@test"), "{}", d.hint);
        let f = DriverFailure {
            kind: FailureKind::Command,
            code: Some(8000),
            server_message: Some(
                "user is not allowed to do action [listCollections] on [test.]".into(),
            ),
            text: String::new(),
        };
        let d = classify_command(&f, "list-collections", "test", "p", &facts(None));
        assert_eq!(d.kind, Kind::NotAuthorized);
        assert!(d.hint.contains("read@test"), "{}", d.hint);
    }

    #[test]
    fn latency_summary() {
        let l = summarize(
            Duration::from_millis(50),
            &[
                Duration::from_millis(3),
                Duration::from_millis(1),
                Duration::from_millis(2),
            ],
            None,
        );
        assert_eq!(
            (l.min_ms, l.median_ms, l.max_ms, l.cold_ms),
            (1.0, 2.0, 3.0, 50.0)
        );
    }
}
