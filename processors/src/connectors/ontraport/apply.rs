//! Applying a helper's changes to one Ontraport contact, one request per change so a
//! refusal fails that change only.

use super::{Ontraport, types};
use crate::connectors::vendor::{Body, enc, text};
use crate::connectors::{ApplyReport, CrmError, CrmRead};
use crate::helpers::{Change, Contact};
use mfh_schemas::ContactChange;
use reqwest::Method;
use serde_json::{Map, Value, json};

enum Outcome {
    Made(Option<String>, Option<String>),
    NoOp,
    Refused(String),
}

/// Errors that end the apply: the rest would fail the same way.
fn fatal(e: &CrmError) -> bool {
    matches!(
        e,
        CrmError::Auth(_) | CrmError::RateLimited { .. } | CrmError::Unavailable { .. }
    )
}

/// Applies `changes` in order.
pub(super) async fn apply(
    op: &Ontraport,
    contact_id: &str,
    changes: &[Change],
) -> Result<ApplyReport, CrmError> {
    let mut raw = op.raw_contact(contact_id).await?;
    let mut report = ApplyReport::default();
    for (i, ch) in changes.iter().enumerate() {
        match one(op, contact_id, &mut raw, ch).await {
            Ok(Outcome::Made(old, new)) => report.applied.push(ContactChange {
                kind: ch.kind().into(),
                target: ch.target().into(),
                old_value: old,
                new_value: new,
            }),
            Ok(Outcome::NoOp) => {}
            Ok(Outcome::Refused(why)) => report.failed.push((ch.clone(), why)),
            Err(e) if fatal(&e) && report.applied.is_empty() => return Err(e),
            Err(e) if fatal(&e) => {
                // Keep what was made; the rest would meet the same refusal.
                let why = e.to_string();
                for rest in &changes[i..] {
                    report.failed.push((rest.clone(), why.clone()));
                }
                break;
            }
            Err(e) => report.failed.push((ch.clone(), e.to_string())),
        }
    }
    Ok(report)
}

async fn one(
    op: &Ontraport,
    contact_id: &str,
    raw: &mut Value,
    ch: &Change,
) -> Result<Outcome, CrmError> {
    let current = op.contacts(std::slice::from_ref(raw)).await?;
    let Some(contact) = current.first() else {
        return Ok(Outcome::Refused("contact unreadable".into()));
    };
    match ch {
        Change::SetField { field, value } => {
            set_field(op, contact_id, raw, contact, field, value.as_deref()).await
        }
        Change::ApplyTag { tag_id } => {
            if contact.has_tag(tag_id) {
                return Ok(Outcome::NoOp);
            }
            let names = op.tag_names(std::slice::from_ref(tag_id)).await?;
            let Some(name) = names.get(tag_id) else {
                return Ok(Outcome::Refused(format!("unknown tag {tag_id}")));
            };
            tag(op, contact_id, raw, tag_id, true).await?;
            Ok(Outcome::Made(None, Some(name.clone())))
        }
        Change::RemoveTag { tag_id } => {
            let Some(name) = contact.tags.get(tag_id) else {
                return Ok(Outcome::NoOp);
            };
            tag(op, contact_id, raw, tag_id, false).await?;
            Ok(Outcome::Made(Some(name.clone()), None))
        }
        Change::ApplyTagNamed { name, .. } => {
            let name = name.trim();
            if name.is_empty() {
                return Ok(Outcome::Refused("empty tag name".into()));
            }
            let id = tag_id_by_name(op, name).await?;
            if contact.has_tag(&id) {
                return Ok(Outcome::NoOp);
            }
            tag(op, contact_id, raw, &id, true).await?;
            Ok(Outcome::Made(None, Some(id)))
        }
        Change::AddNote { title, body } => {
            let text = if title.trim().is_empty() {
                body.clone()
            } else {
                format!("{title}\n\n{body}")
            };
            let note = json!({"contact_id": contact_id, "data": text});
            op.http
                .send(Method::POST, "/Notes", Body::Json(note))
                .await?;
            Ok(Outcome::Made(None, Some(body.clone())))
        }
        Change::SetOwner { user_id } => {
            if !op.list_users().await?.iter().any(|u| u.id == *user_id) {
                return Ok(Outcome::Refused(format!("unknown user {user_id}")));
            }
            if contact.owner_id.as_ref() == Some(user_id) {
                return Ok(Outcome::NoOp);
            }
            update(op, contact_id, raw, "owner", user_id).await?;
            Ok(Outcome::Made(
                contact.owner_id.clone(),
                Some(user_id.clone()),
            ))
        }
        Change::SetOptIn {
            email,
            opted_in,
            reason,
        } => opt_in(op, contact_id, raw, contact, email, *opted_in, reason).await,
        Change::ForContact { .. } => Ok(Outcome::Refused(
            "changes to other contacts are applied to those contacts".into(),
        )),
        Change::AchieveGoal { .. }
        | Change::LinkCompany { .. }
        | Change::TriggerAutomation { .. }
        | Change::MoveOpportunity { .. }
        | Change::MergeContact { .. }
        | Change::AddRecord { .. } => Ok(Outcome::Refused(format!(
            "the Ontraport connector does not support {}",
            ch.kind()
        ))),
    }
}

