//! split_it_basic: a random A/B split, as the original product documents it (the rebuild's
//! alternation on a static `last_group` sent everyone to the same group). Each contact is
//! drawn at random into group A or B, 50/50; `pattern: 10_10_80` tests on 20% and holds the
//! other 80% back in a `holdout` group, and `pattern: custom` takes `weights` [a, b,
//! holdout] summing to 100. The draw uses the execution's seeded RNG; a redelivered
//! execution reuses its recorded outcome, so it lands in the same group. The outcome is delivered as the group's tag and/or
//! API goal: `split_type` says which must be configured, and any other configured output of
//! the group is delivered too. With `sticky` (default) a contact that already holds one of
//! the split tags keeps its group: the goal fires again and, with `retrigger`, the tag is
//! removed and re-applied so tag-applied triggers fire again. A contact re-drawn into
//! another group loses the other groups' tags, so it is only ever in one group.

use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use rand::Rng;
use serde::Deserialize;

/// Which output the split must deliver.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SplitType {
    /// A tag per group.
    TagSplit,
    /// An API goal per group.
    GoalSplit,
}

/// How contacts are shared out.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub enum Pattern {
    /// Half A, half B (default).
    #[default]
    #[serde(rename = "50_50")]
    FiftyFifty,
    /// 10% A, 10% B, 80% holdout.
    #[serde(rename = "10_10_80")]
    TenTenEighty,
    /// Percentages from `weights`.
    #[serde(rename = "custom")]
    Custom,
}

/// Config of split_it_basic.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `tag_split` or `goal_split`.
    pub split_type: SplitType,
    /// Tag id for group A.
    pub split_tag_a: Option<String>,
    /// Tag id for group B.
    pub split_tag_b: Option<String>,
    /// Goal call name for group A.
    pub split_goal_a: Option<String>,
    /// Goal call name for group B.
    pub split_goal_b: Option<String>,
    /// Tag id for the holdout group.
    pub holdout_tag: Option<String>,
    /// Goal call name for the holdout group.
    pub holdout_goal: Option<String>,
    /// `50_50` (default), `10_10_80` or `custom`.
    #[serde(default)]
    pub pattern: Pattern,
    /// Percentages [a, b, holdout] summing to 100; required for `custom`.
    pub weights: Option<[u32; 3]>,
    /// Keep the group of a contact that holds a split tag; default true.
    #[serde(default = "default_true")]
    pub sticky: bool,
    /// Remove and re-apply a tag the contact already holds; default false.
    #[serde(default)]
    pub retrigger: bool,
}

impl Config {
    fn weights(&self) -> [u32; 3] {
        match self.pattern {
            Pattern::FiftyFifty => [50, 50, 0],
            Pattern::TenTenEighty => [10, 10, 80],
            Pattern::Custom => self.weights.unwrap_or([50, 50, 0]),
        }
    }

