//! trigger_it: starts one CRM automation (Keap campaign sequence or action set, GHL
//! workflow, ...) for the contact: the one-item case of action_it. An optional `then`
//! list starts other helpers afterwards as follow-up executions, as in goal_it.
//! Re-running re-enrolls, subject to the CRM's own re-entry rules: not idempotent.

use super::chain_it::{HelperRun, attach, check_runs, plan};
use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Config of trigger_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The automation to start: a Keap campaign sequence as `campaign_id/sequence_id`,
    /// a GoHighLevel workflow id, an ActiveCampaign automation id.
    pub automation_id: String,
    /// Helpers to run afterwards, as follow-up executions.
    #[serde(default)]
    pub then: Vec<HelperRun>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.automation_id.trim().is_empty(),
            "automation_id",
            "is required",
        );
        check_runs(&mut errors, "then", &self.then);
        finish(errors)
    }
}

/// The trigger_it helper.
pub struct TriggerIt;

impl Helper for TriggerIt {
    const NAME: &'static str = "trigger_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Starts one CRM automation, campaign or workflow for the contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"automation_id": "42"}"#;
    const OUTPUTS: &'static [&'static str] = &["automation_id", "queued_helpers"];
    const REQUIRES: &'static [Capability] = &[Capability::Automations];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(TriggerItStep(config)))
    }
}

struct TriggerItStep(Config);

impl Step for TriggerItStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let id = self.0.automation_id.trim();
        let out = Outcome::ok(format!("Triggered automation {id}"))
            .with("automation_id", id)
            .change(Change::TriggerAutomation {
                automation_id: id.to_owned(),
            });
        let (runs, _) = plan(ctx, contact, &self.0.then, 0, ctx.input);
        Ok(attach(out, runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    #[test]
    fn triggers_the_automation() {
        let out = run(
            &TriggerIt,
            json!({"automation_id": " 42 "}),
            &contact(&[], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::TriggerAutomation {
                automation_id: "42".into()
            }]
        );
        assert_eq!(out.output["automation_id"], "42");
        assert!(out.follow_ups.is_empty());
    }

    #[test]
    fn then_runs_follow_at_once_unless_their_condition_fails() {
        let cfg = json!({"automation_id": "1", "then": [
            {"helper": "goal_it", "config": {"goal_name": "a"}},
            {"helper": "goal_it", "config": {"goal_name": "b"}, "condition": {"field": "vip", "op": "exists"}}
        ]});
        let out = run(&TriggerIt, cfg, &contact(&[], &[]));
        assert_eq!(out.follow_ups.len(), 1);
        assert_eq!(out.follow_ups[0].config, json!({"goal_name": "a"}));
        assert_eq!(out.follow_ups[0].at, None);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&TriggerIt, json!({"automation_id": " "}))[0].field,
            "automation_id"
        );
        assert!(!config_errors(&TriggerIt, json!({})).is_empty());
        assert_eq!(
            config_errors(
                &TriggerIt,
                json!({"automation_id": "1", "then": [{"helper": "trigger_it", "config": {}}]})
            )[0]
            .field,
            "then[0].config"
        );
    }
}
