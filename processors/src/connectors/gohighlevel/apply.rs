//! How the GoHighLevel connector makes each change: one request per change, so a
//! refused change never takes the others down with it.

use super::client::GoHighLevel;
use super::types;
use crate::connectors::vendor::{Body, enc};
use crate::connectors::{CrmError, CrmRead};
use crate::helpers::{Change, Contact};
use mfh_schemas::ContactChange;
use reqwest::Method;
use serde_json::{Value, json};

/// The contact as an apply goes along, with the DND details [`Contact`] does not hold.
#[derive(Debug)]
pub(super) struct State {
    pub(super) contact: Contact,
    /// DND on every channel.
    pub(super) dnd_all: bool,
    /// The email channel's DND status.
    pub(super) email_dnd: Option<String>,
}

fn record(ch: &Change, old: Option<String>, new: Option<String>) -> Option<ContactChange> {
    Some(ContactChange {
        kind: ch.kind().into(),
        target: ch.target().into(),
        old_value: old,
        new_value: new,
    })
}

fn invalid(field: &str, reason: impl Into<String>) -> CrmError {
    CrmError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The contact's tag named `name`, any case.
fn has_tag<'a>(contact: &'a Contact, name: &str) -> Option<&'a String> {
    let lower = name.trim().to_lowercase();
    contact.tags.keys().find(|t| t.to_lowercase() == lower)
}

impl GoHighLevel {
    /// Makes one change, keeping `state` up to date; `None` for a no-op.
    pub(super) async fn apply_one(
        &self,
        state: &mut State,
        ch: &Change,
    ) -> Result<Option<ContactChange>, CrmError> {
        let contact = &mut state.contact;
        match ch {
            Change::SetField { field, value } => self.set_field(contact, ch, field, value).await,
            Change::ApplyTag { tag_id } => {
                if has_tag(contact, tag_id).is_some() {
                    return Ok(None);
                }
                let Some(name) = self.tag_named(tag_id).await? else {
                    return Err(invalid(tag_id, format!("unknown tag {tag_id}")));
                };
                self.tags(&contact.id, Method::POST, &name).await?;
                contact.tags.insert(name.clone(), name.clone());
                Ok(record(ch, None, Some(name)))
            }
            Change::ApplyTagNamed { name, .. } => {
                let wanted = name.trim();
                if wanted.is_empty() {
                    return Err(invalid(name, "a tag needs a name"));
                }
                if has_tag(contact, wanted).is_some() {
                    return Ok(None);
                }
                let name = match self.tag_named(wanted).await? {
                    Some(n) => n,
                    None => {
                        let body = json!({"name": wanted});
                        let v = self
                            .http
                            .send(Method::POST, &self.location_path("tags"), Body::Json(body))
                            .await?;
                        let created = v["tag"]["name"].as_str().unwrap_or(wanted).to_owned();
                        self.remember_tag(&created).await;
                        created
                    }
                };
                self.tags(&contact.id, Method::POST, &name).await?;
                contact.tags.insert(name.clone(), name.clone());
                Ok(record(ch, None, Some(name)))
            }
            Change::RemoveTag { tag_id } => {
                let Some(name) = has_tag(contact, tag_id).cloned() else {
                    return Ok(None);
                };
                self.tags(&contact.id, Method::DELETE, &name).await?;
                contact.tags.remove(&name);
                Ok(record(ch, Some(name), None))
            }
            Change::AddNote { title, body } => {
                let text = if title.trim().is_empty() {
                    body.clone()
                } else {
                    format!("{title}\n\n{body}")
                };
                let path = format!("/contacts/{}/notes", enc(&contact.id));
                self.http
                    .send(Method::POST, &path, Body::Json(json!({"body": text})))
                    .await?;
                Ok(record(ch, None, Some(body.clone())))
            }
            Change::SetOwner { user_id } => {
                if contact.owner_id.as_ref() == Some(user_id) {
                    return Ok(None);
                }
                match self.list_users().await?.iter().find(|u| u.id == *user_id) {
                    None => return Err(invalid(user_id, format!("unknown user {user_id}"))),
                    Some(u) if !u.active => {
                        return Err(invalid(user_id, format!("user {user_id} is inactive")));
                    }
                    Some(_) => {}
                }
                self.put(&contact.id, json!({"assignedTo": user_id}))
                    .await?;
                let old = contact.owner_id.replace(user_id.clone());
                Ok(record(ch, old, Some(user_id.clone())))
            }
            Change::SetOptIn {
                email,
                opted_in,
                reason,
            } => self.set_opt_in(state, ch, email, *opted_in, reason).await,
            Change::TriggerAutomation { automation_id } => {
                let path = format!(
                    "/contacts/{}/workflow/{}",
                    enc(&contact.id),
                    enc(automation_id)
                );
                self.http
                    .send(Method::POST, &path, Body::Json(json!({})))
                    .await?;
                Ok(record(ch, None, Some(automation_id.clone())))
            }
            other => Err(CrmError::Unsupported {
                what: format!("{} on GoHighLevel", other.kind()),
            }),
        }
    }

