//! Metered usage per account: executions per month (and the saved-helper slots in use,
//! kept by [`super::helpers`]).
//!
//! A counter is bumped with an atomic `ADD`, never a read-modify-write, so busy accounts
//! cause no write conflicts. What makes a bump happen once is a marker written first
//! with a condition (`usage_marks` for an execution id): a redelivered execution finds
//! its marker and adds nothing. A crash
//! between the marker and the `ADD` under-counts by one; it never counts twice.

use super::{Store, StoreError, USAGE, USAGE_MARKS, executions::is_conditional_failure};
use aws_sdk_dynamodb::types::AttributeValue;

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

    async fn usage_add(&self, account_id: &str, item: &str) -> Result<(), StoreError> {
        let table = self.table(USAGE);
        self.client
            .update_item()
            .table_name(&table)
            .key("account_id", AttributeValue::S(account_id.to_owned()))
            .key("item", AttributeValue::S(item.to_owned()))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("UpdateItem", &table, e))?;
        Ok(())
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

    /// Counts an execution against its account's month, once per execution id.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn count_execution(
        &self,
        account_id: &str,
        month: &str,
        execution_id: &str,
    ) -> Result<(), StoreError> {
        let table = self.table(USAGE_MARKS);
        let res = self
            .client
            .put_item()
            .table_name(&table)
            .item("execution_id", AttributeValue::S(execution_id.to_owned()))
            .item("account_id", AttributeValue::S(account_id.to_owned()))
            .item("month", AttributeValue::S(month.to_owned()))
            .condition_expression("attribute_not_exists(execution_id)")
            .send()
            .await;
        match res {
            Ok(_) => self.usage_add(account_id, &executions_item(month)).await,
            Err(e) if is_conditional_failure(&e) => Ok(()),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }
}
