//! The roundtrip's probe document, and the promise that it never stays behind: once an insert
//! may have been applied, the document's `_id` is pending until a delete confirms it gone; a
//! stage cut by --timeout, a lost connection or a signal leaves the `_id` pending, and `cleanup`
//! deletes it with a budget of its own. A collection is dropped only when this run created it
//! and it is empty.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::error::Error as DriverError;
use mongodb::options::{CollectionOptions, WriteConcern};
use mongodb::Collection;

use super::auth::Session;
use crate::diagnosis::{Diagnosis, Kind, Stage};
use crate::report::{Leftover, Operations, Status};
use crate::runner::Runner;
use crate::timing::millis;

/// How long the cleanup may take past --timeout.

#[derive(Default)]
struct State {
    /// Probe documents whose insert may have been applied and whose delete is not confirmed.
    pending: Vec<ObjectId>,
    /// Whether the collection did not exist before this run's first insert.
    created: bool,
    checked: bool,
}

/// What the roundtrip leaves to clean up; shared with the pipeline so that it survives the
/// command stage being cancelled.
#[derive(Clone, Default)]
pub(crate) struct Probe(Arc<Mutex<State>>);

impl Probe {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.0.lock() {
            Ok(mut s) => f(&mut s),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub(crate) fn pending(&self) -> Vec<ObjectId> {
        self.with(|s| s.pending.clone())
    }
}

pub(crate) enum Failure {
    Driver(DriverError),
    /// Inserted, but the delete removed nothing.
    NotDeleted(ObjectId),
}

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Self {
        Failure::Driver(e)
    }
}

fn collection(session: &Session, name: &str) -> Collection<Document> {
    session
        .client
        .database(&session.db)
        .collection_with_options::<Document>(
            name,
            CollectionOptions::builder()
                .write_concern(WriteConcern::majority())
                .build(),
        )
}

/// Insert a tagged document, read it back, delete it.
pub(crate) async fn once(
    session: &Session,
    name: &str,
    probe: &Probe,
) -> Result<(Operations, String), Failure> {
    let coll = collection(session, name);
    if !probe.with(|s| s.checked) {
        // A user who may write but not list collections still gets a roundtrip: the
        // collection is then never dropped.
        let existing = session
            .client
            .database(&session.db)
            .list_collection_names()
            .filter(doc! {"name": name})
            .await;
        // Only a command the server refused (no permission to list) lets the roundtrip go on: a
        // refused authentication or a lost connection ends it here, so that no insert opens
        // another connection and authenticates again.
        if let Err(e) = &existing {
            if !matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Command(_)) {
                return Err(Failure::Driver(e.clone()));
            }
        }
        probe.with(|s| {
            s.created = existing.is_ok_and(|names| names.is_empty());
            s.checked = true;
        });
    }
    let id = ObjectId::new();
    let tag = format!("atlas-iam-{}", id.to_hex());
    // From here the insert may be applied even if no answer ever comes.
    probe.with(|s| s.pending.push(id));
    let t = Instant::now();
    coll.insert_one(
        doc! {"_id": id, "atlas_iam_probe": &tag, "at": mongodb::bson::DateTime::now()},
    )
    .await?;
    let insert = t.elapsed();
    let t = Instant::now();
    let found = coll.find_one(doc! {"_id": id}).await;
    let find = t.elapsed();
    // The delete runs even when the find failed.
    let t = Instant::now();
    let deleted = coll.delete_many(doc! {"_id": id}).await;
    let delete = t.elapsed();
    let deleted = deleted?;
    let mut note = "";
    if deleted.deleted_count == 0 {
        // Nothing deleted: a failure only if the document is still there.
        if coll.find_one(doc! {"_id": id}).await?.is_some() {
            return Err(Failure::NotDeleted(id));
        }
        note = " (it was already gone: another client removed it)";
    }
    probe.with(|s| s.pending.retain(|p| *p != id));
    let found = found?;
    let ok = found
        .as_ref()
        .and_then(|d| d.get_str("atlas_iam_probe").ok())
        == Some(tag.as_str());
    let ops = Operations {
        insert_ms: millis(insert),
        find_ms: millis(find),
        delete_ms: millis(delete),
    };
    let note = if ok {
        format!("inserted, read back and deleted{note}")
    } else {
        format!(
            "inserted but not read back (a secondary read or a filter on the collection?){note}"
        )
    };
    Ok((ops, note))
}

pub(crate) fn not_deleted(db: &str, coll: &str, id: ObjectId) -> Diagnosis {
    Diagnosis::new(
        Kind::CommandFailed,
        format!(
            "the probe document was inserted into {db}.{coll}, but the delete removed 0 \
             documents: _id ObjectId(\"{}\") may remain",
            id.to_hex()
        ),
        format!(
            "delete it by hand (db.{coll}.deleteOne({{_id: ObjectId(\"{}\")}})); a view, a \
             trigger or a filter on the collection may hide it from deletes",
            id.to_hex()
        ),
    )
}

/// What the cleanup achieved.
pub(crate) struct Cleanup {
    /// Probe documents that may remain (the delete failed or removed nothing).
    pub remaining: Vec<ObjectId>,
    /// Documents deleted by the cleanup (after a failure or a cut).
    pub deleted: u64,
    pub dropped_collection: bool,
    pub error: Option<String>,
}

