//! How the sandbox applies a helper's changes to a stored contact: the pure part,
//! separate from storage so it is unit-tested without DynamoDB.

use super::{Catalog, Note, SandboxContact};
use crate::connectors::{ApplyReport, Company, RelatedRecord};
use crate::helpers::Change;
use mfh_schemas::ContactChange;
use sha2::Digest;
use std::collections::BTreeMap;

fn short_hash(s: &str) -> String {
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..4])
}

/// The tag named `name` (case-insensitive).
fn tag_by_name<'a>(catalog: &'a Catalog, name: &str) -> Option<&'a String> {
    let lower = name.trim().to_lowercase();
    catalog
        .tags
        .iter()
        .find(|(_, n)| n.trim().to_lowercase() == lower)
        .map(|(id, _)| id)
}

fn company_by_name<'a>(catalog: &'a Catalog, name: &str) -> Option<&'a Company> {
    let lower = name.trim().to_lowercase();
    catalog
        .companies
        .iter()
        .find(|c| c.name.trim().to_lowercase() == lower)
}

/// Whether applying `change` looks anything up in the catalog.
pub(super) fn needs_catalog(change: &Change) -> bool {
    matches!(
        change,
        Change::ApplyTag { .. }
            | Change::ApplyTagNamed { .. }
            | Change::SetOwner { .. }
            | Change::LinkCompany { .. }
    )
}

/// Whether `catalog` has every tag, user and company `changes` name by id: a catalog read
/// a moment ago may then serve, since what it lacks would be refused.
pub(super) fn knows_all(catalog: &Catalog, changes: &[Change]) -> bool {
    changes.iter().all(|c| match c {
        Change::ApplyTag { tag_id } => catalog.tags.contains_key(tag_id),
        Change::SetOwner { user_id } => catalog.users.iter().any(|u| u.id == *user_id),
        Change::LinkCompany {
            company_id: Some(id),
            ..
        } => catalog.companies.iter().any(|co| co.id == *id),
        _ => true,
    })
}

/// Adds the tags and companies `changes` create to `catalog`, with ids derived from their
/// names so a retried apply creates nothing twice. Returns whether the catalog changed.
pub(super) fn extend_catalog(catalog: &mut Catalog, changes: &[Change], now_ms: i64) -> bool {
    let mut changed = false;
    for ch in changes {
        match ch {
            Change::ApplyTagNamed { name, category }
                if !name.trim().is_empty() && tag_by_name(catalog, name).is_none() =>
            {
                let id = format!("t{}", short_hash(&name.trim().to_lowercase()));
                catalog.tags.insert(id.clone(), name.trim().to_owned());
                if let Some(c) = category {
                    catalog.tag_categories.insert(id, c.clone());
                }
                changed = true;
            }
            Change::LinkCompany {
                company_id: None,
                company_name,
            } if !company_name.trim().is_empty()
                && company_by_name(catalog, company_name).is_none() =>
            {
                catalog.companies.push(Company {
                    id: format!("co{}", short_hash(&company_name.trim().to_lowercase())),
                    name: company_name.trim().to_owned(),
                    fields: BTreeMap::new(),
                    created_at: now_ms,
                });
                changed = true;
            }
            _ => {}
        }
    }
    changed
}

/// What applying one execution needs besides the contact.
pub(super) struct Inputs<'a> {
    pub(super) catalog: &'a Catalog,
    /// Contacts merged into this one, loaded before.
    pub(super) losers: &'a BTreeMap<String, SandboxContact>,
    pub(super) execution_id: &'a str,
    pub(super) now: chrono::DateTime<chrono::Utc>,
}

