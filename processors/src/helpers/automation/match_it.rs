//! match_it: tests a contact field against patterns (`equals`, `contains`,
//! `starts_with`, `ends_with`, `regex`; any of `patterns` matching is a match), against
//! another field (`compare_field`, e.g. billing vs shipping state), or numerically
//! (`gt`, `lt`), or checks `is_empty`; case-insensitive unless `case_sensitive`. It
//! branches with a tag and/or goal per outcome and can save `true`/`false` to a field.
//! An empty field never matches except with `is_empty`. Regexes are compiled when the
//! config is saved (Rust's linear-time engine, safe against ReDoS). Idempotent.

use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use regex::Regex;
use serde::Deserialize;

/// The comparison.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// Equal after trimming.
    Equals,
    /// Contains the pattern (default).
    #[default]
    Contains,
    /// Starts with the pattern.
    StartsWith,
    /// Ends with the pattern.
    EndsWith,
    /// Matches the regular expression.
    Regex,
    /// The field is empty.
    IsEmpty,
    /// Numerically greater than the pattern.
    Gt,
    /// Numerically less than the pattern.
    Lt,
}

/// Config of match_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field tested.
    pub source_field: String,
    /// The pattern; or use `patterns` or `compare_field`.
    pub pattern: Option<String>,
    /// Several patterns; any one matching is a match.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Compare with this field's value instead of a pattern.
    pub compare_field: Option<String>,
    /// Default `contains`.
    #[serde(default)]
    pub match_type: MatchType,
    /// Default false.
    #[serde(default)]
    pub case_sensitive: bool,
    /// Tag applied on a match.
    pub on_match_tag: Option<String>,
    /// Tag applied on no match.
    pub on_no_match_tag: Option<String>,
    /// Goal achieved on a match.
    pub on_match_goal: Option<String>,
    /// Goal achieved on no match.
    pub on_no_match_goal: Option<String>,
    /// Field that receives `true` or `false`.
    pub save_result_to: Option<String>,
}

impl Config {
    fn patterns(&self) -> Vec<&str> {
        self.pattern
            .iter()
            .chain(&self.patterns)
            .map(String::as_str)
            .collect()
    }

    fn regexes(&self) -> Vec<Result<Regex, regex::Error>> {
        if self.match_type != MatchType::Regex {
            return Vec::new();
        }
        self.patterns()
            .into_iter()
            .map(|p| {
                regex::RegexBuilder::new(p)
                    .case_insensitive(!self.case_sensitive)
                    .size_limit(1 << 20)
                    .build()
            })
            .collect()
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let t = self.match_type;
        check(
            &mut errors,
            self.source_field.trim().is_empty(),
            "source_field",
            "is required",
        );
        let pats = self.patterns();
        let compare = self.compare_field.is_some();
        check(
            &mut errors,
            t != MatchType::IsEmpty && pats.is_empty() && !compare,
            "pattern",
            "is required unless compare_field is set or match_type is is_empty",
        );
        check(
            &mut errors,
            compare && !pats.is_empty(),
            "compare_field",
            "cannot be combined with pattern or patterns",
        );
        check(
            &mut errors,
            (t == MatchType::IsEmpty || t == MatchType::Regex) && compare,
            "compare_field",
            "does not work with is_empty or regex",
        );
        check(
            &mut errors,
            pats.iter().any(|p| p.trim().is_empty())
                || self
                    .compare_field
                    .as_ref()
                    .is_some_and(|f| f.trim().is_empty()),
            "pattern",
            "patterns and compare_field must not be empty",
        );
        check(
            &mut errors,
            matches!(t, MatchType::Gt | MatchType::Lt)
                && pats.iter().any(|p| p.trim().parse::<f64>().is_err()),
            "pattern",
            "must be a number for gt/lt",
        );
        for (i, r) in self.regexes().into_iter().enumerate() {
            if let Err(e) = r {
                errors.push(FieldError::new(
                    "pattern",
                    format!("pattern {i} is not a valid regex: {e}"),
                ));
            }
        }
        finish(errors)
    }
}

