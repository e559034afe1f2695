//! How the HubSpot connector makes each change: one request (or a few) per change, so a
//! refused change never takes the others down with it.

use super::client::{HubSpot, is_standard, options};
use super::types::{self, OWNER};
use crate::connectors::vendor::{Body, enc, text};
use crate::connectors::{CrmError, CrmRead, Tag};
use crate::helpers::{Change, Contact};
use mfh_schemas::ContactChange;
use reqwest::Method;
use serde_json::{Value, json};

/// HubSpot's association type of a note to a contact.
const NOTE_TO_CONTACT: u32 = 202;

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

/// An option value for a new tag named `name`, unique among `taken`.
fn option_value(name: &str, taken: &[Tag]) -> String {
    let mut slug = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug = match slug.trim_matches('_') {
        "" => "tag".to_owned(),
        s => s.to_owned(),
    };
    let mut candidate = slug.clone();
    let mut n = 2;
    while taken.iter().any(|t| t.id == candidate) {
        candidate = format!("{slug}_{n}");
        n += 1;
    }
    candidate
}

impl HubSpot {
    /// Makes one change to `contact` (kept up to date), returning what changed or
    /// `None` for a no-op.
    pub(super) async fn apply_one(
        &self,
        contact: &mut Contact,
        ch: &Change,
    ) -> Result<Option<ContactChange>, CrmError> {
        match ch {
            Change::SetField { field, value } => self.set_field(contact, ch, field, value).await,
            Change::ApplyTag { tag_id } => {
                let Some(tag) = self.tag_by(|t| t.id == *tag_id).await? else {
                    return Err(invalid(tag_id, format!("unknown tag {tag_id}")));
                };
                if contact.has_tag(&tag.id) {
                    return Ok(None);
                }
                self.add_tag(contact, &tag).await?;
                Ok(record(ch, None, Some(tag.name)))
            }
            Change::ApplyTagNamed { name, .. } => {
                let wanted = name.trim().to_lowercase();
                if wanted.is_empty() {
                    return Err(invalid(name, "a tag needs a name"));
                }
                let tag = match self
                    .tag_by(|t| t.name.trim().to_lowercase() == wanted)
                    .await?
                {
                    Some(t) => t,
                    None => self.create_tag(name.trim()).await?,
                };
                if contact.has_tag(&tag.id) {
                    return Ok(None);
                }
                self.add_tag(contact, &tag).await?;
                Ok(record(ch, None, Some(tag.id)))
            }
            Change::RemoveTag { tag_id } => {
                let Some(name) = contact.tags.get(tag_id).cloned() else {
                    return Ok(None);
                };
                let mut ids: Vec<String> = contact.tags.keys().cloned().collect();
                ids.retain(|t| t != tag_id);
                self.patch(&contact.id, &self.tag_property, &ids.join(";"))
                    .await?;
                contact.tags.remove(tag_id);
                Ok(record(ch, Some(name), None))
            }
            Change::AddNote { title, body } => {
                let text = if title.trim().is_empty() {
                    body.clone()
                } else {
                    format!("{title}\n\n{body}")
                };
                let note = json!({
                    "properties": {
                        "hs_timestamp": chrono::Utc::now().to_rfc3339(),
                        "hs_note_body": text,
                    },
                    "associations": [{
                        "to": {"id": contact.id},
                        "types": [{
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": NOTE_TO_CONTACT,
                        }],
                    }],
                });
                self.http
                    .send(Method::POST, "/crm/v3/objects/notes", Body::Json(note))
                    .await?;
                Ok(record(ch, None, Some(body.clone())))
            }
            Change::SetOwner { user_id } => {
                if contact.owner_id.as_ref() == Some(user_id) {
                    return Ok(None);
                }
                match self.list_users().await?.iter().find(|u| u.id == *user_id) {
                    None => return Err(invalid(user_id, format!("unknown owner {user_id}"))),
                    Some(u) if !u.active => {
                        return Err(invalid(user_id, format!("owner {user_id} is archived")));
                    }
                    Some(_) => {}
                }
                self.patch(&contact.id, OWNER, user_id).await?;
                let old = contact.owner_id.replace(user_id.clone());
                Ok(record(ch, old, Some(user_id.clone())))
            }
            Change::SetOptIn {
                email,
                opted_in,
                reason,
            } => self.set_opt_in(contact, ch, email, *opted_in, reason).await,
            other => Err(CrmError::Unsupported {
                what: format!("{} on HubSpot", other.kind()),
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
        let property = types::property_of(field);
        if !is_standard(field)
            && !self.properties(false).await?.all.contains(property)
            && !self.properties(true).await?.all.contains(property)
        {
            return Err(invalid(
                field,
                format!("HubSpot has no contact property {field}"),
            ));
        }
        let key = types::key_of(property).to_owned();
        let new = value.clone().filter(|v| !v.is_empty());
        let old = contact.fields.get(&key).cloned();
        if old == new {
            return Ok(None);
        }
        self.patch(&contact.id, property, new.as_deref().unwrap_or_default())
            .await?;
        match &new {
            Some(v) => contact.fields.insert(key, v.clone()),
            None => contact.fields.remove(&key),
        };
        Ok(record(ch, old, new))
    }

    /// Sets one property of the contact (an empty value clears it).
    async fn patch(&self, contact_id: &str, property: &str, value: &str) -> Result<(), CrmError> {
        let path = format!("/crm/v3/objects/contacts/{}", enc(contact_id));
        let body = json!({"properties": {property: value}});
        self.http
            .send(Method::PATCH, &path, Body::Json(body))
            .await
            .map(|_| ())
    }

    /// The first catalog tag satisfying `pred`, reloading the catalog once on a miss.
    async fn tag_by(&self, pred: impl Fn(&Tag) -> bool) -> Result<Option<Tag>, CrmError> {
        if let Some(t) = self.catalog(false).await?.iter().find(|t| pred(t)) {
            return Ok(Some(t.clone()));
        }
        Ok(self.catalog(true).await?.iter().find(|t| pred(t)).cloned())
    }

    async fn add_tag(&self, contact: &mut Contact, tag: &Tag) -> Result<(), CrmError> {
        let mut ids: Vec<String> = contact.tags.keys().cloned().collect();
        ids.push(tag.id.clone());
        self.patch(&contact.id, &self.tag_property, &ids.join(";"))
            .await?;
        contact.tags.insert(tag.id.clone(), tag.name.clone());
        Ok(())
    }

    /// Adds an option named `name` to the tag property. HubSpot replaces the whole
    /// option list on update, so the current list is read first and sent back with it.
    async fn create_tag(&self, name: &str) -> Result<Tag, CrmError> {
        let path = format!("/crm/v3/properties/contacts/{}", enc(&self.tag_property));
        let current = self.http.get(&path).await.map_err(|e| match e {
            CrmError::NotFound { .. } => invalid(
                &format!("settings.tag_property {}", self.tag_property),
                "the tag property does not exist: create a multiple-checkbox contact property",
            ),
            other => other,
        })?;
        let existing = options(&current);
        let value = option_value(name, &existing);
        let mut opts: Vec<Value> = current["options"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|o| {
                json!({
                    "label": o["label"],
                    "value": o["value"],
                    "displayOrder": o["displayOrder"],
                    "hidden": o["hidden"].as_bool().unwrap_or(false),
                })
            })
            .collect();
        opts.push(json!({
            "label": name,
            "value": value,
            "displayOrder": opts.len(),
            "hidden": false,
        }));
        let updated = self
            .http
            .send(Method::PATCH, &path, Body::Json(json!({"options": opts})))
            .await?;
        let tags = options(&updated);
        let tag = tags
            .iter()
            .find(|t| t.id == value)
            .cloned()
            .unwrap_or_else(|| Tag {
                id: value,
                name: name.to_owned(),
                category: None,
            });
        self.set_catalog(tags).await;
        Ok(tag)
    }

    /// Opts the contact's address in or out of the connection's subscription type, or
    /// of every active one, through the communication preferences v3 API. HubSpot
    /// refuses to re-subscribe an address that unsubscribed itself; that refusal is this
    /// change's failure.
    async fn set_opt_in(
        &self,
        contact: &mut Contact,
        ch: &Change,
        email: &str,
        opted_in: bool,
        reason: &str,
    ) -> Result<Option<ContactChange>, CrmError> {
        let primary = contact.field("email").map(|e| e.trim().to_lowercase());
        if primary.as_deref() != Some(&email.trim().to_lowercase()) {
            return Err(invalid(
                email,
                format!("{email} is not this contact's email"),
            ));
        }
        if contact.marketable == Some(opted_in) {
            return Ok(None);
        }
        let targets: Vec<String> = match &self.subscription_id {
            Some(id) => vec![id.clone()],
            None => {
                let defs = self
                    .http
                    .get("/communication-preferences/v3/definitions")
                    .await?;
                defs["subscriptionDefinitions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|d| d["isActive"].as_bool().unwrap_or(true))
                    .filter(|d| !d["isInternal"].as_bool().unwrap_or(false))
                    .filter_map(|d| text(&d["id"]))
                    .collect()
            }
        };
        if targets.is_empty() {
            return Err(invalid(email, "HubSpot has no active subscription type"));
        }
        let path = format!(
            "/communication-preferences/v3/status/email/{}",
            enc(email.trim())
        );
        let statuses = self.http.get(&path).await?;
        let want = if opted_in {
            "SUBSCRIBED"
        } else {
            "NOT_SUBSCRIBED"
        };
        let action = if opted_in { "subscribe" } else { "unsubscribe" };
        for id in targets {
            let current = statuses["subscriptionStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| text(&s["id"]).as_deref() == Some(id.as_str()))
                .and_then(|s| s["status"].as_str());
            if current == Some(want) {
                continue;
            }
            let mut body = json!({
                "emailAddress": email.trim(),
                "subscriptionId": id,
                "legalBasisExplanation": reason,
            });
            if let Some(basis) = &self.legal_basis {
                body["legalBasis"] = json!(basis);
            }
            self.http
                .send(
                    Method::POST,
                    &format!("/communication-preferences/v3/{action}"),
                    Body::Json(body),
                )
                .await?;
        }
        let old = contact.marketable.replace(opted_in).map(|m| m.to_string());
        Ok(record(ch, old, Some(format!("{opted_in}: {reason}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tag_values_are_slugs_unique_in_the_catalog() {
        let taken = vec![Tag {
            id: "state_texas".into(),
            name: "x".into(),
            category: None,
        }];
        assert_eq!(option_value("State: Texas", &taken), "state_texas_2");
        assert_eq!(option_value("VIP", &[]), "vip");
        assert_eq!(option_value("!!", &[]), "tag");
    }
}