/// Applies `changes` to `doc`, returning what changed and what was refused.
#[allow(clippy::too_many_lines)]
pub(super) fn apply_changes(
    doc: &mut SandboxContact,
    changes: &[Change],
    inputs: &Inputs<'_>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut rec = |ch: &Change, old: Option<String>, new: Option<String>| {
        report.applied.push(ContactChange {
            kind: ch.kind().into(),
            target: ch.target().into(),
            old_value: old,
            new_value: new,
        });
    };
    let mut failed = Vec::new();
    let catalog = inputs.catalog;
    for (i, ch) in changes.iter().enumerate() {
        let mut refuse = |why: String| failed.push((ch.clone(), why));
        match ch {
            Change::SetField { field, value } => {
                let old = match value {
                    Some(v) => doc.fields.insert(field.clone(), v.clone()),
                    None => doc.fields.remove(field),
                };
                if old != *value {
                    rec(ch, old, value.clone());
                }
            }
            Change::ApplyTag { tag_id } => match catalog.tags.get(tag_id) {
                None => refuse(format!("unknown tag {tag_id}")),
                Some(_) if doc.tags.contains_key(tag_id) => {}
                Some(name) => {
                    doc.tags.insert(tag_id.clone(), name.clone());
                    rec(ch, None, Some(name.clone()));
                }
            },
            Change::ApplyTagNamed { name, .. } => match tag_by_name(catalog, name) {
                None => refuse(format!("tag {name:?} could not be created")),
                Some(id) if doc.tags.contains_key(id) => {}
                Some(id) => {
                    doc.tags.insert(id.clone(), name.trim().to_owned());
                    rec(ch, None, Some(id.clone()));
                }
            },
            Change::RemoveTag { tag_id } => {
                if let Some(name) = doc.tags.remove(tag_id) {
                    rec(ch, Some(name), None);
                }
            }
            Change::AddNote { title, body } => {
                doc.notes.push(Note {
                    title: title.clone(),
                    body: body.clone(),
                });
                rec(ch, None, Some(body.clone()));
            }
            Change::AchieveGoal { call_name } => {
                doc.goals.push(call_name.clone());
                rec(ch, None, None);
            }
            Change::SetOwner { user_id } => match catalog.users.iter().find(|u| u.id == *user_id) {
                None => refuse(format!("unknown user {user_id}")),
                Some(u) if !u.active => refuse(format!("user {user_id} is inactive")),
                Some(_) if doc.owner_id.as_ref() == Some(user_id) => {}
                Some(_) => {
                    let old = doc.owner_id.replace(user_id.clone());
                    rec(ch, old, Some(user_id.clone()));
                }
            },
            Change::SetOptIn {
                email,
                opted_in,
                reason,
            } => {
                let primary = doc.fields.get("email").map(|e| e.trim().to_lowercase());
                if primary.as_deref() != Some(&email.trim().to_lowercase()) {
                    refuse(format!("{email} is not this contact's email"));
                } else if *opted_in && doc.opt_out_reason.as_deref() == Some(CONTACT_OPT_OUT) {
                    // Like Keap: an address the person unsubscribed themselves stays out.
                    refuse(format!(
                        "{email} unsubscribed itself and cannot be re-opted in"
                    ));
                } else if doc.marketable != Some(*opted_in) {
                    let old = doc.marketable.map(|m| m.to_string());
                    doc.marketable = Some(*opted_in);
                    doc.opt_out_reason = (!opted_in).then(|| reason.clone());
                    rec(ch, old, Some(format!("{opted_in}: {reason}")));
                }
            }
            Change::LinkCompany {
                company_id,
                company_name,
            } => {
                let found = match company_id {
                    Some(id) => catalog.companies.iter().find(|c| c.id == *id),
                    None => company_by_name(catalog, company_name),
                };
                match found {
                    None => refuse(format!("unknown company {company_name:?}")),
                    Some(c) if doc.company_id.as_ref() == Some(&c.id) => {}
                    Some(c) => {
                        let old = doc.company_id.replace(c.id.clone());
                        rec(ch, old, Some(c.id.clone()));
                    }
                }
            }
            Change::TriggerAutomation { automation_id } => {
                doc.automations.push(automation_id.clone());
                rec(ch, None, Some(automation_id.clone()));
            }
            Change::MoveOpportunity {
                opportunity_id,
                stage,
            } => match doc
                .opportunities
                .iter_mut()
                .find(|o| o.id == *opportunity_id)
            {
                None => refuse(format!("unknown opportunity {opportunity_id}")),
                Some(o) if o.stage == *stage => {}
                Some(o) => {
                    let old = std::mem::replace(&mut o.stage, stage.clone());
                    rec(ch, Some(old), Some(stage.clone()));
                }
            },
            Change::MergeContact { loser_id, .. } => match inputs.losers.get(loser_id) {
                None => refuse(format!("contact {loser_id} not found")),
                Some(loser) => {
                    for (id, name) in &loser.tags {
                        doc.tags.entry(id.clone()).or_insert_with(|| name.clone());
                    }
                    doc.notes.extend(loser.notes.iter().cloned());
                    doc.records.extend(loser.records.iter().cloned());
                    rec(ch, None, Some(loser_id.clone()));
                }
            },
            Change::AddRecord {
                record_kind,
                fields,
            } => {
                let id = format!("r-{}-{i}", inputs.execution_id);
                doc.records.push(RelatedRecord {
                    id: id.clone(),
                    kind: *record_kind,
                    created_at: inputs.now,
                    fields: fields.clone(),
                });
                rec(ch, None, Some(id));
            }
            Change::ForContact { .. } => {
                refuse("changes to other contacts are applied to those contacts".into());
            }
        }
    }
    if !report.applied.is_empty() {
        doc.updated_at = Some(inputs.now.timestamp_millis());
    }
    report.failed = failed;
    report
}

