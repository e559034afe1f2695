//! The effect ledger: the outcome a helper decided for an execution, stored before its
//! changes are applied. A redelivered execution reuses it instead of running the helper
//! again, so random draws, clocks and outbound calls are not repeated.

use super::{OUTCOMES, Store, StoreError};
use crate::helpers::Outcome;
use aws_sdk_dynamodb::types::AttributeValue;

impl Store {
    /// The outcome recorded for `execution_id`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn recorded_outcome(
        &self,
        execution_id: &str,
    ) -> Result<Option<Outcome>, StoreError> {
        let table = self.table(OUTCOMES);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("execution_id", AttributeValue::S(execution_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let json = item
            .get("outcome")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt {
                table: table.clone(),
                message: "outcome missing".into(),
            })?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                table,
                message: e.to_string(),
            })
    }

    /// The put that records `outcome` for `execution_id`, refused (by its condition) when
    /// one is recorded: made together with a sandbox contact's changes
    /// ([`crate::connectors::CrmConnector::apply_recording`]).
    ///
    /// # Errors
    /// [`StoreError`] when the outcome cannot be serialized.
    pub fn outcome_put(
        &self,
        execution_id: &str,
        outcome: &Outcome,
    ) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let table = self.table(OUTCOMES);
        let json = serde_json::to_string(outcome).map_err(|e| StoreError::Corrupt {
            table: table.clone(),
            message: e.to_string(),
        })?;
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .item("execution_id", AttributeValue::S(execution_id.to_owned()))
            .item("outcome", AttributeValue::S(json))
            .condition_expression("attribute_not_exists(execution_id)")
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &table, e))
    }

    /// Records `outcome` unless one is already recorded; returns the recorded one.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn record_outcome(
        &self,
        execution_id: &str,
        outcome: Outcome,
    ) -> Result<Outcome, StoreError> {
        let put = self.outcome_put(execution_id, &outcome)?;
        if self.put_one(put).await? {
            return Ok(outcome);
        }
        Ok(self
            .recorded_outcome(execution_id)
            .await?
            .unwrap_or(outcome))
    }
}
