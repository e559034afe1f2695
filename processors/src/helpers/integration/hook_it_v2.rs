//! hook_it_v2: routes an inbound webhook by its event type to a tag. The event name is
//! read from the payload (`event_field`, a dotted path, default `event`, falling back to
//! `hook_action`) and the tag mapped to it in `event_tag_map` is applied, or
//! `default_tag_id` for an unmapped or missing event. An unmapped event without a default
//! is a successful no-op. Event names match exactly. Contact resolution (by id or email
//! in the payload) happens before the helper runs. Idempotent: a tag the contact already
//! has is not applied again.

use super::hook_it_v3::inbound;
use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Config of hook_it_v2.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Event name → tag id, e.g. `{"order.created": "101", "order.refunded": "102"}`.
    pub event_tag_map: BTreeMap<String, String>,
    /// Payload path of the event name; default `event`.
    #[serde(default = "inbound::default_event_field")]
    pub event_field: String,
    /// Tag for events the map does not list.
    pub default_tag_id: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.event_tag_map.is_empty(),
            "event_tag_map",
            "must map at least one event",
        );
        for (event, tag) in &self.event_tag_map {
            check(
                &mut errors,
                event.trim().is_empty(),
                "event_tag_map",
                "event names must not be empty",
            );
            check(
                &mut errors,
                tag.trim().is_empty(),
                &format!("event_tag_map.{event}"),
                "needs a tag id",
            );
        }
        check(
            &mut errors,
            self.event_field.trim().is_empty(),
            "event_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.default_tag_id
                .as_ref()
                .is_some_and(|t| t.trim().is_empty()),
            "default_tag_id",
            "must not be empty when set",
        );
        finish(errors)
    }
}

/// The hook_it_v2 helper.
pub struct HookItV2;

impl Helper for HookItV2 {
    const NAME: &'static str = "hook_it_v2";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Applies the tag mapped to an inbound webhook's event type, or a default tag.";
    const EXAMPLE_CONFIG: &'static str = r#"{"event_tag_map": {"order.created": "101", "order.refunded": "102"}, "default_tag_id": "100"}"#;
    const OUTPUTS: &'static [&'static str] = &["event_type", "tag_id", "tag_applied"];
    const REQUIRES: &'static [Capability] = &[Capability::Tags];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(HookItV2Step { config }))
    }
}

struct HookItV2Step {
    config: Config,
}

#[async_trait::async_trait]
impl AsyncStep for HookItV2Step {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let Some(payload) = inbound::payload(ctx) else {
            return Ok(Outcome::failed("No webhook payload to read the event from")
                .with("event_type", serde_json::Value::Null)
                .with("tag_id", serde_json::Value::Null)
                .with("tag_applied", false));
        };
        let event = inbound::event_name(payload, &self.config.event_field);
        let tag = event
            .as_deref()
            .and_then(|e| self.config.event_tag_map.get(e))
            .or(self.config.default_tag_id.as_ref())
            .map(|t| t.trim().to_owned());
        let shown = event.as_deref().unwrap_or("(none)");
        let out = match &tag {
            None => Outcome::ok(format!("Event {shown} has no tag; nothing to do")),
            Some(t) if contact.has_tag(t) => {
                Outcome::ok(format!("Event {shown}: contact already has tag {t}"))
            }
            Some(t) => Outcome::ok(format!("Event {shown}: applied tag {t}")).branch(
                contact,
                Some(t),
                None,
            ),
        };
        let applied = !out.changes.is_empty();
        Ok(out
            .with("event_type", event)
            .with("tag_id", tag)
            .with("tag_applied", applied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact};
    use serde_json::{Value, json};

    async fn run_with(input: Option<Value>, cfg: Value, c: &Contact) -> Outcome {
        let mut env = Env::new();
        env.input = input;
        env.run(&HookItV2, cfg, c).await.unwrap()
    }

    fn cfg() -> Value {
        json!({"event_tag_map": {"order.created": "101", "order.refunded": "102"}})
    }

    fn applied(tag: &str) -> Vec<Change> {
        vec![Change::ApplyTag { tag_id: tag.into() }]
    }

    #[tokio::test]
    async fn applies_the_mapped_tag() {
        let out = run_with(
            Some(json!({"event": "order.refunded"})),
            cfg(),
            &contact(&[], &[]),
        )
        .await;
        assert!(out.success);
        assert_eq!(out.changes, applied("102"));
        assert_eq!(out.output["event_type"], json!("order.refunded"));
        assert_eq!(out.output["tag_applied"], json!(true));
    }

    #[tokio::test]
    async fn reads_a_nested_event_field_and_the_hook_action_fallback() {
        let mut c = cfg();
        c["event_field"] = json!("data.type");
        let out = run_with(
            Some(json!({"data": {"type": "order.created"}})),
            c,
            &contact(&[], &[]),
        )
        .await;
        assert_eq!(out.changes, applied("101"));
        let out = run_with(
            Some(json!({"hook_action": "order.created"})),
            cfg(),
            &contact(&[], &[]),
        )
        .await;
        assert_eq!(out.changes, applied("101"));
    }

    #[tokio::test]
    async fn unknown_events_use_the_default_or_do_nothing() {
        let out = run_with(Some(json!({"event": "x"})), cfg(), &contact(&[], &[])).await;
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["tag_id"], Value::Null);
        let mut c = cfg();
        c["default_tag_id"] = json!("100");
        let out = run_with(Some(json!({"other": 1})), c, &contact(&[], &[])).await;
        assert_eq!(out.changes, applied("100"));
        assert_eq!(out.output["event_type"], Value::Null);
    }

    #[tokio::test]
    async fn an_existing_tag_is_not_reapplied_and_no_payload_fails() {
        let out = run_with(
            Some(json!({"event": "order.created"})),
            cfg(),
            &contact(&[], &["101"]),
        )
        .await;
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["tag_applied"], json!(false));
        let out = run_with(None, cfg(), &contact(&[], &[])).await;
        assert!(!out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&HookItV2, json!({"event_tag_map": {}})).is_empty());
        assert!(!config_errors(&HookItV2, json!({})).is_empty());
        let errs = config_errors(
            &HookItV2,
            json!({"event_tag_map": {"a": " "}, "event_field": "", "default_tag_id": ""}),
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs.iter().any(|e| e.field == "event_tag_map.a"));
    }
}
