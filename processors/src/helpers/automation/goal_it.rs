//! goal_it: achieves one named API goal for the contact (Keap Campaign Builder's API
//! goal; other CRMs map it to a workflow trigger or a tag, which is the connector's
//! concern). Used to move contacts between campaigns or to start one from another
//! system. An optional `then` list starts other helpers afterwards as follow-up
//! executions (same shape as chain_it steps, delays included). Goals re-fire on every
//! run: not idempotent. Whether a campaign was listening is only known to the CRM.

use super::chain_it::{HelperRun, attach, check_runs, plan};
use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Config of goal_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The goal's call name.
    pub goal_name: String,
    /// The goal's integration name, reported in the output; the connector achieves goals
    /// under its connection's integration name. Default `mfh`.
    #[serde(default = "default_integration")]
    pub integration: String,
    /// Helpers to run after the goal, as follow-up executions.
    #[serde(default)]
    pub then: Vec<HelperRun>,
}

fn default_integration() -> String {
    "mfh".to_owned()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.goal_name.trim().is_empty(),
            "goal_name",
            "is required",
        );
        check(
            &mut errors,
            self.integration.trim().is_empty(),
            "integration",
            "must not be empty",
        );
        check_runs(&mut errors, "then", &self.then);
        finish(errors)
    }
}

/// The goal_it helper.
pub struct GoalIt;

impl Helper for GoalIt {
    const NAME: &'static str = "goal_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Achieves a named API goal for the contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"goal_name": "startOnboarding"}"#;
    const OUTPUTS: &'static [&'static str] = &["goal_name", "integration", "queued_helpers"];
    const REQUIRES: &'static [Capability] = &[Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(GoalItStep(config)))
    }
}

struct GoalItStep(Config);

impl Step for GoalItStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let goal = c.goal_name.trim();
        let out = Outcome::ok(format!("Achieved goal {goal}"))
            .with("goal_name", goal)
            .with("integration", c.integration.trim())
            .change(Change::AchieveGoal {
                call_name: goal.to_owned(),
            });
        let (runs, _) = plan(ctx, contact, &c.then, 0, ctx.input);
        Ok(attach(out, runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, fixed_now, run};
    use serde_json::json;

    #[test]
    fn achieves_the_goal_every_run() {
        let out = run(
            &GoalIt,
            json!({"goal_name": " welcome "}),
            &contact(&[], &[]),
        );
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "welcome".into()
            }]
        );
        assert_eq!(out.output["integration"], "mfh");
        assert!(out.follow_ups.is_empty());
        let again = run(&GoalIt, json!({"goal_name": "welcome"}), &contact(&[], &[]));
        assert_eq!(again.changes, out.changes);
    }

    #[test]
    fn then_runs_become_follow_ups() {
        let cfg = json!({"goal_name": "g", "then": [{"helper": "trigger_it", "config": {"automation_id": "5"}, "delay_seconds": 120}]});
        let out = run(&GoalIt, cfg, &contact(&[], &[]));
        assert_eq!(out.follow_ups.len(), 1);
        assert_eq!(out.follow_ups[0].helper, "trigger_it");
        assert_eq!(
            out.follow_ups[0].at,
            Some(fixed_now() + chrono::Duration::seconds(120))
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&GoalIt, json!({"goal_name": ""}))[0].field,
            "goal_name"
        );
        assert!(!config_errors(&GoalIt, json!({})).is_empty());
        assert_eq!(
            config_errors(
                &GoalIt,
                json!({"goal_name": "g", "integration": " ", "then": [{"helper": "nope"}]})
            )
            .iter()
            .map(|e| e.field.as_str())
            .collect::<Vec<_>>(),
            ["integration", "then[0].helper"]
        );
    }
}
