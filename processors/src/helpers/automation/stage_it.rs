//! stage_it: finds the contact's opportunities (Keap leads, HubSpot deals, GHL/AC
//! opportunities) in stage `basic_match` and moves the first or all of them to
//! `to_stage`, read through the connector's opportunities API (the old rebuild faked them
//! with magic field keys). "First" is the newest by default, or the oldest with
//! `order: oldest`; connectors list opportunities oldest first. Then `found_goal` fires
//! when at least one moved, `not_found_goal` when none matched. Stage names compare
//! trimmed and case-insensitively. Idempotent: a second run finds nothing left in the
//! source stage and fires `not_found_goal`.

use crate::connectors::Capability;
use crate::helpers::{
    AsyncStep, Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// How many matching opportunities move.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// One (default).
    #[default]
    First,
    /// Every match.
    All,
}

/// Which opportunity is "first".
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// The newest (default).
    #[default]
    Newest,
    /// The oldest.
    Oldest,
}

/// Config of stage_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The stage opportunities must be in.
    pub basic_match: String,
    /// The stage they move to.
    pub to_stage: String,
    /// `first` (default) or `all`.
    #[serde(default)]
    pub opportunity_count: Count,
    /// `newest` (default) or `oldest`, for `first`.
    #[serde(default)]
    pub order: Order,
    /// Goal achieved when at least one opportunity moved.
    pub found_goal: Option<String>,
    /// Goal achieved when none matched.
    pub not_found_goal: Option<String>,
}

fn same(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.basic_match.trim().is_empty(),
            "basic_match",
            "is required",
        );
        check(
            &mut errors,
            self.to_stage.trim().is_empty(),
            "to_stage",
            "is required",
        );
        check(
            &mut errors,
            !self.to_stage.trim().is_empty() && same(&self.basic_match, &self.to_stage),
            "to_stage",
            "must differ from basic_match",
        );
        for (field, goal) in [
            ("found_goal", &self.found_goal),
            ("not_found_goal", &self.not_found_goal),
        ] {
            check(
                &mut errors,
                goal.as_ref().is_some_and(|g| g.trim().is_empty()),
                field,
                "must not be empty when set",
            );
        }
        finish(errors)
    }
}

/// The stage_it helper.
pub struct StageIt;

impl Helper for StageIt {
    const NAME: &'static str = "stage_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str = "Moves the contact's opportunities from one stage to another and fires a found or not-found goal.";
    const EXAMPLE_CONFIG: &'static str = r#"{"basic_match": "Proposal Sent", "to_stage": "Negotiation", "found_goal": "moved", "not_found_goal": "noDeal"}"#;
    const OUTPUTS: &'static [&'static str] = &["matched", "moved_ids", "to_stage"];
    const REQUIRES: &'static [Capability] = &[Capability::Opportunities];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Async(Box::new(StageItStep(config)))
    }
}

struct StageItStep(Config);

#[async_trait::async_trait]
impl AsyncStep for StageItStep {
    async fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let mut found: Vec<_> = ctx
            .crm
            .opportunities(&contact.id)
            .await?
            .into_iter()
            .filter(|o| same(&o.stage, &c.basic_match))
            .collect();
        let matched = found.len();
        if c.order == Order::Newest {
            found.reverse();
        }
        if c.opportunity_count == Count::First {
            found.truncate(1);
        }
        let to = c.to_stage.trim();
        let ids: Vec<String> = found.iter().map(|o| o.id.clone()).collect();
        let (message, goal) = if ids.is_empty() {
            (
                format!("No opportunity in stage {}", c.basic_match.trim()),
                c.not_found_goal.as_deref(),
            )
        } else {
            (
                format!("Moved {} opportunities to {to}", ids.len()),
                c.found_goal.as_deref(),
            )
        };
        let out = ids.iter().fold(Outcome::ok(message), |o, id| {
            o.change(Change::MoveOpportunity {
                opportunity_id: id.clone(),
                stage: to.to_owned(),
            })
        });
        Ok(out
            .with("matched", matched)
            .with("moved_ids", ids)
            .with("to_stage", to)
            .branch(contact, None, goal.map(str::trim)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::Opportunity;
    use crate::helpers::testing::{Env, config_errors, contact};
    use serde_json::json;

    fn env() -> Env {
        let mut env = Env::new();
        let opp = |id: &str, stage: &str| Opportunity {
            id: id.into(),
            name: format!("deal {id}"),
            stage: stage.into(),
        };
        env.crm.opportunities.insert(
            "c-1".into(),
            vec![
                opp("o1", "Proposal"),
                opp("o2", "Won"),
                opp("o3", " proposal "),
            ],
        );
        env
    }

    fn moves(out: &Outcome) -> Vec<&str> {
        out.changes
            .iter()
            .filter_map(|c| match c {
                Change::MoveOpportunity { opportunity_id, .. } => Some(opportunity_id.as_str()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn moves_the_newest_match_and_fires_the_found_goal() {
        let cfg = json!({"basic_match": "PROPOSAL", "to_stage": "Negotiation", "found_goal": "moved", "not_found_goal": "none"});
        let out = env().run(&StageIt, cfg, &contact(&[], &[])).await.unwrap();
        assert_eq!(moves(&out), ["o3"]);
        assert_eq!(out.output["matched"], 2);
        assert_eq!(
            out.changes[1],
            Change::AchieveGoal {
                call_name: "moved".into()
            }
        );
        assert_eq!(
            out.changes[0],
            Change::MoveOpportunity {
                opportunity_id: "o3".into(),
                stage: "Negotiation".into()
            }
        );
    }

    #[tokio::test]
    async fn oldest_and_all() {
        let env = env();
        let c = contact(&[], &[]);
        let oldest = json!({"basic_match": "proposal", "to_stage": "X", "order": "oldest"});
        assert_eq!(moves(&env.run(&StageIt, oldest, &c).await.unwrap()), ["o1"]);
        let all = json!({"basic_match": "proposal", "to_stage": "X", "opportunity_count": "all", "order": "oldest"});
        let out = env.run(&StageIt, all, &c).await.unwrap();
        assert_eq!(moves(&out), ["o1", "o3"]);
        assert_eq!(out.output["moved_ids"], json!(["o1", "o3"]));
    }

    #[tokio::test]
    async fn nothing_in_the_stage_fires_the_not_found_goal() {
        let cfg = json!({"basic_match": "Lost", "to_stage": "X", "found_goal": "moved", "not_found_goal": "none"});
        let out = env()
            .run(&StageIt, cfg.clone(), &contact(&[], &[]))
            .await
            .unwrap();
        assert!(out.success);
        assert_eq!(
            out.changes,
            vec![Change::AchieveGoal {
                call_name: "none".into()
            }]
        );
        let empty = Env::new()
            .run(&StageIt, cfg, &contact(&[], &[]))
            .await
            .unwrap();
        assert_eq!(empty.output["matched"], 0);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let errs = config_errors(
            &StageIt,
            json!({"basic_match": "A", "to_stage": " a ", "found_goal": ""}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["to_stage", "found_goal"]);
        assert!(!config_errors(&StageIt, json!({"basic_match": "", "to_stage": ""})).is_empty());
        assert!(
            !config_errors(
                &StageIt,
                json!({"basic_match": "a", "to_stage": "b", "opportunity_count": "some"})
            )
            .is_empty()
        );
    }
}
