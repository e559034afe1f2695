//! Dashboard users, their sessions and the one-time links emails carry.
//!
//! - `users` (hash `email`): the name, the Argon2id password hash (the API hashes; the
//!   store only keeps the PHC string), when the address was verified and the account a
//!   sign-in opens. Membership and roles stay in `members`.
//! - `sessions` (hash `token_hash`, index `by_user`): a signed-in browser. Only the
//!   SHA-256 of the cookie's random token is stored, so a read of the table signs nobody
//!   in; the CSRF token is kept beside it and checked against the request's header.
//! - `auth_links` (hash `token_hash`): email verification, password reset and invite
//!   links. A link is used by a conditional update that also checks its purpose and
//!   expiry, so two clicks at once use it once.
//!
//! Every row with an expiry carries `expires_at_s` (Unix seconds) for DynamoDB's TTL; the
//! code checks the expiry itself, as TTL deletion is lazy.

use super::executions::is_conditional_update_failure;
use super::team::{Member, Role};
use super::{
    AUTH_LINKS, GSI_BY_USER, Item, SESSIONS, Store, StoreError, USERS, all_pages, attr_n as n,
    attr_s as s, corrupt, nv, sv,
};
use crate::billing::BillingState;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

/// A dashboard user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Lower-case email; the user's key, and their member key in every account.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// When the address was proven, Unix milliseconds.
    pub verified_at: Option<i64>,
    /// When the user signed up, Unix milliseconds.
    pub created_at: i64,
    /// The account a sign-in opens: the one they created, or the last they joined.
    pub default_account: String,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 hex of the cookie's token.
    pub token_hash: String,
    /// Whose session.
    pub email: String,
    /// The account it acts in.
    pub account_id: String,
    /// The CSRF token state-changing requests must echo.
    pub csrf: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; not valid from then on.
    pub expires_at: i64,
}

/// What a one-time link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Proves the address of a new user.
    Verify,
    /// Sets a new password.
    Reset,
    /// Joins an account's team.
    Invite,
}

impl LinkPurpose {
    /// The name in items.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
            Self::Invite => "invite",
        }
    }

    fn parse(v: &str) -> Option<Self> {
        [Self::Verify, Self::Reset, Self::Invite]
            .into_iter()
            .find(|p| p.as_str() == v)
    }
}

/// A one-time link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeLink {
    /// SHA-256 hex of the link's token.
    pub token_hash: String,
    /// What it does.
    pub purpose: LinkPurpose,
    /// Whose address it was sent to.
    pub email: String,
    /// The account an invite joins.
    pub account_id: Option<String>,
    /// The role an invite grants.
    pub role: Option<Role>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; unusable from then on.
    pub expires_at: i64,
    /// When it was used, Unix milliseconds.
    pub used_at: Option<i64>,
}

/// What using a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkUse {
    /// Used now, by this caller.
    Used(OneTimeLink),
    /// No such link (or one for another purpose).
    Unknown,
    /// Past its expiry.
    Expired,
    /// Used before.
    AlreadyUsed,
}

/// A new random secret for a cookie or a link: 32 bytes, hex.
#[must_use]
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn expiry_s(ms: i64) -> String {
    (ms / 1000).to_string()
}

fn user_of(table: &str, item: &Item) -> Result<User, StoreError> {
    Ok(User {
        email: s(item, "email").ok_or_else(|| corrupt(table, "user without email".into()))?,
        name: s(item, "name").unwrap_or_default(),
        password_hash: s(item, "password_hash").unwrap_or_default(),
        verified_at: n(item, "verified_at"),
        created_at: n(item, "created_at").unwrap_or(0),
        default_account: s(item, "default_account").unwrap_or_default(),
    })
}

fn session_of(table: &str, item: &Item) -> Result<Session, StoreError> {
    let field = |k: &str| s(item, k).ok_or_else(|| corrupt(table, format!("session without {k}")));
    Ok(Session {
        token_hash: field("token_hash")?,
        email: field("email")?,
        account_id: field("account_id")?,
        csrf: field("csrf")?,
        created_at: n(item, "created_at").unwrap_or(0),
        expires_at: n(item, "expires_at").unwrap_or(0),
    })
}

