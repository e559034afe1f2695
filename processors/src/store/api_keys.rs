//! API keys and idempotency keys. Keys are stored only as SHA-256 hashes and looked up
//! by hash; the plain key is shown once, when it is created. Each key also carries a
//! public id, a display prefix, a role and its last use; the `by_account` index lists an
//! account's keys (listing, revocation, the active-key count for the plan limit).

use super::executions::is_conditional_update_failure;
use super::team::Role;
use super::{
    API_KEYS, GSI_BY_ACCOUNT, IDEMPOTENCY, Item, Store, StoreError, all_pages, attr_n as n,
    attr_s as s, corrupt, nv, sv,
};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `last_used_at` is written at most once per this many milliseconds per key.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// One API key as listed: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// Public id, `key_` and 12 hex characters.
    pub key_id: String,
    /// The name given at creation.
    pub name: String,
    /// The key's first 8 characters, to recognise it.
    pub prefix: String,
    /// The role the key acts with.
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds, to within [`TOUCH_INTERVAL_MS`].
    pub last_used_at: Option<i64>,
    /// Unix milliseconds.
    pub revoked_at: Option<i64>,
}

/// A key just issued: the plain key, shown once, and its listing.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// The plain key.
    pub key: String,
    /// What listings show of it.
    pub view: ApiKeyView,
}

/// Who a valid API key acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrincipal {
    /// The key's account.
    pub account_id: String,
    /// The key's hash, for [`Store::touch_api_key`].
    pub key_hash: String,
    /// The public id; `None` for keys issued before ids existed.
    pub key_id: Option<String>,
    /// The key's role; `admin` for keys issued before roles existed.
    pub role: Role,
    /// When it was last used, Unix milliseconds.
    pub last_used_at: Option<i64>,
}

impl KeyPrincipal {
    /// Whether `last_used_at` is stale enough to be written again.
    #[must_use]
    pub fn needs_touch(&self, now: i64) -> bool {
        self.last_used_at
            .is_none_or(|t| now.saturating_sub(t) > TOUCH_INTERVAL_MS)
    }
}

/// A new public key id: `key_` and 12 random hex characters.
#[must_use]
pub fn new_key_id() -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    id.truncate(12);
    format!("key_{id}")
}

/// The part of a key shown in listings: its first 8 characters.
#[must_use]
pub fn key_prefix(key: &str) -> String {
    key.chars().take(8).collect()
}

/// Milliseconds as a zero-padded string, so the index sorts them as numbers.
#[must_use]
pub fn sortable_millis(ms: i64) -> String {
    format!("{ms:015}")
}

/// A key without a role predates roles and acts as admin; an unknown role gets the
/// least privilege.
fn key_role(item: &Item) -> Role {
    match s(item, "role") {
        None => Role::Admin,
        Some(r) => Role::parse(&r).unwrap_or_else(|| {
            tracing::warn!(role = %r, "Unknown role on an API key; it acts as member.");
            Role::Member
        }),
    }
}

fn key_view(table: &str, item: &Item) -> Result<ApiKeyView, StoreError> {
    Ok(ApiKeyView {
        key_id: s(item, "key_id").ok_or_else(|| corrupt(table, "API key without key_id".into()))?,
        name: s(item, "name").unwrap_or_default(),
        prefix: s(item, "prefix").unwrap_or_default(),
        role: key_role(item),
        created_at: n(item, "created_at").unwrap_or(0),
        last_used_at: n(item, "last_used_at"),
        revoked_at: n(item, "revoked_at"),
    })
}

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

/// An idempotency key an execution claims as it is queued ([`Store::put_queued`]).
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyClaim<'a> {
    /// The key, unique within the account.
    pub key: &'a str,
    /// What the request was, so a different request under the same key is told apart.
    pub fingerprint: &'a str,
    /// How long the key holds; `None`: for good.
    pub window: Option<std::time::Duration>,
}

