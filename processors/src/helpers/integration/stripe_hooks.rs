//! stripe_hooks: turns a Stripe event (the webhook payload, given as the execution's
//! input) into CRM changes. Only `selected_events` are processed (`invoice.paid`,
//! `customer.subscription.*`, `*`). The customer's email is read from the event object
//! (`customer_email`, `customer_details.email`, `receipt_email`, `billing_details.email`,
//! an expanded `customer`) or, with an `api_key`, fetched from `GET /v1/customers/{id}`.
//! The contact with that email (the triggering contact, or one found by search) gets the
//! configured tags and goals — `event_tags`/`goal_name` for every selected event,
//! `event_tag_map`/`event_goal_map` per type, `stripe_<type>` goals with
//! `per_event_goals` — and the `field_mappings` (amount in currency units, not cents;
//! currency, status, plan, ids, dates). Changes to another contact are addressed to it.
//!
//! Authenticity: the payload reaches the helper already parsed, so its `Stripe-Signature`
//! cannot be checked here; with an `api_key` the helper instead re-reads the event from
//! `GET /v1/events/{id}` (bearer secret key) and uses Stripe's copy, which a forger cannot
//! produce. Stripe redelivers and sends duplicates: an event id is processed once (per
//! helper instance, remembered 30 days; a redelivered execution still gets its result).
//! Out-of-order events do not overwrite fields written from a newer event on the same
//! object. Test-mode events are skipped with `ignore_test_events`. No contact is created:
//! an event whose email matches no contact fails with that reason.

use crate::connectors::{Capability, ContactQuery};
use crate::helpers::integration::mail_it::{is_email, parse_answer, vendor_error};
use crate::helpers::integration::zoom_meeting::vendor_url;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use chrono::{DateTime, Duration};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Values an event can write to fields.
const SOURCES: &[&str] = &[
    "amount",
    "amount_refunded",
    "currency",
    "status",
    "plan",
    "customer_id",
    "subscription_id",
    "object_id",
    "event_type",
    "event_date",
    "period_end",
    "email",
];

/// Config of stripe_hooks.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Event types processed: exact (`invoice.paid`), a prefix wildcard
    /// (`customer.subscription.*`) or `*`.
    pub selected_events: Vec<String>,
    /// Stripe secret key, to re-read the event and fetch customers (never logged).
    pub api_key: Option<String>,
    /// Goal achieved for every selected event.
    pub goal_name: Option<String>,
    /// Goal per event type.
    #[serde(default)]
    pub event_goal_map: BTreeMap<String, String>,
    /// Also achieve `stripe_<event type with _ for .>`; default false.
    #[serde(default)]
    pub per_event_goals: bool,
    /// Tag ids applied for every selected event.
    #[serde(default)]
    pub event_tags: Vec<String>,
    /// Tag ids per event type.
    #[serde(default)]
    pub event_tag_map: BTreeMap<String, Vec<String>>,
    /// Source value → field key, e.g. `amount` → `_LastPayment`.
    #[serde(default)]
    pub field_mappings: BTreeMap<String, String>,
    /// The field matched against the customer's email; default `email`.
    #[serde(default = "default_email_field")]
    pub email_field: String,
    /// Skip events from Stripe's test mode; default false.
    #[serde(default)]
    pub ignore_test_events: bool,
}

fn default_email_field() -> String {
    "email".into()
}

fn valid_pattern(p: &str) -> bool {
    let p = p.trim();
    p == "*"
        || (!p.is_empty()
            && p.split('.').enumerate().all(|(i, part)| {
                !part.is_empty()
                    && (part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        || (part == "*" && i + 1 == p.split('.').count()))
            }))
}

