//! drip_it: walks each contact through an ordered list of automations, one step per
//! run: run k triggers `steps[k-1]`. The step counter lives in platform state per
//! (instance, contact) and advances once per execution, so a redelivered or retried
//! execution (e.g. after the trigger failed) runs the same step again instead of
//! skipping it. After the last step it fires `completed_goal` / `completed_tag`; later
//! runs do nothing, unless `loop` starts over at step 1. `state_field` optionally mirrors
//! the step number on the contact. Editing `steps` makes a new instance, so counters
//! start over. Not idempotent by design.

use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// Config of drip_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Automation ids, in order.
    pub steps: Vec<String>,
    /// Field that receives the number of the step just run.
    pub state_field: Option<String>,
    /// Goal achieved after the last step.
    pub completed_goal: Option<String>,
    /// Tag applied after the last step.
    pub completed_tag: Option<String>,
    /// Start over at step 1 after the last; default false.
    #[serde(default, rename = "loop")]
    pub repeat: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.steps.is_empty(),
            "steps",
            "must list at least one automation id",
        );
        check(
            &mut errors,
            self.steps.iter().any(|s| s.trim().is_empty()),
            "steps",
            "automation ids must not be empty",
        );
        for (field, v) in [
            ("state_field", &self.state_field),
            ("completed_goal", &self.completed_goal),
            ("completed_tag", &self.completed_tag),
        ] {
            check(
                &mut errors,
                v.as_ref().is_some_and(|s| s.trim().is_empty()),
                field,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The drip_it helper.
pub struct DripIt;

impl Helper for DripIt {
    const NAME: &'static str = "drip_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Triggers the contact's next automation from an ordered list, one step per run.";
    const EXAMPLE_CONFIG: &'static str = r#"{"steps": ["101", "102", "103"], "state_field": "_DripStep", "completed_goal": "dripDone"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "step_executed",
        "automation_id",
        "next_step",
        "total_steps",
        "complete",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Automations];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(DripItStep(config)))
    }
}

struct DripItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for DripItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let total = c.steps.len();
        let key = format!("drip_it/{}/{}", ctx.instance, contact.id);
        let runs = ctx.state.incr(&key, 1, ctx.execution_id, None).await?;
        let mut index = usize::try_from(runs - 1).unwrap_or(0);
        if c.repeat {
            index %= total;
        }
        let Some(id) = c.steps.get(index).map(|s| s.trim()) else {
            return Ok(Outcome::ok("Drip already complete; nothing to trigger")
                .with("step_executed", Value::Null)
                .with("next_step", Value::Null)
                .with("total_steps", total)
                .with("complete", true));
        };
        let last = index + 1 == total;
        let next = match (last, c.repeat) {
            (false, _) => Value::from(index + 2),
            (true, true) => Value::from(1),
            (true, false) => Value::Null,
        };
        let complete = last && !c.repeat;
        let mut out = Outcome::ok(format!(
            "Ran step {} of {total}: automation {id}",
            index + 1
        ))
        .with("step_executed", index + 1)
        .with("automation_id", id)
        .with("next_step", next)
        .with("total_steps", total)
        .with("complete", complete)
        .change(Change::TriggerAutomation {
            automation_id: id.to_owned(),
        });
        if let Some(f) = c.state_field.as_deref() {
            out = out.set_field(contact, f.trim(), (index + 1).to_string());
        }
        if last {
            out = out.branch(
                contact,
                c.completed_tag.as_deref(),
                c.completed_goal.as_deref(),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact, set};
    use serde_json::json;

    fn trigger(id: &str) -> Change {
        Change::TriggerAutomation {
            automation_id: id.into(),
        }
    }

    async fn runs(env: &mut Env, cfg: &Value, n: usize) -> Vec<Outcome> {
        let mut outs = Vec::new();
        for i in 0..n {
            env.execution_id = format!("exec-{i}");
            outs.push(
                env.run(&DripIt, cfg.clone(), &contact(&[], &[]))
                    .await
                    .unwrap(),
            );
        }
        outs
    }

    #[tokio::test]
    async fn one_step_per_run_then_completion_once() {
        let cfg = json!({"steps": ["a", "b", "c"], "state_field": "_Step", "completed_goal": "done", "completed_tag": "9"});
        let mut env = Env::new();
        let outs = runs(&mut env, &cfg, 4).await;
        assert_eq!(outs[0].changes, vec![trigger("a"), set("_Step", "1")]);
        assert_eq!(outs[1].output["next_step"], 3);
        assert_eq!(
            outs[2].changes,
            vec![
                trigger("c"),
                set("_Step", "3"),
                Change::ApplyTag { tag_id: "9".into() },
                Change::AchieveGoal {
                    call_name: "done".into()
                }
            ]
        );
        assert_eq!(outs[2].output["complete"], true);
        assert!(outs[3].changes.is_empty() && outs[3].success);
        assert_eq!(outs[3].output["step_executed"], Value::Null);
    }

    #[tokio::test]
    async fn a_redelivered_execution_runs_the_same_step() {
        let cfg = json!({"steps": ["a", "b"]});
        let mut env = Env::new();
        runs(&mut env, &cfg, 1).await;
        let again = env
            .run(&DripIt, cfg.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(again.changes, vec![trigger("a")]);
        env.execution_id = "new".into();
        let next = env.run(&DripIt, cfg, &contact(&[], &[])).await.unwrap();
        assert_eq!(next.changes, vec![trigger("b")]);
    }

    #[tokio::test]
    async fn loop_starts_over_and_contacts_have_their_own_counters() {
        let cfg = json!({"steps": ["a", "b"], "loop": true});
        let mut env = Env::new();
        let outs = runs(&mut env, &cfg, 3).await;
        assert_eq!(outs[1].output["next_step"], 1);
        assert_eq!(outs[1].output["complete"], false);
        assert_eq!(outs[2].changes, vec![trigger("a")]);
        let mut other = contact(&[], &[]);
        other.id = "c-2".into();
        let first = env.run(&DripIt, cfg, &other).await.unwrap();
        assert_eq!(first.output["step_executed"], 1);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert_eq!(
            config_errors(&DripIt, json!({"steps": []}))[0].field,
            "steps"
        );
        assert!(!config_errors(&DripIt, json!({"steps": ["a", " "]})).is_empty());
        assert_eq!(
            config_errors(&DripIt, json!({"steps": ["a"], "completed_goal": ""}))[0].field,
            "completed_goal"
        );
        assert!(!config_errors(&DripIt, json!({"steps": ["a"], "repeat": true})).is_empty());
    }
}
