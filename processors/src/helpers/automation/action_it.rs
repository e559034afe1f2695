//! action_it: starts several CRM automations for the contact, in order (Keap campaign
//! sequences, workflows elsewhere), one
//! `Change::TriggerAutomation` per id. Which kind an id names is the connector's concern.
//! The worker applies each trigger separately and records per-item refusals (a paused or
//! unpublished automation) in `failed_changes`, so one failure does not stop the others.
//! Re-running re-enrolls, subject to the CRM's re-entry rules: not idempotent.

use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Config of action_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Automations started in this order: Keap campaign sequences as
    /// `campaign_id/sequence_id`, GoHighLevel workflow ids, ActiveCampaign automation ids.
    pub automation_ids: Vec<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.automation_ids.is_empty(),
            "automation_ids",
            "must list at least one automation id",
        );
        check(
            &mut errors,
            self.automation_ids.iter().any(|a| a.trim().is_empty()),
            "automation_ids",
            "ids must not be empty",
        );
        let mut seen = std::collections::BTreeSet::new();
        check(
            &mut errors,
            !self.automation_ids.iter().all(|a| seen.insert(a.trim())),
            "automation_ids",
            "lists an id twice",
        );
        finish(errors)
    }
}

/// The action_it helper.
pub struct ActionIt;

impl Helper for ActionIt {
    const NAME: &'static str = "action_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Starts one or more CRM automations or action sets for the contact, in order.";
    const EXAMPLE_CONFIG: &'static str = r#"{"automation_ids": ["12", "34"]}"#;
    const OUTPUTS: &'static [&'static str] = &["triggered", "count"];
    const REQUIRES: &'static [Capability] = &[Capability::Automations];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(ActionItStep(
            config
                .automation_ids
                .iter()
                .map(|a| a.trim().to_owned())
                .collect(),
        )))
    }
}

struct ActionItStep(Vec<String>);

impl Step for ActionItStep {
    fn run(&self, _ctx: &Ctx<'_>, _contact: &Contact) -> Result<Outcome, StepError> {
        let out = Outcome::ok(format!("Triggered {} automations", self.0.len()))
            .with("triggered", self.0.clone())
            .with("count", self.0.len());
        Ok(self.0.iter().fold(out, |o, id| {
            o.change(Change::TriggerAutomation {
                automation_id: id.clone(),
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    #[test]
    fn triggers_each_automation_in_order() {
        let out = run(
            &ActionIt,
            json!({"automation_ids": ["12", " 34 "]}),
            &contact(&[], &[]),
        );
        assert_eq!(
            out.changes,
            vec![
                Change::TriggerAutomation {
                    automation_id: "12".into()
                },
                Change::TriggerAutomation {
                    automation_id: "34".into()
                }
            ]
        );
        assert_eq!(out.output["triggered"], json!(["12", "34"]));
        assert_eq!(out.output["count"], 2);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&ActionIt, json!({"automation_ids": []}))[0].field,
            "automation_ids"
        );
        assert!(!config_errors(&ActionIt, json!({"automation_ids": ["1", ""]})).is_empty());
        assert!(!config_errors(&ActionIt, json!({"automation_ids": ["1", " 1"]})).is_empty());
        assert!(
            !config_errors(&ActionIt, json!({"automation_ids": ["1"], "kind": "x"})).is_empty()
        );
    }
}
