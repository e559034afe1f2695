//! chain_it: runs other helpers on the same contact, in order. Each step names a helper
//! and its config (checked against the registry when the chain is saved) and becomes one
//! follow-up execution: the pipeline starts it one chain level deeper and enforces the
//! depth limit, so a chain that chains itself stops there. Delays add up: step k runs at
//! `now + delay_1 + … + delay_k`, where a step's `delay_seconds` defaults to the chain's
//! `delay_seconds` (the gap between steps; the first step's default is 0). Delayed steps
//! wait in the durable timer table; the helper never sleeps. A chain-level `condition`
//! gates the whole chain and a step-level one skips that step; both are checked now, on
//! the contact as it is when the chain runs. Steps are not awaited: the old
//! `on_success_helpers` / `on_failure_helpers` branches cannot be honoured and are not
//! offered; put a gate helper (match_it, limit_it) at the start of a step list instead.
//! Idempotency depends on the children; a redelivered chain requests the same follow-ups,
//! which run once.

use super::route_it::FieldTest;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, FollowUp, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// The most steps a list may hold.
const MAX_RUNS: usize = 20;
/// The longest single delay: one year.
const MAX_DELAY_SECONDS: u64 = 365 * 24 * 3600;

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// One helper run requested as a follow-up (chain_it steps, goal_it/trigger_it `then`).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelperRun {
    /// Registry name of the helper, e.g. `tag_it`.
    pub helper: String,
    /// Its config; default `{}`.
    #[serde(default = "empty_object")]
    pub config: Value,
    /// Seconds to wait after the previous run of the list.
    pub delay_seconds: Option<u64>,
    /// Run only when this holds for the contact (checked when the list is planned).
    pub condition: Option<FieldTest>,
}

/// Adds the problems of `runs` to `errors`: unknown helpers, invalid child configs
/// (named `<field>[i].config.<child field>`), oversized delays and lists.
pub(crate) fn check_runs(errors: &mut Vec<FieldError>, field: &str, runs: &[HelperRun]) {
    check(
        errors,
        runs.len() > MAX_RUNS,
        field,
        &format!("may list at most {MAX_RUNS} helpers"),
    );
    for (i, r) in runs.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match crate::helpers::find(r.helper.trim()) {
            None => errors.push(FieldError::new(
                format!("{at}.helper"),
                format!("{:?} is not a known helper", r.helper),
            )),
            Some(h) => {
                if let Err(e) = h.build_json(&r.config) {
                    errors.extend(e.errors.into_iter().map(|fe| {
                        let name = if fe.field.is_empty() {
                            format!("{at}.config")
                        } else {
                            format!("{at}.config.{}", fe.field)
                        };
                        FieldError::new(name, fe.message)
                    }));
                }
            }
        }
        check(
            errors,
            r.delay_seconds.is_some_and(|d| d > MAX_DELAY_SECONDS),
            &format!("{at}.delay_seconds"),
            "must be at most one year",
        );
        if let Some(c) = &r.condition {
            c.check(errors, &format!("{at}.condition"));
        }
    }
}

/// Turns `runs` into follow-ups: each at `now` plus the delays so far (`None` when there
/// is no delay yet), each step's delay defaulting to `gap` after the first. Returns the
/// follow-ups and the names of the runs skipped by their condition.
pub(crate) fn plan(
    ctx: &Ctx<'_>,
    contact: &Contact,
    runs: &[HelperRun],
    gap: u64,
    input: Option<&Value>,
) -> (Vec<FollowUp>, Vec<String>) {
    let (mut planned, mut skipped, mut waited) = (Vec::new(), Vec::new(), 0u64);
    for (i, r) in runs.iter().enumerate() {
        let default = if i == 0 { 0 } else { gap };
        waited += r.delay_seconds.unwrap_or(default);
        if r.condition.as_ref().is_some_and(|c| !c.matches(contact)) {
            skipped.push(r.helper.trim().to_owned());
            continue;
        }
        let at = (waited > 0).then(|| {
            ctx.now + chrono::Duration::seconds(i64::try_from(waited).unwrap_or(i64::MAX / 2000))
        });
        planned.push(FollowUp {
            helper: r.helper.trim().to_owned(),
            config: r.config.clone(),
            input: input.cloned(),
            at,
        });
    }
    (planned, skipped)
}

/// Adds `follow_ups` to `out` with the `queued_helpers` and `scheduled` outputs.
pub(crate) fn attach(mut out: Outcome, follow_ups: Vec<FollowUp>) -> Outcome {
    let names: Vec<&str> = follow_ups.iter().map(|f| f.helper.as_str()).collect();
    let when: Vec<Value> = follow_ups
        .iter()
        .map(|f| serde_json::json!({"helper": f.helper, "at": f.at.map(|t| t.to_rfc3339())}))
        .collect();
    out = out.with("queued_helpers", names).with("scheduled", when);
    follow_ups.into_iter().fold(out, Outcome::follow_up)
}

/// Config of chain_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The helpers to run, in order.
    #[serde(alias = "helpers")]
    pub steps: Vec<HelperRun>,
    /// Run the chain only when this holds for the contact.
    pub condition: Option<FieldTest>,
    /// Default seconds between consecutive steps; default 0.
    #[serde(default)]
    pub delay_seconds: u64,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.steps.is_empty(),
            "steps",
            "must list at least one helper",
        );
        check_runs(&mut errors, "steps", &self.steps);
        check(
            &mut errors,
            self.delay_seconds > MAX_DELAY_SECONDS,
            "delay_seconds",
            "must be at most one year",
        );
        if let Some(c) = &self.condition {
            c.check(&mut errors, "condition");
        }
        finish(errors)
    }
}

