//! Metered usage per account: executions per month (and the saved-helper slots in use,
//! kept by [`super::helpers`]).
//!
//! A counter is bumped with an atomic `ADD`, never a read-modify-write. What makes a
//! bump happen once is a marker (`usage_marks` for an execution id) written in the same
//! transaction with a condition: a redelivered execution finds its marker and adds
//! nothing; the counter's own condition holds the plan's limit under concurrency.

use super::{Store, StoreError, USAGE, USAGE_MARKS, nv, sv};
use aws_sdk_dynamodb::types::AttributeValue;

/// What [`Store::count_execution`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted now.
    New,
    /// Counted before (a redelivery): nothing added.
    Before,
    /// Not counted: the month is at its limit.
    OverLimit,
}

/// The usage item of a month's executions: `executions#2026-12`.
#[must_use]
pub fn executions_item(month: &str) -> String {
    format!("executions#{month}")
}

impl Store {
    pub(crate) async fn usage_count(
        &self,
        account_id: &str,
        item: &str,
    ) -> Result<u64, StoreError> {
        let table = self.table(USAGE);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("account_id", AttributeValue::S(account_id.to_owned()))
            .key("item", AttributeValue::S(item.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| i.get("count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Executions counted for `account_id` in `month` (`YYYY-MM`).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn executions_in_month(
        &self,
        account_id: &str,
        month: &str,
    ) -> Result<u64, StoreError> {
        self.usage_count(account_id, &executions_item(month)).await
    }

    /// Whether `execution_id` was counted already.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn execution_counted(&self, execution_id: &str) -> Result<bool, StoreError> {
        self.exists(USAGE_MARKS, &[("execution_id", execution_id)])
            .await
    }

    /// Counts an execution against its account's month, once per execution id, unless
    /// the month already holds `limit` (`None`: no cap). The marker and the counter are
    /// one conditional transaction: concurrent requests at the limit cannot all pass,
    /// and a marker never exists without its count.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn count_execution(
        &self,
        account_id: &str,
        month: &str,
        execution_id: &str,
        limit: Option<u64>,
    ) -> Result<Counted, StoreError> {
        let mut values = Vec::new();
        let condition = limit.map(|limit| {
            values.push((":limit", limit));
            "attribute_not_exists(#c) OR #c < :limit".to_owned()
        });
        if self
            .counting(
                account_id,
                month,
                execution_id,
                condition,
                &values,
                Vec::new(),
            )
            .await?
        {
            return Ok(Counted::New);
        }
        // Either condition refused; the marker says which (counted before wins: a
        // redelivered execution was admitted already).
        if self.execution_counted(execution_id).await? {
            Ok(Counted::Before)
        } else {
            Ok(Counted::OverLimit)
        }
    }

    /// Counts an execution in one request when nothing else needs deciding: not counted
    /// before, the month below `limit`, and the count not at one of `crossings` (where
    /// this execution would send a usage alert). False when any of that does not hold and
    /// nothing was written; [`Store::count_execution`] then decides, reading what it needs.
    /// `also` (the queued row, an idempotency claim) is written in the same transaction.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn count_execution_quietly(
        &self,
        account_id: &str,
        month: &str,
        execution_id: &str,
        limit: Option<u64>,
        crossings: &[u64],
        also: Vec<aws_sdk_dynamodb::types::Put>,
    ) -> Result<bool, StoreError> {
        let mut values = Vec::new();
        let mut parts = Vec::new();
        if let Some(limit) = limit {
            values.push((":limit", limit));
            parts.push("#c < :limit".to_owned());
        }
        const NAMES: [&str; 4] = [":x0", ":x1", ":x2", ":x3"];
        for (name, at) in NAMES.iter().zip(crossings) {
            values.push((name, *at));
            parts.push(format!("#c <> {name}"));
        }
        // An absent counter is a count of 0: the caller passes no crossing at 0 and no
        // limit of 0, so an absent counter is always quiet.
        let condition = (!parts.is_empty())
            .then(|| format!("attribute_not_exists(#c) OR ({})", parts.join(" AND ")));
        self.counting(account_id, month, execution_id, condition, &values, also)
            .await
    }

    /// Takes an execution's count back (it was counted but never queued), once.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn uncount_execution(
        &self,
        account_id: &str,
        month: &str,
        execution_id: &str,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
        let marks = self.table(USAGE_MARKS);
        let usage = self.table(USAGE);
        let unmark = Delete::builder()
            .table_name(&marks)
            .key("execution_id", sv(execution_id))
            .condition_expression("attribute_exists(execution_id)")
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &marks, e))?;
        let sub = Update::builder()
            .table_name(&usage)
            .key("account_id", sv(account_id))
            .key("item", sv(executions_item(month)))
            .update_expression("ADD #c :minus")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":minus", nv(-1))
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &usage, e))?;
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(unmark).build())
            .transact_items(TransactWriteItem::builder().update(sub).build())
            .send()
            .await;
        match res {
            // No marker: taken back before.
            Ok(_) => Ok(()),
            Err(e) if super::transaction_canceled(&e) => Ok(()),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", &usage, e)),
        }
    }

    /// The marker and the counter's `ADD 1`, the counter under `condition` (over `#c`,
    /// with `values`), as one transaction; false when a condition refused it.
    async fn counting(
        &self,
        account_id: &str,
        month: &str,
        execution_id: &str,
        condition: Option<String>,
        values: &[(&str, u64)],
        also: Vec<aws_sdk_dynamodb::types::Put>,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
        let marks = self.table(USAGE_MARKS);
        let usage = self.table(USAGE);
        let mark = Put::builder()
            .table_name(&marks)
            .item("execution_id", sv(execution_id))
            .item("account_id", sv(account_id))
            .item("month", sv(month))
            .condition_expression("attribute_not_exists(execution_id)")
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &marks, e))?;
        let mut add = Update::builder()
            .table_name(&usage)
            .key("account_id", sv(account_id))
            .key("item", sv(executions_item(month)))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", nv(1));
        if let Some(condition) = condition {
            add = add.condition_expression(condition);
            for (name, v) in values {
                add = add
                    .expression_attribute_values(*name, nv(i64::try_from(*v).unwrap_or(i64::MAX)));
            }
        }
        let add = add
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &usage, e))?;
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(mark).build())
            .transact_items(TransactWriteItem::builder().update(add).build());
        for put in also {
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        let res = tx.send().await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if super::transaction_canceled(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", &usage, e)),
        }
    }
}
