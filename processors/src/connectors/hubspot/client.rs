//! The HubSpot connector: reads, caches and the trait implementations.

use super::types::{self, STANDARD};
use crate::connectors::registry::VendorContext;
use crate::connectors::vendor::{Body, VendorHttp, enc, text};
use crate::connectors::{
    ApplyReport, Capability, ContactPage, ContactQuery, CrmConnector, CrmError, CrmRead, Tag, User,
};
use crate::helpers::{Change, Contact};
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The tag property used when the connection does not name one.
pub const DEFAULT_TAG_PROPERTY: &str = "mfh_tags";
/// Contacts per list or search page (the list endpoint's maximum).
const PAGE: usize = 100;

/// The account's contact properties, loaded once per connector.
#[derive(Debug, Default)]
pub(super) struct Properties {
    /// Every property's internal name.
    pub(super) all: BTreeSet<String>,
    /// Custom (not HubSpot-defined) properties, read into contact fields.
    pub(super) custom: Vec<String>,
}

/// A HubSpot account reached through one connection.
#[derive(Debug)]
pub struct HubSpot {
    pub(super) http: VendorHttp,
    pub(super) tag_property: String,
    /// Subscription type opted in and out; every active one when unset.
    pub(super) subscription_id: Option<String>,
    /// The legal basis sent with consent changes (GDPR portals need one).
    pub(super) legal_basis: Option<String>,
    props: Mutex<Option<Arc<Properties>>>,
    tags: Mutex<Option<Arc<Vec<Tag>>>>,
}

impl HubSpot {
    /// The connector of `ctx.connection`; its `tag_property` setting names the
    /// multi-checkbox property holding tags (default [`DEFAULT_TAG_PROPERTY`]).
    ///
    /// # Errors
    /// [`CrmError::Invalid`] when a needed setting is missing (none is, today).
    pub fn new(ctx: VendorContext) -> Result<Self, CrmError> {
        let setting = |k: &str| ctx.connection.setting(k).map(str::to_owned);
        Ok(Self {
            tag_property: setting("tag_property").unwrap_or_else(|| DEFAULT_TAG_PROPERTY.into()),
            subscription_id: setting("subscription_id"),
            legal_basis: setting("legal_basis"),
            http: ctx.http,
            props: Mutex::new(None),
            tags: Mutex::new(None),
        })
    }

    /// The property metadata, loaded on first use or again with `refresh`.
    pub(super) async fn properties(&self, refresh: bool) -> Result<Arc<Properties>, CrmError> {
        let mut cached = self.props.lock().await;
        if let Some(p) = cached.as_ref().filter(|_| !refresh) {
            return Ok(p.clone());
        }
        let v = self.http.get("/crm/v3/properties/contacts").await?;
        let mut props = Properties::default();
        for p in v["results"].as_array().into_iter().flatten() {
            let Some(name) = p["name"].as_str() else {
                continue;
            };
            props.all.insert(name.to_owned());
            if !p["hubspotDefined"].as_bool().unwrap_or(false) && name != self.tag_property {
                props.custom.push(name.to_owned());
            }
        }
        let props = Arc::new(props);
        *cached = Some(props.clone());
        Ok(props)
    }

    /// The tag catalog (the tag property's options), cached; `refresh` reloads it. A
    /// missing tag property is an empty catalog.
    pub(super) async fn catalog(&self, refresh: bool) -> Result<Arc<Vec<Tag>>, CrmError> {
        let mut cached = self.tags.lock().await;
        if let Some(t) = cached.as_ref().filter(|_| !refresh) {
            return Ok(t.clone());
        }
        let path = format!("/crm/v3/properties/contacts/{}", enc(&self.tag_property));
        let tags = match self.http.get(&path).await {
            Ok(v) => options(&v),
            Err(CrmError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let tags = Arc::new(tags);
        *cached = Some(tags.clone());
        Ok(tags)
    }

    /// Replaces the cached catalog after the connector changed the options.
    pub(super) async fn set_catalog(&self, tags: Vec<Tag>) {
        *self.tags.lock().await = Some(Arc::new(tags));
    }

    fn parse(&self, v: &Value, props: &Properties, catalog: &[Tag]) -> Contact {
        types::contact_from(v, &props.custom, &self.tag_property, catalog)
    }

    async fn page_of(&self, v: &Value, query: &ContactQuery) -> Result<ContactPage, CrmError> {
        let props = self.properties(false).await?;
        let catalog = self.catalog(false).await?;
        let contacts = v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| self.parse(c, &props, &catalog))
            .filter(|c| query.matches(c))
            .collect();
        Ok(ContactPage {
            contacts,
            next: v["paging"]["next"]["after"]
                .as_str()
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            total: v["total"].as_u64(),
        })
    }
}

/// Tags from a property definition's options: value is the id, label the name.
pub(super) fn options(v: &Value) -> Vec<Tag> {
    v["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some(Tag {
                id: text(&o["value"])?,
                name: o["label"].as_str().unwrap_or_default().to_owned(),
                category: None,
            })
        })
        .collect()
}

