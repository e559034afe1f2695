//! The sandbox CRM: a real, persistent CRM-like store inside mfh (contacts with standard
//! and custom fields, tags from a tag catalog, notes, achieved goals), kept in DynamoDB so
//! every process and restart sees the same data. The embedded default and the tests run
//! helpers against it; it is seeded from a JSON file.
//!
//! Each contact item remembers the last executions applied to it, with what they changed,
//! and is written with a version check, so applying one execution twice is a no-op.

use super::{ApplyReport, Capability, CrmConnector, CrmError};
use crate::helpers::{Change, Contact};
use crate::store::{SANDBOX_CONTACTS, Store};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use mfh_schemas::ContactChange;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

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

/// A note on a sandbox contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
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
    /// Recently applied executions and what each changed.
    #[serde(default)]
    applied: VecDeque<(String, Vec<ContactChange>)>,
}

/// The seed file: a tag catalog and contacts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Tag id → name.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Contacts.
    #[serde(default)]
    pub contacts: Vec<SeedContact>,
}

/// A contact in the seed file.
#[derive(Debug, Clone, Deserialize)]
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
}

/// One sandbox connection of one account.
#[derive(Debug, Clone)]
pub struct Sandbox {
    store: Store,
    partition: String,
}

fn unavailable(e: impl std::fmt::Debug) -> CrmError {
    CrmError::Unavailable {
        message: format!("sandbox store: {e:?}"),
    }
}

impl Sandbox {
    /// The sandbox connection `connection_id` of `account_id`.
    #[must_use]
    pub fn new(store: Store, account_id: &str, connection_id: &str) -> Self {
        Self {
            store,
            partition: format!("{account_id}/{connection_id}"),
        }
    }

    async fn read(&self, contact_id: &str) -> Result<Option<(SandboxContact, i64)>, CrmError> {
        let out = self
            .store
            .client
            .get_item()
            .table_name(self.store.table(SANDBOX_CONTACTS))
            .key("connection", AttributeValue::S(self.partition.clone()))
            .key("contact_id", AttributeValue::S(contact_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| unavailable("item without doc"))?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let parsed = serde_json::from_str(doc).map_err(unavailable)?;
        Ok(Some((parsed, version)))
    }

    /// Writes `doc` if the stored version is still `expected` (`None`: must not exist).
    /// Returns false when someone else wrote first.
    async fn write(
        &self,
        contact_id: &str,
        doc: &SandboxContact,
        expected: Option<i64>,
    ) -> Result<bool, CrmError> {
        let json = serde_json::to_string(doc).map_err(unavailable)?;
        let next = expected.map_or(1, |v| v + 1);
        let mut req = self
            .store
            .client
            .put_item()
            .table_name(self.store.table(SANDBOX_CONTACTS))
            .item("connection", AttributeValue::S(self.partition.clone()))
            .item("contact_id", AttributeValue::S(contact_id.to_owned()))
            .item("doc", AttributeValue::S(json))
            .item("version", AttributeValue::N(next.to_string()));
        req = match expected {
            Some(v) => req
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
            None => req.condition_expression("attribute_not_exists(contact_id)"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if crate::store::executions::is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Loads a seed file: the catalog and every contact not already present.
    ///
    /// # Errors
    /// [`CrmError`] when the store fails.
    pub async fn seed(&self, seed: &SeedFile) -> Result<usize, CrmError> {
        let catalog = SandboxContact {
            tags: seed.tags.clone(),
            ..SandboxContact::default()
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
                ..SandboxContact::default()
            };
            if self.write(&c.id, &doc, None).await? {
                added += 1;
            }
        }
        Ok(added)
    }

    /// The stored contact with notes and goals, for tests and the sandbox API.
    ///
    /// # Errors
    /// [`CrmError`] when the store fails.
    pub async fn contact_record(
        &self,
        contact_id: &str,
    ) -> Result<Option<SandboxContact>, CrmError> {
        Ok(self.read(contact_id).await?.map(|(c, _)| c))
    }

    async fn catalog(&self) -> Result<BTreeMap<String, String>, CrmError> {
        Ok(self
            .read(CATALOG_ID)
            .await?
            .map(|(c, _)| c.tags)
            .unwrap_or_default())
    }
}

/// Applies `changes` to `doc`, returning what changed and what was refused.
fn apply_changes(
    doc: &mut SandboxContact,
    changes: &[Change],
    catalog: &BTreeMap<String, String>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut rec = |kind: &str, target: &str, old: Option<String>, new: Option<String>| {
        report.applied.push(ContactChange {
            kind: kind.into(),
            target: target.into(),
            old_value: old,
            new_value: new,
        });
    };
    let mut failed = Vec::new();
    for ch in changes {
        match ch {
            Change::SetField { field, value } => {
                let old = match value {
                    Some(v) => doc.fields.insert(field.clone(), v.clone()),
                    None => doc.fields.remove(field),
                };
                if old != *value {
                    rec(ch.kind(), field, old, value.clone());
                }
            }
            Change::ApplyTag { tag_id } => match catalog.get(tag_id) {
                None => failed.push((ch.clone(), format!("unknown tag {tag_id}"))),
                Some(_) if doc.tags.contains_key(tag_id) => {}
                Some(name) => {
                    doc.tags.insert(tag_id.clone(), name.clone());
                    rec(ch.kind(), tag_id, None, Some(name.clone()));
                }
            },
            Change::RemoveTag { tag_id } => {
                if let Some(name) = doc.tags.remove(tag_id) {
                    rec(ch.kind(), tag_id, Some(name), None);
                }
            }
            Change::AddNote { title, body } => {
                doc.notes.push(Note {
                    title: title.clone(),
                    body: body.clone(),
                });
                rec(ch.kind(), title, None, Some(body.clone()));
            }
            Change::AchieveGoal { call_name } => {
                doc.goals.push(call_name.clone());
                rec(ch.kind(), call_name, None, None);
            }
            other => failed.push((other.clone(), "not supported yet".into())),
        }
    }
    report.failed = failed;
    report
}

#[async_trait]
impl super::CrmRead for Sandbox {}

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
        ]
    }

