//! The executions table: one item per execution, written `queued` by the API and
//! overwritten with the result by the sink.

use super::{EXECUTIONS, GSI_BY_ACCOUNT, GSI_BY_HELPER, Store, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use mfh_schemas::{ContactChange, ExecutionCompleted, ExecutionRequested};
use serde::Serialize;
use std::collections::HashMap;

/// An execution as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ExecutionView {
    /// Execution id.
    pub execution_id: String,
    /// Owning account.
    pub account_id: String,
    /// Helper name.
    pub helper: String,
    /// Helper category, once known.
    pub category: Option<String>,
    /// Contact id.
    pub contact_id: String,
    /// CRM connection.
    pub connection_id: String,
    /// queued, throttled (waiting out a CRM rate limit), succeeded or failed.
    pub status: String,
    /// The helper's summary.
    pub message: Option<String>,
    /// Request time, Unix ms.
    pub requested_at: i64,
    /// Start time, Unix ms.
    pub started_at: Option<i64>,
    /// Completion time, Unix ms.
    pub completed_at: Option<i64>,
    /// Milliseconds from request to result.
    pub duration_ms: Option<i64>,
    /// When the sink wrote the result here, Unix ms.
    pub written_at: Option<i64>,
    /// The helper's outputs.
    pub output: Option<serde_json::Value>,
    /// Changes made to the contact.
    pub changes: Vec<ContactChangeView>,
    /// Error class when failed.
    pub error_kind: Option<String>,
    /// Error message when failed.
    pub error_message: Option<String>,
    /// Where the request came from.
    pub source: String,
}

/// One change, as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ContactChangeView {
    /// field_updated, tag_applied, ...
    pub kind: String,
    /// What changed.
    pub target: String,
    /// Before.
    pub old_value: Option<String>,
    /// After.
    pub new_value: Option<String>,
}

impl From<&ContactChange> for ContactChangeView {
    fn from(c: &ContactChange) -> Self {
        Self {
            kind: c.kind.clone(),
            target: c.target.clone(),
            old_value: c.old_value.clone(),
            new_value: c.new_value.clone(),
        }
    }
}

/// A page of executions.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionPage {
    /// Newest first.
    pub items: Vec<ExecutionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn sort_key(requested_at: i64, id: &str) -> String {
    format!("{requested_at:015}#{id}")
}

impl Store {
    /// Records an accepted request as `queued`, unless the execution already exists.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_queued(&self, r: &ExecutionRequested) -> Result<(), StoreError> {
        let table = self.table(EXECUTIONS);
        let res = self
            .client
            .put_item()
            .table_name(&table)
            .item("execution_id", s(&r.execution_id))
            .item("account_id", s(&r.account_id))
            .item(
                "account_helper",
                s(format!("{}#{}", r.account_id, r.helper)),
            )
            .item("sort_key", s(sort_key(r.requested_at, &r.execution_id)))
            .item("helper", s(&r.helper))
            .item("contact_id", s(&r.contact_id))
            .item("connection_id", s(&r.connection_id))
            .item("status", s("queued"))
            .item("requested_at", n(r.requested_at))
            .item("source", s(&r.source))
            .condition_expression("attribute_not_exists(execution_id)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }

    /// Writes a result read from `partition`/`offset` of the results topic. The first copy
    /// of a result to arrive wins and is remembered with its position; a duplicate copy
    /// (from a redelivered execution) loses. Returns whether this copy is the winner, which
    /// decides whether it goes to the lake, so the lake holds each result exactly once.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_completed(
        &self,
        c: &ExecutionCompleted,
        partition: i32,
        offset: i64,
    ) -> Result<bool, StoreError> {
        let table = self.table(EXECUTIONS);
        let changes: Vec<ContactChangeView> = c.changes.iter().map(Into::into).collect();
        let changes = serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into());
        let mut req = self
            .client
            .put_item()
            .table_name(&table)
            .item("execution_id", s(&c.execution_id))
            .item("account_id", s(&c.account_id))
            .item(
                "account_helper",
                s(format!("{}#{}", c.account_id, c.helper)),
            )
            .item("sort_key", s(sort_key(c.requested_at, &c.execution_id)))
            .item("helper", s(&c.helper))
            .item("category", s(&c.category))
            .item("contact_id", s(&c.contact_id))
            .item("connection_id", s(&c.connection_id))
            .item("status", s(c.status.as_str()))
            .item("message", s(&c.message))
            .item("requested_at", n(c.requested_at))
            .item("started_at", n(c.started_at))
            .item("completed_at", n(c.completed_at))
            .item("output_json", s(&c.output_json))
            .item("changes_json", s(changes))
            .item("source", s(&c.source))
            .item("lake_partition", n(i64::from(partition)))
            .item("lake_offset", n(offset))
            .item("written_at", n(mfh_pipeline::now_millis()))
            .condition_expression(
                "attribute_not_exists(lake_offset) OR (lake_partition = :p AND lake_offset = :o)",
            )
            .expression_attribute_values(":p", n(i64::from(partition)))
            .expression_attribute_values(":o", n(offset));
        if let Some(k) = &c.error_kind {
            req = req.item("error_kind", s(k));
        }
        if let Some(m) = &c.error_message {
            req = req.item("error_message", s(m));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }

