//! The executions table: one item per execution, written `queued` by the API and
//! overwritten with the result by the sink.

use super::{
    EXECUTIONS, GSI_BY_ACCOUNT, GSI_BY_CONTACT, GSI_BY_HELPER, GSI_BY_HELPER_ID, Store, StoreError,
};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use mfh_schemas::{ContactChange, ExecutionCompleted, ExecutionRequested};
use serde::Serialize;
use std::collections::HashMap;

/// An execution as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ExecutionView {
    /// Execution id.
    pub execution_id: String,
    /// Owning account.
    pub account_id: String,
    /// Helper name.
    pub helper: String,
    /// The saved helper that ran, if any.
    pub helper_id: Option<String>,
    /// The execution this one retries, if any.
    pub retry_of: Option<String>,
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
    /// The request's input (the run URL's name/value pairs, a webhook payload).
    pub input: Option<serde_json::Value>,
}

/// One change, as the API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// The most of a result's output (and of its changes) the executions item keeps.
const MAX_OUTPUT_BYTES: usize = 150 * 1024;
/// The most of a message the executions item keeps.
const MAX_TEXT_BYTES: usize = 8 * 1024;

/// `text` cut to at most `max` bytes at a char boundary.
fn cut(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

/// A JSON document that fits in `max` bytes: itself, or a note of its size.
fn fit(json: &str, max: usize) -> String {
    if json.len() <= max {
        json.to_owned()
    } else {
        serde_json::json!({"truncated": true, "bytes": json.len(), "note": "too large for the API's copy; the lake has it whole"}).to_string()
    }
}

fn sort_key(requested_at: i64, id: &str) -> String {
    format!("{requested_at:015}#{id}")
}

/// The index keys of an execution item: by helper type, by saved helper (only for a
/// saved helper's executions: the index is sparse) and by contact.
fn index_keys(
    account_id: &str,
    helper: &str,
    helper_id: Option<&str>,
    contact_id: &str,
) -> Vec<(&'static str, AttributeValue)> {
    let mut keys = vec![
        ("account_helper", s(format!("{account_id}#{helper}"))),
        ("account_contact", s(format!("{account_id}#{contact_id}"))),
    ];
    if let Some(id) = helper_id {
        keys.push(("account_helper_id", s(format!("{account_id}#{id}"))));
    }
    keys
}

/// What an execution listing selects: at most one of the keyed filters picks the index
/// (saved helper, else contact, else helper type, else the whole account); the rest
/// filter after the read.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery<'a> {
    /// Only this helper type.
    pub helper: Option<&'a str>,
    /// Only this saved helper.
    pub helper_id: Option<&'a str>,
    /// Only this contact.
    pub contact_id: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
    /// Requested at or after, Unix ms.
    pub since: Option<i64>,
    /// Requested before, Unix ms.
    pub until: Option<i64>,
}

impl Store {
    /// Writes `r` as queued, unless it already is (a retried request). With a `claim`,
    /// the idempotency key is claimed in the same transaction, so a key is never held
    /// by an execution that was not written, and a CRM's retry costs no extra request;
    /// a key already held returns its holder and writes nothing.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_queued(
        &self,
        r: &ExecutionRequested,
        retry_of: Option<&str>,
        claim: Option<super::api_keys::IdempotencyClaim<'_>>,
    ) -> Result<super::api_keys::Idempotency, StoreError> {
        use super::api_keys::Idempotency;
        let table = self.table(EXECUTIONS);
        let item = queued_item(r, retry_of);
        let new = "attribute_not_exists(execution_id)";
        let Some(claim) = claim else {
            return match self
                .client
                .put_item()
                .table_name(&table)
                .set_item(Some(item))
                .condition_expression(new)
                .send()
                .await
            {
                Ok(_) => Ok(Idempotency::New),
                Err(e) if is_conditional_failure(&e) => Ok(Idempotency::New),
                Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
            };
        };
        let queued = self.queued_put(r, retry_of)?;
        let key = self.idempotency_claim(&r.account_id, &r.execution_id, &claim)?;
        self.claim_and_queue(r, claim.key, key, queued, &table)
            .await
    }

    /// The queued row's write, for a transaction with other writes (the count of an
    /// admitted execution, an idempotency claim). Conditional on a fresh id.
    ///
    /// # Errors
    /// [`StoreError`] when the request cannot be built.
    pub fn queued_put(
        &self,
        r: &ExecutionRequested,
        retry_of: Option<&str>,
    ) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let table = self.table(EXECUTIONS);
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .set_item(Some(queued_item(r, retry_of)))
            .condition_expression("attribute_not_exists(execution_id)")
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &table, e))
    }
}