async fn set_field(
    op: &Ontraport,
    contact_id: &str,
    raw: &mut Value,
    contact: &Contact,
    field: &str,
    value: Option<&str>,
) -> Result<Outcome, CrmError> {
    let meta = op.field_meta().await?;
    let (name, key) = match types::standard(field) {
        Some(f) => (f.to_owned(), field.to_owned()),
        None => match meta.resolve(field) {
            Some(cf) => (cf.name.clone(), cf.alias.clone()),
            // Ontraport would ignore the unknown field and answer success.
            None => return Ok(Outcome::Refused(format!("unknown field {field}"))),
        },
    };
    let old = contact.fields.get(&key).cloned();
    if old.as_deref() == value || (old.is_none() && value.is_some_and(str::is_empty)) {
        return Ok(Outcome::NoOp);
    }
    let sent = match value {
        Some(v) if name == "birthday" => types::birthday_value(v),
        Some(v) => v.to_owned(),
        None => String::new(),
    };
    update(op, contact_id, raw, &name, &sent).await?;
    Ok(Outcome::Made(old, value.map(str::to_owned)))
}

/// `PUT /Contacts {id, field: value}`, then mirrors it on our copy of the contact.
async fn update(
    op: &Ontraport,
    contact_id: &str,
    raw: &mut Value,
    field: &str,
    value: &str,
) -> Result<(), CrmError> {
    let mut body = Map::new();
    body.insert("id".into(), json!(contact_id));
    body.insert(field.into(), json!(value));
    op.http
        .send(Method::PUT, "/Contacts", Body::Json(Value::Object(body)))
        .await?;
    raw[field] = json!(value);
    Ok(())
}

async fn tag(
    op: &Ontraport,
    contact_id: &str,
    raw: &mut Value,
    tag_id: &str,
    on: bool,
) -> Result<(), CrmError> {
    if on {
        let form = vec![
            ("objectID".to_owned(), "0".to_owned()),
            ("add_list".to_owned(), tag_id.to_owned()),
            ("ids".to_owned(), contact_id.to_owned()),
        ];
        op.http
            .send(Method::PUT, "/objects/tag", Body::Form(form))
            .await?;
    } else {
        // The SDK sends DELETE parameters in the query string.
        let path = format!(
            "/objects/tag?objectID=0&remove_list={}&ids={}",
            enc(tag_id),
            enc(contact_id)
        );
        op.http.send(Method::DELETE, &path, Body::None).await?;
    }
    let mut ids = types::tag_ids(raw);
    ids.retain(|t| t != tag_id);
    if on {
        ids.push(tag_id.to_owned());
    }
    raw["contact_cat"] = json!(types::contact_cat(&ids));
    Ok(())
}

async fn tag_id_by_name(op: &Ontraport, name: &str) -> Result<String, CrmError> {
    let lower = name.to_lowercase();
    let find = |tags: &[crate::connectors::Tag]| {
        tags.iter()
            .find(|t| t.name.trim().to_lowercase() == lower)
            .map(|t| t.id.clone())
    };
    if let Some(id) = find(&op.tag_catalog(false).await?) {
        return Ok(id);
    }
    if let Some(id) = find(&op.tag_catalog(true).await?) {
        return Ok(id);
    }
    let created = op
        .http
        .send(Method::POST, "/Tags", Body::Json(json!({"tag_name": name})))
        .await?;
    let data = &created["data"];
    let id = text(&data["tag_id"])
        .or_else(|| text(&data["id"]))
        .ok_or_else(|| CrmError::Invalid {
            field: format!("tag {name:?}"),
            reason: "Ontraport created the tag without an id".into(),
        })?;
    op.tag_catalog(true).await?;
    Ok(id)
}

async fn opt_in(
    op: &Ontraport,
    contact_id: &str,
    raw: &mut Value,
    contact: &Contact,
    email: &str,
    opted_in: bool,
    reason: &str,
) -> Result<Outcome, CrmError> {
    let primary = contact.field("email").map(|e| e.trim().to_lowercase());
    if primary.as_deref() != Some(&email.trim().to_lowercase()) {
        return Ok(Outcome::Refused(format!(
            "{email} is not this contact's email"
        )));
    }
    if contact.marketable == Some(opted_in) {
        return Ok(Outcome::NoOp);
    }
    // 1 = single opt-in, 0 = transactional only.
    let value = if opted_in { "1" } else { "0" };
    update(op, contact_id, raw, "bulk_mail", value).await?;
    // Ontraport may keep a bounced or unsubscribed address where it is: read it back.
    let now = op.raw_contact(contact_id).await?;
    if types::marketable(&now) != Some(opted_in) {
        raw["bulk_mail"] = now["bulk_mail"].clone();
        return Ok(Outcome::Refused(format!(
            "Ontraport kept {email} at bulk_mail {}",
            text(&now["bulk_mail"]).unwrap_or_default()
        )));
    }
    Ok(Outcome::Made(
        contact.marketable.map(|m| m.to_string()),
        Some(format!("{opted_in}: {reason}")),
    ))
}
