//! field_to_field: a batch of copy_it copies, `{source, target}` each, run in one
//! execution and written in one update. Every source is read from the snapshot before any
//! write, so chained mappings (A→B, B→C) give C the old B. An empty source is skipped and
//! never clears its target; with `overwrite: false` a non-empty target is kept. Copies are
//! exact (no trimming). Idempotent.

use crate::connectors::Capability;
use crate::helpers::defaults::default_true;
use crate::helpers::{
    Category, Contact, Ctx, FieldError, Helper, Outcome, Runnable, Step, StepError, Validate,
    check, finish,
};
use serde::Deserialize;
use std::collections::BTreeSet;

/// One copy.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The field read.
    pub source: String,
    /// The field written.
    pub target: String,
}

/// Config of field_to_field.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The copies, in order.
    pub mappings: Vec<Mapping>,
    /// Replace non-empty targets; default true.
    #[serde(default = "default_true")]
    pub overwrite: bool,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        check(
            &mut errors,
            self.mappings.is_empty(),
            "mappings",
            "must list at least one mapping",
        );
        let mut targets = BTreeSet::new();
        for (i, m) in self.mappings.iter().enumerate() {
            let field = format!("mappings[{i}]");
            check(
                &mut errors,
                m.source.trim().is_empty() || m.target.trim().is_empty(),
                &field,
                "source and target must not be empty",
            );
            check(
                &mut errors,
                m.source.trim() == m.target.trim(),
                &field,
                "source and target are the same field",
            );
            check(
                &mut errors,
                !targets.insert(m.target.trim()),
                &field,
                "target is written by another mapping",
            );
        }
        finish(errors)
    }
}

/// The field_to_field helper.
pub struct FieldToField;

impl Helper for FieldToField {
    const NAME: &'static str = "field_to_field";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str = "Copies several fields into other fields in one update.";
    const EXAMPLE_CONFIG: &'static str = r#"{"mappings": [{"source": "_FormEmail", "target": "email"}, {"source": "_FormPhone", "target": "phone"}], "overwrite": false}"#;
    const OUTPUTS: &'static [&'static str] = &["copied", "skipped", "<target>"];
    const REQUIRES: &'static [Capability] = &[Capability::Fields];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(FieldToFieldStep(config)))
    }
}

struct FieldToFieldStep(Config);

impl Step for FieldToFieldStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let mut out = Outcome::ok("");
        let (mut copied, mut skipped) = (0usize, 0usize);
        for m in &self.0.mappings {
            let (source, target) = (m.source.trim(), m.target.trim());
            let Some(value) = contact
                .field(source)
                .and_then(|_| contact.fields.get(source))
            else {
                skipped += 1;
                out = out.log(format!("Skipped {target}: source {source} is empty."));
                continue;
            };
            if !self.0.overwrite && contact.field(target).is_some() {
                skipped += 1;
                out = out.log(format!(
                    "Skipped {target}: it has a value and overwrite is off."
                ));
                continue;
            }
            copied += 1;
            out = out
                .with(target, value.clone())
                .set_field(contact, target, value.clone());
        }
        out.message = format!("Copied {copied} and skipped {skipped} fields");
        Ok(out.with("copied", copied).with("skipped", skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::testing::{config_errors, contact, run, set};
    use serde_json::json;

    #[test]
    fn copies_every_mapping_exactly() {
        let cfg =
            json!({"mappings": [{"source": "a", "target": "b"}, {"source": "c", "target": "d"}]});
        let out = run(
            &FieldToField,
            cfg,
            &contact(&[("a", " 1 "), ("c", "2"), ("d", "old")], &[]),
        );
        assert_eq!(out.changes, vec![set("b", " 1 "), set("d", "2")]);
        assert_eq!(out.output["copied"], json!(2));
        assert_eq!(out.output["d"], json!("2"));
    }

    #[test]
    fn empty_sources_and_kept_targets_are_skipped() {
        let cfg = json!({"mappings": [{"source": "a", "target": "b"}, {"source": "c", "target": "d"}, {"source": "c", "target": "e"}], "overwrite": false});
        let out = run(
            &FieldToField,
            cfg,
            &contact(&[("a", "  "), ("b", "keep"), ("c", "x"), ("d", "old")], &[]),
        );
        assert_eq!(out.changes, vec![set("e", "x")]);
        assert_eq!(
            (out.output["copied"].clone(), out.output["skipped"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(out.logs.len(), 2);
    }

    #[test]
    fn chained_mappings_read_before_writing() {
        let cfg =
            json!({"mappings": [{"source": "a", "target": "b"}, {"source": "b", "target": "c"}]});
        let out = run(&FieldToField, cfg, &contact(&[("a", "1"), ("b", "2")], &[]));
        assert_eq!(out.changes, vec![set("b", "1"), set("c", "2")]);
    }

    #[test]
    fn rerun_changes_nothing() {
        let cfg = json!({"mappings": [{"source": "a", "target": "b"}]});
        let out = run(&FieldToField, cfg, &contact(&[("a", "1"), ("b", "1")], &[]));
        assert!(out.success && out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&FieldToField, json!({"mappings": []})).is_empty());
        assert!(!config_errors(&FieldToField, json!({})).is_empty());
        let errs = config_errors(
            &FieldToField,
            json!({"mappings": [{"source": "a", "target": "a"}, {"source": "", "target": "b"}, {"source": "c", "target": "b"}]}),
        );
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["mappings[0]", "mappings[1]", "mappings[2]"]);
    }
}