/// The queued row of `r`.
fn queued_item(r: &ExecutionRequested, retry_of: Option<&str>) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = [
        ("execution_id", s(&r.execution_id)),
        ("account_id", s(&r.account_id)),
        ("sort_key", s(sort_key(r.requested_at, &r.execution_id))),
        ("helper", s(&r.helper)),
        ("contact_id", s(&r.contact_id)),
        ("connection_id", s(&r.connection_id)),
        ("status", s("queued")),
        ("requested_at", n(r.requested_at)),
        ("source", s(&r.source)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    item.extend(
        index_keys(
            &r.account_id,
            &r.helper,
            r.helper_id.as_deref(),
            &r.contact_id,
        )
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let optional = [
        ("helper_id", r.helper_id.as_deref()),
        ("input_json", r.input_json.as_deref()),
        ("retry_of", retry_of),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            item.insert(k.to_owned(), s(v));
        }
    }
    item
}

impl Store {
    /// The idempotency claim and the queued row as one transaction.
    async fn claim_and_queue(
        &self,
        r: &ExecutionRequested,
        claim_key: &str,
        key: aws_sdk_dynamodb::types::Put,
        queued: aws_sdk_dynamodb::types::Put,
        table: &str,
    ) -> Result<super::api_keys::Idempotency, StoreError> {
        use aws_sdk_dynamodb::types::TransactWriteItem;
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(key).build())
            .transact_items(TransactWriteItem::builder().put(queued).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(super::api_keys::Idempotency::New),
            // The execution id is fresh, so the key's condition is what refused.
            Err(e) if super::transaction_canceled(&e) => self
                .idempotency_holder(&r.account_id, claim_key)
                .await?
                .ok_or_else(|| StoreError::dynamo("TransactWriteItems", table, e)),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", table, e)),
        }
    }

    /// Writes a result read from `partition`/`offset` of the results topic. The first copy
    /// of a result to arrive wins and is remembered with its position; a duplicate copy
    /// (from a redelivered execution) loses. Returns whether this copy is the winner, which
    /// decides whether it goes to the lake, so the lake holds each result exactly once.
    /// What the queued item knew (input, retry link) is kept. A saved helper's result
    /// counts in its stats in the same transaction, so a rewrite of the winning copy
    /// (the sink's own redelivery) cannot count it twice.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_completed(
        &self,
        c: &ExecutionCompleted,
        partition: i32,
        offset: i64,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::Update;
        let table = self.table(EXECUTIONS);
        let changes: Vec<ContactChangeView> = c.changes.iter().map(Into::into).collect();
        let changes = serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into());
        // A DynamoDB item holds at most 400 KB; a result may be near a Kafka message's
        // 1 MB. The API's copy keeps what fits (the lake keeps the whole result).
        let output = fit(&c.output_json, MAX_OUTPUT_BYTES);
        let changes = if changes.len() <= MAX_OUTPUT_BYTES {
            changes
        } else {
            serde_json::json!([{"kind": "truncated", "target": format!("{} changes", c.changes.len()), "old_value": null, "new_value": "too many for the API's copy; the lake has them all"}]).to_string()
        };
        let mut values: Vec<(&str, AttributeValue)> = vec![
            ("account_id", s(&c.account_id)),
            ("sort_key", s(sort_key(c.requested_at, &c.execution_id))),
            ("helper", s(&c.helper)),
            ("category", s(&c.category)),
            ("contact_id", s(&c.contact_id)),
            ("connection_id", s(&c.connection_id)),
            ("status", s(c.status.as_str())),
            ("message", s(cut(&c.message, MAX_TEXT_BYTES))),
            ("requested_at", n(c.requested_at)),
            ("started_at", n(c.started_at)),
            ("completed_at", n(c.completed_at)),
            ("output_json", s(output)),
            ("changes_json", s(changes)),
            ("source", s(&c.source)),
            ("lake_partition", n(i64::from(partition))),
            ("lake_offset", n(offset)),
            ("written_at", n(mfh_pipeline::now_millis())),
        ];
        values.extend(index_keys(
            &c.account_id,
            &c.helper,
            c.helper_id.as_deref(),
            &c.contact_id,
        ));
        if let Some(id) = &c.helper_id {
            values.push(("helper_id", s(id)));
        }
        if let Some(k) = &c.error_kind {
            values.push(("error_kind", s(k)));
        }
        if let Some(m) = &c.error_message {
            values.push(("error_message", s(cut(m, MAX_TEXT_BYTES))));
        }
        let sets: Vec<String> = (0..values.len())
            .map(|i| format!("#a{i} = :v{i}"))
            .collect();
        // A copy replacing a failed one leaves nothing of it behind.
        let absent: Vec<&str> = [
            ("error_kind", c.error_kind.is_none()),
            ("error_message", c.error_message.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, gone)| gone.then_some(name))
        .collect();
        let remove = if absent.is_empty() {
            String::new()
        } else {
            format!(" REMOVE {}", absent.join(", "))
        };
        let mut update = Update::builder()
            .table_name(&table)
            .key("execution_id", s(&c.execution_id))
            .update_expression(format!("SET {}{remove}", sets.join(", ")));
        for (i, (k, v)) in values.into_iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#a{i}"), k)
                .expression_attribute_values(format!(":v{i}"), v);
        }
        let built = |e| StoreError::dynamo("UpdateItem", &table, e);
        // A succeeded copy replaces a failed one: a redelivered execution whose first run
        // failed before recording an outcome (the CRM away) may run and apply its changes
        // the second time, and the result must say so. A failed copy never replaces.
        let succeeded = c.status == mfh_schemas::ExecutionStatus::Succeeded;
        let Some(helper_id) = &c.helper_id else {
            return self
                .write_result(update, &table, partition, offset, succeeded)
                .await;
        };
        // Only the first write of the winning copy counts in the helper's stats; a
        // repeat of it is told apart by the position it recorded.
        let first = update
            .clone()
            .condition_expression("attribute_not_exists(lake_offset)")
            .build()
            .map_err(built)?;
        let stats = super::helpers::stats_update(
            self,
            &c.account_id,
            helper_id,
            c.completed_at,
            c.status == mfh_schemas::ExecutionStatus::Failed,
        )?;
        if self.updates_together(&table, first, stats).await? {
            return Ok(true);
        }
        // Either a copy was written before (this one, or another), or the helper is not
        // the account's (a direct producer named a stranger's id): then the result is
        // written without stats, except that a succeeded copy replacing a failed one takes
        // that failure back out of them.
        if succeeded
            && self
                .replace_failed_in_stats(update.clone(), &table, partition, offset, c, helper_id)
                .await?
        {
            return Ok(true);
        }
        tracing::debug!(execution_id = %c.execution_id, "Result written without helper stats.");
        self.write_result(update, &table, partition, offset, succeeded)
            .await
    }

    /// Two updates in one transaction: true when both were written, false when a
    /// condition refused them (then neither was).
    async fn updates_together(
        &self,
        table: &str,
        a: aws_sdk_dynamodb::types::Update,
        b: aws_sdk_dynamodb::types::Update,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::TransactWriteItem;
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(a).build())
            .transact_items(TransactWriteItem::builder().update(b).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if super::transaction_canceled(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", table, e)),
        }
    }

    /// A succeeded copy replacing the failed one another copy wrote, with the helper's
    /// failure count taken back in the same transaction (the execution was counted once,
    /// when the failed copy was written). False when there is no failed copy of another
    /// position to replace, or the helper is not the account's.
    async fn replace_failed_in_stats(
        &self,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        table: &str,
        partition: i32,
        offset: i64,
        c: &ExecutionCompleted,
        helper_id: &str,
    ) -> Result<bool, StoreError> {
        let replace = update
            .expression_attribute_names("#was", "status")
            .expression_attribute_names("#lp", "lake_partition")
            .expression_attribute_names("#lo", "lake_offset")
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":p", n(i64::from(partition)))
            .expression_attribute_values(":o", n(offset))
            .condition_expression("#was = :failed AND NOT (#lp = :p AND #lo = :o)")
            .build()
            .map_err(|e| StoreError::dynamo("UpdateItem", table, e))?;
        let stats = super::helpers::failure_taken_back(self, &c.account_id, helper_id)?;
        self.updates_together(table, replace, stats).await
    }

    /// The conditional write of a result alone: it wins unless another copy won first.
    async fn write_result(
        &self,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
        table: &str,
        partition: i32,
        offset: i64,
        replaces_failed: bool,
    ) -> Result<bool, StoreError> {
        let mut update = update
            .expression_attribute_values(":p", n(i64::from(partition)))
            .expression_attribute_values(":o", n(offset));
        let mut condition =
            "attribute_not_exists(lake_offset) OR (lake_partition = :p AND lake_offset = :o)"
                .to_owned();
        if replaces_failed {
            update = update
                .expression_attribute_names("#was", "status")
                .expression_attribute_values(":failed", s("failed"));
            condition.push_str(" OR #was = :failed");
        }
        let u = update
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::dynamo("UpdateItem", table, e))?;
        let res = self
            .client
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_condition_expression(u.condition_expression().map(str::to_owned))
            .set_expression_attribute_names(u.expression_attribute_names().cloned())
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", table, e)),
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

    /// The account's executions, newest first, selected by `query`.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails, or the cursor is not one this method returned.
    pub async fn list_executions(
        &self,
        account_id: &str,
        query: &ExecutionQuery<'_>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<ExecutionPage, StoreError> {
        let table = self.table(EXECUTIONS);
        let mut items = Vec::new();
        let mut start = match cursor {
            Some(c) => Some(decode_cursor(&table, c)?),
            None => None,
        };
        let (index, key_attr, key) = match (query.helper_id, query.contact_id, query.helper) {
            (Some(id), _, _) => (GSI_BY_HELPER_ID, "account_helper_id", id),
            (None, Some(c), _) => (GSI_BY_CONTACT, "account_contact", c),
            (None, None, Some(h)) => (GSI_BY_HELPER, "account_helper", h),
            (None, None, None) => (GSI_BY_ACCOUNT, "account_id", ""),
        };
        let key = if index == GSI_BY_ACCOUNT {
            account_id.to_owned()
        } else {
            format!("{account_id}#{key}")
        };
        let mut key_condition = format!("{key_attr} = :k");
        let mut q = self
            .client
            .query()
            .table_name(&table)
            .index_name(index)
            .scan_index_forward(false)
            .limit(limit)
            .expression_attribute_values(":k", s(key));
        // The sort key starts with the zero-padded request time, so a time range is a
        // key condition, not a filter.
        match (query.since, query.until) {
            (None, None) => {}
            (since, until) => {
                key_condition.push_str(" AND sort_key BETWEEN :lo AND :hi");
                q = q
                    .expression_attribute_values(":lo", s(format!("{:015}", since.unwrap_or(0))))
                    .expression_attribute_values(
                        ":hi",
                        s(format!(
                            "{:015}",
                            until.map_or(i64::MAX / 1000, |u| u.saturating_sub(1).max(0))
                        ) + "~"),
                    );
            }
        }
        q = q.key_condition_expression(key_condition);
        let mut filters = Vec::new();
        if let Some(st) = query.status {
            filters.push("#st = :st");
            q = q
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":st", s(st));
        }
        if index != GSI_BY_CONTACT
            && let Some(c) = query.contact_id
        {
            filters.push("contact_id = :c");
            q = q.expression_attribute_values(":c", s(c));
        }
        if index != GSI_BY_HELPER
            && let Some(h) = query.helper
        {
            filters.push("helper = :h");
            q = q.expression_attribute_values(":h", s(h));
        }
        if !filters.is_empty() {
            q = q.filter_expression(filters.join(" AND "));
        }
        // A filter applies after the read, so keep reading until the page is full.
        loop {
            let out = q
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Query", &table, e))?;
            for item in out.items.unwrap_or_default() {
                items.push(view(&table, &item)?);
            }
            let last = out.last_evaluated_key.filter(|k| !k.is_empty());
            if items.len() >= usize::try_from(limit).unwrap_or(0) || last.is_none() {
                let next_cursor = last.map(|k| encode_cursor(&k));
                return Ok(ExecutionPage { items, next_cursor });
            }
            start = last;
        }
    }
}