/// The match_it helper.
pub struct MatchIt;

impl Helper for MatchIt {
    const NAME: &'static str = "match_it";
    const CATEGORY: Category = Category::Automation;
    const SUMMARY: &'static str =
        "Tests a field against patterns or another field and branches with tags or goals.";
    const EXAMPLE_CONFIG: &'static str = r#"{"source_field": "email", "patterns": ["@gmail.com", "@yahoo.com"], "match_type": "ends_with", "on_match_tag": "401", "on_no_match_tag": "402", "save_result_to": "_FreeMail"}"#;
    const OUTPUTS: &'static [&'static str] = &["matched", "match_type", "pattern", "source_value"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        let regexes = config
            .regexes()
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        Runnable::Sync(Box::new(MatchItStep { config, regexes }))
    }
}

struct MatchItStep {
    config: Config,
    regexes: Vec<Regex>,
}

impl MatchItStep {
    fn norm(&self, s: &str) -> String {
        if self.config.case_sensitive {
            s.trim().to_owned()
        } else {
            s.trim().to_lowercase()
        }
    }

    fn test(&self, value: &str, pattern: &str) -> bool {
        let (v, p) = (self.norm(value), self.norm(pattern));
        let num = |s: &str| s.parse::<f64>().ok();
        match self.config.match_type {
            MatchType::Equals => v == p,
            MatchType::Contains => v.contains(&p),
            MatchType::StartsWith => v.starts_with(&p),
            MatchType::EndsWith => v.ends_with(&p),
            MatchType::Gt => matches!((num(&v), num(&p)), (Some(a), Some(b)) if a > b),
            MatchType::Lt => matches!((num(&v), num(&p)), (Some(a), Some(b)) if a < b),
            MatchType::Regex | MatchType::IsEmpty => false,
        }
    }
}