/// The chain_it helper.
pub struct ChainIt;

impl Helper for ChainIt {
    const NAME: &'static str = "chain_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Runs other helpers on the contact in order, optionally gated and spaced by delays.";
    const EXAMPLE_CONFIG: &'static str = r#"{"steps": [{"helper": "goal_it", "config": {"goal_name": "welcome"}}, {"helper": "trigger_it", "config": {"automation_id": "42"}, "delay_seconds": 3600}], "condition": {"field": "email", "op": "exists"}}"#;
    const OUTPUTS: &'static [&'static str] =
        &["queued_helpers", "scheduled", "skipped", "skipped_steps"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(ChainItStep(config)))
    }
}

struct ChainItStep(Config);

impl Step for ChainItStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        if c.condition.as_ref().is_some_and(|t| !t.matches(contact)) {
            return Ok(Outcome::ok("Chain skipped: its condition does not hold")
                .with("skipped", true)
                .with("queued_helpers", Vec::<String>::new()));
        }
        let (runs, skipped) = plan(ctx, contact, &c.steps, c.delay_seconds, ctx.input);
        let out = Outcome::ok(format!(
            "Queued {} helpers, skipped {}",
            runs.len(),
            skipped.len()
        ))
        .with("skipped", false)
        .with("skipped_steps", skipped);
        Ok(attach(out, runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, fixed_now, run};
    use serde_json::json;

    #[test]
    fn steps_become_follow_ups_with_cumulative_delays() {
        let cfg = json!({"steps": [
            {"helper": "goal_it", "config": {"goal_name": "a"}},
            {"helper": "trigger_it", "config": {"automation_id": "7"}},
            {"helper": "goal_it", "config": {"goal_name": "c"}, "delay_seconds": 60}
        ], "delay_seconds": 600});
        let out = run(&ChainIt, cfg, &contact(&[], &[]));
        let at: Vec<_> = out.follow_ups.iter().map(|f| f.at).collect();
        assert_eq!(
            at,
            [
                None,
                Some(fixed_now() + chrono::Duration::seconds(600)),
                Some(fixed_now() + chrono::Duration::seconds(660))
            ]
        );
        assert_eq!(out.follow_ups[1].helper, "trigger_it");
        assert_eq!(out.follow_ups[1].config, json!({"automation_id": "7"}));
        assert_eq!(
            out.output["queued_helpers"],
            json!(["goal_it", "trigger_it", "goal_it"])
        );
        assert!(out.changes.is_empty());
    }

    #[test]
    fn the_chain_condition_gates_everything() {
        let cfg = json!({"steps": [{"helper": "goal_it", "config": {"goal_name": "a"}}], "condition": {"field": "plan", "op": "equals", "value": "gold"}});
        let skipped = run(&ChainIt, cfg.clone(), &contact(&[("plan", "silver")], &[]));
        assert!(skipped.success && skipped.follow_ups.is_empty());
        assert_eq!(skipped.output["skipped"], true);
        let ran = run(&ChainIt, cfg, &contact(&[("plan", "GOLD")], &[]));
        assert_eq!(ran.follow_ups.len(), 1);
    }

    #[test]
    fn a_step_condition_skips_only_that_step_but_keeps_its_delay() {
        let cfg = json!({"steps": [
            {"helper": "goal_it", "config": {"goal_name": "a"}, "delay_seconds": 30, "condition": {"field": "phone", "op": "exists"}},
            {"helper": "goal_it", "config": {"goal_name": "b"}, "delay_seconds": 30}
        ]});
        let out = run(&ChainIt, cfg, &contact(&[], &[]));
        assert_eq!(out.follow_ups.len(), 1);
        assert_eq!(out.follow_ups[0].config["goal_name"], "b");
        assert_eq!(
            out.follow_ups[0].at,
            Some(fixed_now() + chrono::Duration::seconds(60))
        );
        assert_eq!(out.output["skipped_steps"], json!(["goal_it"]));
    }

    #[test]
    fn the_trigger_payload_is_passed_on() {
        let mut env = crate::helpers::testing::Env::new();
        env.input = Some(json!({"ip": "8.8.8.8"}));
        let cfg = json!({"steps": [{"helper": "goal_it", "config": {"goal_name": "a"}}]});
        let out = env.block_on_run(&ChainIt, cfg, &contact(&[], &[])).unwrap();
        assert_eq!(out.follow_ups[0].input, Some(json!({"ip": "8.8.8.8"})));
    }

    #[test]
    fn unknown_helpers_and_invalid_child_configs_are_config_errors() {
        let errs = config_errors(
            &ChainIt,
            json!({"steps": [{"helper": "no_such_helper"}, {"helper": "goal_it", "config": {"goal_name": " "}, "delay_seconds": 999_999_999}]}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "steps[0].helper",
                "steps[1].config.goal_name",
                "steps[1].delay_seconds"
            ]
        );
        assert_eq!(
            config_errors(
                &ChainIt,
                json!({"steps": [{"helper": "goal_it", "config": {"nope": 1}}]})
            )[0]
            .field,
            "steps[0].config"
        );
        assert!(!config_errors(&ChainIt, json!({"steps": []})).is_empty());
        assert!(!config_errors(&ChainIt, json!({"steps": [{"helper": "goal_it", "config": {"goal_name": "a"}}], "condition": {"field": "x", "op": "equals"}})).is_empty());
    }
}
