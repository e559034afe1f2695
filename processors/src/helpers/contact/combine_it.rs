//! combine_it: joins the values of several fields, in order, with a separator, into a
//! target field (First + " " + Last → `_FullName`; address lines → `_MailingBlock`). Each
//! value is trimmed. With `skip_empty` (default) empty values are left out; without it they
//! keep their slot, so separators repeat. When every source is empty nothing is written
//! (REB). Idempotent. (The rebuild's merge_it was this same logic; merge_it now merges
//! duplicate contacts.)

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;

/// Config of combine_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The fields joined, in order.
    pub source_fields: Vec<String>,
    /// The field written.
    pub target_field: String,
    /// Put between values; default one space.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Leave out empty values; default true.
    #[serde(default = "default_true")]
    pub skip_empty: bool,
}

fn default_separator() -> String {
    " ".into()
}
impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.source_fields.is_empty(),
            "source_fields",
            "must list at least one field",
        );
        for (i, f) in self.source_fields.iter().enumerate() {
            check(
                &mut errors,
                f.trim().is_empty(),
                &format!("source_fields[{i}]"),
                "must not be empty",
            );
        }
        check(
            &mut errors,
            self.target_field.trim().is_empty(),
            "target_field",
            "must not be empty",
        );
        finish(errors)
    }
}

/// The combine_it helper.
pub struct CombineIt;

impl Helper for CombineIt {
    const NAME: &'static str = "combine_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Joins several fields with a separator into a target field.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"source_fields": ["first_name", "last_name"], "target_field": "_FullName"}"#;
    const OUTPUTS: &'static [&'static str] = &["<target_field>", "combined"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(CombineItStep(config)))
    }
}

struct CombineItStep(Config);

impl Step for CombineItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let c = &self.0;
        let values: Vec<Option<&str>> = c
            .source_fields
            .iter()
            .map(|f| contact.field(f.trim()).map(str::trim))
            .collect();
        let target = c.target_field.trim();
        if values.iter().all(Option::is_none) {
            return Ok(Outcome::ok(format!(
                "Every source is empty; {target} left unchanged"
            )));
        }
        let parts: Vec<&str> = if c.skip_empty {
            values.into_iter().flatten().collect()
        } else {
            values.into_iter().map(|v| v.unwrap_or("")).collect()
        };
        let combined = parts.join(&c.separator);
        Ok(Outcome::ok(format!("{target} = {combined}"))
            .with(target, combined.clone())
            .with("combined", combined.clone())
            .set_field(contact, target, combined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    #[test]
    fn joins_trimmed_values_with_a_space() {
        let out = run(
            &CombineIt,
            json!({"source_fields": ["first_name", "last_name"], "target_field": "full"}),
            &contact(&[("first_name", " Ada "), ("last_name", "Lovelace")], &[]),
        );
        assert_eq!(out.changes, vec![set("full", "Ada Lovelace")]);
        assert_eq!(out.output["full"], json!("Ada Lovelace"));
    }

    #[test]
    fn skip_empty_controls_separator_slots() {
        let c = contact(&[("a", "1"), ("b", " "), ("c", "3")], &[]);
        let skip = run(
            &CombineIt,
            json!({"source_fields": ["a", "b", "c"], "target_field": "t", "separator": ", "}),
            &c,
        );
        assert_eq!(skip.changes, vec![set("t", "1, 3")]);
        let keep = run(
            &CombineIt,
            json!({"source_fields": ["a", "b", "c"], "target_field": "t", "separator": ", ", "skip_empty": false}),
            &c,
        );
        assert_eq!(keep.changes, vec![set("t", "1, , 3")]);
    }

    #[test]
    fn all_empty_sources_write_nothing() {
        let out = run(
            &CombineIt,
            json!({"source_fields": ["a", "b"], "target_field": "t", "skip_empty": false}),
            &contact(&[("t", "old")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn rerun_changes_nothing() {
        let out = run(
            &CombineIt,
            json!({"source_fields": ["a", "b"], "target_field": "t"}),
            &contact(&[("a", "x"), ("b", "y"), ("t", "x y")], &[]),
        );
        assert!(out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&CombineIt, json!({"target_field": "t"})).is_empty());
        let errs = config_errors(
            &CombineIt,
            json!({"source_fields": ["a", ""], "target_field": " "}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["source_fields[1]", "target_field"]);
        assert!(
            !config_errors(
                &CombineIt,
                json!({"source_fields": [], "target_field": "t"})
            )
            .is_empty()
        );
    }
}
