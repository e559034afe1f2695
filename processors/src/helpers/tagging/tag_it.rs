//! tag_it: applies and/or removes a set of tags. The catalog's superset is supported:
//! either `action` with `tag_ids`, or `apply_tag_ids` and `remove_tag_ids` together, with
//! removals made before applications. Applying a tag the contact has is a no-op.

use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// What to do with `tag_ids`.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Apply the tags.
    Apply,
    /// Remove the tags.
    Remove,
}

/// Config of tag_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Apply or remove `tag_ids`; required unless the split lists are used.
    pub action: Option<Action>,
    /// Tag ids for `action`.
    #[serde(default)]
    pub tag_ids: Vec<String>,
    /// Tag ids to apply.
    #[serde(default)]
    pub apply_tag_ids: Vec<String>,
    /// Tag ids to remove; removed before any are applied.
    #[serde(default)]
    pub remove_tag_ids: Vec<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let split = !self.apply_tag_ids.is_empty() || !self.remove_tag_ids.is_empty();
        check(
            &mut errors,
            self.action.is_some() && self.tag_ids.is_empty(),
            "tag_ids",
            "must list at least one tag id",
        );
        check(
            &mut errors,
            self.action.is_none() && !self.tag_ids.is_empty(),
            "action",
            "is required with tag_ids",
        );
        check(
            &mut errors,
            self.action.is_none() && !split,
            "",
            "set action and tag_ids, or apply_tag_ids/remove_tag_ids",
        );
        let all = self
            .tag_ids
            .iter()
            .chain(&self.apply_tag_ids)
            .chain(&self.remove_tag_ids);
        check(
            &mut errors,
            all.clone().any(|t| t.trim().is_empty()),
            "tag_ids",
            "tag ids must not be empty",
        );
        finish(errors)
    }
}

/// The tag_it helper.
pub struct TagIt;

impl Helper for TagIt {
    const NAME: &'static str = "tag_it";
    const CATEGORY: Category = Category::Tagging;
    const SUMMARY: &'static str = "Applies and/or removes a set of tags on the contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"action": "apply", "tag_ids": ["101", "205"]}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Tags];
    const OUTPUTS: &'static [&'static str] = &["applied", "removed", "failed"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let (mut apply, mut remove) = (config.apply_tag_ids, config.remove_tag_ids);
        match config.action {
            Some(Action::Apply) => apply.extend(config.tag_ids),
            Some(Action::Remove) => remove.extend(config.tag_ids),
            None => {}
        }
        Runnable::Sync(Box::new(TagItStep { apply, remove }))
    }
}

struct TagItStep {
    apply: Vec<String>,
    remove: Vec<String>,
}

impl Step for TagItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let removed: Vec<&String> = self.remove.iter().filter(|t| contact.has_tag(t)).collect();
        let applied: Vec<&String> = self
            .apply
            .iter()
            .filter(|t| !contact.has_tag(t) || self.remove.contains(t))
            .collect();
        let mut out = Outcome::ok(format!(
            "Applied {} and removed {} tags",
            applied.len(),
            removed.len()
        ))
        .with(
            "applied",
            applied.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        )
        .with(
            "removed",
            removed.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        )
        .with("failed", Vec::<String>::new());
        for t in removed {
            out = out.change(Change::RemoveTag { tag_id: t.clone() });
        }
        for t in applied {
            out = out.change(Change::ApplyTag { tag_id: t.clone() });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    #[test]
    fn applies_only_missing_tags() {
        let out = run(
            &TagIt,
            json!({"action": "apply", "tag_ids": ["1", "2"]}),
            &contact(&[], &["1"]),
        );
        assert_eq!(out.changes, vec![Change::ApplyTag { tag_id: "2".into() }]);
        assert_eq!(out.output["applied"], json!(["2"]));
    }

    #[test]
    fn removes_before_applying() {
        let out = run(
            &TagIt,
            json!({"apply_tag_ids": ["3"], "remove_tag_ids": ["1", "9"]}),
            &contact(&[], &["1"]),
        );
        assert_eq!(
            out.changes,
            vec![
                Change::RemoveTag { tag_id: "1".into() },
                Change::ApplyTag { tag_id: "3".into() }
            ]
        );
    }

    #[test]
    fn rerun_on_the_result_changes_nothing() {
        let out = run(
            &TagIt,
            json!({"action": "apply", "tag_ids": ["1"]}),
            &contact(&[], &["1"]),
        );
        assert!(out.changes.is_empty() && out.success);
    }

    #[test]
    fn empty_lists_and_missing_action_are_config_errors() {
        assert!(!config_errors(&TagIt, json!({"action": "apply", "tag_ids": []})).is_empty());
        assert!(!config_errors(&TagIt, json!({"tag_ids": ["1"]})).is_empty());
        assert!(!config_errors(&TagIt, json!({})).is_empty());
        assert!(!config_errors(&TagIt, json!({"action": "toggle", "tag_ids": ["1"]})).is_empty());
    }
}
