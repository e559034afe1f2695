//! The GoHighLevel connector: reads, caches and the trait implementations.

use super::types::{self, CustomField};
use crate::connectors::registry::VendorContext;
use crate::connectors::vendor::{Body, VendorHttp, enc, text};
use crate::connectors::{
    ApplyReport, Capability, ContactPage, ContactQuery, CrmConnector, CrmError, CrmRead, Tag, User,
};
use crate::helpers::{Change, Contact};
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The API version every request names.
const VERSION: &str = "2021-07-28";
/// Contacts per search page.
const PAGE: usize = 100;
/// Page tokens that fall back to page numbers (when results carry no `searchAfter`).
const PAGE_PREFIX: &str = "page:";

/// A GoHighLevel location reached through one connection.
#[derive(Debug)]
pub struct GoHighLevel {
    pub(super) http: VendorHttp,
    pub(super) location_id: String,
    fields: Mutex<Option<Arc<Vec<CustomField>>>>,
    tags: Mutex<Option<Arc<Vec<Tag>>>>,
}

impl GoHighLevel {
    /// The connector of `ctx.connection`.
    ///
    /// # Errors
    /// [`CrmError::Invalid`] when the `location_id` setting is missing.
    pub fn new(ctx: VendorContext) -> Result<Self, CrmError> {
        Ok(Self {
            location_id: ctx.connection.required("location_id")?.to_owned(),
            http: ctx.http.clone().with_header("version", VERSION),
            fields: Mutex::new(None),
            tags: Mutex::new(None),
        })
    }

    pub(super) fn location_path(&self, rest: &str) -> String {
        format!("/locations/{}/{rest}", enc(&self.location_id))
    }

    /// The location's contact custom fields, cached; `refresh` reloads them.
    pub(super) async fn custom_fields(
        &self,
        refresh: bool,
    ) -> Result<Arc<Vec<CustomField>>, CrmError> {
        let mut cached = self.fields.lock().await;
        if let Some(f) = cached.as_ref().filter(|_| !refresh) {
            return Ok(f.clone());
        }
        let v = self
            .http
            .get(&self.location_path("customFields?model=contact"))
            .await?;
        let fields = Arc::new(types::custom_fields(&v));
        *cached = Some(fields.clone());
        Ok(fields)
    }

    /// The location's tags (id = name), cached; `refresh` reloads them.
    pub(super) async fn catalog(&self, refresh: bool) -> Result<Arc<Vec<Tag>>, CrmError> {
        let mut cached = self.tags.lock().await;
        if let Some(t) = cached.as_ref().filter(|_| !refresh) {
            return Ok(t.clone());
        }
        let v = self.http.get(&self.location_path("tags")).await?;
        let tags: Vec<Tag> = v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str())
            .map(|name| Tag {
                id: name.to_owned(),
                name: name.to_owned(),
                category: None,
            })
            .collect();
        let tags = Arc::new(tags);
        *cached = Some(tags.clone());
        Ok(tags)
    }

    /// Adds a tag to the cached catalog after creating it.
    pub(super) async fn remember_tag(&self, name: &str) {
        let mut cached = self.tags.lock().await;
        let mut tags = cached.as_deref().cloned().unwrap_or_default();
        tags.push(Tag {
            id: name.to_owned(),
            name: name.to_owned(),
            category: None,
        });
        *cached = Some(Arc::new(tags));
    }

    /// The raw contact object.
    pub(super) async fn raw_contact(&self, contact_id: &str) -> Result<Value, CrmError> {
        let v = self
            .http
            .get(&format!("/contacts/{}", enc(contact_id)))
            .await
            .map_err(|e| match e {
                CrmError::NotFound { .. } => CrmError::NotFound {
                    object: format!("contact {contact_id}"),
                },
                other => other,
            })?;
        Ok(v["contact"].clone())
    }
}

