//! Full contact sync: pages through a connection's contacts in the CRM and produces a
//! `ContactSnapshot` per contact to the compacted snapshots topic, which the contact sink
//! turns into the lake's `contacts` table.
//!
//! Progress (the CRM's page cursor and counts) is saved after each page's records are
//! acknowledged by the broker, under a lease that the running process renews. A process
//! that dies mid-run leaves the lease to expire; the next claimant continues from the
//! saved cursor instead of starting over. A page in flight at the crash is produced again,
//! which the compacted topic and the latest-state table absorb.
//!
//! [`run`] is the scheduler: it claims requested runs, runs whose lease expired, and, per
//! `crm.sync_interval`, connections whose last run is that old.

use crate::Services;
use crate::connectors::registry::Connection;
use crate::connectors::{ContactQuery, CrmConnector, CrmError, CrmRetry, with_crm_retries};
use crate::helpers::Contact;
use crate::store::StoreError;
use crate::store::syncs::SyncState;
use mfh_schemas::ContactSnapshot;
use rdkafka::producer::FutureRecord;
use std::sync::Arc;
use std::time::Duration;

/// How long a claimed run stays ours without renewal.
const LEASE_MS: i64 = 60_000;

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The CRM failed.
    #[error("CRM: {0}")]
    Crm(#[from] CrmError),
    /// The sync state store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The broker refused a snapshot.
    #[error("produce: {0}")]
    Produce(String),
    /// Another process took the run over (our lease had expired).
    #[error("the sync was taken over by another process")]
    Lost,
}

/// The snapshot of a contact as read now.
#[must_use]
pub fn snapshot(conn: &Connection, c: &Contact, source: &str, now: i64) -> ContactSnapshot {
    let f = |k: &str| c.field(k).map(str::to_owned);
    ContactSnapshot {
        account_id: conn.account_id.clone(),
        connection_id: conn.connection_id.clone(),
        platform: conn.platform.as_str().to_owned(),
        contact_id: c.id.clone(),
        deleted: false,
        email: f("email"),
        first_name: f("first_name"),
        last_name: f("last_name"),
        fields_json: serde_json::to_string(&c.fields).unwrap_or_else(|_| "{}".into()),
        tags_json: serde_json::to_string(&c.tags).unwrap_or_else(|_| "{}".into()),
        owner_id: c.owner_id.clone(),
        crm_updated_at: c.updated_at,
        observed_at: now,
        source: source.to_owned(),
    }
}

/// The deletion marker of a contact.
#[must_use]
pub fn tombstone(conn: &Connection, contact_id: &str, source: &str, now: i64) -> ContactSnapshot {
    ContactSnapshot {
        deleted: true,
        fields_json: "{}".into(),
        tags_json: "{}".into(),
        ..snapshot(
            conn,
            &Contact {
                id: contact_id.to_owned(),
                ..Contact::default()
            },
            source,
            now,
        )
    }
}

/// Produces snapshots and waits for every acknowledgement.
///
/// # Errors
/// [`SyncError::Produce`].
pub async fn produce_snapshots(svc: &Services, snaps: &[ContactSnapshot]) -> Result<(), SyncError> {
    let topic = svc.kafka.topics().contact_snapshots();
    let subject = topic.value_subject();
    let mut encoded = Vec::with_capacity(snaps.len());
    for s in snaps {
        let bytes = svc
            .avro
            .encode(&subject, s)
            .await
            .map_err(|e| SyncError::Produce(mfh_pipeline::report(&e)))?;
        encoded.push((s.key(), bytes));
    }
    let sends = encoded.iter().map(|(k, b)| {
        svc.producer.send(
            FutureRecord::to(&topic.name).key(k).payload(b),
            Duration::from_secs(30),
        )
    });
    for r in futures::future::join_all(sends).await {
        r.map_err(|(e, _)| SyncError::Produce(format!("{}: {e}", topic.name)))?;
        svc.metrics.produced(&topic.name);
    }
    Ok(())
}

