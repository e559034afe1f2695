//! Follow-up executions waiting for their time (chain delays, time-zone triggers). A
//! timer is one item keyed by shard and `due` (`<ms, 13 digits>#<execution id>`), so
//! the scheduler finds due timers with one range query per shard. Writing a timer twice
//! is a no-op; firing one twice produces the same execution id, which runs once.

use super::{Store, StoreError, TIMERS};
use aws_sdk_dynamodb::types::AttributeValue;
use mfh_schemas::ExecutionRequested;
use sha2::Digest;

/// Shards of the timer table; spreads a busy minute over several partitions.
pub const SHARDS: u32 = 8;

/// A timer item whose request does not parse: it can never fire.
#[derive(Debug, Clone)]
pub struct CorruptTimer {
    /// Its shard.
    pub shard: String,
    /// Its sort key.
    pub due: String,
    /// The stored request text.
    pub raw: String,
    /// Why it does not parse.
    pub reason: String,
}

/// A due timer.
#[derive(Debug, Clone)]
pub struct Timer {
    /// Its shard.
    pub shard: String,
    /// Its sort key.
    pub due: String,
    /// The execution to request.
    pub request: ExecutionRequested,
}

fn shard_of(execution_id: &str) -> String {
    let d = sha2::Sha256::digest(execution_id.as_bytes());
    format!("s{}", u32::from(d[0]) % SHARDS)
}

impl Store {
    /// Keeps `request` until `due_ms`.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_timer(
        &self,
        due_ms: i64,
        request: &ExecutionRequested,
    ) -> Result<(), StoreError> {
        let table = self.table(TIMERS);
        let json = serde_json::to_string(request).map_err(|e| StoreError::Corrupt {
            table: table.clone(),
            message: e.to_string(),
        })?;
        self.client
            .put_item()
            .table_name(&table)
            .item("shard", AttributeValue::S(shard_of(&request.execution_id)))
            .item(
                "due",
                AttributeValue::S(format!("{due_ms:013}#{}", request.execution_id)),
            )
            .item("request", AttributeValue::S(json))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }

    /// Up to `limit` timers of `shard` (0..[`SHARDS`]) due at `now_ms` or earlier.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or an item is corrupt.
    pub async fn due_timers(
        &self,
        shard: u32,
        now_ms: i64,
        limit: i32,
    ) -> Result<Vec<Result<Timer, CorruptTimer>>, StoreError> {
        let table = self.table(TIMERS);
        let out = self
            .client
            .query()
            .table_name(&table)
            .key_condition_expression("#s = :s AND #d <= :now")
            .expression_attribute_names("#s", "shard")
            .expression_attribute_names("#d", "due")
            .expression_attribute_values(":s", AttributeValue::S(format!("s{shard}")))
            // '~' sorts after '#', so every id of the current millisecond is included.
            .expression_attribute_values(":now", AttributeValue::S(format!("{now_ms:013}~")))
            .consistent_read(true)
            .limit(limit)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", &table, e))?;
        Ok(out
            .items()
            .iter()
            .map(|item| {
                let s = |k: &str| {
                    item.get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                let (shard, due, request) = (s("shard"), s("due"), s("request"));
                match serde_json::from_str(&request) {
                    Ok(request) => Ok(Timer {
                        shard,
                        due,
                        request,
                    }),
                    Err(e) => Err(CorruptTimer {
                        shard,
                        due,
                        raw: request,
                        reason: e.to_string(),
                    }),
                }
            })
            .collect())
    }

    /// Removes a fired timer.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn delete_timer(&self, shard: &str, due: &str) -> Result<(), StoreError> {
        let table = self.table(TIMERS);
        self.client
            .delete_item()
            .table_name(&table)
            .key("shard", AttributeValue::S(shard.to_owned()))
            .key("due", AttributeValue::S(due.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", &table, e))?;
        Ok(())
    }
}