    async fn set_field(
        &self,
        contact: &mut Contact,
        ch: &Change,
        field: &str,
        value: &Option<String>,
    ) -> Result<Option<ContactChange>, CrmError> {
        let new = value.clone().filter(|v| !v.is_empty());
        if field == "company" {
            // apps/contacts.json UpdateContactDto has no companyName (only Create and
            // Upsert do), and GHL refuses undeclared properties on PUT (issue #313).
            return Err(invalid(
                field,
                "GoHighLevel's contact update has no company field (UpdateContactDto); \
                 the company can only be set when the contact is created",
            ));
        }
        let (key, body) = if let Some(attr) = types::attribute_of(field) {
            (field.to_owned(), json!({ attr: new }))
        } else {
            let found = match self
                .custom_fields(false)
                .await?
                .iter()
                .find(|f| f.is(field))
            {
                Some(f) => Some(f.clone()),
                None => self
                    .custom_fields(true)
                    .await?
                    .iter()
                    .find(|f| f.is(field))
                    .cloned(),
            };
            let Some(f) = found else {
                return Err(invalid(
                    field,
                    format!("GoHighLevel has no contact field {field}"),
                ));
            };
            let value = f
                .field_value(new.as_deref())
                .map_err(|reason| invalid(field, reason))?;
            let body = json!({"customFields": [{ "id": f.id, "field_value": value }]});
            (f.name, body)
        };
        let old = contact.fields.get(&key).cloned();
        if old == new {
            return Ok(None);
        }
        self.put(&contact.id, body).await?;
        match &new {
            Some(v) => contact.fields.insert(key, v.clone()),
            None => contact.fields.remove(&key),
        };
        Ok(record(ch, old, new))
    }

    async fn put(&self, contact_id: &str, body: Value) -> Result<(), CrmError> {
        let path = format!("/contacts/{}", enc(contact_id));
        self.http
            .send(Method::PUT, &path, Body::Json(body))
            .await
            .map(|_| ())
    }

    async fn tags(&self, contact_id: &str, method: Method, name: &str) -> Result<(), CrmError> {
        let path = format!("/contacts/{}/tags", enc(contact_id));
        self.http
            .send(method, &path, Body::Json(json!({"tags": [name]})))
            .await
            .map(|_| ())
    }

    /// The catalog's spelling of the tag named `name` (any case), reloading the
    /// catalog once on a miss.
    async fn tag_named(&self, name: &str) -> Result<Option<String>, CrmError> {
        let lower = name.trim().to_lowercase();
        let find = |tags: &[crate::connectors::Tag]| {
            tags.iter()
                .find(|t| t.name.to_lowercase() == lower)
                .map(|t| t.name.clone())
        };
        if let Some(n) = find(&self.catalog(false).await?) {
            return Ok(Some(n));
        }
        Ok(find(&self.catalog(true).await?))
    }

    /// Sets the email channel's DND: `active` blocks email, `inactive` allows it.
    async fn set_opt_in(
        &self,
        state: &mut State,
        ch: &Change,
        email: &str,
        opted_in: bool,
        reason: &str,
    ) -> Result<Option<ContactChange>, CrmError> {
        let contact = &mut state.contact;
        let primary = contact.field("email").map(|e| e.trim().to_lowercase());
        if primary.as_deref() != Some(&email.trim().to_lowercase()) {
            return Err(invalid(
                email,
                format!("{email} is not this contact's email"),
            ));
        }
        if opted_in && state.email_dnd.as_deref() == Some("permanent") {
            return Err(invalid(email, format!("{email} has a permanent email DND")));
        }
        if opted_in && state.dnd_all {
            return Err(invalid(email, "the contact has DND on every channel"));
        }
        if contact.marketable == Some(opted_in) {
            return Ok(None);
        }
        let status = if opted_in { "inactive" } else { "active" };
        let body = json!({"dndSettings": {"Email": {"status": status, "message": reason}}});
        self.put(&contact.id, body).await?;
        state.email_dnd = Some(status.to_owned());
        let old = contact.marketable.replace(opted_in).map(|m| m.to_string());
        Ok(record(ch, old, Some(format!("{opted_in}: {reason}"))))
    }
}
