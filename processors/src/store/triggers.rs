//! Triggers: "when this CRM event happens, run this helper on the contact".

use super::{Item, Store, StoreError, TRIGGERS, all_pages, attr_n, attr_s, corrupt, nv, sv};
use mfh_schemas::CrmEventKind;
use serde::Serialize;

/// A helper run on CRM events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Trigger {
    /// `trg_…`.
    pub trigger_id: String,
    /// The account.
    pub account_id: String,
    /// Only events of this connection; `None` for any of the account's connections.
    pub connection_id: Option<String>,
    /// The event that fires it: contact_created, contact_updated, contact_deleted,
    /// tag_applied or tag_removed.
    #[schema(value_type = String)]
    pub event: CrmEventKind,
    /// For tag events: only this tag (its id or name, case-insensitive).
    pub tag: Option<String>,
    /// The helper to run.
    pub helper: String,
    /// Its config, JSON.
    pub config_json: String,
    /// When it was created (ms).
    pub created_at: i64,
}

impl Trigger {
    /// Whether the event fires this trigger.
    #[must_use]
    pub fn matches(&self, e: &mfh_schemas::CrmEvent) -> bool {
        let tag_ok = self.tag.as_ref().is_none_or(|t| {
            let t = t.trim().to_lowercase();
            e.tag_id.as_ref().is_some_and(|i| i.to_lowercase() == t)
                || e.tag_name
                    .as_ref()
                    .is_some_and(|n| n.trim().to_lowercase() == t)
        });
        self.event == e.kind
            && e.account_id == self.account_id
            && self
                .connection_id
                .as_ref()
                .is_none_or(|c| *c == e.connection_id)
            && tag_ok
    }
}

fn to_trigger(i: &Item) -> Result<Trigger, StoreError> {
    let req = |k: &str| attr_s(i, k).ok_or_else(|| corrupt(TRIGGERS, format!("missing {k}")));
    let event = req("event")?;
    Ok(Trigger {
        trigger_id: req("trigger_id")?,
        account_id: req("account_id")?,
        connection_id: attr_s(i, "connection_id"),
        event: CrmEventKind::parse(&event)
            .ok_or_else(|| corrupt(TRIGGERS, format!("unknown event {event}")))?,
        tag: attr_s(i, "tag"),
        helper: req("helper")?,
        config_json: req("config_json")?,
        created_at: attr_n(i, "created_at").unwrap_or(0),
    })
}

impl Store {
    /// Stores a trigger.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn put_trigger(&self, t: &Trigger) -> Result<(), StoreError> {
        let table = self.table(TRIGGERS);
        let mut req = self
            .client
            .put_item()
            .table_name(&table)
            .item("account_id", sv(&t.account_id))
            .item("trigger_id", sv(&t.trigger_id))
            .item("event", sv(t.event.as_str()))
            .item("helper", sv(&t.helper))
            .item("config_json", sv(&t.config_json))
            .item("created_at", nv(t.created_at));
        if let Some(c) = &t.connection_id {
            req = req.item("connection_id", sv(c));
        }
        if let Some(tag) = &t.tag {
            req = req.item("tag", sv(tag));
        }
        req.send()
            .await
            .map_err(|e| StoreError::dynamo("PutItem", &table, e))?;
        Ok(())
    }

    /// The account's triggers.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn triggers_of(&self, account_id: &str) -> Result<Vec<Trigger>, StoreError> {
        let table = self.table(TRIGGERS);
        let q = self
            .client
            .query()
            .table_name(&table)
            .key_condition_expression("account_id = :a")
            .expression_attribute_values(":a", sv(account_id))
            .consistent_read(true);
        let (items, _) = all_pages(&table, q, false).await?;
        items.iter().map(to_trigger).collect()
    }

    /// Deletes the account's trigger; `false` when there was none.
    ///
    /// # Errors
    /// [`StoreError`] when DynamoDB fails.
    pub async fn delete_trigger(
        &self,
        account_id: &str,
        trigger_id: &str,
    ) -> Result<bool, StoreError> {
        let table = self.table(TRIGGERS);
        match self
            .client
            .delete_item()
            .table_name(&table)
            .key("account_id", sv(account_id))
            .key("trigger_id", sv(trigger_id))
            .condition_expression("attribute_exists(trigger_id)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if super::executions::is_conditional_delete_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::dynamo("DeleteItem", &table, e)),
        }
    }
}