fn selected(patterns: &[String], event_type: &str) -> bool {
    patterns.iter().any(|p| {
        let p = p.trim();
        p == "*"
            || p == event_type
            || p.strip_suffix('*')
                .is_some_and(|prefix| event_type.starts_with(prefix))
    })
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.selected_events.is_empty(),
            "selected_events",
            "must list at least one event type",
        );
        check(
            &mut errors,
            self.selected_events.iter().any(|p| !valid_pattern(p)),
            "selected_events",
            "entries must be event types like invoice.paid, prefixes like customer.subscription.* or *",
        );
        check(
            &mut errors,
            self.api_key
                .as_deref()
                .is_some_and(|k| !(k.starts_with("sk_") || k.starts_with("rk_"))),
            "api_key",
            "must be a Stripe secret or restricted key (sk_… or rk_…)",
        );
        check(
            &mut errors,
            self.goal_name
                .as_deref()
                .is_some_and(|g| g.trim().is_empty()),
            "goal_name",
            "must not be empty when given",
        );
        check(
            &mut errors,
            self.event_goal_map
                .iter()
                .any(|(k, v)| !valid_pattern(k) || k.contains('*') || v.trim().is_empty()),
            "event_goal_map",
            "keys must be event types and goals non-empty",
        );
        check(
            &mut errors,
            self.event_tags.iter().any(|t| t.trim().is_empty()),
            "event_tags",
            "tag ids must not be empty",
        );
        check(
            &mut errors,
            self.event_tag_map.iter().any(|(k, v)| {
                !valid_pattern(k) || k.contains('*') || v.iter().any(|t| t.trim().is_empty())
            }),
            "event_tag_map",
            "keys must be event types and tag ids non-empty",
        );
        for (source, field) in &self.field_mappings {
            check(
                &mut errors,
                !SOURCES.contains(&source.as_str()),
                &format!("field_mappings.{source}"),
                "is not a known source (amount, amount_refunded, currency, status, plan, customer_id, subscription_id, object_id, event_type, event_date, period_end, email)",
            );
            check(
                &mut errors,
                field.trim().is_empty(),
                &format!("field_mappings.{source}"),
                "needs a field key",
            );
        }
        check(
            &mut errors,
            self.email_field.trim().is_empty(),
            "email_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// Currencies without minor units, and with three decimals.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// A Stripe amount in the currency's smallest unit, in currency units.
fn money(minor: i64, currency: &str) -> String {
    let c = currency.to_lowercase();
    if ZERO_DECIMAL.contains(&c.as_str()) {
        minor.to_string()
    } else if THREE_DECIMAL.contains(&c.as_str()) {
        format!("{:.3}", minor as f64 / 1000.0)
    } else {
        format!("{:.2}", minor as f64 / 100.0)
    }
}

fn date(secs: i64) -> Option<String> {
    DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y-%m-%d").to_string())
}

fn s(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|x| !x.trim().is_empty())
        .map(str::to_owned)
}

/// What an event says, by source name.
fn extract(event_type: &str, created: i64, o: &Value) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    let kind = o["object"].as_str().unwrap_or("");
    let currency = s(&o["currency"]).unwrap_or_else(|| "usd".into());
    let amount = match kind {
        "invoice" => o["amount_paid"]
            .as_i64()
            .filter(|a| *a > 0)
            .or_else(|| o["amount_due"].as_i64()),
        "checkout.session" => o["amount_total"].as_i64(),
        "payment_intent" => o["amount_received"]
            .as_i64()
            .filter(|a| *a > 0)
            .or_else(|| o["amount"].as_i64()),
        "subscription" => {
            let item = &o["items"]["data"][0];
            item["price"]["unit_amount"]
                .as_i64()
                .or_else(|| o["plan"]["amount"].as_i64())
                .map(|a| a * item["quantity"].as_i64().unwrap_or(1))
        }
        _ => o["amount"].as_i64(),
    };
    let sub_currency = s(&o["items"]["data"][0]["price"]["currency"]);
    let currency = sub_currency
        .filter(|_| kind == "subscription")
        .unwrap_or(currency);
    if let Some(a) = amount {
        m.insert("amount", money(a, &currency));
    }
    if let Some(a) = o["amount_refunded"].as_i64() {
        m.insert("amount_refunded", money(a, &currency));
    }
    if amount.is_some() || o["currency"].is_string() {
        m.insert("currency", currency.to_uppercase());
    }
    let status = s(&o["status"]).or_else(|| s(&o["payment_status"]));
    if let Some(st) = status {
        m.insert("status", st);
    }
    let price = if kind == "invoice" {
        &o["lines"]["data"][0]["price"]
    } else {
        &o["items"]["data"][0]["price"]
    };
    if let Some(plan) = s(&price["nickname"])
        .or_else(|| s(&price["id"]))
        .or_else(|| s(&o["plan"]["nickname"]))
        .or_else(|| s(&o["plan"]["id"]))
    {
        m.insert("plan", plan);
    }
    if let Some(c) = s(&o["customer"]).or_else(|| s(&o["customer"]["id"])) {
        m.insert("customer_id", c);
    } else if kind == "customer"
        && let Some(id) = s(&o["id"])
    {
        m.insert("customer_id", id);
    }
    let sub = if kind == "subscription" {
        s(&o["id"])
    } else {
        s(&o["subscription"])
    };
    if let Some(sub) = sub {
        m.insert("subscription_id", sub);
    }
    if let Some(id) = s(&o["id"]) {
        m.insert("object_id", id);
    }
    m.insert("event_type", event_type.to_owned());
    if let Some(d) = date(created) {
        m.insert("event_date", d);
    }
    let end = o["current_period_end"]
        .as_i64()
        .or_else(|| o["items"]["data"][0]["current_period_end"].as_i64())
        .or_else(|| o["period_end"].as_i64());
    if let Some(d) = end.and_then(date) {
        m.insert("period_end", d);
    }
    let email = [
        &o["customer_email"],
        &o["customer_details"]["email"],
        &o["receipt_email"],
        &o["billing_details"]["email"],
        &o["customer"]["email"],
    ]
    .into_iter()
    .find_map(s)
    .or_else(|| {
        if kind == "customer" {
            s(&o["email"])
        } else {
            None
        }
    });
    if let Some(e) = email {
        m.insert("email", e.trim().to_lowercase());
    }
    m
}

