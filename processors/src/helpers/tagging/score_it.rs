//! score_it: lead scoring. Each tag rule awards `points` when the contact has (or, with
//! `has_tag: false`, lacks) a tag; each field rule awards points when `field op value`
//! holds. Text comparisons (`eq`, `ne`, `contains`) ignore case and surrounding space;
//! `gt`/`gte`/`lt`/`lte` compare numbers and never match a non-numeric field; `empty` and
//! `not_empty` use the catalog's notion of empty. In `replace` mode (the default) the total
//! is written to `target_field`; in `add` mode it is added to the current score, where an
//! empty or non-numeric value counts as 0 (logged). `add` is not idempotent by design.

use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// A rule on a tag.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    /// The tag id.
    pub tag_id: String,
    /// Award the points when the contact has the tag (true, default) or lacks it.
    #[serde(default = "default_true")]
    pub has_tag: bool,
    /// Points awarded; may be negative.
    pub points: i64,
}

/// A field comparison.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal text.
    Eq,
    /// Different text.
    Ne,
    /// Contains the text.
    Contains,
    /// Greater than a number.
    Gt,
    /// Greater than or equal to a number.
    Gte,
    /// Less than a number.
    Lt,
    /// Less than or equal to a number.
    Lte,
    /// The field is empty.
    Empty,
    /// The field is not empty.
    NotEmpty,
}

/// A rule on a field.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The field key.
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// The value compared with; required except for `empty` and `not_empty`.
    pub value: Option<String>,
    /// Points awarded; may be negative.
    pub points: i64,
}

/// Whether the total replaces the score or is added to it.
#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Write the total (default).
    #[default]
    Replace,
    /// Add the total to the current value.
    Add,
}

/// Config of score_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Tag rules.
    #[serde(default)]
    pub rules: Vec<TagRule>,
    /// Field rules.
    #[serde(default)]
    pub field_rules: Vec<FieldRule>,
    /// The field that receives the score.
    pub target_field: String,
    /// `replace` (default) or `add`.
    #[serde(default)]
    pub mode: Mode,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.target_field.trim().is_empty(),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.rules.is_empty() && self.field_rules.is_empty(),
            "rules",
            "must list at least one rule or field rule",
        );
        for (i, r) in self.rules.iter().enumerate() {
            check(
                &mut errors,
                r.tag_id.trim().is_empty(),
                &format!("rules[{i}].tag_id"),
                "must not be empty",
            );
        }
        for (i, r) in self.field_rules.iter().enumerate() {
            let numeric = matches!(r.op, Op::Gt | Op::Gte | Op::Lt | Op::Lte);
            let needs_value = !matches!(r.op, Op::Empty | Op::NotEmpty);
            check(
                &mut errors,
                r.field.trim().is_empty(),
                &format!("field_rules[{i}].field"),
                "must not be empty",
            );
            check(
                &mut errors,
                needs_value && r.value.is_none(),
                &format!("field_rules[{i}].value"),
                "is required for this op",
            );
            let bad_number = r.value.as_deref().is_some_and(|v| number(v).is_none());
            check(
                &mut errors,
                numeric && bad_number,
                &format!("field_rules[{i}].value"),
                "must be a number for this op",
            );
        }
        finish(errors)
    }
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// The score_it helper.
pub struct ScoreIt;

impl Helper for ScoreIt {
    const NAME: &'static str = "score_it";
    const CATEGORY: Category = Category::Tagging;
    const SUMMARY: &'static str = "Sums points for tag and field rules into a score field.";
    const EXAMPLE_CONFIG: &'static str = r#"{"rules": [{"tag_id": "101", "points": 10}, {"tag_id": "102", "has_tag": false, "points": -5}], "field_rules": [{"field": "_Visits", "op": "gte", "value": "3", "points": 5}], "target_field": "_LeadScore"}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Fields];
    const OUTPUTS: &'static [&'static str] = &["score", "rules_matched"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(ScoreItStep(config)))
    }
}

struct ScoreItStep(Config);

fn field_matches(rule: &FieldRule, contact: &Contact) -> bool {
    let actual = contact.field(&rule.field).map(str::trim);
    let want = rule.value.as_deref().unwrap_or("").trim();
    let text =
        |f: fn(&str, &str) -> bool| f(&actual.unwrap_or("").to_lowercase(), &want.to_lowercase());
    let num = |f: fn(f64, f64) -> bool| matches!((actual.and_then(number), number(want)), (Some(a), Some(b)) if f(a, b));
    match rule.op {
        Op::Eq => text(|a, b| a == b),
        Op::Ne => text(|a, b| a != b),
        Op::Contains => text(|a, b| a.contains(b)),
        Op::Gt => num(|a, b| a > b),
        Op::Gte => num(|a, b| a >= b),
        Op::Lt => num(|a, b| a < b),
        Op::Lte => num(|a, b| a <= b),
        Op::Empty => actual.is_none(),
        Op::NotEmpty => actual.is_some(),
    }
}

