//! The contact sink: writes every CRM contact snapshot to the lake's `contacts` table,
//! exactly once although the snapshots topic may deliver a record twice.
//!
//! Unlike the results sink there is no DynamoDB copy to decide a winner: the table is a log
//! of states (the explorer and compaction pick each contact's latest), so every record's
//! row is published, and the manifest's offset skipping alone stops a redelivered record
//! from producing a second row.

use crate::Services;
use crate::lake::compact::{LakeWriter, Position, WriterConfig};
use crate::lake::{CONTACTS_TABLE, ContactRow, Lake};
use crate::router::decode;
use async_trait::async_trait;
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::ContactSnapshot;
use std::sync::Arc;

/// The contact sink's handler.
pub struct ContactSink {
    svc: Services,
    lake: LakeWriter<ContactRow>,
}

/// Runs the contact sink until `cancel` fires. `lake` may be a view of any table of the
/// lake; the sink writes to its `contacts` table.
///
/// # Errors
/// A fatal failure of the runner.
pub async fn run(
    svc: Services,
    lake: Lake,
    cancel: mfh_pipeline::CancellationToken,
) -> anyhow::Result<()> {
    let writer = LakeWriter::start(
        lake.table(CONTACTS_TABLE),
        WriterConfig {
            max_batch: svc.cfg.lake_max_batch,
            max_wait: svc.cfg.lake_max_wait,
            compact_min_files: svc.cfg.lake_compact_min_files,
            delete_grace: svc.cfg.lake_delete_grace,
        },
    );
    let (mut cfg, deps) = svc.runner(
        "contact_sink",
        "contact-sink",
        svc.kafka.topics().contact_snapshots().name,
    );
    // Rows wait for a lake flush; let enough run at once to fill a flush.
    cfg.max_in_flight = svc.cfg.lake_max_batch.max(cfg.max_in_flight);
    cfg.max_buffered = cfg.max_buffered.max(cfg.max_in_flight * 2);
    mfh_pipeline::runner::run(
        cfg,
        deps,
        Arc::new(ContactSink { svc, lake: writer }),
        cancel,
    )
    .await
}

#[async_trait]
impl Handler for ContactSink {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let fatal = |e: String| Failure::Fatal(e);
        let decoded: Result<ContactSnapshot, Failure> = match &rec.payload {
            Some(p) => decode(&self.svc, p).await,
            None => {
                // A compaction tombstone carries no state (deletions are `deleted`
                // snapshots); only its offset needs marking, so the watermark can pass it.
                self.lake
                    .submit(Position::of(rec), None)
                    .await
                    .map_err(fatal)?;
                return Ok(());
            }
        };
        let snapshot = match decoded {
            Ok(s) => s,
            // Only a dead letter is handled for good: a fatal failure (registry away) must
            // leave the offset unhandled, or its redelivery would be skipped.
            Err(f @ Failure::Fatal(_)) => return Err(f),
            Err(f) => {
                // Mark the offset handled so the manifest's watermark can pass it.
                self.lake
                    .submit(Position::of(rec), None)
                    .await
                    .map_err(fatal)?;
                return Err(f);
            }
        };
        let row = ContactRow::new(snapshot, rec.partition, rec.offset);
        self.lake
            .submit(Position::of(rec), Some(row))
            .await
            .map_err(fatal)
    }

    fn revoked(&self, partitions: &[(String, i32)]) {
        self.lake.forget(partitions);
    }
}