/// The stripe_hooks helper.
pub struct StripeHooks;

impl Helper for StripeHooks {
    const NAME: &'static str = "stripe_hooks";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Turns Stripe webhook events into tags, goals and field updates on the customer's contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"selected_events": ["invoice.paid", "invoice.payment_failed"], "event_tag_map": {"invoice.payment_failed": ["720"]}, "event_goal_map": {"invoice.paid": "stripepaid"}, "field_mappings": {"amount": "_LastPayment", "plan": "_Plan"}}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "event_id",
        "event_type",
        "contact_id",
        "email",
        "actions",
        "duplicate",
        "ignored",
    ];
    const REQUIRES: &'static [Capability] = &[
        Capability::Search,
        Capability::Tags,
        Capability::Goals,
        Capability::Fields,
    ];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(StripeHooksStep(config)))
    }
}

struct StripeHooksStep(Config);

impl StripeHooksStep {
    async fn stripe_get(&self, ctx: &Ctx<'_>, segments: &[&str]) -> Result<Value, StepError> {
        let key = self.0.api_key.as_deref().unwrap_or("");
        let url = vendor_url(ctx, "stripe", segments, &[])?;
        let resp = ctx
            .http
            .send(reqwest::Method::GET, &url, |r| r.bearer_auth(key))
            .await
            .map_err(|e| vendor_error("stripe", &e))?;
        parse_answer("stripe", &resp.body)
    }

    /// The contact the event is about: the triggering one when its email matches.
    async fn target(
        &self,
        ctx: &Ctx<'_>,
        contact: &Contact,
        email: &str,
    ) -> Result<Option<Contact>, StepError> {
        let field = self.0.email_field.trim();
        if contact
            .field(field)
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        {
            return Ok(Some(contact.clone()));
        }
        let query = ContactQuery::FieldEquals {
            field: field.to_owned(),
            value: email.to_owned(),
        };
        let page = ctx.crm.search_contacts(&query, None).await?;
        Ok(page.contacts.into_iter().next())
    }
}

