//! move_it: copies a field into another, then blanks the source; used to move a value from
//! a temporary form field into its real home. Both writes go in one update, the target
//! first. With `preserve`, a target that already has a value leaves everything untouched.
//! An empty source is a no-op, so a second run changes nothing. If the CRM refuses to
//! clear the source after writing the target, the apply report shows that change as
//! failed while the target write stands (the catalog's `partial`).

use crate::connectors::Capability;
use crate::helpers::{
    Category, Change, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError,
    Validate, check, finish,
};
use serde::Deserialize;

/// Config of move_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field moved out of and then blanked.
    pub source_field: String,
    /// The field moved into.
    pub target_field: String,
    /// Skip everything when the target has a value; default false.
    #[serde(default)]
    pub preserve: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.source_field.trim().is_empty(),
            "source_field",
            "must not be empty",
        );
        check(
            &mut errors,
            self.target_field.trim().is_empty(),
            "target_field",
            "must not be empty",
        );
        check(
            &mut errors,
            !self.source_field.trim().is_empty()
                && self.source_field.trim() == self.target_field.trim(),
            "target_field",
            "must differ from source_field",
        );
        finish(errors)
    }
}

/// The move_it helper.
pub struct MoveIt;

impl Helper for MoveIt {
    const NAME: &'static str = "move_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Moves a field's value into another field and blanks the source.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"source_field": "_FormPhone", "target_field": "phone", "preserve": true}"#;
    const OUTPUTS: &'static [&'static str] =
        &["<target_field>", "<source_field>", "source_cleared"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(MoveItStep(config)))
    }
}

struct MoveItStep(Config);

impl Step for MoveItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let (source, target) = (self.0.source_field.trim(), self.0.target_field.trim());
        let Some(value) = contact
            .field(source)
            .and_then(|_| contact.fields.get(source))
        else {
            return Ok(Outcome::ok(format!("{source} is empty; nothing to move"))
                .with("source_cleared", false));
        };
        if self.0.preserve && contact.field(target).is_some() {
            return Ok(Outcome::ok(format!(
                "{target} already has a value; left {source} in place"
            ))
            .with("source_cleared", false));
        }
        Ok(Outcome::ok(format!("Moved {source} to {target}"))
            .with(target, value.clone())
            .with(source, "")
            .with("source_cleared", true)
            .set_field(contact, target, value.clone())
            .change(Change::SetField {
                field: source.to_owned(),
                value: None,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    fn cfg(preserve: bool) -> serde_json::Value {
        json!({"source_field": "tmp", "target_field": "phone", "preserve": preserve})
    }

    fn blank(field: &str) -> Change {
        Change::SetField {
            field: field.into(),
            value: None,
        }
    }

    #[test]
    fn writes_the_target_then_blanks_the_source() {
        let out = run(
            &MoveIt,
            cfg(false),
            &contact(&[("tmp", "555-1234"), ("phone", "old")], &[]),
        );
        assert_eq!(out.changes, vec![set("phone", "555-1234"), blank("tmp")]);
        assert_eq!(out.output["phone"], json!("555-1234"));
        assert_eq!(out.output["tmp"], json!(""));
        assert_eq!(out.output["source_cleared"], json!(true));
    }

    #[test]
    fn equal_target_still_clears_the_source() {
        let out = run(
            &MoveIt,
            cfg(false),
            &contact(&[("tmp", "1"), ("phone", "1")], &[]),
        );
        assert_eq!(out.changes, vec![blank("tmp")]);
    }

    #[test]
    fn preserve_keeps_a_filled_target_and_the_source() {
        let out = run(
            &MoveIt,
            cfg(true),
            &contact(&[("tmp", "1"), ("phone", "2")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["source_cleared"], json!(false));
        let blank_target = run(
            &MoveIt,
            cfg(true),
            &contact(&[("tmp", "1"), ("phone", " ")], &[]),
        );
        assert_eq!(blank_target.changes, vec![set("phone", "1"), blank("tmp")]);
    }

    #[test]
    fn empty_source_is_a_no_op_so_a_rerun_changes_nothing() {
        let out = run(
            &MoveIt,
            cfg(false),
            &contact(&[("tmp", "  "), ("phone", "1")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&MoveIt, json!({"source_field": "a"})).is_empty());
        let same = config_errors(&MoveIt, json!({"source_field": "a", "target_field": "a"}));
        assert_eq!(same[0].field, "target_field");
        let errs = config_errors(&MoveIt, json!({"source_field": "", "target_field": " "}));
        assert_eq!(errs.len(), 2, "{errs:?}");
    }
}
