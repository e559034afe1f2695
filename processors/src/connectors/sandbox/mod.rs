//! The sandbox CRM: a real, persistent CRM-like store inside mfh, kept in DynamoDB so
//! every process and restart sees the same data. It has what helpers use on real CRMs:
//! contacts with standard and custom fields, a tag catalog with categories, notes, goals,
//! owners (users), email consent, companies, automations, opportunities, related records
//! (invoices, orders), email statistics, search and merges. The embedded default and the
//! tests run helpers against it; it is seeded from a JSON file ([`seed::SeedFile`]).
//!
//! Each contact item remembers the last executions applied to it, with what they changed,
//! and is written with a version check, so applying one execution twice is a no-op.
//! Tags and companies a change creates get ids derived from their names, so a retried
//! apply creates nothing twice.

mod apply;
pub mod seed;

pub use apply::CONTACT_OPT_OUT;
pub use seed::{SeedContact, SeedFile};

use super::{
    ApplyReport, Capability, Company, ContactPage, ContactQuery, CrmConnector, CrmError, CrmRead,
    EmailStats, Opportunity, RecordKind, RelatedRecord, Tag, User,
};
use crate::helpers::{Change, Contact};
use crate::store::{SANDBOX_CONTACTS, Store};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use mfh_schemas::ContactChange;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Connection ids served by the sandbox: `sandbox` or `sandbox:<name>`.
#[must_use]
pub fn is_sandbox(connection_id: &str) -> bool {
    connection_id == "sandbox" || connection_id.starts_with("sandbox:")
}

/// How many applied executions each contact remembers; redeliveries arrive within minutes,
/// so this bounds the item size without letting a realistic redelivery through.
const REMEMBERED_EXECUTIONS: usize = 200;
/// Attempts at a version-checked write before reporting contention.
const WRITE_ATTEMPTS: usize = 8;
const CATALOG_ID: &str = "_catalog";
/// Contacts read per DynamoDB page when searching.
const SEARCH_PAGE: i32 = 100;

/// A note on a sandbox contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

/// The account-wide part of a sandbox CRM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Tag id → name.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Tag id → category.
    #[serde(default)]
    pub tag_categories: BTreeMap<String, String>,
    /// Users.
    #[serde(default)]
    pub users: Vec<User>,
    /// Companies.
    #[serde(default)]
    pub companies: Vec<Company>,
}

/// A stored sandbox contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxContact {
    /// Fields by key.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Tag ids on the contact with their names.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Notes, oldest first.
    #[serde(default)]
    pub notes: Vec<Note>,
    /// Goals achieved, oldest first.
    #[serde(default)]
    pub goals: Vec<String>,
    /// Owner user id.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// Linked company id.
    #[serde(default)]
    pub company_id: Option<String>,
    /// Email marketing consent.
    #[serde(default)]
    pub marketable: Option<bool>,
    /// The reason of the last opt-out.
    #[serde(default)]
    pub opt_out_reason: Option<String>,
    /// Creation time (ms).
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Last change (ms).
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Related records.
    #[serde(default)]
    pub records: Vec<RelatedRecord>,
    /// Email engagement of the contact's email.
    #[serde(default)]
    pub email_stats: EmailStats,
    /// Opportunities.
    #[serde(default)]
    pub opportunities: Vec<Opportunity>,
    /// Automations started, oldest first.
    #[serde(default)]
    pub automations: Vec<String>,
    /// Set when merged into another contact.
    #[serde(default)]
    pub merged_into: Option<String>,
    /// Set when deleted (by a merge).
    #[serde(default)]
    pub deleted: bool,
    /// Recently applied executions and what each changed.
    #[serde(default)]
    applied: VecDeque<(String, Vec<ContactChange>)>,
}

impl SandboxContact {
    /// Found by searches: neither deleted nor merged into another contact.
    fn live(&self) -> bool {
        !self.deleted && self.merged_into.is_none()
    }

    /// Readable and writable: a merged loser that was kept (tagged "merged into …")
    /// is still a contact, only hidden from searches.
    fn exists(&self) -> bool {
        !self.deleted
    }

