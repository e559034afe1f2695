//! Applying a helper's changes to one Keap contact, one request per change so a refusal
//! fails that change only.

use super::Keap;
use super::types;
use crate::connectors::vendor::{Body, enc, text};
use crate::connectors::{ApplyReport, CrmError, CrmRead};
use crate::helpers::{Change, Contact};
use mfh_schemas::ContactChange;
use reqwest::Method;
use serde_json::{Value, json};

/// What one change did: made (with before and after), nothing to do, or refused.
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

fn reason(e: &CrmError) -> String {
    e.to_string()
}

/// Applies `changes` in order.
pub(super) async fn apply(
    keap: &Keap,
    contact_id: &str,
    changes: &[Change],
) -> Result<ApplyReport, CrmError> {
    let mut raw = keap.raw_contact(contact_id).await?;
    let mut report = ApplyReport::default();
    for (i, ch) in changes.iter().enumerate() {
        match one(keap, contact_id, &mut raw, ch).await {
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
                let why = reason(&e);
                for rest in &changes[i..] {
                    report.failed.push((rest.clone(), why.clone()));
                }
                break;
            }
            Err(e) => report.failed.push((ch.clone(), reason(&e))),
        }
    }
    Ok(report)
}

async fn one(
    keap: &Keap,
    contact_id: &str,
    raw: &mut Value,
    ch: &Change,
) -> Result<Outcome, CrmError> {
    let current = keap.contacts(std::slice::from_ref(raw)).await?;
    let Some(contact) = current.first() else {
        return Ok(Outcome::Refused("contact unreadable".into()));
    };
    match ch {
        Change::SetField { field, value } => {
            set_field(keap, contact_id, raw, contact, field, value.as_deref()).await
        }
        Change::ApplyTag { tag_id } => {
            if contact.has_tag(tag_id) {
                return Ok(Outcome::NoOp);
            }
            let tags = keap.tag_names(std::slice::from_ref(tag_id)).await?;
            let Some(name) = tags.get(tag_id) else {
                return Ok(Outcome::Refused(format!("unknown tag {tag_id}")));
            };
            tag(keap, contact_id, raw, tag_id, true).await?;
            Ok(Outcome::Made(None, Some(name.clone())))
        }
        Change::RemoveTag { tag_id } => {
            let Some(name) = contact.tags.get(tag_id) else {
                return Ok(Outcome::NoOp);
            };
            tag(keap, contact_id, raw, tag_id, false).await?;
            Ok(Outcome::Made(Some(name.clone()), None))
        }
        Change::ApplyTagNamed { name, .. } => {
            let name = name.trim();
            if name.is_empty() {
                return Ok(Outcome::Refused("empty tag name".into()));
            }
            let id = tag_id_by_name(keap, name).await?;
            if contact.has_tag(&id) {
                return Ok(Outcome::NoOp);
            }
            tag(keap, contact_id, raw, &id, true).await?;
            Ok(Outcome::Made(None, Some(id)))
        }
        Change::AddNote { title, body } => {
            let Some(user) = note_user(keap, contact).await? else {
                return Ok(Outcome::Refused(
                    "Keap needs a user for notes: set settings.note_user_id".into(),
                ));
            };
            let path = format!("/v2/contacts/{}/notes", enc(contact_id));
            let note = json!({"user_id": user, "title": note_title(title, body), "text": body});
            keap.http
                .send(Method::POST, &path, Body::Json(note))
                .await?;
            Ok(Outcome::Made(None, Some(body.clone())))
        }
        Change::AchieveGoal { call_name } => {
            let path = format!(
                "/v1/campaigns/goals/{}/{}",
                enc(&keap.goal_integration),
                enc(call_name.trim())
            );
            let id: Value = contact_id
                .parse::<i64>()
                .map_or_else(|_| json!(contact_id), |n| json!(n));
            let body = json!({"contact_id": id});
            keap.http
                .send(Method::POST, &path, Body::Json(body))
                .await?;
            Ok(Outcome::Made(None, None))
        }
        Change::SetOwner { user_id } => {
            let users = keap.list_users().await?;
            match users.iter().find(|u| u.id == *user_id) {
                None => return Ok(Outcome::Refused(format!("unknown user {user_id}"))),
                Some(u) if !u.active => {
                    return Ok(Outcome::Refused(format!("user {user_id} is inactive")));
                }
                Some(_) if contact.owner_id.as_ref() == Some(user_id) => return Ok(Outcome::NoOp),
                Some(_) => {}
            }
            let body = json!({"owner_id": user_id});
            patch(keap, contact_id, raw, "owner_id", body).await?;
            Ok(Outcome::Made(
                contact.owner_id.clone(),
                Some(user_id.clone()),
            ))
        }
        Change::SetOptIn {
            email,
            opted_in,
            reason,
        } => opt_in(keap, raw, contact, email, *opted_in, reason).await,
        Change::ForContact { .. } => Ok(Outcome::Refused(
            "changes to other contacts are applied to those contacts".into(),
        )),
        Change::LinkCompany {
            company_id,
            company_name,
        } => {
            link_company(
                keap,
                contact_id,
                raw,
                contact,
                company_id.as_deref(),
                company_name,
            )
            .await
        }
        Change::TriggerAutomation { automation_id } => {
            add_to_sequence(keap, contact_id, automation_id).await
        }
        Change::MergeContact { loser_id, .. } => merge(keap, contact_id, loser_id).await,
        Change::MoveOpportunity {
            opportunity_id,
            stage,
        } => match keap
            .move_opportunity(contact_id, opportunity_id, stage)
            .await?
        {
            Ok(Some((before, after))) => Ok(Outcome::Made(Some(before), Some(after))),
            Ok(None) => Ok(Outcome::NoOp),
            Err(reason) => Ok(Outcome::Refused(reason)),
        },
        Change::AddRecord { .. } => Ok(Outcome::Refused(format!(
            "the Keap connector does not support {}",
            ch.kind()
        ))),
    }
}