#[async_trait::async_trait]
impl AsyncStep for StripeHooksStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let Some(mut event) = ctx.input.filter(|v| v["object"] == "event").cloned() else {
            return Err(StepError::Input(
                "the input holds no Stripe event (an object with \"object\": \"event\")".into(),
            ));
        };
        let (Some(id), Some(event_type)) = (s(&event["id"]), s(&event["type"])) else {
            return Err(StepError::Input(
                "the Stripe event has no id or type".into(),
            ));
        };
        let base = Outcome::ok("")
            .with("event_id", id.clone())
            .with("event_type", event_type.clone())
            .with("duplicate", false)
            .with("ignored", false);
        let skip = |why: String| {
            let mut out = base.clone().with("ignored", true);
            out.message = why;
            out
        };
        if !selected(&c.selected_events, &event_type) {
            return Ok(skip(format!("{event_type} is not a selected event")));
        }
        if c.ignore_test_events && event["livemode"] == json!(false) {
            return Ok(skip(format!("{id} is a test-mode event")));
        }
        let seen_key = format!("stripe_hooks/{}/event/{id}", ctx.instance);
        if let Some(seen) = ctx.state.get(&seen_key).await?
            && seen["execution_id"] != json!(ctx.execution_id)
        {
            let mut out = base.with("duplicate", true);
            out.message = format!("Event {id} was already processed");
            return Ok(out);
        }
        if c.api_key.is_some() {
            event = self.stripe_get(ctx, &["v1", "events", &id]).await?;
        }
        let created = event["created"].as_i64().unwrap_or(0);
        let object = &event["data"]["object"];
        let mut data = extract(&event_type, created, object);
        if !data.contains_key("email")
            && c.api_key.is_some()
            && let Some(customer) = data.get("customer_id").cloned()
        {
            let cust = self
                .stripe_get(ctx, &["v1", "customers", &customer])
                .await?;
            if let Some(e) = s(&cust["email"]) {
                data.insert("email", e.trim().to_lowercase());
            }
        }
        let Some(email) = data.get("email").cloned().filter(|e| is_email(e)) else {
            return Ok(Outcome {
                success: false,
                message: format!("The customer of event {id} has no email; skipped"),
                ..base
            });
        };
        let base = base.with("email", email.clone());
        let Some(target) = self.target(ctx, contact, &email).await? else {
            return Ok(Outcome {
                success: false,
                message: format!("No contact has the email {email}; event {id} skipped"),
                ..base
            });
        };
        let mut own = Vec::new();
        let mut tags: Vec<&String> = c.event_tags.iter().collect();
        tags.extend(c.event_tag_map.get(&event_type).into_iter().flatten());
        let mut applied = Vec::new();
        for t in tags {
            let t = t.trim();
            if !target.has_tag(t) && !applied.contains(&t) {
                applied.push(t);
                own.push(Change::ApplyTag {
                    tag_id: t.to_owned(),
                });
            }
        }
        let mut goals: Vec<String> = c.goal_name.iter().map(|g| g.trim().to_owned()).collect();
        goals.extend(
            c.event_goal_map
                .get(&event_type)
                .map(|g| g.trim().to_owned()),
        );
        if c.per_event_goals {
            goals.push(format!("stripe_{}", event_type.replace('.', "_")));
        }
        own.extend(
            goals
                .into_iter()
                .map(|call_name| Change::AchieveGoal { call_name }),
        );
        let mut logs = Vec::new();
        let object_key = data
            .get("object_id")
            .map(|o| format!("stripe_hooks/{}/object/{o}", ctx.instance));
        let newest = match &object_key {
            Some(k) => ctx.state.get(k).await?.and_then(|v| v.as_i64()),
            None => None,
        };
        if newest.is_some_and(|n| n > created) {
            logs.push(format!(
                "Event {id} is older than one already applied to this object; fields left as they are"
            ));
        } else {
            for (source, field) in &c.field_mappings {
                if let Some(v) = data.get(source.as_str()) {
                    let held = target.fields.get(field.trim()) == Some(v);
                    if !held {
                        own.push(Change::SetField {
                            field: field.trim().to_owned(),
                            value: Some(v.clone()),
                        });
                    }
                }
            }
        }
        let expires = Some(ctx.now + Duration::days(30));
        ctx.state
            .put(
                &seen_key,
                json!({"execution_id": ctx.execution_id}),
                expires,
            )
            .await?;
        if let Some(k) = &object_key
            && newest.is_none_or(|n| n <= created)
        {
            ctx.state.put(k, json!(created), expires).await?;
        }
        let n = own.len();
        let changes = own
            .into_iter()
            .map(|ch| {
                if target.id == contact.id {
                    ch
                } else {
                    Change::ForContact {
                        contact_id: target.id.clone(),
                        change: Box::new(ch),
                    }
                }
            })
            .collect();
        let mut out = base
            .with("contact_id", target.id.clone())
            .with("actions", n);
        out.message = format!("Processed {event_type} {id} for contact {}", target.id);
        out.changes = changes;
        out.logs = logs;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, MockVendor, config_errors, contact, set};

    fn invoice_paid(id: &str, created: i64) -> Value {
        json!({"id": id, "object": "event", "type": "invoice.paid", "created": created,
            "livemode": true, "data": {"object": {"id": "in_1", "object": "invoice",
            "customer": "cus_9", "customer_email": "Ada@X.io", "amount_paid": 4999,
            "amount_due": 4999, "currency": "usd", "status": "paid", "subscription": "sub_3",
            "lines": {"data": [{"price": {"id": "price_1", "nickname": "Pro monthly"}}]}}}})
    }

    fn cfg() -> Value {
        json!({"selected_events": ["invoice.*"], "event_tags": ["1"], "goal_name": "stripe",
            "event_tag_map": {"invoice.paid": ["2"]}, "event_goal_map": {"invoice.paid": "paid"},
            "per_event_goals": true,
            "field_mappings": {"amount": "_LastPayment", "plan": "_Plan", "currency": "_Cur",
                "event_date": "_PaidOn", "subscription_id": "_Sub"}})
    }

    fn ada() -> Contact {
        contact(&[("email", "ada@x.io")], &["1"])
    }

    #[tokio::test]
    async fn maps_an_invoice_onto_the_triggering_contact() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        env.input = Some(invoice_paid("evt_1", 1_773_500_000));
        let out = env.run(&StripeHooks, cfg(), &ada()).await.unwrap();
        assert!(out.success, "{out:?}");
        assert_eq!(out.output["contact_id"], json!("c-1"));
        assert_eq!(out.output["email"], json!("ada@x.io"));
        assert_eq!(
            out.changes,
            vec![
                Change::ApplyTag { tag_id: "2".into() },
                Change::AchieveGoal {
                    call_name: "stripe".into()
                },
                Change::AchieveGoal {
                    call_name: "paid".into()
                },
                Change::AchieveGoal {
                    call_name: "stripe_invoice_paid".into()
                },
                set("_LastPayment", "49.99"),
                set("_Cur", "USD"),
                set("_PaidOn", "2026-03-14"),
                set("_Plan", "Pro monthly"),
                set("_Sub", "sub_3"),
            ]
        );
        assert_eq!(out.output["actions"], json!(9));
    }

    #[tokio::test]
    async fn duplicates_are_skipped_but_redelivery_repeats_its_result() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        env.input = Some(invoice_paid("evt_1", 1_773_500_000));
        let first = env.run(&StripeHooks, cfg(), &ada()).await.unwrap();
        assert_eq!(env.run(&StripeHooks, cfg(), &ada()).await.unwrap(), first);
        env.execution_id = "exec-dup".into();
        let dup = env.run(&StripeHooks, cfg(), &ada()).await.unwrap();
        assert!(dup.success && dup.changes.is_empty());
        assert_eq!(dup.output["duplicate"], json!(true));
    }

    #[tokio::test]
    async fn other_contacts_get_addressed_changes_and_unknown_ones_fail() {
        let mut env = Env::new();
        let mut bob = contact(&[("email", "ada@x.io")], &[]);
        bob.id = "c-77".into();
        env.crm.contacts.push(bob);
        env.input = Some(invoice_paid("evt_2", 1_773_500_000));
        let c = json!({"selected_events": ["invoice.paid"], "event_tags": ["1"]});
        let out = env
            .run(&StripeHooks, c.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(out.output["contact_id"], json!("c-77"));
        assert_eq!(
            out.changes,
            vec![Change::ForContact {
                contact_id: "c-77".into(),
                change: Box::new(Change::ApplyTag { tag_id: "1".into() })
            }]
        );
        env.crm.contacts.clear();
        env.input = Some(invoice_paid("evt_3", 1_773_500_000));
        let out = env.run(&StripeHooks, c, &contact(&[], &[])).await.unwrap();
        assert!(!out.success && out.message.contains("No contact"));
    }

    #[tokio::test]
    async fn unselected_test_mode_and_emailless_events() {
        let mut env = Env::new();
        let mut e = invoice_paid("evt_4", 1);
        e["type"] = json!("charge.refunded");
        env.input = Some(e);
        let out = env.run(&StripeHooks, cfg(), &ada()).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["ignored"], json!(true));
        let mut e = invoice_paid("evt_5", 1);
        e["livemode"] = json!(false);
        env.input = Some(e);
        let mut c = cfg();
        c["ignore_test_events"] = json!(true);
        assert_eq!(
            env.run(&StripeHooks, c, &ada()).await.unwrap().output["ignored"],
            json!(true)
        );
        let mut e = invoice_paid("evt_6", 1);
        e["data"]["object"]["customer_email"] = Value::Null;
        env.input = Some(e);
        let out = env.run(&StripeHooks, cfg(), &ada()).await.unwrap();
        assert!(!out.success && out.message.contains("no email"));
        env.input = Some(json!({"hello": "world"}));
        assert!(matches!(
            env.run(&StripeHooks, cfg(), &ada()).await,
            Err(StepError::Input(_))
        ));
        env.input = None;
        assert!(matches!(
            env.run(&StripeHooks, cfg(), &ada()).await,
            Err(StepError::Input(_))
        ));
    }

    #[tokio::test]
    async fn older_events_do_not_overwrite_newer_fields() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        let sub = |id: &str, created: i64, status: &str| {
            json!({"id": id, "object": "event",
            "type": "customer.subscription.updated", "created": created, "livemode": true,
            "data": {"object": {"id": "sub_3", "object": "subscription", "customer": {"id": "cus_9", "email": "ada@x.io"},
                "status": status, "current_period_end": 1_776_000_000,
                "items": {"data": [{"quantity": 2, "price": {"id": "price_1", "unit_amount": 1500, "currency": "eur"}}]}}}})
        };
        let c = json!({"selected_events": ["customer.subscription.*"],
            "field_mappings": {"status": "_SubStatus", "amount": "_SubAmount", "period_end": "_Renews", "customer_id": "_Cus"}});
        env.input = Some(sub("evt_new", 200, "canceled"));
        let out = env.run(&StripeHooks, c.clone(), &ada()).await.unwrap();
        assert_eq!(
            out.changes,
            vec![
                set("_SubAmount", "30.00"),
                set("_Cus", "cus_9"),
                set("_Renews", "2026-04-12"),
                set("_SubStatus", "canceled")
            ]
        );
        env.execution_id = "exec-old".into();
        env.input = Some(sub("evt_old", 100, "active"));
        let out = env.run(&StripeHooks, c, &ada()).await.unwrap();
        assert!(out.success && out.changes.is_empty());
        assert!(out.logs[0].contains("older"));
    }

    #[tokio::test]
    async fn with_an_api_key_the_event_and_customer_come_from_stripe() {
        let mut fetched = invoice_paid("evt_7", 1_773_500_000);
        fetched["data"]["object"]["customer_email"] = Value::Null;
        let mock = MockVendor::start(&[
            ("GET", "/v1/events/evt_7", 200, fetched),
            (
                "GET",
                "/v1/customers/cus_9",
                200,
                json!({"id": "cus_9", "object": "customer", "email": "ada@x.io"}),
            ),
        ])
        .await;
        let mut env = Env::new().vendor("stripe", &mock.base);
        let mut forged = invoice_paid("evt_7", 1_773_500_000);
        forged["data"]["object"]["amount_paid"] = json!(1);
        env.input = Some(forged);
        let c = json!({"selected_events": ["*"], "api_key": "sk_test_1", "field_mappings": {"amount": "_Paid"}});
        let out = env.run(&StripeHooks, c.clone(), &ada()).await.unwrap();
        assert_eq!(out.changes, vec![set("_Paid", "49.99")]);
        let all = mock.received();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].method.as_str(), all[0].path.as_str()),
            ("GET", "/v1/events/evt_7")
        );
        assert_eq!(all[1].path, "/v1/customers/cus_9");
        assert!(
            all.iter()
                .all(|r| r.header("authorization") == Some("Bearer sk_test_1"))
        );
        env.input = Some(invoice_paid("evt_unknown", 1));
        env.execution_id = "e2".into();
        let err = env.run(&StripeHooks, c, &ada()).await.unwrap_err();
        assert!(matches!(
            err,
            StepError::External {
                retryable: false,
                ..
            }
        ));
    }

    #[test]
    fn money_and_patterns() {
        assert_eq!(money(4999, "usd"), "49.99");
        assert_eq!(money(500, "JPY"), "500");
        assert_eq!(money(1234, "kwd"), "1.234");
        assert!(selected(
            &["customer.subscription.*".into()],
            "customer.subscription.deleted"
        ));
        assert!(!selected(
            &["invoice.paid".into()],
            "invoice.payment_failed"
        ));
        assert!(
            valid_pattern("*")
                && valid_pattern("invoice.*")
                && !valid_pattern("invoice..paid")
                && !valid_pattern("*.paid")
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &StripeHooks,
            json!({"selected_events": [], "api_key": "pk_live_1",
            "goal_name": " ", "event_goal_map": {"invoice.*": "g"}, "event_tags": [""],
            "event_tag_map": {"Bad Type": ["1"]}, "field_mappings": {"cents": "_X", "amount": ""},
            "email_field": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "selected_events",
                "api_key",
                "goal_name",
                "event_goal_map",
                "event_tags",
                "event_tag_map",
                "field_mappings.amount",
                "field_mappings.cents",
                "email_field"
            ]
        );
        assert!(
            !config_errors(&StripeHooks, json!({"selected_events": ["Invoice Paid"]})).is_empty()
        );
        assert!(config_errors(&StripeHooks, cfg()).is_empty());
    }
}
