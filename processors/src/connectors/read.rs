//! What a helper may read from a CRM besides the contact itself: searches, the tag
//! catalog, users, companies, related records, email statistics and opportunities.
//!
//! Helpers read through [`CrmRead`] and write only by returning [`Change`]s, so a dry run
//! or a redelivery never writes twice. [`CrmData`] answers every query from memory; the
//! sandbox loads it from DynamoDB and unit tests build it by hand, so both run the same
//! query code.
//!
//! [`Change`]: crate::helpers::Change

use super::CrmError;
use crate::helpers::Contact;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A contact search. Matching is case-insensitive; empty values never match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContactQuery {
    /// Every contact.
    All,
    /// `field` equals `value`.
    FieldEquals {
        /// Field key.
        field: String,
        /// Value.
        value: String,
    },
    /// `field` contains `value`.
    FieldContains {
        /// Field key.
        field: String,
        /// Substring.
        value: String,
    },
    /// The contact has the tag.
    HasTag {
        /// Tag id.
        tag_id: String,
    },
    /// Every sub-query matches.
    And(Vec<ContactQuery>),
    /// Any sub-query matches.
    Or(Vec<ContactQuery>),
}

impl ContactQuery {
    /// Whether `contact` matches.
    #[must_use]
    pub fn matches(&self, contact: &Contact) -> bool {
        let field = |f: &str| contact.field(f).map(str::to_lowercase);
        match self {
            Self::All => true,
            Self::FieldEquals { field: f, value } => {
                !value.trim().is_empty()
                    && field(f).is_some_and(|v| v.trim() == value.trim().to_lowercase())
            }
            Self::FieldContains { field: f, value } => {
                !value.trim().is_empty()
                    && field(f).is_some_and(|v| v.contains(&value.trim().to_lowercase()))
            }
            Self::HasTag { tag_id } => contact.has_tag(tag_id),
            Self::And(qs) => qs.iter().all(|q| q.matches(contact)),
            Self::Or(qs) => qs.iter().any(|q| q.matches(contact)),
        }
    }
}

/// One page of search results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPage {
    /// The contacts of this page.
    pub contacts: Vec<Contact>,
    /// The token of the next page, if any.
    pub next: Option<String>,
    /// The total number of matches, when the CRM reports it.
    pub total: Option<u64>,
}

/// A tag in the CRM's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Tag id.
    pub id: String,
    /// Tag name.
    pub name: String,
    /// Category name, if any.
    #[serde(default)]
    pub category: Option<String>,
}

/// A CRM user (a possible owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Whether the user is active.
    #[serde(default = "yes")]
    pub active: bool,
}

const fn yes() -> bool {
    true
}

/// A company record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// Company id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Other fields (website, phone, ...).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Creation time in milliseconds, for picking the oldest of several matches.
    #[serde(default)]
    pub created_at: i64,
}

/// Kinds of records related to a contact.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Invoice.
    Invoice,
    /// Order (Keap "job").
    Job,
    /// Subscription (recurring order).
    Subscription,
    /// Lead / opportunity.
    Lead,
    /// Credit card on file.
    Creditcard,
    /// Payment.
    Payment,
}

impl RecordKind {
    /// The snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Job => "job",
            Self::Subscription => "subscription",
            Self::Lead => "lead",
            Self::Creditcard => "creditcard",
            Self::Payment => "payment",
        }
    }
}

/// A record related to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelatedRecord {
    /// Record id.
    pub id: String,
    /// Kind.
    pub kind: RecordKind,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Fields, e.g. `InvoiceTotal`, `TotalPaid`, `ProductSold`, `Status`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// Email engagement of one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailStats {
    /// Emails sent.
    #[serde(default)]
    pub sent: u64,
    /// Opens.
    #[serde(default)]
    pub opens: u64,
    /// Clicks.
    #[serde(default)]
    pub clicks: u64,
    /// Last send.
    #[serde(default)]
    pub last_sent: Option<DateTime<Utc>>,
    /// Last open.
    #[serde(default)]
    pub last_open: Option<DateTime<Utc>>,
    /// Last click.
    #[serde(default)]
    pub last_click: Option<DateTime<Utc>>,
}

/// A sales opportunity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opportunity {
    /// Id.
    pub id: String,
    /// Title.
    pub name: String,
    /// Current stage.
    pub stage: String,
}

fn unsupported(what: &str) -> CrmError {
    CrmError::Unsupported {
        what: what.to_owned(),
    }
}

