//! Accounts: the profile and billing state of each account, the Stripe customer →
//! account map, the Stripe event ids already received and the notifications already sent.
//!
//! The billing state is written with a version check, so two billing processors (or the
//! processor and the trial-expiry job) never overwrite each other's transition.

use super::{
    ACCOUNTS, Item, NOTIFICATIONS_SENT, STRIPE_CUSTOMERS, STRIPE_EVENTS, Store, StoreError,
    attr_s as s,
    executions::{is_conditional_failure, is_conditional_update_failure},
};
use crate::billing::BillingState;
use aws_sdk_dynamodb::types::AttributeValue;

/// One account as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccountRecord {
    /// The account id.
    pub account_id: String,
    /// Display name.
    pub name: String,
    /// Where billing emails go.
    pub billing_email: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Plan, status, trial and subscription.
    pub billing: BillingState,
    /// Which emails the account turned off.
    pub notification_prefs: crate::billing::NotificationPrefs,
    /// Write version of the billing state.
    #[serde(skip)]
    pub version: i64,
}

/// How a notification claim went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationClaim {
    /// Nobody sent it yet; this caller must send it and then call `notification_sent`.
    Send,
    /// It was sent before.
    AlreadySent,
}

fn n(item: &Item, k: &str) -> i64 {
    super::attr_n(item, k).unwrap_or(0)
}

impl AccountRecord {
    fn parse(table: &str, item: &Item) -> Result<Self, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            table: table.to_owned(),
            message,
        };
        let billing = match s(item, "billing") {
            Some(json) => serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?,
            None => BillingState::default(),
        };
        Ok(Self {
            account_id: s(item, "account_id").ok_or_else(|| corrupt("no account_id".into()))?,
            name: s(item, "name").unwrap_or_default(),
            billing_email: s(item, "billing_email"),
            created_at: n(item, "created_at"),
            billing,
            notification_prefs: match s(item, "notification_prefs") {
                Some(json) => serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?,
                None => crate::billing::NotificationPrefs::default(),
            },
            version: n(item, "version"),
        })
    }
}

