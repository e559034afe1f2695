//! The seed file of a sandbox CRM: a catalog (tags, users, companies) and contacts with
//! the related data helpers read (invoices, email statistics, opportunities).

use crate::connectors::{Company, EmailStats, Opportunity, RelatedRecord, User};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The seed file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Tag id → name.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Tag id → category name.
    #[serde(default)]
    pub tag_categories: BTreeMap<String, String>,
    /// CRM users (possible owners).
    #[serde(default)]
    pub users: Vec<User>,
    /// Companies.
    #[serde(default)]
    pub companies: Vec<Company>,
    /// Contacts.
    #[serde(default)]
    pub contacts: Vec<SeedContact>,
}

/// A contact in the seed file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedContact {
    /// Contact id.
    pub id: String,
    /// Fields.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Tag ids (must be in the catalog).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Owner user id.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Linked company id.
    #[serde(default)]
    pub company_id: Option<String>,
    /// Email marketing consent.
    #[serde(default)]
    pub marketable: Option<bool>,
    /// Creation time, RFC 3339.
    #[serde(default)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Related records (invoices, orders, ...).
    #[serde(default)]
    pub records: Vec<RelatedRecord>,
    /// Email engagement of the contact's `email`.
    #[serde(default)]
    pub email_stats: Option<EmailStats>,
    /// Opportunities.
    #[serde(default)]
    pub opportunities: Vec<Opportunity>,
}
