//! The Ontraport connector, on REST API v1 (`https://api.ontraport.com/1`) with the
//! `Api-Key` and `Api-Appid` headers.
//!
//! Contacts are one flat object (`firstname`, `email`, custom fields `f1234`, tags as
//! `contact_cat` `*/*1*/*2*/*`). Custom fields are keyed by the alias users see, resolved
//! through `GET /Contacts/meta`; tags by id, named through `GET /Tags`. Both catalogs are
//! loaded once per connector; the tag one is reloaded when an id or name is missing.
//! Ontraport ignores unknown fields on update, so field names are checked here first.

mod apply;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(any(test, feature = "test-util"))]
mod fake_routes;
#[cfg(test)]
mod tests;
mod types;

use super::registry::VendorContext;
use super::vendor::{VendorHttp, enc, text};
use super::{
    ApplyReport, Capability, ContactPage, ContactQuery, CrmConnector, CrmError, CrmRead, Tag, User,
};
use crate::helpers::{Change, Contact};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use types::FieldMeta;

/// Ontraport's largest `range`.
const RANGE: usize = 50;
/// Pages read from one catalog before giving up: a guard against a runaway listing.
const MAX_CATALOG_PAGES: usize = 200;

/// An Ontraport account reached through one connection.
#[derive(Debug)]
pub struct Ontraport {
    http: VendorHttp,
    fields: Mutex<Option<Arc<FieldMeta>>>,
    tags: Mutex<Option<Arc<Vec<Tag>>>>,
    users: Mutex<Option<Arc<Vec<User>>>>,
}

fn cached<T>(slot: &Mutex<Option<Arc<T>>>) -> Option<Arc<T>> {
    slot.lock().ok().and_then(|g| g.clone())
}

fn store<T>(slot: &Mutex<Option<Arc<T>>>, value: Arc<T>) {
    if let Ok(mut g) = slot.lock() {
        *g = Some(value);
    }
}

/// One Ontraport search condition.
fn condition(field: &str, op: &str, value: Value) -> Value {
    json!({"field": {"field": field}, "op": op, "value": {"value": value}})
}

impl Ontraport {
    /// The connector of `ctx.connection`.
    ///
    /// # Errors
    /// Never today; the signature matches the other vendors'.
    pub fn new(ctx: VendorContext) -> Result<Self, CrmError> {
        Ok(Self {
            http: ctx.http,
            fields: Mutex::new(None),
            tags: Mutex::new(None),
            users: Mutex::new(None),
        })
    }

    async fn field_meta(&self) -> Result<Arc<FieldMeta>, CrmError> {
        if let Some(m) = cached(&self.fields) {
            return Ok(m);
        }
        let meta = self.http.get("/Contacts/meta?format=byId").await?;
        let meta = Arc::new(FieldMeta::from_meta(&meta));
        store(&self.fields, meta.clone());
        Ok(meta)
    }