impl Step for MatchItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.config;
        let source = contact.field(c.source_field.trim());
        let (matched, against) = match (c.match_type, source, &c.compare_field) {
            (MatchType::IsEmpty, v, _) => (v.is_none(), String::new()),
            (_, None, _) => (false, String::new()),
            (_, Some(v), Some(other)) => match contact.field(other.trim()) {
                Some(o) => (self.test(v, o), o.to_owned()),
                None => (false, String::new()),
            },
            (MatchType::Regex, Some(v), None) => {
                let hit = self.regexes.iter().find(|r| r.is_match(v.trim()));
                (
                    hit.is_some(),
                    hit.map_or_else(String::new, |r| r.as_str().to_owned()),
                )
            }
            (_, Some(v), None) => {
                let hit = c.patterns().into_iter().find(|p| self.test(v, p));
                (hit.is_some(), hit.unwrap_or("").to_owned())
            }
        };
        let (tag, goal) = if matched {
            (c.on_match_tag.as_deref(), c.on_match_goal.as_deref())
        } else {
            (c.on_no_match_tag.as_deref(), c.on_no_match_goal.as_deref())
        };
        let mut out = Outcome::ok(if matched { "Matched" } else { "No match" })
            .with("matched", matched)
            .with(
                "match_type",
                serde_json::to_value(c.match_type).unwrap_or_default(),
            )
            .with("pattern", against)
            .with("source_value", source.unwrap_or(""));
        if let Some(f) = c.save_result_to.as_deref().filter(|f| !f.trim().is_empty()) {
            out = out.set_field(contact, f.trim(), matched.to_string());
        }
        Ok(out.branch(contact, tag, goal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::Change;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    fn matched(cfg: serde_json::Value, fields: &[(&str, &str)]) -> bool {
        run(&MatchIt, cfg, &contact(fields, &[])).output["matched"] == true
    }

    #[test]
    fn any_pattern_matching_branches_with_tag_goal_and_field() {
        let cfg = json!({"source_field": "email", "patterns": ["@gmail.com", "@yahoo.com"], "match_type": "ends_with", "on_match_tag": "1", "on_no_match_tag": "2", "on_match_goal": "free", "save_result_to": "r"});
        let out = run(
            &MatchIt,
            cfg.clone(),
            &contact(&[("email", "A@YAHOO.com ")], &[]),
        );
        assert_eq!(out.output["pattern"], "@yahoo.com");
        assert_eq!(out.output["match_type"], "ends_with");
        assert_eq!(
            out.changes,
            vec![
                set("r", "true"),
                Change::ApplyTag { tag_id: "1".into() },
                Change::AchieveGoal {
                    call_name: "free".into()
                }
            ]
        );
        let miss = run(
            &MatchIt,
            cfg,
            &contact(&[("email", "a@corp.com"), ("r", "false")], &["2"]),
        );
        assert_eq!(miss.output["matched"], false);
        assert!(miss.changes.is_empty());
    }

    #[test]
    fn empty_fields_only_match_is_empty() {
        let contains = json!({"source_field": "f", "pattern": "x"});
        assert!(!matched(contains, &[("f", " ")]));
        let ne = json!({"source_field": "f", "match_type": "equals", "compare_field": "g"});
        assert!(!matched(ne, &[("g", "")]));
        assert!(matched(
            json!({"source_field": "f", "match_type": "is_empty"}),
            &[("f", "  ")]
        ));
        assert!(!matched(
            json!({"source_field": "f", "match_type": "is_empty"}),
            &[("f", "x")]
        ));
    }

    #[test]
    fn case_regex_numbers_and_field_comparison() {
        let cs = json!({"source_field": "f", "pattern": "ABC", "case_sensitive": true});
        assert!(!matched(cs.clone(), &[("f", "xabcx")]));
        assert!(matched(cs, &[("f", "xABCx")]));
        let re =
            json!({"source_field": "phone", "pattern": "^\\+1\\d{10}$", "match_type": "regex"});
        assert!(matched(re.clone(), &[("phone", "+15551234567")]));
        assert!(!matched(re, &[("phone", "5551234567")]));
        let gt = json!({"source_field": "n", "pattern": "10", "match_type": "gt"});
        assert!(matched(gt.clone(), &[("n", "10.5")]));
        assert!(!matched(gt.clone(), &[("n", "10")]));
        assert!(!matched(gt, &[("n", "lots")]));
        let same = json!({"source_field": "bill_state", "compare_field": "ship_state", "match_type": "equals"});
        assert!(matched(
            same.clone(),
            &[("bill_state", "tx"), ("ship_state", " TX")]
        ));
        assert!(!matched(
            same,
            &[("bill_state", "tx"), ("ship_state", "CA")]
        ));
    }

    #[test]
    fn bad_configs_are_rejected_at_save_time() {
        let errs = config_errors(
            &MatchIt,
            json!({"source_field": "f", "pattern": "(", "match_type": "regex"}),
        );
        assert_eq!(errs[0].field, "pattern");
        assert!(errs[0].message.contains("regex"));
        assert!(!config_errors(&MatchIt, json!({"source_field": "f"})).is_empty());
        assert!(
            !config_errors(
                &MatchIt,
                json!({"source_field": "f", "pattern": "a", "compare_field": "g"})
            )
            .is_empty()
        );
        assert!(
            !config_errors(
                &MatchIt,
                json!({"source_field": "f", "pattern": "ten", "match_type": "gt"})
            )
            .is_empty()
        );
        assert!(!config_errors(&MatchIt, json!({"source_field": "", "patterns": [""]})).is_empty());
        assert!(
            config_errors(
                &MatchIt,
                json!({"source_field": "f", "match_type": "is_empty"})
            )
            .is_empty()
        );
    }
}