impl Store {
    /// The account, if it exists.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn account(&self, account_id: &str) -> Result<Option<AccountRecord>, StoreError> {
        let table = self.table(ACCOUNTS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("account_id", AttributeValue::S(account_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        out.item
            .as_ref()
            .map(|i| AccountRecord::parse(&table, i))
            .transpose()
    }

    /// The account as admission needs it: served from the process's cache for up to
    /// `dynamo.cache_ttl_ms`, so a billing change made by another process (a subscription
    /// ending, a plan change) reaches admission within that bound. Never for a
    /// read-modify-write: those use [`Store::account`] and its version.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails or the item is corrupt.
    pub async fn account_for_admission(
        &self,
        account_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        if let Some(a) = self.account_cache.get(account_id) {
            return Ok(Some(a));
        }
        let a = self.account(account_id).await?;
        if let Some(a) = &a {
            self.account_cache.put(account_id, a.clone());
        }
        Ok(a)
    }

    /// Creates the account unless it exists; returns the stored account either way.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn create_account(
        &self,
        account_id: &str,
        name: &str,
        billing_email: Option<&str>,
        billing: &BillingState,
    ) -> Result<AccountRecord, StoreError> {
        let table = self.table(ACCOUNTS);
        let put = self.account_put(account_id, name, billing_email, billing)?;
        self.account_cache.forget(account_id);
        self.put_one(put).await?;
        self.account(account_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt {
                table,
                message: format!("account {account_id} vanished after its creation"),
            })
    }

    /// The put that creates the account unless it exists (alone, or in a sign-up's
    /// transaction with its owner).
    ///
    /// # Errors
    /// [`StoreError`] when the request cannot be built.
    pub(crate) fn account_put(
        &self,
        account_id: &str,
        name: &str,
        billing_email: Option<&str>,
        billing: &BillingState,
    ) -> Result<aws_sdk_dynamodb::types::Put, StoreError> {
        let table = self.table(ACCOUNTS);
        let json = serde_json::to_string(billing).map_err(|e| StoreError::Corrupt {
            table: table.clone(),
            message: e.to_string(),
        })?;
        let mut b = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .item("account_id", AttributeValue::S(account_id.to_owned()))
            .item("name", AttributeValue::S(name.to_owned()))
            .item("billing", AttributeValue::S(json))
            .item("version", AttributeValue::N("1".into()))
            .item(
                "created_at",
                AttributeValue::N(mfh_pipeline::now_millis().to_string()),
            )
            .condition_expression("attribute_not_exists(account_id)");
        if let Some(e) = billing_email {
            b = b.item("billing_email", AttributeValue::S(e.to_owned()));
        }
        b.build()
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))
    }

    /// Writes the billing state if the account is still at `expected_version`; false when
    /// another writer came first (read again and re-apply).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn write_billing(
        &self,
        account_id: &str,
        billing: &BillingState,
        expected_version: i64,
    ) -> Result<bool, StoreError> {
        let table = self.table(ACCOUNTS);
        let json = serde_json::to_string(billing).map_err(|e| StoreError::Corrupt {
            table: table.clone(),
            message: e.to_string(),
        })?;
        self.account_cache.forget(account_id);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("account_id", AttributeValue::S(account_id.to_owned()))
            .update_expression("SET billing = :b, version = :next")
            .condition_expression("version = :v")
            .expression_attribute_values(":b", AttributeValue::S(json))
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((expected_version + 1).to_string()),
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// Updates the profile fields given; returns the account, or `None` if unknown.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn update_profile(
        &self,
        account_id: &str,
        name: Option<&str>,
        billing_email: Option<&str>,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let table = self.table(ACCOUNTS);
        self.account_cache.forget(account_id);
        let mut sets = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&table)
            .key("account_id", AttributeValue::S(account_id.to_owned()))
            .condition_expression("attribute_exists(account_id)");
        if let Some(v) = name {
            sets.push("#n = :n");
            req = req
                .expression_attribute_names("#n", "name")
                .expression_attribute_values(":n", AttributeValue::S(v.to_owned()));
        }
        if let Some(v) = billing_email {
            sets.push("billing_email = :e");
            req = req.expression_attribute_values(":e", AttributeValue::S(v.to_owned()));
        }
        if sets.is_empty() {
            return self.account(account_id).await;
        }
        match req
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
        {
            Ok(_) => self.account(account_id).await,
            Err(e) if is_conditional_update_failure(&e) => Ok(None),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// Stores the account's notification preferences; false for an unknown account.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn set_notification_prefs(
        &self,
        account_id: &str,
        prefs: &crate::billing::NotificationPrefs,
    ) -> Result<bool, StoreError> {
        let table = self.table(ACCOUNTS);
        let json = serde_json::to_string(prefs).map_err(|e| StoreError::Corrupt {
            table: table.clone(),
            message: e.to_string(),
        })?;
        self.account_cache.forget(account_id);
        let res = self
            .client
            .update_item()
            .table_name(&table)
            .key("account_id", AttributeValue::S(account_id.to_owned()))
            .update_expression("SET notification_prefs = :p")
            .condition_expression("attribute_exists(account_id)")
            .expression_attribute_values(":p", AttributeValue::S(json))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_update_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("UpdateItem", &table, e)),
        }
    }

    /// Every account id, for the trial-expiry job (a paged Scan of the accounts table).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn all_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let table = self.table(ACCOUNTS);
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::dynamo("Scan", &table, e))?;
            for item in page.items() {
                out.push(AccountRecord::parse(&table, item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Remembers which account a Stripe customer belongs to.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn link_customer(&self, customer: &str, account_id: &str) -> Result<(), StoreError> {
        let table = self.table(STRIPE_CUSTOMERS);
        self.client
            .put_item()
            .table_name(&table)
            .item("customer_id", AttributeValue::S(customer.to_owned()))
            .item("account_id", AttributeValue::S(account_id.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }

    /// The account of a Stripe customer, if linked.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn account_for_customer(&self, customer: &str) -> Result<Option<String>, StoreError> {
        let table = self.table(STRIPE_CUSTOMERS);
        let out = self
            .client
            .get_item()
            .table_name(&table)
            .key("customer_id", AttributeValue::S(customer.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::dynamo("GetItem", &table, e))?;
        Ok(out.item.as_ref().and_then(|i| s(i, "account_id")))
    }

    /// Records a Stripe event id; false when it was recorded before (a duplicate
    /// delivery).
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn record_stripe_event(
        &self,
        event_id: &str,
        event_type: &str,
    ) -> Result<bool, StoreError> {
        let table = self.table(STRIPE_EVENTS);
        let res = self
            .client
            .put_item()
            .table_name(&table)
            .item("event_id", AttributeValue::S(event_id.to_owned()))
            .item("event_type", AttributeValue::S(event_type.to_owned()))
            .item(
                "received_at",
                AttributeValue::N(mfh_pipeline::now_millis().to_string()),
            )
            .condition_expression("attribute_not_exists(event_id)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }

    /// Whether a Stripe event id was recorded already.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn stripe_event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        self.exists(STRIPE_EVENTS, &[("event_id", event_id)]).await
    }

    /// Claims a notification before sending it. A claim left by a sender that crashed
    /// mid-send is taken over, so a notification is sent at least once and, unless a
    /// sender dies between the SMTP answer and [`Store::notification_sent`], once.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn claim_notification(
        &self,
        account_id: &str,
        notification_id: &str,
    ) -> Result<NotificationClaim, StoreError> {
        let table = self.table(NOTIFICATIONS_SENT);
        let res = self
            .client
            .put_item()
            .table_name(&table)
            .item("scope", notification_scope(account_id, notification_id))
            .item("state", AttributeValue::S("pending".into()))
            .condition_expression("attribute_not_exists(#s) OR #st = :pending")
            .expression_attribute_names("#s", "scope")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(NotificationClaim::Send),
            Err(e) if is_conditional_failure(&e) => Ok(NotificationClaim::AlreadySent),
            Err(e) => Err(StoreError::dynamo("PutItem", &table, e)),
        }
    }

    /// Marks a claimed notification as sent, with where it went.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn notification_sent(
        &self,
        account_id: &str,
        notification_id: &str,
        recipient: &str,
    ) -> Result<(), StoreError> {
        let table = self.table(NOTIFICATIONS_SENT);
        self.client
            .put_item()
            .table_name(&table)
            .item("scope", notification_scope(account_id, notification_id))
            .item("state", AttributeValue::S("sent".into()))
            .item("recipient", AttributeValue::S(recipient.to_owned()))
            .item(
                "sent_at",
                AttributeValue::N(mfh_pipeline::now_millis().to_string()),
            )
            .send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }
}

fn notification_scope(account_id: &str, notification_id: &str) -> AttributeValue {
    AttributeValue::S(format!("{account_id}#{notification_id}"))
}
