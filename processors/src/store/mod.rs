//! The DynamoDB tables mfh keeps: executions (the API's read model), idempotency keys,
//! API keys, helper outcomes (the effect ledger), the sandbox CRM, and the accounts side:
//! accounts with their billing state, team members, metered usage, Stripe customers and
//! event ids, and sent notifications.
//!
//! Every table is created at start-up if absent. Every write is keyed by an id the
//! pipeline already has, so repeating it changes nothing.

pub mod accounts;
pub mod api_keys;
mod cache;
pub mod connections;
pub mod executions;
pub mod helpers;
pub mod outcomes;
mod requests;
pub mod state;
pub mod syncs;
pub mod team;
pub mod timers;
pub mod triggers;
pub mod usage;
pub mod users;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use serde::{Deserialize, Serialize};

/// Where the tables live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoConfig {
    /// Endpoint URL; empty for AWS's regional endpoint.
    #[serde(default)]
    pub endpoint: String,
    /// AWS region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Prefix of every table name.
    #[serde(default = "default_prefix")]
    pub table_prefix: String,
    /// Access key id; empty reads `AWS_ACCESS_KEY_ID`.
    #[serde(default)]
    pub access_key_id: String,
    /// Secret key; empty reads `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: String,
    /// How long a process serves what changes rarely from memory, in ms: saved helper
    /// definitions, live API keys and accounts as admission sees them. A change made through
    /// another process reaches it within this bound (through its own store at once): a
    /// revoked key or a suspended account may be honoured for this long. 0 reads the
    /// table every time.
    #[serde(default = "default_cache_ttl_ms")]
    pub cache_ttl_ms: u64,
}

fn default_cache_ttl_ms() -> u64 {
    2_000
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_prefix() -> String {
    "mfh_".into()
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB answered with an error or could not be reached.
    #[error("dynamodb {operation} on {table}: {message}")]
    Dynamo {
        /// The operation.
        operation: &'static str,
        /// The table.
        table: String,
        /// The SDK's description.
        message: String,
        /// Whether no retry can succeed ([`StoreError::is_permanent`]).
        permanent: bool,
    },
    /// An item did not have the expected shape.
    #[error("corrupt item in {table}: {message}")]
    Corrupt {
        /// The table.
        table: String,
        /// What was wrong.
        message: String,
    },
}

impl StoreError {
    pub(crate) fn dynamo<E: std::error::Error + DynamoErrorCode + 'static>(
        operation: &'static str,
        table: &str,
        e: E,
    ) -> Self {
        Self::Dynamo {
            operation,
            table: table.to_owned(),
            permanent: e.code().is_some_and(|c| PERMANENT_CODES.contains(&c)),
            message: mfh_pipeline::report(&e),
        }
    }

    /// Whether asking again cannot succeed: DynamoDB refused the request itself (a
    /// `ValidationException`: an empty key, an item over 400 KB), or an item is corrupt.
    /// The record that caused it is dead-lettered instead of stopping its processor.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Dynamo { permanent, .. } => *permanent,
            Self::Corrupt { .. } => true,
        }
    }
}

/// DynamoDB error codes that no retry can change.
const PERMANENT_CODES: &[&str] = &["ValidationException", "BuildError"];

/// The error code of a DynamoDB failure, for [`StoreError::is_permanent`].
pub(crate) trait DynamoErrorCode {
    /// The service's error code, if it answered with one.
    fn code(&self) -> Option<&str>;
}

impl<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R> DynamoErrorCode
    for aws_sdk_dynamodb::error::SdkError<E, R>
{
    fn code(&self) -> Option<&str> {
        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(self)
    }
}

/// A request the SDK could not build is a programming error, as permanent as a refusal.
impl DynamoErrorCode for aws_sdk_dynamodb::error::BuildError {
    fn code(&self) -> Option<&str> {
        Some("BuildError")
    }
}

/// Whether a `TransactWriteItems` was cancelled (a condition of one of its items failed).
pub(crate) fn transaction_canceled<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    e.as_service_error().is_some_and(
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::is_transaction_canceled_exception,
    )
}

/// The client and the table names of one deployment. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// The DynamoDB client.
    pub client: Client,
    prefix: String,
    helper_cache: std::sync::Arc<cache::TtlCache<helpers::SavedHelper>>,
    /// Accounts as admission reads them; billing's own read-modify-writes never use it.
    account_cache: std::sync::Arc<cache::TtlCache<accounts::AccountRecord>>,
    /// Live API keys by hash.
    key_cache: std::sync::Arc<cache::TtlCache<api_keys::KeyPrincipal>>,
    /// Sandbox catalogs (tags, users, companies) by connection, as applies read them.
    sandbox_catalogs: std::sync::Arc<cache::TtlCache<SandboxCatalog>>,
}