    /// Journals `execution_id` as applied with `applied`, forgetting the oldest beyond
    /// [`REMEMBERED_EXECUTIONS`].
    fn remember(&mut self, execution_id: &str, applied: &[ContactChange]) {
        self.applied
            .push_back((execution_id.to_owned(), applied.to_vec()));
        while self.applied.len() > REMEMBERED_EXECUTIONS {
            self.applied.pop_front();
        }
    }

    fn to_contact(&self, id: &str) -> Contact {
        Contact {
            id: id.to_owned(),
            fields: self.fields.clone(),
            tags: self.tags.clone(),
            owner_id: self.owner_id.clone(),
            company_id: self.company_id.clone(),
            marketable: self.marketable,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// One sandbox connection of one account.
#[derive(Debug, Clone)]
pub struct Sandbox {
    store: Store,
    partition: String,
    /// The contact `get_contact` read last, with its version: the helper decided on that
    /// document, so `apply` starts from it instead of reading it again. The write is
    /// conditional on the version, so a document changed in between is read afresh.
    last_read: std::sync::Arc<std::sync::Mutex<Option<(String, SandboxContact, i64)>>>,
}

fn unavailable(e: impl std::fmt::Debug) -> CrmError {
    CrmError::Unavailable {
        message: format!("sandbox store: {e:?}"),
    }
}

fn not_found(contact_id: &str) -> CrmError {
    CrmError::NotFound {
        object: format!("contact {contact_id}"),
    }
}

fn parse_doc<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
) -> Result<(T, i64), CrmError> {
    let doc = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| unavailable("item without doc"))?;
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((serde_json::from_str(doc).map_err(unavailable)?, version))
}

impl Sandbox {
    /// The sandbox connection `connection_id` of `account_id`.
    #[must_use]
    pub fn new(store: Store, account_id: &str, connection_id: &str) -> Self {
        Self {
            store,
            partition: format!("{account_id}/{connection_id}"),
            last_read: std::sync::Arc::default(),
        }
    }