/// Read-only CRM queries. Every method defaults to [`CrmError::Unsupported`]; a
/// connector overrides what its CRM offers and lists it in its capabilities.
#[async_trait]
pub trait CrmRead: Send + Sync {
    /// One page of contacts matching `query`; `page` is the previous page's `next`.
    ///
    /// # Errors
    /// [`CrmError`].
    async fn search_contacts(
        &self,
        _query: &ContactQuery,
        _page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        Err(unsupported("contact search"))
    }
    /// The tag catalog.
    ///
    /// # Errors
    /// [`CrmError`].
    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        Err(unsupported("tag catalog"))
    }
    /// The CRM's users.
    ///
    /// # Errors
    /// [`CrmError`].
    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        Err(unsupported("users"))
    }
    /// Companies whose name contains `name` (case-insensitive).
    ///
    /// # Errors
    /// [`CrmError`].
    async fn find_companies(&self, _name: &str) -> Result<Vec<Company>, CrmError> {
        Err(unsupported("companies"))
    }
    /// The contact's records of `kind`, oldest first.
    ///
    /// # Errors
    /// [`CrmError`].
    async fn related_records(
        &self,
        _contact_id: &str,
        _kind: RecordKind,
    ) -> Result<Vec<RelatedRecord>, CrmError> {
        Err(unsupported("related records"))
    }
    /// Email engagement of `email`.
    ///
    /// # Errors
    /// [`CrmError`].
    async fn email_stats(&self, _email: &str) -> Result<EmailStats, CrmError> {
        Err(unsupported("email statistics"))
    }
    /// The contact's opportunities.
    ///
    /// # Errors
    /// [`CrmError`].
    async fn opportunities(&self, _contact_id: &str) -> Result<Vec<Opportunity>, CrmError> {
        Err(unsupported("opportunities"))
    }
}

/// Every page of a search, up to `limit` contacts (a guard against runaway scans).
///
/// # Errors
/// [`CrmError`] from any page.
pub async fn search_all(
    crm: &dyn CrmRead,
    query: &ContactQuery,
    limit: usize,
) -> Result<Vec<Contact>, CrmError> {
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let p = crm.search_contacts(query, page.as_deref()).await?;
        out.extend(p.contacts);
        if out.len() >= limit {
            out.truncate(limit);
            return Ok(out);
        }
        match p.next {
            Some(n) => page = Some(n),
            None => return Ok(out),
        }
    }
}

/// A CRM's readable data held in memory; answers [`CrmRead`] with pages of
/// [`CrmData::PAGE`] contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmData {
    /// Contacts, in id order.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Tag catalog.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Companies.
    #[serde(default)]
    pub companies: Vec<Company>,
    /// Related records by contact id.
    #[serde(default)]
    pub records: BTreeMap<String, Vec<RelatedRecord>>,
    /// Email stats by lower-case address.
    #[serde(default)]
    pub email_stats: BTreeMap<String, EmailStats>,
    /// Opportunities by contact id.
    #[serde(default)]
    pub opportunities: BTreeMap<String, Vec<Opportunity>>,
}

impl CrmData {
    /// Contacts per search page.
    pub const PAGE: usize = 100;
}

#[async_trait]
impl CrmRead for CrmData {
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let start: usize = page.and_then(|p| p.parse().ok()).unwrap_or(0);
        let matching: Vec<&Contact> = self.contacts.iter().filter(|c| query.matches(c)).collect();
        let end = (start + Self::PAGE).min(matching.len());
        Ok(ContactPage {
            contacts: matching
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|c| (*c).clone())
                .collect(),
            next: (end < matching.len()).then(|| end.to_string()),
            total: Some(matching.len() as u64),
        })
    }
    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        Ok(self.tags.clone())
    }
    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        Ok(self.users.clone())
    }
    async fn find_companies(&self, name: &str) -> Result<Vec<Company>, CrmError> {
        let needle = name.trim().to_lowercase();
        Ok(self
            .companies
            .iter()
            .filter(|c| !needle.is_empty() && c.name.to_lowercase().contains(&needle))
            .cloned()
            .collect())
    }
    async fn related_records(
        &self,
        contact_id: &str,
        kind: RecordKind,
    ) -> Result<Vec<RelatedRecord>, CrmError> {
        let mut out: Vec<RelatedRecord> = self
            .records
            .get(contact_id)
            .into_iter()
            .flatten()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }
    async fn email_stats(&self, email: &str) -> Result<EmailStats, CrmError> {
        Ok(self
            .email_stats
            .get(&email.trim().to_lowercase())
            .cloned()
            .unwrap_or_default())
    }
    async fn opportunities(&self, contact_id: &str) -> Result<Vec<Opportunity>, CrmError> {
        Ok(self
            .opportunities
            .get(contact_id)
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::contact;

    #[tokio::test]
    async fn search_pages_through_every_match() {
        let mut data = CrmData::default();
        for i in 0..250 {
            let mut c = contact(&[("email", &format!("U{i}@x.com"))], &[]);
            c.id = i.to_string();
            data.contacts.push(c);
        }
        let all = search_all(&data, &ContactQuery::All, 1000).await.unwrap();
        assert_eq!(all.len(), 250);
        let q = ContactQuery::FieldEquals {
            field: "email".into(),
            value: "u7@X.com".into(),
        };
        assert_eq!(search_all(&data, &q, 10).await.unwrap()[0].id, "7");
        let empty = ContactQuery::FieldEquals {
            field: "email".into(),
            value: " ".into(),
        };
        assert!(search_all(&data, &empty, 10).await.unwrap().is_empty());
    }
}