#[async_trait]
impl CrmRead for GoHighLevel {
    /// Pages through `POST /contacts/search` with the `searchAfter` cursor, sorted by
    /// creation time. Only email equality is sent as a filter; every page is filtered
    /// client-side with [`ContactQuery::matches`], so a page may hold fewer contacts.
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let mut body = json!({
            "locationId": self.location_id,
            "pageLimit": PAGE,
            "sort": [{"field": "dateAdded", "direction": "asc"}],
        });
        let filters = types::filters(query);
        if !filters.is_empty() {
            body["filters"] = json!(filters);
        }
        let mut page_no: Option<u64> = None;
        match page {
            Some(p) if p.starts_with(PAGE_PREFIX) => {
                let n = p[PAGE_PREFIX.len()..].parse().unwrap_or(1);
                body["page"] = json!(n);
                page_no = Some(n);
            }
            Some(p) => {
                body["searchAfter"] = serde_json::from_str(p).map_err(|e| CrmError::Invalid {
                    field: "page".into(),
                    reason: format!("not a GoHighLevel page token: {e}"),
                })?;
            }
            None => {}
        }
        let v = self
            .http
            .send(Method::POST, "/contacts/search", Body::Json(body))
            .await?;
        let fields = self.custom_fields(false).await?;
        let raw = v["contacts"].as_array().cloned().unwrap_or_default();
        let next = match raw.last() {
            Some(last) if raw.len() >= PAGE => match &last["searchAfter"] {
                Value::Array(a) if !a.is_empty() && page_no.is_none() => {
                    Some(last["searchAfter"].to_string())
                }
                _ => Some(format!("{PAGE_PREFIX}{}", page_no.unwrap_or(1) + 1)),
            },
            _ => None,
        };
        Ok(ContactPage {
            contacts: raw
                .iter()
                .map(|c| types::contact_from_search_hit(c, &fields))
                .filter(|c| query.matches(c))
                .collect(),
            next,
            total: v["total"].as_u64(),
        })
    }

    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        Ok(self.catalog(true).await?.as_ref().clone())
    }

    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        let v = self
            .http
            .get(&format!("/users/?locationId={}", enc(&self.location_id)))
            .await?;
        Ok(v["users"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| User {
                id: text(&u["id"]).unwrap_or_default(),
                name: u["name"].as_str().unwrap_or_default().to_owned(),
                email: u["email"].as_str().unwrap_or_default().to_owned(),
                active: !u["deleted"].as_bool().unwrap_or(false),
            })
            .collect())
    }
}

/// What the GoHighLevel connector supports.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Fields,
    Capability::Tags,
    Capability::Notes,
    Capability::Search,
    Capability::Owners,
    Capability::OptIn,
    Capability::Automations,
];

#[async_trait]
impl CrmConnector for GoHighLevel {
    fn platform(&self) -> &'static str {
        "gohighlevel"
    }
    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.http.get(&self.location_path("tags")).await.map(|_| ())
    }
    /// The location (sub-account) every call of this connection is made for.
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        Ok(Some(self.location_id.clone()))
    }
    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        let raw = self.raw_contact(contact_id).await?;
        let fields = self.custom_fields(false).await?;
        Ok(types::contact_from(&raw, &fields))
    }
    async fn apply(
        &self,
        contact_id: &str,
        _execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        let raw = self.raw_contact(contact_id).await?;
        let fields = self.custom_fields(false).await?;
        let mut state = super::apply::State {
            contact: types::contact_from(&raw, &fields),
            dnd_all: raw["dnd"].as_bool() == Some(true),
            email_dnd: types::email_dnd(&raw).map(str::to_owned),
        };
        let mut report = ApplyReport::default();
        let mut rest = changes.iter();
        while let Some(ch) = rest.next() {
            match self.apply_one(&mut state, ch).await {
                Ok(Some(done)) => report.applied.push(done),
                Ok(None) => {}
                Err(e) if fatal(&e) => {
                    if report.applied.is_empty() {
                        return Err(e);
                    }
                    // Some changes are made: report them, and the rest as not attempted.
                    let why = mfh_pipeline::report(&e);
                    report.failed.push((ch.clone(), why.clone()));
                    report
                        .failed
                        .extend(rest.map(|c| (c.clone(), format!("not attempted: {why}"))));
                    break;
                }
                Err(e) => report.failed.push((ch.clone(), mfh_pipeline::report(&e))),
            }
        }
        Ok(report)
    }
}

/// Errors that stop an apply: every later change would fail the same way.
fn fatal(e: &CrmError) -> bool {
    matches!(
        e,
        CrmError::Auth(_) | CrmError::RateLimited { .. } | CrmError::Unavailable { .. }
    )
}
