//! CRM connections and what hangs off them: sealed credentials (version-checked, so two
//! processes refreshing one token keep one pair), webhook tokens (only their hashes),
//! one-time OAuth states, the apply journal that keeps a redelivered execution from
//! writing to a vendor CRM twice, webhook event ids already received, and the sync state.

use super::{
    CONNECTIONS, CRM_APPLIES, CRM_EVENT_IDS, GSI_BY_ACCOUNT, GSI_BY_VENDOR_ACCOUNT, Item,
    OAUTH_STATES, Store, StoreError, all_pages, attr_n, attr_s, corrupt, nv, sv,
};
use crate::connectors::config::Platform;
use crate::connectors::registry::Connection;
use crate::connectors::secrets::Cipher;
use crate::connectors::vendor::{CredentialStore, Credentials};
use crate::connectors::{ApplyReport, CrmError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

fn context(account: &str, connection: &str) -> String {
    format!("{account}/{connection}")
}

/// A connection's webhook token, as the API shows it once; only its hash is stored.
#[must_use]
pub fn hash_token(token: &str) -> String {
    crate::crm_webhooks::sha256_hex(token.as_bytes())
}

fn to_connection(item: &Item) -> Result<Connection, StoreError> {
    let t = CONNECTIONS;
    let req = |k: &str| attr_s(item, k).ok_or_else(|| corrupt(t, format!("missing {k}")));
    let platform = req("platform")?;
    Ok(Connection {
        account_id: req("account_id")?,
        connection_id: req("connection_id")?,
        platform: Platform::parse(&platform)
            .ok_or_else(|| corrupt(t, format!("unknown platform {platform}")))?,
        name: attr_s(item, "name").unwrap_or_default(),
        settings: attr_s(item, "settings")
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        status: req("status")?,
        created_at: attr_n(item, "created_at").unwrap_or(0),
    })
}

/// A connection as a webhook delivery sees it.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The connection.
    pub connection: Connection,
    /// The hash of its webhook token (unsigned vendors' deliveries carry the token).
    pub token_hash: Option<String>,
    /// The vendor account it reaches, once known (app-level webhook vendors).
    pub vendor_account: Option<String>,
}

