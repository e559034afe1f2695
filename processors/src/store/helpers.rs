//! Saved helpers: a named helper type with its config and CRM connection, owned by an
//! account, with the secret run URL a CRM automation calls.
//!
//! Items are keyed by `helper_id` alone, so the run URL (whose token names the helper)
//! is resolved with one consistent read, and indexed by account for listings. A delete
//! is soft: the item stays with `deleted_at`, so its executions keep their helper and its
//! URL answers 410. The plan's helper slots are a counter in `usage` changed in the same
//! transaction as the create or the delete, so two creates racing for the last slot
//! cannot both win.

use super::{
    GSI_BY_ACCOUNT, HELPERS, Item, Store, StoreError, USAGE, attr_n, attr_s, corrupt,
    executions::{decode_cursor, encode_cursor},
    nv, sv,
};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::Serialize;

/// The usage item counting an account's live saved helpers.
const SLOTS_ITEM: &str = "saved_helpers";

/// A saved helper.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SavedHelper {
    /// `hlp_…`.
    pub helper_id: String,
    /// The owning account.
    pub account_id: String,
    /// The name the user gave it.
    pub name: String,
    /// The helper type, e.g. `tag_it`.
    pub helper: String,
    /// Its config, a JSON object (validated when saved).
    pub config: serde_json::Value,
    /// The CRM connection it runs against.
    pub connection_id: String,
    /// `false` pauses it: its run URL answers 423.
    pub enabled: bool,
    /// Created, Unix ms.
    pub created_at: i64,
    /// Last changed, Unix ms; the version an update must name.
    pub updated_at: i64,
    /// Deleted, Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Results recorded.
    pub execution_count: i64,
    /// Failed results recorded.
    pub failure_count: i64,
    /// Request time of the newest result, Unix ms.
    pub last_executed_at: Option<i64>,
    /// Request time of the newest failed result, Unix ms.
    pub last_failed_at: Option<i64>,
    /// SHA-256 of the run token.
    #[serde(skip)]
    pub token_hash: String,
    /// The run token sealed with the credentials key, so the dashboard can show the URL
    /// again; `None` when no key is configured (then the URL is shown once).
    #[serde(skip)]
    pub token_sealed: Option<String>,
}

/// Filters of a helper listing.
#[derive(Debug, Clone, Default)]
pub struct HelperFilter<'a> {
    /// Only this helper type.
    pub helper: Option<&'a str>,
    /// Only this connection.
    pub connection_id: Option<&'a str>,
    /// Only enabled (or only paused) helpers.
    pub enabled: Option<bool>,
}

/// A page of saved helpers, newest first.
#[derive(Debug, Clone)]
pub struct HelperPage {
    /// The helpers.
    pub items: Vec<SavedHelper>,
    /// The cursor of the next page.
    pub next_cursor: Option<String>,
}

/// Why a write to a saved helper did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HelperWriteError {
    /// The plan's helper slots are all used.
    #[error("every helper slot of the plan is in use")]
    NoSlot,
    /// No such live helper of the account.
    #[error("no such helper")]
    NotFound,
    /// It changed since the version the caller named.
    #[error("the helper changed meanwhile")]
    Changed,
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn created_key(created_at: i64, helper_id: &str) -> String {
    format!("{created_at:015}#{helper_id}")
}

fn to_helper(table: &str, i: &Item) -> Result<SavedHelper, StoreError> {
    let req = |k: &str| attr_s(i, k).ok_or_else(|| corrupt(table, format!("missing {k}")));
    let config = serde_json::from_str(&req("config_json")?)
        .map_err(|e| corrupt(table, format!("config_json: {e}")))?;
    Ok(SavedHelper {
        helper_id: req("helper_id")?,
        account_id: req("account_id")?,
        name: req("name")?,
        helper: req("helper")?,
        config,
        connection_id: req("connection_id")?,
        enabled: i.get("enabled").and_then(|v| v.as_bool().ok()) == Some(&true),
        created_at: attr_n(i, "created_at").unwrap_or(0),
        updated_at: attr_n(i, "updated_at").unwrap_or(0),
        deleted_at: attr_n(i, "deleted_at"),
        execution_count: attr_n(i, "execution_count").unwrap_or(0),
        failure_count: attr_n(i, "failure_count").unwrap_or(0),
        last_executed_at: attr_n(i, "last_executed_at"),
        last_failed_at: attr_n(i, "last_failed_at"),
        token_hash: req("token_hash")?,
        token_sealed: attr_s(i, "token_sealed"),
    })
}