    /// (name, tag, goal) per group.
    fn groups(&self) -> [(&'static str, Option<&str>, Option<&str>); 3] {
        fn s(o: &Option<String>) -> Option<&str> {
            o.as_deref().map(str::trim).filter(|s| !s.is_empty())
        }
        [
            ("a", s(&self.split_tag_a), s(&self.split_goal_a)),
            ("b", s(&self.split_tag_b), s(&self.split_goal_b)),
            ("holdout", s(&self.holdout_tag), s(&self.holdout_goal)),
        ]
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let custom = self.pattern == Pattern::Custom;
        check(
            &mut errors,
            custom && self.weights.is_none(),
            "weights",
            "is required for pattern custom",
        );
        check(
            &mut errors,
            !custom && self.weights.is_some(),
            "weights",
            "is only used with pattern custom",
        );
        let w = self.weights();
        check(
            &mut errors,
            w.iter().sum::<u32>() != 100 || w[0] == 0 || w[1] == 0,
            "weights",
            "must sum to 100 with a and b above 0",
        );
        let tags = self.split_type == SplitType::TagSplit;
        for (i, (group, tag, goal)) in self.groups().into_iter().enumerate() {
            let (kind, value) = if tags { ("tag", tag) } else { ("goal", goal) };
            let name = if group == "holdout" {
                format!("holdout_{kind}")
            } else {
                format!("split_{kind}_{group}")
            };
            check(
                &mut errors,
                w[i] > 0 && value.is_none(),
                &name,
                "is required for this split_type and pattern",
            );
        }
        let [a, b, h] = self.groups().map(|g| g.1);
        let shared = (a.is_some() && (a == b || a == h)) || (b.is_some() && b == h);
        check(
            &mut errors,
            shared,
            "split_tag_b",
            "each group needs its own tag",
        );
        finish(errors)
    }
}

/// The split_it_basic helper.
pub struct SplitItBasic;

impl Helper for SplitItBasic {
    const NAME: &'static str = "split_it_basic";
    const CATEGORY: Category = Category::Data;
    const SUMMARY: &'static str =
        "Randomly splits contacts 50/50 (or 10/10/80) into groups marked by a tag or goal.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"split_type": "tag_split", "split_tag_a": "301", "split_tag_b": "302"}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Tags];
    const OUTPUTS: &'static [&'static str] = &["group", "sticky"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(SplitItBasicStep(config)))
    }
}

struct SplitItBasicStep(Config);

