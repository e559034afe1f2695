//! Applying a helper's changes: each change is one or two ActiveCampaign calls, made in
//! order against a snapshot of the contact loaded first, so no-ops are skipped without
//! asking the vendor and the before values are the contact's own.

use super::client::ActiveCampaign;
use super::contact::{self, Loaded, NATIVE};
use crate::connectors::vendor::{Body, enc, text};
use crate::connectors::{ApplyReport, CrmError};
use crate::helpers::Change;
use mfh_schemas::ContactChange;
use reqwest::Method;
use serde_json::json;

/// Why one change was not made.
enum Refusal {
    /// The CRM (or this connector) refused this change; the others go on.
    Change(String),
    /// The connection itself failed (auth, rate limit, outage): nothing more can be made.
    Connection(CrmError),
}

impl From<CrmError> for Refusal {
    fn from(e: CrmError) -> Self {
        match e {
            CrmError::Auth(_) | CrmError::RateLimited { .. } | CrmError::Unavailable { .. } => {
                Self::Connection(e)
            }
            other => Self::Change(other.to_string()),
        }
    }
}

/// `Some((before, after))` when the change was made, `None` for a no-op.
type Made = Option<(Option<String>, Option<String>)>;

fn refuse(why: impl Into<String>) -> Refusal {
    Refusal::Change(why.into())
}

fn blank_to_none(v: Option<&String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty()).cloned()
}

impl ActiveCampaign {
    /// Applies `changes` in order. A refused change is reported and the rest still made.
    /// A connection failure (auth, rate limit, outage) is returned as the error when no
    /// change was made yet, so the whole apply can be retried; after that, it marks this
    /// and every later change failed, keeping the report of what was made.
    pub(super) async fn apply_changes(
        &self,
        contact_id: &str,
        changes: &[Change],
    ) -> Result<ApplyReport, CrmError> {
        let mut state = self.load(contact_id).await?;
        let mut report = ApplyReport::default();
        for (i, ch) in changes.iter().enumerate() {
            match self.apply_one(&mut state, ch).await {
                Ok(None) => {}
                Ok(Some((old, new))) => report.applied.push(ContactChange {
                    kind: ch.kind().into(),
                    target: ch.target().into(),
                    old_value: old,
                    new_value: new,
                }),
                Err(Refusal::Change(why)) => report.failed.push((ch.clone(), why)),
                Err(Refusal::Connection(e)) if report.applied.is_empty() => return Err(e),
                Err(Refusal::Connection(e)) => {
                    let why = format!("not applied: {e}");
                    for rest in changes.iter().skip(i) {
                        report.failed.push((rest.clone(), why.clone()));
                    }
                    break;
                }
            }
        }
        Ok(report)
    }