/// Whether an execution's idempotency key was new ([`Store::put_queued`]).
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

    /// The put that claims `claim.key` for `execution_id`, refused (by its condition)
    /// while the key is held, within `claim.window` when one is given: an older mapping
    /// is replaced. Part of the queued write's transaction ([`Store::put_queued`]).
    ///
    /// # Errors
    /// [`StoreError`] when the request cannot be built.
    pub fn idempotency_claim(
        &self,
        account_id: &str,
        execution_id: &str,
        claim: &IdempotencyClaim<'_>,
    ) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let table = self.table(IDEMPOTENCY);
        let now = mfh_pipeline::now_millis();
        let (condition, cutoff) = match claim.window {
            Some(w) => (
                "attribute_not_exists(#s) OR created_at < :cutoff",
                Some(now.saturating_sub(i64::try_from(w.as_millis()).unwrap_or(i64::MAX))),
            ),
            None => ("attribute_not_exists(#s)", None),
        };
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .item("scope", sv(format!("{account_id}#{}", claim.key)))
            .item("execution_id", sv(execution_id))
            .item("fingerprint", sv(claim.fingerprint))
            .item("created_at", nv(now))
            .condition_expression(condition)
            .expression_attribute_names("#s", "scope")
            .set_expression_attribute_values(cutoff.map(|c| [(":cutoff".to_owned(), nv(c))].into()))
            .build()
            .map_err(|e| StoreError::dynamo("TransactWriteItems", &table, e))
    }

    /// Who holds an idempotency key (a consistent read), `None` when nobody does.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub(super) async fn idempotency_holder(
        &self,
        account_id: &str,
        key: &str,
    ) -> Result<Option<Idempotency>, StoreError> {
        let table = self.table(IDEMPOTENCY);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("scope", sv(format!("{account_id}#{key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        Ok(out.item.map(|item| Idempotency::Existing {
            execution_id: s(&item, "execution_id").unwrap_or_default(),
            fingerprint: s(&item, "fingerprint").unwrap_or_default(),
        }))
    }
}