impl Store {
    /// Stores a new connection with its sealed credentials (if any yet) and the hash of
    /// its webhook token.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn create_connection(
        &self,
        conn: &Connection,
        creds: Option<&Credentials>,
        webhook_token_hash: &str,
        cipher: &Cipher,
    ) -> Result<(), StoreError> {
        let table = self.table(CONNECTIONS);
        let mut req = self
            .client
            .put_item()
            .table_name(&table)
            .item("connection_id", sv(&conn.connection_id))
            .item("account_id", sv(&conn.account_id))
            .item("created_at_s", sv(format!("{:015}", conn.created_at)))
            .item("created_at", nv(conn.created_at))
            .item("platform", sv(conn.platform.as_str()))
            .item("name", sv(&conn.name))
            .item(
                "settings",
                sv(serde_json::Value::Object(conn.settings.clone()).to_string()),
            )
            .item("status", sv(&conn.status))
            .item("webhook_token_hash", sv(webhook_token_hash))
            .item("creds_version", nv(1))
            .condition_expression("attribute_not_exists(connection_id)");
        if let Some(c) = creds {
            req = req.item("creds", sv(seal(cipher, conn, c)?));
        }
        req.send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }

    async fn connection_item(&self, connection_id: &str) -> Result<Option<Item>, StoreError> {
        let table = self.table(CONNECTIONS);
        Ok(self
            .client
            .get_item()
            .table_name(&table)
            .key("connection_id", sv(connection_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?
            .item)
    }

    /// The connection `connection_id`, whichever account owns it (webhooks arrive with
    /// only the id; callers check the account where one is known).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        self.connection_item(connection_id)
            .await?
            .map(|i| to_connection(&i))
            .transpose()
    }

    /// The connection `connection_id` if `account_id` owns it.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn account_connection(
        &self,
        account_id: &str,
        connection_id: &str,
    ) -> Result<Option<Connection>, StoreError> {
        Ok(self
            .connection(connection_id)
            .await?
            .filter(|c| c.account_id == account_id))
    }

    /// The connection with what authenticates and routes its webhooks, in one read.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn webhook_target(
        &self,
        connection_id: &str,
    ) -> Result<Option<WebhookTarget>, StoreError> {
        self.connection_item(connection_id)
            .await?
            .map(|i| {
                let prefix = |c: &Connection| format!("{}#", c.platform.as_str());
                let connection = to_connection(&i)?;
                let vendor_account = attr_s(&i, "vendor_account")
                    .and_then(|v| v.strip_prefix(&prefix(&connection)).map(str::to_owned));
                Ok(WebhookTarget {
                    token_hash: attr_s(&i, "webhook_token_hash"),
                    vendor_account,
                    connection,
                })
            })
            .transpose()
    }

    /// The account's connections, newest first.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn connections_of(&self, account_id: &str) -> Result<Vec<Connection>, StoreError> {
        let table = self.table(CONNECTIONS);
        let q = self
            .client
            .query()
            .table_name(&table)
            .index_name(GSI_BY_ACCOUNT)
            .key_condition_expression("account_id = :a")
            .expression_attribute_values(":a", sv(account_id))
            .scan_index_forward(false);
        let (items, _) = all_pages(&table, q, false).await?;
        items.iter().map(to_connection).collect()
    }

    /// Every connection of every account (the sync scheduler's scan).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn all_connections(&self) -> Result<Vec<Connection>, StoreError> {
        let table = self.table(CONNECTIONS);
        let (mut out, mut start) = (Vec::new(), None);
        loop {
            let page = self
                .client
                .scan()
                .table_name(&table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Scan", &table, e))?;
            for i in page.items.unwrap_or_default() {
                out.push(to_connection(&i)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Records which vendor account (GoHighLevel location, HubSpot portal) the
    /// connection reaches, so app-level webhook events for it find the connection.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_vendor_account(
        &self,
        connection_id: &str,
        platform: Platform,
        vendor_account: &str,
    ) -> Result<(), StoreError> {
        let key = vendor_key(platform, vendor_account);
        self.set_connection_attribute(connection_id, "vendor_account", &key)
            .await
    }

    /// The connections that reach `vendor_account` on `platform`, oldest first; more
    /// than one when several mfh accounts connected the same location or portal (each
    /// was authorised by it, so each receives its events).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn connections_at(
        &self,
        platform: Platform,
        vendor_account: &str,
    ) -> Result<Vec<Connection>, StoreError> {
        let table = self.table(CONNECTIONS);
        let q = self
            .client
            .query()
            .table_name(&table)
            .index_name(GSI_BY_VENDOR_ACCOUNT)
            .key_condition_expression("vendor_account = :v")
            .expression_attribute_values(":v", sv(vendor_key(platform, vendor_account)));
        let (items, _) = all_pages(&table, q, false).await?;
        items.iter().map(to_connection).collect()
    }

    /// Replaces the connection's settings (GoHighLevel's `location_id` becomes the
    /// location its OAuth token was issued for).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_connection_settings(
        &self,
        connection_id: &str,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError> {
        let json = serde_json::Value::Object(settings.clone()).to_string();
        self.set_connection_attribute(connection_id, "settings", &json)
            .await
    }

    /// Deletes the account's connection; `false` when it has no such connection.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn delete_connection(
        &self,
        account_id: &str,
        connection_id: &str,
    ) -> Result<bool, StoreError> {
        let table = self.table(CONNECTIONS);
        match self
            .client
            .delete_item()
            .table_name(&table)
            .key("connection_id", sv(connection_id))
            .condition_expression("account_id = :a")
            .expression_attribute_values(":a", sv(account_id))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if super::executions::is_conditional_delete_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("DeleteItem", &table, e)),
        }
    }

    /// Sets the connection's status (`active`, `error`, …).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_connection_status(
        &self,
        connection_id: &str,
        status: &str,
    ) -> Result<(), StoreError> {
        self.set_connection_attribute(connection_id, "status", status)
            .await
    }

    /// Sets one attribute of an existing connection.
    async fn set_connection_attribute(
        &self,
        connection_id: &str,
        name: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let table = self.table(CONNECTIONS);
        self.client
            .update_item()
            .table_name(&table)
            .key("connection_id", sv(connection_id))
            .update_expression("SET #a = :v")
            .condition_expression("attribute_exists(connection_id)")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":v", sv(value))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("UpdateItem", &table, e))?;
        Ok(())
    }

    /// The connection's credentials and their version; `None` before it has any.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the credentials do not decrypt.
    pub async fn connection_credentials(
        &self,
        conn: &Connection,
        cipher: &Cipher,
    ) -> Result<Option<(Credentials, i64)>, StoreError> {
        let Some(item) = self.connection_item(&conn.connection_id).await? else {
            return Ok(None);
        };
        let Some(sealed) = attr_s(&item, "creds") else {
            return Ok(None);
        };
        let plain = cipher
            .open(&sealed, &context(&conn.account_id, &conn.connection_id))
            .map_err(|e| corrupt(CONNECTIONS, e.to_string()))?;
        let creds = serde_json::from_slice(&plain)
            .map_err(|e| corrupt(CONNECTIONS, format!("credentials: {e}")))?;
        Ok(Some((creds, attr_n(&item, "creds_version").unwrap_or(1))))
    }

    /// Replaces the credentials if they are still at `version` (`None`: whatever is
    /// there, as when OAuth completes); `false` when another writer won.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_connection_credentials(
        &self,
        conn: &Connection,
        creds: &Credentials,
        version: Option<i64>,
        cipher: &Cipher,
    ) -> Result<bool, StoreError> {
        let table = self.table(CONNECTIONS);
        let mut req = self
            .client
            .update_item()
            .table_name(&table)
            .key("connection_id", sv(&conn.connection_id))
            .update_expression("SET creds = :c, creds_version = creds_version + :one")
            .expression_attribute_values(":c", sv(seal(cipher, conn, creds)?))
            .expression_attribute_values(":one", nv(1))
            .expression_attribute_values(":a", sv(&conn.account_id));
        req = match version {
            Some(v) => req
                .condition_expression("account_id = :a AND creds_version = :v")
                .expression_attribute_values(":v", nv(v)),
            None => req.condition_expression("account_id = :a"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if super::executions::is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// Remembers an OAuth `state` for `connection_id` until `expires_at` (ms).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_oauth_state(
        &self,
        state: &str,
        account_id: &str,
        connection_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let table = self.table(OAUTH_STATES);
        self.client
            .put_item()
            .table_name(&table)
            .item("state", sv(hash_token(state)))
            .item("account_id", sv(account_id))
            .item("connection_id", sv(connection_id))
            .item("expires_at", nv(expires_at))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }

    /// Consumes an OAuth `state`: the first call gets (account, connection, expiry), every
    /// later one `None`, so a callback cannot be replayed.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn take_oauth_state(
        &self,
        state: &str,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        let table = self.table(OAUTH_STATES);
        let out = match self
            .client
            .delete_item()
            .table_name(&table)
            .key("state", sv(hash_token(state)))
            .condition_expression("attribute_exists(#s)")
            .expression_attribute_names("#s", "state")
            .return_values(ReturnValue::AllOld)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if super::executions::is_conditional_delete_failure(&e) => return Ok(None),
            Err(e) => return Err(StoreError::dynamo("DeleteItem", &table, e)),
        };
        Ok(out.attributes.and_then(|a| {
            Some((
                attr_s(&a, "account_id")?,
                attr_s(&a, "connection_id")?,
                attr_n(&a, "expires_at")?,
            ))
        }))
    }

    /// What applying `execution_id`'s changes to `contact_id` did, if it already ran.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn recorded_apply(
        &self,
        connection_id: &str,
        execution_id: &str,
        contact_id: &str,
    ) -> Result<Option<ApplyReport>, StoreError> {
        let table = self.table(CRM_APPLIES);
        let item = self
            .client
            .get_item()
            .table_name(&table)
            .key("execution_id", sv(execution_id))
            .key("target", sv(format!("{connection_id}/{contact_id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?
            .item;
        item.and_then(|i| attr_s(&i, "report"))
            .map(|r| {
                serde_json::from_str::<StoredReport>(&r)
                    .map(StoredReport::into_report)
                    .map_err(|e| corrupt(CRM_APPLIES, e.to_string()))
            })
            .transpose()
    }

    /// Records what applying `execution_id`'s changes to `contact_id` did.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn record_apply(
        &self,
        connection_id: &str,
        execution_id: &str,
        contact_id: &str,
        report: &ApplyReport,
    ) -> Result<(), StoreError> {
        let table = self.table(CRM_APPLIES);
        let json = serde_json::to_string(&StoredReport::from_report(report))
            .map_err(|e| corrupt(CRM_APPLIES, e.to_string()))?;
        self.client
            .put_item()
            .table_name(&table)
            .item("execution_id", sv(execution_id))
            .item("target", sv(format!("{connection_id}/{contact_id}")))
            .item("report", sv(json))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }

    /// Whether the webhook event `event_id` was already received.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn crm_event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        self.exists(CRM_EVENT_IDS, &[("event_id", event_id)]).await
    }

    /// Marks the webhook event `event_id` as received (after its record was produced).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn mark_crm_event(&self, event_id: &str, at: i64) -> Result<(), StoreError> {
        let table = self.table(CRM_EVENT_IDS);
        self.client
            .put_item()
            .table_name(&table)
            .item("event_id", sv(event_id))
            .item("received_at", nv(at))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }
}