fn link_of(table: &str, item: &Item) -> Result<OneTimeLink, StoreError> {
    let purpose = s(item, "purpose").unwrap_or_default();
    Ok(OneTimeLink {
        token_hash: s(item, "token_hash")
            .ok_or_else(|| corrupt(table, "link without token_hash".into()))?,
        purpose: LinkPurpose::parse(&purpose)
            .ok_or_else(|| corrupt(table, format!("link purpose {purpose:?}")))?,
        email: s(item, "email").unwrap_or_default(),
        account_id: s(item, "account_id"),
        role: s(item, "role").as_deref().and_then(Role::parse),
        created_at: n(item, "created_at").unwrap_or(0),
        expires_at: n(item, "expires_at").unwrap_or(0),
        used_at: n(item, "used_at"),
    })
}

impl Store {
    fn user_put(&self, u: &User) -> Result<Put, StoreError> {
        let table = self.table(USERS);
        let mut b = Put::builder()
            .table_name(&table)
            .item("email", sv(u.email.as_str()))
            .item("name", sv(u.name.as_str()))
            .item("password_hash", sv(u.password_hash.as_str()))
            .item("created_at", nv(u.created_at))
            .item("default_account", sv(u.default_account.as_str()))
            .condition_expression("attribute_not_exists(email)");
        if let Some(t) = u.verified_at {
            b = b.item("verified_at", nv(t));
        }
        b.build()
            .map_err(|e: BuildError| StoreError::dynamo("PutItem", &table, e))
    }