fn built<E: std::error::Error + super::DynamoErrorCode + 'static>(
    table: &str,
) -> impl Fn(E) -> StoreError + '_ {
    move |e| StoreError::dynamo("TransactWriteItems", table, e)
}

impl Store {
    /// Saves a new helper, taking one of the account's `slots` (`None`: unlimited).
    ///
    /// # Errors
    /// [`HelperWriteError::NoSlot`] when every slot is taken; a store error.
    pub async fn create_helper(
        &self,
        h: &SavedHelper,
        slots: Option<u64>,
    ) -> Result<(), HelperWriteError> {
        let table = self.table(HELPERS);
        let usage = self.table(USAGE);
        let mut put = Put::builder()
            .table_name(&table)
            .item("helper_id", sv(&h.helper_id))
            .item("account_id", sv(&h.account_id))
            .item("created_at_s", sv(created_key(h.created_at, &h.helper_id)))
            .item("name", sv(&h.name))
            .item("helper", sv(&h.helper))
            .item("config_json", sv(h.config.to_string()))
            .item("connection_id", sv(&h.connection_id))
            .item(
                "enabled",
                aws_sdk_dynamodb::types::AttributeValue::Bool(h.enabled),
            )
            .item("created_at", nv(h.created_at))
            .item("updated_at", nv(h.updated_at))
            .item("token_hash", sv(&h.token_hash))
            .condition_expression("attribute_not_exists(helper_id)");
        if let Some(s) = &h.token_sealed {
            put = put.item("token_sealed", sv(s));
        }
        let mut slot = Update::builder()
            .table_name(&usage)
            .key("account_id", sv(&h.account_id))
            .key("item", sv(SLOTS_ITEM))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", nv(1));
        if let Some(limit) = slots {
            slot = slot
                .condition_expression("attribute_not_exists(#c) OR #c < :limit")
                .expression_attribute_values(
                    ":limit",
                    nv(i64::try_from(limit).unwrap_or(i64::MAX)),
                );
        }
        let res = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(put.build().map_err(built(&table))?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(slot.build().map_err(built(&usage))?)
                    .build(),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // The helper id is fresh, so only the slot condition can refuse.
            Err(e) if super::transaction_canceled(&e) => Err(HelperWriteError::NoSlot),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", &table, e).into()),
        }
    }

    /// A saved helper by id, deleted ones included (a consistent read).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn saved_helper(&self, helper_id: &str) -> Result<Option<SavedHelper>, StoreError> {
        let table = self.table(HELPERS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("helper_id", sv(helper_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        out.item.map(|i| to_helper(&table, &i)).transpose()
    }

    /// A saved helper as the run URL and the router use it: from the process's cache
    /// when it was read less than `dynamo.cache_ttl_ms` ago, so a change made through
    /// another process is seen within that bound (this process's own writes at once).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn helper_definition(
        &self,
        helper_id: &str,
    ) -> Result<Option<SavedHelper>, StoreError> {
        if let Some(h) = self.helper_cache.get(helper_id) {
            return Ok(Some(h));
        }
        let h = self.saved_helper(helper_id).await?;
        if let Some(h) = &h {
            self.helper_cache.put(helper_id, h.clone());
        }
        Ok(h)
    }

    /// The account's live (not deleted) helper `helper_id`.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn account_helper(
        &self,
        account_id: &str,
        helper_id: &str,
    ) -> Result<Option<SavedHelper>, StoreError> {
        Ok(self
            .saved_helper(helper_id)
            .await?
            .filter(|h| h.account_id == account_id && h.deleted_at.is_none()))
    }

