//! Team members and roles, and the API-key features that read the `by_account` index of
//! the API-key table: listing, revocation, the last-used time and the active-key count.
//!
//! Members live in the `members` table (hash `account_id`, range `email`). The rule that
//! an account keeps an active owner is checked on a consistent read and enforced again
//! at write time: demoting or removing an owner runs in a transaction that also checks
//! that another member is still an active owner, so two owners demoting each other at
//! once cannot leave the account without one.
//!
//! Roles are defined here rather than in the API because the store parses them from
//! items and the router may check them for direct producers.

use super::api_keys::{generate_key, hash_key};
use super::executions::{is_conditional_failure, is_conditional_update_failure};
use super::{API_KEYS, GSI_BY_ACCOUNT, Item, MEMBERS, Store, StoreError, attr_n as n, attr_s as s};
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Select, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `last_used_at` is written at most once per this many milliseconds per key.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// What a member or an API key may do. Ordered by rank: `Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs helpers and reads data.
    Member,
    /// Everything but billing; may not change, remove or appoint an owner.
    Admin,
    /// Everything.
    Owner,
}

impl Role {
    /// Every role, highest first.
    pub const ALL: [Self; 3] = [Self::Owner, Self::Admin, Self::Member];

    /// The name in items and the API: `owner`, `admin`, `member`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// The role named `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role may do `p`. Rules that depend on the target (an admin may not
    /// touch an owner) are the caller's to check on top.
    #[must_use]
    pub const fn can(self, p: Permission) -> bool {
        match self {
            Self::Owner => true,
            Self::Admin => !matches!(p, Permission::ManageBilling),
            Self::Member => matches!(p, Permission::RunHelpers | Permission::ReadData),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action a role may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Create, list and revoke API keys.
    ManageKeys,
    /// Invite, re-role and remove members; rename the account.
    ManageTeam,
    /// Plans, checkout, the billing portal and the billing email.
    ManageBilling,
    /// Start executions.
    RunHelpers,
    /// Read executions, the explorer, the profile and the team.
    ReadData,
}

/// Whether a member has joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Invited, not joined yet.
    Invited,
    /// Joined.
    Active,
}

impl MemberStatus {
    /// The name in items and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
        }
    }
}

/// One member of an account's team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Lower-case email; the member's key within the account.
    pub email: String,
    /// What the member may do.
    pub role: Role,
    /// Invited or active.
    pub status: MemberStatus,
    /// Who invited them (a key id or a user's email); `None` for the founding owner.
    pub invited_by: Option<String>,
    /// When they were invited (or added), Unix milliseconds.
    pub invited_at: i64,
    /// When they joined, Unix milliseconds.
    pub joined_at: Option<i64>,
}

impl Member {
    /// A new invitation.
    pub fn invited(email: impl Into<String>, role: Role, by: impl Into<String>, now: i64) -> Self {
        Self {
            email: email.into(),
            role,
            status: MemberStatus::Invited,
            invited_by: Some(by.into()),
            invited_at: now,
            joined_at: None,
        }
    }

    /// A member who is active at once, such as an account's founding owner.
    pub fn active(email: impl Into<String>, role: Role, now: i64) -> Self {
        Self {
            email: email.into(),
            role,
            status: MemberStatus::Active,
            invited_by: None,
            invited_at: now,
            joined_at: Some(now),
        }
    }

    /// An owner who has joined: the kind of member an account must keep.
    #[must_use]
    pub fn is_active_owner(&self) -> bool {
        self.role == Role::Owner && self.status == MemberStatus::Active
    }
}

/// A change to one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Give the member this role.
    SetRole(Role),
    /// Remove the member.
    Remove,
}

