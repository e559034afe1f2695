//! Team members and roles.
//!
//! Members live in the `members` table (hash `account_id`, range `email`). The rule that
//! an account keeps an active owner is checked on a consistent read and enforced again
//! at write time: demoting or removing an owner runs in a transaction that also checks
//! that another member is still an active owner, so two owners demoting each other at
//! once cannot leave the account without one.
//!
//! Roles are defined here rather than in the API because the store parses them from
//! items and the router may check them for direct producers.

use super::{
    Item, MEMBERS, Store, StoreError, all_pages, attr_n as n, attr_s as s, corrupt, nv, sv,
};
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a member or an API key may do. Ordered by rank: `Member < Admin < Owner`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
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
    /// Add, authorise, sync and remove CRM connections and their triggers.
    ManageConnections,
    /// Start executions.
    RunHelpers,
    /// Read executions, the explorer, the profile and the team.
    ReadData,
}

/// Whether a member has joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

impl Store {
    /// Adds a member unless the email is one already.
    ///
    /// # Errors
    /// [`TeamError::AlreadyMember`], or [`TeamError::Store`] when DynamoDB fails.
    pub async fn add_member(&self, account_id: &str, m: &Member) -> Result<(), TeamError> {
        match self.put_one(self.member_put(account_id, m)?).await? {
            true => Ok(()),
            false => Err(TeamError::AlreadyMember {
                email: m.email.clone(),
            }),
        }
    }

    /// The put that adds `m` unless the email is a member already (alone, or in a
    /// sign-up's transaction with its account).
    ///
    /// # Errors
    /// [`StoreError`] when the request cannot be built.
    pub(crate) fn member_put(
        &self,
        account_id: &str,
        m: &Member,
    ) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let table = self.table(MEMBERS);
        let mut b = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .item("account_id", sv(account_id))
            .item("email", sv(m.email.as_str()))
            .item("role", sv(m.role.as_str()))
            .item("status", sv(m.status.as_str()))
            .item("invited_at", nv(m.invited_at))
            .condition_expression("attribute_not_exists(#e)")
            .expression_attribute_names("#e", "email");
        if let Some(by) = &m.invited_by {
            b = b.item("invited_by", sv(by.as_str()));
        }
        if let Some(t) = m.joined_at {
            b = b.item("joined_at", nv(t));
        }
        b.build()
            .map_err(|e: BuildError| StoreError::dynamo("PutItem", &table, e))
    }

    /// Marks an invited member as joined, keeping the invited role; returns the member,
    /// or `None` when the invitation was withdrawn (the member removed) meanwhile.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn join_member(
        &self,
        account_id: &str,
        email: &str,
        now: i64,
    ) -> Result<Option<Member>, StoreError> {
        let table = self.table(MEMBERS);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("account_id", sv(account_id))
            .key("email", sv(email))
            .update_expression("SET #s = :active, joined_at = if_not_exists(joined_at, :now)")
            .condition_expression("attribute_exists(#e)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#e", "email")
            .expression_attribute_values(":active", sv(MemberStatus::Active.as_str()))
            .expression_attribute_values(":now", nv(now))
            .send()
            .await;
        match res {
            Ok(_) => self.member(account_id, email).await,
            Err(e) if super::executions::is_conditional_update_failure(&e) => Ok(None),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
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
            Err(e) if super::transaction_canceled(&e) => Err(TeamError::Contended),
            Err(e) => Err(StoreError::dynamo("TransactWriteItems", &table, e).into()),
        }
    }
}