    /// The account's live helpers, newest first, `limit` a page.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the cursor is not one this returned.
    pub async fn list_helpers(
        &self,
        account_id: &str,
        filter: &HelperFilter<'_>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<HelperPage, StoreError> {
        let table = self.table(HELPERS);
        let mut start = cursor.map(|c| decode_cursor(&table, c)).transpose()?;
        let mut conditions = vec!["attribute_not_exists(deleted_at)"];
        let mut q = self
            .client
            .query()
            .table_name(&table)
            .index_name(GSI_BY_ACCOUNT)
            .key_condition_expression("account_id = :a")
            .expression_attribute_values(":a", sv(account_id))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(h) = filter.helper {
            conditions.push("helper = :h");
            q = q.expression_attribute_values(":h", sv(h));
        }
        if let Some(c) = filter.connection_id {
            conditions.push("connection_id = :c");
            q = q.expression_attribute_values(":c", sv(c));
        }
        if let Some(e) = filter.enabled {
            conditions.push("enabled = :e");
            q = q.expression_attribute_values(
                ":e",
                aws_sdk_dynamodb::types::AttributeValue::Bool(e),
            );
        }
        let q = q.filter_expression(conditions.join(" AND "));
        let mut items = Vec::new();
        // Filters apply after the read, so keep reading until the page is full.
        loop {
            let out = q
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", &table, e))?;
            for i in out.items.unwrap_or_default() {
                items.push(to_helper(&table, &i)?);
            }
            let last = out.last_evaluated_key.filter(|k| !k.is_empty());
            if items.len() >= usize::try_from(limit).unwrap_or(0) || last.is_none() {
                return Ok(HelperPage {
                    items,
                    next_cursor: last.map(|k| encode_cursor(&k)),
                });
            }
            start = last;
        }
    }

    /// Writes a changed helper (name, config, connection, enabled) if it is still at the
    /// version `h.updated_at` replaced; sets `updated_at` to `now`.
    ///
    /// # Errors
    /// [`HelperWriteError::Changed`] when it changed meanwhile, `NotFound` when it is
    /// deleted, or a store error.
    pub async fn update_helper(
        &self,
        h: &SavedHelper,
        previous_version: i64,
    ) -> Result<(), HelperWriteError> {
        let table = self.table(HELPERS);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("helper_id", sv(&h.helper_id))
            .update_expression(
                "SET #n = :n, config_json = :cfg, connection_id = :c, enabled = :e, updated_at = :now",
            )
            .condition_expression(
                "account_id = :a AND attribute_not_exists(deleted_at) AND updated_at = :v",
            )
            .expression_attribute_names("#n", "name")
            .expression_attribute_values(":n", sv(&h.name))
            .expression_attribute_values(":cfg", sv(h.config.to_string()))
            .expression_attribute_values(":c", sv(&h.connection_id))
            .expression_attribute_values(
                ":e",
                aws_sdk_dynamodb::types::AttributeValue::Bool(h.enabled),
            )
            .expression_attribute_values(":now", nv(h.updated_at))
            .expression_attribute_values(":a", sv(&h.account_id))
            .expression_attribute_values(":v", nv(previous_version))
            .send()
            .await;
        // After the write: a read racing it may still cache the old item, which then
        // lives at most the cache's time to live.
        self.helper_cache.forget(&h.helper_id);
        match res {
            Ok(_) => Ok(()),
            Err(e) if super::executions::is_conditional_update_failure(&e) => {
                match self.account_helper(&h.account_id, &h.helper_id).await? {
                    Some(_) => Err(HelperWriteError::Changed),
                    None => Err(HelperWriteError::NotFound),
                }
            }
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e).into()),
        }
    }

    /// Replaces the run token of a live helper.
    ///
    /// # Errors
    /// [`HelperWriteError::NotFound`], or a store error.
    pub async fn rotate_helper_token(
        &self,
        account_id: &str,
        helper_id: &str,
        token_hash: &str,
        token_sealed: Option<&str>,
        now: i64,
    ) -> Result<(), HelperWriteError> {
        let table = self.table(HELPERS);
        let mut req = self
            .client
            .update_item()
            .table_name(&table)
            .key("helper_id", sv(helper_id))
            .condition_expression("account_id = :a AND attribute_not_exists(deleted_at)")
            .expression_attribute_values(":a", sv(account_id))
            .expression_attribute_values(":h", sv(token_hash))
            .expression_attribute_values(":now", nv(now));
        req = match token_sealed {
            Some(s) => req
                .update_expression("SET token_hash = :h, token_sealed = :s, updated_at = :now")
                .expression_attribute_values(":s", sv(s)),
            None => {
                req.update_expression("SET token_hash = :h, updated_at = :now REMOVE token_sealed")
            }
        };
        let res = req.send().await;
        // After the write: a read racing it may still cache the old item, which then
        // lives at most the cache's time to live.
        self.helper_cache.forget(helper_id);
        match res {
            Ok(_) => Ok(()),
            Err(e) if super::executions::is_conditional_update_failure(&e) => {
                Err(HelperWriteError::NotFound)
            }
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e).into()),
        }
    }

    /// Soft-deletes a live helper and frees its slot.
    ///
    /// # Errors
    /// [`HelperWriteError::NotFound`], or a store error.
    pub async fn delete_helper(
        &self,
        account_id: &str,
        helper_id: &str,
        now: i64,
    ) -> Result<(), HelperWriteError> {
        let table = self.table(HELPERS);
        let usage = self.table(USAGE);
        let mark = Update::builder()
            .table_name(&table)
            .key("helper_id", sv(helper_id))
            .update_expression("SET deleted_at = :now, enabled = :off, updated_at = :now")
            .condition_expression("account_id = :a AND attribute_not_exists(deleted_at)")
            .expression_attribute_values(":a", sv(account_id))
            .expression_attribute_values(":now", nv(now))
            .expression_attribute_values(
                ":off",
                aws_sdk_dynamodb::types::AttributeValue::Bool(false),
            );
        let free = Update::builder()
            .table_name(&usage)
            .key("account_id", sv(account_id))
            .key("item", sv(SLOTS_ITEM))
            .update_expression("ADD #c :minus")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":minus", nv(-1));
        let res = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(mark.build().map_err(built(&table))?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(free.build().map_err(built(&usage))?)
                    .build(),
            )
            .send()
            .await;
        // After the write: a read racing it may still cache the old item, which then
        // lives at most the cache's time to live.
        self.helper_cache.forget(helper_id);
        match res {
            Ok(_) => Ok(()),
            Err(e) if super::transaction_canceled(&e) => Err(HelperWriteError::NotFound),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", &table, e).into()),
        }
    }

    /// How many helper slots the account uses: its live saved helpers.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn helper_slots_used(&self, account_id: &str) -> Result<u64, StoreError> {
        self.usage_count(account_id, SLOTS_ITEM).await
    }
}