    async fn read<T: DeserializeOwned>(&self, id: &str) -> Result<Option<(T, i64)>, CrmError> {
        let out = self
            .store
            .client
            .get_item()
            .table_name(self.store.table(SANDBOX_CONTACTS))
            .key("connection", AttributeValue::S(self.partition.clone()))
            .key("contact_id", AttributeValue::S(id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        out.item.as_ref().map(parse_doc).transpose()
    }

    /// The put of `doc` as `id`, made only if the stored version is still `expected`
    /// (`None`: must not exist).
    fn versioned_put<T: Serialize>(
        &self,
        id: &str,
        doc: &T,
        expected: Option<i64>,
    ) -> Result<aws_sdk_dynamodb::types::Put, CrmError> {
        let json = serde_json::to_string(doc).map_err(unavailable)?;
        let next = expected.map_or(1, |v| v + 1);
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.store.table(SANDBOX_CONTACTS))
            .item("connection", AttributeValue::S(self.partition.clone()))
            .item("contact_id", AttributeValue::S(id.to_owned()))
            .item("doc", AttributeValue::S(json))
            .item("version", AttributeValue::N(next.to_string()));
        match expected {
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
            None => put.condition_expression("attribute_not_exists(contact_id)"),
        }
        .build()
        .map_err(unavailable)
    }

    /// Writes `doc` if the stored version is still `expected` (`None`: must not exist).
    /// Returns false when someone else wrote first.
    async fn write<T: Serialize>(
        &self,
        id: &str,
        doc: &T,
        expected: Option<i64>,
    ) -> Result<bool, CrmError> {
        let put = self.versioned_put(id, doc, expected)?;
        let res = self.store.put_one(put).await;
        if id == CATALOG_ID {
            self.store.sandbox_catalogs().forget(&self.partition);
        }
        res.map_err(unavailable)
    }

    /// Reads, changes and writes one item with a version check, retrying on contention.
    /// `change` returns false when there is nothing to write. Returns the item as stored.
    async fn update<T, F>(&self, id: &str, mut change: F) -> Result<T, CrmError>
    where
        T: DeserializeOwned + Serialize + Default,
        F: FnMut(&mut T) -> bool,
    {
        for _ in 0..WRITE_ATTEMPTS {
            let (mut doc, version) = match self.read::<T>(id).await? {
                Some((d, v)) => (d, Some(v)),
                None => (T::default(), None),
            };
            if !change(&mut doc) || self.write(id, &doc, version).await? {
                return Ok(doc);
            }
        }
        Err(CrmError::Unavailable {
            message: format!("{id} is being written concurrently"),
        })
    }

    /// Loads a seed file: the catalog and every contact not already present.
    ///
    /// # Errors
    /// [`CrmError`] when the store fails.
    pub async fn seed(&self, seed: &SeedFile) -> Result<usize, CrmError> {
        let catalog = Catalog {
            tags: seed.tags.clone(),
            tag_categories: seed.tag_categories.clone(),
            users: seed.users.clone(),
            companies: seed.companies.clone(),
        };
        self.write(CATALOG_ID, &catalog, None).await?;
        let mut added = 0;
        for c in &seed.contacts {
            let tags = c
                .tags
                .iter()
                .map(|t| {
                    (
                        t.clone(),
                        seed.tags.get(t).cloned().unwrap_or_else(|| t.clone()),
                    )
                })
                .collect();
            let doc = SandboxContact {
                fields: c.fields.clone(),
                tags,
                owner_id: c.owner_id.clone(),
                company_id: c.company_id.clone(),
                marketable: c.marketable,
                created_at: c.created_at.map(|t| t.timestamp_millis()),
                records: c.records.clone(),
                email_stats: c.email_stats.clone().unwrap_or_default(),
                opportunities: c.opportunities.clone(),
                ..SandboxContact::default()
            };
            if self.write(&c.id, &doc, None).await? {
                added += 1;
            }
        }
        Ok(added)
    }

    /// The stored contact with notes, goals and the rest, for tests and the sandbox API.
    ///
    /// # Errors
    /// [`CrmError`] when the store fails.
    pub async fn contact_record(
        &self,
        contact_id: &str,
    ) -> Result<Option<SandboxContact>, CrmError> {
        Ok(self.read(contact_id).await?.map(|(c, _)| c))
    }

    /// The catalog (tags, users, companies).
    ///
    /// # Errors
    /// [`CrmError`] when the store fails.
    pub async fn catalog(&self) -> Result<Catalog, CrmError> {
        let catalog: Catalog = self
            .read(CATALOG_ID)
            .await?
            .map(|(c, _)| c)
            .unwrap_or_default();
        self.store
            .sandbox_catalogs()
            .put(&self.partition, std::sync::Arc::new(catalog.clone()));
        Ok(catalog)
    }

    /// The catalog applying `changes` needs. One that creates tags or companies extends the
    /// stored catalog and reads it back; otherwise a catalog read within the cache's time
    /// to live serves when it knows every tag, user and company the changes name, and a
    /// fresh read when it does not (one made a moment ago elsewhere).
    async fn catalog_for(
        &self,
        changes: &[Change],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<std::sync::Arc<Catalog>, CrmError> {
        if changes.iter().any(|c| {
            matches!(
                c,
                Change::ApplyTagNamed { .. }
                    | Change::LinkCompany {
                        company_id: None,
                        ..
                    }
            )
        }) {
            let catalog = std::sync::Arc::new(
                self.update::<Catalog, _>(CATALOG_ID, |cat| {
                    apply::extend_catalog(cat, changes, now.timestamp_millis())
                })
                .await?,
            );
            self.store
                .sandbox_catalogs()
                .put(&self.partition, catalog.clone());
            return Ok(catalog);
        }
        if !changes.iter().any(apply::needs_catalog) {
            return Ok(std::sync::Arc::default());
        }
        if let Some(cached) = self.store.sandbox_catalogs().get(&self.partition)
            && apply::knows_all(&cached, changes)
        {
            return Ok(cached);
        }
        Ok(std::sync::Arc::new(self.catalog().await?))
    }

    async fn live_contact(&self, contact_id: &str) -> Result<SandboxContact, CrmError> {
        match self.read::<SandboxContact>(contact_id).await? {
            Some((c, version)) if contact_id != CATALOG_ID && c.exists() => {
                *self.memo() = Some((contact_id.to_owned(), c.clone(), version));
                Ok(c)
            }
            _ => Err(not_found(contact_id)),
        }
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Option<(String, SandboxContact, i64)>> {
        // A panic elsewhere while holding the lock leaves a value that is still valid.
        self.last_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The contact to change: the one `get_contact` just read, once, else a fresh read.
    async fn contact_for_write(
        &self,
        contact_id: &str,
    ) -> Result<Option<(SandboxContact, i64)>, CrmError> {
        let memo = self.memo().take();
        if let Some((id, doc, version)) = memo
            && id == contact_id
        {
            return Ok(Some((doc, version)));
        }
        self.read::<SandboxContact>(contact_id).await
    }

    /// One DynamoDB page of the connection's items after `after`.
    async fn page(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<(String, SandboxContact)>, Option<String>), CrmError> {
        let start = after.map(|a| {
            HashMap::from([
                (
                    "connection".to_owned(),
                    AttributeValue::S(self.partition.clone()),
                ),
                ("contact_id".to_owned(), AttributeValue::S(a.to_owned())),
            ])
        });
        let out = self
            .store
            .client
            .query()
            .table_name(self.store.table(SANDBOX_CONTACTS))
            .key_condition_expression("#c = :c")
            .expression_attribute_names("#c", "connection")
            .expression_attribute_values(":c", AttributeValue::S(self.partition.clone()))
            .limit(SEARCH_PAGE)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let mut contacts = Vec::new();
        for item in out.items() {
            let id = item
                .get("contact_id")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            if id == CATALOG_ID {
                continue;
            }
            let (doc, _) = parse_doc::<SandboxContact>(item)?;
            if doc.live() {
                contacts.push((id, doc));
            }
        }
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("contact_id").and_then(|v| v.as_s().ok()).cloned());
        Ok((contacts, next))
    }
}

#[async_trait]
impl CrmRead for Sandbox {
    async fn search_contacts(
        &self,
        query: &ContactQuery,
        page: Option<&str>,
    ) -> Result<ContactPage, CrmError> {
        let (docs, next) = self.page(page).await?;
        Ok(ContactPage {
            contacts: docs
                .iter()
                .map(|(id, d)| d.to_contact(id))
                .filter(|c| query.matches(c))
                .collect(),
            next,
            total: None,
        })
    }

    async fn list_tags(&self) -> Result<Vec<Tag>, CrmError> {
        let c = self.catalog().await?;
        Ok(c.tags
            .iter()
            .map(|(id, name)| Tag {
                id: id.clone(),
                name: name.clone(),
                category: c.tag_categories.get(id).cloned(),
            })
            .collect())
    }

    async fn list_users(&self) -> Result<Vec<User>, CrmError> {
        Ok(self.catalog().await?.users)
    }

    async fn find_companies(&self, name: &str) -> Result<Vec<Company>, CrmError> {
        let needle = name.trim().to_lowercase();
        Ok(self
            .catalog()
            .await?
            .companies
            .into_iter()
            .filter(|c| !needle.is_empty() && c.name.to_lowercase().contains(&needle))
            .collect())
    }

    async fn related_records(
        &self,
        contact_id: &str,
        kind: RecordKind,
    ) -> Result<Vec<RelatedRecord>, CrmError> {
        let mut out: Vec<RelatedRecord> = self
            .live_contact(contact_id)
            .await?
            .records
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn email_stats(&self, email: &str) -> Result<EmailStats, CrmError> {
        let wanted = email.trim().to_lowercase();
        let mut page = None;
        loop {
            let (docs, next) = self.page(page.as_deref()).await?;
            if let Some((_, d)) = docs.iter().find(|(_, d)| {
                d.fields
                    .get("email")
                    .is_some_and(|e| e.trim().to_lowercase() == wanted)
            }) {
                return Ok(d.email_stats.clone());
            }
            match next {
                Some(n) => page = Some(n),
                None => return Ok(EmailStats::default()),
            }
        }
    }

    async fn opportunities(&self, contact_id: &str) -> Result<Vec<Opportunity>, CrmError> {
        Ok(self.live_contact(contact_id).await?.opportunities)
    }
}

#[async_trait]
impl CrmConnector for Sandbox {
    fn platform(&self) -> &'static str {
        "sandbox"
    }

    fn capabilities(&self) -> &'static [Capability] {
        &[
            Capability::Fields,
            Capability::Tags,
            Capability::Notes,
            Capability::Goals,
            Capability::Automations,
            Capability::Search,
            Capability::Owners,
            Capability::OptIn,
            Capability::Companies,
            Capability::Opportunities,
            Capability::RelatedRecords,
            Capability::EmailStats,
            Capability::Merge,
        ]
    }

    /// The sandbox sends no webhooks: nothing to route by.
    async fn vendor_account(&self) -> Result<Option<String>, CrmError> {
        Ok(None)
    }
    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.catalog().await.map(|_| ())
    }

    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        Ok(self.live_contact(contact_id).await?.to_contact(contact_id))
    }