impl Store {
    /// Issues a key for `account_id` with all the fields listings and the `by_account`
    /// index need; the plain key is only in the result.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn issue_api_key(
        &self,
        account_id: &str,
        name: &str,
        role: Role,
    ) -> Result<IssuedKey, StoreError> {
        let key = generate_key();
        let now = mfh_pipeline::now_millis();
        let (key_id, prefix) = (new_key_id(), key_prefix(&key));
        let table = self.table(API_KEYS);
        self.client
            .put_item()
            .table_name(&table)
            .item("key_hash", sv(hash_key(&key)))
            .item("account_id", sv(account_id))
            .item("key_id", sv(key_id.as_str()))
            .item("name", sv(name))
            .item("prefix", sv(prefix.as_str()))
            .item("role", sv(role.as_str()))
            .item("created_at", nv(now))
            .item("created_at_s", sv(sortable_millis(now)))
            .condition_expression("attribute_not_exists(key_hash)")
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        let view = ApiKeyView {
            key_id,
            name: name.to_owned(),
            prefix,
            role,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        Ok(IssuedKey { key, view })
    }

    /// Who a key acts for, unless it is unknown or revoked.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn principal_for_key(&self, key: &str) -> Result<Option<KeyPrincipal>, StoreError> {
        let table = self.table(API_KEYS);
        let key_hash = hash_key(key);
        if let Some(p) = self.key_cache.get(&key_hash) {
            return Ok(Some(p));
        }
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("key_hash", sv(key_hash.as_str()))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        let Some(item) = out.item.filter(|i| !i.contains_key("revoked_at")) else {
            return Ok(None);
        };
        let principal = s(&item, "account_id").map(|account_id| KeyPrincipal {
            account_id,
            key_id: s(&item, "key_id"),
            role: key_role(&item),
            last_used_at: n(&item, "last_used_at"),
            key_hash: key_hash.clone(),
        });
        if let Some(p) = &principal {
            self.key_cache.put(&key_hash, p.clone());
        }
        Ok(principal)
    }

    /// Sets `last_used_at` to `now` unless it is younger than [`TOUCH_INTERVAL_MS`];
    /// returns whether it wrote. A failed condition (another request came first) is not
    /// an error.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn touch_api_key(&self, key_hash: &str, now: i64) -> Result<bool, StoreError> {
        let table = self.table(API_KEYS);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("key_hash", sv(key_hash))
            .update_expression("SET last_used_at = :now")
            .condition_expression(
                "attribute_exists(key_hash) AND \
                 (attribute_not_exists(last_used_at) OR last_used_at < :cutoff)",
            )
            .expression_attribute_values(":now", nv(now))
            .expression_attribute_values(":cutoff", nv(now.saturating_sub(TOUCH_INTERVAL_MS)))
            .send()
            .await;
        // Written now, by this request or by another process just before it: either way
        // the cached key must not ask for another touch until the interval has passed.
        if res.is_ok() || res.as_ref().is_err_and(is_conditional_update_failure) {
            self.key_cache
                .update(key_hash, |p| p.last_used_at = Some(now));
        }
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// A query of the account's keys on the `by_account` index, newest first. The index
    /// is eventually consistent: a key issued a moment ago may be missing.
    fn account_keys(&self, table: &str, account_id: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(table)
            .index_name(GSI_BY_ACCOUNT)
            .key_condition_expression("account_id = :a")
            .expression_attribute_values(":a", sv(account_id))
            .scan_index_forward(false)
    }

    /// The account's key `key_id`, as stored.
    async fn key_item(&self, account_id: &str, key_id: &str) -> Result<Option<Item>, StoreError> {
        let table = self.table(API_KEYS);
        let q = self
            .account_keys(&table, account_id)
            .filter_expression("key_id = :k")
            .expression_attribute_values(":k", sv(key_id));
        Ok(all_pages(&table, q, true).await?.0.into_iter().next())
    }

    /// The account's keys, newest first, revoked ones included.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or an item is corrupt.
    pub async fn list_api_keys(&self, account_id: &str) -> Result<Vec<ApiKeyView>, StoreError> {
        let table = self.table(API_KEYS);
        let (items, _) = all_pages(&table, self.account_keys(&table, account_id), false).await?;
        items.iter().map(|i| key_view(&table, i)).collect()
    }

    /// The account's key `key_id`, if it has one by that id.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn find_api_key(
        &self,
        account_id: &str,
        key_id: &str,
    ) -> Result<Option<ApiKeyView>, StoreError> {
        let table = self.table(API_KEYS);
        let item = self.key_item(account_id, key_id).await?;
        item.as_ref().map(|i| key_view(&table, i)).transpose()
    }

    /// Revokes the account's key `key_id`; false when the account has no such key. The
    /// write is conditional on the key's account, so another account's key is never
    /// revoked. Revoking twice keeps the first `revoked_at`.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn revoke_api_key(&self, account_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let item = self.key_item(account_id, key_id).await?;
        let Some(hash) = item.as_ref().and_then(|i| s(i, "key_hash")) else {
            return Ok(false);
        };
        let table = self.table(API_KEYS);
        self.key_cache.forget(&hash);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("key_hash", sv(hash))
            .update_expression("SET revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("account_id = :a AND key_id = :k")
            .expression_attribute_values(":now", nv(mfh_pipeline::now_millis()))
            .expression_attribute_values(":a", sv(account_id))
            .expression_attribute_values(":k", sv(key_id))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// How many of the account's keys are not revoked, for the plan's `api_keys` limit.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn count_active_api_keys(&self, account_id: &str) -> Result<u64, StoreError> {
        let table = self.table(API_KEYS);
        let q = self
            .account_keys(&table, account_id)
            .filter_expression("attribute_not_exists(revoked_at)")
            .select(Select::Count);
        Ok(all_pages(&table, q, false).await?.1)
    }
}