/// Merges `loser_id` into the contact with Keap's own merge, Keap-v2 `POST
/// /rest/v2/contacts:merge {contact_id, duplicate_contact_id}`: "The duplicate contact
/// will be merged into the primary contact", and it is gone afterwards whether
/// `delete_loser` asked for it or not (Keap keeps no merged marker). A loser already
/// gone was merged before: nothing to do.
async fn merge(keap: &Keap, contact_id: &str, loser_id: &str) -> Result<Outcome, CrmError> {
    if loser_id == contact_id {
        return Ok(Outcome::Refused(
            "a contact cannot be merged into itself".into(),
        ));
    }
    let body = json!({"contact_id": contact_id, "duplicate_contact_id": loser_id});
    match keap
        .http
        .send(Method::POST, "/v2/contacts:merge", Body::Json(body))
        .await
    {
        Ok(_) => Ok(Outcome::Made(Some(loser_id.to_owned()), None)),
        Err(CrmError::NotFound { .. }) => Ok(Outcome::NoOp),
        Err(e) => Err(e),
    }
}

/// Starts a campaign sequence for the contact. A Keap automation is a campaign's
/// sequence, named `campaign_id/sequence_id`: Keap-v2 `POST /rest/v2/campaigns/
/// {campaign_id}/sequences/{sequence_id}:addContacts` with `{contact_ids}`, answering
/// `add_to_sequence_results` per contact (SUCCESS, ALREADY_IN_SEQUENCE,
/// CONTACT_DOES_NOT_EXIST, FAILED).
async fn add_to_sequence(
    keap: &Keap,
    contact_id: &str,
    automation_id: &str,
) -> Result<Outcome, CrmError> {
    let Some((campaign, sequence)) = automation_id
        .trim()
        .split_once('/')
        .filter(|(c, s)| !c.trim().is_empty() && !s.trim().is_empty())
    else {
        return Ok(Outcome::Refused(format!(
            "a Keap automation is a campaign sequence, written campaign_id/sequence_id; \
             {automation_id:?} is not"
        )));
    };
    let path = format!(
        "/v2/campaigns/{}/sequences/{}:addContacts",
        enc(campaign.trim()),
        enc(sequence.trim())
    );
    let body = json!({ "contact_ids": [contact_id] });
    let v = match keap.http.send(Method::POST, &path, Body::Json(body)).await {
        Ok(v) => v,
        Err(CrmError::NotFound { .. }) => {
            return Ok(Outcome::Refused(format!(
                "Keap has no campaign sequence {automation_id}"
            )));
        }
        Err(e) => return Err(e),
    };
    match v["add_to_sequence_results"][contact_id].as_str() {
        Some("SUCCESS") => Ok(Outcome::Made(None, Some(automation_id.to_owned()))),
        Some("ALREADY_IN_SEQUENCE") => Ok(Outcome::NoOp),
        Some(other) => Ok(Outcome::Refused(format!(
            "Keap did not add the contact to {automation_id}: {other}"
        ))),
        None => Ok(Outcome::Refused(format!(
            "Keap's answer names no result for contact {contact_id}"
        ))),
    }
}