    async fn apply(
        &self,
        contact_id: &str,
        execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        let now = chrono::Utc::now();
        let catalog = self.catalog_for(changes, now).await?;
        let mut losers = BTreeMap::new();
        for c in changes {
            if let Change::MergeContact { loser_id, .. } = c
                && let Some((doc, _)) = self.read::<SandboxContact>(loser_id).await?
            {
                losers.insert(loser_id.clone(), doc);
            }
        }
        let inputs = apply::Inputs {
            catalog: &catalog,
            losers: &losers,
            execution_id,
            now,
        };
        let mut report = None;
        for _ in 0..WRITE_ATTEMPTS {
            let Some((mut doc, version)) = self.contact_for_write(contact_id).await? else {
                return Err(not_found(contact_id));
            };
            if let Some((_, done)) = doc.applied.iter().find(|(id, _)| id == execution_id) {
                report = Some(ApplyReport {
                    applied: done.clone(),
                    failed: Vec::new(),
                });
                break;
            }
            if !doc.exists() {
                return Err(not_found(contact_id));
            }
            let r = apply::apply_changes(&mut doc, changes, &inputs);
            doc.remember(execution_id, &r.applied);
            if self.write(contact_id, &doc, Some(version)).await? {
                report = Some(r);
                break;
            }
        }
        let Some(report) = report else {
            return Err(CrmError::Unavailable {
                message: format!("contact {contact_id} is being written concurrently"),
            });
        };
        // Losers are retired after the survivor holds their data; repeating this is a no-op.
        for c in changes {
            if let Change::MergeContact {
                loser_id,
                delete_loser,
            } = c
                && losers.contains_key(loser_id)
                && loser_id != contact_id
            {
                self.update::<SandboxContact, _>(loser_id, |d| {
                    let before = (d.merged_into.clone(), d.deleted);
                    d.merged_into = Some(contact_id.to_owned());
                    d.deleted = *delete_loser;
                    before != (d.merged_into.clone(), d.deleted)
                })
                .await?;
            }
        }
        Ok(report)
    }