/// Why a team change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    /// The email is a member (or invited) already.
    #[error("{email} is already a member of this account")]
    AlreadyMember {
        /// The email.
        email: String,
    },
    /// The email is not a member.
    #[error("{email} is not a member of this account")]
    NotMember {
        /// The email.
        email: String,
    },
    /// The change would leave the account without an active owner.
    #[error(
        "the account's only owner cannot be removed or demoted; make another member owner first"
    )]
    LastOwner,
    /// The team changed between the read and the write; the request may be retried.
    #[error("the team changed while this request ran; retry it")]
    Contended,
    /// DynamoDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The last-owner rule: an active owner may lose the role, by demotion or removal, only
/// while `other_active_owners` (active owners other than `target`) is at least one.
///
/// # Errors
/// [`TeamError::LastOwner`].
pub fn check_owner_kept(
    target: &Member,
    change: MemberChange,
    other_active_owners: usize,
) -> Result<(), TeamError> {
    let stays_owner = change == MemberChange::SetRole(Role::Owner);
    if target.is_active_owner() && !stays_owner && other_active_owners == 0 {
        return Err(TeamError::LastOwner);
    }
    Ok(())
}

/// One API key as listed: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

fn sv(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn nv(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn corrupt(table: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        table: table.to_owned(),
        message,
    }
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

fn member_of(table: &str, item: &Item) -> Result<Member, StoreError> {
    let role = s(item, "role").unwrap_or_default();
    let status = s(item, "status").unwrap_or_default();
    Ok(Member {
        email: s(item, "email").ok_or_else(|| corrupt(table, "member without email".into()))?,
        role: Role::parse(&role).ok_or_else(|| corrupt(table, format!("role {role:?}")))?,
        status: match status.as_str() {
            "invited" => MemberStatus::Invited,
            "active" => MemberStatus::Active,
            other => return Err(corrupt(table, format!("member status {other:?}"))),
        },
        invited_by: s(item, "invited_by"),
        invited_at: n(item, "invited_at").unwrap_or(0),
        joined_at: n(item, "joined_at"),
    })
}

fn transaction_refused<R>(e: &SdkError<TransactWriteItemsError, R>) -> bool {
    e.as_service_error()
        .is_some_and(TransactWriteItemsError::is_transaction_canceled_exception)
}

/// Runs `q` over every page (with `first_hit`, until a page has an item); returns the
/// items and the count, which is all a `Select::Count` query returns.
async fn all_pages(
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
        Ok(s(&item, "account_id").map(|account_id| KeyPrincipal {
            account_id,
            key_id: s(&item, "key_id"),
            role: key_role(&item),
            last_used_at: n(&item, "last_used_at"),
            key_hash,
        }))
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

    /// Adds a member unless the email is one already.
    ///
    /// # Errors
    /// [`TeamError::AlreadyMember`], or [`TeamError::Store`] when DynamoDB fails.
    pub async fn add_member(&self, account_id: &str, m: &Member) -> Result<(), TeamError> {
        let table = self.table(MEMBERS);
        let mut req = self
            .client
            .put_item()
            .table_name(&table)
            .item("account_id", sv(account_id))
            .item("email", sv(m.email.as_str()))
            .item("role", sv(m.role.as_str()))
            .item("status", sv(m.status.as_str()))
            .item("invited_at", nv(m.invited_at))
            .condition_expression("attribute_not_exists(#e)")
            .expression_attribute_names("#e", "email");
        if let Some(by) = &m.invited_by {
            req = req.item("invited_by", sv(by.as_str()));
        }
        if let Some(t) = m.joined_at {
            req = req.item("joined_at", nv(t));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(TeamError::AlreadyMember {
                email: m.email.clone(),
            }),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e).into()),
        }
    }

    /// One member, if the email is one.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn member(
        &self,
        account_id: &str,
        email: &str,
    ) -> Result<Option<Member>, StoreError> {
        let table = self.table(MEMBERS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("account_id", sv(account_id))
            .key("email", sv(email))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        out.item.as_ref().map(|i| member_of(&table, i)).transpose()
    }

    /// Every member of the account, by email.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or an item is corrupt.
    pub async fn list_members(&self, account_id: &str) -> Result<Vec<Member>, StoreError> {
        let table = self.table(MEMBERS);
        let q = self
            .client
            .query()
            .table_name(&table)
            .key_condition_expression("account_id = :a")
            .expression_attribute_values(":a", sv(account_id))
            .consistent_read(true);
        let (items, _) = all_pages(&table, q, false).await?;
        items.iter().map(|i| member_of(&table, i)).collect()
    }

    /// Gives a member a new role under the last-owner rule; returns the member.
    ///
    /// # Errors
    /// [`TeamError`].
    pub async fn set_role(
        &self,
        account_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Member, TeamError> {
        let change = MemberChange::SetRole(role);
        let mut m = self.change_member(account_id, email, change).await?;
        m.role = role;
        Ok(m)
    }

    /// Removes a member under the last-owner rule.
    ///
    /// # Errors
    /// [`TeamError`].
    pub async fn remove_member(&self, account_id: &str, email: &str) -> Result<(), TeamError> {
        let change = MemberChange::Remove;
        self.change_member(account_id, email, change)
            .await
            .map(drop)
    }

    /// Applies `change` if the member's role is still the one read and, when an active
    /// owner loses the role, another member is still an active owner (one transaction).
    /// Returns the member as read.
    async fn change_member(
        &self,
        account_id: &str,
        email: &str,
        change: MemberChange,
    ) -> Result<Member, TeamError> {
        let members = self.list_members(account_id).await?;
        let not_member = || TeamError::NotMember {
            email: email.to_owned(),
        };
        let target = members
            .iter()
            .find(|m| m.email == email)
            .ok_or_else(not_member)?;
        let owners: Vec<&Member> = members
            .iter()
            .filter(|m| m.email != email && m.is_active_owner())
            .collect();
        check_owner_kept(target, change, owners.len())?;
        if change == MemberChange::SetRole(target.role) {
            return Ok(target.clone());
        }
        let table = self.table(MEMBERS);
        let built = |e: BuildError| StoreError::dynamo("TransactWriteItems", &table, e);
        let cur = sv(target.role.as_str());
        let write = match change {
            MemberChange::SetRole(role) => TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(&table)
                    .key("account_id", sv(account_id))
                    .key("email", sv(email))
                    .update_expression("SET #r = :new")
                    .condition_expression("#r = :cur")
                    .expression_attribute_names("#r", "role")
                    .expression_attribute_values(":new", sv(role.as_str()))
                    .expression_attribute_values(":cur", cur)
                    .build()
                    .map_err(built)?,
            ),
            MemberChange::Remove => TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(&table)
                    .key("account_id", sv(account_id))
                    .key("email", sv(email))
                    .condition_expression("#r = :cur")
                    .expression_attribute_names("#r", "role")
                    .expression_attribute_values(":cur", cur)
                    .build()
                    .map_err(built)?,
            ),
        };
        let mut tx = self
            .client
            .transact_write_items()
            .transact_items(write.build());
        // Past the no-op check, an active owner here is losing the role.
        if let Some(other) = owners.first().filter(|_| target.is_active_owner()) {
            let guard = ConditionCheck::builder()
                .table_name(&table)
                .key("account_id", sv(account_id))
                .key("email", sv(other.email.as_str()))
                .condition_expression("#r = :owner AND #s = :active")
                .expression_attribute_names("#r", "role")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":owner", sv(Role::Owner.as_str()))
                .expression_attribute_values(":active", sv(MemberStatus::Active.as_str()))
                .build()
                .map_err(built)?;
            tx = tx.transact_items(TransactWriteItem::builder().condition_check(guard).build());
        }
        match tx.send().await {
            Ok(_) => Ok(target.clone()),
            Err(e) if transaction_refused(&e) => Err(TeamError::Contended),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", &table, e).into()),
        }
    }
}