    async fn healthcheck(&self) -> Result<(), CrmError> {
        self.read(CATALOG_ID).await.map(|_| ())
    }

    async fn get_contact(&self, contact_id: &str) -> Result<Contact, CrmError> {
        match self.read(contact_id).await? {
            Some((c, _)) if contact_id != CATALOG_ID => Ok(Contact {
                id: contact_id.to_owned(),
                fields: c.fields,
                tags: c.tags,
                ..Contact::default()
            }),
            _ => Err(CrmError::NotFound {
                object: format!("contact {contact_id}"),
            }),
        }
    }

    async fn apply(
        &self,
        contact_id: &str,
        execution_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        // Only applying a tag needs the catalog; spare the read otherwise.
        let catalog = if changes.iter().any(|c| matches!(c, Change::ApplyTag { .. })) {
            self.catalog().await?
        } else {
            BTreeMap::new()
        };
        for _ in 0..WRITE_ATTEMPTS {
            let Some((mut doc, version)) = self.read(contact_id).await? else {
                return Err(CrmError::NotFound {
                    object: format!("contact {contact_id}"),
                });
            };
            if let Some((_, done)) = doc.applied.iter().find(|(id, _)| id == execution_id) {
                return Ok(ApplyReport {
                    applied: done.clone(),
                    failed: Vec::new(),
                });
            }
            let report = apply_changes(&mut doc, changes, &catalog);
            doc.applied
                .push_back((execution_id.to_owned(), report.applied.clone()));
            while doc.applied.len() > REMEMBERED_EXECUTIONS {
                doc.applied.pop_front();
            }
            if self.write(contact_id, &doc, Some(version)).await? {
                return Ok(report);
            }
        }
        Err(CrmError::Unavailable {
            message: format!("contact {contact_id} is being written concurrently"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_record_before_and_after_and_skip_no_ops() {
        let catalog: BTreeMap<_, _> = [("1".to_owned(), "VIP".to_owned())].into();
        let mut doc = SandboxContact::default();
        doc.fields.insert("a".into(), "x".into());
        let r = apply_changes(
            &mut doc,
            &[
                Change::SetField {
                    field: "a".into(),
                    value: Some("y".into()),
                },
                Change::SetField {
                    field: "a".into(),
                    value: Some("y".into()),
                },
                Change::ApplyTag { tag_id: "1".into() },
                Change::ApplyTag { tag_id: "1".into() },
                Change::ApplyTag {
                    tag_id: "404".into(),
                },
                Change::RemoveTag { tag_id: "9".into() },
            ],
            &catalog,
        );
        assert_eq!(r.applied.len(), 2);
        assert_eq!(r.applied[0].old_value.as_deref(), Some("x"));
        assert_eq!(r.applied[1].new_value.as_deref(), Some("VIP"));
        assert_eq!(r.failed.len(), 1);
        assert_eq!(doc.tags.len(), 1);
    }
}
