//! hook_it_by_tag: a tag gate for an inbound event. The event is processed only if the
//! contact has all (`match_mode: all`, default) or any (`any`) of `required_tags` and
//! none of `forbidden_tags`; no conditions means always. On pass it fires `goal_name`
//! and applies `apply_tag_on_success`; on skip it applies `apply_tag_on_skip` and reports
//! why (`missing_required_tag`, `missing_any_required_tag`, `has_forbidden_tag`). The
//! tags are the execution's live contact snapshot. With `dedupe_key` (a dotted path to
//! the event id in the webhook payload) a repeated delivery is skipped as
//! `duplicate_event`; otherwise the goal re-fires on every run.

use super::hook_it_v3::inbound::{self, Delivery};
use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use serde_json::Value;

/// How `required_tags` must match.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// The contact has every required tag (default).
    #[default]
    All,
    /// The contact has at least one required tag.
    Any,
}

/// Config of hook_it_by_tag.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tag ids the contact must have (see `match_mode`).
    #[serde(default)]
    pub required_tags: Vec<String>,
    /// Tag ids the contact must not have.
    #[serde(default)]
    pub forbidden_tags: Vec<String>,
    /// `all` (default) or `any` of `required_tags`.
    #[serde(default)]
    pub match_mode: MatchMode,
    /// API goal fired when the event is processed.
    pub goal_name: Option<String>,
    /// Tag applied when the event is processed.
    pub apply_tag_on_success: Option<String>,
    /// Tag applied when the event is skipped.
    pub apply_tag_on_skip: Option<String>,
    /// Payload path of the event id used to drop repeated deliveries, e.g. `id`.
    pub dedupe_key: Option<String>,
}

fn set(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (name, list) in [
            ("required_tags", &self.required_tags),
            ("forbidden_tags", &self.forbidden_tags),
        ] {
            check(
                &mut errors,
                list.iter().any(|t| t.trim().is_empty()),
                name,
                "tag ids must not be empty",
            );
        }
        check(
            &mut errors,
            self.required_tags
                .iter()
                .any(|t| self.forbidden_tags.contains(t)),
            "forbidden_tags",
            "a tag cannot be both required and forbidden",
        );
        if let Some(goal) = &self.goal_name {
            inbound::check_goal(&mut errors, "goal_name", goal);
        }
        for (name, value) in [
            ("apply_tag_on_success", &self.apply_tag_on_success),
            ("apply_tag_on_skip", &self.apply_tag_on_skip),
            ("dedupe_key", &self.dedupe_key),
        ] {
            check(
                &mut errors,
                value.as_ref().is_some_and(|v| v.trim().is_empty()),
                name,
                "must not be empty when set",
            );
        }
        check(
            &mut errors,
            self.goal_name.is_none() && self.apply_tag_on_success.is_none(),
            "goal_name",
            "set goal_name and/or apply_tag_on_success",
        );
        finish(errors)
    }
}

impl Config {
    /// Why the contact fails the gate, if it does.
    fn skip_reason(&self, contact: &Contact) -> Option<&'static str> {
        let required = &self.required_tags;
        match self.match_mode {
            MatchMode::All if !required.iter().all(|t| contact.has_tag(t.trim())) => {
                return Some("missing_required_tag");
            }
            MatchMode::Any
                if !required.is_empty() && !required.iter().any(|t| contact.has_tag(t.trim())) =>
            {
                return Some("missing_any_required_tag");
            }
            _ => {}
        }
        self.forbidden_tags
            .iter()
            .any(|t| contact.has_tag(t.trim()))
            .then_some("has_forbidden_tag")
    }
}

/// The hook_it_by_tag helper.
pub struct HookItByTag;

impl Helper for HookItByTag {
    const NAME: &'static str = "hook_it_by_tag";
    const CATEGORY: Category = Category::Integration;
    const SUMMARY: &'static str = "Processes an inbound event (goal and tag) only when the contact has the required tags and none of the forbidden ones.";
    const EXAMPLE_CONFIG: &'static str = r#"{"required_tags": ["101"], "forbidden_tags": ["999"], "goal_name": "vipPurchase", "apply_tag_on_skip": "300"}"#;
    const OUTPUTS: &'static [&'static str] = &[
        "processed",
        "skip_reason",
        "contact_tags",
        "event_type",
        "duplicate",
    ];
    const REQUIRES: &'static [Capability] = &[Capability::Tags, Capability::Goals];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(HookItByTagStep { config }))
    }
}

struct HookItByTagStep {
    config: Config,
}