    /// One execution by id, if it belongs to `account_id`.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn get_execution(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<Option<ExecutionView>, StoreError> {
        let table = self.table(EXECUTIONS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("execution_id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        match out.item {
            Some(item) => {
                let v = view(&table, &item)?;
                Ok((v.account_id == account_id).then_some(v))
            }
            None => Ok(None),
        }
    }

    /// The account's executions, newest first, optionally of one helper and status.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails, or the cursor is not one this method returned.
    pub async fn list_executions(
        &self,
        account_id: &str,
        helper: Option<&str>,
        status: Option<&str>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<ExecutionPage, StoreError> {
        let table = self.table(EXECUTIONS);
        let mut items = Vec::new();
        let mut start = match cursor {
            Some(c) => Some(decode_cursor(&table, c)?),
            None => None,
        };
        // A status filter applies after the read, so keep reading until the page is full.
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&table)
                .scan_index_forward(false)
                .limit(limit);
            q = match helper {
                Some(h) => q
                    .index_name(GSI_BY_HELPER)
                    .key_condition_expression("account_helper = :k")
                    .expression_attribute_values(":k", s(format!("{account_id}#{h}"))),
                None => q
                    .index_name(GSI_BY_ACCOUNT)
                    .key_condition_expression("account_id = :k")
                    .expression_attribute_values(":k", s(account_id)),
            };
            if let Some(st) = status {
                q = q
                    .filter_expression("#st = :st")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(st));
            }
            if let Some(k) = start.take() {
                q = q.set_exclusive_start_key(Some(k));
            }
            let out = q
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", &table, e))?;
            for item in out.items.unwrap_or_default() {
                items.push(view(&table, &item)?);
            }
            let last = out.last_evaluated_key;
            if items.len() >= usize::try_from(limit).unwrap_or(0) || last.is_none() {
                let next_cursor = last.map(|k| encode_cursor(&k));
                return Ok(ExecutionPage { items, next_cursor });
            }
            start = last;
        }
    }
}

fn encode_cursor(key: &HashMap<String, AttributeValue>) -> String {
    let flat: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&flat).unwrap_or_default())
}

fn decode_cursor(table: &str, c: &str) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let bad = || StoreError::Corrupt {
        table: table.to_owned(),
        message: "invalid cursor".into(),
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let flat: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(flat
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

impl Store {
    /// Shows a queued execution as `throttled` while it waits out a CRM rate limit, and
    /// counts the waits; a result already written is left alone.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn mark_throttled(
        &self,
        execution_id: &str,
        at: i64,
        wait: std::time::Duration,
    ) -> Result<(), StoreError> {
        let table = self.table(EXECUTIONS);
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        match self
            .client
            .update_item()
            .table_name(&table)
            .key("execution_id", s(execution_id))
            .update_expression(
                "SET #st = :t, throttled_at = :at ADD throttled_count :one, throttled_ms :w",
            )
            .condition_expression(
                "attribute_exists(execution_id) AND attribute_not_exists(lake_offset)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":t", s("throttled"))
            .expression_attribute_values(":at", n(at))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":w", n(wait_ms))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_update_failure(&e) => Ok(()),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }
}

/// Whether a conditional put lost (an expected outcome, not a fault).
pub(crate) fn is_conditional_failure<R>(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    e.as_service_error().is_some_and(
        aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception,
    )
}

/// Whether an `UpdateItem` failed only on its condition.
pub(crate) fn is_conditional_update_failure<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        R,
    >,
) -> bool {
    e.as_service_error().is_some_and(
        aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
    )
}

/// Whether a `DeleteItem` failed only on its condition.
pub(crate) fn is_conditional_delete_failure<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::delete_item::DeleteItemError,
        R,
    >,
) -> bool {
    e.as_service_error().is_some_and(
        aws_sdk_dynamodb::operation::delete_item::DeleteItemError::is_conditional_check_failed_exception,
    )
}

fn view(table: &str, item: &HashMap<String, AttributeValue>) -> Result<ExecutionView, StoreError> {
    let gs = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let gn = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let req = |k: &str| {
        gs(k).ok_or_else(|| StoreError::Corrupt {
            table: table.to_owned(),
            message: format!("missing {k}"),
        })
    };
    let requested_at = gn("requested_at").unwrap_or(0);
    let completed_at = gn("completed_at");
    Ok(ExecutionView {
        execution_id: req("execution_id")?,
        account_id: req("account_id")?,
        helper: req("helper")?,
        category: gs("category"),
        contact_id: req("contact_id")?,
        connection_id: req("connection_id")?,
        status: req("status")?,
        message: gs("message"),
        requested_at,
        started_at: gn("started_at"),
        completed_at,
        duration_ms: completed_at.map(|c| c - requested_at),
        written_at: gn("written_at"),
        output: gs("output_json").and_then(|o| serde_json::from_str(&o).ok()),
        changes: gs("changes_json")
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default(),
        error_kind: gs("error_kind"),
        error_message: gs("error_message"),
        source: gs("source").unwrap_or_default(),
    })
}
