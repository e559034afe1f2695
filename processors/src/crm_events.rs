//! The CRM event processor: consumes verified `CrmEvent`s (keyed by account and contact,
//! so one contact's events are handled in order) and
//! - keeps the lake current: a contact event re-reads the contact through the API (the
//!   payload is only a hint; unsigned vendors' payloads could be forged by anyone holding
//!   the URL) and produces its `ContactSnapshot`, or a deletion marker;
//! - fires triggers: each of the account's triggers the event matches becomes an
//!   `ExecutionRequested` on the contact, with an id derived from the event and trigger,
//!   so a redelivered event starts nothing twice.

use crate::connectors::CrmError;
use crate::contact_sync::{SyncError, produce_snapshots, snapshot, tombstone};
use crate::router::decode;
use crate::{Services, with_retries};
use async_trait::async_trait;
use mfh_pipeline::runner::{Failure, Handler, Record};
use mfh_schemas::{CrmEvent, CrmEventKind, ExecutionRequested};
use std::sync::Arc;

/// The processor's handler.
pub struct CrmEvents {
    svc: Services,
}

/// Runs the processor until `cancel` fires.
///
/// # Errors
/// A fatal failure of the runner.
pub async fn run(svc: Services, cancel: mfh_pipeline::CancellationToken) -> anyhow::Result<()> {
    let (cfg, deps) = svc.runner(
        "crm_events",
        "crm-events",
        svc.kafka.topics().crm_events().name,
    );
    mfh_pipeline::runner::run(cfg, deps, Arc::new(CrmEvents { svc }), cancel).await
}

/// The execution id of `trigger_id` fired by `event_id`.
#[must_use]
pub fn triggered_execution_id(event_id: &str, trigger_id: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("{event_id}/trigger/{trigger_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid().to_string()
}

fn produce_failure(e: SyncError) -> Failure {
    Failure::Fatal(e.to_string())
}

impl CrmEvents {
    async fn refresh_contact(&self, e: &CrmEvent) -> Result<(), Failure> {
        let store = &self.svc.store;
        let conn = with_retries("read connection", || {
            store.account_connection(&e.account_id, &e.connection_id)
        })
        .await
        .map_err(|err| crate::store_failure(&err))?
        .ok_or_else(|| {
            Failure::dead_letter(
                "unknown_connection",
                format!(
                    "connection {} of account {} is gone",
                    e.connection_id, e.account_id
                ),
            )
        })?;
        let now = mfh_pipeline::now_millis();
        let snap = if e.kind == CrmEventKind::ContactDeleted {
            tombstone(&conn, &e.contact_id, "webhook", now)
        } else {
            let crm = self
                .svc
                .connectors
                .resolve(&e.account_id, &e.connection_id)
                .await
                .map_err(|err| Failure::dead_letter(err.kind(), err.to_string()))?;
            match crm.get_contact(&e.contact_id).await {
                Ok(c) => snapshot(&conn, &c, "webhook", now),
                Err(CrmError::NotFound { .. }) => tombstone(&conn, &e.contact_id, "webhook", now),
                // The next full sync heals the lake; the partition must keep flowing.
                Err(err) => return Err(Failure::dead_letter(err.kind(), err.to_string())),
            }
        };
        produce_snapshots(&self.svc, &[snap])
            .await
            .map_err(produce_failure)
    }

    async fn fire_triggers(&self, e: &CrmEvent) -> Result<(), Failure> {
        let store = &self.svc.store;
        let triggers = with_retries("read triggers", || store.triggers_of(&e.account_id))
            .await
            .map_err(|err| crate::store_failure(&err))?;
        let topic = self.svc.kafka.topics().requested();
        for t in triggers.iter().filter(|t| t.matches(e)) {
            let req = ExecutionRequested {
                execution_id: triggered_execution_id(&e.event_id, &t.trigger_id),
                account_id: e.account_id.clone(),
                contact_id: e.contact_id.clone(),
                connection_id: e.connection_id.clone(),
                helper: t.helper.clone(),
                config_json: t.config_json.clone(),
                input_json: Some(
                    serde_json::json!({
                        "trigger_id": t.trigger_id,
                        "event": e.kind.as_str(),
                        "tag_id": e.tag_id,
                        "tag_name": e.tag_name,
                        "vendor_event_type": e.vendor_event_type,
                    })
                    .to_string(),
                ),
                requested_at: mfh_pipeline::now_millis(),
                source: "trigger".into(),
                depth: 0,
                parent_execution_id: None,
                helper_id: None,
            };
            self.svc.produce(&topic, &req.key(), &req).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for CrmEvents {
    async fn handle(&self, rec: &Record) -> Result<(), Failure> {
        let Some(payload) = &rec.payload else {
            return Err(Failure::dead_letter("invalid_avro", "record has no value"));
        };
        let e: CrmEvent = decode(&self.svc, payload).await?;
        // Triggers first: a contact the CRM cannot serve right now dead-letters its
        // snapshot, and that must not cost the trigger (redelivery re-fires with the
        // same execution ids, which run once).
        if !e.contact_id.is_empty() {
            self.fire_triggers(&e).await?;
        }
        if e.kind.touches_contact() && !e.contact_id.is_empty() {
            self.refresh_contact(&e).await?;
        }
        Ok(())
    }
}