async fn set_field(
    keap: &Keap,
    contact_id: &str,
    raw: &mut Value,
    contact: &Contact,
    field: &str,
    value: Option<&str>,
) -> Result<Outcome, CrmError> {
    let meta = keap.field_meta().await?;
    let custom = match types::standard(field) {
        Some(_) => None,
        None => match meta.resolve(field) {
            Some(cf) => Some(cf),
            None => return Ok(Outcome::Refused(format!("unknown field {field}"))),
        },
    };
    // A custom field named by its label or bare name reads under its `_Name` key.
    let key = custom.map_or(field, |cf| cf.key.as_str());
    let old = contact.fields.get(key).cloned();
    if old.as_deref() == value || (old.is_none() && value.is_some_and(str::is_empty)) {
        return Ok(Outcome::NoOp);
    }
    let (mask, body) = match (types::standard(field), custom) {
        (Some(std), _) => match types::patch(raw, std, value) {
            Ok(p) => p,
            Err(reason) => return Ok(Outcome::Refused(reason)),
        },
        (None, Some(cf)) => ("custom_fields", custom_fields_with(raw, &cf.id, value)),
        (None, None) => return Ok(Outcome::Refused(format!("unknown field {field}"))),
    };
    patch(keap, contact_id, raw, mask, body).await?;
    Ok(Outcome::Made(old, value.map(str::to_owned)))
}

/// A note's title: Keap-v2 `CreateNoteRequest` says "A value for either `title` or
/// `type` is required", and `type`'s values differ between Keap editions, so an empty
/// title becomes the body's first line (cut to 60 characters), or a fixed one.
fn note_title(title: &str, body: &str) -> String {
    let title = title.trim();
    if !title.is_empty() {
        return title.to_owned();
    }
    let first = body.lines().map(str::trim).find(|l| !l.is_empty());
    first.map_or_else(
        || "Note from MyFusionHelper".to_owned(),
        |l| l.chars().take(60).collect(),
    )
}

