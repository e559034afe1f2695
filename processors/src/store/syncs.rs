//! Contact sync progress per connection: one version-checked item holding the run's
//! status, the CRM page cursor reached, counts, and a lease, so a crashed sync is taken
//! over from its last cursor by whichever process claims it next.

use super::{CONTACT_SYNCS, Item, Store, StoreError, attr_n, attr_s, nv, sv};
use serde::Serialize;

/// A connection's sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncState {
    /// The connection.
    pub connection_id: String,
    /// Its account.
    pub account_id: String,
    /// `requested`, `running`, `done` or `failed`.
    pub status: String,
    /// This run's id; a new request starts a new run.
    pub run_id: String,
    /// The CRM page token to read next; `None` at the start of a run.
    #[serde(skip)]
    pub cursor: Option<String>,
    /// Contacts synced in this run.
    pub synced: u64,
    /// The CRM's total, when it reports one.
    pub total: Option<u64>,
    /// When the run started (ms).
    pub started_at: Option<i64>,
    /// When the last run finished (ms).
    pub finished_at: Option<i64>,
    /// Why the last run failed.
    pub error: Option<String>,
    /// Who holds the run.
    #[serde(skip)]
    pub lease_owner: Option<String>,
    /// Until when (ms).
    #[serde(skip)]
    pub lease_until: i64,
    /// The item's version.
    #[serde(skip)]
    pub version: i64,
}

impl SyncState {
    /// A fresh run of `connection_id`.
    #[must_use]
    pub fn requested(account_id: &str, connection_id: &str, run_id: &str) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            account_id: account_id.to_owned(),
            status: "requested".into(),
            run_id: run_id.to_owned(),
            cursor: None,
            synced: 0,
            total: None,
            started_at: None,
            finished_at: None,
            error: None,
            lease_owner: None,
            lease_until: 0,
            version: 0,
        }
    }

    /// Whether a worker may take this run now.
    #[must_use]
    pub fn claimable(&self, now: i64) -> bool {
        match self.status.as_str() {
            "requested" => true,
            "running" => self.lease_until < now,
            _ => false,
        }
    }
}

fn to_state(i: &Item) -> SyncState {
    let n = |k: &str| attr_n(i, k);
    SyncState {
        connection_id: attr_s(i, "connection_id").unwrap_or_default(),
        account_id: attr_s(i, "account_id").unwrap_or_default(),
        status: attr_s(i, "status").unwrap_or_default(),
        run_id: attr_s(i, "run_id").unwrap_or_default(),
        cursor: attr_s(i, "cursor"),
        synced: n("synced").and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
        total: n("total").and_then(|v| u64::try_from(v).ok()),
        started_at: n("started_at"),
        finished_at: n("finished_at"),
        error: attr_s(i, "error"),
        lease_owner: attr_s(i, "lease_owner"),
        lease_until: n("lease_until").unwrap_or(0),
        version: n("version").unwrap_or(0),
    }
}

impl Store {
    /// The connection's sync, if it ever had one.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn sync_state(&self, connection_id: &str) -> Result<Option<SyncState>, StoreError> {
        let table = self.table(CONTACT_SYNCS);
        Ok(self
            .client
            .get_item()
            .table_name(&table)
            .key("connection_id", sv(connection_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?
            .item
            .as_ref()
            .map(to_state))
    }

    /// Writes `state` if the stored item is still at `state.version` (or absent for
    /// version 0), bumping the version; `false` when another writer got there first.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn save_sync(&self, state: &mut SyncState) -> Result<bool, StoreError> {
        let table = self.table(CONTACT_SYNCS);
        let mut req = self
            .client
            .put_item()
            .table_name(&table)
            .item("connection_id", sv(&state.connection_id))
            .item("account_id", sv(&state.account_id))
            .item("status", sv(&state.status))
            .item("run_id", sv(&state.run_id))
            .item(
                "synced",
                nv(i64::try_from(state.synced).unwrap_or(i64::MAX)),
            )
            .item("lease_until", nv(state.lease_until))
            .item("version", nv(state.version + 1));
        let opt_s = |k: &'static str, v: &Option<String>| v.as_ref().map(|v| (k, sv(v)));
        let opt_n = |k: &'static str, v: Option<i64>| v.map(|v| (k, nv(v)));
        for (k, v) in [
            opt_s("cursor", &state.cursor),
            opt_s("error", &state.error),
            opt_s("lease_owner", &state.lease_owner),
            opt_n("total", state.total.and_then(|t| i64::try_from(t).ok())),
            opt_n("started_at", state.started_at),
            opt_n("finished_at", state.finished_at),
        ]
        .into_iter()
        .flatten()
        {
            req = req.item(k, v);
        }
        req = if state.version == 0 {
            req.condition_expression("attribute_not_exists(connection_id)")
        } else {
            req.condition_expression("version = :v")
                .expression_attribute_values(":v", nv(state.version))
        };
        match req.send().await {
            Ok(_) => {
                state.version += 1;
                Ok(true)
            }
            Err(e) if super::executions::is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }

    /// Asks for a new full sync of the connection unless one is running under a live
    /// lease; returns the state after the request.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn request_sync(
        &self,
        account_id: &str,
        connection_id: &str,
        now: i64,
    ) -> Result<SyncState, StoreError> {
        for _ in 0..8 {
            let current = self.sync_state(connection_id).await?;
            if let Some(c) = &current
                && c.status == "running"
                && c.lease_until >= now
            {
                return Ok(c.clone());
            }
            let mut next = SyncState::requested(
                account_id,
                connection_id,
                &uuid::Uuid::new_v4().simple().to_string(),
            );
            next.version = current.as_ref().map_or(0, |c| c.version);
            next.finished_at = current.and_then(|c| c.finished_at);
            if self.save_sync(&mut next).await? {
                return Ok(next);
            }
        }
        Err(super::corrupt(
            CONTACT_SYNCS,
            format!("{connection_id}: sync state is being written concurrently"),
        ))
    }
}
