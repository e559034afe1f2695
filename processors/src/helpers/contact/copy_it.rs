//! copy_it: copies field values to other fields on the same contact. Either one copy
//! (`source_field` → `target_field`) or, with field_to_field's semantics, a list of
//! `mappings`; both may be given and the single copy runs first. Every source is read from
//! the snapshot before any write, so chained mappings (A→B, B→C) give C the old B. An
//! empty source is skipped and never clears its target; with `overwrite: false` a non-empty
//! target is kept. Copies are exact (no trimming). Idempotent.

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

/// Config of copy_it.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The field read by the single copy.
    pub source_field: Option<String>,
    /// The field written by the single copy.
    pub target_field: Option<String>,
    /// Further copies, run in one execution.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Replace a non-empty target; default true.
    #[serde(default = "default_true")]
    pub overwrite: bool,
}

impl Config {
    fn all(&self) -> Vec<Mapping> {
        let single = match (&self.source_field, &self.target_field) {
            (Some(s), Some(t)) => Some(Mapping {
                source: s.clone(),
                target: t.clone(),
            }),
            _ => None,
        };
        single
            .into_iter()
            .chain(self.mappings.iter().cloned())
            .collect()
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        check(
            &mut errors,
            self.source_field.is_some() != self.target_field.is_some(),
            "target_field",
            "source_field and target_field go together",
        );
        check(
            &mut errors,
            blank(&self.source_field),
            "source_field",
            "must not be empty",
        );
        check(
            &mut errors,
            blank(&self.target_field),
            "target_field",
            "must not be empty",
        );
        let all = self.all();
        check(
            &mut errors,
            all.is_empty(),
            "",
            "set source_field and target_field, or mappings",
        );
        let mut targets = BTreeSet::new();
        for (i, m) in all.iter().enumerate() {
            let at = if self.source_field.is_some() {
                i.checked_sub(1)
            } else {
                Some(i)
            };
            let field = at.map_or_else(|| "target_field".to_owned(), |j| format!("mappings[{j}]"));
            check(
                &mut errors,
                at.is_some() && (m.source.trim().is_empty() || m.target.trim().is_empty()),
                &field,
                "source and target must not be empty",
            );
            check(
                &mut errors,
                m.source == m.target,
                &field,
                "source and target are the same field",
            );
            check(
                &mut errors,
                !targets.insert(m.target.as_str()),
                &field,
                "target is written by another copy",
            );
        }
        finish(errors)
    }
}

/// The copy_it helper.
pub struct CopyIt;

impl Helper for CopyIt {
    const NAME: &'static str = "copy_it";
    const CATEGORY: Category = Category::Contact;
    const SUMMARY: &'static str =
        "Copies one or more fields into other fields on the same contact.";
    const EXAMPLE_CONFIG: &'static str =
        r#"{"source_field": "email", "target_field": "_BackupEmail", "overwrite": false}"#;
    const REQUIRES: &'static [crate::connectors::Capability] =
        &[crate::connectors::Capability::Fields];
    const OUTPUTS: &'static [&'static str] = &["copied", "skipped", "<target_field>"];
    type Config = Config;

    fn build(&self, config: Config) -> Runnable {
        Runnable::Sync(Box::new(CopyItStep {
            mappings: config.all(),
            overwrite: config.overwrite,
        }))
    }
}

struct CopyItStep {
    mappings: Vec<Mapping>,
    overwrite: bool,
}

impl Step for CopyItStep {
    fn run(&self, _ctx: &Ctx<'_>, contact: &Contact) -> Result<Outcome, StepError> {
        let mut out = Outcome::ok("");
        let (mut copied, mut skipped) = (0usize, 0usize);
        for m in &self.mappings {
            let Some(value) = contact
                .field(&m.source)
                .and_then(|_| contact.fields.get(&m.source))
            else {
                skipped += 1;
                out.logs.push(format!(
                    "Skipped {}: source {} is empty.",
                    m.target, m.source
                ));
                continue;
            };
            if !self.overwrite && contact.field(&m.target).is_some() {
                skipped += 1;
                out.logs.push(format!(
                    "Skipped {}: it has a value and overwrite is off.",
                    m.target
                ));
                continue;
            }
            copied += 1;
            out = out
                .with(&m.target, value.clone())
                .set_field(contact, &m.target, value.clone());
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
    fn copies_exact_value() {
        let out = run(
            &CopyIt,
            json!({"source_field": "a", "target_field": "b"}),
            &contact(&[("a", " X "), ("b", "old")], &[]),
        );
        assert_eq!(out.changes, vec![set("b", " X ")]);
        assert_eq!(
            (out.output["b"].clone(), out.output["copied"].clone()),
            (json!(" X "), json!(1))
        );
    }

    #[test]
    fn empty_source_never_clears_the_target() {
        let out = run(
            &CopyIt,
            json!({"source_field": "a", "target_field": "b"}),
            &contact(&[("a", "  "), ("b", "keep")], &[]),
        );
        assert!(out.success && out.changes.is_empty());
        assert_eq!(out.output["skipped"], json!(1));
    }

    #[test]
    fn overwrite_false_keeps_a_filled_target_but_fills_a_blank_one() {
        let cfg = json!({"mappings": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}], "overwrite": false});
        let out = run(
            &CopyIt,
            cfg,
            &contact(&[("a", "new"), ("b", "old"), ("c", " ")], &[]),
        );
        assert_eq!(out.changes, vec![set("c", "new")]);
    }

    #[test]
    fn chained_mappings_read_the_snapshot_before_writing() {
        let cfg = json!({"source_field": "a", "target_field": "b", "mappings": [{"source": "b", "target": "c"}]});
        let out = run(&CopyIt, cfg, &contact(&[("a", "1"), ("b", "2")], &[]));
        assert_eq!(out.changes, vec![set("b", "1"), set("c", "2")]);
    }

    #[test]
    fn rerun_changes_nothing() {
        let out = run(
            &CopyIt,
            json!({"source_field": "a", "target_field": "b"}),
            &contact(&[("a", "1"), ("b", "1")], &[]),
        );
        assert!(out.changes.is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(!config_errors(&CopyIt, json!({})).is_empty());
        assert!(!config_errors(&CopyIt, json!({"source_field": "a"})).is_empty());
        assert!(
            !config_errors(&CopyIt, json!({"source_field": "a", "target_field": "a"})).is_empty()
        );
        let errs = config_errors(
            &CopyIt,
            json!({"source_field": "a", "target_field": "b",
            "mappings": [{"source": "c", "target": "b"}, {"source": "", "target": "d"}]}),
        );
        assert_eq!(
            errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            vec!["mappings[0]", "mappings[1]"]
        );
    }
}