/// The opt-out reason of a person who unsubscribed themselves.
pub const CONTACT_OPT_OUT: &str = "UnsubscribedByContact";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::User;

    fn inputs<'a>(
        catalog: &'a Catalog,
        losers: &'a BTreeMap<String, SandboxContact>,
    ) -> Inputs<'a> {
        Inputs {
            catalog,
            losers,
            execution_id: "e1",
            now: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_cached_catalog_serves_only_changes_it_knows() {
        let catalog = Catalog {
            tags: [("1".to_owned(), "VIP".to_owned())].into(),
            ..Catalog::default()
        };
        let known = Change::ApplyTag { tag_id: "1".into() };
        let unknown = Change::ApplyTag { tag_id: "2".into() };
        let owner = Change::SetOwner {
            user_id: "u9".into(),
        };
        assert!(knows_all(&catalog, std::slice::from_ref(&known)));
        assert!(!knows_all(&catalog, &[known.clone(), unknown]));
        assert!(!knows_all(&catalog, &[owner]));
        assert!(needs_catalog(&known));
        assert!(!needs_catalog(&Change::RemoveTag { tag_id: "1".into() }));
    }

    #[test]
    fn changes_record_before_and_after_and_skip_no_ops() {
        let catalog = Catalog {
            tags: [("1".to_owned(), "VIP".to_owned())].into(),
            ..Catalog::default()
        };
        let mut doc = SandboxContact::default();
        doc.fields.insert("a".into(), "x".into());
        let set = Change::SetField {
            field: "a".into(),
            value: Some("y".into()),
        };
        let tag = Change::ApplyTag { tag_id: "1".into() };
        let r = apply_changes(
            &mut doc,
            &[
                set.clone(),
                set,
                tag.clone(),
                tag,
                Change::ApplyTag {
                    tag_id: "404".into(),
                },
                Change::RemoveTag { tag_id: "9".into() },
            ],
            &inputs(&catalog, &BTreeMap::new()),
        );
        assert_eq!(r.applied.len(), 2);
        assert_eq!(r.applied[0].old_value.as_deref(), Some("x"));
        assert_eq!(r.applied[1].new_value.as_deref(), Some("VIP"));
        assert_eq!(r.failed.len(), 1);
        assert_eq!(doc.tags.len(), 1);
    }

    #[test]
    fn named_tags_and_companies_are_created_once_and_linked() {
        let mut catalog = Catalog::default();
        let changes = [
            Change::ApplyTagNamed {
                name: "State: Texas".into(),
                category: Some("Geo".into()),
            },
            Change::LinkCompany {
                company_id: None,
                company_name: "Acme".into(),
            },
        ];
        assert!(extend_catalog(&mut catalog, &changes, 1));
        assert!(!extend_catalog(&mut catalog, &changes, 2));
        let mut doc = SandboxContact::default();
        let r = apply_changes(&mut doc, &changes, &inputs(&catalog, &BTreeMap::new()));
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        assert_eq!(doc.tags.values().next().unwrap(), "State: Texas");
        assert_eq!(
            doc.company_id.as_deref(),
            Some(catalog.companies[0].id.as_str())
        );
    }

    #[test]
    fn owners_must_be_active_users_and_self_unsubscribes_stick() {
        let catalog = Catalog {
            users: vec![
                User {
                    id: "u1".into(),
                    name: "A".into(),
                    email: "a@x".into(),
                    active: true,
                },
                User {
                    id: "u2".into(),
                    name: "B".into(),
                    email: "b@x".into(),
                    active: false,
                },
            ],
            ..Catalog::default()
        };
        let mut doc = SandboxContact::default();
        doc.fields.insert("email".into(), "p@x.com".into());
        doc.opt_out_reason = Some(CONTACT_OPT_OUT.into());
        doc.marketable = Some(false);
        let r = apply_changes(
            &mut doc,
            &[
                Change::SetOwner {
                    user_id: "u1".into(),
                },
                Change::SetOwner {
                    user_id: "u2".into(),
                },
                Change::SetOptIn {
                    email: "P@x.com".into(),
                    opted_in: true,
                    reason: "form".into(),
                },
            ],
            &inputs(&catalog, &BTreeMap::new()),
        );
        assert_eq!(doc.owner_id.as_deref(), Some("u1"));
        assert_eq!(r.failed.len(), 2);
        assert_eq!(doc.marketable, Some(false));
    }
}