    /// Every item of a collection, `RANGE` at a time.
    async fn list_all(&self, path: &str) -> Result<Vec<Value>, CrmError> {
        let mut out = Vec::new();
        for page in 0..MAX_CATALOG_PAGES {
            let url = format!("{path}?start={}&range={RANGE}", page * RANGE);
            let items = self.http.get(&url).await?["data"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let n = items.len();
            out.extend(items);
            if n < RANGE {
                break;
            }
        }
        Ok(out)
    }

    async fn tag_catalog(&self, refresh: bool) -> Result<Arc<Vec<Tag>>, CrmError> {
        if !refresh && let Some(t) = cached(&self.tags) {
            return Ok(t);
        }
        let tags: Vec<Tag> = self
            .list_all("/Tags")
            .await?
            .iter()
            .filter_map(|t| {
                Some(Tag {
                    id: text(&t["tag_id"]).or_else(|| text(&t["id"]))?,
                    name: t["tag_name"].as_str().unwrap_or_default().to_owned(),
                    category: None,
                })
            })
            .collect();
        let tags = Arc::new(tags);
        store(&self.tags, tags.clone());
        Ok(tags)
    }

    async fn tag_names(&self, ids: &[String]) -> Result<HashMap<String, String>, CrmError> {
        let mut tags = self.tag_catalog(false).await?;
        if ids.iter().any(|id| !tags.iter().any(|t| t.id == *id)) {
            tags = self.tag_catalog(true).await?;
        }
        Ok(tags
            .iter()
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect())
    }

    /// The raw contact object.
    async fn raw_contact(&self, contact_id: &str) -> Result<Value, CrmError> {
        let not_found = || CrmError::NotFound {
            object: format!("contact {contact_id}"),
        };
        let resp = match self
            .http
            .get(&format!("/Contact?id={}", enc(contact_id)))
            .await
        {
            Err(CrmError::NotFound { .. }) => return Err(not_found()),
            // Ontraport answers an unknown id with a 400 "Object not found".
            Err(CrmError::Invalid { reason, .. })
                if reason.to_lowercase().contains("not found") =>
            {
                return Err(not_found());
            }
            other => other?,
        };
        let data = &resp["data"];
        if data.get("id").is_none() {
            return Err(not_found());
        }
        Ok(data.clone())
    }

    async fn contacts(&self, raws: &[Value]) -> Result<Vec<Contact>, CrmError> {
        let meta = self.field_meta().await?;
        let ids: Vec<String> = raws.iter().flat_map(types::tag_ids).collect();
        let names = self.tag_names(&ids).await?;
        Ok(raws
            .iter()
            .map(|r| types::to_contact(r, &meta, &names))
            .collect())
    }
}

/// The server-side conditions of `query`: a superset of its matches, or empty when
/// Ontraport cannot narrow it.
fn conditions(query: &ContactQuery) -> Vec<Value> {
    match query {
        ContactQuery::FieldEquals { field, value } if !value.trim().is_empty() => {
            types::standard(field)
                .filter(|f| *f != "birthday")
                .map(|f| vec![condition(f, "=", json!(value.trim()))])
                .unwrap_or_default()
        }
        ContactQuery::And(qs) => qs.iter().flat_map(conditions).collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl CrmRead for Ontraport {
    /// Equality on standard fields is searched by Ontraport (`condition=`); other
    /// queries list every contact and are matched client-side with
    /// [`ContactQuery::matches`], which also re-checks Ontraport's matches. Pages are
    /// `RANGE` contacts ordered by id and continue after the last id seen (`next`), so
    /// contacts added or deleted meanwhile do not shift the pages.
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let after: i64 = page.and_then(|p| p.parse().ok()).unwrap_or(0);
        let mut conds = vec![condition("id", ">", json!(after))];
        for c in conditions(query) {
            conds.push(json!("AND"));
            conds.push(c);
        }
        let url = format!(
            "/Contacts?start=0&range={RANGE}&sort=id&sortDir=asc&condition={}",
            enc(&Value::Array(conds).to_string())
        );
        let raws = self.http.get(&url).await?["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let next = if raws.len() < RANGE {
            None
        } else {
            raws.last().and_then(|r| text(&r["id"]))
        };
        let contacts = self
            .contacts(&raws)
            .await?
            .into_iter()
            .filter(|c| query.matches(c))
            .collect();
        Ok(ContactPage {
            contacts,
            next,
            total: None,
        })
    }

    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        Ok(self.tag_catalog(true).await?.as_ref().clone())
    }

    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        if let Some(u) = cached(&self.users) {
            return Ok(u.as_ref().clone());
        }
        let users: Vec<User> = self
            .list_all("/Users")
            .await?
            .iter()
            .filter_map(|u| {
                let name = [&u["firstname"], &u["lastname"]]
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                Some(User {
                    id: text(&u["id"])?,
                    name,
                    email: u["email"].as_str().unwrap_or_default().to_owned(),
                    active: true,
                })
            })
            .collect();
        store(&self.users, Arc::new(users.clone()));
        Ok(users)
    }
}

/// What the Ontraport connector supports.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Fields,
    Capability::Tags,
    Capability::Notes,
    Capability::Search,
    Capability::Owners,
    Capability::OptIn,
];

#[async_trait]
impl CrmConnector for Ontraport {
    fn platform(&self) -> &'static str {
        "ontraport"
    }
    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }
    /// Ontraport delivers webhooks per connection: nothing to route by.
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        Ok(None)
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.http.get("/Contacts/getInfo").await.map(|_| ())
    }
    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        let raw = self.raw_contact(contact_id).await?;
        let mut out = self.contacts(std::slice::from_ref(&raw)).await?;
        out.pop().ok_or_else(|| CrmError::NotFound {
            object: format!("contact {contact_id}"),
        })
    }
    async fn apply(
        &self,
        contact_id: &str,
        _execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        apply::apply(self, contact_id, changes).await
    }
}