/// The stats update a result of saved helper `helper_id` makes, for the sink's
/// transaction: one more execution (and failure), and when it completed. Results of one
/// helper arrive in about the order they complete, so the last one written is the newest.
pub(crate) fn stats_update(
    store: &Store,
    account_id: &str,
    helper_id: &str,
    completed_at: i64,
    failed: bool,
) -> Result<Update, StoreError> {
    let table = store.table(HELPERS);
    let expr = if failed {
        "ADD execution_count :one, failure_count :one SET last_executed_at = :t, last_failed_at = :t"
    } else {
        "ADD execution_count :one SET last_executed_at = :t"
    };
    Update::builder()
        .table_name(&table)
        .key("helper_id", sv(helper_id))
        .update_expression(expr)
        .condition_expression("account_id = :a")
        .expression_attribute_values(":a", sv(account_id))
        .expression_attribute_values(":one", nv(1))
        .expression_attribute_values(":t", nv(completed_at))
        .build()
        .map_err(|e| StoreError::dynamo("TransactWriteItems", &table, e))
}

/// The helper's failure count less one: a failed result replaced by a succeeded copy of
/// the same execution (see `Store::put_completed`).
pub(crate) fn failure_taken_back(
    store: &Store,
    account_id: &str,
    helper_id: &str,
) -> Result<Update, StoreError> {
    let table = store.table(HELPERS);
    Update::builder()
        .table_name(&table)
        .key("helper_id", sv(helper_id))
        .update_expression("ADD failure_count :minus_one")
        .condition_expression("account_id = :a AND failure_count > :zero")
        .expression_attribute_values(":a", sv(account_id))
        .expression_attribute_values(":minus_one", nv(-1))
        .expression_attribute_values(":zero", nv(0))
        .build()
        .map_err(|e| StoreError::dynamo("TransactWriteItems", &table, e))
}