    async fn apply_recording(
        &self,
        contact_id: &str,
        execution_id: &str,
        changes: &[Change],
        ledger: aws_sdk_dynamodb::types::Put,
    ) -> Result<Option<ApplyReport>, CrmError> {
        use aws_sdk_dynamodb::types::TransactWriteItem;
        // A merge also retires its losers, after the survivor's write: the usual way.
        if changes
            .iter()
            .any(|c| matches!(c, Change::MergeContact { .. }))
        {
            return Ok(None);
        }
        let now = chrono::Utc::now();
        let catalog = self.catalog_for(changes, now).await?;
        let Some((mut doc, version)) = self.contact_for_write(contact_id).await? else {
            return Err(not_found(contact_id));
        };
        if !doc.exists() {
            return Err(not_found(contact_id));
        }
        // Applied before: its outcome is recorded too, and the first one is the answer.
        if doc.applied.iter().any(|(id, _)| id == execution_id) {
            return Ok(None);
        }
        let losers = BTreeMap::new();
        let inputs = apply::Inputs {
            catalog: &catalog,
            losers: &losers,
            execution_id,
            now,
        };
        let report = apply::apply_changes(&mut doc, changes, &inputs);
        doc.remember(execution_id, &report.applied);
        let contact = self.versioned_put(contact_id, &doc, Some(version))?;
        let res = self
            .store
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(contact).build())
            .transact_items(TransactWriteItem::builder().put(ledger).build())
            .send()
            .await;
        match res {
            Ok(_) => Ok(Some(report)),
            Err(e) if crate::store::transaction_canceled(&e) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }
}