type SandboxCatalog = std::sync::Arc<crate::connectors::sandbox::Catalog>;

/// A table's name without the prefix, with its key and indexes.
struct TableDef {
    name: &'static str,
    hash: &'static str,
    range: Option<&'static str>,
    gsis: &'static [(&'static str, &'static str, &'static str)],
}

/// Executions by id, with indexes by account and by account+helper, newest first.
pub const EXECUTIONS: &str = "executions";
/// Index of executions by account, sorted by request time.
pub const GSI_BY_ACCOUNT: &str = "by_account";
/// Index of executions by account and helper, sorted by request time.
pub const GSI_BY_HELPER: &str = "by_helper";
/// Index of executions by account and saved helper, sorted by request time.
pub const GSI_BY_HELPER_ID: &str = "by_helper_id";
/// Index of executions by account and contact, sorted by request time.
pub const GSI_BY_CONTACT: &str = "by_contact";
/// Saved helpers by id, indexed by account.
pub const HELPERS: &str = "helpers";
/// Idempotency keys of the API.
pub const IDEMPOTENCY: &str = "idempotency";
/// API keys by hash.
pub const API_KEYS: &str = "api_keys";
/// Helper outcomes by execution id: the effect ledger that makes redelivery harmless.
pub const OUTCOMES: &str = "outcomes";
/// The sandbox CRM's contacts.
pub const SANDBOX_CONTACTS: &str = "sandbox_contacts";
/// Helper state: rotations, counters, snapshots, the effect journal.
pub const HELPER_STATE: &str = "helper_state";
/// Follow-up executions waiting for their time.
pub const TIMERS: &str = "timers";
/// Accounts: profile and billing state.
pub const ACCOUNTS: &str = "accounts";
/// Team members by account and email.
pub const MEMBERS: &str = "members";
/// Metered usage by account: monthly executions, helper instances.
pub const USAGE: &str = "usage";
/// Executions already counted, by execution id.
pub const USAGE_MARKS: &str = "usage_marks";
/// Stripe customer → account.
pub const STRIPE_CUSTOMERS: &str = "stripe_customers";
/// Stripe event ids already received.
pub const STRIPE_EVENTS: &str = "stripe_events";
/// Notifications claimed or sent, by account and notification id.
pub const NOTIFICATIONS_SENT: &str = "notifications_sent";
/// CRM connections by id, indexed by account and by vendor account.
pub const CONNECTIONS: &str = "connections";
/// Index of connections by the vendor account they reach (`platform#id`): how an
/// app-level webhook event finds its connections. Sparse: only vendors that need it.
pub const GSI_BY_VENDOR_ACCOUNT: &str = "by_vendor_account";
/// One-time OAuth states (hashed) awaiting their callback.
pub const OAUTH_STATES: &str = "oauth_states";
/// What each execution applied to each vendor CRM contact: the apply journal.
pub const CRM_APPLIES: &str = "crm_applies";
/// CRM webhook event ids already received.
pub const CRM_EVENT_IDS: &str = "crm_event_ids";
/// Contact sync progress per connection.
pub const CONTACT_SYNCS: &str = "contact_syncs";
/// CRM event triggers by account.
pub const TRIGGERS: &str = "triggers";
/// Dashboard users by email.
pub const USERS: &str = "users";
/// Dashboard sessions by token hash, indexed by user.
pub const SESSIONS: &str = "sessions";
/// Index of sessions by user, oldest first.
pub const GSI_BY_USER: &str = "by_user";
/// One-time links (verification, password reset, invites) by token hash.
pub const AUTH_LINKS: &str = "auth_links";

