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
use crate::diagnosis::{Diagnosis, Kind};
use crate::report::Operations;
use crate::timing::millis;

/// How long the cleanup may take past --timeout.
pub(crate) use crate::timing::CLEANUP_BUDGET;

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