pub(crate) fn encode_cursor(key: &HashMap<String, AttributeValue>) -> String {
    let flat: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&flat).unwrap_or_default())
}

pub(crate) fn decode_cursor(
    table: &str,
    c: &str,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
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
        let update = self
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
            .expression_attribute_values(":w", n(wait_ms));
        self.update_unless_moved(update, &table).await
    }

    /// Marks a queued execution failed with `kind` and `reason` when its request never
    /// reached the topic; an execution that has moved on (running, a result written) is
    /// left alone.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn mark_not_queued(
        &self,
        execution_id: &str,
        at: i64,
        kind: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let table = self.table(EXECUTIONS);
        let update = self
            .client
            .update_item()
            .table_name(&table)
            .key("execution_id", s(execution_id))
            .update_expression(
                "SET #st = :f, error_kind = :k, error_message = :m, completed_at = :at",
            )
            .condition_expression("#st = :q AND attribute_not_exists(lake_offset)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":f", s("failed"))
            .expression_attribute_values(":q", s("queued"))
            .expression_attribute_values(":k", s(kind))
            .expression_attribute_values(":m", s(reason))
            .expression_attribute_values(":at", n(at));
        self.update_unless_moved(update, &table).await
    }

    /// Undoes [`Store::mark_not_queued`] of kind `kind` when its request is sent again.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn mark_queued_again(
        &self,
        execution_id: &str,
        kind: &str,
    ) -> Result<(), StoreError> {
        let table = self.table(EXECUTIONS);
        let update = self
            .client
            .update_item()
            .table_name(&table)
            .key("execution_id", s(execution_id))
            .update_expression("SET #st = :q REMOVE error_kind, error_message, completed_at")
            .condition_expression("error_kind = :k AND attribute_not_exists(lake_offset)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":q", s("queued"))
            .expression_attribute_values(":k", s(kind));
        self.update_unless_moved(update, &table).await
    }

    /// Sends a conditional update of an execution whose lost condition means it has
    /// moved on (a result written, a status changed): nothing to do.
    async fn update_unless_moved(
        &self,
        update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        table: &str,
    ) -> Result<(), StoreError> {
        match update.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_update_failure(&e) => Ok(()),
            Err(e) => Err(StoreError::dynamo("UpdateItem", table, e)),
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
        helper_id: gs("helper_id"),
        retry_of: gs("retry_of"),
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
        input: gs("input_json").and_then(|i| serde_json::from_str(&i).ok()),
    })
}