const TABLES: &[TableDef] = &[
    TableDef {
        name: EXECUTIONS,
        hash: "execution_id",
        range: None,
        gsis: &[
            (GSI_BY_ACCOUNT, "account_id", "sort_key"),
            (GSI_BY_HELPER, "account_helper", "sort_key"),
            (GSI_BY_HELPER_ID, "account_helper_id", "sort_key"),
            (GSI_BY_CONTACT, "account_contact", "sort_key"),
        ],
    },
    TableDef {
        name: HELPERS,
        hash: "helper_id",
        range: None,
        gsis: &[(GSI_BY_ACCOUNT, "account_id", "created_at_s")],
    },
    TableDef {
        name: IDEMPOTENCY,
        hash: "scope",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: API_KEYS,
        hash: "key_hash",
        range: None,
        // Keys of an account, newest first: `created_at_s` is the zero-padded millis.
        gsis: &[(GSI_BY_ACCOUNT, "account_id", "created_at_s")],
    },
    TableDef {
        name: OUTCOMES,
        hash: "execution_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: HELPER_STATE,
        hash: "account",
        range: Some("key"),
        gsis: &[],
    },
    TableDef {
        name: TIMERS,
        hash: "shard",
        range: Some("due"),
        gsis: &[],
    },
    TableDef {
        name: ACCOUNTS,
        hash: "account_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: MEMBERS,
        hash: "account_id",
        range: Some("email"),
        gsis: &[],
    },
    TableDef {
        name: USAGE,
        hash: "account_id",
        range: Some("item"),
        gsis: &[],
    },
    TableDef {
        name: USAGE_MARKS,
        hash: "execution_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: STRIPE_CUSTOMERS,
        hash: "customer_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: STRIPE_EVENTS,
        hash: "event_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: NOTIFICATIONS_SENT,
        hash: "scope",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: CONNECTIONS,
        hash: "connection_id",
        range: None,
        gsis: &[
            (GSI_BY_ACCOUNT, "account_id", "created_at_s"),
            (GSI_BY_VENDOR_ACCOUNT, "vendor_account", "created_at_s"),
        ],
    },
    TableDef {
        name: OAUTH_STATES,
        hash: "state",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: CRM_APPLIES,
        hash: "execution_id",
        range: Some("target"),
        gsis: &[],
    },
    TableDef {
        name: CRM_EVENT_IDS,
        hash: "event_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: CONTACT_SYNCS,
        hash: "connection_id",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: TRIGGERS,
        hash: "account_id",
        range: Some("trigger_id"),
        gsis: &[],
    },
    TableDef {
        name: USERS,
        hash: "email",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: SESSIONS,
        hash: "token_hash",
        range: None,
        gsis: &[(GSI_BY_USER, "email", "created_at_s")],
    },
    TableDef {
        name: AUTH_LINKS,
        hash: "token_hash",
        range: None,
        gsis: &[],
    },
    TableDef {
        name: SANDBOX_CONTACTS,
        hash: "connection",
        range: Some("contact_id"),
        gsis: &[],
    },
];

impl Store {
    /// Connects to DynamoDB as configured, counting requests into metrics of its own.
    #[must_use]
    pub fn connect(cfg: &DynamoConfig) -> Self {
        Self::connect_counted(cfg, &mfh_pipeline::metrics::Metrics::new())
    }

    /// Connects to DynamoDB as configured, counting every request into `metrics`.
    #[must_use]
    pub fn connect_counted(cfg: &DynamoConfig, metrics: &mfh_pipeline::metrics::Metrics) -> Self {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let key = if cfg.access_key_id.is_empty() {
            env("AWS_ACCESS_KEY_ID")
        } else {
            cfg.access_key_id.clone()
        };
        let secret = if cfg.secret_access_key.is_empty() {
            env("AWS_SECRET_ACCESS_KEY")
        } else {
            cfg.secret_access_key.clone()
        };
        let mut b = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(Credentials::new(key, secret, None, None, "mfh-config"));
        if !cfg.endpoint.is_empty() {
            b = b.endpoint_url(cfg.endpoint.clone());
        }
        let ttl = std::time::Duration::from_millis(cfg.cache_ttl_ms);
        b = b.interceptor(requests::RequestCounter {
            metrics: metrics.clone(),
            prefix: cfg.table_prefix.clone(),
        });
        Self {
            client: Client::from_conf(b.build()),
            prefix: cfg.table_prefix.clone(),
            helper_cache: std::sync::Arc::new(cache::TtlCache::new(ttl)),
            account_cache: std::sync::Arc::new(cache::TtlCache::new(ttl)),
            key_cache: std::sync::Arc::new(cache::TtlCache::new(ttl)),
            sandbox_catalogs: std::sync::Arc::new(cache::TtlCache::new(ttl)),
        }
    }