#[async_trait]
impl CrmRead for HubSpot {
    /// Searches through `POST /crm/v3/objects/contacts/search` with filters that match
    /// a superset of the query (see [`types::filter_groups`]); a query that cannot be
    /// narrowed, `All` included, pages through the list endpoint instead, which also
    /// escapes search's 10,000-result cap. Every page is filtered client-side with
    /// [`ContactQuery::matches`], so a page may hold fewer contacts than the limit.
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let props = self.properties(false).await?;
        let wanted = types::requested(&props.custom, &self.tag_property);
        let v = match types::filter_groups(query, &self.tag_property) {
            None => {
                let mut path = format!(
                    "/crm/v3/objects/contacts?limit={PAGE}&archived=false&properties={}",
                    enc(&wanted.join(","))
                );
                if let Some(after) = page {
                    path.push_str(&format!("&after={}", enc(after)));
                }
                self.http.get(&path).await?
            }
            Some(groups) => {
                let groups: Vec<Value> =
                    groups.into_iter().map(|f| json!({"filters": f})).collect();
                let mut body = json!({
                    "filterGroups": groups,
                    "properties": wanted,
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    "limit": PAGE,
                });
                if let Some(after) = page {
                    body["after"] = json!(after);
                }
                self.http
                    .send(
                        Method::POST,
                        "/crm/v3/objects/contacts/search",
                        Body::Json(body),
                    )
                    .await?
            }
        };
        self.page_of(&v, query).await
    }

    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        Ok(self.catalog(true).await?.as_ref().clone())
    }

    /// HubSpot's owners; archived owners are not listed, so they cannot be assigned.
    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = "/crm/v3/owners?limit=100".to_owned();
            if let Some(a) = &after {
                path.push_str(&format!("&after={}", enc(a)));
            }
            let v = self.http.get(&path).await?;
            for o in v["results"].as_array().into_iter().flatten() {
                let name = format!(
                    "{} {}",
                    o["firstName"].as_str().unwrap_or_default(),
                    o["lastName"].as_str().unwrap_or_default()
                );
                out.push(User {
                    id: text(&o["id"]).unwrap_or_default(),
                    name: name.trim().to_owned(),
                    email: o["email"].as_str().unwrap_or_default().to_owned(),
                    active: !o["archived"].as_bool().unwrap_or(false),
                });
            }
            match v["paging"]["next"]["after"].as_str() {
                Some(a) if !a.is_empty() => after = Some(a.to_owned()),
                _ => return Ok(out),
            }
        }
    }
}

/// What the HubSpot connector supports.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Fields,
    Capability::Tags,
    Capability::Notes,
    Capability::Search,
    Capability::Owners,
    Capability::OptIn,
];

#[async_trait]
impl CrmConnector for HubSpot {
    fn platform(&self) -> &'static str {
        "hubspot"
    }
    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.http
            .get("/crm/v3/objects/contacts?limit=1")
            .await
            .map(|_| ())
    }
    /// The portal (hub) id: developers.hubspot.com/docs/api-reference/legacy/account/
    /// account-information/get-account-details, `GET /account-info/v3/details` →
    /// `portalId` (scope `oauth`, which every HubSpot connection is granted).
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        let v = self.http.get("/account-info/v3/details").await?;
        text(&v["portalId"])
            .filter(|p| !p.is_empty())
            .map(Some)
            .ok_or_else(|| CrmError::Invalid {
                field: "portalId".into(),
                reason: "HubSpot's account details name no portal".into(),
            })
    }
    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        let props = self.properties(false).await?;
        let catalog = self.catalog(false).await?;
        let wanted = types::requested(&props.custom, &self.tag_property);
        let path = format!(
            "/crm/v3/objects/contacts/{}?properties={}",
            enc(contact_id),
            enc(&wanted.join(","))
        );
        let v = self.http.get(&path).await.map_err(|e| match e {
            CrmError::NotFound { .. } => CrmError::NotFound {
                object: format!("contact {contact_id}"),
            },
            other => other,
        })?;
        Ok(self.parse(&v, &props, &catalog))
    }
    async fn apply(
        &self,
        contact_id: &str,
        _execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        let mut contact = self.get_contact(contact_id).await?;
        let mut report = ApplyReport::default();
        let mut rest = changes.iter();
        while let Some(ch) = rest.next() {
            match self.apply_one(&mut contact, ch).await {
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

/// Whether `key` is a standard field key.
pub(super) fn is_standard(key: &str) -> bool {
    STANDARD.iter().any(|(k, _)| *k == key)
}
