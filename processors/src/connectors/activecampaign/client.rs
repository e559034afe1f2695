//! The connector itself: reads (contacts, search, the tag catalog, custom field
//! metadata) and the trait implementations; applying changes is in `apply.rs`.

use super::contact::{self, Field, Loaded, Related};
use crate::connectors::registry::VendorContext;
use crate::connectors::vendor::{VendorHttp, enc, text};
use crate::connectors::{
    ApplyReport, Capability, ContactPage, ContactQuery, CrmConnector, CrmError, CrmRead, Tag,
};
use crate::helpers::{Change, Contact};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Contacts per page; ActiveCampaign's maximum.
pub(super) const PAGE: usize = 100;
/// What the list endpoint side-loads with each page, so a page costs one request.
const INCLUDE: &str = "fieldValues,contactTags,contactLists";

/// An ActiveCampaign account reached through one connection.
#[derive(Debug)]
pub struct ActiveCampaign {
    pub(super) http: VendorHttp,
    /// The list `SetOptIn { opted_in: true }` subscribes to when the contact is on none
    /// (connection setting `list_id`).
    pub(super) list_id: Option<String>,
    fields: tokio::sync::OnceCell<Arc<Vec<Field>>>,
    tags: tokio::sync::Mutex<Option<Arc<BTreeMap<String, String>>>>,
}

impl ActiveCampaign {
    /// The connector of `ctx.connection`; its base URL (`…/api/3`) is already in
    /// `ctx.http`.
    ///
    /// # Errors
    /// Never today; the signature matches the other vendors'.
    pub fn new(ctx: VendorContext) -> Result<Self, CrmError> {
        Ok(Self {
            http: ctx.http,
            list_id: ctx.connection.setting("list_id").map(str::to_owned),
            fields: tokio::sync::OnceCell::new(),
            tags: tokio::sync::Mutex::new(None),
        })
    }

    /// The custom contact fields, loaded once per connector.
    pub(super) async fn fields(&self) -> Result<Arc<Vec<Field>>, CrmError> {
        self.fields
            .get_or_try_init(|| async {
                let mut out = Vec::new();
                loop {
                    let body = self
                        .http
                        .get(&format!("/fields?limit={PAGE}&offset={}", out.len()))
                        .await?;
                    let page: Vec<Field> = array(&body, "fields")
                        .iter()
                        .filter_map(Field::parse)
                        .collect();
                    let n = page.len();
                    out.extend(page);
                    if n < PAGE || total(&body).is_some_and(|t| out.len() as u64 >= t) {
                        return Ok(Arc::new(out));
                    }
                }
            })
            .await
            .cloned()
    }

    /// The tag catalog id → name, cached; `refresh` reloads it (after a miss).
    pub(super) async fn tags(
        &self,
        refresh: bool,
    ) -> Result<Arc<BTreeMap<String, String>>, CrmError> {
        let mut cached = self.tags.lock().await;
        if let Some(t) = cached.as_ref().filter(|_| !refresh) {
            return Ok(t.clone());
        }
        let mut out = BTreeMap::new();
        let mut seen = 0usize;
        loop {
            let body = self
                .http
                .get(&format!("/tags?limit={PAGE}&offset={seen}"))
                .await?;
            let page = array(&body, "tags");
            seen += page.len();
            for t in page {
                if let (Some(id), Some(name)) =
                    (t.get("id").and_then(text), t.get("tag").and_then(text))
                {
                    out.insert(id, name);
                }
            }
            if page.len() < PAGE || total(&body).is_some_and(|t| seen as u64 >= t) {
                break;
            }
        }
        let out = Arc::new(out);
        *cached = Some(out.clone());
        Ok(out)
    }

    /// Adds a tag the connector just created to the cached catalog.
    pub(super) async fn remember_tag(&self, id: &str, name: &str) {
        let mut cached = self.tags.lock().await;
        let mut map = cached.as_deref().cloned().unwrap_or_default();
        map.insert(id.to_owned(), name.to_owned());
        *cached = Some(Arc::new(map));
    }

    /// The tag catalog, reloaded once when it lacks one of `ids`.
    async fn tags_covering<'a>(
        &self,
        mut ids: impl Iterator<Item = &'a str>,
    ) -> Result<Arc<BTreeMap<String, String>>, CrmError> {
        let tags = self.tags(false).await?;
        if ids.any(|id| !tags.contains_key(id)) {
            return self.tags(true).await;
        }
        Ok(tags)
    }

    /// The contact with its join records: `GET /contacts/{id}` side-loads field values
    /// and list memberships; its tags come from `/contacts/{id}/contactTags`.
    pub(super) async fn load(&self, contact_id: &str) -> Result<Loaded, CrmError> {
        let not_found = |e: CrmError| match e {
            CrmError::NotFound { .. } => CrmError::NotFound {
                object: format!("contact {contact_id}"),
            },
            other => other,
        };
        let id = enc(contact_id);
        let body = self
            .http
            .get(&format!("/contacts/{id}"))
            .await
            .map_err(not_found)?;
        let tags_body = self
            .http
            .get(&format!("/contacts/{id}/contactTags"))
            .await
            .map_err(not_found)?;
        let fields = self.fields().await?;
        let contact_tags = array(&tags_body, "contactTags");
        let tags = self
            .tags_covering(
                contact_tags
                    .iter()
                    .filter_map(|t| t.get("tag").and_then(Value::as_str)),
            )
            .await?;
        let related = Related {
            field_values: array(&body, "fieldValues").iter().collect(),
            contact_tags: contact_tags.iter().collect(),
            contact_lists: array(&body, "contactLists").iter().collect(),
        };
        let c = body.get("contact").ok_or_else(|| CrmError::Unavailable {
            message: format!("GET /contacts/{contact_id}: answer without a contact"),
        })?;
        Ok(contact::build(c, &related, &fields, &tags))
    }
}

