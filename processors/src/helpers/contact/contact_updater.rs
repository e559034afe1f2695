//! contact_updater: sets several fields to configured values in one update. A value may
//! hold `{{field}}` merge templates (rendered by the shared template engine against the
//! snapshot, so values read the fields as they were before this update). A template that
//! renders empty is skipped rather than blanking the field; a literal `""` clears it. Values
//! equal to the current ones are not rewritten, so the helper is idempotent. The legacy
//! option `secondary_contact_ids` achieves a goal (`goal_call_name`, default
//! `contact_updated`) on each listed other contact.

use crate::connectors::Capability;
use crate::helpers::template::render;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Config of contact_updater.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Field key → value or `{{field}}` template.
    pub fields: BTreeMap<String, String>,
    /// Other contacts on which the goal is achieved.
    #[serde(default)]
    pub secondary_contact_ids: Vec<String>,
    /// The goal achieved on the secondary contacts; default `contact_updated`.
    pub goal_call_name: Option<String>,
}

/// The goal the rebuild fired on secondary contacts.
const DEFAULT_GOAL: &str = "contact_updated";

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.fields.is_empty(),
            "fields",
            "must set at least one field",
        );
        check(
            &mut errors,
            self.fields.keys().any(|k| k.trim().is_empty()),
            "fields",
            "field keys must not be empty",
        );
        check(
            &mut errors,
            self.secondary_contact_ids
                .iter()
                .any(|id| id.trim().is_empty()),
            "secondary_contact_ids",
            "contact ids must not be empty",
        );
        check(
            &mut errors,
            self.goal_call_name
                .as_deref()
                .is_some_and(|g| g.trim().is_empty()),
            "goal_call_name",
            "must not be empty",
        );
        check(
            &mut errors,
            self.goal_call_name.is_some() && self.secondary_contact_ids.is_empty(),
            "goal_call_name",
            "is only used with secondary_contact_ids",
        );
        finish(errors)
    }
}

/// The contact_updater helper.
pub struct ContactUpdater;

impl Helper for ContactUpdater {
    const NAME: &'static str = "contact_updater";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Sets several fields to literal or templated values in one update.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"fields": {"_Status": "Customer", "_Source": "{{lead_source}}"}}"#;
    const OUTPUTS: &'static [&'static str] = &["updated", "skipped"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(ContactUpdaterStep(config)))
    }
}

struct ContactUpdaterStep(Config);

impl Step for ContactUpdaterStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let mut out = Outcome::ok("");
        let mut updated = Map::new();
        let mut skipped = Vec::new();
        for (key, raw) in &c.fields {
            let key = key.trim();
            if raw.contains("{{") {
                let value = render(raw, contact);
                if value.trim().is_empty() {
                    skipped.push(key.to_owned());
                    out = out.log(format!("Skipped {key}: its template rendered empty."));
                    continue;
                }
                updated.insert(key.to_owned(), Value::from(value.clone()));
                out = out.set_field(contact, key, value);
            } else if raw.is_empty() {
                updated.insert(key.to_owned(), Value::from(""));
                if contact.fields.get(key).is_some_and(|v| !v.is_empty()) {
                    out = out.change(Change::SetField {
                        field: key.to_owned(),
                        value: None,
                    });
                }
            } else {
                updated.insert(key.to_owned(), Value::from(raw.clone()));
                out = out.set_field(contact, key, raw.clone());
            }
        }
        let goal = c.goal_call_name.as_deref().unwrap_or(DEFAULT_GOAL).trim();
        for id in &c.secondary_contact_ids {
            out = out.change(Change::ForContact {
                contact_id: id.trim().to_owned(),
                change: Box::new(Change::AchieveGoal {
                    call_name: goal.to_owned(),
                }),
            });
        }
        out.message = format!(
            "Set {} fields, skipped {}; goal on {} other contacts",
            updated.len(),
            skipped.len(),
            c.secondary_contact_ids.len()
        );
        Ok(out
            .with("updated", Value::Object(updated))
            .with("skipped", skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    #[test]
    fn sets_literals_and_templates() {
        let cfg = json!({"fields": {"_Status": "Customer", "_Greeting": "Hi {{first_name}} of {{company}}"}});
        let out = run(
            &ContactUpdater,
            cfg,
            &contact(&[("first_name", "Ada"), ("company", "Acme")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![
                set("_Greeting", "Hi Ada of Acme"),
                set("_Status", "Customer")
            ]
        );
        assert_eq!(
            out.output["updated"],
            json!({"_Greeting": "Hi Ada of Acme", "_Status": "Customer"})
        );
    }

    #[test]
    fn templates_read_the_snapshot_and_empty_renders_are_skipped() {
        let cfg = json!({"fields": {"a": "{{b}}", "b": "new", "c": "{{missing}}"}});
        let out = run(
            &ContactUpdater,
            cfg,
            &contact(&[("b", "old"), ("c", "keep")], &[]),
        );
        assert_eq!(out.changes, vec![set("a", "old"), set("b", "new")]);
        assert_eq!(out.output["skipped"], json!(["c"]));
    }

    #[test]
    fn a_literal_empty_value_clears_the_field() {
        let out = run(
            &ContactUpdater,
            json!({"fields": {"x": "", "y": ""}}),
            &contact(&[("x", "v")], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::SetField {
                field: "x".into(),
                value: None
            }]
        );
    }

    #[test]
    fn rerun_changes_nothing() {
        let out = run(
            &ContactUpdater,
            json!({"fields": {"s": "Customer"}}),
            &contact(&[("s", "Customer")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn secondary_contacts_get_the_goal() {
        let cfg = json!({"fields": {"s": "x"}, "secondary_contact_ids": ["7", "8"]});
        let out = run(&ContactUpdater, cfg, &contact(&[], &[]));
        let goal = |id: &str, g: &str| Change::ForContact {
            contact_id: id.into(),
            change: Box::new(Change::AchieveGoal {
                call_name: g.into(),
            }),
        };
        assert_eq!(
            out.changes,
            vec![
                set("s", "x"),
                goal("7", "contact_updated"),
                goal("8", "contact_updated")
            ]
        );
        let named = json!({"fields": {"s": "x"}, "secondary_contact_ids": ["7"], "goal_call_name": "spouseUpdated"});
        let out = run(&ContactUpdater, named, &contact(&[("s", "x")], &[]));
        assert_eq!(out.changes, vec![goal("7", "spouseUpdated")]);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&ContactUpdater, json!({"fields": {}})).is_empty());
        assert!(!config_errors(&ContactUpdater, json!({})).is_empty());
        let errs = config_errors(
            &ContactUpdater,
            json!({"fields": {" ": "x"}, "secondary_contact_ids": [""], "goal_call_name": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["fields", "secondary_contact_ids", "goal_call_name"]
        );
        assert_eq!(
            config_errors(
                &ContactUpdater,
                json!({"fields": {"a": "b"}, "goal_call_name": "g"})
            )[0]
            .field,
            "goal_call_name"
        );
    }
}