/// Deletes every pending probe document, within `budget`, trying twice (the driver opens a
/// fresh connection when the old one was lost); drops the collection if this run created it and
/// it is empty. (Another client may insert between the count and the drop: MongoDB has no
/// drop-if-empty; a concurrent roundtrip then finds its document gone and says so.)
pub(crate) async fn cleanup(
    session: &Session,
    name: &str,
    probe: &Probe,
    budget: Duration,
) -> Cleanup {
    let coll = collection(session, name);
    let mut result = Cleanup {
        remaining: probe.pending(),
        deleted: 0,
        dropped_collection: false,
        error: None,
    };
    let work = async {
        for _attempt in 0..2 {
            for id in probe.pending() {
                // one plain filter per document: what every server understands
                let gone = match coll.delete_many(doc! {"_id": id}).await {
                    Ok(r) if r.deleted_count > 0 => {
                        result.deleted += r.deleted_count;
                        true
                    }
                    // nothing deleted: gone only if it is not there (the insert never applied)
                    Ok(_) => matches!(coll.find_one(doc! {"_id": id}).await, Ok(None)),
                    Err(e) => {
                        result.error = Some(e.to_string());
                        false
                    }
                };
                if gone {
                    probe.with(|s| s.pending.retain(|p| *p != id));
                }
            }
            if probe.pending().is_empty() {
                break;
            }
        }
        if probe.pending().is_empty() && probe.with(|s| s.created) {
            let empty = matches!(coll.estimated_document_count().await, Ok(0));
            if empty && coll.drop().await.is_ok() {
                result.dropped_collection = true;
            }
        }
    };
    if tokio::time::timeout(budget, work).await.is_err() {
        result.error = Some(format!(
            "the cleanup did not finish within {} s",
            budget.as_secs()
        ));
    }
    result.remaining = probe.pending();
    result
}
/// Says in the report what the cleanup did, and fails the command stage when a probe document
/// may remain.
pub(crate) fn report_cleanup(runner: &mut Runner<'_>, db: &str, coll: &str, done: Cleanup) {
    // The command stage, or the earlier stage whose failure stopped the run before it (the
    // driver's insert may have run speculatively all the same).
    let failed_at = match runner.report().stage(Stage::Command) {
        Some(s) if s.status != Status::Failed => None,
        Some(_) => Some(Stage::Command),
        None => runner.report().first_failure().map(|s| s.stage),
    };
    let failed = failed_at.is_some();
    if done.remaining.is_empty() {
        let mut notes = Vec::new();
        if failed && done.deleted > 0 {
            notes.push(format!(
                "the probe document was deleted after the failure ({} deleted)",
                done.deleted
            ));
        }
        if done.dropped_collection {
            notes.push(format!(
                "{db}.{coll} was created by this run and is empty again: dropped"
            ));
        }
        for n in notes {
            runner.note_last(n);
        }
        return;
    }
    let ids: Vec<String> = done.remaining.iter().map(|id| id.to_hex()).collect();
    runner.set_leftover(Leftover {
        database: db.to_string(),
        collection: coll.to_string(),
        ids: ids.clone(),
    });
    let why = done
        .error
        .map(|e| format!(": {e}"))
        .unwrap_or_else(|| ": the delete removed nothing".to_string());
    let text = format!(
        "a probe document may remain in {db}.{coll}, _id ObjectId(\"{}\"){why}",
        ids.join("\"), ObjectId(\"")
    );
    if let Some(stage) = failed_at {
        runner.warn_stage(stage, text);
    } else {
        runner.fail_stage(
            Stage::Command,
            Diagnosis::new(
                Kind::CommandFailed,
                text,
                format!("delete it by hand: db.{coll}.deleteMany({{atlas_iam_probe: {{$exists: true}}}})"),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CommandName;
    use crate::runner::{Passed, Silent};

    fn runner_failed_at(stage: Stage) -> Runner<'static> {
        let mut r = Runner::new(
            CommandName::Roundtrip,
            Duration::from_secs(5),
            crate::secret::Scrubber::new(),
            &Silent,
        );
        r.record(Stage::Config, Ok(Passed::new((), "")), 0);
        r.record(
            stage,
            Err(Diagnosis::new(Kind::TcpRefused, "refused", "check")),
            0,
        );
        r
    }

    #[test]
    fn a_document_left_by_speculative_work_is_reported_at_the_stage_that_failed() {
        let mut r = runner_failed_at(Stage::Tcp);
        let id = ObjectId::new();
        let done = Cleanup {
            remaining: vec![id],
            deleted: 0,
            dropped_collection: false,
            error: Some("connection lost".into()),
        };
        report_cleanup(&mut r, "test", "atlas_iam_probe", done);
        let tcp = r.report().stage(Stage::Tcp).expect("tcp");
        assert_eq!(
            tcp.status,
            Status::Failed,
            "the first failure still decides"
        );
        assert!(
            tcp.warnings.iter().any(|w| w.contains(&id.to_hex())),
            "{:?}",
            tcp.warnings
        );
        assert_eq!(
            r.report().leftover.as_ref().map(|l| l.ids.clone()),
            Some(vec![id.to_hex()])
        );

        // deleted after the failure: said where the run stopped
        let mut r = runner_failed_at(Stage::Identity);
        let done = Cleanup {
            remaining: vec![],
            deleted: 1,
            dropped_collection: false,
            error: None,
        };
        report_cleanup(&mut r, "test", "atlas_iam_probe", done);
        let identity = r.report().stage(Stage::Identity).expect("identity");
        assert!(
            identity.detail.contains("deleted after the failure"),
            "{}",
            identity.detail
        );
    }
}