    /// Makes `put` on its own, a `PutItem` with its condition: false when the condition
    /// refused it. The same put can join a transaction instead.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails otherwise.
    pub(crate) async fn put_one(
        &self,
        put: aws_sdk_dynamodb::types::Put,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if executions::is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("PutItem", &put.table_name, e)),
        }
    }

    /// The per-process cache of sandbox catalogs; the sandbox forgets what it writes.
    pub(crate) fn sandbox_catalogs(&self) -> &cache::TtlCache<SandboxCatalog> {
        &self.sandbox_catalogs
    }

    /// The full name of a table.
    #[must_use]
    pub fn table(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Creates every table that does not exist yet.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB refuses.
    pub async fn ensure_tables(&self) -> Result<(), StoreError> {
        let existing = self
            .client
            .list_tables()
            .limit(100)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("ListTables", "*", e))?
            .table_names
            .unwrap_or_default();
        for def in TABLES {
            let name = self.table(def.name);
            if existing.contains(&name) {
                self.add_missing_indexes(def, &name).await?;
                continue;
            }
            let mut attrs = vec![def.hash];
            attrs.extend(def.range);
            for (_, h, r) in def.gsis {
                attrs.push(h);
                attrs.push(r);
            }
            attrs.sort_unstable();
            attrs.dedup();
            let mut req = self
                .client
                .create_table()
                .table_name(&name)
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(def.hash, KeyType::Hash));
            if let Some(r) = def.range {
                req = req.key_schema(key(r, KeyType::Range));
            }
            for a in attrs {
                req = req.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(a)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(|e| StoreError::dynamo("CreateTable", &name, e))?,
                );
            }
            for (index, h, r) in def.gsis {
                req = req.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(*index)
                        .key_schema(key(h, KeyType::Hash))
                        .key_schema(key(r, KeyType::Range))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(|e| StoreError::dynamo("CreateTable", &name, e))?,
                );
            }
            match req.send().await {
                Ok(_) => tracing::info!(table = %name, "Table created."),
                // Another process created it between our list and create.
                Err(e)
                    if e.as_service_error().is_some_and(
                        aws_sdk_dynamodb::operation::create_table::CreateTableError::is_resource_in_use_exception,
                    ) => {}
                Err(e) => return Err(StoreError::dynamo("CreateTable", &name, e)),
            }
        }
        Ok(())
    }

    /// Adds the indexes a table created by an older version lacks, one per request as
    /// DynamoDB requires; items written before are indexed by the server's backfill.
    async fn add_missing_indexes(&self, def: &TableDef, name: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{
            CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
        };
        if def.gsis.is_empty() {
            return Ok(());
        }
        let table = self
            .client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DescribeTable", name, e))?
            .table;
        let present: Vec<String> = table
            .and_then(|t| t.global_secondary_indexes)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| g.index_name)
            .collect();
        for (index, h, r) in def.gsis {
            if present.iter().any(|p| p == index) {
                continue;
            }
            let err = |e| StoreError::dynamo("UpdateTable", name, e);
            let create = CreateGlobalSecondaryIndexAction::builder()
                .index_name(*index)
                .key_schema(key(h, KeyType::Hash))
                .key_schema(key(r, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(err)?;
            let mut req = self
                .client
                .update_table()
                .table_name(name)
                .global_secondary_index_updates(
                    GlobalSecondaryIndexUpdate::builder().create(create).build(),
                );
            for a in [h, r] {
                req = req.attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*a)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .map_err(err)?,
                );
            }
            req.send()
                .await
                .map_err(|e| StoreError::dynamo("UpdateTable", name, e))?;
            tracing::info!(table = %name, index, "Index added.");
        }
        Ok(())
    }
}

/// A DynamoDB item.
pub(crate) type Item = std::collections::HashMap<String, AttributeValue>;

/// The string attribute `k` of an item.
pub(crate) fn attr_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

/// The number attribute `k` of an item.
pub(crate) fn attr_n(item: &Item, k: &str) -> Option<i64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A string attribute.
pub(crate) fn sv(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn nv(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A corrupt-item error for `table`.
pub(crate) fn corrupt(table: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        table: table.to_owned(),
        message,
    }
}

/// Runs `q` over every page (with `first_hit`, until a page has an item); returns the
/// items and the count, which is all a `Select::Count` query returns.
pub(crate) async fn all_pages(
    table: &str,
    q: QueryFluentBuilder,
    first_hit: bool,
) -> Result<(Vec<Item>, u64), StoreError> {
    let (mut items, mut count, mut start) = (Vec::new(), 0_u64, None);
    loop {
        let page = q
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| StoreError::dynamo("Query", table, e))?;
        count += u64::try_from(page.count).unwrap_or(0);
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() && (!first_hit || items.is_empty()) => start = Some(k),
            _ => return Ok((items, count)),
        }
    }
}

impl Store {
    /// Whether the item with string key attributes `key` exists in `table` (a consistent
    /// read).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub(crate) async fn exists(
        &self,
        table: &str,
        key: &[(&str, &str)],
    ) -> Result<bool, StoreError> {
        let table = self.table(table);
        let mut req = self
            .client
            .get_item()
            .table_name(&table)
            .consistent_read(true);
        for (k, v) in key {
            req = req.key(*k, AttributeValue::S((*v).to_owned()));
        }
        let out = req
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        Ok(out.item.is_some())
    }
}

#[allow(clippy::expect_used)]
fn key(name: &str, kt: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kt)
        .build()
        .expect("attribute name and key type are set")
}