    /// Signs up `user` as the owner of a new account, in one transaction: the user, the
    /// account (with `billing`) and its owner member. False when the email is taken
    /// (nothing is written then).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn register_owner(
        &self,
        user: &User,
        account_name: &str,
        billing: &BillingState,
    ) -> Result<bool, StoreError> {
        let account_id = user.default_account.as_str();
        let owner = Member::active(user.email.as_str(), Role::Owner, user.created_at);
        let puts = [
            self.user_put(user)?,
            self.account_put(account_id, account_name, Some(&user.email), billing)?,
            self.member_put(account_id, &owner)?,
        ];
        let tx = self.client.transact_write_items().set_transact_items(Some(
            puts.into_iter()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .collect(),
        ));
        match tx.send().await {
            Ok(_) => Ok(true),
            Err(e) if super::transaction_canceled(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo(
                "TransactWriteItems",
                &self.table(USERS),
                e,
            )),
        }
    }

    /// Creates a user who joins through an invite; false when the email is taken.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn create_user(&self, user: &User) -> Result<bool, StoreError> {
        self.put_one(self.user_put(user)?).await
    }

    /// The user with this (lower-case) email.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn user(&self, email: &str) -> Result<Option<User>, StoreError> {
        let table = self.table(USERS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("email", sv(email))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        out.item.as_ref().map(|i| user_of(&table, i)).transpose()
    }

    /// Sets attributes of an existing user: `sets` are `(attribute, value)` pairs.
    async fn update_user(
        &self,
        email: &str,
        sets: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<bool, StoreError> {
        let table = self.table(USERS);
        let mut req = self
            .client
            .update_item()
            .table_name(&table)
            .key("email", sv(email))
            .condition_expression("attribute_exists(email)");
        let mut parts = Vec::new();
        for (i, (attr, value)) in sets.iter().enumerate() {
            parts.push(format!("#a{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#a{i}"), *attr)
                .expression_attribute_values(format!(":v{i}"), value.clone());
        }
        match req
            .update_expression(format!("SET {}", parts.join(", ")))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// Marks the user's address verified (keeping the first time); false for no user.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn verify_user(&self, email: &str, now: i64) -> Result<bool, StoreError> {
        match self.user(email).await? {
            Some(u) if u.verified_at.is_some() => Ok(true),
            Some(_) => self.update_user(email, &[("verified_at", nv(now))]).await,
            None => Ok(false),
        }
    }

    /// Replaces the user's password hash; false for no user.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_password_hash(&self, email: &str, hash: &str) -> Result<bool, StoreError> {
        self.update_user(email, &[("password_hash", sv(hash))])
            .await
    }

    /// Makes `account_id` the account the user's sign-ins open; false for no user.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_default_account(
        &self,
        email: &str,
        account_id: &str,
    ) -> Result<bool, StoreError> {
        self.update_user(email, &[("default_account", sv(account_id))])
            .await
    }

    /// Stores a new session.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn create_session(&self, sess: &Session) -> Result<(), StoreError> {
        let table = self.table(SESSIONS);
        let put = Put::builder()
            .table_name(&table)
            .item("token_hash", sv(sess.token_hash.as_str()))
            .item("email", sv(sess.email.as_str()))
            .item("account_id", sv(sess.account_id.as_str()))
            .item("csrf", sv(sess.csrf.as_str()))
            .item("created_at", nv(sess.created_at))
            .item(
                "created_at_s",
                sv(super::api_keys::sortable_millis(sess.created_at)),
            )
            .item("expires_at", nv(sess.expires_at))
            .item("expires_at_s", sv(expiry_s(sess.expires_at)))
            .condition_expression("attribute_not_exists(token_hash)")
            .build()
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        self.put_one(put).await.map(drop)
    }

    /// The session whose token hashes to `token_hash`, unless unknown or expired at `now`.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let table = self.table(SESSIONS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("token_hash", sv(token_hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        let sess = out
            .item
            .as_ref()
            .map(|i| session_of(&table, i))
            .transpose()?;
        Ok(sess.filter(|s| s.expires_at > now))
    }

    /// Ends one session.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let table = self.table(SESSIONS);
        self.client
            .delete_item()
            .table_name(&table)
            .key("token_hash", sv(token_hash))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("DeleteItem", &table, e))?;
        Ok(())
    }

    /// Ends every session of the user; returns how many there were. The index is
    /// eventually consistent, so a session created a moment ago could survive: the
    /// password reset that calls this also changes the password the next sign-in needs.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn delete_sessions_of(&self, email: &str) -> Result<usize, StoreError> {
        let table = self.table(SESSIONS);
        let q = self
            .client
            .query()
            .table_name(&table)
            .index_name(GSI_BY_USER)
            .key_condition_expression("email = :e")
            .expression_attribute_values(":e", sv(email));
        let (items, _) = all_pages(&table, q, false).await?;
        for item in &items {
            if let Some(h) = s(item, "token_hash") {
                self.delete_session(&h).await?;
            }
        }
        Ok(items.len())
    }

    /// Stores a one-time link.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn create_link(&self, link: &OneTimeLink) -> Result<(), StoreError> {
        let table = self.table(AUTH_LINKS);
        let mut b = Put::builder()
            .table_name(&table)
            .item("token_hash", sv(link.token_hash.as_str()))
            .item("purpose", sv(link.purpose.as_str()))
            .item("email", sv(link.email.as_str()))
            .item("created_at", nv(link.created_at))
            .item("expires_at", nv(link.expires_at))
            .item("expires_at_s", sv(expiry_s(link.expires_at)))
            .condition_expression("attribute_not_exists(token_hash)");
        if let Some(a) = &link.account_id {
            b = b.item("account_id", sv(a.as_str()));
        }
        if let Some(r) = link.role {
            b = b.item("role", sv(r.as_str()));
        }
        let put = b
            .build()
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        self.put_one(put).await.map(drop)
    }

    /// The link, as stored, without using it.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn link(&self, token_hash: &str) -> Result<Option<OneTimeLink>, StoreError> {
        let table = self.table(AUTH_LINKS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("token_hash", sv(token_hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        out.item.as_ref().map(|i| link_of(&table, i)).transpose()
    }

    /// Uses the link for `purpose` at `now`: once, before it expires.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn use_link(
        &self,
        token_hash: &str,
        purpose: LinkPurpose,
        now: i64,
    ) -> Result<LinkUse, StoreError> {
        let table = self.table(AUTH_LINKS);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("token_hash", sv(token_hash))
            .update_expression("SET used_at = :now")
            .condition_expression(
                "attribute_exists(token_hash) AND purpose = :p AND \
                 attribute_not_exists(used_at) AND expires_at > :now",
            )
            .expression_attribute_values(":now", nv(now))
            .expression_attribute_values(":p", sv(purpose.as_str()))
            .send()
            .await;
        let won = match res {
            Ok(_) => true,
            Err(e) if is_conditional_update_failure(&e) => false,
            Err(e) => return Err(StoreError::dynamo("UpdateItem", &table, e)),
        };
        // Read back why the condition refused, or the link this caller used.
        Ok(match self.link(token_hash).await? {
            Some(l) if won => LinkUse::Used(l),
            Some(l) if l.purpose != purpose => LinkUse::Unknown,
            Some(l) if l.used_at.is_some() => LinkUse::AlreadyUsed,
            Some(_) => LinkUse::Expired,
            None => LinkUse::Unknown,
        })
    }
}
