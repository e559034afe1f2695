//! hook_it_v4: one inbound event fires several API goals, in the listed order, each named
//! `goal_prefix + name + goal_suffix`. The worker achieves them in that order and reports
//! any refused goal in `failed_changes`. With `dedupe_key` (a dotted path to the event id
//! in the webhook payload), a webhook delivered twice for the same contact fires the goals
//! once; without it every execution fires them again (goals re-fire by design).

use super::hook_it_v3::inbound::{self, Delivery};
use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Config of hook_it_v4.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Goal names, fired in this order.
    pub goals: Vec<String>,
    /// Prepended to every goal name.
    #[serde(default)]
    pub goal_prefix: String,
    /// Appended to every goal name.
    #[serde(default)]
    pub goal_suffix: String,
    /// Payload path of the event id used to drop repeated deliveries, e.g. `id`.
    pub dedupe_key: Option<String>,
}

impl Config {
    fn full_names(&self) -> Vec<String> {
        self.goals
            .iter()
            .map(|g| format!("{}{}{}", self.goal_prefix, g.trim(), self.goal_suffix))
            .collect()
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.goals.is_empty(),
            "goals",
            "must list at least one goal",
        );
        for (i, (goal, full)) in self.goals.iter().zip(self.full_names()).enumerate() {
            let field = format!("goals[{i}]");
            check(
                &mut errors,
                goal.trim().is_empty(),
                &field,
                "must not be empty",
            );
            if !goal.trim().is_empty() {
                inbound::check_goal(&mut errors, &field, &full);
            }
        }
        check(
            &mut errors,
            self.dedupe_key
                .as_ref()
                .is_some_and(|k| k.trim().is_empty()),
            "dedupe_key",
            "must not be empty when set",
        );
        finish(errors)
    }
}

/// The hook_it_v4 helper.
pub struct HookItV4;

impl Helper for HookItV4 {
    const NAME: &'static str = "hook_it_v4";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Fires several API goals in order for one inbound event, with an optional prefix and suffix.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"goals": ["purchase", "onboarding"], "goal_prefix": "evt_", "dedupe_key": "id"}"#;
    const OUTPUTS: &'static [&'static str] = &["goals_total", "goals", "event_type", "duplicate"];
    const REQUIRES: &'static [Capability] = &[Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let goals = config.full_names();
        Runnable::Async(Box::new(HookItV4Step {
            goals,
            dedupe_key: config.dedupe_key.map(|k| k.trim().to_owned()),
        }))
    }
}

struct HookItV4Step {
    goals: Vec<String>,
    dedupe_key: Option<String>,
}

#[async_trait::async_trait]
impl AsyncStep for HookItV4Step {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let payload = inbound::payload(ctx);
        let event = payload.and_then(|p| inbound::event_name(p, "event"));
        if let Some(key) = &self.dedupe_key
            && let Delivery::Repeat(id) =
                inbound::delivery(ctx, HookItV4::NAME, contact, payload, key).await?
        {
            return Ok(
                Outcome::ok(format!("Event {id} was already processed; no goals fired"))
                    .with("goals_total", self.goals.len())
                    .with("goals", Vec::<String>::new())
                    .with("event_type", event)
                    .with("duplicate", true),
            );
        }
        let mut out = Outcome::ok(format!("Fired {} goals in order", self.goals.len()));
        for g in &self.goals {
            out = out.change(Change::AchieveGoal {
                call_name: g.clone(),
            });
        }
        Ok(out
            .with("goals_total", self.goals.len())
            .with("goals", self.goals.clone())
            .with("event_type", event)
            .with("duplicate", false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{Env, config_errors, contact};
    use serde_json::json;

    fn goals(names: &[&str]) -> Vec<Change> {
        names
            .iter()
            .map(|n| Change::AchieveGoal {
                call_name: (*n).into(),
            })
            .collect()
    }

    #[tokio::test]
    async fn fires_every_goal_in_order_with_prefix_and_suffix() {
        let env = Env::new();
        let cfg = json!({"goals": ["b", " a ", "c"], "goal_prefix": "p_", "goal_suffix": "_s"});
        let out = env.run(&HookItV4, cfg, &contact(&[], &[])).await.unwrap();
        assert!(out.success);
        assert_eq!(out.changes, goals(&["p_b_s", "p_a_s", "p_c_s"]));
        assert_eq!(out.output["goals_total"], json!(3));
        assert_eq!(out.output["duplicate"], json!(false));
    }

    #[tokio::test]
    async fn without_dedupe_every_execution_fires_again() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        env.input = Some(json!({"id": "evt_1", "event": "sale"}));
        let c = contact(&[], &[]);
        for exec in ["e1", "e2"] {
            env.execution_id = exec.into();
            let out = env
                .run(&HookItV4, json!({"goals": ["g"]}), &c)
                .await
                .unwrap();
            assert_eq!(out.changes, goals(&["g"]));
            assert_eq!(out.output["event_type"], json!("sale"));
        }
    }

    #[tokio::test]
    async fn a_repeated_delivery_fires_nothing_but_a_redelivered_execution_does() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        let cfg = json!({"goals": ["g1", "g2"], "dedupe_key": "id"});
        let c = contact(&[], &[]);
        env.input = Some(json!({"id": "evt_1"}));
        env.execution_id = "e1".into();
        let first = env.run(&HookItV4, cfg.clone(), &c).await.unwrap();
        assert_eq!(first.changes, goals(&["g1", "g2"]));
        let again = env.run(&HookItV4, cfg.clone(), &c).await.unwrap();
        assert_eq!(
            again, first,
            "a redelivered execution reproduces its outcome"
        );
        env.execution_id = "e2".into();
        let dup = env.run(&HookItV4, cfg.clone(), &c).await.unwrap();
        assert!(dup.success && dup.changes.is_empty());
        assert_eq!(dup.output["duplicate"], json!(true));
        env.input = Some(json!({"id": "evt_2"}));
        env.execution_id = "e3".into();
        let next = env.run(&HookItV4, cfg.clone(), &c).await.unwrap();
        assert_eq!(next.changes.len(), 2);
        let mut other = c.clone();
        other.id = "c-2".into();
        env.execution_id = "e4".into();
        let other_contact = env.run(&HookItV4, cfg, &other).await.unwrap();
        assert_eq!(other_contact.changes.len(), 2, "dedupe is per contact");
    }

    #[tokio::test]
    async fn payloads_without_the_id_are_never_deduped() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        let cfg = json!({"goals": ["g"], "dedupe_key": "id"});
        for exec in ["e1", "e2"] {
            env.execution_id = exec.into();
            let out = env
                .run(&HookItV4, cfg.clone(), &contact(&[], &[]))
                .await
                .unwrap();
            assert_eq!(out.changes, goals(&["g"]));
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&HookItV4, json!({"goals": []})).is_empty());
        assert!(!config_errors(&HookItV4, json!({})).is_empty());
        let errs = config_errors(&HookItV4, json!({"goals": ["ok", "", "has space"]}));
        assert_eq!(
            errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            ["goals[1]", "goals[2]"]
        );
        assert!(
            !config_errors(&HookItV4, json!({"goals": ["a"], "goal_prefix": "x y"})).is_empty()
        );
        assert!(!config_errors(&HookItV4, json!({"goals": ["a"], "dedupe_key": " "})).is_empty());
    }
}