impl Step for ScoreItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let tag_points = c
            .rules
            .iter()
            .filter(|r| contact.has_tag(&r.tag_id) == r.has_tag)
            .map(|r| r.points);
        let field_points = c
            .field_rules
            .iter()
            .filter(|r| field_matches(r, contact))
            .map(|r| r.points);
        let points: Vec<i64> = tag_points.chain(field_points).collect();
        let total = points.iter().fold(0i64, |acc, p| acc.saturating_add(*p));
        let mut logs = Vec::new();
        let score = match c.mode {
            Mode::Replace => total.to_string(),
            Mode::Add => {
                let current = contact.field(&c.target_field);
                let base = current.and_then(number).unwrap_or_else(|| {
                    if let Some(v) = current {
                        logs.push(format!(
                            "Current score {v:?} is not a number; counted as 0."
                        ));
                    }
                    0.0
                });
                #[allow(clippy::cast_precision_loss)]
                let sum = base + total as f64;
                if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
                    format!("{sum:.0}")
                } else {
                    sum.to_string()
                }
            }
        };
        let mut out = Outcome::ok(format!("Score {score} ({} rules matched)", points.len()))
            .with("score", score.clone())
            .with("rules_matched", points.len())
            .with(&c.target_field, score.clone())
            .set_field(contact, &c.target_field, score);
        out.logs = logs;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    #[test]
    fn sums_has_and_lacks_tag_rules() {
        let cfg = json!({"rules": [{"tag_id": "1", "points": 10}, {"tag_id": "2", "points": 7},
            {"tag_id": "3", "has_tag": false, "points": -4}], "target_field": "score"});
        let out = run(&ScoreIt, cfg, &contact(&[], &["1"]));
        assert_eq!(out.changes, vec![set("score", "6")]);
        assert_eq!(out.output["rules_matched"], json!(2));
    }

    #[test]
    fn no_matching_rule_writes_zero_and_rerun_is_a_no_op() {
        let cfg = json!({"rules": [{"tag_id": "1", "points": 10}], "target_field": "score"});
        assert_eq!(
            run(&ScoreIt, cfg.clone(), &contact(&[], &[])).changes,
            vec![set("score", "0")]
        );
        assert!(
            run(&ScoreIt, cfg, &contact(&[("score", "0")], &[]))
                .changes
                .is_empty()
        );
    }

    #[test]
    fn field_rule_ops() {
        let c = contact(
            &[
                ("city", " Austin "),
                ("visits", "4"),
                ("note", "   "),
                ("age", "n/a"),
            ],
            &[],
        );
        let case = |op: &str, field: &str, value: Option<&str>| {
            let cfg = json!({"field_rules": [{"field": field, "op": op, "value": value, "points": 1}], "target_field": "s"});
            run(&ScoreIt, cfg, &c).output["score"] == json!("1")
        };
        assert!(case("eq", "city", Some("austin")) && !case("eq", "city", Some("Dallas")));
        assert!(case("ne", "city", Some("Dallas")) && !case("ne", "city", Some("AUSTIN")));
        assert!(case("contains", "city", Some("ST")) && !case("contains", "city", Some("x")));
        assert!(case("gt", "visits", Some("3")) && !case("gt", "visits", Some("4")));
        assert!(case("gte", "visits", Some("4")) && case("lte", "visits", Some("4")));
        assert!(case("lt", "visits", Some("10")) && !case("lt", "age", Some("10")));
        assert!(
            case("empty", "note", None)
                && case("empty", "missing", None)
                && !case("empty", "city", None)
        );
        assert!(case("not_empty", "city", None) && !case("not_empty", "note", None));
    }

    #[test]
    fn add_mode_adds_to_current_and_treats_garbage_as_zero() {
        let cfg =
            json!({"rules": [{"tag_id": "1", "points": 5}], "target_field": "s", "mode": "add"});
        assert_eq!(
            run(&ScoreIt, cfg.clone(), &contact(&[("s", "10")], &["1"])).changes,
            vec![set("s", "15")]
        );
        assert_eq!(
            run(&ScoreIt, cfg.clone(), &contact(&[("s", "2.5")], &["1"])).changes,
            vec![set("s", "7.5")]
        );
        let out = run(&ScoreIt, cfg, &contact(&[("s", "high")], &["1"]));
        assert_eq!(out.changes, vec![set("s", "5")]);
        assert_eq!(out.logs.len(), 1);
    }

    #[test]
    fn invalid_configs_report_every_problem() {
        let errs = config_errors(
            &ScoreIt,
            json!({"target_field": " ", "field_rules": [
            {"field": "", "op": "gt", "value": "lots", "points": 1}, {"field": "x", "op": "eq", "points": 1}]}),
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(!config_errors(&ScoreIt, json!({"target_field": "s"})).is_empty());
        assert!(!config_errors(&ScoreIt, json!({"target_field": "s", "field_rules": [{"field": "x", "op": "like", "value": "a", "points": 1}]})).is_empty());
        assert!(config_errors(&ScoreIt, json!({"target_field": "s", "field_rules": [{"field": "x", "op": "empty", "points": 1}]})).is_empty());
    }
}