impl Step for SplitItBasicStep {
    fn run(&self, ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let groups = c.groups();
        let held = groups
            .iter()
            .position(|(_, tag, _)| tag.is_some_and(|t| contact.has_tag(t)));
        let (index, sticky) = match held {
            Some(i) if c.sticky => (i, true),
            _ => {
                let w = c.weights();
                let roll = ctx.rng().random_range(0..100);
                (
                    if roll < w[0] {
                        0
                    } else if roll < w[0] + w[1] {
                        1
                    } else {
                        2
                    },
                    false,
                )
            }
        };
        let (group, tag, goal) = groups[index];
        let how = if sticky { "kept" } else { "drawn into" };
        let mut out = Outcome::ok(format!("Contact {how} group {group}"))
            .with("group", group)
            .with("sticky", sticky);
        for (_, other, _) in groups.iter().filter(|g| g.0 != group) {
            if let Some(t) = other.filter(|t| contact.has_tag(t)) {
                out = out.change(Change::RemoveTag {
                    tag_id: t.to_owned(),
                });
            }
        }
        if let Some(t) = tag {
            if contact.has_tag(t) && c.retrigger {
                out = out.change(Change::RemoveTag {
                    tag_id: t.to_owned(),
                });
            }
            if !contact.has_tag(t) || c.retrigger {
                out = out.change(Change::ApplyTag {
                    tag_id: t.to_owned(),
                });
            }
        }
        if let Some(g) = goal {
            out = out.change(Change::AchieveGoal {
                call_name: g.to_owned(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use crate::helpers::{DynHelper, seed_for};
    use serde_json::json;

    /// The outcomes of `n` executions with distinct ids.
    fn draws(cfg: serde_json::Value, c: &Contact, n: usize) -> Vec<Outcome> {
        let Ok(Runnable::Sync(step)) = SplitItBasic.build_json(&cfg) else {
            panic!("sync step")
        };
        let mut env = crate::helpers::testing::Env::new();
        (0..n)
            .map(|i| {
                env.execution_id = format!("exec-{i}");
                env.seed = seed_for(&env.execution_id);
                step.run(&env.ctx(), c).unwrap()
            })
            .collect()
    }

    fn count(v: &[Outcome], g: &str) -> usize {
        v.iter().filter(|o| o.output["group"] == g).count()
    }

    #[test]
    fn fifty_fifty_really_splits() {
        let v = draws(
            json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2"}),
            &contact(&[], &[]),
            2000,
        );
        assert!(
            (900..=1100).contains(&count(&v, "a")),
            "a = {}",
            count(&v, "a")
        );
        assert_eq!(count(&v, "a") + count(&v, "b"), 2000);
    }

    #[test]
    fn ten_ten_eighty_holds_most_back() {
        let cfg = json!({"split_type": "goal_split", "split_goal_a": "ga", "split_goal_b": "gb", "holdout_goal": "gh", "pattern": "10_10_80"});
        let v = draws(cfg, &contact(&[], &[]), 2000);
        assert!(
            (1500..=1700).contains(&count(&v, "holdout")),
            "holdout = {}",
            count(&v, "holdout")
        );
        assert!((120..=280).contains(&count(&v, "a")) && (120..=280).contains(&count(&v, "b")));
    }

    #[test]
    fn custom_weights_are_honoured() {
        let cfg = json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2", "pattern": "custom", "weights": [90, 10, 0]});
        let v = draws(cfg, &contact(&[], &[]), 1000);
        assert!(
            (850..=950).contains(&count(&v, "a")),
            "a = {}",
            count(&v, "a")
        );
    }

    #[test]
    fn redelivery_draws_the_same_group_and_output_is_tag_and_goal() {
        let cfg = json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2", "split_goal_a": "ga", "split_goal_b": "gb"});
        let out = run(&SplitItBasic, cfg.clone(), &contact(&[], &[]));
        assert_eq!(run(&SplitItBasic, cfg, &contact(&[], &[])), out);
        let (tag, goal) = if out.output["group"] == json!("a") {
            ("1", "ga")
        } else {
            ("2", "gb")
        };
        assert_eq!(
            out.changes,
            vec![
                Change::ApplyTag { tag_id: tag.into() },
                Change::AchieveGoal {
                    call_name: goal.into()
                }
            ]
        );
    }

    #[test]
    fn sticky_keeps_the_group_and_retrigger_reapplies() {
        let cfg = json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2", "split_goal_b": "gb"});
        let held = contact(&[], &["2"]);
        assert_eq!(count(&draws(cfg.clone(), &held, 50), "b"), 50);
        assert_eq!(
            run(&SplitItBasic, cfg.clone(), &held).changes,
            vec![Change::AchieveGoal {
                call_name: "gb".into()
            }]
        );
        let mut re = cfg.clone();
        re["retrigger"] = json!(true);
        assert_eq!(
            run(&SplitItBasic, re, &held).changes[..2],
            [
                Change::RemoveTag { tag_id: "2".into() },
                Change::ApplyTag { tag_id: "2".into() }
            ]
        );
        let mut loose = cfg;
        loose["sticky"] = json!(false);
        let redrawn = draws(loose, &held, 200);
        assert!(count(&redrawn, "a") > 50);
        let moved = redrawn.iter().find(|o| o.output["group"] == "a").unwrap();
        assert_eq!(
            moved.changes[..2],
            [
                Change::RemoveTag { tag_id: "2".into() },
                Change::ApplyTag { tag_id: "1".into() }
            ]
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(
            !config_errors(
                &SplitItBasic,
                json!({"split_type": "tag_split", "split_tag_a": "1"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &SplitItBasic,
                json!({"split_type": "goal_split", "split_tag_a": "1", "split_tag_b": "2"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &SplitItBasic,
                json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "1"})
            )
            .is_empty()
        );
        let holdout = json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2", "pattern": "10_10_80"});
        assert_eq!(
            config_errors(&SplitItBasic, holdout)[0].field,
            "holdout_tag"
        );
        let weights = json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2", "pattern": "custom", "weights": [50, 0, 40]});
        assert_eq!(config_errors(&SplitItBasic, weights).len(), 2);
        assert!(!config_errors(&SplitItBasic, json!({"split_type": "tag_split", "split_tag_a": "1", "split_tag_b": "2", "weights": [50, 50, 0]})).is_empty());
    }
}
