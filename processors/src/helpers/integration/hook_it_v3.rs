//! hook_it_v3: maps an inbound webhook payload (the execution's `ctx.input`) onto contact
//! fields. Each `field_mappings` entry reads a nested path such as `order.total` or
//! `items.0.sku` (a numeric segment indexes an array) and writes the value to a contact
//! field; a key that literally contains the separator (`{"order.total": 5}`) is found
//! too. Null or empty values are skipped by default, or clear the field with
//! `skip_null_values: false`; paths absent from the payload are never written. Unlike the
//! rebuild, a missing payload is a failure, not a lookup in the config. Idempotent.
//!
//! The [`inbound`] module here is the shared reading side of the inbound Hook It family
//! (hook_it_by_tag, hook_it_v2, hook_it_v3, hook_it_v4).

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Config of hook_it_v3.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Payload path → contact field key, e.g. `{"order.total": "_LastOrderTotal"}`.
    pub field_mappings: BTreeMap<String, String>,
    /// Separator of path segments; default `.`.
    #[serde(default = "default_separator")]
    pub nested_separator: String,
    /// Skip null and empty values instead of clearing the field; default true.
    #[serde(default = "default_true")]
    pub skip_null_values: bool,
}

fn default_separator() -> String {
    ".".into()
}
impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.field_mappings.is_empty(),
            "field_mappings",
            "must map at least one payload path",
        );
        let mut targets: Vec<&str> = Vec::new();
        for (path, field) in &self.field_mappings {
            let name = format!("field_mappings.{path}");
            check(
                &mut errors,
                path.trim().is_empty(),
                "field_mappings",
                "payload paths must not be empty",
            );
            check(
                &mut errors,
                field.trim().is_empty(),
                &name,
                "needs a field key",
            );
            check(
                &mut errors,
                targets.contains(&field.trim()),
                &name,
                "writes a field another path already writes",
            );
            targets.push(field.trim());
        }
        check(
            &mut errors,
            self.nested_separator.is_empty(),
            "nested_separator",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The hook_it_v3 helper.
pub struct HookItV3;

impl Helper for HookItV3 {
    const NAME: &'static str = "hook_it_v3";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str =
        "Copies values from an inbound webhook payload, by nested path, into contact fields.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"field_mappings": {"order.total": "_LastOrderTotal", "items.0.sku": "_LastSku"}}"#;
    const OUTPUTS: &'static [&'static str] = &["fields_updated", "fields_attempted", "skipped"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(HookItV3Step { config }))
    }
}

struct HookItV3Step {
    config: Config,
}

#[async_trait::async_trait]
impl AsyncStep for HookItV3Step {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let attempted = self.config.field_mappings.len();
        let Some(payload) = inbound::payload(ctx) else {
            return Ok(Outcome::failed("No webhook payload to map")
                .with("fields_updated", 0)
                .with("fields_attempted", attempted)
                .with("skipped", Vec::<String>::new()));
        };
        let sep = &self.config.nested_separator;
        let mut out = Outcome::ok("");
        let mut skipped = Vec::new();
        for (path, field) in &self.config.field_mappings {
            let field = field.trim();
            match inbound::lookup(payload, path, sep).map(inbound::text) {
                None => {
                    skipped.push(path.clone());
                    out = out.log(format!("{path}: not in the payload"));
                }
                Some(Some(value)) => out = out.set_field(contact, field, value),
                Some(None) if self.config.skip_null_values => {
                    skipped.push(path.clone());
                    out = out.log(format!("{path}: empty, skipped"));
                }
                Some(None) => {
                    if contact.fields.contains_key(field) {
                        out = out.change(Change::SetField {
                            field: field.to_owned(),
                            value: None,
                        });
                    }
                }
            }
        }
        let updated = out.changes.len();
        out.message = format!("Updated {updated} of {attempted} mapped fields");
        Ok(out
            .with("fields_updated", updated)
            .with("fields_attempted", attempted)
            .with("skipped", skipped))
    }
}

/// Reading the inbound event that triggered an execution, for the Hook It family: the
/// payload, nested paths, the event name, goal names and duplicate-delivery detection.
pub(crate) mod inbound {
    use crate::helpers::{Contact, Ctx, FieldError, StepError, check};
    use serde_json::Value;

