//! API keys and idempotency keys. Keys are stored only as SHA-256 hashes and looked up
//! by hash; the plain key is shown once, when it is created.

use super::{API_KEYS, IDEMPOTENCY, Store, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

/// The hex SHA-256 of an API key.
#[must_use]
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random API key: `mfh_` and 32 random bytes in hex.
#[must_use]
pub fn generate_key() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("mfh_{}{}", a.simple(), b.simple())
}

/// What `remember_idempotency_key` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// The key is new and now maps to the given execution.
    New,
    /// The key was used before for this execution, with this request fingerprint.
    Existing {
        /// The earlier execution.
        execution_id: String,
        /// The earlier request's fingerprint.
        fingerprint: String,
    },
}

impl Store {
    /// Stores a new admin API key for `account_id`; returns the plain key (shown once).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn create_api_key(&self, account_id: &str, name: &str) -> Result<String, StoreError> {
        self.issue_api_key(account_id, name, super::team::Role::Admin)
            .await
            .map(|k| k.key)
    }

    /// The account an API key belongs to, unless unknown or revoked.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn account_for_key(&self, key: &str) -> Result<Option<String>, StoreError> {
        let table = self.table(API_KEYS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("key_hash", AttributeValue::S(hash_key(key)))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        Ok(out.item.and_then(|item| {
            if item.contains_key("revoked_at") {
                return None;
            }
            item.get("account_id").and_then(|v| v.as_s().ok()).cloned()
        }))
    }

    /// Maps `(account, key)` to `execution_id` unless the key is already mapped.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn remember_idempotency_key(
        &self,
        account_id: &str,
        key: &str,
        execution_id: &str,
        fingerprint: &str,
    ) -> Result<Idempotency, StoreError> {
        let table = self.table(IDEMPOTENCY);
        let scope = format!("{account_id}#{key}");
        let res = self
            .client
            .put_item()
            .table_name(&table)
            .item("scope", AttributeValue::S(scope.clone()))
            .item("execution_id", AttributeValue::S(execution_id.to_owned()))
            .item("fingerprint", AttributeValue::S(fingerprint.to_owned()))
            .item(
                "created_at",
                AttributeValue::N(mfh_pipeline::now_millis().to_string()),
            )
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", "scope")
            .send()
            .await;
        match res {
            Ok(_) => Ok(Idempotency::New),
            Err(e) if super::executions::is_conditional_failure(&e) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&table)
                    .key("scope", AttributeValue::S(scope))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
                let item = out.item.unwrap_or_default();
                let get = |k: &str| {
                    item.get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                Ok(Idempotency::Existing {
                    execution_id: get("execution_id"),
                    fingerprint: get("fingerprint"),
                })
            }
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }
}
