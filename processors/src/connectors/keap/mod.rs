//! The Keap (Infusionsoft) connector, on REST v2 under the operator's
//! `https://api.infusionsoft.com/crm/rest` base, plus v1 where only v1 has the
//! operation (achieving API goals).
//!
//! Contacts are read with an explicit `fields` list (custom fields and tag ids are left
//! out otherwise) and listed with `page_token`/`next_page_token`. Custom fields are keyed
//! by their legacy `_FieldName`, resolved through `GET /v2/contacts/model`; tags by id,
//! named through the tag catalog. Both catalogs are loaded once per connector and the
//! tag one is reloaded when an id or name is missing from it.
//!
//! Connection settings (all optional): `note_user_id`, the Keap user notes are written
//! as (else the contact's owner, else the first active user); `goal_integration`, the
//! integration name API goals are achieved under (default `mfh`, as goal_it assumes).

mod apply;
#[cfg(any(test, feature = "test-util"))]
pub mod fake;
#[cfg(any(test, feature = "test-util"))]
mod fake_routes;
mod opportunities;
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
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use types::{CONTACT_FIELDS, FieldMeta};

/// Contacts per list page. Keap does not document a maximum; 100 is what its own
/// examples use.
const PAGE_SIZE: usize = 100;
/// Tags per catalog page (Keap-v2 listTags: `page_size` maximum 1000).
const CATALOG_PAGE: usize = 1000;
/// Users per page: Keap-v2 `listPaginatedUsers` allows at most 100.
const USERS_PAGE: usize = 100;
/// Pages read from one catalog before giving up: a guard against a token that loops.
const MAX_CATALOG_PAGES: usize = 100;

/// A Keap account reached through one connection.
#[derive(Debug)]
pub struct Keap {
    http: VendorHttp,
    note_user_id: Option<String>,
    goal_integration: String,
    fields: Mutex<Option<Arc<FieldMeta>>>,
    tags: Mutex<Option<Arc<Vec<Tag>>>>,
    users: Mutex<Option<Arc<Vec<User>>>>,
}

impl Keap {
    /// The connector of `ctx.connection`.
    ///
    /// # Errors
    /// Never today; the signature matches the other vendors'.
    pub fn new(ctx: VendorContext) -> Result<Self, CrmError> {
        let c = &ctx.connection;
        Ok(Self {
            note_user_id: c.setting("note_user_id").map(str::to_owned),
            goal_integration: c.setting("goal_integration").unwrap_or("mfh").to_owned(),
            http: ctx.http,
            fields: Mutex::new(None),
            tags: Mutex::new(None),
            users: Mutex::new(None),
        })
    }

    /// The custom-field metadata, loaded on first use.
    async fn field_meta(&self) -> Result<Arc<FieldMeta>, CrmError> {
        if let Some(m) = cached(&self.fields) {
            return Ok(m);
        }
        let model = self.http.get("/v2/contacts/model").await?;
        let meta = Arc::new(FieldMeta::from_model(&model));
        store(&self.fields, meta.clone());
        Ok(meta)
    }

    /// The tag catalog; `refresh` reloads it (after a miss).
    async fn tag_catalog(&self, refresh: bool) -> Result<Arc<Vec<Tag>>, CrmError> {
        if !refresh && let Some(t) = cached(&self.tags) {
            return Ok(t);
        }
        let raw_tags = self.list_all("/v2/tags", "tags", CATALOG_PAGE).await?;
        // Keap-v2 Tag.category is a CategoryReference `{id}`; the names are listed by
        // `GET /v2/tags/categories` (page_size maximum 1000), read only when needed.
        let mut categories = HashMap::new();
        if raw_tags
            .iter()
            .any(|t| text(&t["category"]["id"]).is_some())
        {
            for c in self
                .list_all("/v2/tags/categories", "tag_categories", CATALOG_PAGE)
                .await?
            {
                if let (Some(id), Some(name)) = (text(&c["id"]), c["name"].as_str()) {
                    categories.insert(id, name.to_owned());
                }
            }
        }
        let mut out = Vec::new();
        for raw in raw_tags {
            if let Some(id) = text(&raw["id"]) {
                out.push(Tag {
                    id,
                    name: raw["name"].as_str().unwrap_or_default().to_owned(),
                    category: text(&raw["category"]["id"])
                        .and_then(|c| categories.get(&c).cloned()),
                });
            }
        }
        let tags = Arc::new(out);
        store(&self.tags, tags.clone());
        Ok(tags)
    }

    /// Tag id → name, reloaded once when one of `ids` is unknown.
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

    /// Every item of a v2 collection, following `next_page_token`, `page_size` at a time
    /// (at most the endpoint's documented maximum).
    async fn list_all(
        &self,
        path: &str,
        key: &str,
        page_size: usize,
    ) -> Result<Vec<Value>, CrmError> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_CATALOG_PAGES {
            let sep = if path.contains('?') { '&' } else { '?' };
            let mut url = format!("{path}{sep}page_size={page_size}");
            if !token.is_empty() {
                url.push_str(&format!("&page_token={}", enc(&token)));
            }
            let page = self.http.get(&url).await?;
            let items = page[key].as_array().cloned().unwrap_or_default();
            let empty = items.is_empty();
            out.extend(items);
            token = page["next_page_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if token.is_empty() || empty {
                break;
            }
        }
        Ok(out)
    }

    /// The raw v2 contact.
    async fn raw_contact(&self, contact_id: &str) -> Result<Value, CrmError> {
        let path = format!("/v2/contacts/{}?fields={CONTACT_FIELDS}", enc(contact_id));
        match self.http.get(&path).await {
            Err(CrmError::NotFound { .. }) => Err(CrmError::NotFound {
                object: format!("contact {contact_id}"),
            }),
            other => other,
        }
    }

    /// Converts raw contacts with the current catalogs.
    async fn contacts(&self, raws: &[Value]) -> Result<Vec<Contact>, CrmError> {
        let meta = self.field_meta().await?;
        let ids: Vec<String> = raws
            .iter()
            .flat_map(|r| r["tag_ids"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| text(&v))
            .collect();
        let names = self.tag_names(&ids).await?;
        Ok(raws
            .iter()
            .map(|r| types::to_contact(r, &meta, &names))
            .collect())
    }
}