    /// Where the event name is read from when the config does not say.
    pub(crate) fn default_event_field() -> String {
        "event".into()
    }

    /// The payload field tried when `event_field` is absent (the catalog's fallback).
    const FALLBACK_EVENT_FIELD: &str = "hook_action";

    /// How long a seen event id is remembered.
    const SEEN_DAYS: i64 = 30;

    /// The webhook payload, unless there is none.
    pub(crate) fn payload<'a>(ctx: &Ctx<'a>) -> Option<&'a Value> {
        ctx.input.filter(|v| !v.is_null())
    }

    /// The value at `path`: a literal key first, then the segments split by `sep`, where
    /// a numeric segment indexes an array.
    pub(crate) fn lookup<'v>(root: &'v Value, path: &str, sep: &str) -> Option<&'v Value> {
        if path.is_empty() || sep.is_empty() {
            return None;
        }
        if let Some(v) = root.as_object().and_then(|m| m.get(path)) {
            return Some(v);
        }
        path.split(sep).try_fold(root, |v, seg| match v {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }

    /// A value as field text: strings trimmed, numbers and booleans printed, arrays of
    /// scalars joined with ", ", other arrays and objects as compact JSON. Null and empty
    /// values are `None`.
    pub(crate) fn text(v: &Value) -> Option<String> {
        let s = match v {
            Value::Null => return None,
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => {
                items.iter().filter_map(text).collect::<Vec<_>>().join(", ")
            }
            other => other.to_string(),
        };
        (!s.is_empty()).then_some(s)
    }

    /// The event name: `field` (a dotted path) in the payload, else `hook_action`.
    pub(crate) fn event_name(payload: &Value, field: &str) -> Option<String> {
        lookup(payload, field, ".")
            .and_then(text)
            .or_else(|| lookup(payload, FALLBACK_EVENT_FIELD, ".").and_then(text))
    }

    /// Checks a goal call name: not empty and without whitespace.
    pub(crate) fn check_goal(errors: &mut Vec<FieldError>, field: &str, name: &str) {
        check(errors, name.trim().is_empty(), field, "must not be empty");
        check(
            errors,
            !name.trim().is_empty() && name.chars().any(char::is_whitespace),
            field,
            "must not contain whitespace",
        );
    }

    /// Whether a delivery repeats one already processed for this contact.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Delivery {
        /// The payload has no id at the configured path; nothing can be compared.
        Unidentified,
        /// The first delivery of this event id (or a redelivery of the same execution).
        First(String),
        /// Another execution already processed this event id.
        Repeat(String),
    }

    /// Remembers the event id at `key_path` for this helper instance and contact, so a
    /// webhook the sender delivers twice (two executions) is processed once. A redelivered
    /// execution counts as the first, so it reproduces its outcome.
    ///
    /// # Errors
    /// A state error.
    pub(crate) async fn delivery(
        ctx: &Ctx<'_>,
        helper: &str,
        contact: &Contact,
        payload: Option<&Value>,
        key_path: &str,
    ) -> Result<Delivery, StepError> {
        let Some(id) = payload
            .and_then(|p| lookup(p, key_path, "."))
            .and_then(text)
        else {
            return Ok(Delivery::Unidentified);
        };
        let digest = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(id.as_bytes())[..12])
        };
        let key = format!("{helper}/{}/{}/seen/{digest}", ctx.instance, contact.id);
        let expires = Some(ctx.now + chrono::Duration::days(SEEN_DAYS));
        let mark = serde_json::json!({"execution_id": ctx.execution_id});
        let (stored, created) = ctx.state.put_if_absent(&key, mark, expires).await?;
        if created || stored["execution_id"] == ctx.execution_id {
            Ok(Delivery::First(id))
        } else {
            Ok(Delivery::Repeat(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::{Value, json};

    async fn run_with(input: Option<Value>, cfg: Value, c: &Contact) -> Outcome {
        let mut env = Env::new();
        env.input = input;
        env.run(&HookItV3, cfg, c).await.unwrap()
    }

    #[tokio::test]
    async fn maps_nested_paths_and_array_indexes() {
        let payload = json!({"order": {"total": 49.5, "paid": true},
            "items": [{"sku": "A-1"}, {"sku": "B-2"}], "customer": {"tags": ["vip", "new"]}});
        let cfg = json!({"field_mappings": {"order.total": "_Total", "items.1.sku": "_Sku",
            "order.paid": "_Paid", "customer.tags": "_Tags"}});
        let out = run_with(Some(payload), cfg, &contact(&[], &[])).await;
        assert!(out.success);
        assert_eq!(
            out.changes,
            vec![
                set("_Tags", "vip, new"),
                set("_Sku", "B-2"),
                set("_Paid", "true"),
                set("_Total", "49.5"),
            ]
        );
        assert_eq!(out.output["fields_updated"], json!(4));
    }

    #[tokio::test]
    async fn skips_nulls_and_missing_paths_and_unchanged_values() {
        let payload = json!({"a": null, "b": "  ", "c": "same", "d": "new"});
        let cfg =
            json!({"field_mappings": {"a": "fa", "b": "fb", "c": "fc", "d": "fd", "zz.q": "fz"}});
        let out = run_with(
            Some(payload),
            cfg,
            &contact(&[("fa", "keep"), ("fc", "same")], &[]),
        )
        .await;
        assert_eq!(out.changes, vec![set("fd", "new")]);
        assert_eq!(out.output["skipped"], json!(["a", "b", "zz.q"]));
        assert_eq!(out.output["fields_attempted"], json!(5));
    }

    #[tokio::test]
    async fn nulls_clear_fields_when_not_skipped() {
        let cfg = json!({"field_mappings": {"a": "fa", "b": "fb"}, "skip_null_values": false});
        let out = run_with(
            Some(json!({"a": null, "b": ""})),
            cfg,
            &contact(&[("fa", "old")], &[]),
        )
        .await;
        assert_eq!(
            out.changes,
            vec![Change::SetField {
                field: "fa".into(),
                value: None
            }]
        );
    }

    #[tokio::test]
    async fn custom_separator_and_literal_dotted_keys() {
        let cfg =
            json!({"field_mappings": {"order/total": "t", "x.y": "xy"}, "nested_separator": "/"});
        let out = run_with(
            Some(json!({"order": {"total": 3}, "x.y": "flat"})),
            cfg,
            &contact(&[], &[]),
        )
        .await;
        assert_eq!(out.changes, vec![set("t", "3"), set("xy", "flat")]);
    }

    #[tokio::test]
    async fn no_payload_fails_without_reading_the_config() {
        let cfg = json!({"field_mappings": {"field_mappings": "x"}});
        let out = run_with(None, cfg.clone(), &contact(&[], &[])).await;
        assert!(!out.success && out.changes.is_empty());
        let out = run_with(Some(Value::Null), cfg, &contact(&[], &[])).await;
        assert!(!out.success);
    }

    #[test]
    fn lookup_and_text_edge_cases() {
        let v = json!({"a": [1, {"b": [true]}], "o": {"k": 1}});
        assert_eq!(inbound::lookup(&v, "a.1.b.0", "."), Some(&json!(true)));
        assert_eq!(inbound::lookup(&v, "a.9", "."), None);
        assert_eq!(inbound::lookup(&v, "a.x", "."), None);
        assert_eq!(inbound::lookup(&v, "", "."), None);
        assert_eq!(inbound::text(&json!({"k": 1})), Some("{\"k\":1}".into()));
        assert_eq!(inbound::text(&json!([])), None);
        assert_eq!(
            inbound::event_name(&json!({"hook_action": "invoice.add"}), "event"),
            Some("invoice.add".into())
        );
        assert_eq!(
            inbound::event_name(&json!({"data": {"type": "x"}}), "data.type"),
            Some("x".into())
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&HookItV3, json!({"field_mappings": {}})).is_empty());
        assert!(!config_errors(&HookItV3, json!({})).is_empty());
        let errs = config_errors(
            &HookItV3,
            json!({"field_mappings": {"a": "f", "b": "f", "c": " "}, "nested_separator": ""}),
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs.iter().any(|e| e.field == "nested_separator"));
        assert!(errs.iter().any(|e| e.field == "field_mappings.b"));
    }
}