/// The PATCH body that sets one custom field and keeps every other. Keap v2 replaces the
/// whole list: "Any item not listed here will be removed if it already exists. If an empty
/// array is specified, all existing values will be removed." (Keap-v2 spec,
/// `CreateUpdateContactRequest.custom_fields`). So the other values go back as read;
/// `raw` is a read that asked for `custom_fields` ([`types::CONTACT_FIELDS`]), where an
/// absent list means the contact has none to keep.
fn custom_fields_with(raw: &Value, id: &str, value: Option<&str>) -> Value {
    let mut list: Vec<Value> = raw["custom_fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| text(&e["id"]).as_deref() != Some(id))
        .map(|e| json!({"id": e["id"], "content": e["content"]}))
        .collect();
    list.push(json!({"id": id, "content": value.map_or(Value::Null, |v| json!(v))}));
    json!({ "custom_fields": list })
}

/// Links the contact to a company: the given id, else the company of that name (any
/// case), else a new one (`POST /v2/companies`).
async fn link_company(
    keap: &Keap,
    contact_id: &str,
    raw: &mut Value,
    contact: &crate::helpers::Contact,
    company_id: Option<&str>,
    company_name: &str,
) -> Result<Outcome, CrmError> {
    let id = match company_id {
        Some(id) => id.to_owned(),
        None => {
            let name = company_name.trim();
            if name.is_empty() {
                return Ok(Outcome::Refused("empty company name".into()));
            }
            let lower = name.to_lowercase();
            let found = keap
                .find_companies(name)
                .await?
                .into_iter()
                .filter(|c| c.name.trim().to_lowercase() == lower)
                .min_by_key(|c| c.created_at);
            match found {
                Some(c) => c.id,
                None => {
                    let made = keap
                        .http
                        .send(
                            Method::POST,
                            "/v2/companies",
                            Body::Json(json!({"company_name": name})),
                        )
                        .await?;
                    match text(&made["id"]) {
                        Some(id) => id,
                        None => return Ok(Outcome::Refused("Keap created no company id".into())),
                    }
                }
            }
        }
    };
    if contact.company_id.as_deref() == Some(id.as_str()) {
        return Ok(Outcome::NoOp);
    }
    patch(
        keap,
        contact_id,
        raw,
        "company",
        json!({"company": {"id": id}}),
    )
    .await?;
    Ok(Outcome::Made(contact.company_id.clone(), Some(id)))
}

async fn patch(
    keap: &Keap,
    contact_id: &str,
    raw: &mut Value,
    mask: &str,
    body: Value,
) -> Result<(), CrmError> {
    let path = format!("/v2/contacts/{}?update_mask={mask}", enc(contact_id));
    keap.http
        .send(Method::PATCH, &path, Body::Json(body.clone()))
        .await?;
    types::merge(raw, &body);
    Ok(())
}

/// Applies or removes one tag, then mirrors it on our copy of the contact.
async fn tag(
    keap: &Keap,
    contact_id: &str,
    raw: &mut Value,
    tag_id: &str,
    on: bool,
) -> Result<(), CrmError> {
    let verb = if on { "applyTags" } else { "removeTags" };
    let path = format!("/v2/tags/{}/contacts:{verb}", enc(tag_id));
    let body = json!({"contact_ids": [contact_id]});
    let resp = keap
        .http
        .send(Method::POST, &path, Body::Json(body))
        .await?;
    if let Some(status) = resp["results"][contact_id].as_str() {
        let s = status.to_uppercase();
        if s.contains("FAIL") || s.contains("ERROR") || s.contains("NOT_FOUND") {
            return Err(CrmError::Invalid {
                field: format!("tag {tag_id}"),
                reason: format!("Keap answered {status}"),
            });
        }
    }
    let mut ids: Vec<Value> = raw["tag_ids"].as_array().cloned().unwrap_or_default();
    ids.retain(|v| text(v).as_deref() != Some(tag_id));
    if on {
        ids.push(json!(tag_id));
    }
    raw["tag_ids"] = Value::Array(ids);
    Ok(())
}

/// The id of the tag named `name` (case-insensitive), created when Keap has none.
async fn tag_id_by_name(keap: &Keap, name: &str) -> Result<String, CrmError> {
    let lower = name.to_lowercase();
    let find = |tags: &[crate::connectors::Tag]| {
        tags.iter()
            .find(|t| t.name.trim().to_lowercase() == lower)
            .map(|t| t.id.clone())
    };
    if let Some(id) = find(&keap.tag_catalog(false).await?) {
        return Ok(id);
    }
    if let Some(id) = find(&keap.tag_catalog(true).await?) {
        return Ok(id);
    }
    // Tag categories are not resolved by name: a created tag has none.
    let created = keap
        .http
        .send(Method::POST, "/v2/tags", Body::Json(json!({"name": name})))
        .await?;
    let id = text(&created["id"]).ok_or_else(|| CrmError::Invalid {
        field: format!("tag {name:?}"),
        reason: "Keap created the tag without an id".into(),
    })?;
    keap.tag_catalog(true).await?;
    Ok(id)
}

/// Who a note is written as: the configured user, the contact's owner, or the first
/// active user.
async fn note_user(keap: &Keap, contact: &Contact) -> Result<Option<String>, CrmError> {
    if let Some(u) = keap
        .note_user_id
        .clone()
        .or_else(|| contact.owner_id.clone())
    {
        return Ok(Some(u));
    }
    Ok(keap
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.active)
        .map(|u| u.id))
}

async fn opt_in(
    keap: &Keap,
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
    let path = format!("/v2/emailAddresses/{}/status", enc(email.trim()));
    let body = json!({"opted_in": opted_in, "reason": reason});
    let resp = keap
        .http
        .send(Method::PATCH, &path, Body::Json(body))
        .await?;
    let now = types::marketable(&resp).unwrap_or(opted_in);
    if now != opted_in {
        // Keap keeps addresses that unsubscribed themselves non-marketable.
        return Ok(Outcome::Refused(format!(
            "Keap kept {email} at status {}",
            resp["status"].as_str().unwrap_or("unknown")
        )));
    }
    if let Some(list) = raw["email_addresses"].as_array_mut() {
        for e in list.iter_mut().filter(|e| {
            e["email"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(email.trim()))
        }) {
            e["email_opt_status"] = resp["status"].clone();
            e["is_opt_in"] = json!(opted_in);
        }
    }
    Ok(Outcome::Made(
        contact.marketable.map(|m| m.to_string()),
        Some(format!("{opted_in}: {reason}")),
    ))
}
