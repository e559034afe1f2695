//! clear_it: blanks each listed field on the contact. A field is cleared with a `None`
//! value, so the connector sends whatever blank its CRM needs for the field's type (`null`
//! for dates and numbers, `""` for text). Fields that are already absent or `""` are
//! left alone, so a rerun changes nothing; a field the CRM refuses to blank (a required
//! email) fails on its own when the change is applied. Idempotent.

use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;
use std::collections::BTreeSet;

/// Config of clear_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field keys to blank. Example: `["_PromoCode", "_TempNotes"]`.
    pub fields: Vec<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.fields.is_empty(),
            "fields",
            "must list at least one field",
        );
        let mut seen = BTreeSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            let name = format!("fields[{i}]");
            check(&mut errors, f.trim().is_empty(), &name, "must not be empty");
            check(
                &mut errors,
                !seen.insert(f.trim()),
                &name,
                "is listed twice",
            );
        }
        finish(errors)
    }
}

/// The clear_it helper.
pub struct ClearIt;

impl Helper for ClearIt {
    const NAME: &'static str = "clear_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Blanks out the listed fields on the contact.";
    const EXAMPLE_CONFIG: &'static str = r#"{"fields": ["_PromoCode", "_TempNotes"]}"#;
    const OUTPUTS: &'static [&'static str] = &["cleared", "already_empty", "failed"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(ClearItStep(config)))
    }
}

struct ClearItStep(Config);

impl Step for ClearItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let (cleared, empty): (Vec<&str>, Vec<&str>) = self
            .0
            .fields
            .iter()
            .map(|f| f.trim())
            .partition(|f| contact.fields.get(*f).is_some_and(|v| !v.is_empty()));
        let mut out = Outcome::ok(format!(
            "Cleared {} fields; {} were already empty",
            cleared.len(),
            empty.len()
        ));
        for f in &cleared {
            out = out.change(Change::SetField {
                field: (*f).to_owned(),
                value: None,
            });
        }
        Ok(out
            .with("cleared", cleared)
            .with("already_empty", empty)
            .with("failed", Vec::<String>::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run};
    use serde_json::json;

    fn cleared(field: &str) -> Change {
        Change::SetField {
            field: field.into(),
            value: None,
        }
    }

    #[test]
    fn clears_filled_fields_including_whitespace_only() {
        let out = run(
            &ClearIt,
            json!({"fields": ["a", "b", "c", "d"]}),
            &contact(&[("a", "x"), ("b", "  "), ("c", ""), ("z", "keep")], &[]),
        );
        assert_eq!(out.changes, vec![cleared("a"), cleared("b")]);
        assert_eq!(out.output["cleared"], json!(["a", "b"]));
        assert_eq!(out.output["already_empty"], json!(["c", "d"]));
        assert_eq!(out.message, "Cleared 2 fields; 2 were already empty");
    }

    #[test]
    fn rerun_changes_nothing() {
        let out = run(&ClearIt, json!({"fields": ["a"]}), &contact(&[], &[]));
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&ClearIt, json!({})).is_empty());
        assert_eq!(
            config_errors(&ClearIt, json!({"fields": []}))[0].field,
            "fields"
        );
        let errs = config_errors(&ClearIt, json!({"fields": ["a", " ", "a"]}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["fields[1]", "fields[2]"]);
    }
}
