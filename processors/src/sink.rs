//! The sink: writes every result to the DynamoDB executions table (what the API reads)
//! and to the Parquet lake (what the explorer reads), each exactly once although the
//! results topic may hold a result twice (a redelivered execution) and the sink itself may
//! see a record twice (its own redelivery).
//!
//! DynamoDB decides which copy of a result is the one: the first copy written records its
//! topic position and later copies lose the conditional write. Only the winning copy's row
//! goes to the lake, and the lake's manifest skips offsets it already published. A failed
//! result asks for the day's `execution_alert` ([`crate::alerts`]) before it is written,
//! so a crash in between cannot drop the alert.

use crate::alerts::{self, AlertMemory};
use crate::lake::compact::{LakeWriter, Position, WriterConfig};
use crate::lake::{ExecutionRow, Lake};
use crate::router::decode;
use crate::{Services, with_retries};
use async_trait::async_trait;
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::ExecutionCompleted;
use std::sync::Arc;

/// The sink's handler.
pub struct Sink {
    svc: Services,
    lake: LakeWriter,
    alerts: AlertMemory,
}

/// Runs the sink until `cancel` fires.
///
/// # Errors
/// A fatal failure of the runner.
pub async fn run(
    svc: Services,
    lake: Lake,
    cancel: mfh_pipeline::CancellationToken,
) -> anyhow::Result<()> {
    let writer = LakeWriter::start(
        lake,
        WriterConfig {
            max_batch: svc.cfg.lake_max_batch,
            max_wait: svc.cfg.lake_max_wait,
            compact_min_files: svc.cfg.lake_compact_min_files,
            delete_grace: svc.cfg.lake_delete_grace,
        },
    );
    let (mut cfg, deps) = svc.runner("sink", "sink", svc.kafka.topics().completed().name);
    // Rows wait for a lake flush; let enough run at once to fill a flush.
    cfg.max_in_flight = svc.cfg.lake_max_batch.max(cfg.max_in_flight);
    cfg.max_buffered = cfg.max_buffered.max(cfg.max_in_flight * 2);
    mfh_pipeline::runner::run(
        cfg,
        deps,
        Arc::new(Sink {
            svc,
            lake: writer,
            alerts: AlertMemory::default(),
        }),
        cancel,
    )
    .await
}

impl Sink {
    /// The failure of `rec`, after marking a dead letter's offset handled: it is final,
    /// and the manifest's watermark must pass it. A fatal failure (registry or store
    /// away) is redelivered and must still reach the lake then, so its offset stays
    /// unmarked.
    async fn refuse(&self, rec: &Record, f: Failure) -> Failure {
        if matches!(f, Failure::DeadLetter { .. })
            && let Err(e) = self.lake.submit(Position::of(rec), None).await
        {
            return Failure::Fatal(e);
        }
        f
    }
}

#[async_trait]
impl Handler for Sink {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let fatal = |e: String| Failure::Fatal(e);
        let decoded: Result<ExecutionCompleted, Failure> = match &rec.payload {
            Some(p) => decode(&self.svc, p).await,
            None => Err(Failure::dead_letter("invalid_avro", "record has no value")),
        };
        let result = match decoded {
            Ok(r) => r,
            Err(f) => return Err(self.refuse(rec, f).await),
        };
        let alerts: Vec<_> = alerts::alerts_for(&result)
            .into_iter()
            .filter(|a| self.alerts.first(&result.account_id, &a.dedup_key))
            .collect();
        if !alerts.is_empty() {
            crate::billing_processor::request_notifications(&self.svc, &result.account_id, &alerts)
                .await?;
        }
        let store = &self.svc.store;
        let won = with_retries("write execution", || {
            store.put_completed(&result, rec.partition, rec.offset)
        })
        .await;
        let won = match won {
            Ok(won) => won,
            Err(e) => return Err(self.refuse(rec, crate::store_failure(&e)).await),
        };
        let row = won.then(|| ExecutionRow::new(result.clone()));
        self.lake
            .submit(Position::of(rec), row)
            .await
            .map_err(fatal)?;
        if won {
            self.svc
                .metrics
                .executions_completed
                .get_or_create(&mfh_pipeline::metrics::StatusLabels {
                    status: result.status.as_str().to_owned(),
                })
                .inc();
        }
        let stage = mfh_pipeline::metrics::Metrics::stage("sink");
        #[allow(clippy::cast_precision_loss)]
        let secs = (mfh_pipeline::now_millis() - result.requested_at).max(0) as f64 / 1000.0;
        self.svc.metrics.latency.get_or_create(&stage).observe(secs);
        Ok(())
    }

    fn revoked(&self, partitions: &[(String, i32)]) {
        self.lake.forget(partitions);
    }
}
