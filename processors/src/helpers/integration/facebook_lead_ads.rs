//! facebook_lead_ads: processes a Facebook Lead Ads `leadgen` webhook. The lead id comes
//! from the webhook payload in `ctx.input` (the raw `entry[].changes[].value`, or a
//! flattened `{leadgen_id, form_id}`); the lead is read from the Graph API (`GET
//! /v19.0/{leadgen_id}?access_token=…&fields=…`) and its `field_data` mapped to contact
//! fields: `email`, `phone_number` → `phone`, `first_name`, `last_name`, `full_name` (split
//! into first and last when those are absent), `company_name` → `company`, plus
//! `field_mapping` overrides and additions. Multi-select answers are joined with ", ".
//! The fields go onto the execution's contact when its email is empty or the lead's;
//! otherwise onto the existing contact with the lead's email (upsert on email, never a
//! duplicate); with no such contact the lead fails, as creating contacts is outside what
//! a helper may do. `form_filter` limits the forms accepted; `apply_tag` and the per-form
//! `form_tags` are applied. A read plus idempotent writes, so re-runs are harmless.

use crate::connectors::{Capability, ContactQuery, search_all};
use crate::helpers::defaults::{default_email, given};
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, error_chain, finish,
};
use crate::http::HttpError;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Config of facebook_lead_ads.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Page access token with `leads_retrieval`.
    pub access_token: String,
    /// Graph API version; default `v19.0`.
    #[serde(default = "default_version")]
    pub graph_version: String,
    /// Lead form field name → contact field key; adds to or replaces the standard map.
    #[serde(default)]
    pub field_mapping: BTreeMap<String, String>,
    /// Form ids to accept; empty accepts every form.
    #[serde(default)]
    pub form_filter: Vec<String>,
    /// Tag applied to every lead.
    pub apply_tag: Option<String>,
    /// Form id → tag applied to leads from that form.
    #[serde(default)]
    pub form_tags: BTreeMap<String, String>,
    /// The contact email field used to match the lead; default `email`.
    #[serde(default = "default_email")]
    pub email_field: String,
}

fn default_version() -> String {
    "v19.0".into()
}
impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.access_token.trim().is_empty(),
            "access_token",
            "is required",
        );
        let v = self.graph_version.trim();
        let version_ok = v
            .strip_prefix('v')
            .and_then(|r| r.split_once('.'))
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.chars().all(|c| c.is_ascii_digit())
            });
        check(
            &mut errors,
            !version_ok,
            "graph_version",
            "must look like v19.0",
        );
        for (k, f) in &self.field_mapping {
            check(
                &mut errors,
                k.trim().is_empty() || f.trim().is_empty(),
                &format!("field_mapping.{k}"),
                "needs a form field name and a contact field key",
            );
        }
        check(
            &mut errors,
            self.form_filter.iter().any(|f| f.trim().is_empty()),
            "form_filter",
            "form ids must not be empty",
        );
        for (form, tag) in &self.form_tags {
            check(
                &mut errors,
                form.trim().is_empty() || tag.trim().is_empty(),
                &format!("form_tags.{form}"),
                "needs a form id and a tag id",
            );
        }
        check(
            &mut errors,
            self.apply_tag.is_some() && given(&self.apply_tag).is_none(),
            "apply_tag",
            "must not be empty when set",
        );
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The facebook_lead_ads helper.
pub struct FacebookLeadAds;

impl Helper for FacebookLeadAds {
    const NAME: &'static str = "facebook_lead_ads";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Fetches a Facebook lead from a Lead Ads webhook and writes its answers onto the matching contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"access_token": "page_token", "field_mapping": {"what_is_your_budget": "_Budget"}, "apply_tag": "700", "form_tags": {"1234567890": "701"}}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "contact_id",
        "created",
        "lead_id",
        "form_id",
        "email",
        "lead_fields",
    ];
    const REQUIRES: &'static [Capability] =
        &[Capability::Fields, Capability::Tags, Capability::Search];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(LeadStep { config }))
    }
}

struct LeadStep {
    config: Config,
}

/// A lead as the Graph API returns it.
#[derive(Debug, Deserialize)]
struct Lead {
    #[serde(default)]
    form_id: Option<String>,
    #[serde(default)]
    field_data: Vec<LeadField>,
}