fn array<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `meta.total`, which ActiveCampaign sends as a string.
fn total(body: &Value) -> Option<u64> {
    body.pointer("/meta/total")
        .and_then(text)
        .and_then(|t| t.parse().ok())
}

/// The server-side filter of a query, where the list endpoint has one: `email` (exact),
/// `email_like`, `tagid`; an `And` uses its first filterable part.
fn server_filter(q: &ContactQuery) -> Option<String> {
    match q {
        ContactQuery::FieldEquals { field, value }
            if field == "email" && !value.trim().is_empty() =>
        {
            Some(format!("&email={}", enc(value.trim())))
        }
        ContactQuery::FieldContains { field, value }
            if field == "email" && !value.trim().is_empty() =>
        {
            Some(format!("&email_like={}", enc(value.trim())))
        }
        ContactQuery::HasTag { tag_id } if !tag_id.trim().is_empty() => {
            Some(format!("&tagid={}", enc(tag_id.trim())))
        }
        ContactQuery::And(qs) => qs.iter().find_map(server_filter),
        _ => None,
    }
}

#[async_trait]
impl CrmRead for ActiveCampaign {
    /// Pages through `GET /contacts` by id (`id_greater` with `orders[id]=ASC`, the
    /// keyset paging ActiveCampaign recommends for large accounts); the page token is the
    /// last id seen. Email equality, email substring and tag queries are also filtered
    /// server-side; every page is then filtered client-side with `query.matches`, which
    /// is all the filtering other queries get, so a page may hold fewer than 100
    /// contacts (or none) and still have a next one.
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let after: u64 = match page {
            None => 0,
            Some(p) => p.parse().map_err(|_| CrmError::Invalid {
                field: "page".into(),
                reason: format!("not an ActiveCampaign page token: {p:?}"),
            })?,
        };
        let filter = server_filter(query).unwrap_or_default();
        let body = self
            .http
            .get(&format!(
                "/contacts?limit={PAGE}&orders%5Bid%5D=ASC&id_greater={after}&include={}{filter}",
                enc(INCLUDE)
            ))
            .await?;
        let fields = self.fields().await?;
        let all_tags = by_contact_tags(&body);
        let tags = self
            .tags_covering(all_tags.iter().map(String::as_str))
            .await?;
        let values = contact::by_contact(&body, "fieldValues");
        let ctags = contact::by_contact(&body, "contactTags");
        let lists = contact::by_contact(&body, "contactLists");
        let raw = array(&body, "contacts");
        let mut last = None;
        let mut contacts = Vec::new();
        for c in raw {
            let Some(id) = c.get("id").and_then(text) else {
                continue;
            };
            let related = Related {
                field_values: values.get(&id).cloned().unwrap_or_default(),
                contact_tags: ctags.get(&id).cloned().unwrap_or_default(),
                contact_lists: lists.get(&id).cloned().unwrap_or_default(),
            };
            let loaded = contact::build(c, &related, &fields, &tags);
            if query.matches(&loaded.contact) {
                contacts.push(loaded.contact);
            }
            last = Some(id);
        }
        let remaining = total(&body);
        let more = remaining.map_or(raw.len() >= PAGE, |t| t > raw.len() as u64);
        Ok(ContactPage {
            contacts,
            next: last.filter(|_| more),
            // With `id_greater` the vendor's total counts what is left, so only the
            // first page's is the total; and only when nothing was filtered client-side.
            total: remaining.filter(|_| page.is_none() && matches!(query, ContactQuery::All)),
        })
    }

    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        Ok(self
            .tags(true)
            .await?
            .iter()
            .map(|(id, name)| Tag {
                id: id.clone(),
                name: name.clone(),
                category: None,
            })
            .collect())
    }
}

fn by_contact_tags(body: &Value) -> Vec<String> {
    array(body, "contactTags")
        .iter()
        .filter_map(|t| t.get("tag").and_then(text))
        .collect()
}

/// What the ActiveCampaign connector supports.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Fields,
    Capability::Tags,
    Capability::Notes,
    Capability::Automations,
    Capability::Search,
    Capability::OptIn,
];

#[async_trait]
impl CrmConnector for ActiveCampaign {
    fn platform(&self) -> &'static str {
        "activecampaign"
    }
    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }
    /// ActiveCampaign delivers webhooks per connection: nothing to route by.
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        Ok(None)
    }
    /// `GET /users/me`: the key's own user, the cheapest authenticated call.
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.http.get("/users/me").await.map(|_| ())
    }
    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        Ok(self.load(contact_id).await?.contact)
    }
    async fn apply(
        &self,
        contact_id: &str,
        _execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        self.apply_changes(contact_id, changes).await
    }
}