    async fn apply_one(&self, state: &mut Loaded, ch: &Change) -> Result<Made, Refusal> {
        let cid = state.contact.id.clone();
        match ch {
            Change::SetField { field, value } => self.set_field(state, field, value.as_ref()).await,
            Change::ApplyTag { tag_id } => {
                if state.contact.has_tag(tag_id) {
                    return Ok(None);
                }
                let mut tags = self.tags(false).await?;
                if !tags.contains_key(tag_id) {
                    tags = self.tags(true).await?;
                }
                let Some(name) = tags.get(tag_id).cloned() else {
                    return Err(refuse(format!("unknown tag {tag_id}")));
                };
                self.tag(state, tag_id, &name).await?;
                Ok(Some((None, Some(name))))
            }
            Change::ApplyTagNamed { name, .. } => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(refuse("empty tag name"));
                }
                let id = self.tag_id_by_name(name).await?;
                if state.contact.has_tag(&id) {
                    return Ok(None);
                }
                self.tag(state, &id, name).await?;
                Ok(Some((None, Some(id))))
            }
            Change::RemoveTag { tag_id } => {
                let Some(link) = state.tag_links.get(tag_id).cloned() else {
                    return Ok(None);
                };
                self.http
                    .send(
                        Method::DELETE,
                        &format!("/contactTags/{}", enc(&link)),
                        Body::None,
                    )
                    .await?;
                state.tag_links.remove(tag_id);
                let old = state.contact.tags.remove(tag_id);
                Ok(Some((old, None)))
            }
            Change::AddNote { title, body } => {
                let note = if title.trim().is_empty() {
                    body.clone()
                } else {
                    format!("{title}\n\n{body}")
                };
                let payload =
                    json!({"note": {"note": note, "relid": cid, "reltype": "Subscriber"}});
                self.http
                    .send(Method::POST, "/notes", Body::Json(payload))
                    .await?;
                Ok(Some((None, Some(body.clone()))))
            }
            Change::SetOptIn {
                email,
                opted_in,
                reason,
            } => self.set_opt_in(state, email, *opted_in, reason).await,
            Change::TriggerAutomation { automation_id } => {
                let payload =
                    json!({"contactAutomation": {"contact": cid, "automation": automation_id}});
                self.http
                    .send(Method::POST, "/contactAutomations", Body::Json(payload))
                    .await?;
                Ok(Some((None, Some(automation_id.clone()))))
            }
            Change::SetOwner { .. } => Err(refuse(
                "ActiveCampaign contacts have no owner field in API v3",
            )),
            Change::ForContact { .. } => Err(refuse(
                "changes to other contacts are applied to those contacts",
            )),
            other => Err(refuse(format!(
                "the ActiveCampaign connector does not support {}",
                other.kind()
            ))),
        }
    }

    async fn set_field(
        &self,
        state: &mut Loaded,
        field: &str,
        value: Option<&String>,
    ) -> Result<Made, Refusal> {
        let old = blank_to_none(state.contact.fields.get(field));
        let new = blank_to_none(value);
        if old == new {
            return Ok(None);
        }
        let cid = state.contact.id.clone();
        let sent = new.clone().unwrap_or_default();
        if let Some((_, json)) = NATIVE.iter().find(|(k, _)| *k == field) {
            let payload = json!({"contact": {*json: sent}});
            self.http
                .send(
                    Method::PUT,
                    &format!("/contacts/{}", enc(&cid)),
                    Body::Json(payload),
                )
                .await?;
        } else {
            let fields = self.fields().await?;
            let Some(f) = contact::find_field(&fields, field) else {
                return Err(refuse(format!("unknown field {field}")));
            };
            let payload = json!({"fieldValue": {"contact": cid, "field": f.id, "value": sent}});
            self.http
                .send(Method::POST, "/fieldValues", Body::Json(payload))
                .await?;
            // The same field answers to its title and its standard key.
            for key in [Some(f.title.as_str()), f.alias].into_iter().flatten() {
                state.contact.fields.insert(key.to_owned(), sent.clone());
            }
        }
        state.contact.fields.insert(field.to_owned(), sent);
        Ok(Some((old, new)))
    }

    async fn tag(&self, state: &mut Loaded, tag_id: &str, name: &str) -> Result<(), Refusal> {
        let payload = json!({"contactTag": {"contact": state.contact.id, "tag": tag_id}});
        let body = self
            .http
            .send(Method::POST, "/contactTags", Body::Json(payload))
            .await?;
        if let Some(link) = body.pointer("/contactTag/id").and_then(text) {
            state.tag_links.insert(tag_id.to_owned(), link);
        }
        state
            .contact
            .tags
            .insert(tag_id.to_owned(), name.to_owned());
        Ok(())
    }

    /// The id of the tag named `name` (any case), reloading the catalog on a miss and
    /// creating the tag when ActiveCampaign has none by that name.
    async fn tag_id_by_name(&self, name: &str) -> Result<String, Refusal> {
        let lower = name.to_lowercase();
        for refresh in [false, true] {
            let tags = self.tags(refresh).await?;
            if let Some((id, _)) = tags.iter().find(|(_, n)| n.trim().to_lowercase() == lower) {
                return Ok(id.clone());
            }
        }
        let payload = json!({"tag": {"tag": name, "tagType": "contact", "description": ""}});
        let body = self
            .http
            .send(Method::POST, "/tags", Body::Json(payload))
            .await?;
        let id = body
            .pointer("/tag/id")
            .and_then(text)
            .ok_or_else(|| refuse(format!("creating tag {name:?} returned no id")))?;
        self.remember_tag(&id, name).await;
        Ok(id)
    }

    /// Consent is per list in ActiveCampaign. Opting out unsubscribes every list the
    /// contact is subscribed to; opting in subscribes the connection's `list_id` (or the
    /// lists the contact is already on). A list the contact unsubscribed from is left
    /// alone: ActiveCampaign re-subscribes those only with the person's own consent.
    async fn set_opt_in(
        &self,
        state: &mut Loaded,
        email: &str,
        opted_in: bool,
        reason: &str,
    ) -> Result<Made, Refusal> {
        let primary = state
            .contact
            .field("email")
            .map(|e| e.trim().to_lowercase());
        if primary.as_deref() != Some(&email.trim().to_lowercase()) {
            return Err(refuse(format!("{email} is not this contact's email")));
        }
        let targets: Vec<String> = if opted_in {
            match &self.list_id {
                Some(l) => vec![l.clone()],
                None => state.lists.keys().cloned().collect(),
            }
        } else {
            state
                .lists
                .iter()
                .filter(|(_, s)| *s == "1")
                .map(|(l, _)| l.clone())
                .collect()
        };
        if opted_in {
            if targets.is_empty() {
                return Err(refuse(
                    "the contact is on no list; set the connection's list_id to opt contacts in",
                ));
            }
            if let Some(l) = targets
                .iter()
                .find(|l| state.lists.get(*l).is_some_and(|s| s == "2"))
            {
                return Err(refuse(format!(
                    "{email} unsubscribed from list {l} and cannot be re-opted in"
                )));
            }
        }
        let status = if opted_in { "1" } else { "2" };
        let todo: Vec<String> = targets
            .into_iter()
            .filter(|l| state.lists.get(l).map(String::as_str) != Some(status))
            .collect();
        if todo.is_empty() {
            return Ok(None);
        }
        let old = state.contact.marketable.map(|m| m.to_string());
        for list in todo {
            let payload = json!({"contactList": {"list": list, "contact": state.contact.id, "status": status}});
            self.http
                .send(Method::POST, "/contactLists", Body::Json(payload))
                .await?;
            state.lists.insert(list, status.to_owned());
        }
        state.contact.marketable = contact::marketable(&state.lists);
        Ok(Some((old, Some(format!("{opted_in}: {reason}")))))
    }
}