#[derive(Debug, Deserialize)]
struct LeadField {
    name: String,
    #[serde(default)]
    values: Vec<Value>,
}

/// The (lead id, form id) of the first leadgen change in the webhook payload.
fn lead_ref(input: &Value) -> Option<(String, Option<String>)> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let from = |v: &Value| {
        v.get("leadgen_id")
            .and_then(text)
            .map(|id| (id, v.get("form_id").and_then(text)))
    };
    from(input)
        .or_else(|| input.get("value").and_then(from))
        .or_else(|| {
            input["entry"]
                .as_array()?
                .iter()
                .flat_map(|e| e["changes"].as_array().into_iter().flatten())
                .filter(|c| c["field"] == "leadgen" || c.get("field").is_none())
                .find_map(|c| c.get("value").and_then(from))
        })
}

/// The standard Lead Ads field names and the contact fields they fill.
const STANDARD: &[(&str, &str)] = &[
    ("email", "email"),
    ("phone_number", "phone"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("company_name", "company"),
];

/// An HTTP error as a step error, with the token (sent in the query) masked.
fn masked(e: &HttpError, secret: &str) -> StepError {
    let mut message = error_chain(e);
    if !secret.is_empty() {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        message = message.replace(&encoded, "***").replace(secret, "***");
    }
    StepError::External {
        message,
        retryable: e.retryable(),
    }
}

impl LeadStep {
    /// Contact field → value for the lead's answers.
    fn map_fields(&self, answers: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut mapping: BTreeMap<&str, &str> = STANDARD.iter().copied().collect();
        for (k, v) in &self.config.field_mapping {
            mapping.insert(k.trim(), v.trim());
        }
        let mut out = BTreeMap::new();
        for (name, value) in answers {
            if let Some(field) = mapping.get(name.as_str()) {
                out.insert((*field).to_owned(), value.clone());
            }
        }
        if let Some(full) = answers.get("full_name") {
            let (first, last) = full.split_once(' ').unwrap_or((full, ""));
            for (key, part) in [("first_name", first), ("last_name", last)] {
                let target = mapping.get(key).copied().unwrap_or(key);
                if !answers.contains_key(key) && !part.trim().is_empty() {
                    out.insert(target.to_owned(), part.trim().to_owned());
                }
            }
        }
        out
    }

    async fn fetch(&self, ctx: &Ctx<'_>, lead_id: &str) -> Result<Lead, StepError> {
        let token = self.config.access_token.trim();
        let mut url = url::Url::parse(&ctx.vendors.url("facebook_graph", "/"))
            .map_err(|e| StepError::Input(format!("facebook_graph base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| StepError::Input("facebook_graph base URL cannot take a path".into()))?
            .pop_if_empty()
            .extend([self.config.graph_version.trim(), lead_id]);
        url.query_pairs_mut()
            .append_pair("access_token", token)
            .append_pair("fields", "id,created_time,form_id,field_data");
        let resp = ctx
            .http
            .send(reqwest::Method::GET, url.as_str(), |r| r)
            .await
            .map_err(|e| masked(&e, token))?;
        serde_json::from_slice(&resp.body).map_err(|e| StepError::External {
            message: format!("unexpected Graph API lead: {e}"),
            retryable: false,
        })
    }
}

#[async_trait::async_trait]
impl AsyncStep for LeadStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let Some((lead_id, hook_form)) = ctx.input.and_then(lead_ref) else {
            return Ok(Outcome::failed("The webhook payload carries no leadgen_id"));
        };
        if !lead_id.chars().all(|ch| ch.is_ascii_digit()) {
            return Ok(Outcome::failed("The leadgen_id is not a Facebook lead id"));
        }
        let accepts = |form: Option<&str>| {
            c.form_filter.is_empty()
                || form.is_some_and(|f| c.form_filter.iter().any(|x| x.trim() == f))
        };
        let skipped = |form: Option<&str>| {
            Ok(Outcome::ok("Lead from a form this helper does not accept")
                .with("lead_id", lead_id.clone())
                .with("form_id", form))
        };
        if hook_form.is_some() && !accepts(hook_form.as_deref()) {
            return skipped(hook_form.as_deref());
        }
        let lead = self.fetch(ctx, &lead_id).await?;
        let form = lead.form_id.clone().or(hook_form);
        if !accepts(form.as_deref()) {
            return skipped(form.as_deref());
        }
        let answers: BTreeMap<String, String> = lead
            .field_data
            .iter()
            .filter_map(|f| {
                let joined = f
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        Value::String(s) => Some(s.trim().to_owned()),
                        Value::Null => None,
                        other => Some(other.to_string()),
                    })
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(", ");
                (!joined.is_empty()).then(|| (f.name.trim().to_owned(), joined))
            })
            .collect();
        let fields = self.map_fields(&answers);
        let email_field = c.email_field.trim();
        let lead_email = answers.get("email").map(String::as_str);
        let own = contact.field(email_field);
        let target = match (lead_email, own) {
            (Some(le), Some(ce)) if !le.eq_ignore_ascii_case(ce.trim()) => {
                let query = ContactQuery::FieldEquals {
                    field: email_field.to_owned(),
                    value: le.to_owned(),
                };
                match search_all(ctx.crm, &query, 1).await?.into_iter().next() {
                    Some(found) => found,
                    None => {
                        return Ok(Outcome::failed(
                            "No contact has the lead's email and this contact has another; creating contacts is not supported",
                        )
                        .with("lead_id", lead_id)
                        .with("email", le));
                    }
                }
            }
            _ => contact.clone(),
        };
        let mut out = Outcome::ok("");
        for (field, value) in &fields {
            let same_email = field == email_field
                && target
                    .field(field)
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(value));
            if !same_email {
                out = out.set_field(&target, field, value.clone());
            }
        }
        let form_tag = form
            .as_deref()
            .and_then(|f| c.form_tags.get(f))
            .map(|t| t.trim());
        for tag in [given(&c.apply_tag), form_tag].into_iter().flatten() {
            out = out.branch(&target, Some(tag), None);
        }
        if target.id != contact.id {
            out.changes = std::mem::take(&mut out.changes)
                .into_iter()
                .map(|change| Change::ForContact {
                    contact_id: target.id.clone(),
                    change: Box::new(change),
                })
                .collect();
        }
        out.message = format!("Lead {lead_id}: {} fields mapped", fields.len());
        let lead_fields: Map<String, Value> =
            answers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        Ok(out
            .with("contact_id", target.id.clone())
            .with("created", false)
            .with("lead_id", lead_id)
            .with("form_id", form)
            .with("email", lead_email)
            .with("lead_fields", lead_fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn lead() -> Value {
        json!({"id": "444", "created_time": "2026-03-15T11:59:00+0000", "form_id": "123",
            "field_data": [
                {"name": "email", "values": ["ada@example.com"]},
                {"name": "full_name", "values": ["Ada King Lovelace"]},
                {"name": "phone_number", "values": ["+15551234567"]},
                {"name": "interests", "values": ["math", "poetry"]},
                {"name": "what_is_your_budget", "values": ["$1000"]}]})
    }

    fn hook(lead_id: &str) -> Value {
        json!({"object": "page", "entry": [{"id": "p1", "time": 1, "changes": [{"field": "leadgen",
            "value": {"ad_id": "1", "form_id": "123", "leadgen_id": lead_id, "created_time": 1, "page_id": "p1"}}]}]})
    }

    fn cfg() -> Value {
        json!({"access_token": "pt&x", "field_mapping": {"what_is_your_budget": "_Budget", "interests": "_Interests"},
            "apply_tag": "700", "form_tags": {"123": "701"}})
    }

    async fn setup(status: u16, input: Value) -> (MockVendor, Env) {
        let m = MockVendor::start(&[("GET", "/v19.0/444", status, lead())]).await;
        let mut env = Env::new().vendor("facebook_graph", &m.base);
        env.input = Some(input);
        (m, env)
    }

    #[tokio::test]
    async fn fetches_the_lead_and_maps_it_onto_the_contact() {
        let (m, env) = setup(200, hook("444")).await;
        let out = env
            .run(&FacebookLeadAds, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        let req = m.single();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/v19.0/444")
        );
        let q: BTreeMap<String, String> = url::form_urlencoded::parse(req.query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(q["access_token"], "pt&x");
        assert_eq!(q["fields"], "id,created_time,form_id,field_data");
        assert_eq!(
            out.changes,
            vec![
                set("_Budget", "$1000"),
                set("_Interests", "math, poetry"),
                set("email", "ada@example.com"),
                set("first_name", "Ada"),
                set("last_name", "King Lovelace"),
                set("phone", "+15551234567"),
                Change::ApplyTag {
                    tag_id: "700".into()
                },
                Change::ApplyTag {
                    tag_id: "701".into()
                },
            ]
        );
        assert_eq!(out.output["contact_id"], json!("c-1"));
        assert_eq!(out.output["form_id"], json!("123"));
        assert_eq!(
            out.output["lead_fields"]["interests"],
            json!("math, poetry")
        );
    }

    #[tokio::test]
    async fn another_contacts_lead_goes_to_the_contact_with_that_email() {
        let (_m, mut env) = setup(200, json!({"leadgen_id": "444", "form_id": "123"})).await;
        let mut existing = contact(
            &[("email", "ADA@example.com"), ("phone", "+15551234567")],
            &["700"],
        );
        existing.id = "c-9".into();
        env.crm.contacts.push(existing);
        let me = contact(&[("email", "bob@example.com")], &[]);
        let out = env.run(&FacebookLeadAds, cfg(), &me).await.unwrap();
        assert_eq!(out.output["contact_id"], json!("c-9"));
        assert!(
            out.changes
                .iter()
                .all(|c| matches!(c, Change::ForContact { contact_id, .. } if contact_id == "c-9"))
        );
        assert_eq!(out.changes.len(), 5, "{:?}", out.changes);
        env.crm.contacts.clear();
        let out = env.run(&FacebookLeadAds, cfg(), &me).await.unwrap();
        assert!(!out.success && out.changes.is_empty());
    }

    #[tokio::test]
    async fn forms_outside_the_filter_are_skipped_before_the_fetch() {
        let (m, env) = setup(200, hook("444")).await;
        let mut cfg = cfg();
        cfg["form_filter"] = json!(["999"]);
        let out = env
            .run(&FacebookLeadAds, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success && out.changes.is_empty() && m.received().is_empty());
    }

    #[tokio::test]
    async fn bad_payloads_fail_and_vendor_errors_hide_the_token() {
        let (m, env) = setup(200, json!({"entry": []})).await;
        let out = env
            .run(&FacebookLeadAds, cfg(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(!out.success);
        let (_m2, env2) = setup(200, json!({"leadgen_id": "../me"})).await;
        assert!(
            !env2
                .run(&FacebookLeadAds, cfg(), &contact(&[], &[]))
                .await
                .unwrap()
                .success
        );
        assert!(m.received().is_empty());
        for (status, retryable) in [(400, false), (500, true)] {
            let (_m, env) = setup(status, hook("444")).await;
            match env
                .run(&FacebookLeadAds, cfg(), &contact(&[], &[]))
                .await
                .unwrap_err()
            {
                StepError::External {
                    message,
                    retryable: r,
                } => {
                    assert_eq!(r, retryable);
                    assert!(
                        !message.contains("pt%26x") && !message.contains("pt&x"),
                        "{message}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_dry_run_reads_the_lead_and_reruns_change_nothing_new() {
        let (m, mut env) = setup(200, hook("444")).await;
        env.dry_run = true;
        let c = contact(&[("email", "ada@example.com")], &[]);
        let out = env.run(&FacebookLeadAds, cfg(), &c).await.unwrap();
        assert!(out.success && m.received().len() == 1, "a read-only lookup");
        let mut applied = c.clone();
        for ch in &out.changes {
            match ch {
                Change::SetField {
                    field,
                    value: Some(v),
                } => {
                    applied.fields.insert(field.clone(), v.clone());
                }
                Change::ApplyTag { tag_id } => {
                    applied.tags.insert(tag_id.clone(), tag_id.clone());
                }
                _ => {}
            }
        }
        let again = env.run(&FacebookLeadAds, cfg(), &applied).await.unwrap();
        assert!(again.changes.is_empty(), "idempotent: {:?}", again.changes);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &FacebookLeadAds,
            json!({"access_token": "", "graph_version": "19",
            "field_mapping": {"x": ""}, "form_tags": {"1": " "}}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "access_token",
                "graph_version",
                "field_mapping.x",
                "form_tags.1"
            ]
        );
        assert!(!config_errors(&FacebookLeadAds, json!({})).is_empty());
        assert!(
            config_errors(
                &FacebookLeadAds,
                json!({"access_token": "t", "graph_version": "v21.0"})
            )
            .is_empty()
        );
    }
}