fn vendor_key(platform: Platform, vendor_account: &str) -> String {
    format!("{}#{vendor_account}", platform.as_str())
}

fn seal(cipher: &Cipher, conn: &Connection, creds: &Credentials) -> Result<String, StoreError> {
    let json = serde_json::to_vec(creds).map_err(|e| corrupt(CONNECTIONS, e.to_string()))?;
    cipher
        .seal(&json, &context(&conn.account_id, &conn.connection_id))
        .map_err(|e| corrupt(CONNECTIONS, e.to_string()))
}

/// An [`ApplyReport`] as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredReport {
    applied: Vec<mfh_schemas::ContactChange>,
    failed: Vec<(crate::helpers::Change, String)>,
}

impl StoredReport {
    fn from_report(r: &ApplyReport) -> Self {
        Self {
            applied: r.applied.clone(),
            failed: r.failed.clone(),
        }
    }
    fn into_report(self) -> ApplyReport {
        ApplyReport {
            applied: self.applied,
            failed: self.failed,
        }
    }
}

/// A connection's credentials in DynamoDB, as a [`CredentialStore`].
#[derive(Debug, Clone)]
pub struct DynamoCredentials {
    store: Store,
    cipher: Cipher,
    conn: Connection,
}

impl DynamoCredentials {
    /// The credentials of `conn`.
    #[must_use]
    pub fn new(store: Store, cipher: Cipher, conn: Connection) -> Self {
        Self {
            store,
            cipher,
            conn,
        }
    }
}

fn unavailable(e: &StoreError) -> CrmError {
    CrmError::Unavailable {
        message: mfh_pipeline::report(e),
    }
}

#[async_trait]
impl CredentialStore for DynamoCredentials {
    async fn load(&self) -> Result<(Credentials, i64), CrmError> {
        match self
            .store
            .connection_credentials(&self.conn, &self.cipher)
            .await
        {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(CrmError::Auth(format!(
                "connection {} is not authorised yet",
                self.conn.connection_id
            ))),
            Err(e @ StoreError::Corrupt { .. }) => Err(CrmError::Auth(e.to_string())),
            Err(e) => Err(unavailable(&e)),
        }
    }
    async fn save(&self, creds: &Credentials, version: i64) -> Result<bool, CrmError> {
        self.store
            .set_connection_credentials(&self.conn, creds, Some(version), &self.cipher)
            .await
            .map_err(|e| unavailable(&e))
    }
}