#[async_trait::async_trait]
impl AsyncStep for HookItByTagStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let payload = inbound::payload(ctx);
        let event = payload.and_then(|p| inbound::event_name(p, "event"));
        let mut reason = c.skip_reason(contact);
        let mut duplicate = false;
        if reason.is_none()
            && let Some(key) = set(&c.dedupe_key)
            && let Delivery::Repeat(_) =
                inbound::delivery(ctx, HookItByTag::NAME, contact, payload, key).await?
        {
            reason = Some("duplicate_event");
            duplicate = true;
        }
        let out = match reason {
            None => Outcome::ok("Tag conditions passed; event processed").branch(
                contact,
                set(&c.apply_tag_on_success),
                set(&c.goal_name),
            ),
            Some(why) if duplicate => Outcome::ok(format!("Skipped: {why}")),
            Some(why) => Outcome::ok(format!("Skipped: {why}")).branch(
                contact,
                set(&c.apply_tag_on_skip),
                None,
            ),
        };
        Ok(out
            .with("processed", reason.is_none())
            .with("skip_reason", reason.map_or(Value::Null, Value::from))
            .with(
                "contact_tags",
                contact.tags.keys().cloned().collect::<Vec<_>>(),
            )
            .with("event_type", event)
            .with("duplicate", duplicate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{Env, config_errors, contact};
    use serde_json::json;

    fn goal(n: &str) -> Change {
        Change::AchieveGoal {
            call_name: n.into(),
        }
    }
    fn tag(t: &str) -> Change {
        Change::ApplyTag { tag_id: t.into() }
    }

    async fn run(cfg: Value, tags: &[&str]) -> Outcome {
        Env::new()
            .run(&HookItByTag, cfg, &contact(&[], tags))
            .await
            .unwrap()
    }

    fn cfg(mode: &str) -> Value {
        json!({"required_tags": ["1", "2"], "forbidden_tags": ["9"], "match_mode": mode,
            "goal_name": "pass", "apply_tag_on_success": "50", "apply_tag_on_skip": "60"})
    }

    #[tokio::test]
    async fn all_mode_passes_only_with_every_required_tag() {
        let out = run(cfg("all"), &["1", "2"]).await;
        assert_eq!(out.changes, vec![tag("50"), goal("pass")]);
        assert_eq!(out.output["processed"], json!(true));
        assert_eq!(out.output["skip_reason"], Value::Null);
        assert_eq!(out.output["contact_tags"], json!(["1", "2"]));
        let out = run(cfg("all"), &["1"]).await;
        assert!(out.success);
        assert_eq!(out.changes, vec![tag("60")]);
        assert_eq!(out.output["skip_reason"], json!("missing_required_tag"));
    }

    #[tokio::test]
    async fn any_mode_and_forbidden_tags() {
        let out = run(cfg("any"), &["2"]).await;
        assert_eq!(out.output["processed"], json!(true));
        let out = run(cfg("any"), &["7"]).await;
        assert_eq!(out.output["skip_reason"], json!("missing_any_required_tag"));
        let out = run(cfg("any"), &["1", "9"]).await;
        assert_eq!(out.output["skip_reason"], json!("has_forbidden_tag"));
        assert_eq!(out.changes, vec![tag("60")]);
    }

    #[tokio::test]
    async fn no_conditions_always_processes_and_existing_tags_are_kept() {
        let out = run(json!({"goal_name": "g"}), &[]).await;
        assert_eq!(out.changes, vec![goal("g")]);
        let out = run(
            json!({"required_tags": [], "match_mode": "any", "apply_tag_on_success": "5"}),
            &["5"],
        )
        .await;
        assert_eq!(out.output["processed"], json!(true));
        assert!(out.changes.is_empty(), "the success tag is already there");
    }

    #[tokio::test]
    async fn repeated_deliveries_are_skipped_with_dedupe() {
        let mut env = Env::new();
        env.state.set_now(env.now);
        env.input = Some(json!({"event": "order.paid", "data": {"id": "o-1"}}));
        let mut cfg = cfg("all");
        cfg["dedupe_key"] = json!("data.id");
        let c = contact(&[], &["1", "2"]);
        env.execution_id = "e1".into();
        let first = env.run(&HookItByTag, cfg.clone(), &c).await.unwrap();
        assert_eq!(first.changes, vec![tag("50"), goal("pass")]);
        assert_eq!(first.output["event_type"], json!("order.paid"));
        env.execution_id = "e2".into();
        let dup = env.run(&HookItByTag, cfg, &c).await.unwrap();
        assert!(dup.changes.is_empty(), "no goal and no skip tag");
        assert_eq!(dup.output["skip_reason"], json!("duplicate_event"));
        assert_eq!(dup.output["duplicate"], json!(true));
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&HookItByTag, json!({})).is_empty());
        let errs = config_errors(
            &HookItByTag,
            json!({"required_tags": ["1", ""], "forbidden_tags": ["1"], "goal_name": "a b",
                "apply_tag_on_skip": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "required_tags",
                "forbidden_tags",
                "goal_name",
                "apply_tag_on_skip"
            ]
        );
        assert!(
            !config_errors(
                &HookItByTag,
                json!({"goal_name": "g", "match_mode": "some"})
            )
            .is_empty()
        );
    }
}
