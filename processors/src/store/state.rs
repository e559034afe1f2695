//! Durable helper state in DynamoDB: one item per (account, key), written with a version
//! check so two instances of a category updating one counter never lose an increment.

use super::{HELPER_STATE, Store, StoreError};
use crate::state::{REMEMBERED_INCREMENTS, StateError, StateStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// Attempts at a version-checked write before reporting contention.
const ATTEMPTS: u32 = 16;

/// Losing a version race means another writer just won; waiting a random, growing
/// while before re-reading keeps a few busy writers from colliding forever.
async fn contention_pause(attempt: u32) {
    use rand::Rng;
    let cap_ms = (1u64 << attempt.min(7)).min(100);
    let ms = rand::rng().random_range(0..=cap_ms);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// One account's helper state.
#[derive(Debug, Clone)]
pub struct DynamoState {
    store: Store,
    account: String,
}

impl DynamoState {
    /// The state of `account_id`.
    #[must_use]
    pub fn new(store: Store, account_id: &str) -> Self {
        Self {
            store,
            account: account_id.to_owned(),
        }
    }
}

fn err(op: &str, e: impl std::error::Error + 'static) -> StateError {
    StateError(format!("{op}: {}", mfh_pipeline::report(&e)))
}

struct Item {
    value: Value,
    expires_at: Option<i64>,
    increments: Vec<(String, i64)>,
    version: i64,
}

impl Item {
    fn parse(item: &HashMap<String, AttributeValue>) -> Result<Self, StateError> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok());
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(Self {
            value: serde_json::from_str(s("value").map_or("null", String::as_str))
                .map_err(|e| StateError(format!("corrupt state value: {e}")))?,
            expires_at: n("expires_at"),
            increments: s("increments")
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
            version: n("version").unwrap_or(0),
        })
    }

    fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl DynamoState {
    async fn read(&self, key: &str) -> Result<Option<Item>, StateError> {
        let table = self.store.table(HELPER_STATE);
        let req = self
            .store
            .client
            .get_item()
            .table_name(&table)
            .key("account", AttributeValue::S(self.account.clone()))
            .key("key", AttributeValue::S(key.to_owned()))
            .consistent_read(true);
        let out = crate::with_retries("read helper state", || async {
            req.clone()
                .send()
                .await
                .map_err(|e| StoreError::dynamo("GetItem", &table, e))
        })
        .await
        .map_err(|e| err("GetItem", e))?;
        out.item.as_ref().map(Item::parse).transpose()
    }

    /// Writes the item if its version is still `expected` (`None`: absent). Returns
    /// false when someone else wrote first.
    async fn write(
        &self,
        key: &str,
        value: &Value,
        expires_at: Option<DateTime<Utc>>,
        increments: &[(String, i64)],
        expected: Option<i64>,
    ) -> Result<bool, StateError> {
        let mut req = self
            .store
            .client
            .put_item()
            .table_name(self.store.table(HELPER_STATE))
            .item("account", AttributeValue::S(self.account.clone()))
            .item("key", AttributeValue::S(key.to_owned()))
            .item("value", AttributeValue::S(value.to_string()))
            .item(
                "version",
                AttributeValue::N((expected.unwrap_or(0) + 1).to_string()),
            );
        if let Some(t) = expires_at {
            req = req.item(
                "expires_at",
                AttributeValue::N(t.timestamp_millis().to_string()),
            );
        }
        if !increments.is_empty() {
            let json = serde_json::to_string(increments).map_err(|e| err("encode", e))?;
            req = req.item("increments", AttributeValue::S(json));
        }
        req = match expected {
            Some(v) => req
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
            None => req.condition_expression("attribute_not_exists(#k)"),
        };
        if expected.is_none() {
            req = req.expression_attribute_names("#k", "key");
        }
        // A store error is retried; a lost condition is an answer (another writer, or this
        // write landing before its reply was lost: the caller reads again and the
        // version, or the `incr` journal, tells).
        let table = self.store.table(HELPER_STATE);
        crate::with_retries("write helper state", || async {
            match req.clone().send().await {
                Ok(_) => Ok(true),
                Err(e) if super::executions::is_conditional_failure(&e) => Ok(false),
                Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
            }
        })
        .await
        .map_err(|e| err("PutItem", e))
    }
}

#[async_trait]
impl StateStore for DynamoState {
    async fn get(&self, key: &str) -> Result<Option<Value>, StateError> {
        let now = Utc::now().timestamp_millis();
        Ok(self
            .read(key)
            .await?
            .filter(|i| i.live(now))
            .map(|i| i.value))
    }

    async fn put(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StateError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                contention_pause(attempt).await;
            }
            // The `incr` journal stays: an execution that incremented before this write
            // must, on redelivery, get its answer back, not increment again.
            let now = Utc::now().timestamp_millis();
            let (version, journal) = match self.read(key).await? {
                Some(i) if i.live(now) => (Some(i.version), i.increments),
                Some(i) => (Some(i.version), Vec::new()),
                None => (None, Vec::new()),
            };
            if self
                .write(key, &value, expires_at, &journal, version)
                .await?
            {
                return Ok(());
            }
        }
        Err(StateError(format!("{key} is being written concurrently")))
    }

    async fn put_if_absent(
        &self,
        key: &str,
        value: Value,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(Value, bool), StateError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                contention_pause(attempt).await;
            }
            let now = Utc::now().timestamp_millis();
            let current = self.read(key).await?;
            match current {
                Some(i) if i.live(now) => return Ok((i.value, false)),
                other => {
                    let version = other.map(|i| i.version);
                    if self.write(key, &value, expires_at, &[], version).await? {
                        return Ok((value, true));
                    }
                }
            }
        }
        Err(StateError(format!("{key} is being written concurrently")))
    }

    async fn incr(
        &self,
        key: &str,
        by: i64,
        execution_id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StateError> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                contention_pause(attempt).await;
            }
            let now = Utc::now().timestamp_millis();
            let current = self.read(key).await?;
            let version = current.as_ref().map(|i| i.version);
            let (base, mut increments, expiry) = match current {
                Some(i) if i.live(now) => {
                    if let Some((_, v)) = i.increments.iter().find(|(id, _)| id == execution_id) {
                        return Ok(*v);
                    }
                    let expiry = i
                        .expires_at
                        .and_then(chrono::DateTime::from_timestamp_millis);
                    (i.value.as_i64().unwrap_or(0), i.increments, expiry)
                }
                _ => (0, Vec::new(), expires_at),
            };
            let next = base + by;
            increments.push((execution_id.to_owned(), next));
            if increments.len() > REMEMBERED_INCREMENTS {
                increments.remove(0);
            }
            if self
                .write(key, &Value::from(next), expiry, &increments, version)
                .await?
            {
                return Ok(next);
            }
        }
        Err(StateError(format!("{key} is being written concurrently")))
    }

    async fn delete(&self, key: &str) -> Result<(), StateError> {
        self.store
            .client
            .delete_item()
            .table_name(self.store.table(HELPER_STATE))
            .key("account", AttributeValue::S(self.account.clone()))
            .key("key", AttributeValue::S(key.to_owned()))
            .send()
            .await
            .map_err(|e| err("DeleteItem", e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        let now = Utc::now().timestamp_millis();
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .store
                .client
                .query()
                .table_name(self.store.table(HELPER_STATE))
                .key_condition_expression("account = :a AND begins_with(#k, :p)")
                .expression_attribute_names("#k", "key")
                .expression_attribute_values(":a", AttributeValue::S(self.account.clone()))
                .expression_attribute_values(":p", AttributeValue::S(prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| err("Query", e))?;
            for item in page.items() {
                let parsed = Item::parse(item)?;
                if parsed.live(now) {
                    let key = item
                        .get("key")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    out.push((key, parsed.value));
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}