fn cached<T>(slot: &Mutex<Option<Arc<T>>>) -> Option<Arc<T>> {
    slot.lock().ok().and_then(|g| g.clone())
}

fn store<T>(slot: &Mutex<Option<Arc<T>>>, value: Arc<T>) {
    if let Ok(mut g) = slot.lock() {
        *g = Some(value);
    }
}

/// The server-side filter clauses of `query`: a superset of its matches, or `None`
/// when Keap cannot narrow it (`Or`, contains, tags, other fields).
fn filter(query: &ContactQuery) -> Option<Vec<String>> {
    match query {
        ContactQuery::FieldEquals { field, value } if !value.trim().is_empty() => {
            let key = match field.as_str() {
                "email" => "email",
                "first_name" => "given_name",
                "last_name" => "family_name",
                _ => return None,
            };
            // A `*` would be read as a wildcard; such values are filtered client-side.
            (!value.contains('*') && !value.contains(';'))
                .then(|| vec![format!("{key}=={}", value.trim())])
        }
        ContactQuery::And(qs) => {
            let clauses: Vec<String> = qs.iter().filter_map(filter).flatten().collect();
            (!clauses.is_empty()).then_some(clauses)
        }
        _ => None,
    }
}

#[async_trait]
impl CrmRead for Keap {
    /// Keap's company list (`GET /v2/companies`, all pages) matched by name here: the
    /// reference names no server-side name filter.
    async fn find_companies(&self, name: &str) -> Result<Vec<super::Company>, CrmError> {
        let needle = name.trim().to_lowercase();
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let (mut out, mut token) = (Vec::new(), None::<String>);
        for _ in 0..100 {
            let mut path = "/v2/companies?page_size=100".to_owned();
            if let Some(t) = &token {
                path.push_str(&format!("&page_token={}", super::vendor::enc(t)));
            }
            let page = self.http.get(&path).await?;
            for c in page["companies"].as_array().into_iter().flatten() {
                let company = super::Company {
                    id: super::vendor::text(&c["id"]).unwrap_or_default(),
                    name: c["company_name"].as_str().unwrap_or_default().to_owned(),
                    fields: std::collections::BTreeMap::new(),
                    created_at: c["create_time"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map_or(0, |t| t.timestamp_millis()),
                };
                if company.name.to_lowercase().contains(&needle) {
                    out.push(company);
                }
            }
            match page["next_page_token"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        Ok(out)
    }

    /// Email, first and last name equality are searched by Keap (`filter=`); every
    /// other query lists all contacts and is matched client-side with
    /// [`ContactQuery::matches`], which also re-checks Keap's matches. `next` is Keap's
    /// `next_page_token`.
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let mut url =
            format!("/v2/contacts?page_size={PAGE_SIZE}&order_by=id%20asc&fields={CONTACT_FIELDS}");
        if let Some(clauses) = filter(query) {
            url.push_str(&format!("&filter={}", enc(&clauses.join(";"))));
        }
        if let Some(t) = page.filter(|t| !t.is_empty()) {
            url.push_str(&format!("&page_token={}", enc(t)));
        }
        let resp = self.http.get(&url).await?;
        let raws = resp["contacts"].as_array().cloned().unwrap_or_default();
        let next = resp["next_page_token"]
            .as_str()
            .filter(|t| !t.is_empty() && !raws.is_empty())
            .map(str::to_owned);
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
            // Keap-v2 listPaginatedUsers: `page_size` maximum 100 (1000 is refused).
            .list_all("/v2/users", "users", USERS_PAGE)
            .await?
            .iter()
            .filter_map(|u| {
                let name = [&u["given_name"], &u["family_name"]]
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                Some(User {
                    id: text(&u["id"])?,
                    name,
                    // Keap-v2 User: `email_addresses` (EmailAddress list, EMAIL1 first)
                    // and `status` in ACTIVE, INVITED, INACTIVE, NOT_A_USER: only an
                    // active user can own a contact or write a note.
                    email: types::primary(&u["email_addresses"], "EMAIL1")
                        .and_then(|e| e["email"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    active: u["status"]
                        .as_str()
                        .is_none_or(|s| s.eq_ignore_ascii_case("active")),
                })
            })
            .collect();
        store(&self.users, Arc::new(users.clone()));
        Ok(users)
    }

    async fn opportunities(&self, contact_id: &str) -> Result<Vec<super::Opportunity>, CrmError> {
        self.contact_opportunities(contact_id).await
    }
}

/// What the Keap connector supports.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Fields,
    Capability::Tags,
    Capability::Notes,
    Capability::Goals,
    Capability::Automations,
    Capability::Merge,
    Capability::Opportunities,
    Capability::Search,
    Capability::Owners,
    Capability::OptIn,
    Capability::Companies,
];

#[async_trait]
impl CrmConnector for Keap {
    fn platform(&self) -> &'static str {
        "keap"
    }
    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }
    /// Keap delivers webhooks per connection: nothing to route by.
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        Ok(None)
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.http
            .get("/v2/contacts?page_size=1&fields=id")
            .await
            .map(|_| ())
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