/// Runs (or continues) the claimed sync `state` of `conn` to its end, calling `progress`
/// after each page with (synced, total).
///
/// # Errors
/// [`SyncError`]; the state is saved as `failed` with the reason first, except when the
/// run was lost to another process.
pub async fn sync_connection(
    svc: &Services,
    conn: &Connection,
    mut state: SyncState,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<SyncState, SyncError> {
    let crm = svc
        .connectors
        .resolve(&conn.account_id, &conn.connection_id)
        .await;
    let result = match crm {
        Ok(crm) => pages(svc, conn, crm, &mut state, progress).await,
        Err(e) => Err(SyncError::Crm(e)),
    };
    match result {
        Ok(()) => Ok(state),
        Err(SyncError::Lost) => Err(SyncError::Lost),
        Err(e) => {
            state.status = "failed".into();
            state.error = Some(e.to_string());
            state.finished_at = Some(mfh_pipeline::now_millis());
            state.lease_owner = None;
            let _ = svc.store.save_sync(&mut state).await;
            Err(e)
        }
    }
}

async fn pages(
    svc: &Services,
    conn: &Connection,
    crm: Arc<dyn CrmConnector>,
    state: &mut SyncState,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<(), SyncError> {
    loop {
        let page = page_renewing_lease(svc, &*crm, state).await?;
        let now = mfh_pipeline::now_millis();
        let snaps: Vec<ContactSnapshot> = page
            .contacts
            .iter()
            .map(|c| snapshot(conn, c, "full_sync", now))
            .collect();
        produce_snapshots(svc, &snaps).await?;
        state.synced += snaps.len() as u64;
        state.total = page.total.or(state.total);
        state.cursor.clone_from(&page.next);
        state.lease_until = mfh_pipeline::now_millis() + LEASE_MS;
        if page.next.is_none() {
            state.status = "done".into();
            state.finished_at = Some(mfh_pipeline::now_millis());
            state.lease_owner = None;
            state.error = None;
        }
        if !svc.store.save_sync(state).await? {
            return Err(SyncError::Lost);
        }
        progress(state.synced, state.total);
        if page.next.is_none() {
            return Ok(());
        }
    }
}

/// The next page, waiting out rate limits and outages; before each wait the lease is
/// extended past it, so a `Retry-After` longer than the lease cannot hand the run to a
/// second process while this one sleeps.
async fn page_renewing_lease(
    svc: &Services,
    crm: &dyn CrmConnector,
    state: &mut SyncState,
) -> Result<crate::connectors::ContactPage, SyncError> {
    let cursor = state.cursor.clone();
    let lost = std::sync::atomic::AtomicBool::new(false);
    let held = tokio::sync::Mutex::new(state);
    let (held_ref, lost_ref) = (&held, &lost);
    let renew = move |_: bool, wait: Duration| -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut s = held_ref.lock().await;
            let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4);
            s.lease_until = mfh_pipeline::now_millis() + wait_ms + LEASE_MS;
            match svc.store.save_sync(&mut s).await {
                Ok(true) => {}
                Ok(false) => lost_ref.store(true, std::sync::atomic::Ordering::Relaxed),
                Err(e) => tracing::warn!(
                    connection = %s.connection_id,
                    error = %mfh_pipeline::report(&e),
                    "Could not renew a sync's lease before a wait."
                ),
            }
        })
    };
    let page = with_crm_retries(SYNC_RETRY, &renew, || {
        crm.search_contacts(&ContactQuery::All, cursor.as_deref())
    })
    .await;
    if lost.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(SyncError::Lost);
    }
    Ok(page?)
}

/// A long sync waits out rate limits and outages (the CRM's `Retry-After`, else
/// backoff) rather than failing.
const SYNC_RETRY: CrmRetry = CrmRetry {
    rate_limited_attempts: 8,
    unavailable_attempts: 8,
    max_wait: Duration::from_secs(60),
};

/// Claims the connection's run if it is claimable now (or due per `interval`).
///
/// # Errors
/// [`StoreError`].
pub async fn claim(
    svc: &Services,
    conn: &Connection,
    owner: &str,
    interval: Duration,
) -> Result<Option<SyncState>, StoreError> {
    let now = mfh_pipeline::now_millis();
    let current = svc.store.sync_state(&conn.connection_id).await?;
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let mut state = match current {
        Some(s) if s.claimable(now) => s,
        Some(s)
            if interval_ms > 0
                && s.status != "running"
                && s.finished_at.is_some_and(|f| f + interval_ms <= now) =>
        {
            SyncState {
                status: "requested".into(),
                run_id: uuid::Uuid::new_v4().simple().to_string(),
                cursor: None,
                synced: 0,
                total: None,
                ..s
            }
        }
        // A connection never synced is due at once when scheduling is on.
        None if interval_ms > 0 => SyncState::requested(
            &conn.account_id,
            &conn.connection_id,
            &uuid::Uuid::new_v4().simple().to_string(),
        ),
        _ => return Ok(None),
    };
    if state.status == "requested" {
        state.started_at = Some(now);
        state.synced = 0;
        state.cursor = None;
    }
    state.status = "running".into();
    state.lease_owner = Some(owner.to_owned());
    state.lease_until = now + LEASE_MS;
    Ok(svc.store.save_sync(&mut state).await?.then_some(state))
}

/// The sync scheduler: every `poll`, claims and runs due syncs one at a time, until
/// `cancel` fires.
///
/// # Errors
/// Never returns an error; failures of single runs are recorded in their state.
pub async fn run(
    svc: Services,
    interval: Duration,
    poll: Duration,
    cancel: mfh_pipeline::CancellationToken,
) -> anyhow::Result<()> {
    let owner = format!("sync-{}", uuid::Uuid::new_v4().simple());
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(poll) => {}
        }
        let conns = match svc.store.all_connections().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = ?e, "Cannot list connections for sync.");
                continue;
            }
        };
        for conn in conns.into_iter().filter(|c| c.status == "active") {
            if cancel.is_cancelled() {
                return Ok(());
            }
            match claim(&svc, &conn, &owner, interval).await {
                Ok(Some(state)) => {
                    let id = conn.connection_id.clone();
                    match sync_connection(&svc, &conn, state, &|_, _| {}).await {
                        Ok(s) => {
                            tracing::info!(connection = %id, synced = s.synced, "Contact sync done.")
                        }
                        Err(e) => {
                            tracing::warn!(connection = %id, error = ?e, "Contact sync failed.")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = ?e, "Cannot claim a sync."),
            }
        }
    }
}
